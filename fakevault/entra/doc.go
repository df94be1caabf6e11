// Package entra is a fake Microsoft Entra ID token service
// (login.microsoftonline.com) that the unmodified Azure SDK clients
// (azidentity over MSAL for Go) cannot tell from the real one. It issues
// app-only access tokens in the client credentials grant, to applications
// authenticating with a client secret or with a federated client assertion
// (workload identity), and verifies the tokens it issued.
//
// # Endpoints
//
// The Handler serves, for a tenant given as a GUID:
//
//	GET  /common/discovery/instance?api-version=1.1&authorization_endpoint=...   instance discovery
//	GET  /<tenant>/v2.0/.well-known/openid-configuration                          v2.0 OpenID configuration
//	GET  /<tenant>/.well-known/openid-configuration                               v1.0 OpenID configuration
//	GET  /<tenant>/discovery/v2.0/keys, /<tenant>/discovery/keys                  JWKS
//	GET  /common/discovery/v2.0/keys, /common/discovery/keys                      JWKS
//	POST /<tenant>/oauth2/v2.0/token                                              token (scope=<resource>/.default)
//	POST /<tenant>/oauth2/token                                                   v1.0 token (resource=<resource>)
//
// Other paths answer 404 with no body; a discovery endpoint asked with a
// method other than GET or HEAD answers 405. A token endpoint asked with
// GET answers 400 AADSTS900561, as the real one does.
//
// # Tokens
//
// Access tokens have the v1.0 shape of real Key Vault tokens: RS256 with
// kid and x5t headers (the thumbprint of the self-signed certificate
// published in JWKS), aud (the resource without "/.default"), iss
// https://sts.windows.net/<tenant>/, idp, tid, oid and sub (the service
// principal), appid, appidacr ("1" for a secret, "2" for an assertion),
// idtyp "app", uti, ver "1.0", iat and nbf five minutes before issuance and
// exp after Options.TokenLifetime, and xms_cc when the client declared
// capabilities (CAE) in the claims parameter. The token endpoint answers
// token_type, expires_in, ext_expires_in and access_token (v1.0 adds
// expires_on, not_before and resource, as strings); it omits client_info,
// which Entra does not send for app tokens.
//
// # Errors
//
// Errors are answered as the real service answers them: a JSON body with
// error, error_description ("AADSTSnnnn: text\r\nTrace ID: ...\r\n
// Correlation ID: ...\r\nTimestamp: yyyy-mm-dd hh:mm:ssZ"), error_codes,
// timestamp, trace_id, correlation_id (the client-request-id the client
// sent, when it is a GUID) and error_uri. The codes, their error values,
// statuses and texts form a table in errors.go; each entry says whether it
// was seen in real responses quoted in public issues or is a guess.
//
// Every answered request is journaled once (Service "entra"; Identity is
// the client_id; ErrorCode e.g. AADSTS70021; RequestID the trace ID).
// Neither the journal nor any error ever holds a client secret, an
// assertion or a token. The package logs nothing.
//
// # Simplifications
//
// Only GUID tenants exist (no domain names); common, organizations and
// consumers are known only to instance discovery and the /common keys. Only
// the client credentials grant is supported. Resources are Key Vault,
// Resource Manager, Microsoft Graph, Storage, the registered applications,
// and those added with AddResource; there is no consent or role model, and
// no per-tenant signing keys. Trusted issuers' keys are given, not fetched.
package entra
