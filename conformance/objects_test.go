package conformance

import (
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/scenarios"
)

func TestObjectsParameterReadsBackAsTheObjectsInOrder(t *testing.T) {
	for _, tc := range []struct {
		name    string
		objects []scenarios.ClassObject
	}{
		{name: "no objects render an empty array", objects: nil},
		{name: "one secret renders one entry", objects: []scenarios.ClassObject{{ObjectName: "db-password", ObjectType: "secret"}}},
		{name: "every field of several objects survives", objects: []scenarios.ClassObject{
			{ObjectName: "s0", ObjectAlias: "a0", ObjectType: "secret", ObjectVersion: "0123456789abcdef0123456789abcdef", ObjectVersionHistory: 3},
			{ObjectName: "tls", ObjectType: "cert", ObjectFormat: "pfx", ObjectEncoding: "base64"},
		}},
		{name: "names YAML would misread are quoted", objects: []scenarios.ClassObject{
			{ObjectName: "a: b"}, {ObjectName: "- c"}, {ObjectName: "|"}, {ObjectName: "true"}, {ObjectName: "007"}, {ObjectName: "line\nbreak"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rendered, err := ObjectsParameter(tc.objects...)
			if err != nil {
				t.Fatal(err)
			}
			// Read as the provider reads it: an array of YAML strings, each
			// one object.
			var list objectsParameter
			if err := yaml.UnmarshalStrict([]byte(rendered), &list); err != nil {
				t.Fatalf("%q is not an objects parameter: %v", rendered, err)
			}
			var got []scenarios.ClassObject
			for _, entry := range list.Array {
				var o scenarios.ClassObject
				if err := yaml.UnmarshalStrict([]byte(entry), &o); err != nil {
					t.Fatalf("entry %q is not an object: %v", entry, err)
				}
				got = append(got, o)
			}
			if !reflect.DeepEqual(got, tc.objects) {
				t.Errorf("%q reads back as %+v, want %+v", rendered, got, tc.objects)
			}
		})
	}
}
