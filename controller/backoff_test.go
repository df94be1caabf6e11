package controller

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

func TestAFailedSecretSyncIsRetriedWithinThePollIntervalHoweverManyFail(t *testing.T) {
	poll := 10 * time.Second
	backoff := failureBackoff(poll)
	// 5,000 SecretSyncs fail ten times each, as in an API server restart.
	var last time.Duration
	for range 10 {
		for i := range 5000 {
			last = backoff.When(reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: fmt.Sprint("app-", i)}})
			if last > poll {
				t.Fatalf("a retry waits %s, beyond the poll interval %s", last, poll)
			}
		}
	}
	if last != poll {
		t.Errorf("after ten failures a retry waits %s, want the poll interval %s", last, poll)
	}
	fresh := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "healthy"}}
	if d := backoff.When(fresh); d != failureBaseDelay {
		t.Errorf("the first failure of another SecretSync waits %s, want %s", d, failureBaseDelay)
	}
	if d := failureBackoff(time.Hour).When(fresh); d != failureBaseDelay {
		t.Errorf("first failure with an hourly poll: %s", d)
	}
}
