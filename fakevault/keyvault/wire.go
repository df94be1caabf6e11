package keyvault

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
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
// On the wire it is base64url JSON shaped as the service's
// ({"NextMarker":"2!<n>!<base64>","TargetLocation":0}); the marker also
// carries a MAC over the list it belongs to, so that the fake, as the
// service, refuses a token it did not issue for that list.
type pageToken struct {
	after string // sort key of the last item answered; "" for the start
	empty bool   // the page is an interleaved empty one
	last  bool   // the page is the trailing empty one
}

type pageTokenJSON struct {
	NextMarker     string `json:"NextMarker"`
	TargetLocation int    `json:"TargetLocation"`
}

// pageMAC binds a token's state to one list (vault host and path).
func (s *Service) pageMAC(list string, t pageToken) string {
	m := hmac.New(sha256.New, s.pageKey)
	fmt.Fprintf(m, "%s\x00%s\x00%t\x00%t", list, t.after, t.empty, t.last)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func (s *Service) encodePageToken(list string, t pageToken) string {
	flags := 0
	if t.empty {
		flags |= 1
	}
	if t.last {
		flags |= 2
	}
	payload := fmt.Sprintf("%d!%s!%s", flags, s.pageMAC(list, t), t.after)
	marker := fmt.Sprintf("2!%d!%s", len(payload), base64.StdEncoding.EncodeToString([]byte(payload)))
	b, _ := json.Marshal(pageTokenJSON{NextMarker: marker})
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodePageToken reads a $skiptoken of list; it fails for anything the
// fake did not issue for that list.
func (s *Service) decodePageToken(list, raw string) (pageToken, error) {
	var t pageToken
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(raw, "="))
	if err != nil {
		return t, err
	}
	var tj pageTokenJSON
	if err := json.Unmarshal(b, &tj); err != nil {
		return t, err
	}
	parts := strings.SplitN(tj.NextMarker, "!", 3)
	if len(parts) != 3 || parts[0] != "2" {
		return t, errors.New("not a marker")
	}
	payload, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return t, err
	}
	fields := strings.SplitN(string(payload), "!", 3)
	if len(fields) != 3 {
		return t, errors.New("not a marker")
	}
	flags, err := strconv.Atoi(fields[0])
	if err != nil {
		return t, err
	}
	t = pageToken{after: fields[2], empty: flags&1 != 0, last: flags&2 != 0}
	if !hmac.Equal([]byte(fields[1]), []byte(s.pageMAC(list, t))) {
		return pageToken{}, errors.New("not issued for this list")
	}
	return t, nil
}

// pageRequest is what a list request asks for.
type pageRequest struct {
	list       string // the vault host and path the tokens are bound to
	token      pageToken
	hasToken   bool
	size       int
	maxResults string // as sent, echoed in nextLink
}

// pageRequest reads maxresults and $skiptoken. The service caps
// maxresults at 25, and refuses a $skiptoken it did not issue for the
// list.
func (c *call) pageRequest() (pageRequest, *Error) {
	q := c.r.URL.Query()
	pr := pageRequest{size: c.svc.opts.PageSize, list: c.vault.baseURL + strings.ToLower(c.r.URL.EscapedPath())}
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 {
			return pr, errMaxResults(m)
		}
		pr.size = min(n, 25)
		pr.maxResults = strconv.Itoa(n)
	}
	if raw := q.Get("$skiptoken"); raw != "" {
		t, err := c.svc.decodePageToken(pr.list, raw)
		if err != nil {
			return pr, errSkipToken()
		}
		pr.token, pr.hasToken = t, true
	}
	return pr, nil
}

// Page shapes of the lists: a vault-wide list (secrets, deleted secrets,
// keys, certificates) may end with a trailing empty page; a list of one
// object's versions ends on its last item, as recorded.
const (
	vaultWide = true
	versions  = false
)

// paginate picks the window of sortKeys (sorted ascending) a page answers:
// items [start, end), and the token of the next page, if any. Interleaved
// empty pages follow every full page when interleaveEmpty is set; a
// trailing empty page follows the last items of a vault-wide list when
// the service's Fidelity asks for one.
func (c *call) paginate(sortKeys []string, pr pageRequest, wide bool) (start, end int, next *pageToken) {
	switch {
	case pr.hasToken && pr.token.last:
		return 0, 0, nil
	case pr.hasToken && pr.token.empty:
		// The interleaved empty page: nothing now, the rest after.
		return 0, 0, &pageToken{after: pr.token.after}
	}
	if pr.hasToken {
		start = sort.SearchStrings(sortKeys, pr.token.after)
		if start < len(sortKeys) && sortKeys[start] == pr.token.after {
			start++
		}
	}
	end = min(start+pr.size, len(sortKeys))
	switch {
	case end < len(sortKeys):
		next = &pageToken{after: sortKeys[end-1], empty: c.cfg.InterleaveEmptyPages}
	case wide && c.svc.opts.Fidelity.TrailingEmptyPage && end > start:
		next = &pageToken{after: sortKeys[end-1], last: true}
	}
	return start, end, next
}
