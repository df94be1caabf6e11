package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestTheSecretInvariantCatchesDeletedBlankedLostAndForeignValues(t *testing.T) {
	a, b := object{vault: "kv", name: "a"}, object{vault: "kv", name: "b"}
	key := client.ObjectKey{Namespace: "ns", Name: "app"}
	w := &world{syncs: map[client.ObjectKey][]object{key: {a, b}}, history: map[object][]string{a: {value(a, 1), value(a, 2)}, b: {value(b, 1)}}}
	secret := func(data map[string]string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", ResourceVersion: "1"}, Data: map[string][]byte{}}
		for k, v := range data {
			s.Data[k] = []byte(v)
		}
		return s
	}
	tests := []struct {
		name  string
		steps func(c *checker)
		want  string
	}{
		{"an older value is fine", func(c *checker) {
			c.secret(watch.Added, secret(map[string]string{"k0": value(a, 1), "k1": value(b, 1)}))
		}, ""},
		{"a key missing since creation is fine", func(c *checker) { c.secret(watch.Added, secret(map[string]string{"k0": value(a, 2)})) }, ""},
		{"a deleted Secret", func(c *checker) { c.secret(watch.Deleted, secret(nil)) }, "was deleted"},
		{"a blanked key", func(c *checker) { c.secret(watch.Modified, secret(map[string]string{"k0": "", "k1": value(b, 1)})) }, "is empty"},
		{"a value the vault never had", func(c *checker) {
			c.secret(watch.Modified, secret(map[string]string{"k0": "stale cache", "k1": value(b, 1)}))
		}, "never had"},
		{"a key removed", func(c *checker) {
			c.secret(watch.Added, secret(map[string]string{"k0": value(a, 1), "k1": value(b, 1)}))
			c.secret(watch.Modified, secret(map[string]string{"k0": value(a, 2)}))
		}, "lost key(s) k1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newChecker(w)
			tt.steps(c)
			got := strings.Join(c.snapshot(), "\n")
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("violations %q, want one with %q", got, tt.want)
			}
			if strings.Contains(got, canaryPrefix) {
				t.Errorf("a violation quotes a value: %q", got)
			}
		})
	}
}
