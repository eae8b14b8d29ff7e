package canary_test

import (
	"bytes"
	"testing"

	"github.com/agentd/agentd/internal/canary"
)

// FuzzParse: any canary.json is a policy or an error with a message, never
// a panic. A policy survives its own JSON (the form versions store): the
// document parses again to the same JSON, and both assign every tenant and
// user the same picks, twice, each a dimension's stable value or one of
// its variants' values.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{}`,
		// docs/configuration.md's example.
		`{"models": ["gpt-4o", "gpt-5"],
		  "model": {"stable": "gpt-4o", "variants": [
		    {"name": "gpt5-beta", "value": "gpt-5", "percent": 5, "users": ["alice", "acme/bob"], "tenants": ["acme"]}]},
		  "skills": {"stable": "default"},
		  "rules": {"stable": "v1", "variants": [{"name": "tight", "value": "v2", "percent": 10}]},
		  "sandbox": {"stable": "workspace-write-no-network"},
		  "instructions": {"stable": "AGENTAO.md"},
		  "guard": {"min_samples": 50, "tool_failure_rate": 0.10, "llm_5xx_rate": 0.05, "token_ratio": 1.5, "window": 200}}`,
		`{"rules": {"stable": "v1", "salt": "s2", "variants": [{"name": "a", "value": "v2", "percent": 33.33}, {"name": "b", "value": "v1", "percent": 66.67}]}, "halted": ["rules/a"]}`,
		`{"skills": {"stable": "default", "variants": [{"name": "x", "value": "beta-skills", "users": ["acme/"], "tenants": ["globex"]}]}, "guard": {"disabled": true}}`,
		// Near misses: each is one error away from valid.
		`{"model": {"stable": "gpt-5"}}`,
		`{"rules": {"stable": "v1", "variants": [{"name": "stable", "value": "v2", "percent": 100.001}]}}`,
		`{"rules": {"stable": "v1", "variants": [{"name": "a", "value": "v2", "percent": 60}, {"name": "a", "value": "v2", "percent": 60}]}}`,
		`{"halted": ["rules/none", "nodim/x", ""]}`, `{"model": null, "models": ["", "m", "m"]}`, `{"guard": {"window": -1, "token_ratio": 1e309}}`,
		`{"sandbox": {"stable": "readonly"}} {}`, `{"rule": {}}`, `[]`, `{"model": {"stable": 1}}`,
	} {
		f.Add([]byte(s), "acme", "alice")
	}
	f.Fuzz(func(t *testing.T, data []byte, tenant, user string) {
		p, err := canary.Parse(data, known)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v; want exactly one of a policy and an error", p, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Parse error has an empty message")
			}
			return
		}
		doc := p.JSON()
		again, err := canary.Parse(doc, known)
		if err != nil {
			t.Fatalf("Parse(%s) = %v; the JSON of a valid policy must parse", doc, err)
		}
		if !bytes.Equal(again.JSON(), doc) {
			t.Fatalf("JSON changed in a round trip:\n%s\nthen\n%s", doc, again.JSON())
		}
		a := p.Assign(tenant, user)
		if b, c := p.Assign(tenant, user), again.Assign(tenant, user); a != b || a != c {
			t.Fatalf("Assign(%q, %q) = %v, then %v, and %v after a round trip", tenant, user, a, b, c)
		}
		for _, dim := range canary.Dimensions() {
			pick := a.Get(dim)
			if pick.Variant == "" {
				if pick.Value != p.Stable(dim) {
					t.Errorf("%s: stable pick %q; the stable value is %q", dim, pick.Value, p.Stable(dim))
				}
				continue
			}
			v, ok := p.Variant(dim, pick.Variant)
			if !ok || v.Value != pick.Value || p.Halted(dim, pick.Variant) {
				t.Errorf("%s: pick %v is not a live variant's value (variant %v, found %v)", dim, pick, v, ok)
			}
		}
	})
}
