package troubleshoot

import (
	"bytes"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// rawDocument is one document of a file and the file's line it starts on.
type rawDocument struct {
	data []byte
	line int
}

// splitDocuments splits a YAML stream into its documents as the API
// machinery's YAML reader does: a line starting with "---" followed by
// nothing or a comment separates two documents. A JSON file is one
// document.
func splitDocuments(data []byte) []rawDocument {
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return []rawDocument{{data: data, line: 1 + bytes.Count(data[:len(data)-len(trimmed)], []byte("\n"))}}
	}
	var docs []rawDocument
	start, startLine, line := 0, 1, 1
	for pos := 0; pos < len(data); line++ {
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end >= 0 {
			next = pos + end + 1
		}
		if isSeparator(data[pos:next]) {
			docs = append(docs, rawDocument{data: data[start:pos], line: startLine})
			start, startLine = next, line+1
		}
		pos = next
	}
	return append(docs, rawDocument{data: data[start:], line: startLine})
}

// isSeparator reports whether a line separates two YAML documents.
func isSeparator(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	if !ok {
		return false
	}
	rest = bytes.TrimSpace(rest)
	return len(rest) == 0 || rest[0] == '#'
}

// lineIndex finds the line of a field in one document.
type lineIndex struct {
	doc  rawDocument
	root *yaml.Node
}

func newLineIndex(doc rawDocument) lineIndex {
	var n yaml.Node
	if yaml.Unmarshal(doc.data, &n) != nil || n.Kind != yaml.DocumentNode || len(n.Content) == 0 {
		return lineIndex{doc: doc}
	}
	return lineIndex{doc: doc, root: n.Content[0]}
}

// lineOf returns the file's line of the field at fieldPath (as
// "spec.secretObject.data[0].targetKey" or "metadata.labels[a.b/c]"), or
// of the nearest enclosing field the document has; the document's first
// line when nothing is found.
func (x lineIndex) lineOf(fieldPath string) int {
	if x.root == nil {
		return x.doc.line
	}
	node, line := x.root, x.root.Line
	for _, tok := range fieldTokens(fieldPath) {
		if node.Kind == yaml.AliasNode && node.Alias != nil {
			node = node.Alias
		}
		found := false
		switch node.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(node.Content); i += 2 {
				if node.Content[i].Value == tok {
					line, node, found = node.Content[i].Line, node.Content[i+1], true
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(node.Content) {
				node, found = node.Content[i], true
				line = node.Line
			}
		}
		if !found {
			break
		}
	}
	return x.doc.line + line - 1
}

// fieldTokens splits a field path into its keys and indexes.
func fieldTokens(fieldPath string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(fieldPath); i++ {
		switch c := fieldPath[i]; c {
		case '.':
			flush()
		case '[':
			flush()
			j := strings.IndexByte(fieldPath[i:], ']')
			if j < 0 {
				cur.WriteString(fieldPath[i+1:])
				i = len(fieldPath)
				continue
			}
			out = append(out, fieldPath[i+1:i+j])
			i += j
		default:
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}
