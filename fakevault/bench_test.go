package fakevault_test

import (
	"context"
	"testing"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// BenchmarkGetSecret reads one secret through the unmodified azsecrets client
// over TLS, with tokens from the fake Entra ID verified on every request: the
// whole in-process path a provider takes. Reported as requests/s.
func BenchmarkGetSecret(b *testing.B) {
	srv, err := fakevault.NewServer(fakevault.Options{JournalLimit: 1024})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	vault, err := srv.CreateVault(keyvault.VaultConfig{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := vault.SetSecret("db-password", "kvsync-canary-bench", nil); err != nil {
		b.Fatal(err)
	}
	client, err := srv.Client("bench")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.GetSecret(ctx, "db-password", "", nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := client.GetSecret(ctx, "db-password", "", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
