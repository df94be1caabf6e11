package conformance

import (
	"os"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// WriteAdminKubeconfig writes to path a kubeconfig of env's API server for
// a new cluster administrator (group system:masters) named user, as a
// cluster's kubeconfig for tools and suites run against it.
func WriteAdminKubeconfig(env *envtest.Environment, user, path string) error {
	u, err := env.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	raw, err := u.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}
