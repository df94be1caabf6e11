package controller

import (
	"context"
	"errors"
	"maps"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/yaml"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller/csiprovider"
)

// objectsParameter is the SecretProviderClass parameter that lists objects
// in the "array:" form the Azure provider (and others) use.
const objectsParameter = "objects"

// DefaultMountsPerVaultPerSecond bounds the Mount calls the controller makes
// for one vault (or provider, when the class names no vault).
const DefaultMountsPerVaultPerSecond = 20

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
// or false when the parameter is absent or not in that form.
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
	for _, raw := range list.Array {
		var o struct {
			Name  string `json:"objectName"`
			Alias string `json:"objectAlias"`
		}
		if err := yaml.Unmarshal([]byte(raw), &o); err != nil || o.Name == "" {
			return nil, false
		}
		root := o.Alias
		if root == "" {
			root = o.Name
		}
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

// planMounts decides the Mount calls of a pass. When the class lists objects
// in the "array:" form, only the objects the SecretSync reads are asked for:
// one call per object with partial sync, one call for all of them without.
// Otherwise one call passes the class's parameters as they are.
func planMounts(ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, partial bool) ([]mountPlan, *syncError) {
	entries, ok := parseClassObjects(class.Spec.Parameters[objectsParameter])
	if !ok {
		return []mountPlan{{}}, nil
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
			return nil, fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
				"sourcePath %q (targetKey %q) names no object of SecretProviderClass %q (its objects are %s): use an objectName or objectAlias of the class, with /N for a version or /tls.crt, /tls.key for certificate parts",
				item.SourcePath, item.TargetKey, class.Name, strings.Join(slices.Sorted(maps.Keys(byRoot)), ", "))
		}
		if !seen[root] {
			seen[root] = true
			used = append(used, e)
		}
	}
	if !partial {
		plan, err := objectsPlan(used)
		if err != nil {
			return nil, err
		}
		return []mountPlan{plan}, nil
	}
	plans := make([]mountPlan, 0, len(used))
	for _, e := range used {
		plan, err := objectsPlan([]classObject{e})
		if err != nil {
			return nil, err
		}
		plans = append(plans, plan)
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

// vaultLimiters bounds the rate of Mount calls per vault.
type vaultLimiters struct {
	perSecond float64

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// wait blocks until a Mount for the class's vault may start.
func (v *vaultLimiters) wait(ctx context.Context, class *spcv1.SecretProviderClass) error {
	key := string(class.Spec.Provider) + "/" + class.Spec.Parameters["keyvaultName"]
	v.mu.Lock()
	l, ok := v.limiters[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(v.perSecond), max(1, int(2*v.perSecond)))
		v.limiters[key] = l
	}
	v.mu.Unlock()
	return l.Wait(ctx)
}

// mount runs the plans, in order, and returns their results. Failures that
// concern the class or the controller rather than the objects end the pass.
// When shared is true, a result another SecretSync got for the same call
// moments ago, or is getting now, is used instead of calling the provider
// again.
func (r *SecretSyncReconciler) mount(ctx context.Context, ss *ssv1alpha1.SecretSync, class *spcv1.SecretProviderClass, attrs map[string]string, plans []mountPlan, shared bool) ([]mountResult, *syncError) {
	provider := string(class.Spec.Provider)
	results := make([]mountResult, 0, len(plans))
	for _, plan := range plans {
		key := mountKey{provider: provider, class: class.UID, generation: class.Generation, namespace: ss.Namespace,
			serviceAccount: ss.Spec.ServiceAccountName, objects: plan.objects}
		if shared {
			if files, ok := r.mounts.wait(ctx, key, r.now()); ok {
				results = append(results, mountResult{plan: plan, files: files})
				continue
			}
		}
		end := r.mounts.begin(key)
		a := attrs
		if plan.objects != "" {
			a = maps.Clone(attrs)
			a[objectsParameter] = plan.objects
		}
		if err := r.limiters.wait(ctx, class); err != nil {
			end(nil)
			return nil, fail(ssv1alpha1.ReasonProviderError, true, err, "waiting for the vault rate limit of provider %q: %v", provider, err)
		}
		start := r.now()
		resp, err := r.Providers.Mount(ctx, provider, csiprovider.MountRequest{Attributes: a, Permission: 0o644})
		observeMount(provider, err, r.now().Sub(start))
		if err != nil {
			end(nil)
			if serr := classFailure(class.Name, provider, err); serr != nil {
				return nil, serr
			}
			results = append(results, mountResult{plan: plan, err: err})
			continue
		}
		files, serr := responseFiles(provider, resp)
		if serr != nil {
			end(nil)
			return nil, serr
		}
		r.mounts.put(key, files, r.now())
		end(files)
		results = append(results, mountResult{plan: plan, files: files})
	}
	return results, nil
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
