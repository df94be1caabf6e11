package scenarios

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var nameLine = regexp.MustCompile(`(?m)^name: .*$`)

// FuzzParse feeds any bytes to the scenario parser: it never panics, and a
// scenario it accepts names a documented reason.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("*.yaml")
	for _, file := range files {
		if raw, err := os.ReadFile(file); err == nil {
			// The parser wants the name to be the file's: every seed is
			// fuzz.yaml.
			f.Add(nameLine.ReplaceAll(raw, []byte("name: fuzz")))
		}
	}
	f.Add([]byte("name: fuzz\nsteps: [{}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		if s.Documented() == "" {
			t.Fatalf("accepted scenario %q documents no reason", s.Name)
		}
	})
}
