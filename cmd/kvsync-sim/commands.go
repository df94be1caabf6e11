package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/faults"
	"github.com/kvsync/kvsync/troubleshoot"
)

// expect prints what the guide says the next check reports: the cause's
// reason and summary, as `kubectl kvsync doctor` names it. "synced" is a
// success: the reason says whether a value changed.
func expect(out io.Writer, st state, causeID string) {
	if causeID == "synced" {
		fmt.Fprintf(out, "Expect at the next check (within the poll interval, %s; now with kvsync-sim poll): success, %s if a value the SecretSyncs read changed, else %s after a failure (a SecretSync already in sync keeps the reason it shows).\n",
			st.Poll, ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded, ssv1alpha1.ReasonUpdateNoValueChangeSucceeded)
		return
	}
	for _, c := range troubleshoot.Causes() {
		if c.ID != causeID {
			continue
		}
		fmt.Fprintf(out, "Expect at the next check (within the poll interval, %s; now with kvsync-sim poll): %s, cause %s: %s\n",
			st.Poll, c.Reason, c.ID, c.Summary)
		return
	}
	fmt.Fprintf(out, "Expect at the next check (within the poll interval, %s; now with kvsync-sim poll) the reason kubectl kvsync doctor explains.\n", st.Poll)
}

func newSecret(out io.Writer, dir *string) *cobra.Command {
	cmd := &cobra.Command{Use: "secret", Short: "Change a secret of the demo vault"}
	// on is a subcommand that changes secret NAME (args[0]) and prints
	// what the next check of each SecretSync reports.
	on := func(use, short string, do func(a admin, st state, name string, args []string) (change, error)) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.ExactArgs(strings.Count(use, " ")), RunE: func(cmd *cobra.Command, args []string) error {
			st, a, err := simState(*dir)
			if err != nil {
				return err
			}
			ch, err := do(a, st, args[0], args[1:])
			if err != nil {
				return err
			}
			ch.secret = args[0]
			return hint(cmd.Context(), out, st, ch)
		}}
	}
	deleted := func(st state, name string) string {
		return "/vaults/" + url.PathEscape(st.Vault) + "/deletedsecrets/" + url.PathEscape(name)
	}
	cmd.AddCommand(
		on("set NAME VALUE", "Add a version with this value", func(a admin, st state, name string, args []string) (change, error) {
			if err := a.setSecret(st.Vault, name, args[0]); err != nil {
				return change{}, err
			}
			fmt.Fprintf(out, "Secret %s of vault %s has a new version.\n", name, st.Vault)
			return change{newValue: true}, nil
		}),
		on("rotate NAME", "Add a version with a new random value (not printed)", func(a admin, st state, name string, _ []string) (change, error) {
			raw := make([]byte, 16)
			_, _ = rand.Read(raw)
			if err := a.setSecret(st.Vault, name, "sim-"+hex.EncodeToString(raw)); err != nil {
				return change{}, err
			}
			fmt.Fprintf(out, "Secret %s of vault %s was rotated: a new version with a new value.\n", name, st.Vault)
			return change{newValue: true}, nil
		}),
		on("disable NAME", "Disable the newest version", func(a admin, st state, name string, _ []string) (change, error) {
			if err := a.setLatestEnabled(st.Vault, name, false); err != nil {
				return change{}, err
			}
			fmt.Fprintf(out, "The newest version of secret %s of vault %s is disabled: kvsync-sim secret enable %s enables it again.\n", name, st.Vault, name)
			return change{lost: true, cause: "object-disabled"}, nil
		}),
		on("enable NAME", "Enable the newest version again", func(a admin, st state, name string, _ []string) (change, error) {
			if err := a.setLatestEnabled(st.Vault, name, true); err != nil {
				return change{}, err
			}
			fmt.Fprintf(out, "The newest version of secret %s of vault %s is enabled.\n", name, st.Vault)
			return change{}, nil
		}),
		on("delete NAME", "Delete the secret (soft delete: recover or purge it after)", func(a admin, st state, name string, _ []string) (change, error) {
			if err := a.deleteSecret(st.Vault, name); err != nil {
				return change{}, err
			}
			fmt.Fprintf(out, "Secret %s of vault %s is deleted, and recoverable: kvsync-sim secret recover %s brings it back, purge removes it for good.\n", name, st.Vault, name)
			return change{lost: true, cause: "object-not-found"}, nil
		}),
		on("recover NAME", "Recover a deleted secret with its versions", func(a admin, st state, name string, _ []string) (change, error) {
			if err := a.Do(http.MethodPost, deleted(st, name)+"/recover", struct{}{}, nil); err != nil {
				return change{}, err
			}
			fmt.Fprintf(out, "Secret %s of vault %s is recovered.\n", name, st.Vault)
			return change{}, nil
		}),
		on("purge NAME", "Remove a deleted secret for good, so that its name can be set again", func(a admin, st state, name string, _ []string) (change, error) {
			if err := a.Do(http.MethodDelete, deleted(st, name), nil, nil); err != nil {
				return change{}, err
			}
			fmt.Fprintf(out, "Secret %s of vault %s is purged.\n", name, st.Vault)
			return change{lost: true, cause: "object-not-found"}, nil
		}),
	)
	return cmd
}

// faultCauses are the causes the guide names for the faults whose outcome
// the sim can tell in advance; the others are left to the doctor.
var faultCauses = map[faults.Kind]string{
	faults.DNSNXDomain:           "vault-name-not-resolved",
	faults.DNSServFail:           "vault-name-not-resolved",
	faults.DNSTimeout:            "vault-name-not-resolved",
	faults.VaultThrottle:         "vault-throttled",
	faults.TransportRefused:      "vault-connection-refused",
	faults.TransportTLSUntrusted: "tls-intercepted",
	faults.TransportTLSWrongName: "tls-intercepted",
	faults.TransportBlackhole:    "vault-unreachable",
	faults.IdentityError:         "identity-exchange-failed",
	faults.ProviderMalformed:     "provider-response-invalid",
	faults.ProviderOversized:     "provider-response-invalid",
}

// injectors are the admin APIs of the sim's fault injectors: fakevault's,
// and the one between the controller and the provider, which takes the
// provider.* faults.
func injectors(st state, a admin) (vault, provider admin) {
	return a, newAdmin(st.ProviderFaultsURL)
}

func newFault(out io.Writer, dir *string) *cobra.Command {
	cmd := &cobra.Command{Use: "fault", Short: "Add, list and clear faults of the faults catalogue (docs/faults.md)"}
	cmd.AddCommand(newFaultAdd(out, dir), newFaultList(out, dir), newFaultClear(out, dir))
	return cmd
}

// faultAddFlags are the flags of fault add: the fault they describe, the
// durations that complete it, and the file that gives the whole fault
// instead.
type faultAddFlags struct {
	fault                       faults.Fault
	retryAfter, latency, jitter time.Duration
	file                        string
}

func newFaultAdd(out io.Writer, dir *string) *cobra.Command {
	var fl faultAddFlags
	add := &cobra.Command{
		Use:   "add KIND | add -f FILE",
		Short: "Add a fault of the catalogue, scoped to the demo vault unless --vault says otherwise",
		Long: "add adds a fault of the catalogue (docs/faults.md) from its kind and flags, or any fault, every field of it, " +
			"from a YAML or JSON file (-f) as the scenarios write them.",
		Args: func(_ *cobra.Command, args []string) error {
			if (fl.file == "") != (len(args) == 1) {
				return usageError{fmt.Errorf("give a fault kind, or -f FILE, not both")}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error { return addFault(out, *dir, &fl, args) },
	}
	f := &fl.fault
	add.Flags().StringVar(&f.Name, "name", "", "Name of the fault (default: its kind)")
	add.Flags().StringVar(&f.Scope.Vault, "vault", "", "Vault the fault applies to (default: the demo vault)")
	add.Flags().StringVar(&f.Scope.Object, "object", "", "Vault object the fault applies to")
	add.Flags().StringVar(&f.Scope.Namespace, "namespace", "", "Namespace the fault applies to")
	add.Flags().StringVar(&f.Scope.Identity, "identity", "", "Client ID the fault applies to (identity and vault faults)")
	add.Flags().IntVar(&f.Size, "size", 0, "Response size of provider.oversized, in bytes")
	add.Flags().StringVarP(&fl.file, "file", "f", "", "A fault in YAML or JSON, every field of the catalogue")
	add.Flags().IntVar(&f.Status, "status", 0, "HTTP status of vault.error and identity.unavailable")
	add.Flags().StringVar(&f.Code, "code", "", "Key Vault error code of vault.error, e.g. Forbidden")
	add.Flags().StringVar(&f.InnerCode, "inner-code", "", "Key Vault inner error code of vault.error, e.g. ForbiddenByFirewall")
	add.Flags().IntVar(&f.AADSTS, "aadsts", 0, "Entra ID error of identity.aadsts, e.g. 70021")
	add.Flags().DurationVar(&fl.retryAfter, "retry-after", 0, "Retry-After of vault.throttle")
	add.Flags().DurationVar(&fl.latency, "latency", 0, "Delay of transport.latency")
	add.Flags().DurationVar(&fl.jitter, "jitter", 0, "Random extra delay of transport.latency")
	return add
}

// addFault adds the fault of the flags, of kind args[0], or the one of the
// file fl.file names, to the injector of its layer, closes the fake's
// client connections so that clients dial again through it, and prints
// what the next check should report. A fault of a vault layer without a
// vault is scoped to the demo vault.
func addFault(out io.Writer, dir string, fl *faultAddFlags, args []string) error {
	f := &fl.fault
	if fl.file != "" {
		raw, err := os.ReadFile(fl.file)
		if err != nil {
			return err
		}
		if err := yaml.UnmarshalStrict(raw, f); err != nil {
			return usageError{fmt.Errorf("%s is not a fault: %w", fl.file, err)}
		}
		args = []string{string(f.Kind)}
	}
	st, a, err := simState(dir)
	if err != nil {
		return err
	}
	f.Kind = faults.Kind(args[0])
	if f.Name == "" {
		f.Name = strings.ReplaceAll(args[0], ".", "-")
	}
	vault, provider := injectors(st, a)
	target := vault
	switch f.Kind.Layer() {
	case "provider":
		target = provider
	case "identity", "cluster":
	default:
		if f.Scope.Vault == "" {
			f.Scope.Vault = st.Vault
		}
	}
	if fl.file == "" {
		f.RetryAfter, f.Latency, f.Jitter = faults.Duration(fl.retryAfter), faults.Duration(fl.latency), faults.Duration(fl.jitter)
	}
	if err := target.Do(http.MethodPost, "/faults", *f, nil); err != nil {
		return err
	}
	if err := a.Do(http.MethodPost, "/connections/close", nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(out, "Fault %s (%s) is active; clear it with kvsync-sim fault clear %s.\n", f.Name, f.Kind, f.Name)
	if f.Kind.Layer() == "identity" {
		// The provider keeps each identity's vault token until shortly
		// before it expires: on a cluster, an identity fault bites only
		// then (within the token's lifetime, up to 24 h).
		if err := restartProvider(context.Background(), st); err != nil {
			return err
		}
		fmt.Fprintln(out, "The provider was restarted, as a rollout of its pod would, so that the next check asks Entra ID for a token: "+
			"on a cluster the provider keeps each identity's vault token until shortly before it expires, and an identity fault bites only then.")
	}
	expect(out, st, faultCause(*f))
	return nil
}

// faultCause is the cause the guide names for fault f, or "" when the sim
// cannot tell it in advance.
func faultCause(f faults.Fault) string {
	switch {
	case f.Kind == faults.VaultError && f.InnerCode == "ForbiddenByFirewall":
		return "vault-firewall"
	case f.Kind == faults.IdentityError && slices.Contains([]int{70021, 700211, 700213}, f.AADSTS):
		return "federated-credential-mismatch"
	case f.Kind == faults.IdentityError && slices.Contains([]int{700016, 90002}, f.AADSTS):
		return "identity-not-found"
	}
	return faultCauses[f.Kind]
}

func newFaultList(out io.Writer, dir *string) *cobra.Command {
	return &cobra.Command{Use: "list", Short: "List the active faults", Args: cobra.NoArgs, RunE: func(_ *cobra.Command, _ []string) error {
		st, a, err := simState(*dir)
		if err != nil {
			return err
		}
		vault, provider := injectors(st, a)
		var active []faults.Fault
		for _, inj := range []admin{vault, provider} {
			var some []faults.Fault
			if err := inj.Do(http.MethodGet, "/faults", nil, &some); err != nil {
				return err
			}
			active = append(active, some...)
		}
		if len(active) == 0 {
			fmt.Fprintln(out, "No fault is active.")
			return nil
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tKIND\tVAULT\tOBJECT\tNAMESPACE")
		for _, f := range active {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Scope.Vault, f.Scope.Object, f.Scope.Namespace)
		}
		return w.Flush()
	}}
}

func newFaultClear(out io.Writer, dir *string) *cobra.Command {
	return &cobra.Command{Use: "clear [NAME]", Short: "Clear one fault, or every fault", Args: cobra.MaximumNArgs(1), RunE: func(_ *cobra.Command, args []string) error {
		st, a, err := simState(*dir)
		if err != nil {
			return err
		}
		vault, provider := injectors(st, a)
		if len(args) == 0 {
			for _, inj := range []admin{vault, provider} {
				if err := inj.Do(http.MethodDelete, "/faults", nil, nil); err != nil {
					return err
				}
			}
		} else {
			path := "/faults/" + url.PathEscape(args[0])
			// The fault is in one of the two injectors.
			if perr := provider.Do(http.MethodDelete, path, nil, nil); perr != nil {
				if err := vault.Do(http.MethodDelete, path, nil, nil); err != nil {
					return err
				}
			}
		}
		if len(args) == 1 {
			fmt.Fprintf(out, "Fault %s is cleared.\n", args[0])
		} else {
			fmt.Fprintln(out, "Every fault is cleared.")
		}
		expect(out, st, "synced")
		return nil
	}}
}

// identityHint prints what the next checks report with the identity's
// roles as the vault now has them.
func identityHint(ctx context.Context, out io.Writer, st state, a admin) error {
	var all []keyvault.RoleAssignment
	if err := a.Do(http.MethodGet, "/vaults/"+url.PathEscape(st.Vault)+"/roleassignments", nil, &all); err != nil {
		return err
	}
	ch := change{identity: true}
	for _, ra := range all {
		if strings.EqualFold(ra.PrincipalID, st.ClientID) {
			ch.roles = append(ch.roles, ra.Role)
		}
	}
	return hint(ctx, out, st, ch)
}

func newIdentity(out io.Writer, dir *string) *cobra.Command {
	cmd := &cobra.Command{Use: "identity", Short: "Change the demo identity's access to the demo vault"}
	grant := &cobra.Command{
		Use:   "grant [ROLE]",
		Short: "Assign the identity a role on the vault (default Key Vault Certificate User)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, a, err := simState(*dir)
			if err != nil {
				return err
			}
			role := keyvault.RoleCertificateUser
			if len(args) == 1 {
				role = args[0]
			}
			if err := a.Do(http.MethodPost, "/vaults/"+url.PathEscape(st.Vault)+"/roleassignments",
				keyvault.RoleAssignment{PrincipalID: st.ClientID, Role: role}, nil); err != nil {
				return err
			}
			fmt.Fprintf(out, "Identity %s has role %q on vault %s.\n", st.ClientID, role, st.Vault)
			if reads, known := keyvault.RoleReads(role, "secret"); known && !reads {
				fmt.Fprintf(out, "%q does not let it read secrets' values (a control-plane or metadata role): it needs Key Vault Secrets User, or Key Vault Certificate User for certificates.\n", role)
			}
			return identityHint(cmd.Context(), out, st, a)
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke",
		Short: "Remove every role the identity has on the vault",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, a, err := simState(*dir)
			if err != nil {
				return err
			}
			if err := a.Do(http.MethodDelete, "/vaults/"+url.PathEscape(st.Vault)+"/roleassignments/"+url.PathEscape(st.ClientID), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(out, "Identity %s has no role on vault %s any more.\n", st.ClientID, st.Vault)
			return identityHint(cmd.Context(), out, st, a)
		},
	}
	cmd.AddCommand(grant, revoke)
	return cmd
}
