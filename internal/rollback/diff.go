package rollback

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Diff lists, one line per changed leaf, how document b differs from a and
// how the content hashes changed: "model.variants[gpt5-beta].percent: 5 →
// 10", "halted: + model/gpt5-beta", "hash rules/v2: 1a2b3c4d → 5e6f7a8b".
// Arrays of objects with a "name" are keyed by name, so reordering is not a
// change. A nil a means "no previous version".
func Diff(a, b json.RawMessage, hashesA, hashesB map[string]string) []string {
	fa, fb := map[string]string{}, map[string]string{}
	if a != nil {
		flatten("", decode(a), fa)
	}
	flatten("", decode(b), fb)
	var out []string
	for _, k := range union(fa, fb) {
		va, inA := fa[k]
		vb, inB := fb[k]
		k, _, _ = strings.Cut(k, "\x00")
		switch {
		case inA && inB && va != vb:
			out = append(out, fmt.Sprintf("%s: %s → %s", k, va, vb))
		case inA && !inB:
			out = append(out, fmt.Sprintf("%s: - %s", k, va))
		case !inA && inB:
			out = append(out, fmt.Sprintf("%s: + %s", k, vb))
		}
	}
	for _, k := range union(hashesA, hashesB) {
		if ha, hb := hashesA[k], hashesB[k]; ha != hb && a != nil {
			out = append(out, fmt.Sprintf("hash %s: %s → %s", k, short(ha), short(hb)))
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func decode(raw json.RawMessage) any {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	return v
}

// flatten maps every leaf of v to its path. Scalar arrays become one leaf
// per element value (set semantics: "halted: + model/x").
func flatten(path string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			flatten(join(path, k), child, out)
		}
	case []any:
		for i, child := range t {
			switch c := child.(type) {
			case map[string]any:
				key := fmt.Sprint(i)
				if name, ok := c["name"].(string); ok {
					key = name
				}
				flatten(fmt.Sprintf("%s[%s]", path, key), c, out)
			default:
				b, _ := json.Marshal(c)
				out[path+"\x00"+string(b)] = string(b) // printed as the path alone
			}
		}
	default:
		b, _ := json.Marshal(t)
		out[path] = string(b)
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func union[V any](a, b map[string]V) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func short(h string) string {
	if h == "" {
		return "(none)"
	}
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
