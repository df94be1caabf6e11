package entra

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors VerifyAccessToken wraps.
var (
	// ErrTokenExpired means the token's exp is in the past.
	ErrTokenExpired = errors.New("token has expired")
	// ErrTokenNotYetValid means the token's nbf is in the future.
	ErrTokenNotYetValid = errors.New("token is not yet valid")
	// ErrTokenInvalid means the token is malformed, lacks a required claim,
	// or its signature does not verify with the authority's key.
	ErrTokenInvalid = errors.New("token is invalid")
)

// aadError is one AADSTS error the fake answers: the numeric code, the
// OAuth "error" value, the HTTP status and the message format (the text
// after "AADSTSnnnn: " and before the trace lines).
//
// Where each text, error value and status came from is noted on each entry:
// "seen" means copied in form from real responses quoted in public issues,
// "guess" means not confirmed by any real response found.
type aadError struct {
	code   int
	error  string
	status int
	format string
}

// The error table. Handlers only ever answer these.
var (
	// AADSTS70021. Seen (external-secrets#2783, 2023-10, and
	// azure-workload-identity#616, 2022-10): text with the docs link.
	// Status and error value changed over time: 2022 responses were
	// 400 invalid_request (azure-workload-identity#340, #616), the 2023 one
	// is 401 invalid_client; the newer one is used. Real Entra now often
	// answers the more specific AADSTS700211/700213 instead; not modelled.
	errNoMatchingFederatedIdentity = aadError{70021, "invalid_client", http.StatusUnauthorized,
		"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation"}

	// AADSTS700016. Text and error value seen (MSAL.NET test data, 2023;
	// many issues). Status 400: guess (RFC 6749 §5.2 puts
	// unauthorized_client on 400; no real status line found).
	errApplicationNotFound = aadError{700016, "unauthorized_client", http.StatusBadRequest,
		"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."}

	// AADSTS700024. Text and error value seen (MSAL.NET test data 2023,
	// dotnet/docker-tools#1310 2024). Times are printed with seven
	// fractional digits. Status 401: guess, as for the other invalid_client
	// answers.
	errAssertionTimeRange = aadError{700024, "invalid_client", http.StatusUnauthorized,
		"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials ."}

	// AADSTS7000215. Seen with status 401 invalid_client
	// (databricks/databricks-sdk-go#240, Azure/sap-automation#418).
	errInvalidClientSecret = aadError{7000215, "invalid_client", http.StatusUnauthorized,
		"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'."}

	// AADSTS7000218. Text seen (MicrosoftDocs/azure-docs#25959, many
	// issues); 401 invalid_client seen for its predecessor AADSTS70002
	// (vgrem/phpSPO#44).
	errMissingClientCredential = aadError{7000218, "invalid_client", http.StatusUnauthorized,
		"The request body must contain the following parameter: 'client_assertion' or 'client_secret'."}

	// AADSTS900023. Seen with 400 invalid_request on token endpoints
	// (caddy-dns/azure#3, MSAL.NET test data 2023). Answered by the token
	// endpoint for any identifier that is neither a GUID nor a domain, and
	// by discovery endpoints only for malformed GUIDs (guess: the discovery
	// answers found for other names are AADSTS90002).
	errInvalidTenantIdentifier = aadError{900023, "invalid_request", http.StatusBadRequest,
		"Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain."}

	// AADSTS90002 from the OpenID configuration and keys endpoints: seen
	// with 400 invalid_tenant (Azure/azure-cli#22145, #23130,
	// james-gould/azure-keyvault-emulator#324 2025), including for names
	// such as 'secrets' and 'tenant_id'.
	errTenantNotFoundDiscovery = aadError{90002, "invalid_tenant", http.StatusBadRequest,
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."}

	// AADSTS90002 from the token endpoint. Text as above; error value
	// invalid_request and status 400 are a guess (MSAL never reaches the
	// token endpoint of a tenant whose discovery failed).
	errTenantNotFound = aadError{90002, "invalid_request", http.StatusBadRequest,
		"Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."}

	// AADSTS900144. Seen with 400 invalid_request
	// (MicrosoftDocs/azure-docs#43780, rootinc/laravel-azure-middleware#49).
	errMissingParameter = aadError{900144, "invalid_request", http.StatusBadRequest,
		"The request body must contain the following parameter: '%s'."}

	// AADSTS900561. Seen with 400 (NunoFilipeMota/PublicScripts#5); the
	// error value invalid_request is a guess.
	errPostOnly = aadError{900561, "invalid_request", http.StatusBadRequest,
		"The endpoint only accepts POST, OPTIONS requests. Received a %s request."}

	// AADSTS70003. Guess from memory: text, error value and status are not
	// confirmed by a real response found.
	errUnsupportedGrantType = aadError{70003, "unsupported_grant_type", http.StatusBadRequest,
		"The app requested an unsupported grant type '%s'."}

	// AADSTS50027. Seen with invalid_request (MSAL.NET test data 2023,
	// panva/openid-client#348). Status 400: guess.
	errMalformedJWT = aadError{50027, "invalid_request", http.StatusBadRequest,
		"JWT token is invalid or malformed."}

	// AADSTS5002738. Text and invalid_client seen (MSAL.NET test data 2023;
	// a 2021 answer had invalid_request). Status 401: guess.
	errUnsupportedAlgorithm = aadError{5002738, "invalid_client", http.StatusUnauthorized,
		"Invalid JWT token. '%s' is not a supported signature algorithm. Supported signing algorithms are: 'RS256,RS384,RS512'"}

	// AADSTS90014. Seen with invalid_request (MSAL.NET test data 2023).
	// Status 400: guess.
	errMissingAssertionClaim = aadError{90014, "invalid_request", http.StatusBadRequest,
		"The required field '%s' is missing from the credential. Ensure that you have all the necessary parameters for the login request."}

	// AADSTS50166. Seen with 400 invalid_request
	// (Azure/azure-workload-identity#642). The fake answers it when a
	// federated credential matches but the issuer's keys were never given
	// with TrustIssuer: the real service would have failed to fetch them.
	errExternalOIDCFailed = aadError{50166, "invalid_request", http.StatusBadRequest,
		"Request to External OIDC endpoint failed."}

	// AADSTS7000272. Text and invalid_client seen
	// (Azure/azure-workload-identity#1232, 2024). Status 401: guess.
	errSigningKeyNotFound = aadError{7000272, "invalid_client", http.StatusUnauthorized,
		"The certificate with identifier %s used to sign the federated credential could not be found in the metadata of identity provider %s. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token."}

	// AADSTS700027. Code, invalid_client and the "[Reason - ...]" shape
	// seen for certificate assertions (AzureAD/passport-azure-ad#453,
	// Azure/azure-sdk-for-net#29007). Its use for a federated assertion
	// whose signature does not verify, the key-ID wording and status 401
	// are a guess.
	errInvalidAssertionSignature = aadError{700027, "invalid_client", http.StatusUnauthorized,
		"Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Key ID of key used by client: '%s']"}

	// AADSTS1002012. Seen with invalid_scope (MSAL.NET test data 2023).
	// Status 400: guess.
	errScopeNotDefault = aadError{1002012, "invalid_scope", http.StatusBadRequest,
		"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."}

	// AADSTS28000. Guess from memory (text, error value and status).
	errMultipleResources = aadError{28000, "invalid_scope", http.StatusBadRequest,
		"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid."}

	// AADSTS500011. Seen with invalid_resource (MSAL.NET test data 2022,
	// AzureAD/microsoft-identity-web#2796). Status 400: guess. The real
	// text names the tenant by display name; the fake uses its ID.
	errResourceNotFound = aadError{500011, "invalid_resource", http.StatusBadRequest,
		"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."}

	// AADSTS50049. Error value invalid_instance is what MSAL looks for
	// (apps/internal/oauth/ops/authority/authority.go); the text and status
	// 400 are a guess from memory.
	errInvalidInstance = aadError{50049, "invalid_instance", http.StatusBadRequest,
		"Unknown or invalid instance."}
)

// failure is an aadError with the arguments of its message.
type failure struct {
	aadError
	args []any
}

// with returns the failure e with its message arguments.
func (e aadError) with(args ...any) *failure { return &failure{aadError: e, args: args} }

// codeString returns the journal form of the code, e.g. AADSTS70021.
func (e aadError) codeString() string { return fmt.Sprintf("AADSTS%d", e.code) }

// message returns "AADSTSnnnn: <text>".
func (f *failure) message() string {
	return fmt.Sprintf("AADSTS%d: %s", f.code, fmt.Sprintf(f.format, f.args...))
}

// errorBody is the JSON body of an AADSTS error, fields in the real order.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}
