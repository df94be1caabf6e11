// Command proxyclient reads one secret with the unmodified azidentity and
// azsecrets clients and default options, as any program out of process would.
// The fake is reached only through the HTTPS_PROXY and SSL_CERT_FILE
// environment variables. It prints the SHA-256 of the value, never the value.
//
//	proxyclient <tenant> <client-id> <client-secret> <vault> <secret>
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

func main() {
	if len(os.Args) != 6 {
		fmt.Fprintln(os.Stderr, "usage: proxyclient <tenant> <client-id> <client-secret> <vault> <secret>")
		os.Exit(2)
	}
	tenant, clientID, secret, vault, name := os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "credential:", err)
		os.Exit(1)
	}
	client, err := azsecrets.NewClient("https://"+vault+".vault.azure.net/", cred, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.GetSecret(ctx, name, "", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "get secret:", err)
		os.Exit(1)
	}
	sum := sha256.Sum256([]byte(*resp.Value))
	fmt.Println(hex.EncodeToString(sum[:]))
}
