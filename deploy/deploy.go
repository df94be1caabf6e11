// Package deploy renders kvsync's install configurations, the Helm chart
// under chart/kvsync and the kustomize trees beside it, into objects, and
// applies objects to a cluster with server-side apply. Tests, the
// conformance suite and hack/deploy install kvsync through it, so what they
// prove is what a platform team installs.
package deploy

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// FieldOwner is the field manager of installs done through Apply.
const FieldOwner = "kvsync-deploy"

//go:embed all:chart/kvsync
var chartFiles embed.FS

// Release names an install of the chart.
type Release struct {
	// Name is the release name; kvsync gives objects the name "kvsync-…".
	Name string
	// Namespace is the namespace of the controller, its ServiceAccount and
	// its Lease.
	Namespace string
	// KubeVersion is the cluster's Kubernetes version, checked against the
	// chart's kubeVersion and seen by templates as .Capabilities.KubeVersion;
	// empty means TestedKubeVersion.
	KubeVersion string
	// CreateNamespace adds the release's Namespace to the objects, as
	// `helm install --create-namespace` creates it.
	CreateNamespace bool
}

// TestedKubeVersion is the Kubernetes version kvsync is built and tested
// against (envtest's kube-apiserver).
const TestedKubeVersion = "v1.37.2"

// Chart loads the chart shipped with this package.
func Chart() (*chart.Chart, error) {
	var files []*loader.BufferedFile
	const root = "chart/kvsync"
	err := fs.WalkDir(chartFiles, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := chartFiles.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, root+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the chart: %w", err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("loading the chart: %w", err)
	}
	return ch, nil
}

// RenderChart renders the chart as `helm install` would for release with
// values merged over the chart's values.yaml: the CRDs first, then the
// templates in file order. Values that break the chart's schema are an
// error naming the value.
func RenderChart(release Release, values map[string]any) ([]*unstructured.Unstructured, error) {
	if release.Name == "" || release.Namespace == "" {
		return nil, errors.New("rendering the chart: a release needs a name and a namespace")
	}
	ch, err := Chart()
	if err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	kv := release.KubeVersion
	if kv == "" {
		kv = TestedKubeVersion
	}
	parsed, err := chartutil.ParseKubeVersion(kv)
	if err != nil {
		return nil, fmt.Errorf("rendering the chart: Kubernetes version %q: %w", kv, err)
	}
	caps.KubeVersion = *parsed
	if c := ch.Metadata.KubeVersion; c != "" && !chartutil.IsCompatibleRange(c, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("rendering the chart: Kubernetes %s does not meet the chart's kubeVersion %s", caps.KubeVersion.String(), c)
	}
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{
		Name: release.Name, Namespace: release.Namespace, Revision: 1, IsInstall: true}, caps)
	if err != nil {
		return nil, fmt.Errorf("rendering the chart: %w", err)
	}
	rendered, err := engine.Render(ch, vals)
	if err != nil {
		return nil, fmt.Errorf("rendering the chart: %w", err)
	}
	var objs []*unstructured.Unstructured
	if release.CreateNamespace {
		ns := &unstructured.Unstructured{}
		ns.SetAPIVersion("v1")
		ns.SetKind("Namespace")
		ns.SetName(release.Namespace)
		objs = append(objs, ns)
	}
	for _, crd := range ch.CRDObjects() {
		o, err := Decode(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("rendering the chart: %s: %w", crd.Filename, err)
		}
		objs = append(objs, o...)
	}
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		if path.Ext(name) == ".yaml" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		o, err := Decode([]byte(rendered[name]))
		if err != nil {
			return nil, fmt.Errorf("rendering the chart: %s: %w", name, err)
		}
		objs = append(objs, o...)
	}
	return objs, nil
}

// RenderKustomize renders the kustomize tree at dir, a directory on disk.
func RenderKustomize(dir string) ([]*unstructured.Unstructured, error) {
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range res.Resources() {
		raw, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("rendering %s: %w", dir, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("rendering %s: %w", dir, err)
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// Decode splits a multi-document YAML stream into objects, skipping empty
// documents.
func Decode(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("a document without apiVersion and kind: %v", u.Object)
		}
		objs = append(objs, u)
	}
}

// Select returns the objects of kind.
func Select(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// Without returns the objects not of the kinds given.
func Without(objs []*unstructured.Unstructured, kinds ...string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if !slices.Contains(kinds, o.GetKind()) {
			out = append(out, o)
		}
	}
	return out
}

// installOrder ranks kinds as Helm installs them: what others need first.
var installOrder = []string{"Namespace", "CustomResourceDefinition", "ServiceAccount", "Secret", "ConfigMap",
	"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment",
	"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}

func rank(kind string) int {
	if i := slices.Index(installOrder, kind); i >= 0 {
		return i
	}
	return len(installOrder)
}

// Apply applies objs with server-side apply as FieldOwner, forcing
// ownership as `kubectl apply --server-side --force-conflicts` does, in
// Helm's install order of kinds (Namespaces and CRDs first). An object whose
// kind the API server does not serve yet (a CRD just created) is retried for
// up to 30 seconds. Every failure is reported, naming the object.
func Apply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	ordered := slices.Clone(objs)
	slices.SortStableFunc(ordered, func(a, b *unstructured.Unstructured) int { return rank(a.GetKind()) - rank(b.GetKind()) })
	var errs []error
	for _, o := range ordered {
		if err := applyOne(ctx, c, o); err != nil {
			errs = append(errs, fmt.Errorf("applying %s %s: %w", o.GetKind(), client.ObjectKeyFromObject(o), err))
		}
	}
	return errors.Join(errs...)
}

func applyOne(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Patch(ctx, o.DeepCopy(), client.Apply, client.FieldOwner(FieldOwner), client.ForceOwnership)
		if err == nil || !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// KustomizeRelease is the release the kustomize trees are generated as.
var KustomizeRelease = Release{Name: "kvsync", Namespace: "kvsync-system"}

// generatedHeader heads every kustomize file generated from the chart.
const generatedHeader = "# Generated from deploy/chart/kvsync by `make manifests`: edit the chart, not this file.\n"

// helmLabels are the labels only a Helm install carries.
var helmLabels = []string{"app.kubernetes.io/managed-by", "helm.sh/chart"}

// KustomizeFiles renders the chart with its default values as
// KustomizeRelease and returns the files of the kustomize trees it
// generates, keyed by their path under deploy/: the chart is the one source
// of the Deployment, the RBAC bindings and the policies. The CRDs and the
// ClusterRole come from controller-gen instead (deploy/crds,
// deploy/rbac/role.yaml).
func KustomizeFiles() (map[string][]byte, error) {
	objs, err := RenderChart(KustomizeRelease, nil)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}
	for _, o := range objs {
		var file string
		switch o.GetKind() {
		case "CustomResourceDefinition", "ClusterRole":
			continue
		case "Deployment":
			file = "manager/deployment.yaml"
		case "Service":
			file = "manager/service.yaml"
		case "ServiceAccount":
			file = "rbac/service_account.yaml"
		case "ClusterRoleBinding":
			file = "rbac/role_binding.yaml"
		case "Role":
			file = "rbac/leader_election_role.yaml"
		case "RoleBinding":
			file = "rbac/leader_election_role_binding.yaml"
		case "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			file = "policies/" + strings.TrimPrefix(o.GetName(), KustomizeRelease.Name+"-") + ".yaml"
		default:
			return nil, fmt.Errorf("generating kustomize files: no place for %s %s", o.GetKind(), o.GetName())
		}
		o = o.DeepCopy()
		labels := o.GetLabels()
		for _, l := range helmLabels {
			delete(labels, l)
		}
		o.SetLabels(labels)
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		if prev, ok := files[file]; ok {
			files[file] = append(append(prev, "---\n"...), data...)
		} else {
			files[file] = append([]byte(generatedHeader), data...)
		}
	}
	return files, nil
}
