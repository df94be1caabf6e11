package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller/csiprovider"
)

// objectsParameter is the SecretProviderClass parameter that lists objects
// in the "array:" form the Azure provider (and others) use.
const objectsParameter = "objects"

// DefaultVaultReadsPerSecond bounds the objects the controller asks one
// vault (or provider, when the class names no vault) for per second: half
// of Key Vault's limit for secret reads (4,000 per 10 seconds per vault),
// leaving the rest to the vault's other clients.
const DefaultVaultReadsPerSecond = 200

// mountPlan is one Mount call.
type mountPlan struct {
	// objects is the objects parameter to pass; empty keeps the class's.
	objects string
	// roots are the file path roots (objectAlias or objectName) the call
	// serves; nil means the call serves every path.
	roots []string
}

// mountResult is the outcome of one Mount call.
type mountResult struct {
	plan  mountPlan
	files map[string][]byte
	// versions are the versions of the objects read, by the provider's
	// object ID (e.g. secret/db-password).
	versions map[string]string
	// err is the provider's failure, reported per item: it is the one kind
	// of failure partial sync tolerates.
	err error
}

// classObject is one entry of the objects parameter.
type classObject struct {
	raw  string
	root string
	// objectType, objectFormat and objectEncoding are the entry's fields,
	// trimmed, for the checks of azure classes.
	objectType, objectFormat, objectEncoding string
}

// parseClassObjects returns the entries of an "array:" objects parameter,
// or an error that says why the parameter is not a list of objects the
// controller can plan Mounts for: absent, not YAML with an array of
// strings, an entry without an objectName, or two entries writing one file.
func parseClassObjects(objects string) ([]classObject, error) {
	if strings.TrimSpace(objects) == "" {
		return nil, errors.New("objects is not set")
	}
	var list struct {
		Array []string `json:"array"`
	}
	if err := yaml.Unmarshal([]byte(objects), &list); err != nil {
		return nil, fmt.Errorf("objects is not valid YAML with an array of strings: %w", err)
	}
	if len(list.Array) == 0 {
		return nil, errors.New("objects has no entries under array")
	}
	out := make([]classObject, 0, len(list.Array))
	roots := map[string]int{}
	for i, raw := range list.Array {
		var o struct {
			Name     string `json:"objectName"`
			Alias    string `json:"objectAlias"`
			Type     string `json:"objectType"`
			Format   string `json:"objectFormat"`
			Encoding string `json:"objectEncoding"`
		}
		if err := yaml.Unmarshal([]byte(raw), &o); err != nil {
			return nil, fmt.Errorf("objects entry %d is not valid YAML: %w", i, err)
		}
		if strings.TrimSpace(o.Name) == "" {
			return nil, fmt.Errorf("objects entry %d has no objectName", i)
		}
		root := strings.TrimSpace(o.Alias)
		if root == "" {
			root = strings.TrimSpace(o.Name)
		}
		if j, dup := roots[root]; dup {
			return nil, fmt.Errorf("objects entries %d and %d both write file %q: set objectAlias on one of them", j, i, root)
		}
		roots[root] = i
		out = append(out, classObject{raw: raw, root: root, objectType: strings.TrimSpace(o.Type),
			objectFormat: strings.TrimSpace(o.Format), objectEncoding: strings.TrimSpace(o.Encoding)})
	}
	return out, nil
}

// sourceRoot returns the object path a sourcePath reads: name of name/0,
// name/tls.crt.
func sourceRoot(sourcePath string) string {
	root, _, _ := strings.Cut(sourcePath, "/")
	return root
}

// mountPlans are the Mount calls of a pass: whole reads everything the
// SecretSync needs in one call; each, set only with partial sync and more
// than one object, reads one object per call, to tell which objects fail
// when whole fails.
type mountPlans struct {
	whole mountPlan
	each  []mountPlan
}

// maxCachedPlans bounds each map of a planCache; a full map starts afresh.
const maxCachedPlans = 10000

// boundedMap is a concurrency-safe map of at most maxCachedPlans entries,
// emptied when full.
type boundedMap[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
}

func (b *boundedMap[K, V]) get(k K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.m[k]
	return v, ok
}

func (b *boundedMap[K, V]) put(k K, v V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil || len(b.m) >= maxCachedPlans {
		b.m = map[K]V{}
	}
	b.m[k] = v
}

// planCache remembers, per class generation, the Mount plans for the
// objects a SecretSync reads and the check of an azure class: parsing and
// encoding the objects parameter is most of a routine check's CPU, and its
// result never changes for a generation.
type planCache struct {
	plans    boundedMap[planKey, mountPlans]
	problems boundedMap[problemKey, string]
}

// problemKey identifies azureClassProblem's answer for one class
// generation and ServiceAccount (the answer may name it).
type problemKey struct {
	class          types.UID
	generation     int64
	serviceAccount string
}

// classProblem returns azureClassProblem's answer for the class, from the
// cache when the class generation was checked before.
func (c *planCache) classProblem(class *spcv1.SecretProviderClass, serviceAccount string) string {
	if class.UID == "" {
		return azureClassProblem(class.Spec.Parameters, serviceAccount)
	}
	key := problemKey{class: class.UID, generation: class.Generation, serviceAccount: serviceAccount}
	if problem, ok := c.problems.get(key); ok {
		return problem
	}
	problem := azureClassProblem(class.Spec.Parameters, serviceAccount)
	c.problems.put(key, problem)
	return problem
}

// planKey identifies the plans of one class generation for one ordered
// list of sourcePath roots.
type planKey struct {
	class      types.UID
	generation int64
	partial    bool
	roots      string
}

// plan returns planMounts' plans, from the cache when the class generation
// and the roots read were planned before. Failures are not cached.
func (c *planCache) plan(ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, partial bool) (mountPlans, *syncError) {
	if class.UID == "" {
		return planMounts(ss, class, partial)
	}
	var roots strings.Builder
	for _, item := range ss.Spec.SecretObject.Data {
		roots.WriteString(sourceRoot(item.SourcePath))
		roots.WriteByte(0)
	}
	key := planKey{class: class.UID, generation: class.Generation, partial: partial, roots: roots.String()}
	if plans, ok := c.plans.get(key); ok {
		return plans, nil
	}
	plans, serr := planMounts(ss, class, partial)
	if serr != nil {
		return plans, serr
	}
	c.plans.put(key, plans)
	return plans, nil
}

// planMounts decides the Mount calls of a pass. When the class lists objects
// in the "array:" form, only the objects the SecretSync reads are asked for.
// Otherwise one call passes the class's parameters as they are.
func planMounts(ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, partial bool) (mountPlans, *syncError) {
	entries, err := parseClassObjects(class.Spec.Parameters[objectsParameter])
	if err != nil {
		// Not a list the controller can plan for: the class goes to the
		// provider as it is, and the provider says what is wrong with it.
		return mountPlans{}, nil
	}
	byRoot := map[string]classObject{}
	for _, e := range entries {
		byRoot[e.root] = e
	}
	var used []classObject
	seen := map[string]bool{}
	for _, item := range ss.Spec.SecretObject.Data {
		root := sourceRoot(item.SourcePath)
		e, ok := byRoot[root]
		if !ok {
			return mountPlans{}, fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
				"sourcePath %q (targetKey %q) names no object of SecretProviderClass %q (its objects are %s): use an objectName or objectAlias of the class, with /N for a version or /tls.crt, /tls.key for certificate parts",
				item.SourcePath, item.TargetKey, class.Name, strings.Join(slices.Sorted(maps.Keys(byRoot)), ", "))
		}
		if !seen[root] {
			seen[root] = true
			used = append(used, e)
		}
	}
	whole, serr := objectsPlan(used)
	if serr != nil {
		return mountPlans{}, serr
	}
	plans := mountPlans{whole: whole}
	if !partial || len(used) < 2 {
		return plans, nil
	}
	for _, e := range used {
		plan, serr := objectsPlan([]classObject{e})
		if serr != nil {
			return mountPlans{}, serr
		}
		plans.each = append(plans.each, plan)
	}
	return plans, nil
}

func objectsPlan(objects []classObject) (mountPlan, *syncError) {
	list := struct {
		Array []string `json:"array"`
	}{}
	plan := mountPlan{}
	for _, o := range objects {
		list.Array = append(list.Array, o.raw)
		plan.roots = append(plan.roots, o.root)
	}
	out, err := yaml.Marshal(list)
	if err != nil {
		return mountPlan{}, fail(ssv1alpha1.ReasonControllerInternalError, true, err, "encoding the objects parameter failed: %v", err)
	}
	plan.objects = string(out)
	return plan, nil
}

// serves reports whether the plan's call returns files under root.
func (p mountPlan) serves(root string) bool {
	return p.roots == nil || slices.Contains(p.roots, root)
}

// vaultLimiters bounds the objects read per second per vault, and holds back
// every Mount for a vault that asked to be retried later. A vault's limiter
// is dropped once it has been idle long enough to be full again (a new one
// is the same), so the limiters do not grow with every vault name ever
// written in a class.
type vaultLimiters struct {
	perSecond float64

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
	// paused are the vaults that answered with a retry delay, until when.
	paused map[string]time.Time
}

// vaultKey identifies the class's vault (or provider, when the class names
// no vault).
func vaultKey(class *spcv1.SecretProviderClass) string {
	return string(class.Spec.Provider) + "/" + class.Spec.Parameters["keyvaultName"]
}

// wait blocks until a Mount reading objects objects of the class's vault
// may start. The burst is one second's reads; a Mount of more objects than
// that waits for a whole burst.
func (v *vaultLimiters) wait(ctx context.Context, class *spcv1.SecretProviderClass, objects int) error {
	key := vaultKey(class)
	v.mu.Lock()
	l, ok := v.limiters[key]
	if !ok {
		v.dropIdle(time.Now())
		l = rate.NewLimiter(rate.Limit(v.perSecond), max(1, int(v.perSecond)))
		v.limiters[key] = l
	}
	v.mu.Unlock()
	return l.WaitN(ctx, min(max(objects, 1), l.Burst()))
}

// dropIdle drops the limiters that are full at now, and the pauses that
// are over. v.mu must be held.
func (v *vaultLimiters) dropIdle(now time.Time) {
	for k, l := range v.limiters {
		if l.TokensAt(now) >= float64(l.Burst()) {
			delete(v.limiters, k)
		}
	}
	for k, until := range v.paused {
		if !now.Before(until) {
			delete(v.paused, k)
		}
	}
}

// pause holds back Mounts for the class's vault until then.
func (v *vaultLimiters) pause(class *spcv1.SecretProviderClass, until time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.paused == nil {
		v.paused = map[string]time.Time{}
	}
	if until.After(v.paused[vaultKey(class)]) {
		v.paused[vaultKey(class)] = until
	}
}

// pausedFor returns how long Mounts for the class's vault are still held
// back, or 0.
func (v *vaultLimiters) pausedFor(class *spcv1.SecretProviderClass, now time.Time) time.Duration {
	v.mu.Lock()
	defer v.mu.Unlock()
	until, ok := v.paused[vaultKey(class)]
	if !ok {
		return 0
	}
	if !now.Before(until) {
		delete(v.paused, vaultKey(class))
		return 0
	}
	return until.Sub(now)
}

// maxRetryDelay bounds the wait a provider may ask for: a provider that
// asks for more cannot stop a vault's syncs for longer.
const maxRetryDelay = 5 * time.Minute

// retryDelay returns the wait a provider asked for with a failure (gRPC
// RetryInfo, e.g. a vault's Retry-After), at most maxRetryDelay, or 0.
func retryDelay(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok && info.GetRetryDelay() != nil {
			return min(max(0, info.GetRetryDelay().AsDuration()), maxRetryDelay)
		}
	}
	return 0
}

// vaultStatus finds the HTTP status of the vault's answer in a provider
// message that quotes the Azure SDK's error ("RESPONSE 404: 404 Not
// Found"), as providers that answer every failure with codes.Unknown do.
var vaultStatus = regexp.MustCompile(`RESPONSE (\d{3})\b`)

// retryable reports whether a Mount failure may go away by itself soon, so
// that the check is retried with backoff before the next poll: the vault or
// the path to it failed (transport, timeout, DNS), it throttled (429) or
// failed (5xx), or the provider did not answer. A failure that says what is
// wrong with the objects, their permissions or the identity (404, 403, a
// disabled secret, a failed token exchange) or with the request is not
// retried: it waits for the next poll, or for a change of the SecretSync or
// its class, which triggers a check at once.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition,
		codes.Unauthenticated, codes.InvalidArgument, codes.OutOfRange, codes.Unimplemented, codes.AlreadyExists:
		return false
	case codes.Unknown:
		if m := vaultStatus.FindStringSubmatch(providerMessage(err)); m != nil {
			code, _ := strconv.Atoi(m[1])
			return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
		}
	}
	return true
}

// vaultWideMarkers are words of a provider's message that name a failure
// every object of the vault meets alike: the vault's network rules, the
// identity's token exchange, throttling, a name that does not resolve.
var vaultWideMarkers = []string{"ForbiddenByFirewall", "ForbiddenByConnection", "AADSTS", "RESPONSE 401", "RESPONSE 429", "no such host"}

// vaultWide reports whether a Mount failure is one every object of the
// vault would meet alike, so that reading the objects one by one would only
// repeat it: the provider or the vault did not answer in time or at all,
// the identity could not authenticate, the vault throttled or asked to be
// retried later, or its network rules refused the caller. Any other
// failure, whatever its code or wording, may be one object's: providers
// differ (the upstream Azure provider answers every failure with
// codes.Unknown and the first failed object's error).
func vaultWide(err error) bool {
	if retryDelay(err) > 0 {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unauthenticated, codes.ResourceExhausted:
		return true
	}
	msg := providerMessage(err)
	return slices.ContainsFunc(vaultWideMarkers, func(m string) bool { return strings.Contains(msg, m) })
}

// maxObjectMounts bounds the per-object Mount calls of one pass in flight.
const maxObjectMounts = 8

// mountAll runs a pass's Mount calls: the whole call, and, when it fails in
// a way that may be one object's (not vaultWide) and partial sync may write
// the rest, one call per object, so that each item gets its own outcome.
// All of them share one Mount deadline: the pass reports within it whatever
// the provider's own retries. While some objects fail and others do not,
// later passes go per object at once, for splitTTL.
func (r *SecretSyncReconciler) mountAll(ctx context.Context, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, attrs map[string]string, plans mountPlans, shared bool) ([]mountResult, *syncError) {
	if len(plans.each) == 0 {
		res, serr := r.mountOne(ctx, ss, class, attrs, plans.whole, shared)
		if serr != nil {
			return nil, serr
		}
		return []mountResult{res}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.Providers.Timeout())
	defer cancel()
	key := r.mountKey(ss, class, plans.whole)
	if !r.mounts.split(key, r.now()) {
		res, serr := r.mountOne(ctx, ss, class, attrs, plans.whole, shared)
		if serr != nil {
			return nil, serr
		}
		if res.err == nil || vaultWide(res.err) || ctx.Err() != nil {
			return []mountResult{res}, nil
		}
	}
	results, serr := r.mountEach(ctx, ss, class, attrs, plans.each, shared)
	if serr != nil {
		return nil, serr
	}
	failed := 0
	for _, res := range results {
		if res.err != nil {
			failed++
		}
	}
	if failed > 0 && failed < len(results) {
		r.mounts.markSplit(key, r.now())
	} else {
		r.mounts.unsplit(key)
	}
	return results, nil
}

// mountEach runs the per-object plans, at most maxObjectMounts at a time,
// and returns their results in order. A failure that ends the pass (see
// mountOne) ends it; a panic in one call is a ControllerInternalError.
func (r *SecretSyncReconciler) mountEach(ctx context.Context, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, attrs map[string]string, plans []mountPlan, shared bool) ([]mountResult, *syncError) {
	results := make([]mountResult, len(plans))
	serrs := make([]*syncError, len(plans))
	slots := make(chan struct{}, maxObjectMounts)
	var wg sync.WaitGroup
	for i, plan := range plans {
		wg.Go(func() {
			defer func() {
				if p := recover(); p != nil {
					serrs[i] = recovered(p)
				}
			}()
			slots <- struct{}{}
			defer func() { <-slots }()
			results[i], serrs[i] = r.mountOne(ctx, ss, class, attrs, plan, shared)
		})
	}
	wg.Wait()
	for _, serr := range serrs {
		if serr != nil {
			return nil, serr
		}
	}
	return results, nil
}

// mountKey identifies a plan's Mount call for the SecretSync.
func (r *SecretSyncReconciler) mountKey(ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, plan mountPlan) mountKey {
	return mountKey{provider: string(class.Spec.Provider), class: class.UID, generation: class.Generation, namespace: ss.Namespace,
		serviceAccount: ss.Spec.ServiceAccountName, objects: plan.objects}
}

// mountOne runs one plan's Mount call, or, when shared is true, takes the
// files of the same call made moments ago or in progress. While the call
// runs, routine checks making the same call wait for it; it ends on every
// path, a panic included, so that they never wait for a call that is over.
func (r *SecretSyncReconciler) mountOne(ctx context.Context, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, attrs map[string]string, plan mountPlan, shared bool) (mountResult, *syncError) {
	provider := string(class.Spec.Provider)
	key := r.mountKey(ss, class, plan)
	if shared {
		if m, ok := r.mounts.wait(ctx, key, r.now()); ok {
			return mountResult{plan: plan, files: m.files, versions: m.versions}, nil
		}
	}
	if d := r.limiters.pausedFor(class, r.now()); d > 0 {
		return mountResult{}, &syncError{deferred: true, retryAfter: d, reason: ssv1alpha1.ReasonProviderError,
			message: fmt.Sprintf("provider %q asked to retry the vault of SecretProviderClass %q later", provider, class.Name)}
	}
	var result *mounted
	end := r.mounts.begin(key)
	defer func() { end(result) }()

	a := attrs
	if plan.objects != "" {
		a = maps.Clone(attrs)
		a[objectsParameter] = plan.objects
	}
	if err := r.limiters.wait(ctx, class, len(plan.roots)); err != nil {
		return mountResult{}, fail(ssv1alpha1.ReasonProviderError, true, err, "waiting for the vault rate limit of provider %q: %v", provider, err)
	}
	start := r.now()
	resp, err := r.Providers.Mount(ctx, provider, csiprovider.MountRequest{Attributes: a, Permission: 0o644})
	observeMount(provider, err, r.now().Sub(start))
	if err != nil {
		if d := retryDelay(err); d > 0 {
			r.limiters.pause(class, r.now().Add(d))
		}
		if serr := classFailure(class.Name, provider, err); serr != nil {
			return mountResult{}, serr
		}
		return mountResult{plan: plan, err: err}, nil
	}
	got, serr := responseFiles(provider, resp)
	if serr != nil {
		return mountResult{}, serr
	}
	result = &mounted{files: got, versions: resp.ObjectVersions}
	r.mounts.put(key, result, r.now())
	return mountResult{plan: plan, files: got, versions: resp.ObjectVersions}, nil
}

// classFailure returns the pass-ending failure a Mount error means, or nil
// when the error is about the objects (ProviderError, per item).
func classFailure(class, provider string, err error) *syncError {
	switch {
	case errors.Is(err, csiprovider.ErrNoSocket), errors.Is(err, csiprovider.ErrInvalidProviderName):
		return fail(ssv1alpha1.ReasonControllerSpcError, true, err,
			"SecretProviderClass %q names provider %q, which cannot be reached: %v. Check spec.provider and that the provider is running",
			class, provider, err)
	case status.Code(err) == codes.InvalidArgument:
		return fail(ssv1alpha1.ReasonControllerSpcError, false, err,
			"provider %q rejected the parameters of SecretProviderClass %q: %s", provider, class, providerMessage(err))
	case errors.Is(err, csiprovider.ErrResponseTooLarge):
		return fail(ssv1alpha1.ReasonControllerInternalError, true, err,
			"provider %q answered for SecretProviderClass %q with a response over the size limit: %v", provider, class, err)
	}
	return nil
}

// responseFiles checks a Mount response and returns its files by path. A
// response with an invalid or repeated path is malformed.
func responseFiles(provider string, resp *csiprovider.MountResponse) (map[string][]byte, *syncError) {
	files := make(map[string][]byte, len(resp.Files))
	for _, f := range resp.Files {
		p := f.Path
		if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
			return nil, fail(ssv1alpha1.ReasonControllerInternalError, true, nil,
				"provider %q returned a malformed response: file path %q is not a clean relative path", provider, p)
		}
		if _, dup := files[p]; dup {
			return nil, fail(ssv1alpha1.ReasonControllerInternalError, true, nil,
				"provider %q returned a malformed response: file path %q appears twice", provider, p)
		}
		files[p] = f.Contents
	}
	return files, nil
}

// providerMessage is the provider's own message of a Mount error: the
// message of the gRPC status it answered, without the client's wrapping.
func providerMessage(err error) string {
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) && gs.GRPCStatus() != nil {
		return gs.GRPCStatus().Message()
	}
	return err.Error()
}

// formatItemErrors joins distinct provider messages.
func formatItemErrors(errs []string) string {
	return strings.Join(slices.Compact(slices.Sorted(slices.Values(errs))), "; ")
}
