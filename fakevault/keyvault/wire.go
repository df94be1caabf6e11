package keyvault

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"time"
)

// The types below are the JSON bodies of the service, field for field as
// azsecrets v1.5.1, azkeys v1.5.0 and azcertificates v1.4.0 read them
// (models_serde.go). Timestamps are Unix seconds.

type attributesJSON struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays *int   `json:"recoverableDays,omitempty"`
}

type secretBundleJSON struct {
	Value       *string           `json:"value,omitempty"`
	ContentType string            `json:"contentType,omitempty"`
	ID          string            `json:"id"`
	Managed     bool              `json:"managed,omitempty"`
	Attributes  attributesJSON    `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
	KID         string            `json:"kid,omitempty"`
}

type deletedSecretBundleJSON struct {
	RecoveryID         string            `json:"recoveryId,omitempty"`
	DeletedDate        *int64            `json:"deletedDate,omitempty"`
	ScheduledPurgeDate *int64            `json:"scheduledPurgeDate,omitempty"`
	ContentType        string            `json:"contentType,omitempty"`
	ID                 string            `json:"id"`
	Managed            bool              `json:"managed,omitempty"`
	Attributes         attributesJSON    `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
	KID                string            `json:"kid,omitempty"`
}

type secretItemJSON struct {
	ID          string            `json:"id"`
	ContentType string            `json:"contentType,omitempty"`
	Managed     bool              `json:"managed,omitempty"`
	Attributes  attributesJSON    `json:"attributes"`
	Tags        map[string]string `json:"tags,omitempty"`
}

type deletedSecretItemJSON struct {
	RecoveryID         string            `json:"recoveryId"`
	DeletedDate        int64             `json:"deletedDate"`
	ScheduledPurgeDate int64             `json:"scheduledPurgeDate"`
	ID                 string            `json:"id"`
	ContentType        string            `json:"contentType,omitempty"`
	Managed            bool              `json:"managed,omitempty"`
	Attributes         attributesJSON    `json:"attributes"`
	Tags               map[string]string `json:"tags,omitempty"`
}

type keyBundleJSON struct {
	Key        jwk               `json:"key"`
	Attributes attributesJSON    `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	Managed    bool              `json:"managed,omitempty"`
}

type keyItemJSON struct {
	KID        string            `json:"kid"`
	Attributes attributesJSON    `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	Managed    bool              `json:"managed,omitempty"`
}

type certBundleJSON struct {
	ID         string            `json:"id"`
	KID        string            `json:"kid"`
	SID        string            `json:"sid"`
	X5T        string            `json:"x5t"`
	CER        string            `json:"cer"`
	Attributes attributesJSON    `json:"attributes"`
	Policy     *certPolicyJSON   `json:"policy,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
}

type certItemJSON struct {
	ID         string            `json:"id"`
	X5T        string            `json:"x5t"`
	Attributes attributesJSON    `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
}

type certPolicyJSON struct {
	ID              string               `json:"id"`
	KeyProps        certKeyPropsJSON     `json:"key_props"`
	SecretProps     certSecretPropsJSON  `json:"secret_props"`
	X509Props       certX509PropsJSON    `json:"x509_props"`
	LifetimeActions []lifetimeActionJSON `json:"lifetime_actions"`
	Issuer          issuerJSON           `json:"issuer"`
	Attributes      policyAttrsJSON      `json:"attributes"`
}

type certKeyPropsJSON struct {
	Exportable bool   `json:"exportable"`
	KTY        string `json:"kty"`
	KeySize    int    `json:"key_size,omitempty"`
	CRV        string `json:"crv,omitempty"`
	ReuseKey   bool   `json:"reuse_key"`
}

type certSecretPropsJSON struct {
	ContentType string `json:"contentType"`
}

type certX509PropsJSON struct {
	Subject          string          `json:"subject"`
	SANs             *sansJSON       `json:"sans,omitempty"`
	EKUs             []string        `json:"ekus"`
	KeyUsage         []string        `json:"key_usage"`
	ValidityMonths   int             `json:"validity_months"`
	BasicConstraints basicConstrJSON `json:"basic_constraints"`
}

type sansJSON struct {
	DNSNames []string `json:"dns_names,omitempty"`
}

type basicConstrJSON struct {
	CA bool `json:"ca"`
}

type lifetimeActionJSON struct {
	Trigger struct {
		LifetimePercentage int `json:"lifetime_percentage"`
	} `json:"trigger"`
	Action struct {
		ActionType string `json:"action_type"`
	} `json:"action"`
}

type issuerJSON struct {
	Name string `json:"name"`
}

type policyAttrsJSON struct {
	Enabled bool  `json:"enabled"`
	Created int64 `json:"created"`
	Updated int64 `json:"updated"`
}

// listJSON is a page of a list answer. NextLink is null on the last page,
// as the service sends it.
type listJSON[T any] struct {
	Value    []T     `json:"value"`
	NextLink *string `json:"nextLink"`
}

// Request bodies.

type attributesInJSON struct {
	Enabled   *bool  `json:"enabled"`
	NotBefore *int64 `json:"nbf"`
	Expires   *int64 `json:"exp"`
}

type setSecretInJSON struct {
	Value       *string           `json:"value"`
	ContentType *string           `json:"contentType"`
	Attributes  *attributesInJSON `json:"attributes"`
	Tags        map[string]string `json:"tags"`
}

type updateSecretInJSON struct {
	ContentType *string           `json:"contentType"`
	Attributes  *attributesInJSON `json:"attributes"`
	Tags        map[string]string `json:"tags"`
}

func unixPtr(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func (v *Vault) attributesLocked(enabled bool, nbf, exp, created, updated time.Time) attributesJSON {
	a := attributesJSON{Enabled: enabled, NotBefore: unixPtr(nbf), Expires: unixPtr(exp),
		Created: created.Unix(), Updated: updated.Unix(), RecoveryLevel: v.cfg.recoveryLevel()}
	if d := v.cfg.recoverableDays(); d > 0 {
		a.RecoverableDays = &d
	}
	return a
}

// pageToken is the state a $skiptoken carries: the sort key of the last
// item answered, and whether the next answer is an interleaved empty page.
type pageToken struct {
	NextMarker     string `json:"NextMarker"`
	TargetLocation int    `json:"TargetLocation"`
	Empty          bool   `json:"Empty,omitempty"`
}

func encodePageToken(t pageToken) string {
	b, _ := json.Marshal(t)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageToken(s string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return t, err
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return t, err
	}
	return t, nil
}

// pageRequest is what a list request asks for.
type pageRequest struct {
	token      pageToken
	hasToken   bool
	size       int
	maxResults string // as sent, echoed in nextLink
}

// parsePageRequest reads maxresults and $skiptoken. The service caps
// maxresults at 25.
func parsePageRequest(q url.Values, defaultSize int) (pageRequest, *Error) {
	pr := pageRequest{size: defaultSize}
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 {
			return pr, errMaxResults(m)
		}
		pr.size = min(n, 25)
		pr.maxResults = strconv.Itoa(n)
	}
	if s := q.Get("$skiptoken"); s != "" {
		t, err := decodePageToken(s)
		if err != nil {
			return pr, errSkipToken()
		}
		pr.token, pr.hasToken = t, true
	}
	return pr, nil
}

// paginate picks the window of sortKeys (sorted ascending) a page answers:
// items [start, end), and the token of the next page, if any.
func paginate(sortKeys []string, pr pageRequest, interleaveEmpty bool) (start, end int, next *pageToken) {
	if pr.hasToken && pr.token.Empty {
		// The interleaved empty page: nothing now, the rest after.
		return 0, 0, &pageToken{NextMarker: pr.token.NextMarker}
	}
	start = 0
	if pr.hasToken {
		start = sort.SearchStrings(sortKeys, pr.token.NextMarker)
		if start < len(sortKeys) && sortKeys[start] == pr.token.NextMarker {
			start++
		}
	}
	end = min(start+pr.size, len(sortKeys))
	if end < len(sortKeys) {
		next = &pageToken{NextMarker: sortKeys[end-1], Empty: interleaveEmpty}
	}
	return start, end, next
}
