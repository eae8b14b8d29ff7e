// Command oas2js turns the OpenAPI v3 documents Kubernetes publishes
// (api/openapi-spec/v3/*.json in the k8s.io/kubernetes module) into standalone
// JSON schemas in kubeconform's layout, <kind>[-<group>]-<version>.json, so
// that kubeconform can validate offline:
//
//	oas2js -out DIR $(go env GOMODCACHE)/k8s.io/kubernetes@vX/api/openapi-spec/v3/*.json
//
// Every $ref is inlined (a recursive type accepts anything below its second
// appearance) and, with -strict (the default), every object that lists its
// properties gets additionalProperties false, so unknown fields are errors.
// It is a CI tool of scripts/ci-k8s.sh, not part of agentd.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "oas2js:", err)
		os.Exit(1)
	}
}

type converter struct {
	defs   map[string]map[string]any
	strict bool
}

func run(args []string) error {
	fs := flag.NewFlagSet("oas2js", flag.ContinueOnError)
	out := fs.String("out", "schemas", "output directory")
	strict := fs.Bool("strict", true, "forbid unknown fields (additionalProperties: false)")
	kinds := fs.String("kinds", "", "comma-separated lowercase kinds to write (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("no OpenAPI v3 documents given")
	}
	c := converter{defs: map[string]map[string]any{}, strict: *strict}
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var doc struct {
			Components struct {
				Schemas map[string]map[string]any `json:"schemas"`
			} `json:"components"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		for k, v := range doc.Components.Schemas {
			c.defs[k] = v
		}
	}
	want := map[string]bool{}
	for _, k := range strings.Split(*kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			want[k] = true
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	n := 0
	for name, def := range c.defs {
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			kind, _ := gvk["kind"].(string)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind = strings.ToLower(kind)
			if kind == "" || (len(want) > 0 && !want[kind]) {
				continue
			}
			file := kind + "-" + version + ".json"
			if group != "" {
				file = kind + "-" + strings.Split(group, ".")[0] + "-" + version + ".json"
			}
			s, _ := c.resolve(def, map[string]bool{name: true}).(map[string]any)
			delete(s, "x-kubernetes-group-version-kind")
			s["$schema"] = "http://json-schema.org/schema#"
			b, err := json.Marshal(s)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if err := os.WriteFile(filepath.Join(*out, file), b, 0o644); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return errors.New("no schema written: no kind matched")
	}
	fmt.Fprintf(os.Stderr, "oas2js: wrote %d schemas to %s\n", n, *out)
	return nil
}

// resolve returns v with every $ref inlined; stack holds the definitions
// being expanded, to cut recursive types.
func (c converter) resolve(v any, stack map[string]bool) any {
	switch t := v.(type) {
	case map[string]any:
		if ref, ok := t["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/components/schemas/")
			def, ok := c.defs[name]
			if !ok || stack[name] {
				return map[string]any{}
			}
			stack[name] = true
			r := c.resolve(def, stack)
			delete(stack, name)
			return r
		}
		// The v3 documents wrap a $ref in a one-element allOf to attach a
		// default: collapse it into the referenced schema.
		if all, ok := t["allOf"].([]any); ok && len(all) == 1 {
			inner, _ := c.resolve(all[0], stack).(map[string]any)
			m := map[string]any{}
			for k, v := range inner {
				m[k] = v
			}
			for k, v := range t {
				if k != "allOf" && k != "description" {
					m[k] = c.resolve(v, stack)
				}
			}
			return m
		}
		m := map[string]any{}
		for k, vv := range t {
			if k == "description" || strings.HasPrefix(k, "x-kubernetes-patch") {
				continue
			}
			m[k] = c.resolve(vv, stack)
		}
		if c.strict {
			_, hasProps := m["properties"]
			_, set := m["additionalProperties"]
			if hasProps && !set && m["x-kubernetes-preserve-unknown-fields"] != true {
				m["additionalProperties"] = false
			}
		}
		return m
	case []any:
		r := make([]any, len(t))
		for i, x := range t {
			r[i] = c.resolve(x, stack)
		}
		return r
	}
	return v
}
