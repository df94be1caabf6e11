package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller/csiprovider"
)

// allFailureReasons are the reasons a failed check can end with.
var allFailureReasons = []string{
	ssv1alpha1.ReasonPartialSync,
	ssv1alpha1.ReasonProviderError,
	ssv1alpha1.ReasonInvalidClusterSecretLabelError,
	ssv1alpha1.ReasonInvalidClusterSecretAnnotationError,
	ssv1alpha1.ReasonUserInputValidationFailed,
	ssv1alpha1.ReasonControllerSpcError,
	ssv1alpha1.ReasonControllerInternalError,
	ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed,
	ssv1alpha1.ReasonControllerSyncFailed,
	ssv1alpha1.ReasonUnknownError,
}

func TestEveryFailureReasonIsReportedOnCreateBeforeTheSecretExistsAndOnUpdateAfter(t *testing.T) {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Name: "app", Generation: 4}}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for _, reason := range allFailureReasons {
		for _, existing := range []*corev1.Secret{nil, {}} {
			wantType := ssv1alpha1.ConditionTypeCreate
			if existing != nil {
				wantType = ssv1alpha1.ConditionTypeUpdate
			}
			t.Run(reason+" on "+wantType, func(t *testing.T) {
				s := &syncScope{secretSync: ss, existing: existing}
				prev := ssv1alpha1.SecretSyncStatus{}
				if existing != nil { // and its creation recorded
					prev.Conditions = []metav1.Condition{{Type: ssv1alpha1.ConditionTypeCreate, Status: metav1.ConditionTrue, Reason: ssv1alpha1.ReasonCreateSucceeded}}
				}
				st := computeStatus(prev, s, fail(reason, false, nil, "why and what to do"), now)
				c := latestCondition(st)
				if c.Type != wantType || c.Status != metav1.ConditionFalse || c.Reason != reason || c.Message != "why and what to do" || c.ObservedGeneration != 4 {
					t.Errorf("condition = %+v", c)
				}
				if st.LastSuccessfulSyncTime != nil {
					t.Error("a failure set lastSuccessfulSyncTime")
				}
			})
		}
	}
}

func TestApplyFailuresAreClassifiedByTheirCause(t *testing.T) {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}}
	gr := schema.GroupResource{Resource: "secrets"}
	conflict := apierrors.NewApplyConflict([]metav1.StatusCause{{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "platform-team": .data.password`, Field: ".data.password"}},
		`Apply failed with 1 conflict: conflict with "platform-team": .data.password`)
	tests := []struct {
		name   string
		err    error
		reason string
		want   string
	}{
		{"a ValidatingAdmissionPolicy denial", apierrors.NewForbidden(gr, "app", errors.New("ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no")), ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed, "ValidatingAdmissionPolicy 'p'"},
		{"a conflict with another field manager", conflict, ssv1alpha1.ReasonUnknownError, "platform-team"},
		{"an invalid Secret", apierrors.NewInvalid(schema.GroupKind{Kind: "Secret"}, "app", nil), ssv1alpha1.ReasonUserInputValidationFailed, "rejected Secret \"app\" as invalid"},
		{"any other failure", apierrors.NewServiceUnavailable("etcd is down"), ssv1alpha1.ReasonUnknownError, "etcd is down"},
		{"a forbidden write that names no policy", apierrors.NewForbidden(gr, "app", errors.New("RBAC: no")), ssv1alpha1.ReasonUnknownError, "RBAC: no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := applyFailure(ss, tt.err)
			if got.reason != tt.reason || !strings.Contains(got.message, tt.want) {
				t.Errorf("applyFailure = %s: %s", got.reason, got.message)
			}
		})
	}
}

func TestMountFailuresAreClassifiedByTheirCause(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		reason string // "" means an item failure (ProviderError or PartialSync)
	}{
		{"no provider socket", fmt.Errorf("%w \"x\": gone", csiprovider.ErrNoSocket), ssv1alpha1.ReasonControllerSpcError},
		{"an invalid provider name", fmt.Errorf("%w \"../x\"", csiprovider.ErrInvalidProviderName), ssv1alpha1.ReasonControllerSpcError},
		{"InvalidArgument from the provider", fmt.Errorf("mount: %w", status.Error(codes.InvalidArgument, "keyvaultName is not set")), ssv1alpha1.ReasonControllerSpcError},
		{"an oversized response", fmt.Errorf("mount: %w", csiprovider.ErrResponseTooLarge), ssv1alpha1.ReasonControllerInternalError},
		{"NotFound from the provider", fmt.Errorf("mount: %w", status.Error(codes.NotFound, "SecretNotFound")), ""},
		{"a deadline", fmt.Errorf("mount: %w", status.Error(codes.DeadlineExceeded, "timeout")), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classFailure("c", "azure", tt.err)
			switch {
			case tt.reason == "" && got != nil:
				t.Errorf("classFailure = %s, want an item failure", got.reason)
			case tt.reason != "" && (got == nil || got.reason != tt.reason):
				t.Errorf("classFailure = %v, want %s", got, tt.reason)
			}
		})
	}
	if msg := providerMessage(fmt.Errorf("provider %q mount: %w", "azure", status.Error(codes.NotFound, "reading secret \"a\": SecretNotFound"))); msg != `reading secret "a": SecretNotFound` {
		t.Errorf("providerMessage = %q, want the provider's own message", msg)
	}
}

func TestMalformedProviderResponsesAreControllerInternalErrors(t *testing.T) {
	for _, paths := range [][]string{{"a", "a"}, {"/etc/passwd"}, {"../x"}, {""}, {"a/../b"}} {
		resp := &csiprovider.MountResponse{}
		for _, p := range paths {
			resp.Files = append(resp.Files, csiprovider.File{Path: p})
		}
		if _, err := responseFiles("azure", resp); err == nil || err.reason != ssv1alpha1.ReasonControllerInternalError {
			t.Errorf("paths %q: %v, want ControllerInternalError", paths, err)
		}
	}
	files, err := responseFiles("azure", &csiprovider.MountResponse{Files: []csiprovider.File{{Path: "a"}, {Path: "a/0"}, {Path: "a/tls.crt"}}})
	if err != nil || len(files) != 3 {
		t.Errorf("a well-formed response: %v", err)
	}
}

func TestSpecChecksRefuseWhatCannotBeWritten(t *testing.T) {
	r := &SecretSyncReconciler{}
	newSS := func(t string, keys ...string) *ssv1alpha1.SecretSync {
		ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}}
		ss.Spec.SecretObject.Type = t
		for _, k := range keys {
			ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{TargetKey: k, SourcePath: k})
		}
		return ss
	}
	tests := []struct {
		name     string
		ss       *ssv1alpha1.SecretSync
		existing *corev1.Secret
		want     string // "" means accepted
	}{
		{"Opaque is allowed", newSS("Opaque", "a"), nil, ""},
		{"an empty type means Opaque", newSS("", "a"), nil, ""},
		{"kubernetes.io/tls with tls.crt and tls.key is allowed", newSS("kubernetes.io/tls", "tls.key", "tls.crt"), nil, ""},
		{"a service-account-token Secret is never allowed", newSS("kubernetes.io/service-account-token", "a"), nil, "is not allowed"},
		{"an unknown type is not allowed", newSS("example.com/x", "a"), nil, "is not allowed"},
		{"kubernetes.io/tls with another key is refused", newSS("kubernetes.io/tls", "tls.crt", "ca.crt"), nil, "needs exactly the targetKeys tls.crt and tls.key"},
		{"a type change of the existing Secret is refused", newSS("kubernetes.io/basic-auth", "username"), &corev1.Secret{Type: corev1.SecretTypeOpaque}, "cannot change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.checkSpec(t.Context(), &syncScope{secretSync: tt.ss, existing: tt.existing})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || err.reason != ssv1alpha1.ReasonUserInputValidationFailed || !strings.Contains(err.message, tt.want)):
				t.Errorf("checkSpec = %v, want UserInputValidationFailed containing %q", err, tt.want)
			}
		})
	}
	restricted := &SecretSyncReconciler{AllowedSecretTypes: []corev1.SecretType{corev1.SecretTypeOpaque, corev1.SecretTypeServiceAccountToken}}
	if err := restricted.checkSpec(t.Context(), &syncScope{secretSync: newSS("kubernetes.io/service-account-token", "a")}); err == nil {
		t.Error("a service-account-token Secret was allowed by configuration")
	}
}

func TestDataOverTheSizeOfASecretIsRefusedNamingTheLargestKeysNotValues(t *testing.T) {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}}
	value := func(n int) []byte { return []byte(strings.Repeat("kvsync-canary-", n/14+1)[:n]) }
	tests := []struct {
		name string
		data map[string][]byte
		want []string // nil means accepted
	}{
		{"exactly 1 MiB of values is accepted", map[string][]byte{"a": value(corev1.MaxSecretSize - 10), "b": value(10)}, nil},
		{"keys do not count", map[string][]byte{strings.Repeat("k", 253): value(corev1.MaxSecretSize)}, nil},
		{"one byte over is refused", map[string][]byte{"a": value(corev1.MaxSecretSize - 10), "b": value(11)},
			[]string{"1048577 bytes in 2 keys", "over the 1048576 bytes", "a (1048566 bytes), b (11 bytes)"}},
		{"fifty 25 KB values are refused, the three largest named", func() map[string][]byte {
			m := map[string][]byte{}
			for i := range 50 {
				m[fmt.Sprintf("k%02d", i)] = value(25000 + i)
			}
			return m
		}(), []string{"1251225 bytes in 50 keys", "k49 (25049 bytes), k48 (25048 bytes), k47 (25047 bytes)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSize(ss, &desiredSecret{data: tt.data})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.reason != ssv1alpha1.ReasonUserInputValidationFailed || err.transient {
				t.Fatalf("checkSize = %v, want a lasting UserInputValidationFailed", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.message, w) {
					t.Errorf("message %q lacks %q", err.message, w)
				}
			}
			if strings.Contains(err.message, "kvsync-canary") {
				t.Error("the message holds a value")
			}
		})
	}
}

func TestPartialSyncMessageIsTheExactJSONSummarySortedByTargetKey(t *testing.T) {
	got := partialSync([]itemStatus{
		{TargetKey: "b", SourcePath: "b", Status: "Failed", Error: "SecretNotFound: b is gone"},
		{TargetKey: "a", SourcePath: "a", Status: "Succeeded"},
	})
	want := `{"items":[{"targetKey":"a","sourcePath":"a","status":"Succeeded"},{"targetKey":"b","sourcePath":"b","status":"Failed","error":"SecretNotFound: b is gone"}]}`
	if got.reason != ssv1alpha1.ReasonPartialSync || got.message != want {
		t.Errorf("partialSync = %s\n%s\nwant\n%s", got.reason, got.message, want)
	}
	var many []itemStatus
	for i := range 256 {
		many = append(many, itemStatus{TargetKey: fmt.Sprintf("k%03d", i), SourcePath: "s", Status: "Failed", Error: strings.Repeat("x", 4096)})
	}
	if m := partialSync(many).message; len(m) > 32768 || !json.Valid([]byte(m)) {
		t.Errorf("a summary of 256 long errors is %d bytes, over the condition message limit", len(m))
	}
	var huge []itemStatus
	for i := range 256 {
		status := "Succeeded"
		if i%2 == 0 {
			status = "Failed"
		}
		huge = append(huge, itemStatus{TargetKey: fmt.Sprintf("%03d", i) + strings.Repeat("k", 250), SourcePath: strings.Repeat("s", 253), Status: status, Error: "e"})
	}
	if m := partialSync(huge).message; len(m) > 32768 || !json.Valid([]byte(m)) || !strings.Contains(m, "omitted") {
		t.Errorf("a summary of 256 items with the longest keys: %d bytes, valid %v", len(m), json.Valid([]byte(m)))
	}
}

func TestMountsArePlannedPerObjectTheSecretSyncReads(t *testing.T) {
	class := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: spcv1.SecretProviderClassSpec{Parameters: map[string]string{
		"objects": "array:\n  - |\n    objectName: a\n    objectType: secret\n  - |\n    objectName: b\n    objectAlias: bee\n    objectType: secret\n  - |\n    objectName: unused\n    objectType: secret\n",
	}}}
	ss := &ssv1alpha1.SecretSync{}
	ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "x", SourcePath: "a"}, {TargetKey: "y", SourcePath: "bee/0"}, {TargetKey: "z", SourcePath: "a/tls.crt"}}

	partial, err := planMounts(ss, class, true)
	each := partial.each
	if err != nil || len(each) != 2 || !each[0].serves("a") || each[0].serves("bee") || !each[1].serves("bee") {
		t.Fatalf("partial plans = %+v, %v", partial, err)
	}
	if strings.Contains(each[0].objects, "unused") || !strings.Contains(each[1].objects, "objectAlias: bee") {
		t.Errorf("partial objects = %q, %q", each[0].objects, each[1].objects)
	}
	for name, whole := range map[string]mountPlan{"with partial sync": partial.whole} {
		if strings.Contains(whole.objects, "unused") || !whole.serves("a") || !whole.serves("bee") {
			t.Errorf("whole plan %s = %+v", name, whole)
		}
	}
	whole, err := planMounts(ss, class, false)
	if err != nil || whole.each != nil || whole.whole.objects != partial.whole.objects {
		t.Errorf("without partial sync: %+v, %v", whole, err)
	}
	ss.Spec.SecretObject.Data = ss.Spec.SecretObject.Data[:1]
	if one, err := planMounts(ss, class, true); err != nil || one.each != nil || !one.whole.serves("a") || one.whole.serves("bee") {
		t.Errorf("one object with partial sync needs no per-object plan: %+v, %v", one, err)
	}

	ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{TargetKey: "w", SourcePath: "nothing"})
	if _, err := planMounts(ss, class, true); err == nil || err.reason != ssv1alpha1.ReasonUserInputValidationFailed {
		t.Errorf("a sourcePath naming no object: %v", err)
	}
	generic := &spcv1.SecretProviderClass{Spec: spcv1.SecretProviderClassSpec{Parameters: map[string]string{"secrets": "whatever"}}}
	if plans, err := planMounts(ss, generic, true); err != nil || plans.each != nil || plans.whole.objects != "" || !plans.whole.serves("anything") {
		t.Errorf("a class without an objects array: %+v, %v", plans, err)
	}
}

func TestPlansAreCachedPerClassGenerationAndObjectsRead(t *testing.T) {
	class := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "u1", Generation: 1}, Spec: spcv1.SecretProviderClassSpec{Parameters: map[string]string{
		"objects": "array:\n  - |\n    objectName: a\n  - |\n    objectName: b\n",
	}}}
	ss := &ssv1alpha1.SecretSync{}
	ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "x", SourcePath: "a"}, {TargetKey: "y", SourcePath: "b"}}
	var c planCache
	first, err := c.plan(ss, class, true)
	if err != nil || len(first.each) != 2 {
		t.Fatalf("first plan = %+v, %v", first, err)
	}
	class.Spec.Parameters["objects"] = "array:\n  - |\n    objectName: a\n    objectVersion: v2\n  - |\n    objectName: b\n"
	if same, _ := c.plan(ss, class, true); same.whole.objects != first.whole.objects {
		t.Errorf("the same generation was planned again: %q", same.whole.objects)
	}
	class.Generation = 2
	if next, _ := c.plan(ss, class, true); !strings.Contains(next.whole.objects, "v2") {
		t.Errorf("a new generation kept the old plan: %q", next.whole.objects)
	}
	if one, _ := c.plan(&ssv1alpha1.SecretSync{Spec: ssv1alpha1.SecretSyncSpec{SecretObject: ssv1alpha1.SecretObject{Data: ss.Spec.SecretObject.Data[:1]}}}, class, true); one.whole.serves("b") {
		t.Errorf("other objects read share a plan: %+v", one)
	}
	ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{TargetKey: "z", SourcePath: "nothing"})
	for range 2 {
		if _, err := c.plan(ss, class, true); err == nil || err.reason != ssv1alpha1.ReasonUserInputValidationFailed {
			t.Errorf("a sourcePath naming no object: %v", err)
		}
	}
}

func TestItemsThatCannotBeReadArePartialSyncOnlyWhenSomeAreReadAndPartialSyncIsOn(t *testing.T) {
	for _, tc := range []struct {
		name          string
		failed, total int
		partialSync   bool
		want          string
	}{
		{"no item fails", 0, 3, true, ""},
		{"one of three fails", 1, 3, true, ssv1alpha1.ReasonPartialSync},
		{"every item fails", 3, 3, true, ssv1alpha1.ReasonProviderError},
		{"the only item fails", 1, 1, true, ssv1alpha1.ReasonProviderError},
		{"one of three fails with partial sync off", 1, 3, false, ssv1alpha1.ReasonProviderError},
	} {
		if got := FailedItemsReason(tc.failed, tc.total, tc.partialSync); got != tc.want {
			t.Errorf("%s: FailedItemsReason(%d, %d, %t) = %q, want %q", tc.name, tc.failed, tc.total, tc.partialSync, got, tc.want)
		}
	}
}
