package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kvsync/kvsync/troubleshoot"
)

// placeholders fill a fix's commands when no SecretSync is at hand.
var placeholders = troubleshoot.Names{Namespace: "<namespace>", SecretSync: "<name>", SecretProviderClass: "<class>",
	ServiceAccount: "<serviceaccount>", Vault: "<vault>", Object: "<object>", ControllerNamespace: "kvsync-system", ControllerPod: "<controller-pod>",
	ClientID: "<client-id>", TenantID: "<tenant-id>", EgressCIDR: "<egress-cidr>"}

// explanation is `explain REASON -o json|yaml`.
type explanation struct {
	troubleshoot.Reason
	Causes []causeEntry `json:"causes"`
}

type causeEntry struct {
	ID      string              `json:"id"`
	Summary string              `json:"summary"`
	Fix     []troubleshoot.Step `json:"fix,omitempty"`
}

func (c *cli) explainCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "explain [REASON|CAUSE]",
		Short: "Print a reason's meaning, its causes and their fixes, or one cause (a name doctor prints) with its reason (offline); without an argument, list the reasons",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			if len(args) == 0 {
				if c.output != "" {
					return c.encode(troubleshoot.Reasons())
				}
				w := table(c.out)
				fmt.Fprintln(w, "REASON\tMEANING")
				for _, r := range troubleshoot.Reasons() {
					fmt.Fprintf(w, "%s\t%s\n", r.Name, r.Meaning)
				}
				return w.Flush()
			}
			e, err := explain(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			if c.output != "" {
				return c.encode(e)
			}
			c.printExplanation(e)
			return nil
		},
	}
}

// explain finds a reason by name, ignoring case, with its causes; or a
// cause by the name doctor prints, with its reason and that cause alone.
func explain(name string) (explanation, error) {
	for _, r := range troubleshoot.Reasons() {
		if strings.EqualFold(r.Name, name) {
			return explainReason(r, func(troubleshoot.Cause) bool { return true }), nil
		}
	}
	for _, cause := range troubleshoot.Causes() {
		if !strings.EqualFold(cause.ID, name) {
			continue
		}
		r, ok := troubleshoot.LookupReason(cause.Reason)
		if !ok {
			break
		}
		if r.Name == "ProviderError" && cause.ID != "synced" {
			// A provider error of some items, not all, is PartialSync.
			r.Details += " When only some items fail this way, with partial sync on, the reason is PartialSync."
		}
		return explainReason(r, func(c troubleshoot.Cause) bool { return strings.EqualFold(c.ID, name) }), nil
	}
	var names, ids []string
	for _, r := range troubleshoot.Reasons() {
		names = append(names, r.Name)
	}
	for _, c := range troubleshoot.Causes() {
		if !slices.Contains(ids, c.ID) {
			ids = append(ids, c.ID)
		}
	}
	return explanation{}, fmt.Errorf("%q is neither a SecretSync reason nor a cause; the reasons are %s; the causes are %s",
		name, strings.Join(names, ", "), strings.Join(ids, ", "))
}

// explainReason is r with the causes keep selects, their texts filled with
// placeholders.
func explainReason(r troubleshoot.Reason, keep func(troubleshoot.Cause) bool) explanation {
	e := explanation{Reason: r}
	e.Fix = slices.Clone(r.Fix)
	for i, s := range e.Fix {
		e.Fix[i] = s.Render(placeholders)
	}
	causeReason := r.Name
	if causeReason == "PartialSync" {
		causeReason = "ProviderError"
	}
	for _, cause := range troubleshoot.Causes() {
		if cause.Reason != causeReason || !keep(cause) {
			continue
		}
		ce := causeEntry{ID: cause.ID, Summary: placeholders.Fill(cause.Summary)}
		for _, s := range cause.Fix {
			ce.Fix = append(ce.Fix, s.Render(placeholders))
		}
		e.Causes = append(e.Causes, ce)
	}
	return e
}

func (c *cli) printExplanation(e explanation) {
	fmt.Fprintf(c.out, "%s\n  %s\n\n  %s\n", c.paint(bold, e.Name), e.Meaning, e.Details)
	if len(e.Fix) > 0 {
		fmt.Fprintf(c.out, "\n%s\n", c.paint(bold, "To investigate"))
		for i, s := range e.Fix {
			printStep(c, i+1, s)
		}
		if slices.ContainsFunc(e.Fix, troubleshoot.Step.ReadsLogs) {
			fmt.Fprintf(c.out, "  %s\n", troubleshoot.GuideNamesNote(placeholders.ControllerNamespace))
		}
	}
	if len(e.Causes) > 0 && !e.Success {
		fmt.Fprintf(c.out, "\n%s\n", c.paint(bold, "Causes (kubectl kvsync doctor names the one at hand)"))
		for _, cause := range e.Causes {
			fmt.Fprintf(c.out, "  %s: %s\n", c.paint(bold, cause.ID), cause.Summary)
			for _, s := range cause.Fix {
				fmt.Fprintf(c.out, "      - %s\n", s.Text)
				if s.Command != "" {
					fmt.Fprintf(c.out, "        %s\n", s.Command)
				}
			}
		}
	}
}

func printStep(c *cli, n int, s troubleshoot.Step) {
	fmt.Fprintf(c.out, "  %d. %s\n", n, s.Text)
	if s.Command != "" {
		fmt.Fprintf(c.out, "     %s\n", s.Command)
	}
}
