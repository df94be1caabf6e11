package keyvault

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Error is a failure the fake vault answers in Key Vault's error envelope:
//
//	{"error":{"code":"<Code>","message":"<Message>","innererror":{"code":"<InnerCode>"}}}
//
// The innererror member is present only when InnerCode is set. A non-zero
// RetryAfter adds a Retry-After header (whole seconds, rounded up).
//
// Error values never carry secret values or tokens in their messages.
type Error struct {
	// Status is the HTTP status code, e.g. 404.
	Status int
	// Code is the service error code, e.g. SecretNotFound or Forbidden.
	Code string
	// Message is the human-readable message, worded as the service words it.
	Message string
	// InnerCode is the innererror code, e.g. ForbiddenByRbac, if any.
	InnerCode string
	// RetryAfter, when positive, is sent as the Retry-After header.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	if e.InnerCode != "" {
		return fmt.Sprintf("keyvault: %d %s (%s): %s", e.Status, e.Code, e.InnerCode, e.Message)
	}
	return fmt.Sprintf("keyvault: %d %s: %s", e.Status, e.Code, e.Message)
}

// MostSpecificCode returns InnerCode when set, otherwise Code. It is the code
// the journal records.
func (e *Error) MostSpecificCode() string {
	if e.InnerCode != "" {
		return e.InnerCode
	}
	return e.Code
}

// Is reports whether target is an *Error with the same Status, Code and
// InnerCode, so callers can write errors.Is(err, &keyvault.Error{...}) with
// a template. Empty fields of target match anything.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return (t.Status == 0 || t.Status == e.Status) &&
		(t.Code == "" || t.Code == e.Code) &&
		(t.InnerCode == "" || t.InnerCode == e.InnerCode)
}

type errorEnvelope struct {
	Error errorBody `json:"error"`
}

type errorBody struct {
	Code       string      `json:"code"`
	Message    string      `json:"message"`
	InnerError *innerError `json:"innererror,omitempty"`
}

type innerError struct {
	Code string `json:"code"`
}

// Header names and values the service sends on every answer. The set is
// taken from recorded Key Vault responses in the azure-sdk-for-js
// repository (sdk/keyvault/*/recordings): x-ms-keyvault-region,
// x-ms-request-id, x-ms-keyvault-service-version, x-ms-keyvault-network-info,
// Cache-Control/Pragma/Expires and the security headers. Those recordings
// carry no x-ms-error-code header, so the fake sends none either.
const (
	headerRequestID      = "x-ms-request-id"
	headerRegion         = "x-ms-keyvault-region"
	headerServiceVersion = "x-ms-keyvault-service-version"
	headerNetworkInfo    = "x-ms-keyvault-network-info"

	// ServiceVersion is the value of x-ms-keyvault-service-version.
	ServiceVersion = "1.9.2795.1"
	// DefaultRegion is the region a vault reports when none is configured.
	DefaultRegion = "eastus"

	contentTypeJSON = "application/json; charset=utf-8"
)

// WriteError writes e as Key Vault writes a failure: the JSON envelope with
// Content-Type "application/json; charset=utf-8", the no-cache headers, a
// fresh x-ms-request-id (unless one is already set on w), the service
// version, the network-info header for r's client address, the region
// (DefaultRegion unless w already carries one) and Retry-After when
// e.RetryAfter is positive.
//
// WriteError knows nothing about the vault r addresses: a 401 written
// through it carries no WWW-Authenticate challenge. Use Service.WriteError
// for answers that must look as if a particular vault wrote them.
func WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	setCommonHeaders(w.Header(), r, "")
	writeErrorBody(w, e)
}

func writeErrorBody(w http.ResponseWriter, e *Error) {
	h := w.Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	body := errorEnvelope{Error: errorBody{Code: e.Code, Message: e.Message}}
	if e.InnerCode != "" {
		body.Error.InnerError = &innerError{Code: e.InnerCode}
	}
	status := e.Status
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, body)
}

// writeJSON writes v as the service writes JSON bodies.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Every body is built from plain structs; this cannot happen short
		// of a programming error, and the answer must still be JSON.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalServerError","message":"The response could not be encoded."}}`)
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// setCommonHeaders sets the headers of every Key Vault answer. region
// overrides the region header; empty keeps one already set or uses
// DefaultRegion.
func setCommonHeaders(h http.Header, r *http.Request, region string) {
	h.Set("Cache-Control", "no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "-1")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Strict-Transport-Security", "max-age=31536000;includeSubDomains")
	if h.Get(headerRequestID) == "" {
		h.Set(headerRequestID, uuid.NewString())
	}
	switch {
	case region != "":
		h.Set(headerRegion, region)
	case h.Get(headerRegion) == "":
		h.Set(headerRegion, DefaultRegion)
	}
	h.Set(headerServiceVersion, ServiceVersion)
	h.Set(headerNetworkInfo, networkInfo(r))
}

// networkInfo renders x-ms-keyvault-network-info for r's client address,
// e.g. "conn_type=Ipv4;addr=50.35.231.105;act_addr_fam=InterNetwork;".
func networkInfo(r *http.Request) string {
	addr, ok := clientAddr(r)
	if !ok {
		return "conn_type=Ipv4;addr=;act_addr_fam=InterNetwork;"
	}
	if addr.Is4() {
		return "conn_type=Ipv4;addr=" + addr.String() + ";act_addr_fam=InterNetwork;"
	}
	return "conn_type=Ipv6;addr=" + addr.String() + ";act_addr_fam=InterNetworkV6;"
}

// The constructors below build every failure the fake answers. The message
// texts follow the real service; each notes where its wording was found.
// "Recorded" means a recorded real response in the azure-sdk-for-js
// keyvault test recordings; "reported" means quoted from a real response in
// a public issue, document or log.

// notFoundHint ends the not-found messages (recorded).
const notFoundHint = " If you recently deleted this %s you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"

// LatestAPIVersion is the newest api-version the fake accepts, the one
// azsecrets v1.5.1 sends.
const LatestAPIVersion = "2026-04-01"

// errUnknownAPIVersion: recorded in Azure/azure-sdk-for-net#14789 and
// Azure/azure-sdk-for-python#28595 ("The specified version (7.3) is not
// recognized. Consider using the latest supported version (7.1).").
func errUnknownAPIVersion(v string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "BadParameter",
		Message: fmt.Sprintf("The specified version (%s) is not recognized. Consider using the latest supported version (%s).", v, LatestAPIVersion)}
}

// errMissingAPIVersion: the wording of the real answer to a request without
// api-version could not be found; the code follows the unknown-version case.
func errMissingAPIVersion() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "BadParameter",
		Message: "The api-version query parameter is missing. Consider using the latest supported version (" + LatestAPIVersion + ")."}
}

// errMissingToken: recorded ("AKV10000: Request is missing a Bearer or PoP
// token.", sdk/keyvault/keyvault-keys recordings, 2021 onwards).
func errMissingToken() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "Unauthorized",
		Message: "AKV10000: Request is missing a Bearer or PoP token."}
}

// errTokenExpired: reported in several public repositories quoting the
// service: "[TokenExpired] Error validating token: 'S2S12086'.".
func errTokenExpired() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "Unauthorized",
		Message: "[TokenExpired] Error validating token: 'S2S12086'."}
}

// errTokenNotYetValid: the real text for a not-yet-valid token was not
// found for vaults (Managed HSM answers "Token not yet valid", see
// Azure/azure-sdk-for-java#26624); this follows the expired-token shape.
func errTokenNotYetValid() *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "Unauthorized",
		Message: "[TokenNotYetValid] Error validating token: 'S2S12086'."}
}

// errTokenInvalid: reported in Azure-Samples/azuresandbox#188 and
// hashicorp/terraform-provider-azurerm#30912 ("AKV10046: Unable to resolve
// the key used for signature validation. EncodedJwtHeader: '...'."). The
// header part is included only for a token shaped as a JWT.
func errTokenInvalid(raw string) *Error {
	msg := "AKV10046: Unable to resolve the key used for signature validation."
	if parts := strings.Split(raw, "."); len(parts) == 3 && parts[0] != "" && len(parts[0]) <= 512 && isBase64URL(parts[0]) {
		msg = "AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: '" + parts[0] + "'."
	}
	return &Error{Status: http.StatusUnauthorized, Code: "Unauthorized", Message: msg}
}

// errInvalidAudience: reported in MicrosoftDocs/azure-docs#109562 and
// Azure/go-autorest#525 ("AKV10022: Invalid audience. Expected
// https://vault.azure.net, found: https://vault.azure.net/.").
func errInvalidAudience(expected, found string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "Unauthorized",
		Message: fmt.Sprintf("AKV10022: Invalid audience. Expected %s, found: %s.", expected, found)}
}

// errInvalidIssuer: reported in microsoft/SynapseML#1923 and the
// azure-sdk-for-net challenge policy tests ("AKV10032: Invalid issuer.
// Expected one of https://sts.windows.net/<tenant>/, ..., found
// https://sts.windows.net/<other>/."). The real list also names some
// Microsoft first-party tenants; the fake lists only the vault's tenant.
func errInvalidIssuer(expected []string, found string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "Unauthorized",
		Message: fmt.Sprintf("AKV10032: Invalid issuer. Expected one of %s, found %s.", strings.Join(expected, ", "), found)}
}

// errForbiddenByRbac: reported verbatim in several Terraform logs and in
// the azure-sdk-for-cpp troubleshooting guide; DecisionReason
// 'DeniedWithNoValidRBAC' is the newer wording (SANS Holiday Hack 2023
// write-ups), older answers say null.
func errForbiddenByRbac(caller, action, resource, vault string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "Forbidden", InnerCode: "ForbiddenByRbac",
		Message: "Caller is not authorized to perform action on resource.\r\n" +
			"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
			"Caller: " + caller + "\r\n" +
			"Action: '" + action + "'\r\n" +
			"Resource: '" + strings.ToLower(resource) + "'\r\n" +
			"Assignment: (not found)\r\n" +
			"DenyAssignmentId: null\r\n" +
			"DecisionReason: 'DeniedWithNoValidRBAC' \r\n" +
			"Vault: " + vault + "\r\n"}
}

// errAccessDenied: reported ("The user, group or application
// 'appid=...;oid=...;iss=...' does not have secrets get permission on key
// vault 'prod-kv;location=eastus'. For help resolving this issue, please see
// https://go.microsoft.com/fwlink/?linkid=2125287"), inner code AccessDenied
// as documented in "Common error codes for Azure Key Vault".
func errAccessDenied(caller, kind, permission, vault string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "Forbidden", InnerCode: "AccessDenied",
		Message: fmt.Sprintf("The user, group or application '%s' does not have %s %s permission on key vault '%s'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
			caller, kind, permission, vault)}
}

// errForbiddenByFirewall: reported verbatim in Terraform logs ("Client
// address is not authorized and caller is not a trusted service.\r\nClient
// address: 165.225.37.25\r\nCaller: appid=...\r\nVault: name;location=eastus").
func errForbiddenByFirewall(client, caller, vault string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "Forbidden", InnerCode: "ForbiddenByFirewall",
		Message: "Client address is not authorized and caller is not a trusted service.\r\n" +
			"Client address: " + client + "\r\n" +
			"Caller: " + caller + "\r\n" +
			"Vault: " + vault}
}

// errForbiddenByConnection: reported verbatim in the AKS secrets store CSI
// troubleshooting article and Container Apps logs ("Public network access
// is disabled and request is not from a trusted service nor via an approved
// private link.\r\nCaller: ...\r\nVault: name;location=...").
func errForbiddenByConnection(caller, vault string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "Forbidden", InnerCode: "ForbiddenByConnection",
		Message: "Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\n" +
			"Caller: " + caller + "\r\n" +
			"Vault: " + vault}
}

// errThrottled: the code is documented ("Azure Key Vault throttling
// guidance"); the message follows a published mock of the service and could
// not be confirmed against a recording.
func errThrottled(retryAfter time.Duration) *Error {
	return &Error{Status: http.StatusTooManyRequests, Code: "Throttled",
		Message:    "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
		RetryAfter: retryAfter}
}

// errInvalidName: recorded by the azure-sdk-for-rust keyvault tests ("The
// request URI contains an invalid name: secret_name").
func errInvalidName(name string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "BadParameter",
		Message: "The request URI contains an invalid name: " + name}
}

// errBadParameter is a BadParameter failure whose wording is the fake's own
// (the real texts of malformed bodies and paging tokens were not found).
// The constructors below use it; none of them quotes request content other
// than names and query values, so no secret value can reach a message.
func errBadParameter(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "BadParameter", Message: msg}
}

func errBodyTooLarge(limit int) *Error {
	return errBadParameter(fmt.Sprintf("The request body exceeds %d bytes.", limit))
}

func errBodyUnreadable() *Error { return errBadParameter("The request body could not be read.") }

func errBodyEmpty() *Error {
	return errBadParameter("The request body is empty; a JSON object is required.")
}

func errBodyNotJSON() *Error { return errBadParameter("The request body is not a valid JSON object.") }

func errMissingValue() *Error { return errBadParameter("The request body must have a value property.") }

func errOutContentType(v string) *Error {
	return errBadParameter(fmt.Sprintf("The outContentType %q is not supported; use %s or %s.", v, ContentTypePEM, ContentTypePKCS12))
}

func errMaxResults(v string) *Error {
	return errBadParameter(fmt.Sprintf("Invalid maxresults value: %q. It must be an integer between 1 and 25.", v))
}

func errSkipToken() *Error { return errBadParameter("The $skiptoken parameter is invalid.") }

// errObjectNotFound: recorded ("A secret with (name/id) X was not found in
// this key vault. If you recently deleted this secret you may be able to
// recover it using the correct recovery command. For help resolving this
// issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"; the
// same with "key"/KeyNotFound and "certificate"/CertificateNotFound). A
// missing version names "name/version".
func errObjectNotFound(k kind, nameOrID string) *Error {
	return &Error{Status: http.StatusNotFound, Code: k.notFoundCode(),
		Message: fmt.Sprintf("A %s with (name/id) %s was not found in this key vault.", k.singular(), nameOrID) +
			fmt.Sprintf(notFoundHint, k.singular())}
}

// errDeletedNotFound: recorded ("Deleted Secret not found: X", "Deleted
// Certificate not found: X"; keys follow the same pattern).
func errDeletedNotFound(k kind, name string) *Error {
	return &Error{Status: http.StatusNotFound, Code: k.notFoundCode(),
		Message: fmt.Sprintf("Deleted %s not found: %s", k.title(), name)}
}

// errSecretDisabled: recorded ({"code":"Forbidden","message":"Operation get
// is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}).
func errSecretDisabled(op string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "Forbidden", InnerCode: "SecretDisabled",
		Message: fmt.Sprintf("Operation %s is not allowed on a disabled secret.", op)}
}

// errDeletedButRecoverable: reported in the Azure docs (Conflict, "Secret X
// is currently in a deleted but recoverable state, and its name cannot be
// reused; in this state, the secret can only be recovered or purged.",
// inner ObjectIsDeletedButRecoverable).
func errDeletedButRecoverable(k kind, name string) *Error {
	return &Error{Status: http.StatusConflict, Code: "Conflict", InnerCode: "ObjectIsDeletedButRecoverable",
		Message: fmt.Sprintf("%s %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the %s can only be recovered or purged.", k.title(), name, k.singular())}
}

// errBeingDeletedRecreate: a name whose delete or purge has not yet taken
// effect cannot be set again. Recorded for keys (azure-sdk-for-cpp
// KeyVaultKeyClient.CreateDeletedKeyBeforePollComplete: 409 Conflict, "Key
// ... is currently being deleted and cannot be re-created; retry later.",
// inner ObjectIsBeingDeleted), and reported for secrets after a purge
// (Azure/azure-sdk-for-net#34322, "Secret mySecret is currently being
// deleted and cannot be re-created; retry later.").
func errBeingDeletedRecreate(k kind, name string) *Error {
	return &Error{Status: http.StatusConflict, Code: "Conflict", InnerCode: "ObjectIsBeingDeleted",
		Message: fmt.Sprintf("%s %s is currently being deleted and cannot be re-created; retry later.", k.title(), name)}
}

// errBeingDeleted: a recover or purge of an object whose delete has not yet
// taken effect. Recorded for keys and certificates (azure-sdk-for-js
// keyvault-keys recordings of 2019: 409 Conflict, "Key is currently being
// deleted.", inner ObjectIsBeingDeleted).
func errBeingDeleted(k kind) *Error {
	return &Error{Status: http.StatusConflict, Code: "Conflict", InnerCode: "ObjectIsBeingDeleted",
		Message: fmt.Sprintf("%s is currently being deleted.", k.title())}
}

// errPurgeProtected: reported in a Terraform log ("Operation \"purge\" is
// not allowed because purge protection is enabled for this vault. Key Vault
// service will automatically purge it after the retention period has
// passed. Vault: name;location=northeurope").
func errPurgeProtected(vault string) *Error {
	return &Error{Status: http.StatusForbidden, Code: "Forbidden",
		Message: `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. Vault: ` + vault}
}

// errManagedObject refuses to change a secret or key that backs a
// certificate. The real wording was not found.
func errManagedObject(op string, k kind) *Error {
	return &Error{Status: http.StatusForbidden, Code: "Forbidden",
		Message: fmt.Sprintf("Operation %s is not allowed on a %s managed by a certificate.", op, k.singular())}
}

// errNotFoundRoute and errMethodNotAllowed answer paths and methods the
// service has no operation for. Their wording is the fake's own.
func errNotFoundRoute() *Error {
	return &Error{Status: http.StatusNotFound, Code: "NotFound",
		Message: "The requested URI does not represent any resource on the server."}
}

func errMethodNotAllowed(method string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Code: "MethodNotAllowed",
		Message: fmt.Sprintf("The requested resource does not support http method '%s'.", method)}
}

// errNotImplemented answers operations the service has but the fake leaves
// out (backup, restore, key and certificate writes).
func errNotImplemented(op string) *Error {
	return &Error{Status: http.StatusNotImplemented, Code: "NotImplemented",
		Message: fmt.Sprintf("The fake Key Vault does not implement %s.", op)}
}

// errVaultNotFound answers a host under the vault domain that names no
// vault. The real service has no such answer: the name does not resolve.
func errVaultNotFound(host string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "VaultNotFound",
		Message: fmt.Sprintf("No vault answers at %s; the real name would not resolve in DNS.", host)}
}

func errInternal() *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "InternalServerError",
		Message: "The server encountered an internal error. Please retry the request."}
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '=') {
			return false
		}
	}
	return true
}
