package troubleshoot

import (
	"os"
	"path/filepath"
	"strconv"
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

// TestAProblemPointsAtItsLineInTheFile checks that a problem names the
// file's line of the field, across documents, or of the nearest field the
// document has.
func TestAProblemPointsAtItsLineInTheFile(t *testing.T) {
	l := newLinter(t)
	data := `# two SecretSyncs
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata: {name: good, namespace: payments}
spec:
  serviceAccountName: workload
  secretProviderClassName: kv
  secretObject:
    data: [{sourcePath: a, targetKey: a}]
--- # the second one is bad
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: bad
  namespace: payments
spec:
  serviceAccountName: workload
  secretProviderClassName: kv
  secretObject:
    type: Foo
    labels:
      team name: payments
    data:
      - sourcePath: a
        targetKey: a
      - sourcePath: b
        targetKey: "b!"
---
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSynk
metadata: {name: x}
`
	want := map[string]int{
		"spec.secretObject.type":              20,
		"spec.secretObject.labels[team name]": 22,
		"spec.secretObject.data[1].targetKey": 27,
		"kind":                                30,
	}
	problems := l.Lint("syncs.yaml", []byte(data))
	got := map[string]int{}
	for _, p := range problems {
		got[p.Field] = p.Line
		if p.Line > 0 && !strings.HasPrefix(p.String(), "syncs.yaml:"+strconv.Itoa(p.Line)+" ") {
			t.Errorf("%v does not begin with file:line", p)
		}
	}
	for fieldPath, line := range want {
		if got[fieldPath] != line {
			t.Errorf("%s: line %d, want %d (problems %v)", fieldPath, got[fieldPath], line, problems)
		}
	}
}

func TestDocumentsSplitWhereTheAPIMachineryReaderSplitsThem(t *testing.T) {
	docs := splitDocuments([]byte("a: 1\n---\nb: 2\n--- # c\nc: 3\n--- d: 4\n"))
	if len(docs) != 3 || docs[0].line != 1 || docs[1].line != 3 || docs[2].line != 5 || !strings.Contains(string(docs[2].data), "--- d: 4") {
		t.Errorf("documents %+v", docs)
	}
	if docs := splitDocuments([]byte("\n\n{\"a\": 1}\n")); len(docs) != 1 || docs[0].line != 3 {
		t.Errorf("a JSON file: %+v", docs)
	}
	if got := fieldTokens("spec.secretObject.labels[app.kubernetes.io/name]"); strings.Join(got, "|") != "spec|secretObject|labels|app.kubernetes.io/name" {
		t.Errorf("fieldTokens = %q", got)
	}
}
