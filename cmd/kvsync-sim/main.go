// Command kvsync-sim runs the Secret Store extension's whole world on one
// machine, with no cloud and no docker, for operators to learn the
// troubleshooting guide by breaking things: envtest's kube-apiserver and
// etcd, fakevault (Key Vault and Entra ID) seeded with the demo vault and
// workload identity the examples/ manifests name, and the kvsync-provider
// and kvsync-controller binaries as processes, installed as the chart
// installs them.
//
//	kvsync-sim up                              start it in the foreground; Ctrl-C stops everything
//	kvsync-sim secret set|rotate|disable|delete NAME
//	kvsync-sim identity grant [ROLE] | revoke
//	kvsync-sim fault add KIND [--vault V] ... | list | clear [NAME]
//	kvsync-sim poll [NAMESPACE/NAME]           check SecretSyncs now and print their reasons
//
// up writes <dir>/kubeconfig, <dir>/env (source it for KUBECONFIG) and
// <dir>/sim.json, which the other commands read; <dir> is _sim unless
// --dir or $KVSYNC_SIM_DIR says otherwise. Each change prints the reason
// and cause the guide says to expect.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot(os.Stdout).ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		var usage usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a command line the sim cannot act on.
type usageError struct{ error }

func newRoot(out io.Writer) *cobra.Command {
	dir := os.Getenv("KVSYNC_SIM_DIR")
	if dir == "" {
		dir = "_sim"
	}
	root := &cobra.Command{
		Use:           "kvsync-sim",
		Short:         "Run the Secret Store extension's world on this machine and break it on purpose",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	root.PersistentFlags().StringVar(&dir, "dir", dir, "Directory of the sim's kubeconfig, env and state ($KVSYNC_SIM_DIR)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newUp(out, &dir), newSecret(out, &dir), newIdentity(out, &dir), newFault(out, &dir), newPoll(out, &dir))
	return root
}

func newUp(out io.Writer, dir *string) *cobra.Command {
	o := upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start the API server, fakevault, the provider and the controller, and seed the demo world; Ctrl-C stops them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.poll < time.Second {
				return usageError{fmt.Errorf("--poll must be at least 1s, got %s", o.poll)}
			}
			o.dir = *dir
			return up(cmd.Context(), o, out)
		},
	}
	cmd.Flags().StringVar(&o.moduleRoot, "module-root", ".", "The kvsync module to build the binaries from")
	cmd.Flags().DurationVar(&o.poll, "poll", 30*time.Second, "The controller's rotation poll interval")
	return cmd
}

// simState reads the running sim's state, or says how to start one.
func simState(dir string) (state, admin, error) {
	st, err := readState(dir)
	if err != nil {
		return st, admin{}, err
	}
	return st, newAdmin(st.AdminURL), nil
}
