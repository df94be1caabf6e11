package upstreamprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Audiences of the ServiceAccount tokens upstream reads.
const (
	// WorkloadIdentityAudience is the audience of the token exchanged for
	// a vault token (workload identity federation).
	WorkloadIdentityAudience = "api://AzureADTokenExchange"
	// identityBindingAudience is the audience upstream reads for
	// useAzureTokenProxy.
	identityBindingAudience = "api://AKSIdentityBinding"
)

// errServiceAccountTokensNotFound is upstream's error for a Mount with a
// clientID but no ServiceAccount tokens.
var errServiceAccountTokensNotFound = errors.New("service account tokens not found")

// identityMode is the authentication a Mount asks for, named as upstream
// names it in messages.
type identityMode int

const (
	// modeNone is workload identity when clientID is set, else the service
	// principal of the node-publish secrets.
	modeNone identityMode = iota
	modePodIdentity
	modeVMManagedIdentity
	modeAzureTokenProxy
)

func (m identityMode) String() string {
	switch m {
	case modeNone:
		return "None"
	case modePodIdentity:
		return "PodIdentity"
	case modeVMManagedIdentity:
		return "VMManagedIdentity"
	case modeAzureTokenProxy:
		return "AzureTokenProxy"
	}
	return "Unknown(" + strconv.Itoa(int(m)) + ")"
}

// flag is the SecretProviderClass parameter that selects the mode.
func (m identityMode) flag() string {
	switch m {
	case modePodIdentity:
		return paramUsePodIdentity
	case modeVMManagedIdentity:
		return paramUseVMIdentity
	case modeAzureTokenProxy:
		return paramUseTokenProxy
	}
	return ""
}

// identityModeOf reads the three mode flags (empty is false) and refuses
// more than one, with upstream's messages.
func identityModeOf(attrs map[string]string) (identityMode, error) {
	mode, enabled := modeNone, 0
	for _, m := range []identityMode{modePodIdentity, modeVMManagedIdentity, modeAzureTokenProxy} {
		v := param(attrs, m.flag())
		if v == "" {
			continue
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return modeNone, fmt.Errorf("failed to parse %s flag, error: %w", m.flag(), err)
		}
		if on {
			mode = m
			enabled++
		}
	}
	if enabled > 1 {
		return modeNone, errors.New("only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy")
	}
	return mode, nil
}

// authConfig is how a Mount authenticates. It holds a token and possibly a
// client secret: never log it.
type authConfig struct {
	mode identityMode
	// clientID and assertion are the workload identity: the application's
	// client ID and the ServiceAccount token presented as its assertion.
	clientID  string
	assertion string
	// spClientID and spClientSecret are the service principal of the
	// node-publish secrets, used when there is no workload identity.
	spClientID     string
	spClientSecret string
}

// buildAuthConfig checks the identity inputs as upstream does: the token
// for the mode's audience when a clientID is set (or the token proxy is
// on), else, with no mode flag, the service principal of the node-publish
// secrets.
func buildAuthConfig(mode identityMode, clientID, saTokens string, secrets map[string]string) (authConfig, error) {
	cfg := authConfig{mode: mode, clientID: clientID}
	var err error
	switch {
	case mode == modeAzureTokenProxy:
		if clientID == "" {
			return cfg, errors.New("clientID is required for identity binding")
		}
		if saTokens == "" {
			return cfg, errors.New("service account tokens are required for identity binding")
		}
		if cfg.assertion, err = tokenForAudience(saTokens, identityBindingAudience); err != nil {
			return cfg, fmt.Errorf("failed to parse service account token for identity binding, error: %w", err)
		}
	case clientID != "":
		if cfg.assertion, err = tokenForAudience(saTokens, WorkloadIdentityAudience); err != nil {
			return cfg, fmt.Errorf("failed to parse workload identity tokens, error: %w", err)
		}
	}
	if mode == modeNone && cfg.assertion == "" {
		if cfg.spClientID, cfg.spClientSecret, err = servicePrincipal(secrets); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// tokenForAudience returns the token for audience from the driver's
// ServiceAccount tokens: a JSON map of audience to token and expiry.
func tokenForAudience(saTokens, audience string) (string, error) {
	if saTokens == "" {
		return "", errServiceAccountTokensNotFound
	}
	var tokens map[string]struct {
		Token               string    `json:"token"`
		ExpirationTimestamp time.Time `json:"expirationTimestamp"`
	}
	if err := json.Unmarshal([]byte(saTokens), &tokens); err != nil {
		return "", fmt.Errorf("failed to unmarshal service account tokens, error: %w", err)
	}
	t, ok := tokens[audience]
	if !ok || t.Token == "" {
		return "", fmt.Errorf("token for audience %s not found", audience)
	}
	return t.Token, nil
}

// servicePrincipal returns the client ID and secret of the node-publish
// secrets; their keys are matched case-insensitively.
func servicePrincipal(secrets map[string]string) (clientID, clientSecret string, err error) {
	if secrets == nil {
		return "", "", errors.New("failed to get credentials, nodePublishSecretRef secret is not set")
	}
	for k, v := range secrets {
		switch strings.ToLower(k) {
		case "clientid":
			clientID = v
		case "clientsecret":
			clientSecret = v
		}
	}
	if clientID == "" {
		return "", "", errors.New("could not find clientid in secrets")
	}
	if clientSecret == "" {
		return "", "", errors.New("could not find clientsecret in secrets")
	}
	return clientID, clientSecret, nil
}

// errUnsupportedMode is wrapped when a Mount asks for an identity mode the
// double does not implement.
var errUnsupportedMode = errors.New("identity mode not supported by this upstream provider double")

// credential returns the credential of a Mount, made anew for every Mount
// as upstream makes it: workload identity when there is an assertion, else
// the service principal. Only the Entra ID authority host and transport
// differ from the SDK's defaults.
func (a authConfig) credential(tenantID string, env environment, transport policy.Transporter) (azcore.TokenCredential, error) {
	if a.mode != modeNone {
		return nil, fmt.Errorf("%w: %s=true (mode %s) cannot be served; the double authenticates only with workload identity (clientID and a ServiceAccount token for %s) or the service principal of nodePublishSecretRef",
			errUnsupportedMode, a.mode.flag(), a.mode, WorkloadIdentityAudience)
	}
	opts := azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: env.activeDirectoryEndpoint}, Transport: transport}
	if a.assertion != "" {
		assertion := a.assertion
		return azidentity.NewClientAssertionCredential(tenantID, a.clientID, func(context.Context) (string, error) { return assertion, nil },
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: opts})
	}
	if a.spClientID != "" && a.spClientSecret != "" {
		return azidentity.NewClientSecretCredential(tenantID, a.spClientID, a.spClientSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
	}
	return nil, errors.New("no identity mode is enabled")
}
