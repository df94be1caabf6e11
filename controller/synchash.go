package controller

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// hashKeyBytes is the size of the syncHash key.
const hashKeyBytes = 32

// hashKeyField is the data key of the hash key Secret.
const hashKeyField = "key"

// syncHash returns the syncHash of a desired Secret: HMAC-SHA256, keyed by
// the controller's hash key, over the Secret content and the identity and
// generation of the SecretSync and SecretProviderClass it came from. Anyone
// who can read status but not the key learns nothing about the values; a
// change of the content, of the SecretSync spec (including
// forceSynchronization) or of the class changes the hash.
func syncHash(key []byte, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, d *desiredSecret) string {
	h := hmac.New(sha256.New, key)
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(string(ss.UID))
	field(strconv.FormatInt(ss.Generation, 10))
	field(string(class.UID))
	field(strconv.FormatInt(class.Generation, 10))
	field(string(d.secretType))
	writeMap(field, d.data)
	writeMap(field, d.labels)
	writeMap(field, d.annotations)
	return hex.EncodeToString(h.Sum(nil))
}

func writeMap[V ~string | ~[]byte](field func(string), m map[string]V) {
	field(strconv.Itoa(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		field(k)
		field(string(m[k]))
	}
}

// LoadHashKey returns the syncHash key kept in the Secret named by key,
// creating the Secret with a random key when it does not exist. c must read
// from the API server directly: the Secret is not managed, so the manager's
// cache does not hold it.
func LoadHashKey(ctx context.Context, c client.Client, key types.NamespacedName) ([]byte, error) {
	for range 2 {
		secret := &corev1.Secret{}
		err := c.Get(ctx, key, secret)
		if err == nil {
			k := secret.Data[hashKeyField]
			if len(k) < hashKeyBytes {
				return nil, fmt.Errorf("hash key Secret %s: data key %q holds %d bytes, want at least %d", key, hashKeyField, len(k), hashKeyBytes)
			}
			return k, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading hash key Secret %s: %w", key, err)
		}
		k := make([]byte, hashKeyBytes)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("generating hash key: %w", err)
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{hashKeyField: k},
		}
		err = c.Create(ctx, secret)
		if err == nil {
			return k, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating hash key Secret %s: %w", key, err)
		}
		// Another replica created it first: read theirs.
	}
	return nil, fmt.Errorf("hash key Secret %s: created and deleted concurrently; retry", key)
}
