// Command deploy renders kvsync's Helm chart or a kustomize tree with the Go
// libraries (no helm or kubectl binary needed) and prints or applies it, and
// regenerates the kustomize trees from the chart.
//
//	go run ./hack/deploy render [--kustomize DIR] [--set k=v] [-f values.yaml]
//	go run ./hack/deploy apply --kubeconfig FILE [--kustomize DIR] [--set k=v] [-f values.yaml]
//	go run ./hack/deploy generate [--dir deploy]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/deploy"
)

const usage = `usage: deploy render|apply|generate [flags]

  render     print the rendered objects as YAML
  apply      apply them to the cluster of --kubeconfig with server-side apply
  generate   rewrite the kustomize trees generated from the chart
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: %v\n", err)
		os.Exit(2)
	}
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	if isHelp(cmd) {
		cmd, args = "render", []string{"--help"}
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var sets, valueFiles stringList
	kustomize := fs.String("kustomize", "", "render this kustomize directory instead of the chart")
	release := fs.String("release", deploy.KustomizeRelease.Name, "Helm release name")
	namespace := fs.String("namespace", deploy.KustomizeRelease.Namespace, "Helm release namespace (created by apply)")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster to apply to")
	dir := fs.String("dir", "deploy", "generate: the deploy directory")
	fs.Var(&sets, "set", "a chart value, as helm's --set (repeatable)")
	fs.Var(&valueFiles, "f", "a values file, as helm's -f (repeatable)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(out, "%s\nflags:\n", usage)
		fs.SetOutput(out)
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return fmt.Errorf("%s: %w\n%s", cmd, err, usage)
	}
	switch cmd {
	case "generate":
		return generate(*dir)
	case "render", "apply":
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	values, err := chartValues(valueFiles, sets)
	if err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	rel := deploy.Release{Name: *release, Namespace: *namespace, CreateNamespace: true}
	var c client.Client
	if cmd == "apply" {
		if *kubeconfig == "" {
			return errors.New("apply: --kubeconfig (or $KUBECONFIG) is required")
		}
		cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			return fmt.Errorf("apply: loading %s: %w", *kubeconfig, err)
		}
		dc, err := discovery.NewDiscoveryClientForConfig(cfg)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		v, err := dc.ServerVersion()
		if err != nil {
			return fmt.Errorf("apply: reading the cluster's version: %w", err)
		}
		rel.KubeVersion = v.GitVersion
		if c, err = client.New(cfg, client.Options{}); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	if *kustomize != "" {
		objs, err = deploy.RenderKustomize(*kustomize)
	} else {
		objs, err = deploy.RenderChart(rel, values)
	}
	if err != nil {
		return err
	}
	if cmd == "render" {
		for _, o := range objs {
			data, err := yaml.Marshal(o.Object)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "---\n%s", data)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := deploy.Apply(ctx, c, objs); err != nil {
		return err
	}
	fmt.Fprintf(out, "applied %d objects\n", len(objs))
	return nil
}

// chartValues merges values files, then --set values, as helm does.
func chartValues(files, sets []string) (map[string]any, error) {
	base := map[string]any{}
	for _, f := range files {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading values file %s: %w", f, err)
		}
		base = chartutil.MergeTables(v.AsMap(), base)
	}
	for _, s := range sets {
		if err := strvals.ParseInto(s, base); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	return base, nil
}

// generate rewrites the kustomize files generated from the chart.
func generate(dir string) error {
	files, err := deploy.KustomizeFiles()
	if err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), files[name], 0o644); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	return nil
}
