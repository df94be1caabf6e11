package main

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	valid := options{namespace: "kvsync-system", rotationPollSeconds: 3600, providerTimeout: time.Second, maxConcurrentSyncs: 1, allowedSecretTypes: "Opaque", vaultReads: 20, providerSocketDir: "provider"}
	tests := []struct {
		name   string
		mutate func(*options)
		want   string
	}{
		{"valid options pass", func(*options) {}, ""},
		{"a missing namespace is named with its environment variable", func(o *options) { o.namespace = "" }, "$POD_NAMESPACE"},
		{"a poll interval below one second is refused", func(o *options) { o.rotationPollSeconds = 0 }, "--rotation-poll-interval-in-seconds"},
		{"a non-positive provider timeout is refused", func(o *options) { o.providerTimeout = 0 }, "--provider-timeout"},
		{"no concurrent syncs is refused", func(o *options) { o.maxConcurrentSyncs = 0 }, "--max-concurrent-syncs"},
		{"a negative jitter is refused", func(o *options) { o.jitterSeconds = -1 }, "--jitter-seconds"},
		{"an empty list of allowed types is refused", func(o *options) { o.allowedSecretTypes = " , " }, "--allowed-secret-types"},
		{"a type with a space is refused", func(o *options) { o.allowedSecretTypes = "Opaque,bad type" }, "is not a Secret type"},
		{"a zero vault rate is refused", func(o *options) { o.vaultReads = 0 }, "--max-vault-reads-per-second"},
		{"an empty provider socket directory is refused", func(o *options) { o.providerSocketDir = "" }, "--provider-socket-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := valid
			tt.mutate(&o)
			err := o.validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("validate() = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
