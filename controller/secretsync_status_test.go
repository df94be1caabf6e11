package controller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func TestComputeStatus(t *testing.T) {
	earlier := metav1.NewTime(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	now := time.Date(2026, 11, 27, 12, 30, 15, 500, time.UTC)
	nowSec := metav1.NewTime(now.Truncate(time.Second))
	ss := &ssv1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", Generation: 3},
		Spec: ssv1alpha1.SecretSyncSpec{
			SecretProviderClassName: "vault",
			SecretObject:            ssv1alpha1.SecretObject{Data: []ssv1alpha1.SecretObjectData{{SourcePath: "a", TargetKey: "a"}}},
		},
	}
	managed := &corev1.Secret{}
	succeeded := func(condType, reason string) metav1.Condition {
		return metav1.Condition{Type: condType, Status: metav1.ConditionTrue, Reason: reason, Message: "m", ObservedGeneration: 2, LastTransitionTime: earlier}
	}
	// current is a success as a pass of the SecretSync's generation that
	// read version v of its object words it.
	current := func(condType, reason, v string) metav1.Condition {
		c := successCondition(condType, reason, &syncScope{secretSync: ss, versions: map[string]string{"a": v}})
		c.ObservedGeneration, c.LastTransitionTime = ss.Generation, earlier
		return c
	}
	failed := func(condType, reason string) metav1.Condition {
		return metav1.Condition{Type: condType, Status: metav1.ConditionFalse, Reason: reason, Message: "m", ObservedGeneration: 2, LastTransitionTime: earlier}
	}

	tests := []struct {
		name       string
		prev       ssv1alpha1.SecretSyncStatus
		scope      syncScope
		err        *syncError
		wantType   string
		wantStatus metav1.ConditionStatus
		wantReason string
		wantHash   string
		wantTime   *metav1.Time
		wantTypes  []string
		// unchanged: the status is the previous one, so nothing is written.
		unchanged bool
	}{
		{
			name:       "a first pass that wrote the Secret reports Create/CreateSucceeded and sets hash and time",
			scope:      syncScope{wrote: true, hash: "h1"},
			wantType:   ssv1alpha1.ConditionTypeCreate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonCreateSucceeded,
			wantHash:   "h1",
			wantTime:   &nowSec,
			wantTypes:  []string{"Create"},
		},
		{
			name:       "a failure before the Secret exists is reported on Create and keeps hash and time",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "old", LastSuccessfulSyncTime: &earlier},
			err:        fail(ssv1alpha1.ReasonProviderError, true, nil, "vault unreachable"),
			wantType:   ssv1alpha1.ConditionTypeCreate,
			wantStatus: metav1.ConditionFalse,
			wantReason: ssv1alpha1.ReasonProviderError,
			wantHash:   "old",
			wantTime:   &earlier,
			wantTypes:  []string{"Create"},
		},
		{
			name:       "a check of a changed SecretSync that wrote nothing reports Update/UpdateNoValueChangeSucceeded and keeps the time",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h1", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{succeeded("Create", ssv1alpha1.ReasonCreateSucceeded)}},
			scope:      syncScope{existing: managed, hash: "h1"},
			wantType:   ssv1alpha1.ConditionTypeUpdate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonUpdateNoValueChangeSucceeded,
			wantHash:   "h1",
			wantTime:   &earlier,
			wantTypes:  []string{"Create", "Update"},
		},
		{
			name:       "a check that rewrote an existing Secret reports Update/UpdateValueChangeOrForceUpdateSucceeded with the new hash and time",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h1", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{succeeded("Create", ssv1alpha1.ReasonCreateSucceeded)}},
			scope:      syncScope{existing: managed, wrote: true, hash: "h2"},
			wantType:   ssv1alpha1.ConditionTypeUpdate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded,
			wantHash:   "h2",
			wantTime:   &nowSec,
			wantTypes:  []string{"Create", "Update"},
		},
		{
			name:       "a check that wrote nothing keeps CreateSucceeded of the same generation and vault versions as it is",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h1", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{current("Create", ssv1alpha1.ReasonCreateSucceeded, "v1")}},
			scope:      syncScope{existing: managed, hash: "h1", versions: map[string]string{"a": "v1"}},
			wantType:   ssv1alpha1.ConditionTypeCreate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonCreateSucceeded,
			wantHash:   "h1",
			wantTime:   &earlier,
			wantTypes:  []string{"Create"},
			unchanged:  true,
		},
		{
			name:       "a check that wrote nothing keeps UpdateValueChangeOrForceUpdateSucceeded of the same generation and vault versions as it is",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h2", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{succeeded("Create", ssv1alpha1.ReasonCreateSucceeded), current("Update", ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded, "v2")}},
			scope:      syncScope{existing: managed, hash: "h2", versions: map[string]string{"a": "v2"}},
			wantType:   ssv1alpha1.ConditionTypeUpdate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded,
			wantHash:   "h2",
			wantTime:   &earlier,
			wantTypes:  []string{"Create", "Update"},
			unchanged:  true,
		},
		{
			name:       "a check that wrote nothing but read a new vault version of the same value reports Update/UpdateNoValueChangeSucceeded",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h1", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{current("Create", ssv1alpha1.ReasonCreateSucceeded, "v1")}},
			scope:      syncScope{existing: managed, hash: "h1", versions: map[string]string{"a": "v2"}},
			wantType:   ssv1alpha1.ConditionTypeUpdate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonUpdateNoValueChangeSucceeded,
			wantHash:   "h1",
			wantTime:   &earlier,
			wantTypes:  []string{"Create", "Update"},
		},
		{
			name:       "a check with no change after a failed one sets the time of the recovery",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h1", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{succeeded("Create", ssv1alpha1.ReasonCreateSucceeded), failed("Update", ssv1alpha1.ReasonProviderError)}},
			scope:      syncScope{existing: managed, hash: "h1"},
			wantType:   ssv1alpha1.ConditionTypeUpdate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonUpdateNoValueChangeSucceeded,
			wantHash:   "h1",
			wantTime:   &nowSec,
			wantTypes:  []string{"Create", "Update"},
		},
		{
			name:       "recreating a deleted Secret reports Create and moves it after the older Update condition",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h1", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{succeeded("Create", ssv1alpha1.ReasonCreateSucceeded), succeeded("Update", ssv1alpha1.ReasonUpdateNoValueChangeSucceeded)}},
			scope:      syncScope{wrote: true, hash: "h1"},
			wantType:   ssv1alpha1.ConditionTypeCreate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonCreateSucceeded,
			wantHash:   "h1",
			wantTime:   &nowSec,
			wantTypes:  []string{"Update", "Create"},
		},
		{
			name:       "a pass that finds the Secret a pass created but whose status write was lost reports Create/CreateSucceeded",
			prev:       ssv1alpha1.SecretSyncStatus{Conditions: []metav1.Condition{failed("Create", ssv1alpha1.ReasonControllerSpcError)}},
			scope:      syncScope{existing: managed, hash: "h1"},
			wantType:   ssv1alpha1.ConditionTypeCreate,
			wantStatus: metav1.ConditionTrue,
			wantReason: ssv1alpha1.ReasonCreateSucceeded,
			wantHash:   "h1",
			wantTime:   &nowSec,
			wantTypes:  []string{"Create"},
		},
		{
			name:       "a failure on an existing Secret is reported on Update",
			prev:       ssv1alpha1.SecretSyncStatus{SyncHash: "h1", LastSuccessfulSyncTime: &earlier, Conditions: []metav1.Condition{succeeded("Create", ssv1alpha1.ReasonCreateSucceeded)}},
			scope:      syncScope{existing: managed},
			err:        fail(ssv1alpha1.ReasonUnknownError, true, nil, "conflict"),
			wantType:   ssv1alpha1.ConditionTypeUpdate,
			wantStatus: metav1.ConditionFalse,
			wantReason: ssv1alpha1.ReasonUnknownError,
			wantHash:   "h1",
			wantTime:   &earlier,
			wantTypes:  []string{"Create", "Update"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.scope
			s.secretSync = ss
			got := computeStatus(tt.prev, &s, tt.err, now)
			if eq := statusEqual(got, tt.prev); eq != tt.unchanged {
				t.Errorf("status unchanged = %v, want %v", eq, tt.unchanged)
			}

			last := got.Conditions[len(got.Conditions)-1]
			if last.Type != tt.wantType || last.Status != tt.wantStatus || last.Reason != tt.wantReason {
				t.Errorf("latest condition = %s/%s/%s, want %s/%s/%s", last.Type, last.Status, last.Reason, tt.wantType, tt.wantStatus, tt.wantReason)
			}
			if last.ObservedGeneration != ss.Generation {
				t.Errorf("observedGeneration = %d, want %d", last.ObservedGeneration, ss.Generation)
			}
			if last.Message == "" {
				t.Error("message is empty")
			}
			var types []string
			for _, c := range got.Conditions {
				types = append(types, c.Type)
			}
			if !slices.Equal(types, tt.wantTypes) {
				t.Errorf("condition types = %v, want %v", types, tt.wantTypes)
			}
			if got.SyncHash != tt.wantHash {
				t.Errorf("syncHash = %q, want %q", got.SyncHash, tt.wantHash)
			}
			if !got.LastSuccessfulSyncTime.Equal(tt.wantTime) {
				t.Errorf("lastSuccessfulSyncTime = %v, want %v", got.LastSuccessfulSyncTime, tt.wantTime)
			}
		})
	}
}

func TestComputeStatusIsStableWhenNothingChanged(t *testing.T) {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 1}}
	s := &syncScope{secretSync: ss, existing: &corev1.Secret{}, hash: "h"}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	first := computeStatus(computeStatus(ssv1alpha1.SecretSyncStatus{}, &syncScope{secretSync: ss, wrote: true, hash: "h"}, nil, t0), s, nil, t0)
	second := computeStatus(first, s, nil, t0.Add(time.Hour))
	if !statusEqual(first, second) {
		t.Errorf("a second identical check changed the status:\nfirst  %+v\nsecond %+v", first, second)
	}
}

func TestComputeStatusMovesTransitionTimeOnlyWhenStatusChanges(t *testing.T) {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 1}}
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	okScope := &syncScope{secretSync: ss, existing: &corev1.Secret{}, hash: "h"}
	st := computeStatus(ssv1alpha1.SecretSyncStatus{}, &syncScope{secretSync: ss, wrote: true, hash: "h"}, nil, t0)
	st = computeStatus(st, okScope, nil, t0)
	st = computeStatus(st, okScope, fail(ssv1alpha1.ReasonProviderError, true, nil, "a"), t0.Add(time.Minute))
	failedAt := latestCondition(st).LastTransitionTime
	st = computeStatus(st, okScope, fail(ssv1alpha1.ReasonProviderError, true, nil, "b"), t0.Add(2*time.Minute))
	if got := latestCondition(st).LastTransitionTime; !got.Equal(&failedAt) {
		t.Errorf("lastTransitionTime moved from %v to %v without a status change", failedAt, got)
	}
	if latestCondition(st).Message != "b" {
		t.Errorf("message = %q, want the latest one", st.Conditions[0].Message)
	}
}

func TestASuccessMessageNamesTheVaultVersionsTheSecretHolds(t *testing.T) {
	versions := map[string]string{"db-password/0": "9a8b", "api-key": "1f2e"}
	if got, want := versionsNote(versions), " Vault versions: api-key=1f2e, db-password/0=9a8b."; got != want {
		t.Errorf("versionsNote = %q, want %q", got, want)
	}
	if got := versionsNote(nil); got != "" {
		t.Errorf("versionsNote(nil) = %q, want nothing", got)
	}
	many := map[string]string{}
	for i := range maxVersionsNoted + 3 {
		many[fmt.Sprintf("s%03d", i)] = "v"
	}
	if got := versionsNote(many); !strings.HasSuffix(got, "and 3 more.") {
		t.Errorf("versionsNote of %d versions = ...%q", len(many), got[len(got)-20:])
	}
	reported := map[string]string{"secret/db-password/0": "v0", "secret/db-password/1": "v1", "secret/web-cert": "vc"}
	for sourcePath, want := range map[string]string{"db-password/1": "v1", "web-cert/tls.crt": "vc", "api-key": ""} {
		if got := versionOf(reported, sourcePath); got != want {
			t.Errorf("versionOf(%q) = %q, want %q", sourcePath, got, want)
		}
	}
}
