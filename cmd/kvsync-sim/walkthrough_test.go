package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// step is one command of the walkthrough in docs/sim.md and what its
// output must hold.
type step struct {
	// line is the command's line in the document.
	line int
	// args is the command line, split as a shell would.
	args []string
	// want are rows of the output: each fragment of a row must be on one
	// line of the output.
	want [][]string
}

// columns splits an expected output row at runs of two or more spaces.
var columns = regexp.MustCompile(`\s{2,}`)

// readWalkthrough reads the commands of the "## Walkthrough" section of the
// document at path: every line of its sh blocks is a command, except
// "# " lines, which are rows its output must hold; a command's trailing
// "  # cause ID" comment must appear in its output too.
func readWalkthrough(path string) ([]step, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []step
	in, block, pending := false, false, ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Walkthrough"
			continue
		case !in:
			continue
		case strings.HasPrefix(line, "```"):
			block = !block && strings.TrimPrefix(line, "```") == "sh"
			continue
		case !block:
			continue
		}
		line = strings.TrimSpace(line)
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "# "):
			if len(steps) == 0 {
				return nil, fmt.Errorf("%s:%d: an output row before any command", path, n)
			}
			last := &steps[len(steps)-1]
			last.want = append(last.want, columns.Split(strings.TrimPrefix(line, "# "), -1))
		case strings.HasSuffix(line, `\`):
			pending = strings.TrimSuffix(line, `\`)
		default:
			s := step{line: n}
			if cmd, comment, ok := strings.Cut(line, "  # "); ok {
				line = cmd
				if strings.HasPrefix(comment, "cause ") {
					s.want = append(s.want, []string{strings.Fields(comment)[0] + " " + strings.Fields(comment)[1]})
				}
			}
			if s.args, err = splitShell(line); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
			steps = append(steps, s)
		}
	}
	return steps, sc.Err()
}

// splitShell splits a command line into words as a shell does for plain,
// single-quoted and double-quoted words (no expansion).
func splitShell(line string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord, quote := false, rune(0)
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			word.WriteRune(r)
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

func TestTheWalkthroughReadsIntoCommandsAndTheRowsTheyMustPrint(t *testing.T) {
	steps, err := readWalkthrough(filepath.Join("..", "..", "docs", "sim.md"))
	if err != nil {
		t.Fatal(err)
	}
	find := func(prefix string) step {
		t.Helper()
		for _, s := range steps {
			if strings.HasPrefix(strings.Join(s.args, " "), prefix) {
				return s
			}
		}
		t.Fatalf("no command starts with %q", prefix)
		return step{}
	}
	if got := strings.Join(steps[0].args, " "); got != "source _sim/env" {
		t.Errorf("first command %q", got)
	}
	firewall := find("go run ./cmd/kvsync-sim fault add vault.error")
	if want := []string{"go", "run", "./cmd/kvsync-sim", "fault", "add", "vault.error", "--name", "firewall", "--status", "403", "--code", "Forbidden", "--inner-code", "ForbiddenByFirewall"}; !slices.Equal(firewall.args, want) {
		t.Errorf("a command continued on the next line reads %q", firewall.args)
	}
	if !slices.ContainsFunc(firewall.want, func(r []string) bool { return slices.Equal(r, []string{"cause vault-firewall"}) }) {
		t.Errorf("the trailing cause comment is not expected output: %q", firewall.want)
	}
	patch := find("kubectl patch secretproviderclass")
	if got := patch.args[len(patch.args)-1]; got != `[{"op":"remove","path":"/spec/parameters/keyvaultName"}]` {
		t.Errorf("a quoted argument reads %q", got)
	}
	poll := find("go run ./cmd/kvsync-sim poll --wide payments/db")
	if want := []string{"payments", "db", "Update", "False", "PartialSync", `"targetKey":"api-key"`, `"status":"Failed"`, "SecretNotFound"}; !slices.Equal(poll.want[0], want) {
		t.Errorf("an output row reads %q", poll.want[0])
	}
	if !hasRow("payments  db  Create  True  CreateSucceeded  Secret", []string{"db", "Create|Update", "CreateSucceeded|UpdateNoValueChangeSucceeded"}) {
		t.Error("an alternative fragment does not match")
	}
	if _, err := splitShell(`kubectl patch -p '{"a":1}`); err == nil {
		t.Error("an unclosed quote is accepted")
	}
}

func TestBadCommandLinesAreUsageErrorsThatSayWhy(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "fault.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nkind: vault.error\nstatuz: 403\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"fault", "add"}, "a fault kind, or -f FILE"},
		{[]string{"fault", "add", "vault.error", "-f", bad}, "a fault kind, or -f FILE"},
		{[]string{"fault", "add", "-f", bad}, `unknown field "statuz"`},
		{[]string{"poll", "db"}, `"db" is not NAMESPACE/NAME`},
		{[]string{"up", "--poll", "10ms"}, "--poll must be at least 1s"},
	} {
		var out bytes.Buffer
		root := newRoot(&out)
		root.SetArgs(append(tt.args, "--dir", dir))
		err := root.Execute()
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("kvsync-sim %s: %v, want a usage error saying %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
	// With no sim running, a command says how to start one.
	var out bytes.Buffer
	root := newRoot(&out)
	root.SetArgs([]string{"secret", "rotate", "db-password", "--dir", dir})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "start one with make sim") {
		t.Errorf("with no sim: %v", err)
	}
}
