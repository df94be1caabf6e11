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
	// err is the provider's failure, reported per item: it is the one kind
	// of failure partial sync tolerates.
	err error
}

// classObject is one entry of the objects parameter.
type classObject struct {
	raw  string
	root string
}

// parseClassObjects returns the entries of an "array:" objects parameter,
// or false when the parameter is absent, not in that form, or has two
// entries writing one file: the class is then passed to the provider as it
// is, and the provider says what is wrong with it.
func parseClassObjects(objects string) ([]classObject, bool) {
	if strings.TrimSpace(objects) == "" {
		return nil, false
	}
	var list struct {
		Array []string `json:"array"`
	}
	if err := yaml.Unmarshal([]byte(objects), &list); err != nil || len(list.Array) == 0 {
		return nil, false
	}
	out := make([]classObject, 0, len(list.Array))
	roots := map[string]bool{}
	for _, raw := range list.Array {
		var o struct {
			Name  string `json:"objectName"`
			Alias string `json:"objectAlias"`
		}
		if err := yaml.Unmarshal([]byte(raw), &o); err != nil || o.Name == "" {
			return nil, false
		}
		root := strings.TrimSpace(o.Alias)
		if root == "" {
			root = strings.TrimSpace(o.Name)
		}
		if roots[root] {
			return nil, false // two entries write one file
		}
		roots[root] = true
		out = append(out, classObject{raw: raw, root: root})
	}
	return out, true
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

// maxCachedPlans bounds the plans a planCache keeps; it starts afresh when
// full.
const maxCachedPlans = 10000

// planCache remembers the Mount plans of a class generation for the objects
// a SecretSync reads: parsing and encoding the objects parameter is most of
// a routine check's CPU, and its result never changes for a generation.
type planCache struct {
	mu    sync.Mutex
	plans map[planKey]mountPlans
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
	c.mu.Lock()
	plans, ok := c.plans[key]
	c.mu.Unlock()
	if ok {
		return plans, nil
	}
	plans, serr := planMounts(ss, class, partial)
	if serr != nil {
		return plans, serr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.plans == nil || len(c.plans) >= maxCachedPlans {
		c.plans = map[planKey]mountPlans{}
	}
	c.plans[key] = plans
	return plans, nil
}

// planMounts decides the Mount calls of a pass. When the class lists objects
// in the "array:" form, only the objects the SecretSync reads are asked for.
// Otherwise one call passes the class's parameters as they are.
func planMounts(ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, partial bool) (mountPlans, *syncError) {
	entries, ok := parseClassObjects(class.Spec.Parameters[objectsParameter])
	if !ok {
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
	whole, err := objectsPlan(used)
	if err != nil {
		return mountPlans{}, err
	}
	plans := mountPlans{whole: whole}
	if !partial || len(used) < 2 {
		return plans, nil
	}
	for _, e := range used {
		plan, err := objectsPlan([]classObject{e})
		if err != nil {
			return mountPlans{}, err
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
	if objectFailure(err) {
		return false
	}
	switch status.Code(err) {
	case codes.Unauthenticated, codes.InvalidArgument, codes.OutOfRange, codes.Unimplemented, codes.AlreadyExists:
		return false
	case codes.Unknown:
		if m := vaultStatus.FindStringSubmatch(providerMessage(err)); m != nil {
			code, _ := strconv.Atoi(m[1])
			return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
		}
	}
	return true
}

// objectFailure reports whether a Mount error is about one object (missing,
// disabled, denied, unreadable) rather than the vault or the path to it, so
// that asking for the objects one by one may tell which fail.
func objectFailure(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.FailedPrecondition:
		return true
	}
	return false
}

// mountAll runs a pass's Mount calls: the whole call, and, when it fails
// for an object's sake (objectFailure) and partial sync may write the rest,
// one call per object. A whole call that failed so is not tried again for splitTTL:
// passes go per object at once.
func (r *SecretSyncReconciler) mountAll(ctx context.Context, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, attrs map[string]string, plans mountPlans, shared bool) ([]mountResult, *syncError) {
	if len(plans.each) == 0 {
		return r.mount(ctx, ss, class, attrs, []mountPlan{plans.whole}, shared)
	}
	key := r.mountKey(ss, class, plans.whole)
	if !r.mounts.split(key, r.now()) {
		results, serr := r.mount(ctx, ss, class, attrs, []mountPlan{plans.whole}, shared)
		if serr != nil || results[0].err == nil || !objectFailure(results[0].err) {
			return results, serr
		}
		r.mounts.markSplit(key, r.now())
	}
	return r.mount(ctx, ss, class, attrs, plans.each, shared)
}

// mountKey identifies a plan's Mount call for the SecretSync.
func (r *SecretSyncReconciler) mountKey(ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, plan mountPlan) mountKey {
	return mountKey{provider: string(class.Spec.Provider), class: class.UID, generation: class.Generation, namespace: ss.Namespace,
		serviceAccount: ss.Spec.ServiceAccountName, objects: plan.objects}
}

// mount runs the plans, in order, and returns their results. Failures that
// concern the class or the controller rather than the objects end the pass.
// When shared is true, a result another SecretSync got for the same call
// moments ago, or is getting now, is used instead of calling the provider
// again.
func (r *SecretSyncReconciler) mount(ctx context.Context, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, attrs map[string]string, plans []mountPlan, shared bool) ([]mountResult, *syncError) {
	results := make([]mountResult, 0, len(plans))
	for _, plan := range plans {
		res, serr := r.mountOne(ctx, ss, class, attrs, plan, shared)
		if serr != nil {
			return nil, serr
		}
		results = append(results, res)
	}
	return results, nil
}

// mountOne runs one plan's Mount call, or, when shared is true, takes the
// files of the same call made moments ago or in progress. While the call
// runs, routine checks making the same call wait for it; it ends on every
// path, a panic included, so that they never wait for a call that is over.
func (r *SecretSyncReconciler) mountOne(ctx context.Context, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, attrs map[string]string, plan mountPlan, shared bool) (mountResult, *syncError) {
	provider := string(class.Spec.Provider)
	key := r.mountKey(ss, class, plan)
	if shared {
		if files, ok := r.mounts.wait(ctx, key, r.now()); ok {
			return mountResult{plan: plan, files: files}, nil
		}
	}
	if d := r.limiters.pausedFor(class, r.now()); d > 0 {
		return mountResult{}, &syncError{deferred: true, retryAfter: d, reason: ssv1alpha1.ReasonProviderError,
			message: fmt.Sprintf("provider %q asked to retry the vault of SecretProviderClass %q later", provider, class.Name)}
	}
	var files map[string][]byte
	end := r.mounts.begin(key)
	defer func() { end(files) }()

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
	files = got
	r.mounts.put(key, files, r.now())
	return mountResult{plan: plan, files: files}, nil
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
