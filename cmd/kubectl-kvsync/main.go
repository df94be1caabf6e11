// Command kubectl-kvsync is the troubleshooting guide of the Secret Store
// extension as a kubectl plugin: `kubectl kvsync status` lists SecretSyncs
// with their reason and next step, `doctor` names the cause of one and checks
// its cluster and network, `explain` prints a reason's meaning and fixes
// offline, and `lint` checks SecretSync and SecretProviderClass manifests
// before they are applied. It takes kubectl's standard flags (--kubeconfig,
// --context, -n, ...).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cmd := newRoot(os.Stdout, os.Stderr, term.IsTerminal(int(os.Stdout.Fd())) && os.Getenv("NO_COLOR") == "")
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// exitError carries an exit code: 1 for a finding (a lint problem, an
// unhealthy SecretSync), 2 for a usage or cluster error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 2
}

// cli is what every command shares.
type cli struct {
	flags  *genericclioptions.ConfigFlags
	out    io.Writer
	colour bool
	output string
	// metricsService and metricsURL say where the controller's metrics are
	// read: the last check of each SecretSync is there only.
	metricsService string
	metricsURL     string
}

func newRoot(out, errOut io.Writer, colour bool) *cobra.Command {
	c := &cli{flags: genericclioptions.NewConfigFlags(true), out: out, colour: colour}
	root := &cobra.Command{
		Use:           "kubectl-kvsync",
		Short:         "Troubleshoot SecretSyncs as the Secret Store extension's guide does",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	c.flags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&c.output, "output", "o", "", "Output format: json or yaml (default: text for people)")
	root.PersistentFlags().StringVar(&c.metricsService, "metrics-service", "kvsync-system/kvsync-metrics:metrics",
		"The controller's metrics Service, NAMESPACE/NAME:PORT, read through the API server for each SecretSync's last check")
	root.PersistentFlags().StringVar(&c.metricsURL, "metrics-url", os.Getenv("KVSYNC_METRICS_URL"),
		"The controller's metrics URL, read instead of --metrics-service (default $KVSYNC_METRICS_URL)")
	root.AddCommand(c.statusCommand(), c.doctorCommand(), c.explainCommand(), c.lintCommand(), c.planCommand())
	return root
}

// checkOutput refuses an unknown -o.
func (c *cli) checkOutput() error {
	switch c.output {
	case "", "json", "yaml":
		return nil
	}
	return &exitError{2, fmt.Errorf("unknown output format %q: use json or yaml", c.output)}
}

// client returns an API client and a clientset for the kubeconfig flags.
func (c *cli) client() (client.Client, kubernetes.Interface, error) {
	cfg, err := c.flags.ToRESTConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	return clientFor(cfg)
}

// clientFor returns an API client that knows kvsync's kinds, and a
// clientset, for cfg.
func clientFor(cfg *rest.Config) (client.Client, kubernetes.Interface, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ssv1alpha1.AddToScheme, spcv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, nil, err
		}
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, fmt.Errorf("creating the API client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the API client: %w", err)
	}
	return cl, kube, nil
}

// namespace is -n, or the kubeconfig context's namespace.
func (c *cli) namespace() (string, error) {
	ns, _, err := c.flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}
