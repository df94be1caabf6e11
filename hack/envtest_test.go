package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvtestCacheKeyIsTheSameInEveryCheckout copies envtest.sh and its
// module to two directories and checks that both name the same cached
// control plane, so that a clone in another place reuses the binaries.
func TestEnvtestCacheKeyIsTheSameInEveryCheckout(t *testing.T) {
	var dirs []string
	for _, root := range []string{t.TempDir(), filepath.Join(t.TempDir(), "elsewhere", "kvsync")} {
		for _, f := range []string{"envtest.sh", "envtest/go.mod", "envtest/go.sum", "envtest/etcd/main.go"} {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(root, "hack", f)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command(filepath.Join(root, "hack", "envtest.sh"), "--dir").Output()
		if err != nil {
			t.Fatalf("envtest.sh --dir: %v", err)
		}
		dir := strings.TrimSpace(string(out))
		if !strings.HasPrefix(dir, root) {
			t.Fatalf("envtest.sh --dir = %s, want a directory under %s", dir, root)
		}
		dirs = append(dirs, filepath.Base(dir))
	}
	if dirs[0] != dirs[1] {
		t.Errorf("two checkouts of the same sources use cache keys %s and %s", dirs[0], dirs[1])
	}
}
