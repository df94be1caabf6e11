package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kvsync/kvsync/conformance"
)

func TestRenderTakesHelmStyleValues(t *testing.T) {
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("rotationPollIntervalInSeconds: 60\njitterSeconds: 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"render", "-f", values, "--set", "rotationPollIntervalInSeconds=120"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--rotation-poll-interval-in-seconds=120", "--jitter-seconds=5", "kind: ValidatingAdmissionPolicy", "kind: Namespace"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rendered output lacks %q", want)
		}
	}
}

func TestHelpListsTheCommandsAndEveryFlag(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"render", "--help"}, {"apply", "-h"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err != nil {
			t.Errorf("%v: %v", args, err)
			continue
		}
		for _, want := range []string{"render", "apply", "generate", "-set", "-f ", "-kustomize", "-kubeconfig", "-release", "-namespace", "-dir"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v: the help lacks %q:\n%s", args, want, out.String())
			}
		}
	}
}

func TestBadInputIsAClearError(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"install"}, `unknown command "install"`},
		{[]string{"render", "--set", "jitterSeconds=-3"}, "jitterSeconds"},
		{[]string{"render", "--set", "rotationPollIntervalSeconds=60"}, "rotationPollIntervalInSeconds"},
		{[]string{"render", "-f", "/does/not/exist.yaml"}, "reading values file"},
		{[]string{"render", "--bogus"}, "flag provided but not defined"},
		{[]string{"apply", "--kubeconfig", ""}, "--kubeconfig"},
	}
	for _, tt := range tests {
		t.Setenv("KUBECONFIG", "")
		err := run(context.Background(), tt.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestApplyInstallsTheChartOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest")
	}
	env := &envtest.Environment{}
	if _, err := env.Start(); err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := conformance.WriteAdminKubeconfig(env, "installer", path); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"apply", "--kubeconfig", path, "--namespace", "kvsync-system"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied 16 objects") {
		t.Errorf("apply printed %q", out.String())
	}
	// Applying again is a no-op, not a conflict.
	if err := run(context.Background(), []string{"apply", "--kubeconfig", path}, &out); err != nil {
		t.Fatal(err)
	}
}
