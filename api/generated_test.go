// Package api_test checks that the files generated from the API types are
// the ones checked in.
package api_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// generated lists the checked-in generated trees, relative to the module root.
var generated = []string{
	"deploy/crds",
	"deploy/rbac/role.yaml",
	"deploy/chart/kvsync/crds",
	// the kustomize files generated from the chart (deploy.KustomizeFiles)
	"deploy/manager/deployment.yaml",
	"deploy/manager/service.yaml",
	"deploy/rbac/service_account.yaml",
	"deploy/rbac/role_binding.yaml",
	"deploy/rbac/leader_election_role.yaml",
	"deploy/rbac/leader_election_role_binding.yaml",
	"deploy/policies/controller-secrets.yaml",
	"deploy/policies/controller-tokens.yaml",
	"deploy/policies/secretsync-type.yaml",
	"api/secretsync/v1alpha1/zz_generated.deepcopy.go",
	"api/secretsstore/v1/zz_generated.deepcopy.go",
}

// TestGeneratedFilesAreFresh regenerates CRDs, RBAC and deepcopy functions in
// a copy of the module and fails when any differs from the checked-in file:
// run `make generate manifests` and commit the result. The kustomize
// trees under deploy/ are generated from the Helm chart.
func TestGeneratedFilesAreFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs controller-gen")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, p := range []string{"go.mod", "go.sum", "Makefile", "hack/boilerplate.go.txt", "hack/deploy", "api", "controller", "deploy"} {
		copyTree(t, filepath.Join(root, p), filepath.Join(work, p))
	}
	for _, p := range generated {
		if err := os.RemoveAll(filepath.Join(work, p)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("make", "generate", "manifests")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make generate manifests: %v\n%s", err, out)
	}
	for _, p := range generated {
		compareTree(t, filepath.Join(root, p), filepath.Join(work, p), p)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// compareTree fails for every file that differs between the checked-in tree
// want and the regenerated tree got, or exists in only one of them.
func compareTree(t *testing.T, want, got, name string) {
	t.Helper()
	files := map[string]bool{}
	for _, dir := range []string{want, got} {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(dir, path)
				files[rel] = true
			}
			return nil
		})
	}
	for rel := range files {
		if filepath.Base(rel) == "kustomization.yaml" || filepath.Ext(rel) == ".go" {
			continue // written by hand beside the generated files
		}
		w, werr := os.ReadFile(filepath.Join(want, rel))
		g, gerr := os.ReadFile(filepath.Join(got, rel))
		path := strings.TrimSuffix(filepath.Join(name, rel), "/.")
		switch {
		case werr != nil:
			t.Errorf("%s is generated but not checked in: run `make generate manifests`", path)
		case gerr != nil:
			t.Errorf("%s is checked in but no longer generated: delete it", path)
		case !bytes.Equal(w, g):
			t.Errorf("%s is stale: run `make generate manifests` and commit the result", path)
		}
	}
}
