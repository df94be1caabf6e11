package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func newPoll(out io.Writer, dir *string) *cobra.Command {
	var timeout time.Duration
	var wide bool
	cmd := &cobra.Command{
		Use:   "poll [NAMESPACE/NAME]",
		Short: "Check every SecretSync now, as the next poll would, and print the reasons (or one SecretSync's)",
		Long: "poll restarts the controller with SIGTERM, as a rolling update does: a controller checks every SecretSync " +
			"when it starts, as its next poll would, without changing the SecretSyncs. It waits until each has been " +
			"checked and prints their latest conditions.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var only *client.ObjectKey
			if len(args) == 1 {
				ns, name, ok := strings.Cut(args[0], "/")
				if !ok || ns == "" || name == "" {
					return usageError{fmt.Errorf("%q is not NAMESPACE/NAME", args[0])}
				}
				only = &client.ObjectKey{Namespace: ns, Name: name}
			}
			st, _, err := simState(*dir)
			if err != nil {
				return err
			}
			c, err := kubeClient(st.Kubeconfig)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return poll(ctx, st, c, only, wide, out)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "How long to wait for the checks")
	cmd.Flags().BoolVar(&wide, "wide", false, "Print whole messages")
	return cmd
}

// kubeClient is a client of the sim's API server.
func kubeClient(kubeconfig string) (client.Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := ssv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := spcv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// poll restarts the controller, waits until it has checked every
// SecretSync (its kvsync_sync_total counts one per check), and prints the
// latest condition of every SecretSync, or only one.
func poll(ctx context.Context, st state, c client.Client, only *client.ObjectKey, wide bool, out io.Writer) error {
	list := &ssv1alpha1.SecretSyncList{}
	if err := c.List(ctx, list); err != nil {
		return err
	}
	if only != nil && !slices.ContainsFunc(list.Items, func(ss ssv1alpha1.SecretSync) bool { return client.ObjectKeyFromObject(&ss) == *only }) {
		return fmt.Errorf("SecretSync %s does not exist", only)
	}
	if len(list.Items) == 0 {
		fmt.Fprintln(out, "No SecretSync exists: kubectl apply -f examples/ creates some.")
		return nil
	}
	checks := 0
	err := restart(ctx, st.PID, "kvsync-controller", func() bool {
		n, err := syncChecks(st.ControllerMetrics)
		checks = n
		return err == nil && checks >= len(list.Items)
	})
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("the controller did not check every SecretSync in time (%d of %d): see the sim's components.log", checks, len(list.Items))
	}
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAMESPACE\tNAME\tCONDITION\tSTATUS\tREASON\tMESSAGE")
	if err := c.List(ctx, list); err != nil {
		return err
	}
	for _, ss := range list.Items {
		if only != nil && client.ObjectKeyFromObject(&ss) != *only {
			continue
		}
		var cond metav1.Condition
		if n := len(ss.Status.Conditions); n > 0 {
			cond = ss.Status.Conditions[n-1]
		}
		msg := cond.Message
		if r := []rune(msg); len(r) > 100 && !wide {
			msg = string(r[:97]) + "..."
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", ss.Namespace, ss.Name, cond.Type, cond.Status, cond.Reason, msg)
	}
	return w.Flush()
}

// child is a process another started.
type child struct {
	pid int
	// comm is its command's name, cut to 15 bytes by the kernel.
	comm string
}

// children lists the processes whose parent is ppid, from /proc.
func children(ppid int) ([]child, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	var out []child
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		open, end := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(string(raw[end+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(ppid) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw[:open])))
		if err != nil {
			continue
		}
		out = append(out, child{pid: pid, comm: string(raw[open+1 : end])})
	}
	return out, nil
}

// componentPID finds the process of binary name the sim (pid sim) runs.
func componentPID(sim int, name string) (int, error) {
	procs, err := children(sim)
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		if strings.HasPrefix(name, p.comm) {
			return p.pid, nil
		}
	}
	return 0, fmt.Errorf("the sim (pid %d) runs no %s: see its components.log", sim, name)
}

// restart stops the sim's process of binary name with SIGTERM, as a rolling
// update of its pod does, and waits until that instance is gone and ready
// (polled) holds for the one the sim starts in its place; it returns ctx's
// error when ctx ends first.
func restart(ctx context.Context, sim int, name string, ready func() bool) error {
	pid, err := componentPID(sim, name)
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("restarting %s (pid %d): %w", name, pid, err)
	}
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) && ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restartProvider restarts the provider and waits until it answers on its
// socket again (its /healthz asks it for its Version there).
func restartProvider(ctx context.Context, st state) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := restart(ctx, st.PID, "kvsync-provider", func() bool {
		resp, err := http.Get(st.ProviderHealth)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("the provider did not answer again within a minute of its restart: see the sim's components.log")
	}
	return err
}

// syncChecks sums kvsync_sync_total, the checks the controller made since
// it started.
func syncChecks(metricsURL string) (int, error) {
	resp, err := http.Get(metricsURL)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "kvsync_sync_total{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("reading %q: %w", line, err)
		}
		total += v
	}
	return int(total), nil
}
