// Package keyvault is a fake Azure Key Vault data plane
// (https://<name>.vault.azure.net/) that the unmodified Azure SDK clients
// (azsecrets, azkeys, azcertificates) cannot tell from the real service.
//
// A Service holds any number of vaults and answers for all of them through
// one http.Handler, routing by Host. Tests and the simulator's admin API
// seed vaults directly through Vault methods, which bypass authentication
// but keep the service's rules; clients talk to the Handler over TLS.
//
// # Request pipeline
//
// Every request is answered in the order the service answers it:
//
//  1. Host: <vault>.<DomainSuffix>; an unknown vault is answered 404
//     VaultNotFound (the real name would not resolve; see Service.Resolves).
//  2. api-version: 2015-06-01, 2016-10-01, 7.0-7.6, 2025-07-01 and
//     2026-04-01 are accepted; anything else is 400 BadParameter.
//  3. Authentication: no bearer token is 401 with the challenge
//     WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"
//     which the SDK's challenge policy answers by fetching a token for that
//     tenant and scope https://vault.azure.net/.default. The first request
//     of an SDK client carries no body, even for PUT; it is answered 401
//     before any body is read. Tokens go through the TokenVerifier (expiry,
//     signature), then the vault checks the audience (AKV10022) and the
//     issuer against its tenant (AKV10032). Every 401 carries the challenge.
//  4. Rate limit (optional, per vault): 429 Throttled with Retry-After.
//  5. Network rules: private endpoint networks pass; with public access
//     disabled everything else is 403 ForbiddenByConnection; with the
//     firewall on, addresses outside the allowed networks are 403
//     ForbiddenByFirewall.
//  6. Access model: Azure RBAC role assignments by default (403
//     ForbiddenByRbac), or access policies when VaultConfig.UseAccessPolicies
//     is set (403 AccessDenied).
//  7. The operation.
//
// Every answer carries x-ms-request-id, x-ms-keyvault-region,
// x-ms-keyvault-service-version and x-ms-keyvault-network-info, and JSON
// bodies are "application/json; charset=utf-8". Errors use the service's
// envelope {"error":{"code","message","innererror":{"code"}}}; the message
// texts follow the real service, and errors.go notes where each was found.
// Each answered request is recorded in the journal (never values or tokens).
//
// # Covered
//
// Secrets, as azsecrets v1.5.1 calls them: get (latest and by version,
// outContentType conversion for certificate secrets), set (each PUT makes a
// version), update properties, list and list versions with paging
// (maxresults, absolute nextLink with a $skiptoken only the issuing list
// accepts, versions by version ID, optional interleaved and trailing empty
// pages), delete (soft delete with recovery ID and purge dates, or purge
// when soft delete is off), list/get deleted, recover and purge (refused
// under purge protection). Soft-deleted names refuse set with 409
// ObjectIsDeletedButRecoverable; disabled versions refuse get with 403
// SecretDisabled. Options.Fidelity models the seconds a delete, purge or
// recover takes to take effect (ServiceFidelity, from the SDKs'
// recordings), during which the service answers 404 or 409
// ObjectIsBeingDeleted.
//
// Certificates and keys as the Azure Key Vault provider for the Secrets
// Store CSI driver reads them: a certificate created with
// Vault.CreateCertificate exists as a certificate (cer, x5t, kid, sid,
// policy), as a managed key (public JWK, RSA or EC) and as a managed secret
// (PEM: private key then chain; or base64 PKCS#12 without password) sharing
// one version ID. Standalone keys (Vault.CreateKey). Get, list and list
// versions for both, through azkeys and azcertificates. Disabled keys and
// certificates stay readable (only secret values are refused when
// disabled); the real service's behaviour there was not verified.
//
// # Not covered
//
// Backup and restore, key and certificate writes over HTTP (create, import,
// update, delete, rotation, cryptographic operations), deleted keys and
// certificates, certificate operations, issuers and contacts, Managed HSM,
// PoP tokens and CAE claims challenges, trusted-service bypass and virtual
// network rules other than address prefixes. These answer 501
// NotImplemented (or 404/405 for paths the service does not have). The
// service's 25 KiB limit on secret values is not enforced.
package keyvault
