package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/scenarios"
	"github.com/kvsync/kvsync/troubleshoot"
)

// Report is the typed outcome of a conformance run.
type Report struct {
	Implementation string            `json:"implementation"`
	Mode           string            `json:"mode"`
	Versions       map[string]string `json:"versions"`
	Started        time.Time         `json:"started"`
	Duration       time.Duration     `json:"duration"`
	Summary        string            `json:"summary"`
	Reasons        []ReasonResult    `json:"reasons"`
	Scenarios      []Result          `json:"scenarios"`
}

// ReasonResult is the outcome of one documented reason: Passed when every
// scenario expecting it passed, Failed when one failed, Missing when none
// expects it.
type ReasonResult struct {
	Reason    string   `json:"reason"`
	Meaning   string   `json:"meaning"`
	Scenarios []string `json:"scenarios"`
	Result    string   `json:"result"`
}

// NewReport builds the report of results.
func NewReport(mode string, started time.Time, results []Result) Report {
	r := Report{Implementation: "kvsync", Mode: mode, Started: started, Duration: time.Since(started).Round(time.Second),
		Versions: map[string]string{"go": runtime.Version(), "kubernetes": "v1.37.2 (envtest)"}, Scenarios: results}
	passed, skipped := 0, 0
	for _, res := range results {
		switch {
		case res.Passed:
			passed++
		case res.Skipped != "":
			skipped++
		}
	}
	covered := 0
	for _, reason := range scenarios.Reasons {
		doc, _ := troubleshoot.LookupReason(reason)
		rr := ReasonResult{Reason: reason, Meaning: doc.Meaning, Result: "Missing"}
		for _, res := range results {
			if !slices.Contains(res.Reasons, reason) {
				continue
			}
			rr.Scenarios = append(rr.Scenarios, res.Scenario)
			switch {
			case res.Skipped != "":
				if rr.Result == "Missing" {
					rr.Result = "Skipped"
				}
			case !res.Passed:
				rr.Result = "Failed"
			case rr.Result == "Missing" || rr.Result == "Skipped":
				rr.Result = "Passed"
			}
		}
		if rr.Result == "Passed" {
			covered++
		}
		r.Reasons = append(r.Reasons, rr)
	}
	r.Summary = fmt.Sprintf("%s: %d/%d scenarios passed, %d skipped, %d/%d reasons covered", mode, passed, len(results)-skipped, skipped, covered, len(scenarios.Reasons))
	return r
}

// Uncovered returns the reasons without a passing scenario, except those
// whose only scenarios this mode skips for a stated reason.
func (r Report) Uncovered() []string {
	var out []string
	for _, rr := range r.Reasons {
		if rr.Result != "Passed" && rr.Result != "Skipped" {
			out = append(out, rr.Reason+" ("+rr.Result+")")
		}
	}
	return out
}

// Markdown renders the guide's table: reason, meaning, scenarios, result.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kvsync conformance\n\n%s\n\n", r.Summary)
	b.WriteString("| SecretSync status reason | Meaning | Scenarios | Result |\n|---|---|---|---|\n")
	for _, rr := range r.Reasons {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", rr.Reason, rr.Meaning, strings.Join(rr.Scenarios, ", "), rr.Result)
	}
	b.WriteString("\n| Scenario | Labels | Doctor | Result | Duration |\n|---|---|---|---|---|\n")
	for _, s := range r.Scenarios {
		result := "Passed"
		switch {
		case s.Skipped != "":
			result = "Skipped: " + s.Skipped
		case !s.Passed:
			result = "Failed: " + strings.ReplaceAll(s.Failure, "|", "\\|")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Scenario, strings.Join(s.Labels, " "), s.Doctor, result, s.Duration)
	}
	return b.String()
}

// Write writes report.yaml and report.md into dir.
func (r Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out, err := yaml.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.yaml"), out, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644)
}
