// Package upstreamprovider is a double of the upstream Azure Key Vault
// provider for the Secrets Store CSI driver
// (Azure/secrets-store-csi-driver-provider-azure v1.8.2, the provider the
// AKS Secret Store extension ships), written for this project's conformance
// suite. It answers the CSIDriverProvider gRPC API (Version, Mount) as that
// provider answers it on the wire, so that kvsync's controller can be tested
// against upstream's behaviour rather than against kvsync's own provider
// (package provider), which answers differently on purpose.
//
// A Server is used like an httptest server: New returns a value that
// implements v1alpha1.CSIDriverProviderServer, to be registered on a
// grpc.Server the test runs; Options.Transport points the real azidentity,
// azsecrets, azkeys and azcertificates clients at a fake (package
// fakevault).
//
// # What the double reproduces
//
// Every Mount failure is a plain error, which gRPC answers with code Unknown
// and the message "failed to mount objects, error: <cause>" (or "failed to
// unmarshal attributes|secrets|file permission, error: <cause>" for a
// request that is not JSON). The checks run in upstream's order with
// upstream's messages: pod name and namespace, the identity mode flags,
// keyvaultName, tenantID (then the legacy tenantId), cloudName, the
// workload identity token or the service principal of the node-publish
// secrets, objects and each object's format, encoding and file name, and
// the vault name. Objects are then read one at a time, in order; the first
// failure ends the Mount, wrapped as
// "failed to get objectType:<t>, objectName:<n>, objectVersion:<v>: <cause>",
// where the cause of a vault answer is the SDK's ResponseError text. Files,
// file modes, object version IDs, version history, the PEM rendering of
// keys, certificates and certificate-backed secrets (PKCS#12 converted to a
// PKCS#8 key followed by the certificates, ordered leaf first as upstream's
// default construct-pem-chain does) and objectEncoding follow upstream too.
// A new credential is made for every Mount, the SDK clients keep their
// default retry policy, and the caller's context is the only deadline.
//
// Upstream's quirks are kept, since the controller meets them in
// production: an invalid filePermission is not refused but gives file
// mode 0; objectVersionHistory N returns up to N+1 versions when the object
// has more than N; objectType and the pfx check are case-sensitive.
//
// # What it does not reproduce
//
// Only workload identity (clientID and a ServiceAccount token for
// api://AzureADTokenExchange) and the service principal of the
// node-publish secrets authenticate. usePodIdentity, useVMManagedIdentity
// and useAzureTokenProxy are parsed and checked as upstream checks them,
// but a Mount that would use one of them fails where upstream would build
// its credential, with a message saying the double does not support it.
// Only the Azure public cloud is served (cloudName empty, AzurePublicCloud
// or AzureCloud); upstream's other clouds and Azure Stack
// (cloudEnvFileName) are refused as the double's limit. Upstream's metrics,
// logs and health service are not reproduced, and where upstream would
// panic on an answer the service never gives (a certificate-backed secret
// without a content type, a key without a type or curve), the double
// returns an error instead.
package upstreamprovider
