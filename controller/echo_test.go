package controller

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func TestASecretEventIsAnEchoOnlyWhenEveryManagerIsTheController(t *testing.T) {
	ours := metav1.ManagedFieldsEntry{Manager: ssv1alpha1.FieldManager, Operation: metav1.ManagedFieldsOperationApply}
	tests := []struct {
		name     string
		managers []metav1.ManagedFieldsEntry
		echo     bool
	}{
		{"written by the controller only", []metav1.ManagedFieldsEntry{ours}, true},
		{"edited by someone else too", []metav1.ManagedFieldsEntry{ours, {Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate}}, false},
		{"taken over by another applier", []metav1.ManagedFieldsEntry{{Manager: "platform-team", Operation: metav1.ManagedFieldsOperationApply}}, false},
		{"no managed fields (stripped)", nil, false},
	}
	for _, tt := range tests {
		if got := onlyManagedByController(tt.managers); got != tt.echo {
			t.Errorf("%s: echo = %v, want %v", tt.name, got, tt.echo)
		}
	}
}
