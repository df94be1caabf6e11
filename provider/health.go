package provider

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// HealthHandler answers 200 when the provider answers a Version call on its
// socket within two seconds, and 503 with the cause otherwise.
func HealthHandler(socketPath string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := checkVersion(ctx, socketPath); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

func checkVersion(ctx context.Context, socketPath string) error {
	conn, err := grpc.NewClient("unix://"+socketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", socketPath, err)
	}
	defer conn.Close()
	if _, err := v1alpha1.NewCSIDriverProviderClient(conn).Version(ctx, &v1alpha1.VersionRequest{Version: "v1alpha1"}); err != nil {
		return fmt.Errorf("provider on %s does not answer: %w", socketPath, err)
	}
	return nil
}
