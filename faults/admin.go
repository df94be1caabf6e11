package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"sigs.k8s.io/yaml"
)

// AdminHandler returns the faults API, for runs where the injector lives in
// another process (cmd/fakevault):
//
//	GET    /faults            the active faults
//	POST   /faults            add faults: one Fault, or a list, as JSON or YAML
//	DELETE /faults            clear every fault
//	DELETE /faults/{name}     clear one fault (404 when not active)
//	GET    /faults/journal    every injection so far
func (i *Injector) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, i.Faults()) })
	mux.HandleFunc("GET /faults/journal", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, i.Journal()) })
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		list, err := parseFaults(body)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		for _, f := range list {
			if err := i.Add(f); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, i.Faults())
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		i.ClearAll()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /faults/{name}", func(w http.ResponseWriter, r *http.Request) {
		if !i.Clear(r.PathValue("name")) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("fault %q is not active", r.PathValue("name"))})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// parseFaults reads one fault or a list, in JSON or YAML.
func parseFaults(body []byte) ([]Fault, error) {
	trimmed := strings.TrimSpace(string(body))
	if strings.HasPrefix(trimmed, "{") {
		var f Fault
		if err := yaml.UnmarshalStrict(body, &f); err != nil {
			return nil, fmt.Errorf("parsing fault: %w", err)
		}
		if err := f.Validate(); err != nil {
			return nil, err
		}
		return []Fault{f}, nil
	}
	return ParseYAML(body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
