package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/scenarios"
)

func TestAReasonIsCoveredOnlyByAScenarioThatRanAndPassed(t *testing.T) {
	passedAll := func() []Result {
		var out []Result
		for _, r := range scenarios.Reasons {
			out = append(out, Result{Scenario: "s-" + strings.ToLower(r), Reasons: []string{r}, Passed: true})
		}
		return out
	}
	tests := []struct {
		name    string
		results func() []Result
		want    []string // reasons not covered, with their outcome
		why     string   // what the table says of the first reason
	}{
		{"every reason passed", passedAll, nil, ""},
		{"a reason whose only scenario was skipped is not covered", func() []Result {
			out := passedAll()
			out[0] = Result{Scenario: out[0].Scenario, Reasons: out[0].Reasons, Skipped: "needs the provider in process"}
			return out
		}, []string{scenarios.Reasons[0] + " (" + ReasonNotCovered + ")"},
			"s-" + strings.ToLower(scenarios.Reasons[0]) + " skipped: needs the provider in process"},
		{"a reason with a skipped and a passing scenario is covered", func() []Result {
			return append(passedAll(), Result{Scenario: "skipped", Reasons: []string{scenarios.Reasons[0]}, Skipped: "profile extended is not under test"})
		}, nil, ""},
		{"a failed scenario fails its reason whatever else passed", func() []Result {
			return append(passedAll(), Result{Scenario: "broken", Reasons: []string{scenarios.Reasons[1]}, Failure: "step 1"})
		}, []string{scenarios.Reasons[1] + " (" + ReasonFailed + ")"}, ""},
		{"a reason no scenario expects is not covered", func() []Result { return passedAll()[1:] },
			[]string{scenarios.Reasons[0] + " (" + ReasonNotCovered + ")"}, "no scenario that ran expects it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReport(ReportOptions{Mode: "embedded", Implementation: "kvsync", Profiles: scenarios.Profiles, Started: time.Now()}, tt.results())
			if got := r.Uncovered(); !slices.Equal(got, tt.want) {
				t.Errorf("Uncovered() = %v, want %v", got, tt.want)
			}
			if conformant := r.Verdict == "conformant"; conformant != (len(tt.want) == 0) {
				t.Errorf("verdict %q with %d reasons not covered", r.Verdict, len(tt.want))
			}
			if got := r.Reasons[0].Why; got != tt.why {
				t.Errorf("why %s is not covered: %q, want %q", r.Reasons[0].Reason, got, tt.why)
			}
			if tt.why != "" && !strings.Contains(r.Markdown(), tt.why) {
				t.Errorf("the table does not say why %s is not covered:\n%s", r.Reasons[0].Reason, r.Markdown())
			}
		})
	}
}
