package troubleshoot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newLinter(t testing.TB) *Linter {
	t.Helper()
	l, err := NewLinter()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLintAcceptsTheExamples keeps the shipped examples valid.
func TestLintAcceptsTheExamples(t *testing.T) {
	l := newLinter(t)
	files, _ := filepath.Glob("../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	var all []byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, data...), "\n---\n"...)
	}
	if ps := l.Lint("examples", all); len(ps) > 0 {
		t.Errorf("the examples have problems: %v", ps)
	}
}

// TestLintRejectsEveryBadManifestPointingAtTheField runs the corpus of bad
// manifests in testdata/lint: each file's first line says the field and the
// message Lint must report.
func TestLintRejectsEveryBadManifestPointingAtTheField(t *testing.T) {
	l := newLinter(t)
	files, _ := filepath.Glob("testdata/lint/*.yaml")
	if len(files) < 15 {
		t.Fatalf("%d bad manifests, want at least 15", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			want, ok := strings.CutPrefix(first, "# want: ")
			if !ok {
				t.Fatalf("the first line must be '# want: <field> | <message>', got %q", first)
			}
			fieldPath, msg, _ := strings.Cut(want, " | ")
			problems := l.Lint(file, data)
			for _, p := range problems {
				if p.Field == strings.TrimSpace(fieldPath) && strings.Contains(p.Message, msg) {
					return
				}
			}
			t.Errorf("want a problem at %q containing %q, got %v", fieldPath, msg, problems)
		})
	}
}

func TestLintChecksSourcePathsAcrossFiles(t *testing.T) {
	l := newLinter(t)
	data, err := os.ReadFile("testdata/lint/unknown-source-path.yaml")
	if err != nil {
		t.Fatal(err)
	}
	class, sync, _ := strings.Cut(string(data), "\n---\n")
	ps := l.LintFiles([]Input{{File: "class.yaml", Data: []byte(class)}, {File: "sync.yaml", Data: []byte(sync)}})
	if len(ps) != 1 || ps[0].File != "sync.yaml" || ps[0].Field != "spec.secretObject.data[1].sourcePath" {
		t.Errorf("problems %v, want one at sync.yaml's second sourcePath", ps)
	}
}

func TestLintIgnoresOtherKinds(t *testing.T) {
	l := newLinter(t)
	if ps := l.Lint("cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\n")); len(ps) > 0 {
		t.Errorf("a ConfigMap: %v", ps)
	}
}

// FuzzLint feeds Lint arbitrary bytes, starting from the examples and the
// bad corpus: it must never panic (a recovered panic is reported as an
// internal error, which fails here too) nor hang.
func FuzzLint(f *testing.F) {
	for _, pattern := range []string{"../examples/*.yaml", "testdata/lint/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(`{"apiVersion":"secret-sync.x-k8s.io/v1alpha1","kind":"SecretSync","metadata":{"name":"a"},"spec":{"secretObject":{"data":[{}]}}}`))
	l := newLinter(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang is a bug too: the crash makes the fuzzer keep the input.
		timer := time.AfterFunc(10*time.Second, func() { panic("Lint did not return within 10s") })
		defer timer.Stop()
		for _, p := range l.Lint("fuzz.yaml", data) {
			if strings.HasPrefix(p.Message, "internal error") {
				t.Fatalf("Lint panicked: %s", p.Message)
			}
		}
	})
}
