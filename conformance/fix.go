package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/scenarios"
	"github.com/kvsync/kvsync/troubleshoot"
)

// Manifest placeholders a fix may name: the operator's own files, which
// the suite writes from the scenario's objects.
const (
	secretSyncFile = "<secretsync.yaml>"
	classFile      = "<secretproviderclass.yaml>"
)

// unfilled finds a placeholder an operator would have to fill in.
var unfilled = regexp.MustCompile(`<[a-z][-a-z.]*>`)

// mutatingVerbs are the kubectl commands that change the cluster; a fix's
// other commands (get, describe, logs, events) only look.
var mutatingVerbs = map[string]bool{"apply": true, "create": true, "delete": true, "replace": true, "patch": true, "label": true, "annotate": true}

// azMutatingVerbs are the Azure CLI verbs that change Azure; a fix's other
// az commands (show, list) only look.
var azMutatingVerbs = map[string]bool{"add": true, "create": true, "set": true, "set-attributes": true, "set-policy": true,
	"recover": true, "remove": true, "delete": true, "update": true, "purge": true}

// changes reports whether a fix's command changes something: a kubectl
// command that changes the cluster, or an Azure CLI command that changes
// Azure (its verb is the last word before the first flag).
func changes(command string) bool {
	f := strings.Fields(command)
	switch {
	case len(f) >= 2 && f[0] == "kubectl":
		return mutatingVerbs[f[1]]
	case len(f) >= 2 && f[0] == "az":
		verb := ""
		for _, w := range f[1:] {
			if strings.HasPrefix(w, "-") {
				break
			}
			verb = w
		}
		return azMutatingVerbs[verb]
	}
	return false
}

// notFollowed is a fix the environment cannot follow, and why.
type notFollowed struct{ why string }

func (n notFollowed) Error() string { return "not followed: " + n.why }

// setShell lets Shell run command lines with kubectl on PATH and
// KUBECONFIG set to kubeconfig; it leaves Shell nil when no kubectl is
// found (in KUBEBUILDER_ASSETS, next to envtest's binaries, or on PATH).
func (e *Environment) setShell(kubeconfig string) {
	kubectl, err := assetBinary("kubectl")
	if err != nil {
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			return
		}
	}
	e.Shell = func(ctx context.Context, command string) (string, error) {
		cmd := exec.CommandContext(ctx, "sh", "-c", command)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+filepath.Dir(kubectl)+string(os.PathListSeparator)+os.Getenv("PATH"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
}

// followable says why a followFix step cannot run here, or "".
func (e *Environment) followable() string {
	switch {
	case !e.extended():
		return "the doctor's fixes are kvsync's: they are followed with the extended profile"
	case e.Shell == nil:
		return "no kubectl to follow the doctor's fixes with (KUBEBUILDER_ASSETS or PATH)"
	}
	return ""
}

// followFix asks the doctor (what it reads from the cluster alone) for the
// next steps and follows them as an operator pasting them into a shell:
// every kubectl command that changes the cluster, and every Azure CLI
// command that changes Azure, runs as printed, with the operator's
// manifests written from the scenario (the SecretSync with the step's
// edits). A step that leaves anything else to fill in, or a command that
// fails, fails the step; a fix the environment cannot follow (see
// followable, and AzureCLI) is a notFollowed error, which ends the scenario
// there.
func (r *run) followFix(ctx context.Context, fix scenarios.FollowFix, name string) error {
	if why := r.env.followable(); why != "" {
		return notFollowed{why}
	}
	f, err := troubleshoot.Gather(ctx, troubleshoot.GatherOptions{Client: r.env.Client}, r.ns, name)
	if err != nil {
		return fmt.Errorf("kubectl kvsync doctor: %w", err)
	}
	d := troubleshoot.Diagnose(f)
	dir, err := os.MkdirTemp("", "kvsync-fix-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var ran []string
	for _, step := range d.Next {
		if !changes(step.Command) {
			continue
		}
		run := r.env.Shell
		if azCommand(step.Command) {
			if r.env.AzureCLI == nil {
				return notFollowed{fmt.Sprintf("the doctor's fix for %s, %q, runs the Azure CLI, which does not reach the fake here (install azure-cli; on an existing cluster the suite does not reach the fake's proxy)", d.Cause.ID, step.Command)}
			}
			run = r.env.AzureCLI
		}
		command := step.Command
		for _, m := range []struct {
			placeholder, file string
			object            func() (any, error)
		}{
			{secretSyncFile, "secretsync.yaml", func() (any, error) { return r.secretSyncManifest(fix), nil }},
			{classFile, "secretproviderclass.yaml", r.classManifest},
		} {
			if !strings.Contains(command, m.placeholder) {
				continue
			}
			obj, err := m.object()
			if err != nil {
				return err
			}
			path, err := r.writeManifest(dir, m.file, obj)
			if err != nil {
				return err
			}
			command = strings.ReplaceAll(command, m.placeholder, path)
		}
		if m := unfilled.FindString(command); m != "" {
			return fmt.Errorf("the doctor's fix for %s, %q, leaves %s for the operator to fill in", d.Cause.ID, step.Command, m)
		}
		out, err := run(ctx, command)
		if err != nil {
			return fmt.Errorf("the doctor's fix for %s, %q, failed as printed: %w: %s", d.Cause.ID, step.Command, err, strings.TrimSpace(out))
		}
		ran = append(ran, step.Command)
	}
	if len(ran) == 0 {
		return fmt.Errorf("the doctor's fix for %s changes nothing that can be followed: %+v", d.Cause.ID, d.Next)
	}
	r.res.Fix = d.Cause.ID + ": " + strings.Join(ran, "; ")
	return nil
}

// secretSyncManifest is the operator's SecretSync file: the scenario's
// SecretSync as created, with the edits of fix.
func (r *run) secretSyncManifest(fix scenarios.FollowFix) *ssv1alpha1.SecretSync {
	ss := r.secretSyncObject()
	if fix.Type != "" {
		ss.Spec.SecretObject.Type = fix.Type
	}
	if fix.Data != nil {
		ss.Spec.SecretObject.Data = secretObjectData(fix.Data)
	}
	ss.APIVersion, ss.Kind = ssv1alpha1.GroupVersion.String(), "SecretSync"
	return ss
}

// classManifest is the operator's SecretProviderClass file: the scenario's
// class as created.
func (r *run) classManifest() (any, error) {
	class, err := r.classObject()
	if err != nil {
		return nil, err
	}
	class.APIVersion, class.Kind = spcv1.GroupVersion.String(), "SecretProviderClass"
	return class, nil
}

func (r *run) writeManifest(dir, file string, obj any) (string, error) {
	raw, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, file)
	return path, os.WriteFile(path, raw, 0o600)
}
