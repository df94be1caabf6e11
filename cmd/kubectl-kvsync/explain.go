package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kvsync/kvsync/troubleshoot"
)

// placeholders fill a fix's commands when no SecretSync is at hand.
var placeholders = troubleshoot.Names{Namespace: "<namespace>", SecretSync: "<name>", SecretProviderClass: "<class>",
	ServiceAccount: "<serviceaccount>", Vault: "<vault>", Object: "<object>", ControllerNamespace: "kvsync-system", ControllerPod: "<controller-pod>"}

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
		Use:   "explain [REASON]",
		Short: "Print a reason's meaning, its causes and their fixes (offline); without REASON, list the reasons",
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

// explain finds a reason by name, ignoring case.
func explain(name string) (explanation, error) {
	for _, r := range troubleshoot.Reasons() {
		if !strings.EqualFold(r.Name, name) {
			continue
		}
		e := explanation{Reason: r}
		for i, s := range e.Fix {
			e.Fix[i] = s.Render(placeholders)
		}
		causeReason := r.Name
		if causeReason == "PartialSync" {
			causeReason = "ProviderError"
		}
		for _, cause := range troubleshoot.Causes() {
			if cause.Reason != causeReason {
				continue
			}
			ce := causeEntry{ID: cause.ID, Summary: cause.Summary}
			for _, s := range cause.Fix {
				ce.Fix = append(ce.Fix, s.Render(placeholders))
			}
			e.Causes = append(e.Causes, ce)
		}
		return e, nil
	}
	var names []string
	for _, r := range troubleshoot.Reasons() {
		names = append(names, r.Name)
	}
	return explanation{}, fmt.Errorf("%q is not a SecretSync reason; the reasons are %s", name, strings.Join(names, ", "))
}

func (c *cli) printExplanation(e explanation) {
	fmt.Fprintf(c.out, "%s\n  %s\n\n  %s\n", c.paint(bold, e.Name), e.Meaning, e.Details)
	if len(e.Fix) > 0 {
		fmt.Fprintf(c.out, "\n%s\n", c.paint(bold, "To investigate"))
		for i, s := range e.Fix {
			printStep(c, i+1, s)
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
