package keyvault_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

func seedSecrets(t *testing.T, v *keyvault.Vault, n int) {
	t.Helper()
	for i := range n {
		if _, err := v.SetSecret(fmt.Sprintf("secret-%03d", i), "value", nil); err != nil {
			t.Fatal(err)
		}
	}
}

func pageSizes(t *testing.T, c *azsecrets.Client) ([]int, []string) {
	t.Helper()
	var sizes []int
	var names []string
	pager := c.NewListSecretPropertiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("NextPage: %v", err)
		}
		sizes = append(sizes, len(page.Value))
		for _, p := range page.Value {
			names = append(names, p.ID.Name())
		}
	}
	return sizes, names
}

func TestListingPagesAsTheServicePages(t *testing.T) {
	tests := []struct {
		name       string
		interleave bool
		sizes      []int
	}{
		{"sixty secrets come in three pages of the service page size", false, []int{25, 25, 10}},
		{"empty intermediate pages with a nextLink still lead to the rest", true, []int{25, 0, 25, 0, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			cfg := rbacVault("kv-paging")
			cfg.InterleaveEmptyPages = tt.interleave
			v := h.vault(t, cfg)
			seedSecrets(t, v, 60)
			c, _ := h.secrets(t, v, tokenOwner)
			sizes, names := pageSizes(t, c)
			if fmt.Sprint(sizes) != fmt.Sprint(tt.sizes) {
				t.Errorf("page sizes = %v, want %v", sizes, tt.sizes)
			}
			if len(names) != 60 {
				t.Fatalf("listed %d secrets, want 60", len(names))
			}
			seen := map[string]bool{}
			for _, n := range names {
				if seen[n] {
					t.Errorf("%s listed twice", n)
				}
				seen[n] = true
			}
		})
	}
}

func TestNextLinkIsAnAbsoluteURLWithTheAPIVersionAndASkipToken(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-nextlink"))
	seedSecrets(t, v, 30)
	resp, body := h.raw(t, http.MethodGet, v.URL()+"secrets?api-version=7.4&maxresults=10", tokenOwner, "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var page struct {
		Value    []json.RawMessage `json:"value"`
		NextLink *string           `json:"nextLink"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Value) != 10 || page.NextLink == nil {
		t.Fatalf("page = %d items, nextLink %v", len(page.Value), page.NextLink)
	}
	u, err := url.Parse(*page.NextLink)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "https" || u.Host != "kv-nextlink.vault.azure.net:443" || u.Path != "/secrets" ||
		q.Get("api-version") != "7.4" || q.Get("$skiptoken") == "" || q.Get("maxresults") != "10" {
		t.Errorf("nextLink = %s", *page.NextLink)
	}
	var last struct {
		Value    []json.RawMessage `json:"value"`
		NextLink *string           `json:"nextLink"`
	}
	next := *page.NextLink
	for range 2 {
		resp, body = h.raw(t, http.MethodGet, next, tokenOwner, "")
		if err := json.Unmarshal(body, &last); err != nil || resp.StatusCode != 200 {
			t.Fatalf("following nextLink: %d %s", resp.StatusCode, body)
		}
		if last.NextLink != nil {
			next = *last.NextLink
		}
	}
	if last.NextLink != nil || !strings.Contains(string(body), `"nextLink":null`) {
		t.Errorf("last page nextLink = %s", body)
	}
	t.Run("a skiptoken the service did not issue is BadParameter", func(t *testing.T) {
		resp, body := h.raw(t, http.MethodGet, v.URL()+"secrets?api-version=7.4&$skiptoken=!!", tokenOwner, "")
		if se := parseEnvelope(t, resp.StatusCode, resp.Header, body); se.Status != 400 || se.Code != "BadParameter" {
			t.Errorf("got %+v", se)
		}
	})
}

// TestVersionListsPageInVersionIDOrder: the service lists versions by
// version ID, not in creation order (recorded: azure-sdk-for-python
// test_secrets_client.test_list_versions_7_3.yaml; azure-sdk-for-net
// SecretClientLiveTests GetPropertiesOfSecretVersions, 50 versions in two
// pages of 25, the last page's nextLink null).
func TestVersionListsPageInVersionIDOrder(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-versionpages"))
	var want []string
	for i := range 30 {
		id, err := v.SetSecret("rotating", fmt.Sprint(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	c, _ := h.secrets(t, v, tokenOwner)
	var got []string
	pages := 0
	pager := c.NewListSecretPropertiesVersionsPager("rotating", nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, p := range page.Value {
			got = append(got, p.ID.Version())
		}
	}
	created := slices.Clone(want)
	slices.Sort(want)
	if pages != 2 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%d pages, versions %v\nwant %v", pages, got, want)
	}
	infos, err := v.SecretVersions("rotating")
	if err != nil || len(infos) != 30 || infos[29].Version != created[29] {
		t.Errorf("SecretVersions = %d, %v", len(infos), err)
	}
}
