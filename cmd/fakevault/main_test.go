package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

func TestParseFlagsRefusesBadInputWithAClearError(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen="}, "--listen"},
		{[]string{"--token-lifetime=1s"}, "--token-lifetime"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--no-such-flag"}, "not defined"},
		{[]string{"--dns-answer=somewhere"}, "--dns-answer"},
		{[]string{"--ca-cert=ca.pem"}, "--ca-key"},
		{[]string{"--ca-key=ca.key"}, "--ca-cert"},
		{[]string{"--fidelity=exact"}, "--fidelity"},
		{[]string{"--page-size=26"}, "--page-size"},
	} {
		_, err := parseFlags(tt.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
}

func TestFidelityDefaultsToTheServicesAndEachDelayCanBeSet(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want keyvault.Fidelity
	}{
		{nil, keyvault.ServiceFidelity},
		{[]string{"--fidelity=instant"}, keyvault.Fidelity{}},
		{[]string{"--fidelity=instant", "--delete-delay=1s"}, keyvault.Fidelity{DeleteDelay: time.Second}},
		{[]string{"--purge-delay=0"}, keyvault.Fidelity{DeleteDelay: keyvault.ServiceFidelity.DeleteDelay, RecoverDelay: keyvault.ServiceFidelity.RecoverDelay, TrailingEmptyPage: true}},
	} {
		o, err := parseFlags(tt.args, io.Discard)
		if err != nil || o.fidelity != tt.want {
			t.Errorf("parseFlags(%q) fidelity = %+v, %v; want %+v", tt.args, o.fidelity, err, tt.want)
		}
	}
}

func TestTheBinaryServesWithTheCAOfCACertAndCAKeyAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ca, err := fakevault.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	for restart := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan addrs, 1)
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, options{listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", dnsAnswer: "127.0.0.1",
				caCert: certFile, caKey: keyFile, region: "eastus", tokenLifetime: time.Hour},
				slog.New(slog.NewTextHandler(io.Discard, nil)), func(a addrs) { ready <- a })
		}()
		var a addrs
		select {
		case a = <-ready:
		case err := <-done:
			cancel()
			t.Fatalf("run %d: %v", restart, err)
		}
		conn, err := tls.Dial("tcp", a.https, &tls.Config{ServerName: fakevault.LoginHost, RootCAs: pool})
		if err != nil {
			t.Errorf("run %d: a client trusting only the loaded CA: %v", restart, err)
		} else {
			conn.Close()
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run %d: %v", restart, err)
		}
	}

	other, err := fakevault.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, other.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), options{listen: "127.0.0.1:0", caCert: certFile, caKey: keyFile, dnsAnswer: "127.0.0.1", tokenLifetime: time.Hour},
		slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "--ca-cert") {
		t.Errorf("run with a key that is not the certificate's = %v, want an error naming --ca-cert", err)
	}
}

func TestTheBinarySeedsAVaultOverTheAdminAPIAndServesItThroughTheProxy(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, options{listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", proxyListen: "127.0.0.1:0", dnsListen: "127.0.0.1:0", dnsAnswer: "127.0.0.1",
			caOut: caFile, region: "westeurope", tokenLifetime: time.Hour},
			slog.New(slog.NewTextHandler(io.Discard, nil)), func(a addrs) { ready <- a })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	a := <-ready
	admin := "http://" + a.admin

	post := func(method, path, body string, want int) []byte {
		t.Helper()
		req, err := http.NewRequest(method, admin+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	post("POST", "/vaults", `{"name":"contoso"}`, 200)
	out := post("PUT", "/vaults/contoso/secrets/db-password", `{"value":"kvsync-canary-bin"}`, 200)
	var set struct{ Version string }
	if err := json.Unmarshal(out, &set); err != nil || len(set.Version) != 32 {
		t.Fatalf("set secret answered %s", out)
	}
	post("POST", "/vaults/contoso/certificates/web", `{"contentType":"application/x-pem-file","dnsNames":["web.example"]}`, 200)
	post("POST", "/vaults/contoso/roleassignments", `{"principalId":"00000000-0000-0000-0000-000000000001","role":"Key Vault Secrets User"}`, 204)
	post("DELETE", "/vaults/contoso/roleassignments/00000000-0000-0000-0000-000000000001", "", 204)
	post("DELETE", "/vaults/nope/roleassignments/00000000-0000-0000-0000-000000000001", "", 404)
	post("PUT", "/vaults/nope/secrets/x", `{"value":"v"}`, 404)
	post("PUT", "/vaults/contoso/secrets/bad_name", `{"value":"v"}`, 400)
	post("PUT", "/vaults/contoso/secrets/x", `{"value":"v","unknown":1}`, 400)

	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, a.dns)
	}}
	if addrs, err := resolver.LookupHost(context.Background(), "contoso.vault.azure.net"); err != nil || len(addrs) != 1 || addrs[0] != "127.0.0.1" {
		t.Errorf("DNS for a vault: %v, %v", addrs, err)
	}
	if _, err := resolver.LookupHost(context.Background(), "nope.vault.azure.net"); err == nil {
		t.Error("DNS resolved a vault that does not exist")
	}

	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caPEM, []byte(post("GET", "/ca.pem", "", 200))) {
		t.Error("--ca-out and /ca.pem differ")
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	proxyURL, _ := url.Parse("http://" + a.proxy)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(fakevault.VaultURL("contoso") + "secrets/db-password/?api-version=7.4")
	if err != nil {
		t.Fatalf("GET through the proxy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "login.microsoftonline.com") {
		t.Errorf("unauthenticated GET answered %d %q, want the 401 challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if region := resp.Header.Get("x-ms-keyvault-region"); region != "westeurope" {
		t.Errorf("region header %q, want westeurope", region)
	}

	// A vault firewall injected over the admin API.
	post("POST", "/faults", "- name: firewall\n  kind: vault.error\n  status: 403\n  code: Forbidden\n  innerCode: ForbiddenByFirewall\n  scope: {vault: contoso}\n", 200)
	resp, err = client.Get(fakevault.VaultURL("contoso") + "secrets/db-password/?api-version=7.4")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("with the firewall fault: %d, want 403", resp.StatusCode)
	}
	post("POST", "/faults", `{"name":"gateway","kind":"gateway.vault-blocked"}`, 200)
	post("POST", "/faults", `{"name":"bad","kind":"nonsense"}`, 400)
	if injected := post("GET", "/faults/journal", "", 200); !bytes.Contains(injected, []byte(`"fault":"firewall"`)) {
		t.Errorf("faults journal: %s", injected)
	}
	post("DELETE", "/faults/firewall", "", 204)
	post("DELETE", "/faults/firewall", "", 404)
	post("DELETE", "/faults", "", 204)
	if active := post("GET", "/faults", "", 200); string(bytes.TrimSpace(active)) != "[]" {
		t.Errorf("faults after clearing: %s", active)
	}

	journal := post("GET", "/journal", "", 200)
	if bytes.Contains(journal, []byte("kvsync-canary-bin")) || !bytes.Contains(journal, []byte(`"status":401`)) {
		t.Errorf("journal: %s", journal)
	}
}
