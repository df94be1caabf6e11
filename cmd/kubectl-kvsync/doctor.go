package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kvsync/kvsync/troubleshoot"
)

func (c *cli) doctorCommand() *cobra.Command {
	var (
		network             bool
		controllerNamespace string
		probeTimeout        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor NAME",
		Short: "Name the cause of a SecretSync's reason and check its class, ServiceAccount, Secret, network and provider",
		Long: `doctor explains the SecretSync's latest reason in the guide's terms and names its cause,
from the condition's message and live checks: the SecretProviderClass exists and its
parameters parse, the ServiceAccount exists, who owns a Secret of the same name, the vault's
name resolves (to a public or a private address) and answers TCP and TLS on 443, Entra ID
answers, the provider container's recent failures and the SecretSync's Events. The network
checks run from this machine: where the cluster resolves or routes differently (private DNS
zones, egress gateways), run them from a pod or pass --network=false.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			cl, kube, err := c.client()
			if err != nil {
				return &exitError{2, err}
			}
			ns, err := c.namespace()
			if err != nil {
				return &exitError{2, err}
			}
			checks, cerr := c.lastChecks(cmd.Context(), kube)
			f, err := troubleshoot.Gather(cmd.Context(), troubleshoot.GatherOptions{Client: cl, Logs: kube,
				ControllerNamespace: controllerNamespace, Network: network, From: "this machine", ProbeTimeout: probeTimeout,
				LastChecks: checks}, ns, args[0])
			if err != nil {
				return &exitError{2, err}
			}
			if f.Found {
				if note := lastChecksNote(checks, cerr, c.metricsSource(), []types.NamespacedName{{Namespace: ns, Name: args[0]}}); note != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "kubectl-kvsync: %s\n", note)
				}
			}
			d := troubleshoot.Diagnose(f)
			if c.output != "" {
				if err := c.encode(d); err != nil {
					return err
				}
			} else {
				c.printDiagnosis(d)
			}
			if !d.Success {
				return &exitError{1, fmt.Errorf("SecretSync %s/%s: %s", ns, args[0], d.Cause.ID)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&network, "network", true, "Check DNS, TCP and TLS to the vault and Entra ID from this machine")
	cmd.Flags().StringVar(&controllerNamespace, "controller-namespace", "kvsync-system", "Namespace of the controller's pod, whose provider-azure log is read")
	cmd.Flags().DurationVar(&probeTimeout, "probe-timeout", 5*time.Second, "Deadline of each network check")
	return cmd
}

func (c *cli) printDiagnosis(d troubleshoot.Diagnosis) {
	fmt.Fprintf(c.out, "%s %s/%s\n", c.paint(bold, "SecretSync"), d.Namespace, d.SecretSync)
	w := table(c.out)
	if d.Reason != "" {
		fmt.Fprintf(w, "  Reason\t%s: %s\n", c.reason(d), d.Meaning)
	}
	if d.Reason != "" {
		now := time.Now()
		fmt.Fprintf(w, "  Last check\t%s\n", ago(d.LastCheck, now, "unknown"))
		if d.Success {
			fmt.Fprintf(w, "  In sync since\t%s\n", ago(d.LastSync, now, "<never>"))
		}
	}
	if d.Message != "" && len(d.Items) == 0 {
		fmt.Fprintf(w, "  Message\t%s\n", oneLine(d.Message, 400))
	}
	fmt.Fprintf(w, "  Cause\t%s: %s\n", c.paint(bold, d.Cause.ID), d.Cause.Summary)
	_ = w.Flush()
	if len(d.Items) > 0 {
		fmt.Fprintf(c.out, "\n%s\n", c.paint(bold, "Items"))
		w = table(c.out)
		for _, it := range d.Items {
			status := c.paint(green, "ok")
			if it.Status == "Failed" {
				status = c.paint(red, "FAIL")
			}
			fmt.Fprintf(w, "  %s\t%s ← %s\t%s\t%s\n", status, it.TargetKey, it.SourcePath, it.Cause, oneLine(it.Error, 200))
		}
		_ = w.Flush()
	}
	if len(d.Checks) > 0 {
		fmt.Fprintf(c.out, "\n%s\n", c.paint(bold, "Checks"))
		w = table(c.out)
		for _, ch := range d.Checks {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", c.result(ch.Result), ch.Name, oneLine(ch.Detail, 300))
		}
		_ = w.Flush()
	}
	if len(d.Next) > 0 {
		fmt.Fprintf(c.out, "\n%s\n", c.paint(bold, "Next steps"))
		for i, s := range d.Next {
			printStep(c, i+1, s)
		}
		if slices.ContainsFunc(d.Next, troubleshoot.Step.ReadsLogs) {
			fmt.Fprintf(c.out, "  %s\n", troubleshoot.GuideNamesNote(d.ControllerNamespace))
		}
	}
}
