package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// The demo world: the names the examples/ manifests use, so that they
// apply to the sim as they would to a cluster.
const (
	demoTenant         = "00000000-0000-0000-0000-0000000000aa"
	demoClientID       = "00000000-0000-0000-0000-000000000001"
	demoVault          = "contoso-kv"
	demoNamespace      = "payments"
	demoServiceAccount = "payments-workload"
)

// state is what a running sim tells the other commands, in <dir>/sim.json.
type state struct {
	PID        int    `json:"pid"`
	AdminURL   string `json:"adminURL"`
	Kubeconfig string `json:"kubeconfig"`
	Vault      string `json:"vault"`
	Tenant     string `json:"tenant"`
	ClientID   string `json:"clientID"`
	Namespace  string `json:"namespace"`
	Poll       string `json:"poll"`
	// ControllerMetrics is the controller's metrics endpoint.
	ControllerMetrics string `json:"controllerMetrics"`
	// ProviderFaultsURL is the admin API of the injector between the
	// controller and the provider, for provider.* faults.
	ProviderFaultsURL string `json:"providerFaultsURL"`
	// ProviderHealth is the provider's /healthz, which answers once it
	// serves its socket.
	ProviderHealth string `json:"providerHealth"`
}

const stateFile = "sim.json"

// upOptions are the flags of up.
type upOptions struct {
	dir        string
	moduleRoot string
	poll       time.Duration
}

// up starts the sim and runs until ctx ends (Ctrl-C), then stops every
// process it started.
func up(ctx context.Context, o upOptions, out io.Writer) (err error) {
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if running, pid := alive(dir); running {
		return fmt.Errorf("a sim is already running (pid %d, %s): stop it with Ctrl-C in its terminal", pid, filepath.Join(dir, stateFile))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(dir, "components.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()

	say("building fakevault, kvsync-provider and kvsync-controller; starting envtest's kube-apiserver and etcd (logs: %s)", logPath)
	env, err := conformance.StartExternal(ctx, conformance.ExternalOptions{ModuleRoot: o.moduleRoot, ProviderFaults: true,
		Options: conformance.Options{CRDDir: filepath.Join(o.moduleRoot, "deploy", "crds"), PollInterval: o.poll, Log: logFile}})
	if err != nil {
		return fmt.Errorf("starting the sim: %w", err)
	}
	defer func() {
		say("stopping the controller, the provider, fakevault and the API server")
		err = errors.Join(err, env.Stop(), os.Remove(filepath.Join(dir, stateFile)))
		if err == nil {
			say("stopped")
		}
	}()
	say("running: kube-apiserver %s, fakevault admin API %s, kvsync-provider and kvsync-controller (chart RBAC, leader election, poll %s)",
		env.Config.Host, env.AdminURL, o.poll)

	a := newAdmin(env.AdminURL)
	if err := seed(ctx, env, a); err != nil {
		return fmt.Errorf("seeding the demo world: %w", err)
	}
	say("demo world: vault %s (tenant %s) with secrets db-password (2 versions) and api-key and certificate web-cert; identity %s federated with ServiceAccount %s/%s, role %s",
		demoVault, demoTenant, demoClientID, demoNamespace, demoServiceAccount, keyvault.RoleCertificateUser)

	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.WriteKubeconfig("sim-admin", kubeconfig); err != nil {
		return err
	}
	st := state{PID: os.Getpid(), AdminURL: env.AdminURL, Kubeconfig: kubeconfig, Vault: demoVault, Tenant: demoTenant,
		ClientID: demoClientID, Namespace: demoNamespace, Poll: o.poll.String(), ControllerMetrics: env.Controller.MetricsURL(),
		ProviderFaultsURL: env.ProviderFaultsURL, ProviderHealth: env.Provider.URL("/healthz")}
	if err := writeState(dir, st); err != nil {
		return err
	}
	envFile := filepath.Join(dir, "env")
	// KVSYNC_METRICS_URL lets kubectl kvsync read each SecretSync's last
	// check from the controller, which has no Service here.
	lines := fmt.Sprintf("export KUBECONFIG=%s\nexport KVSYNC_SIM_DIR=%s\nexport KVSYNC_METRICS_URL=%s\n", kubeconfig, dir, st.ControllerMetrics)
	if assets := os.Getenv("KUBEBUILDER_ASSETS"); assets != "" {
		if _, err := os.Stat(filepath.Join(assets, "kubectl")); err == nil {
			// The kubectl hack/envtest.sh builds from source, of the API
			// server's version.
			lines += fmt.Sprintf("export PATH=%s:$PATH\n", assets)
		}
	}
	if err := os.WriteFile(envFile, []byte(lines), 0o644); err != nil {
		return err
	}
	say("ready: %s and %s written", kubeconfig, envFile)
	fmt.Fprint(out, nextSteps(dir))
	<-ctx.Done()
	return nil
}

// seed creates the demo world: tenant, identity, vault and its objects,
// namespace and ServiceAccount.
func seed(ctx context.Context, env *conformance.Environment, a admin) error {
	if err := a.Do(http.MethodPost, "/tenants", map[string]string{"tenantId": demoTenant}, nil); err != nil {
		return err
	}
	app := entra.Application{ClientID: demoClientID, ObjectID: demoClientID, DisplayName: "payments-workload",
		FederatedCredentials: []entra.FederatedCredential{{Name: "payments", Issuer: env.Issuer, Subject: "system:serviceaccount:" + demoNamespace + ":" + demoServiceAccount}}}
	if err := a.Do(http.MethodPost, "/tenants/"+demoTenant+"/applications", app, nil); err != nil {
		return err
	}
	vault := keyvault.VaultConfig{Name: demoVault, TenantID: demoTenant,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: demoClientID, Role: keyvault.RoleCertificateUser}}}
	if err := a.Do(http.MethodPost, "/vaults", vault, nil); err != nil {
		return err
	}
	for _, s := range []struct{ name, value string }{
		{"db-password", "demo-db-password-v1"}, {"db-password", "demo-db-password-v2"}, {"api-key", "demo-api-key-v1"},
	} {
		if err := a.setSecret(demoVault, s.name, s.value); err != nil {
			return err
		}
	}
	if err := a.Do(http.MethodPost, "/vaults/"+demoVault+"/certificates/web-cert",
		map[string]any{"dnsNames": []string{"payments.contoso.example"}}, nil); err != nil {
		return err
	}
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}); err != nil {
		return err
	}
	return env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: demoServiceAccount}})
}

// nextSteps is what up prints once the sim is ready.
func nextSteps(dir string) string {
	return fmt.Sprintf(`
The sim is running. In another terminal, from the repository:

  source %s   # KUBECONFIG, KVSYNC_SIM_DIR, and the kubectl built from source on PATH
  kubectl apply -f examples/                # the docs' SecretProviderClass and SecretSyncs
  kubectl get secretsyncs -n payments       # their status
  go run ./cmd/kvsync-sim poll              # check every SecretSync now, as the next poll would
  go run ./cmd/kvsync-sim secret rotate db-password
  go run ./cmd/kvsync-sim fault add vault.throttle
  go run ./cmd/kubectl-kvsync doctor db -n payments --network=false

docs/sim.md walks through every reason of the troubleshooting guide.

Ctrl-C here stops everything.
`, filepath.Join(dir, "env"))
}

func writeState(dir string, st state) error {
	raw, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, stateFile), raw, 0o644)
}

// readState reads the state of the sim running in dir.
func readState(dir string) (state, error) {
	var st state
	raw, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("no sim is running in %s: start one with make sim (or set KVSYNC_SIM_DIR / --dir)", dir)
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("reading %s: %w", filepath.Join(dir, stateFile), err)
	}
	return st, nil
}

// alive reports whether the sim whose state is in dir still runs.
func alive(dir string) (bool, int) {
	st, err := readState(dir)
	if err != nil || st.PID <= 0 {
		return false, 0
	}
	return syscall.Kill(st.PID, 0) == nil, st.PID
}
