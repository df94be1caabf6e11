package controller

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// FuzzPlanMounts feeds any objects parameter and sourcePaths to the Mount
// planner: it never panics, and a plan it makes asks for every object read
// and serves every sourcePath, one object per call when split.
func FuzzPlanMounts(f *testing.F) {
	f.Add("array:\n  - |\n    objectName: a\n    objectType: secret\n  - |\n    objectName: b\n    objectAlias: bee\n", "a\nbee/0\na/tls.crt", true)
	f.Add("array:\n  - |\n    objectName: a\n", "a", false)
	f.Add("array: [\"objectName: x\"]", "x\nx/1", true)
	f.Add("secrets: whatever", "anything", true)
	f.Add("array:\n  - |\n    objectName: é\n    objectAlias: ü/1\n", "ü", true)
	f.Fuzz(func(t *testing.T, objects, paths string, partial bool) {
		class := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Spec: spcv1.SecretProviderClassSpec{Parameters: map[string]string{"objects": objects}}}
		ss := &ssv1alpha1.SecretSync{}
		for i, p := range strings.Split(paths, "\n") {
			ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{TargetKey: string(rune('a' + i%26)), SourcePath: p})
		}
		plans, err := planMounts(ss, class, partial)
		if err != nil {
			if err.reason != ssv1alpha1.ReasonUserInputValidationFailed && err.reason != ssv1alpha1.ReasonControllerInternalError {
				t.Fatalf("unexpected reason %q: %s", err.reason, err.message)
			}
			return
		}
		for _, d := range ss.Spec.SecretObject.Data {
			root := sourceRoot(d.SourcePath)
			if !plans.whole.serves(root) {
				t.Fatalf("the whole plan does not serve %q: %+v", root, plans.whole)
			}
			if plans.each != nil && !slices1(plans.each, root) {
				t.Fatalf("no per-object plan serves %q", root)
			}
		}
		if plans.whole.objects == "" {
			return
		}
		again, perr := parseClassObjects(plans.whole.objects)
		if perr != nil || len(again) != len(plans.whole.roots) {
			t.Fatalf("the planned objects parameter does not parse back: %q (%d objects for %d roots)", plans.whole.objects, len(again), len(plans.whole.roots))
		}
	})
}

// slices1 reports whether exactly one plan serves root.
func slices1(plans []mountPlan, root string) bool {
	n := 0
	for _, p := range plans {
		if len(p.roots) != 1 {
			return false
		}
		if p.serves(root) {
			n++
		}
	}
	return n == 1
}

// FuzzPartialSyncSummary checks the PartialSync message for any items: it
// is valid JSON within a condition message's limit, sorted by targetKey,
// and every item is in it or counted as omitted.
func FuzzPartialSyncSummary(f *testing.F) {
	f.Add("a\nb\nc", "SecretNotFound\n\nForbidden", 1)
	f.Add("tls.crt\ntls.key", "\"quoted\" \\ error\u2028", 300)
	f.Add(strings.Repeat("k", 250), strings.Repeat("e", 5000), 200)
	f.Fuzz(func(t *testing.T, keys, errs string, repeat int) {
		repeat = min(max(repeat, 1), 300)
		var items []itemStatus
		errList := strings.Split(errs, "\n")
		for r := range repeat {
			for i, k := range strings.Split(keys, "\n") {
				it := itemStatus{TargetKey: k + strings.Repeat("_", r%3), SourcePath: k, Status: "Succeeded"}
				if e := errList[i%len(errList)]; e != "" {
					it.Status, it.Error = "Failed", e
				}
				items = append(items, it)
			}
		}
		msg := partialSync(items).message
		if len(msg) > 32768 {
			t.Fatalf("summary of %d items is %d bytes", len(items), len(msg))
		}
		var sum struct {
			Items            []itemStatus `json:"items"`
			OmittedSucceeded int          `json:"omittedSucceeded"`
			OmittedFailed    int          `json:"omittedFailed"`
		}
		if err := json.Unmarshal([]byte(msg), &sum); err != nil {
			t.Fatalf("summary is not JSON: %v: %.200s", err, msg)
		}
		if n := len(sum.Items) + sum.OmittedSucceeded + sum.OmittedFailed; n != len(items) {
			t.Fatalf("%d items + %d + %d omitted, want %d", len(sum.Items), sum.OmittedSucceeded, sum.OmittedFailed, len(items))
		}
		for i := 1; i < len(sum.Items); i++ {
			if sum.Items[i-1].TargetKey > sum.Items[i].TargetKey {
				t.Fatalf("items not sorted by targetKey at %d", i)
			}
		}
	})
}

// FuzzCheckSpec feeds any type and targetKeys to the spec check: it never
// panics, refuses service-account-token always and decides the same twice.
func FuzzCheckSpec(f *testing.F) {
	f.Add("kubernetes.io/tls", "tls.crt\ntls.key", "")
	f.Add("kubernetes.io/service-account-token", "token", "")
	f.Add("", "a\nb", "Opaque")
	f.Add("Opaque", "x", "kubernetes.io/tls")
	f.Fuzz(func(t *testing.T, secretType, keys, existingType string) {
		r := &SecretSyncReconciler{}
		ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}}
		ss.Spec.SecretObject.Type = secretType
		for _, k := range strings.Split(keys, "\n") {
			ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{TargetKey: k, SourcePath: k})
		}
		s := &syncScope{secretSync: ss}
		if existingType != "" {
			s.existing = &corev1.Secret{Type: corev1.SecretType(existingType)}
		}
		first, second := r.checkSpec(context.Background(), s), r.checkSpec(context.Background(), s)
		if (first == nil) != (second == nil) {
			t.Fatal("the spec check decided differently twice")
		}
		if secretType == string(corev1.SecretTypeServiceAccountToken) && first == nil {
			t.Fatal("a service-account-token Secret was allowed")
		}
		if first != nil && first.reason != ssv1alpha1.ReasonUserInputValidationFailed {
			t.Fatalf("reason %q, want UserInputValidationFailed", first.reason)
		}
	})
}
