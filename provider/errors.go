package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// mountError turns a failure to read an object into a gRPC status whose
// message names the object, the vault and its host and keeps the real cause: the Key
// Vault error code and message, the Entra ID AADSTS error, the DNS or TLS
// failure, or the deadline. Messages never hold secret values: vault error
// bodies carry none, and values are never formatted into errors.
func mountError(p *mountParams, o object, err error) error {
	host := p.vault + "." + p.cloud.vaultSuffix
	where := fmt.Sprintf("%s in key vault %q (%s)", o.describe(), p.vault, host)
	if o.Version != "" {
		where = fmt.Sprintf("%s version %s in key vault %q (%s)", o.describe(), o.Version, p.vault, host)
	}
	code, cause := classify(err)
	st := status.Newf(code, "reading %s: %s", where, cause)
	if d, ok := retryAfter(err); ok {
		if detailed, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); derr == nil {
			st = detailed
		}
	}
	return st.Err()
}

// maxRetryAfter bounds the wait a vault's answer may ask for.
const maxRetryAfter = 5 * time.Minute

// retryAfter returns the wait a throttled (429) or unavailable (503) vault
// asked for in its last answer: retry-after-ms or x-ms-retry-after-ms in
// milliseconds, or Retry-After in seconds or as an HTTP date; at most
// maxRetryAfter. The controller holds back every Mount for the vault that
// long, so that one throttled answer does not become a storm.
func retryAfter(err error) (time.Duration, bool) {
	var respErr *azcore.ResponseError
	if !errors.As(err, &respErr) {
		return 0, false
	}
	return responseRetryAfter(respErr.RawResponse)
}

// responseRetryAfter is retryAfter for a vault's HTTP answer.
func responseRetryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return 0, false
	}
	h := resp.Header
	var d time.Duration
	for _, name := range []string{"retry-after-ms", "x-ms-retry-after-ms"} {
		if ms, err := strconv.ParseInt(h.Get(name), 10, 64); err == nil && ms > 0 {
			d = time.Duration(ms) * time.Millisecond
			break
		}
	}
	if v := h.Get("Retry-After"); d == 0 && v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
			d = time.Duration(secs) * time.Second
		} else if at, err := http.ParseTime(v); err == nil {
			d = time.Until(at)
		}
	}
	if d <= 0 {
		return 0, false
	}
	return min(d, maxRetryAfter), true
}

// classify returns the gRPC code and a one-line cause of err.
func classify(err error) (codes.Code, string) {
	var respErr *azcore.ResponseError
	var authErr *azidentity.AuthenticationFailedError
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostnameErr x509.HostnameError
	var opErr *net.OpError
	dnsErr, isDNS := lookupError(err)
	switch {
	case errors.As(err, &authErr):
		return codes.Unauthenticated, "workload identity token exchange failed: " + entraCause(authErr)
	case errors.As(err, &respErr):
		return vaultCode(respErr.StatusCode), vaultCause(respErr)
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded, "the key vault did not answer before the mount deadline (network unreachable, blocked by a firewall or gateway, or the vault is slow): " + err.Error()
	case errors.Is(err, context.Canceled):
		return codes.Canceled, "the mount was cancelled"
	case isDNS:
		return codes.Unavailable, fmt.Sprintf("DNS lookup of %s failed (%s): check the vault name, and with a private endpoint that the name resolves to its private address", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &certErr), errors.As(err, &unknownAuthority), errors.As(err, &hostnameErr):
		return codes.Unavailable, "TLS verification of the key vault failed (a proxy or gateway intercepting TLS, or a wrong private endpoint?): " + err.Error()
	case errors.Is(err, errObjectData), errors.Is(err, errNoEnabledVersion):
		return codes.FailedPrecondition, err.Error()
	case errors.As(err, &opErr):
		return codes.Unavailable, "cannot connect to the key vault: " + err.Error()
	}
	return codes.Unknown, err.Error()
}

// proxiedLookup matches a name lookup failure in the text of an error: an
// HTTPS proxy that resolves names for its clients refuses a tunnel to a
// name it cannot resolve, and Go's client reports a refused CONNECT only by
// the proxy's status text, a plain error. A proxy that passes on its
// resolver's words (fakevault's does) says "lookup NAME[ on SERVER]: WHY".
var proxiedLookup = regexp.MustCompile(`\blookup ([A-Za-z0-9.-]+)(?: on [^:\s]+:\d+)?: (no such host|server misbehaving|i/o timeout)`)

// lookupError returns the DNS failure err holds: a *net.DNSError of the
// provider's own dial, or one an HTTPS proxy reported for it.
func lookupError(err error) (*net.DNSError, bool) {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr, true
	}
	if err == nil {
		return nil, false
	}
	m := proxiedLookup.FindStringSubmatch(err.Error())
	if m == nil {
		return nil, false
	}
	return &net.DNSError{Name: m[1], Err: m[2], IsNotFound: m[2] == "no such host", IsTimeout: m[2] == "i/o timeout",
		IsTemporary: m[2] != "no such host"}, true
}

// vaultCode maps a Key Vault HTTP status to a gRPC code. A 400 is not
// InvalidArgument: that code means "fix the SecretProviderClass", and a
// vault's BadParameter is about the vault request.
func vaultCode(status int) codes.Code {
	switch {
	case status == http.StatusUnauthorized:
		return codes.Unauthenticated
	case status == http.StatusForbidden:
		return codes.PermissionDenied
	case status == http.StatusNotFound:
		return codes.NotFound
	case status == http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case status >= 500:
		return codes.Unavailable
	}
	return codes.FailedPrecondition
}

// vaultCause renders a Key Vault error as "Code/InnerCode (HTTP n): message".
func vaultCause(e *azcore.ResponseError) string {
	code, inner, msg := e.ErrorCode, "", ""
	if e.RawResponse != nil {
		body, _ := runtime.Payload(e.RawResponse)
		var envelope struct {
			Error struct {
				Code       string `json:"code"`
				Message    string `json:"message"`
				InnerError *struct {
					Code string `json:"code"`
				} `json:"innererror"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &envelope) == nil {
			if envelope.Error.Code != "" {
				code = envelope.Error.Code
			}
			msg = envelope.Error.Message
			if envelope.Error.InnerError != nil {
				inner = envelope.Error.InnerError.Code
			}
		}
	}
	if code == "" {
		code = http.StatusText(e.StatusCode)
	}
	if inner != "" {
		code += "/" + inner
	}
	msg = strings.Join(strings.Fields(msg), " ")
	if msg == "" {
		return fmt.Sprintf("%s (HTTP %d)", code, e.StatusCode)
	}
	return fmt.Sprintf("%s (HTTP %d): %s", code, e.StatusCode, msg)
}

// entraCause extracts "AADSTSnnnn: text" from an Entra ID failure.
func entraCause(e *azidentity.AuthenticationFailedError) string {
	if e.RawResponse != nil {
		body, _ := runtime.Payload(e.RawResponse)
		var aad struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &aad) == nil && aad.Description != "" {
			first, _, _ := strings.Cut(aad.Description, "\r\n")
			return fmt.Sprintf("%s (HTTP %d, %s)", first, e.RawResponse.StatusCode, aad.Error)
		}
	}
	first, _, _ := strings.Cut(e.Error(), "\n")
	return first
}
