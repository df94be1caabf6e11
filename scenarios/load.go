package scenarios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/faults"
	"github.com/kvsync/kvsync/troubleshoot"
)

// Reasons are the condition reasons a scenario may expect.
var Reasons = []string{
	"CreateSucceeded",
	"UpdateNoValueChangeSucceeded",
	"UpdateValueChangeOrForceUpdateSucceeded",
	"PartialSync",
	"ProviderError",
	"InvalidClusterSecretLabelError",
	"InvalidClusterSecretAnnotationError",
	"UserInputValidationFailed",
	"ControllerSpcError",
	"ControllerInternalError",
	"ValidatingAdmissionPolicyCheckFailed",
	"ControllerSyncFailed",
	"UnknownError",
}

var (
	namePattern  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelPattern = regexp.MustCompile(`^[a-z]+:[-A-Za-z0-9_.]+$`)
)

// Load reads every *.yaml scenario of dir, sorted by name. Errors name the
// file and the problem; every bad file is reported, not only the first.
func Load(dir string) ([]Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no scenario files (*.yaml) in %s", dir)
	}
	var out []Scenario
	var errs []error
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s, err := Parse(data, filepath.Base(p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Scenario) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Parse reads one scenario. Unknown fields are errors; file names the
// scenario in messages and must be its name plus .yaml.
func Parse(data []byte, file string) (Scenario, error) {
	var s Scenario
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return Scenario{}, fmt.Errorf("%s: %w", file, err)
	}
	if err := s.validate(file); err != nil {
		return Scenario{}, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// validate checks what the schema alone cannot.
func (s *Scenario) validate(file string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case !namePattern.MatchString(s.Name):
		add("name %q must be lowercase letters, digits and '-'", s.Name)
	case file != "" && file != s.Name+".yaml":
		add("name %q does not match the file name", s.Name)
	}
	if !slices.Contains(Profiles, s.Profile) {
		add("profile %q is not one of %s: core for what any implementation must pass, extended for kvsync's extensions", s.Profile, strings.Join(Profiles, ", "))
	}
	if s.SecretSync.Type == "" && s.Profile != Extended {
		add("secretSync.type is empty: the API requires spec.secretObject.type (e.g. Opaque); only an extended scenario may rely on kvsync's default")
	}
	if strings.TrimSpace(s.Description) == "" {
		add("description is empty: say what the scenario shows")
	}
	for _, l := range s.Labels {
		if !labelPattern.MatchString(l) {
			add("label %q is not key:value (e.g. reason:ProviderError, layer:dns)", l)
		}
		if r, ok := strings.CutPrefix(l, "reason:"); ok && !slices.Contains(Reasons, r) {
			add("label %q names no documented reason", l)
		}
	}
	switch doc := s.Documented(); {
	case doc == "":
		add("no reason: label: name the documented reason the scenario proves")
	case !slices.ContainsFunc(s.Steps, func(st Step) bool { return st.Expect != nil && st.Expect.Reason == doc }):
		add("no step expects the documented reason %s", doc)
	case !slices.Contains(troubleshoot.CauseIDs(doc), s.Cause):
		add("cause %q is not a cause of %s: use one of %s", s.Cause, doc, strings.Join(troubleshoot.CauseIDs(doc), ", "))
	}
	for _, v := range s.Vault.Secrets {
		checkCanaries(add, "vault.secrets "+v.Name, v)
	}
	if len(s.SecretSync.Data) == 0 {
		add("secretSync.data is empty: map at least one sourcePath to a targetKey")
	}
	for i, f := range append(slices.Clone(s.Faults), stepFaults(s.Steps)...) {
		if err := f.Validate(); err != nil {
			add("fault %d: %v", i, err)
		}
	}
	if len(s.Steps) == 0 {
		add("steps is empty: add at least one step with an expectation")
	}
	for i, st := range s.Steps {
		if n := st.actions(); n > 1 {
			add("step %d has %d actions: one per step", i+1, n)
		}
		if st.SetSecret != nil {
			checkCanaries(add, fmt.Sprintf("step %d setSecret", i+1), *st.SetSecret)
		}
		if f := st.FollowFix; f != nil && f.Instead != nil {
			if in := f.Instead; in.actions() != 1 || in.FollowFix != nil || in.Expect != nil {
				add("step %d: followFix.instead must be one action other than followFix, without an expectation", i+1)
			}
		}
		if st.Expect != nil {
			st.Expect.validate(add, i+1)
		} else if st.actions() == 0 {
			add("step %d has neither an action nor an expectation", i+1)
		}
	}
	return errors.Join(errs...)
}

func checkCanaries(add func(string, ...any), where string, v VaultSecret) {
	if v.Name == "" {
		add("%s: name is empty", where)
	}
	values := append([]string{}, v.Versions...)
	if v.Value != "" {
		values = append(values, v.Value)
	}
	if len(values) == 0 {
		add("%s: set value or versions", where)
	}
	for _, val := range values {
		if !strings.Contains(val, Canary) {
			add("%s: value %q must contain %q, so leaks are caught", where, val, Canary)
		}
	}
}

func stepFaults(steps []Step) []faults.Fault {
	var out []faults.Fault
	for _, st := range steps {
		out = append(out, st.AddFaults...)
	}
	return out
}

// actions counts the actions of a step.
func (st Step) actions() int {
	n := 0
	for _, set := range []bool{st.SetSecret != nil, st.DisableSecret != "", len(st.AddFaults) > 0, st.ClearFaults,
		st.ForceSynchronization != "", st.DeleteSecret, st.TakeOwnership != nil, len(st.SetClassParameters) > 0, st.SetType != "", st.SetNetwork != nil, st.FollowFix != nil} {
		if set {
			n++
		}
	}
	return n
}

func (e *Expectation) validate(add func(string, ...any), step int) {
	if !slices.Contains(Reasons, e.Reason) {
		add("step %d: expect.reason %q is not a documented reason (%s)", step, e.Reason, strings.Join(Reasons, ", "))
	}
	if e.Type != "" && e.Type != "Create" && e.Type != "Update" {
		add("step %d: expect.type %q must be Create or Update", step, e.Type)
	}
	if e.Status != "" && e.Status != "True" && e.Status != "False" {
		add("step %d: expect.status %q must be True or False", step, e.Status)
	}
	for k, v := range e.Items {
		if v != "Succeeded" && v != "Failed" {
			add("step %d: expect.items[%s] %q must be Succeeded or Failed", step, k, v)
		}
	}
	if e.Secret != nil && e.Secret.Absent && (e.Secret.Unchanged || len(e.Secret.Data) > 0) {
		add("step %d: expect.secret cannot be absent and hold data", step)
	}
}
