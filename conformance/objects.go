package conformance

import (
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/scenarios"
)

// ObjectsParameter renders objects as the objects parameter of an Azure
// SecretProviderClass: YAML whose "array" holds one YAML document per
// object, in order, as the provider reads it. Values are quoted as YAML
// needs, so any object name renders to the object it names.
func ObjectsParameter(objects ...scenarios.ClassObject) (string, error) {
	var entries []string
	for _, o := range objects {
		entry, err := yaml.Marshal(o)
		if err != nil {
			return "", fmt.Errorf("rendering object %q: %w", o.ObjectName, err)
		}
		entries = append(entries, string(entry))
	}
	out, err := yaml.Marshal(objectsParameter{Array: entries})
	if err != nil {
		return "", fmt.Errorf("rendering the objects parameter: %w", err)
	}
	return string(out), nil
}

// objectsParameter is the objects parameter's YAML.
type objectsParameter struct {
	Array []string `json:"array"`
}
