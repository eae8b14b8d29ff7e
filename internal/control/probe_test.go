package control_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/session"
)

func TestProbeCohorts(t *testing.T) {
	tree := baseTree()
	tree[".agentao/canary.json"] = `{
		"model": {"stable": "m-stable", "variants": [
			{"name": "beta", "value": "m-beta", "percent": 5},
			{"name": "dark", "value": "m-beta", "percent": 0}]},
		"rules": {"stable": "v1", "variants": [{"name": "strict", "value": "v2", "users": ["alice"]}]},
		"instructions": {"stable": "AGENTAO.md", "variants": [{"name": "v2", "value": "instructions/v2.md", "percent": 10, "tenants": ["acme"]}]}
	}`
	p, _ := newPlane(t, tree)
	_, v := p.Canary()
	stable := session.Assignment{Model: "m-stable", Skills: "default", Rules: "v1", Instructions: "AGENTAO.md", ConfigVersion: v.N}
	stable.Sandbox = p.ProbeCohorts()[0].Assignment.Sandbox // the tree's default profile, whatever it is named
	with := func(dim canary.Dimension, value, variant string) session.Assignment {
		a := stable
		a.SetValue(dim, value)
		a.Variants = map[string]string{dim.String(): variant}
		return a
	}
	want := []control.Cohort{
		{Variant: "stable", Assignment: stable},
		{Dimension: "model", Variant: "beta", Assignment: with(canary.Model, "m-beta", "beta")},
		// "dark" (percent 0, no allowlist) takes nobody: not probed.
		{Dimension: "rules", Variant: "strict", Assignment: with(canary.Rules, "v2", "strict")}, // allowlist only: probed
		{Dimension: "instructions", Variant: "v2", Assignment: with(canary.Instructions, "instructions/v2.md", "v2")},
	}
	if got := p.ProbeCohorts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("ProbeCohorts() =\n%+v\nwant\n%+v", got, want)
	}

	// The router agrees: a user the beta variant alone takes gets exactly
	// the beta cohort's assignment.
	found := false
	for i := 0; i < 2000 && !found; i++ {
		a, _ := p.Assign("globex", fmt.Sprintf("user-%d", i))
		if a.VariantOf(canary.Model) == "beta" && len(a.Variants) == 1 {
			found = true
			if !reflect.DeepEqual(a, want[1].Assignment) {
				t.Fatalf("the router's beta assignment %+v; the cohort's %+v", a, want[1].Assignment)
			}
		}
	}
	if !found {
		t.Fatal("no user of 2000 landed in beta (5%)")
	}
	// A halted variant is not probed.
	if _, _, err := p.Halt(context.Background(), canary.Model, "beta", "ops", "test"); err != nil {
		t.Fatal(err)
	}
	got := p.ProbeCohorts()
	for _, c := range got {
		if c.Variant == "beta" {
			t.Fatalf("ProbeCohorts() after the halt = %+v; want no beta", got)
		}
	}
	if len(got) != 3 || got[0].Assignment.ConfigVersion <= v.N {
		t.Errorf("ProbeCohorts() after the halt = %+v; want 3 cohorts of a version after %d", got, v.N)
	}
}

func TestPin(t *testing.T) {
	tree := baseTree()
	tree[".agentao/canary.json"] = `{
		"model": {"stable": "m-stable", "variants": [{"name": "beta", "value": "m-beta", "percent": 5}]},
		"rules": {"stable": "v1", "variants": [{"name": "strict", "value": "v2", "percent": 5}, {"name": "off", "value": "v2", "percent": 5}]}
	}`
	p, _ := newPlane(t, tree)
	if _, _, err := p.Halt(context.Background(), canary.Rules, "off", "test", "halted for the test"); err != nil {
		t.Fatal(err)
	}
	a, err := p.Pin(map[canary.Dimension]string{canary.Model: "beta", canary.Rules: "strict"})
	if err != nil || a.Model != "m-beta" || a.Rules != "v2" || a.Skills != "default" ||
		!reflect.DeepEqual(a.Variants, map[string]string{"model": "beta", "rules": "strict"}) {
		t.Fatalf("Pin(beta, strict) = %+v, %v", a, err)
	}
	if a, err := p.Pin(nil); err != nil || a.Model != "m-stable" || a.Rules != "v1" || a.Variants != nil {
		t.Fatalf("Pin(nil) = %+v, %v; want every stable value", a, err)
	}
	for _, bad := range []map[canary.Dimension]string{{canary.Rules: "nope"}, {canary.Rules: "off"}} {
		if _, err := p.Pin(bad); err == nil {
			t.Errorf("Pin(%v) = nil error; want one (no such variant, or halted)", bad)
		}
	}
}
