package conformance

import (
	"fmt"
	"maps"
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
	// Implementation names what was under test: the SecretSync controller
	// and the Azure provider.
	Implementation string `json:"implementation"`
	// Profiles are the conformance profiles run (core, extended).
	Profiles []string          `json:"profiles"`
	Mode     string            `json:"mode"`
	Versions map[string]string `json:"versions"`
	Started  time.Time         `json:"started"`
	Duration time.Duration     `json:"duration"`
	Summary  string            `json:"summary"`
	// Verdict is "conformant" when every documented reason has a passing
	// scenario, else it names the reasons that were not covered.
	Verdict string `json:"verdict"`
	// Checks say, per check of the whole run (the canary leak checks of
	// logs, Events, statuses and metrics), "ran" or why it did not.
	Checks    map[string]string `json:"checks"`
	Reasons   []ReasonResult    `json:"reasons"`
	Scenarios []Result          `json:"scenarios"`
}

// ReportOptions describe a run.
type ReportOptions struct {
	Mode           string
	Implementation string
	Profiles       []string
	// Kubernetes is the API server's version, as it reports it.
	Kubernetes string
	Started    time.Time
	// Checks say which checks of the whole run ran (see Report.Checks).
	Checks map[string]string
}

// ReasonResult is the outcome of one documented reason: Passed when every
// scenario expecting it that ran passed and one did, Failed when one
// failed, Not covered when none ran (every scenario expecting it was
// skipped, or none expects it).
type ReasonResult struct {
	Reason    string   `json:"reason"`
	Meaning   string   `json:"meaning"`
	Scenarios []string `json:"scenarios"`
	Result    string   `json:"result"`
	// Why says, for a reason not covered, why each scenario expecting it
	// was skipped (or that none expects it).
	Why string `json:"why,omitempty"`
}

// Outcomes of a reason.
const (
	ReasonPassed     = "Passed"
	ReasonFailed     = "Failed"
	ReasonNotCovered = "Not covered"
)

// NewReport builds the report of results.
func NewReport(opts ReportOptions, results []Result) Report {
	r := Report{Implementation: opts.Implementation, Profiles: opts.Profiles, Mode: opts.Mode, Started: opts.Started,
		Duration: time.Since(opts.Started).Round(time.Second),
		Versions: map[string]string{"go": runtime.Version(), "kubernetes": opts.Kubernetes}, Checks: opts.Checks, Scenarios: results}
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
		rr := ReasonResult{Reason: reason, Meaning: doc.Meaning, Result: ReasonNotCovered}
		for _, res := range results {
			if !slices.Contains(res.Reasons, reason) {
				continue
			}
			rr.Scenarios = append(rr.Scenarios, res.Scenario)
			switch {
			case res.Skipped != "":
				// A skipped scenario covers nothing.
			case !res.Passed:
				rr.Result = ReasonFailed
			case rr.Result == ReasonNotCovered:
				rr.Result = ReasonPassed
			}
		}
		if rr.Result == ReasonPassed {
			covered++
		}
		if rr.Result == ReasonNotCovered {
			rr.Why = notCoveredWhy(reason, results)
		}
		r.Reasons = append(r.Reasons, rr)
	}
	r.Summary = fmt.Sprintf("%s, %s, profiles %s: %d/%d scenarios passed, %d skipped, %d/%d reasons covered",
		r.Implementation, opts.Mode, strings.Join(opts.Profiles, "+"), passed, len(results)-skipped, skipped, covered, len(scenarios.Reasons))
	r.Verdict = "conformant"
	if u := r.Uncovered(); len(u) > 0 {
		r.Verdict = "not conformant: " + strings.Join(u, ", ")
	}
	return r
}

// notCoveredWhy says why no scenario covered reason: each skipped scenario
// expecting it with its skip's cause.
func notCoveredWhy(reason string, results []Result) string {
	var why []string
	for _, res := range results {
		if slices.Contains(res.Reasons, reason) && res.Skipped != "" {
			why = append(why, res.Scenario+" skipped: "+res.Skipped)
		}
	}
	if len(why) == 0 {
		return "no scenario that ran expects it"
	}
	return strings.Join(why, "; ")
}

// Uncovered returns the reasons without a passing scenario, with their
// outcome: a reason whose scenarios were all skipped is not covered.
func (r Report) Uncovered() []string {
	var out []string
	for _, rr := range r.Reasons {
		if rr.Result != ReasonPassed {
			out = append(out, rr.Reason+" ("+rr.Result+")")
		}
	}
	return out
}

// Markdown renders the guide's table: reason, meaning, scenarios, result.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kvsync conformance\n\n%s\n\nVerdict: %s\n\n", r.Summary, r.Verdict)
	fmt.Fprintf(&b, "Implementation: %s; profiles: %s; mode: %s; Kubernetes %s\n\n", r.Implementation, strings.Join(r.Profiles, ", "), r.Mode, r.Versions["kubernetes"])
	for _, name := range slices.Sorted(maps.Keys(r.Checks)) {
		fmt.Fprintf(&b, "- %s: %s\n", name, r.Checks[name])
	}
	b.WriteString("\n| SecretSync status reason | Meaning | Scenarios | Result |\n|---|---|---|---|\n")
	for _, rr := range r.Reasons {
		result := rr.Result
		if rr.Why != "" {
			result += " (" + strings.ReplaceAll(rr.Why, "|", "\\|") + ")"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", rr.Reason, rr.Meaning, strings.Join(rr.Scenarios, ", "), result)
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
		doctor := s.Doctor
		if s.Fix != "" {
			doctor += "; fix " + strings.ReplaceAll(s.Fix, "|", "\\|")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Scenario, strings.Join(s.Labels, " "), strings.TrimPrefix(doctor, "; "), result, s.Duration)
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
