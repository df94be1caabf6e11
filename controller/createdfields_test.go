package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func TestTheFieldsOfACreateAreAdoptedOnlyUntilTheControllerApplies(t *testing.T) {
	own := func(op metav1.ManagedFieldsOperationType) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: ssv1alpha1.FieldManager, Operation: op}
	}
	other := metav1.ManagedFieldsEntry{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate}
	status := own(metav1.ManagedFieldsOperationUpdate)
	status.Subresource = "status"
	tests := []struct {
		name    string
		managed []metav1.ManagedFieldsEntry
		want    int
	}{
		{"a Secret the controller created is adopted", []metav1.ManagedFieldsEntry{own(metav1.ManagedFieldsOperationUpdate)}, 0},
		{"another manager's entry is left alone and the controller's is found after it", []metav1.ManagedFieldsEntry{other, own(metav1.ManagedFieldsOperationUpdate)}, 1},
		{"a Secret the controller applied needs nothing", []metav1.ManagedFieldsEntry{own(metav1.ManagedFieldsOperationApply)}, -1},
		{"an Apply entry beside an Update entry needs nothing", []metav1.ManagedFieldsEntry{own(metav1.ManagedFieldsOperationUpdate), own(metav1.ManagedFieldsOperationApply)}, -1},
		{"an entry of a subresource is not the create's", []metav1.ManagedFieldsEntry{status}, -1},
		{"a Secret only others wrote needs nothing", []metav1.ManagedFieldsEntry{other}, -1},
		{"no managed fields need nothing", nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := createdFieldsEntry(tt.managed); got != tt.want {
				t.Errorf("createdFieldsEntry = %d, want %d", got, tt.want)
			}
		})
	}
}
