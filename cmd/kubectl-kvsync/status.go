package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/troubleshoot"
)

// statusEntry is one SecretSync in `status -o json|yaml`.
type statusEntry struct {
	Namespace string                `json:"namespace"`
	Name      string                `json:"name"`
	Reason    string                `json:"reason"`
	Success   bool                  `json:"success"`
	LastCheck *time.Time            `json:"lastCheck,omitempty"`
	LastSync  *time.Time            `json:"lastSync,omitempty"`
	Cause     troubleshoot.CauseRef `json:"cause"`
	Items     []troubleshoot.Item   `json:"items,omitempty"`
	Next      string                `json:"next,omitempty"`
}

func (c *cli) statusCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "status [-n NAMESPACE | -A]",
		Short: "List SecretSyncs with their reason, last check, time in sync, failed items and next step",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			cl, kube, err := c.client()
			if err != nil {
				return &exitError{2, err}
			}
			var opts []client.ListOption
			ns := ""
			if !all {
				if ns, err = c.namespace(); err != nil {
					return &exitError{2, err}
				}
				opts = append(opts, client.InNamespace(ns))
			}
			list := &ssv1alpha1.SecretSyncList{}
			if err := cl.List(cmd.Context(), list, opts...); err != nil {
				return &exitError{2, fmt.Errorf("listing SecretSyncs: %w", err)}
			}
			checks, cerr := c.lastChecks(cmd.Context(), kube)
			entries := statusEntries(list.Items, checks)
			if note := lastChecksNote(checks, cerr, c.metricsSource(), entryNames(entries)); note != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "kubectl-kvsync: %s\n", note)
			}
			if c.output != "" {
				return c.encode(entries)
			}
			c.printStatus(entries, all, ns)
			for _, e := range entries {
				if !e.Success {
					return &exitError{1, fmt.Errorf("%d of %d SecretSync(s) not in sync", unhealthy(entries), len(entries))}
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "List the SecretSyncs of every namespace")
	return cmd
}

// statusEntries describes items, with their last checks as the controller's
// metrics give them (checks may be nil).
func statusEntries(items []ssv1alpha1.SecretSync, checks map[types.NamespacedName]time.Time) []statusEntry {
	entries := make([]statusEntry, 0, len(items))
	for i := range items {
		f := troubleshoot.FactsOf(&items[i])
		d := troubleshoot.Diagnose(f)
		e := statusEntry{Namespace: d.Namespace, Name: d.SecretSync, Reason: d.Reason, Success: d.Success, LastSync: f.LastSync,
			Cause: d.Cause, Items: d.Items}
		if t, ok := checks[types.NamespacedName{Namespace: d.Namespace, Name: d.SecretSync}]; ok {
			e.LastCheck = &t
		}
		if len(d.Next) > 0 && !d.Success {
			e.Next = d.Next[0].Text
			if d.Next[0].Command != "" {
				e.Next += ": " + d.Next[0].Command
			}
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Namespace != entries[j].Namespace {
			return entries[i].Namespace < entries[j].Namespace
		}
		return entries[i].Name < entries[j].Name
	})
	return entries
}

func entryNames(entries []statusEntry) []types.NamespacedName {
	names := make([]types.NamespacedName, 0, len(entries))
	for _, e := range entries {
		names = append(names, types.NamespacedName{Namespace: e.Namespace, Name: e.Name})
	}
	return names
}

func unhealthy(entries []statusEntry) int {
	n := 0
	for _, e := range entries {
		if !e.Success {
			n++
		}
	}
	return n
}

func (c *cli) printStatus(entries []statusEntry, all bool, ns string) {
	if len(entries) == 0 {
		if all {
			fmt.Fprintln(c.out, "No SecretSyncs found.")
		} else {
			fmt.Fprintf(c.out, "No SecretSyncs found in namespace %s.\n", ns)
		}
		return
	}
	now := time.Now()
	w := table(c.out)
	if all {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tREASON\tLAST CHECK\tIN SYNC SINCE\tCAUSE\tNEXT STEP")
	for _, e := range entries {
		if all {
			fmt.Fprintf(w, "%s\t", e.Namespace)
		}
		reason := e.Reason
		if reason == "" {
			reason = "<none>"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, c.reason(troubleshoot.Diagnosis{Reason: e.Reason, Success: e.Success}),
			ageOr(e.LastCheck, now, "unknown"), inSyncSince(e, now), e.Cause.ID, oneLine(e.Next, 90))
		for _, it := range e.Items {
			if it.Status != "Failed" {
				continue
			}
			if all {
				fmt.Fprint(w, "\t")
			}
			fmt.Fprintf(w, "  %s\t%s\t\t\t%s\t%s\n", it.TargetKey, c.paint(red, "failed"), it.Cause, oneLine(it.Error, 90))
		}
	}
	_ = w.Flush()
}

// inSyncSince is the IN SYNC SINCE column: the age of
// status.lastSuccessfulSyncTime while the latest check succeeded, "-" while
// it failed (the Secret keeps what it last held).
func inSyncSince(e statusEntry, now time.Time) string {
	if !e.Success {
		return "-"
	}
	return ageOr(e.LastSync, now, "<never>")
}
