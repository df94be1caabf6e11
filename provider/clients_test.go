package provider

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// cacheParams are the Mount parameters of the ServiceAccount sa of the
// application with the client ID ending in app, for vault, presenting token.
func cacheParams(app int, sa, vault, token string) *mountParams {
	return &mountParams{vault: vault, tenantID: "0e1f2a3b-0000-4000-8000-00000000aa01", clientID: fmt.Sprintf("0e1f2a3b-0000-4000-8000-%012d", app),
		cloud: clouds["azurepubliccloud"], podNamespace: "payments", serviceAccount: sa, token: token}
}

func keyOf(p *mountParams) identityKey {
	return identityKey{cloud: p.cloud.name, tenantID: p.tenantID, clientID: p.clientID, namespace: p.podNamespace, serviceAccount: p.serviceAccount}
}

func mustGet(t *testing.T, c *clientCache, p *mountParams) *vaultClients {
	t.Helper()
	vc, err := c.get(p)
	if err != nil {
		t.Fatal(err)
	}
	return vc
}

// cacheMustBeConsistent fails t unless c keeps at most limit identities and
// limit vault clients, and the identity of every vault client it keeps.
func cacheMustBeConsistent(t *testing.T, c *clientCache, limit int) {
	t.Helper()
	ids, clients := c.cached()
	if len(ids) > limit || len(clients) > limit {
		t.Fatalf("the cache keeps %d identities and %d vault clients, want at most %d of each", len(ids), len(clients), limit)
	}
	for _, ck := range clients {
		if !slices.Contains(ids, ck.identityKey) {
			t.Fatalf("the cache keeps a client of the dropped identity %s/%s for vault %s", ck.clientID, ck.serviceAccount, ck.vault)
		}
	}
}

func TestClientCacheEvictsAnIdentitysClientsWithIt(t *testing.T) {
	c := newClientCache(azcore.ClientOptions{}, 2)
	first := cacheParams(0, "workload", "contoso", "sa-token-0")
	firstClients := mustGet(t, c, first)
	for app := 1; app < 32; app++ {
		mustGet(t, c, cacheParams(app, "workload", "contoso", fmt.Sprintf("sa-token-%d", app)))
		cacheMustBeConsistent(t, c, 2)
	}
	if ids, _ := c.cached(); slices.Contains(ids, keyOf(first)) {
		t.Fatal("the first identity is still cached after 31 others")
	}

	first.token = "sa-token-0-renewed"
	if mustGet(t, c, first) == firstClients {
		t.Error("the identity that came back got the clients built on its dropped credential")
	}
	if got, ok := c.assertion(keyOf(first)); !ok || got != first.token {
		t.Error("the identity that came back does not present the token of the Mount that brought it back")
	}
	cacheMustBeConsistent(t, c, 2)
}

func TestClientCacheDropsTheLeastRecentlyUsedIdentity(t *testing.T) {
	c := newClientCache(azcore.ClientOptions{}, 2)
	a, b, d := cacheParams(1, "workload", "contoso", "sa-token-a"), cacheParams(2, "workload", "contoso", "sa-token-b"), cacheParams(3, "workload", "contoso", "sa-token-d")
	mustGet(t, c, a)
	mustGet(t, c, b)
	mustGet(t, c, a)
	mustGet(t, c, d)
	ids, clients := c.cached()
	if want := []identityKey{keyOf(d), keyOf(a)}; !slices.Equal(ids, want) {
		t.Errorf("identities %v, want %v", ids, want)
	}
	if want := []clientKey{{keyOf(d), "contoso"}, {keyOf(a), "contoso"}}; !slices.Equal(clients, want) {
		t.Errorf("vault clients %v, want %v", clients, want)
	}
}

func TestClientCacheStaysWithinItsBoundUnderChurn(t *testing.T) {
	const limit = 3
	c := newClientCache(azcore.ClientOptions{}, limit)
	r := rand.New(rand.NewPCG(1, 2))
	vaults := []string{"contoso", "fabrikam", "northwind", "tailspin"}
	for i := range 2000 {
		p := cacheParams(r.IntN(4), fmt.Sprintf("sa-%d", r.IntN(3)), vaults[r.IntN(len(vaults))], fmt.Sprintf("sa-token-%d", i))
		vc := mustGet(t, c, p)
		if again := mustGet(t, c, p); again != vc {
			t.Fatal("a second get of the same identity and vault returned other clients")
		}
		cacheMustBeConsistent(t, c, limit)
	}
}
