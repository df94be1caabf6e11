package conformance

import (
	"fmt"
	"os"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// WriteKubeconfig writes to path a kubeconfig of the environment's API
// server for a new cluster administrator named user (see
// WriteAdminKubeconfig).
func (e *Environment) WriteKubeconfig(user, path string) error {
	if e.envtest == nil {
		return fmt.Errorf("a %s environment has no API server of its own", e.Mode)
	}
	return WriteAdminKubeconfig(e.envtest, user, path)
}

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
