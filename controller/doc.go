// Package controller reconciles SecretSync objects into Kubernetes Secrets.
//
// For each SecretSync the reconciler reads the referenced SecretProviderClass,
// requests a token for the named ServiceAccount, asks the provider for the
// files over the CSI provider gRPC API (package csiprovider), and writes the
// Secret of the same name with server-side apply under the field manager
// v1-secrets-store-sync-controller. Every pass ends in one condition, Create
// or Update, whose reason is one of the constants of the SecretSync API; the
// status is written once per pass and only when it changed.
//
// A Secret is written only if it is managed: it carries the managed label and
// annotation, or it does not exist yet. A failure never deletes or blanks an
// existing Secret.
package controller
