package troubleshoot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/kvsync/kvsync/deploy/crds"
	"github.com/kvsync/kvsync/provider"
)

// Problem is one thing Lint found wrong.
type Problem struct {
	File string `json:"file"`
	// Line is the 1-based line of the offending field in the file, or of
	// its nearest enclosing field found there; 0 when unknown.
	Line int `json:"line,omitempty"`
	// Document is the 1-based index of the YAML document in the file.
	Document int    `json:"document"`
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	// Field is the path of the offending field, e.g.
	// spec.secretObject.data[0].targetKey; empty for the whole document.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// String is "file:line kind name: field: message", or with "(document N)"
// in place of the line when it is unknown.
func (p Problem) String() string {
	where := fmt.Sprintf("%s:%d", p.File, p.Line)
	if p.Line == 0 {
		where = fmt.Sprintf("%s (document %d)", p.File, p.Document)
	}
	if p.Kind != "" {
		where += " " + p.Kind
		if p.Name != "" {
			where += " " + p.Name
		}
	}
	if p.Field != "" {
		return fmt.Sprintf("%s: %s: %s", where, p.Field, p.Message)
	}
	return fmt.Sprintf("%s: %s", where, p.Message)
}

// kinds are the validators of the kinds Lint checks, by apiVersion and kind.
type kindKey struct{ group, version, kind string }

type kindSchema struct {
	validator  validation.SchemaValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

// Linter checks SecretSync and SecretProviderClass manifests offline, as the
// API server (the CRDs' schemas and CEL rules) and the provider (the
// parameters) will.
type Linter struct {
	schemas map[kindKey]kindSchema
	// AllowedSecretTypes are the Secret types the cluster's controller may
	// write (its allowedSecretTypes); nil means the default ones.
	AllowedSecretTypes []string
}

// NewLinter builds a Linter from kvsync's CRDs.
func NewLinter() (*Linter, error) {
	defs, err := crds.All()
	if err != nil {
		return nil, err
	}
	l := &Linter{schemas: map[kindKey]kindSchema{}}
	for _, crd := range defs {
		for _, v := range crd.Spec.Versions {
			if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			internal := &apiextensions.JSONSchemaProps{}
			if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, internal, nil); err != nil {
				return nil, fmt.Errorf("converting the schema of %s %s: %w", crd.Name, v.Name, err)
			}
			validator, _, err := validation.NewSchemaValidator(internal)
			if err != nil {
				return nil, fmt.Errorf("the schema of %s %s: %w", crd.Name, v.Name, err)
			}
			s, err := structuralschema.NewStructural(internal)
			if err != nil {
				return nil, fmt.Errorf("the structural schema of %s %s: %w", crd.Name, v.Name, err)
			}
			l.schemas[kindKey{crd.Spec.Group, v.Name, crd.Spec.Names.Kind}] = kindSchema{validator: validator, structural: s,
				cel: cel.NewValidator(s, true, celconfig.PerCallLimit)}
		}
	}
	return l, nil
}

// maxDocuments bounds the documents of one file.
const maxDocuments = 1000

// Input is one file to lint.
type Input struct {
	File string
	Data []byte
}

// Lint lints one file: see LintFiles.
func (l *Linter) Lint(file string, data []byte) []Problem {
	return l.LintFiles([]Input{{File: file, Data: data}})
}

// LintFiles checks every SecretSync and SecretProviderClass in the YAML or
// JSON streams of inputs: the CRD schema (types, required fields, enums,
// unknown fields), its CEL rules, the object's name, the Azure provider's
// parameter rules, and that each SecretSync's sourcePaths name objects of a
// SecretProviderClass given in any of the inputs. Documents of other kinds
// are ignored. It never panics on any input.
func (l *Linter) LintFiles(inputs []Input) (problems []Problem) {
	type located struct {
		document
		file string
	}
	var objs []located
	classes := map[string]provider.Parameters{}
	for _, in := range inputs {
		found, ps := l.lintFile(in, classes)
		problems = append(problems, ps...)
		for _, f := range found {
			objs = append(objs, located{f, in.File})
		}
	}
	for _, o := range objs {
		for _, p := range sourcePathProblems(o.obj, classes) {
			p.File, p.Document, p.Line = o.file, o.doc, o.lines.lineOf(p.Field)
			problems = append(problems, p)
		}
	}
	return problems
}

type document struct {
	obj   *unstructured.Unstructured
	doc   int
	lines lineIndex
}

// lintFile checks the objects of one file, adding the Azure classes it
// holds to classes.
func (l *Linter) lintFile(in Input, classes map[string]provider.Parameters) (docs []document, problems []Problem) {
	defer func() {
		if r := recover(); r != nil {
			problems = append(problems, Problem{File: in.File, Message: fmt.Sprintf("internal error while checking: %v", r)})
		}
	}()
	raws := splitDocuments(in.Data)
	for i, raw := range raws {
		doc := i + 1
		if doc > maxDocuments {
			problems = append(problems, Problem{File: in.File, Line: raw.line, Document: doc, Message: fmt.Sprintf("more than %d documents", maxDocuments)})
			break
		}
		objects, err := decodeDocument(raw.data)
		if err != nil {
			problems = append(problems, Problem{File: in.File, Line: raw.line, Document: doc, Message: "not YAML or JSON: " + err.Error()})
			continue
		}
		lines := newLineIndex(raw)
		for _, m := range objects {
			u := &unstructured.Unstructured{Object: m}
			ps, params := l.lintObject(u)
			for _, p := range ps {
				p.File, p.Document, p.Line = in.File, doc, lines.lineOf(p.Field)
				problems = append(problems, p)
			}
			if params != nil {
				classes[u.GetNamespace()+"/"+u.GetName()] = *params
			}
			docs = append(docs, document{u, doc, lines})
		}
	}
	return docs, problems
}

// decodeDocument decodes the objects of one YAML document, or of a JSON
// stream; an empty document has none.
func decodeDocument(data []byte) ([]map[string]any, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if len(m) > 0 {
			out = append(out, m)
		}
		if len(out) > maxDocuments {
			return out, nil
		}
	}
}

// lintObject checks one object; params are a SecretProviderClass's parsed
// Azure parameters.
func (l *Linter) lintObject(u *unstructured.Unstructured) (problems []Problem, params *provider.Parameters) {
	apiVersion, _ := u.Object["apiVersion"].(string)
	kind, _ := u.Object["kind"].(string)
	name, _ := nestedString(u.Object, "metadata", "name")
	add := func(fieldPath, msg string) {
		problems = append(problems, Problem{Kind: kind, Name: name, Field: fieldPath, Message: msg})
	}
	if apiVersion == "" || kind == "" {
		add("", "apiVersion and kind are required")
		return problems, nil
	}
	group, version, _ := strings.Cut(apiVersion, "/")
	if version == "" {
		group, version = "", group
	}
	s, ok := l.schemas[kindKey{group, version, kind}]
	if !ok {
		switch {
		case kind == "SecretSync" || kind == "SecretProviderClass":
			add("apiVersion", fmt.Sprintf("%s is not served for %s: use %s", apiVersion, kind, servedVersions(l, kind)))
		case len(l.groupKinds(group)) > 0:
			add("kind", fmt.Sprintf("%q is not a kind of %s: its kinds are %s", kind, group, strings.Join(l.groupKinds(group), ", ")))
		}
		return problems, nil
	}
	switch {
	case name == "":
		add("metadata.name", "is required")
	default:
		for _, msg := range path.IsValidPathSegmentName(name) {
			add("metadata.name", msg)
		}
		if len(name) > 253 {
			add("metadata.name", "must be no more than 253 characters")
		}
	}
	problems = append(problems, metadataProblems(u)...)
	obj := u.DeepCopy().Object
	for _, unknown := range pruning.PruneWithOptions(obj, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		add(unknown, "unknown field")
	}
	for _, e := range validation.ValidateCustomResource(nil, u.Object, s.validator) {
		add(e.Field, e.ErrorBody())
	}
	if errs, _ := s.cel.Validate(context.Background(), nil, s.structural, u.Object, nil, celconfig.RuntimeCELCostBudget); len(errs) > 0 {
		for _, e := range errs {
			add(e.Field, e.ErrorBody())
		}
	}
	if kind == "SecretSync" {
		for _, p := range l.secretObjectProblems(u) {
			p.Kind, p.Name = kind, name
			problems = append(problems, p)
		}
	}
	if kind == "SecretProviderClass" {
		prov, _ := nestedString(u.Object, "spec", "provider")
		if prov == provider.Name {
			raw, _ := nestedMap(u.Object, "spec", "parameters")
			p, err := provider.ParseParameters(stringMap(raw))
			if err != nil {
				add("spec.parameters", strings.TrimPrefix(err.Error(), "invalid SecretProviderClass parameters: "))
			} else {
				params = &p
			}
		}
	}
	return problems, params
}

// sourcePathProblems checks a SecretSync's sourcePaths against its class,
// when the class is in the same stream.
func sourcePathProblems(u *unstructured.Unstructured, classes map[string]provider.Parameters) []Problem {
	if u.GetKind() != "SecretSync" {
		return nil
	}
	className, _ := nestedString(u.Object, "spec", "secretProviderClassName")
	params, ok := classes[u.GetNamespace()+"/"+className]
	if !ok {
		return nil
	}
	known := map[string]bool{}
	var names []string
	for _, o := range params.Objects {
		n := o.Name
		if o.Alias != "" {
			n = o.Alias
		}
		known[n] = true
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Problem
	data, _, _ := unstructured.NestedSlice(u.Object, "spec", "secretObject", "data")
	for i, d := range data {
		m, _ := d.(map[string]any)
		sp, _ := m["sourcePath"].(string)
		root, _, _ := strings.Cut(sp, "/")
		if sp != "" && !known[root] {
			out = append(out, Problem{Kind: "SecretSync", Name: u.GetName(), Field: fmt.Sprintf("spec.secretObject.data[%d].sourcePath", i),
				Message: fmt.Sprintf("%q names no object of SecretProviderClass %q (its objects are %s): use an objectName or objectAlias, with /N for a version or /tls.crt, /tls.key for certificate parts",
					sp, className, strings.Join(names, ", "))})
		}
	}
	return out
}

// groupKinds returns the kinds Lint knows in group, sorted.
func (l *Linter) groupKinds(group string) []string {
	var out []string
	for k := range l.schemas {
		if k.group == group && !slices.Contains(out, k.kind) {
			out = append(out, k.kind)
		}
	}
	sort.Strings(out)
	return out
}

func servedVersions(l *Linter, kind string) string {
	var out []string
	for k := range l.schemas {
		if k.kind == kind {
			out = append(out, k.group+"/"+k.version)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " or ")
}

func nestedString(obj map[string]any, fields ...string) (string, bool) {
	v, ok, err := unstructured.NestedFieldNoCopy(obj, fields...)
	if !ok || err != nil {
		return "", false
	}
	s, ok := v.(string)
	return s, ok
}

func nestedMap(obj map[string]any, fields ...string) (map[string]any, bool) {
	v, ok, err := unstructured.NestedFieldNoCopy(obj, fields...)
	if !ok || err != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

// stringMap keeps the string values of m (the schema reports the others).
func stringMap(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}
