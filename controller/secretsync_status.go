package controller

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// computeStatus returns the status a pass leads to, from the previous status,
// what the pass observed and how it ended. It is a pure function.
//
// PartialSync is a failure (status False) that still records the syncHash of
// what was written.
//
// The pass's condition is Update when a managed Secret existed at the start
// of the pass and Create otherwise. The condition set last is moved to the
// end of the list, so the last condition is always the latest change of
// outcome: a pass that writes nothing and succeeds after a success leaves
// it as it is (see stillTrue). syncHash and lastSuccessfulSyncTime change only on success:
// lastSuccessfulSyncTime is set when the Secret was written, and when a check
// succeeds after one that did not.
func computeStatus(prev ssv1alpha1.SecretSyncStatus, s *syncScope, syncErr *syncError, now time.Time) ssv1alpha1.SecretSyncStatus {
	st := *prev.DeepCopy()
	cond := syncCondition(prev.Conditions, s, syncErr)
	cond.ObservedGeneration = s.secretSync.Generation
	cond.LastTransitionTime = metav1.NewTime(now).Rfc3339Copy()

	if syncErr == nil {
		if s.wrote || !lastSucceeded(prev.Conditions) {
			t := metav1.NewTime(now).Rfc3339Copy()
			st.LastSuccessfulSyncTime = &t
		}
		st.SyncHash = s.hash
	} else if syncErr.reason == ssv1alpha1.ReasonPartialSync && s.hash != "" {
		// The Secret holds what the pass computed, failed items included
		// with their previous values.
		st.SyncHash = s.hash
	}
	meta.SetStatusCondition(&st.Conditions, cond)
	moveLast(&st.Conditions, cond.Type)
	return st
}

// syncCondition returns the condition type, status, reason and message of a
// pass, given the conditions before it. It is Create until the Secret exists
// and a pass has recorded its creation: a pass that created the Secret but
// lost its status write (a conflict) is followed by one that finds the
// Secret and reports the creation.
func syncCondition(prev []metav1.Condition, s *syncScope, syncErr *syncError) metav1.Condition {
	condType := ssv1alpha1.ConditionTypeCreate
	if s.existing != nil && creationRecorded(prev) {
		condType = ssv1alpha1.ConditionTypeUpdate
	}
	if syncErr != nil {
		return metav1.Condition{Type: condType, Status: metav1.ConditionFalse, Reason: syncErr.reason, Message: syncErr.message}
	}
	switch {
	case condType == ssv1alpha1.ConditionTypeCreate:
		return successCondition(condType, ssv1alpha1.ReasonCreateSucceeded, s)
	case s.wrote:
		return successCondition(condType, ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded, s)
	}
	if last, ok := stillTrue(prev, s); ok {
		return last
	}
	return successCondition(condType, ssv1alpha1.ReasonUpdateNoValueChangeSucceeded, s)
}

// stillTrue returns the latest condition of prev when a pass that wrote
// nothing leaves it true as it stands: it is a success of the SecretSync's
// generation, and its message says what the pass would say under its reason
// (the same item count, class and vault versions). A success is not
// rewritten as UpdateNoValueChangeSucceeded by every check that finds
// nothing to change: the reason stays the latest change of outcome (the
// creation, a rewrite, or a return to success with nothing to write), so
// that a steady state, first poll included, writes nothing.
func stillTrue(prev []metav1.Condition, s *syncScope) (metav1.Condition, bool) {
	if len(prev) == 0 {
		return metav1.Condition{}, false
	}
	last := prev[len(prev)-1]
	if last.Status != metav1.ConditionTrue || last.ObservedGeneration != s.secretSync.Generation {
		return metav1.Condition{}, false
	}
	if successCondition(last.Type, last.Reason, s).Message != last.Message {
		return metav1.Condition{}, false
	}
	return last, true
}

// successCondition is the condition of a successful pass with reason.
func successCondition(condType, reason string, s *syncScope) metav1.Condition {
	ss := s.secretSync
	items := len(ss.Spec.SecretObject.Data)
	versions := versionsNote(s.versions)
	var msg string
	switch reason {
	case ssv1alpha1.ReasonCreateSucceeded:
		msg = fmt.Sprintf("Secret %q was created with %d item(s) from SecretProviderClass %q.%s", ss.Name, items, ss.Spec.SecretProviderClassName, versions)
	case ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded:
		msg = fmt.Sprintf("Secret %q was rewritten with %d item(s) from SecretProviderClass %q: a value, the SecretSync or the SecretProviderClass changed, or a new forceSynchronization value was set.%s", ss.Name, items, ss.Spec.SecretProviderClassName, versions)
	default:
		msg = fmt.Sprintf("Secret %q is up to date with SecretProviderClass %q: no change was needed.%s", ss.Name, ss.Spec.SecretProviderClassName, versions)
	}
	return metav1.Condition{Type: condType, Status: metav1.ConditionTrue, Reason: reason, Message: msg}
}

// maxVersionsNoted bounds the versions a success message names.
const maxVersionsNoted = 32

// versionsNote names the vault versions the Secret holds, by sourcePath, for
// a success message: " Vault versions: api-key=1f2e..., db-password/0=9a8b...".
// A success message changes only when they do, so noting them adds no
// status write in the steady state.
func versionsNote(versions map[string]string) string {
	if len(versions) == 0 {
		return ""
	}
	paths := slices.Sorted(maps.Keys(versions))
	var parts []string
	for i, p := range paths {
		if i == maxVersionsNoted {
			parts = append(parts, fmt.Sprintf("and %d more", len(paths)-maxVersionsNoted))
			break
		}
		parts = append(parts, p+"="+versions[p])
	}
	return " Vault versions: " + strings.Join(parts, ", ") + "."
}

// latestCondition returns the condition set by the latest check, or the
// zero condition.
func latestCondition(st ssv1alpha1.SecretSyncStatus) metav1.Condition {
	if len(st.Conditions) == 0 {
		return metav1.Condition{}
	}
	return st.Conditions[len(st.Conditions)-1]
}

// latestReason returns the reason of the latest check.
func latestReason(st ssv1alpha1.SecretSyncStatus) string { return latestCondition(st).Reason }

// creationRecorded reports whether a check has recorded the creation of
// the Secret: a successful Create condition, or any Update condition.
func creationRecorded(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, ssv1alpha1.ConditionTypeCreate) ||
		meta.FindStatusCondition(conds, ssv1alpha1.ConditionTypeUpdate) != nil
}

// lastSucceeded reports whether the latest check recorded in conds succeeded.
func lastSucceeded(conds []metav1.Condition) bool {
	return len(conds) > 0 && conds[len(conds)-1].Status == metav1.ConditionTrue
}

// moveLast moves the condition of the given type to the end of conds.
func moveLast(conds *[]metav1.Condition, condType string) {
	i := slices.IndexFunc(*conds, func(c metav1.Condition) bool { return c.Type == condType })
	if i < 0 || i == len(*conds)-1 {
		return
	}
	c := (*conds)[i]
	*conds = append(slices.Delete(*conds, i, i+1), c)
}

// statusEqual reports whether writing b over a would change nothing.
func statusEqual(a, b ssv1alpha1.SecretSyncStatus) bool {
	return equality.Semantic.DeepEqual(a, b)
}
