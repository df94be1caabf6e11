package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func TestSyncHash(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{UID: "ss-uid", Generation: 1}}
	class := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{UID: "spc-uid", Generation: 1}}
	desired := func() *desiredSecret {
		return &desiredSecret{
			secretType:  corev1.SecretTypeOpaque,
			data:        map[string][]byte{"a": []byte("kvsync-canary-hash"), "b": []byte("2")},
			labels:      map[string]string{"l": "1"},
			annotations: map[string]string{"n": "1"},
		}
	}
	base := syncHash(key, ss, class, desired())

	if got := syncHash(key, ss, class, desired()); got != base {
		t.Fatalf("the hash is not deterministic: %s then %s", base, got)
	}
	if strings.Contains(base, "kvsync-canary-hash") || len(base) != 64 {
		t.Fatalf("hash %q is not a 64-hex digest", base)
	}

	changes := []struct {
		name string
		hash func() string
	}{
		{"a changed value", func() string { d := desired(); d.data["a"] = []byte("x"); return syncHash(key, ss, class, d) }},
		{"a value moved to another key", func() string {
			d := desired()
			d.data = map[string][]byte{"a": []byte("kvsync-canary-hash2"), "b": nil}
			return syncHash(key, ss, class, d)
		}},
		{"a changed type", func() string { d := desired(); d.secretType = corev1.SecretTypeTLS; return syncHash(key, ss, class, d) }},
		{"a changed label", func() string { d := desired(); d.labels["l"] = "2"; return syncHash(key, ss, class, d) }},
		{"a changed annotation", func() string { d := desired(); d.annotations["n"] = "2"; return syncHash(key, ss, class, d) }},
		{"a new SecretSync generation", func() string {
			s := ss.DeepCopy()
			s.Generation = 2
			return syncHash(key, s, class, desired())
		}},
		{"a new class generation", func() string {
			c := class.DeepCopy()
			c.Generation = 2
			return syncHash(key, ss, c, desired())
		}},
		{"another key", func() string { return syncHash([]byte("another key, 32 bytes long......"), ss, class, desired()) }},
	}
	for _, c := range changes {
		if c.hash() == base {
			t.Errorf("%s does not change the hash", c.name)
		}
	}
}

func TestSecretMatches(t *testing.T) {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{UID: "ss-uid"}}
	isController := true
	secret := func() *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Labels:          map[string]string{"l": "1", "other": "x"},
				Annotations:     map[string]string{"n": "1"},
				OwnerReferences: []metav1.OwnerReference{{UID: "ss-uid", Controller: &isController}},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"a": []byte("1"), "extra": []byte("kept")},
		}
	}
	d := &desiredSecret{
		secretType:  corev1.SecretTypeOpaque,
		data:        map[string][]byte{"a": []byte("1")},
		labels:      map[string]string{"l": "1"},
		annotations: map[string]string{"n": "1"},
	}
	tests := []struct {
		name   string
		mutate func(*corev1.Secret)
		want   bool
	}{
		{"a Secret holding everything desired matches, whatever else it holds", func(*corev1.Secret) {}, true},
		{"a changed value does not match", func(s *corev1.Secret) { s.Data["a"] = []byte("2") }, false},
		{"a missing key does not match", func(s *corev1.Secret) { delete(s.Data, "a") }, false},
		{"another type does not match", func(s *corev1.Secret) { s.Type = corev1.SecretTypeTLS }, false},
		{"a changed label does not match", func(s *corev1.Secret) { s.Labels["l"] = "2" }, false},
		{"a missing annotation does not match", func(s *corev1.Secret) { delete(s.Annotations, "n") }, false},
		{"a missing owner reference does not match", func(s *corev1.Secret) { s.OwnerReferences = nil }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := secret()
			tt.mutate(s)
			if got := secretMatches(s, d, ss); got != tt.want {
				t.Errorf("secretMatches = %v, want %v", got, tt.want)
			}
		})
	}
}
