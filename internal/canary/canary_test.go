package canary_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/canary"
)

// known accepts the values a test config tree would have.
var known = canary.Known{
	Defaults: [5]string{"gpt-4o", "default", "v1", "workspace-write-no-network", "AGENTAO.md"},
	Exists: func(dim canary.Dimension, v string) error {
		ok := map[canary.Dimension][]string{
			canary.Skills:       {"default", "beta-skills"},
			canary.Rules:        {"v1", "v2"},
			canary.Sandbox:      {"readonly", "workspace-write", "workspace-write-no-network"},
			canary.Instructions: {"AGENTAO.md", "instructions/v2.md"},
		}[dim]
		for _, o := range ok {
			if o == v {
				return nil
			}
		}
		return fmt.Errorf("%s %q does not exist", dim, v)
	},
}

func mustParse(t testing.TB, doc string) *canary.Policy {
	t.Helper()
	p, err := canary.Parse([]byte(doc), known)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"malformed", `{"model":`, []string{"canary.json"}},
		{"unknown dimension", `{"temperature": {"stable": "0.2"}}`, []string{`unknown field "temperature"`, "dimensions are model, skills"}},
		{"unknown field in a variant", `{"model":{"stable":"gpt-4o","variants":[{"name":"a","value":"gpt-4o","percent":1,"weight":3}]}}`, []string{`"weight"`}},
		{"model not in the catalog", `{"models":["gpt-4o"],"model":{"stable":"gpt-4o","variants":[{"name":"b","value":"gpt-5","percent":5}]}}`,
			[]string{`model.variants[0].value: model "gpt-5" is not in the models catalog`}},
		{"stable not in the catalog", `{"models":["gpt-5"],"model":{"stable":"gpt-4o"}}`, []string{"model.stable:"}},
		{"unknown skill set", `{"skills":{"stable":"default","variants":[{"name":"x","value":"nope","percent":1}]}}`, []string{`skills.variants[0].value: skills "nope" does not exist`}},
		{"unknown rules, profile, instructions", `{"rules":{"stable":"v9"},"sandbox":{"stable":"open"},"instructions":{"stable":"x.md"}}`,
			[]string{"rules.stable:", "sandbox.stable:", "instructions.stable:"}},
		{"percents over 100", `{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"a","value":"gpt-5","percent":60},{"name":"b","value":"gpt-5","percent":40.01}]}}`,
			[]string{"model.variants: percents sum to 100.01, over 100"}},
		{"three percents", `{"rules":{"stable":"v1","variants":[{"name":"a","value":"v2","percent":1},{"name":"b","value":"v2","percent":1},{"name":"c","value":"v2","percent":1}]}}`,
			[]string{"3 variants have a percent; at most 2"}},
		{"duplicate names", `{"rules":{"stable":"v1","variants":[{"name":"a","value":"v2","percent":1},{"name":"a","value":"v2","users":["u"]}]}}`,
			[]string{`rules.variants[1].name: duplicate variant name "a"`}},
		{"variant named stable", `{"rules":{"stable":"v1","variants":[{"name":"stable","value":"v2","percent":1}]}}`,
			[]string{`rules.variants[0].name: "stable" names the stable value`}},
		{"three decimals", `{"rules":{"stable":"v1","variants":[{"name":"a","value":"v2","percent":1.234}]}}`, []string{"rules.variants[0].percent: 1.234"}},
		{"negative percent", `{"rules":{"stable":"v1","variants":[{"name":"a","value":"v2","percent":-1}]}}`, []string{"rules.variants[0].percent"}},
		{"bad halted", `{"halted":["model","rules/nope"]}`, []string{`halted[0]: "model"`, `halted[1]: no variant "nope" in rules`}},
		{"bad guard", `{"guard":{"tool_failure_rate":1.5,"min_samples":-1}}`, []string{"guard.tool_failure_rate", "guard.min_samples"}},
		{"bad on_rollback", `{"rules":{"stable":"v1","on_rollback":"keep"}}`, []string{`rules.on_rollback: "keep": want "migrate" (the default) or "finish"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := canary.Parse([]byte(tc.doc), known)
			if err == nil {
				t.Fatalf("Parse(%s) succeeded; want errors %q", tc.doc, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestDefaultsFillOmittedDimensions(t *testing.T) {
	p := mustParse(t, `{}`)
	a := p.Assign("acme", "alice")
	for dim, want := range []string{"gpt-4o", "default", "v1", "workspace-write-no-network", "AGENTAO.md"} {
		if got := a.Picks[dim]; got.Value != want || got.Variant != "" {
			t.Errorf("%s = %+v; want stable %q", canary.Dimension(dim), got, want)
		}
	}
	if g := p.Guard(); g != canary.DefaultGuard() {
		t.Errorf("guard = %+v; want the defaults", g)
	}
}

// TestGuardMargins: the margins against the control take their defaults,
// accept what an operator writes, and refuse what makes no sense with the
// key's name; an unknown guard key is refused.
func TestGuardMargins(t *testing.T) {
	tests := []struct {
		name    string
		guard   string
		want    func(g *canary.Guard) // the change from the defaults
		wantErr []string
	}{
		{"defaults", `{}`, func(g *canary.Guard) {}, nil},
		{"every margin set", `{"tool_failure_ratio":1.5,"tool_failure_min_delta":0.03,"llm_5xx_ratio":3,"llm_5xx_min_delta":0.01}`,
			func(g *canary.Guard) {
				g.ToolFailureRatio, g.ToolFailureMinDelta, g.LLM5xxRatio, g.LLM5xxMinDelta = 1.5, 0.03, 3, 0.01
			}, nil},
		{"ratio 1 means any worse by the minimum", `{"llm_5xx_ratio":1}`, func(g *canary.Guard) { g.LLM5xxRatio = 1 }, nil},
		{"ceilings keep their keys", `{"tool_failure_rate":0.2,"llm_5xx_rate":0.1}`,
			func(g *canary.Guard) { g.ToolFailureRate, g.LLM5xxRate = 0.2, 0.1 }, nil},
		{"ratio below 1", `{"tool_failure_ratio":0.5}`, nil, []string{"guard.tool_failure_ratio: must be at least 1"}},
		{"negative ratio", `{"llm_5xx_ratio":-2}`, nil, []string{"guard.llm_5xx_ratio: must be at least 1"}},
		{"delta over 1", `{"tool_failure_min_delta":5}`, nil, []string{"guard.tool_failure_min_delta: 5 is out of range"}},
		{"negative delta", `{"llm_5xx_min_delta":-0.01}`, nil, []string{"guard.llm_5xx_min_delta: -0.01 is out of range"}},
		{"every problem at once", `{"tool_failure_ratio":0.9,"llm_5xx_min_delta":2}`, nil,
			[]string{"guard.tool_failure_ratio", "guard.llm_5xx_min_delta"}},
		{"unknown key", `{"tool_failure_margin":2}`, nil, []string{`unknown field "tool_failure_margin"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := canary.Parse([]byte(`{"guard":`+tc.guard+`}`), known)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse(guard %s) succeeded; want errors %q", tc.guard, tc.wantErr)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("Parse error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(guard %s) = %v", tc.guard, err)
			}
			want := canary.DefaultGuard()
			tc.want(&want)
			if got := p.Guard(); got != want {
				t.Errorf("Guard() = %+v; want %+v", got, want)
			}
		})
	}
}

func modelDoc(percent float64, extra string) string {
	return fmt.Sprintf(`{"models":["gpt-4o","gpt-5","o9"],"model":{"stable":"gpt-4o","variants":[{"name":"canary","value":"gpt-5","percent":%v}%s]}}`, percent, extra)
}

// TestDistribution: for 100,000 users each variant's share is within half a
// point of its percent.
func TestDistribution(t *testing.T) {
	const users = 100_000
	for _, percent := range []float64{1, 5, 50} {
		t.Run(fmt.Sprint(percent), func(t *testing.T) {
			p := mustParse(t, modelDoc(percent, fmt.Sprintf(`,{"name":"second","value":"o9","percent":%v}`, min(percent, 100-percent))))
			counts := map[string]int{}
			for i := range users {
				counts[p.Assign(fmt.Sprintf("tenant-%d", i%7), fmt.Sprintf("user-%d", i)).Get(canary.Model).Variant]++
			}
			for name, want := range map[string]float64{"canary": percent, "second": min(percent, 100-percent)} {
				got := 100 * float64(counts[name]) / users
				if math.Abs(got-want) > 0.5 {
					t.Errorf("variant %s got %.2f%% of users; want %.2f ± 0.5", name, got, want)
				}
			}
		})
	}
}

// TestMonotonicity: raising a percent 5 → 10 → 50 never moves a user out of
// the variant, and never takes one from the other variant.
func TestMonotonicity(t *testing.T) {
	const users = 50_000
	other := `,{"name":"second","value":"o9","percent":30}`
	prev := map[int]string{}
	for step, percent := range []float64{5, 10, 50} {
		p := mustParse(t, modelDoc(percent, other))
		for i := range users {
			v := p.Assign("acme", fmt.Sprint("u", i)).Get(canary.Model).Variant
			if step > 0 {
				was := prev[i]
				switch {
				case was == "canary" && v != "canary":
					t.Fatalf("user %d left canary when its percent rose to %v", i, percent)
				case was == "second" && v != "second":
					t.Fatalf("user %d moved from second to %q when canary rose to %v", i, v, percent)
				case was == "" && v == "second":
					t.Fatalf("user %d joined second, whose percent did not change", i)
				}
			}
			prev[i] = v
		}
	}
	// Growing the second variant takes nobody from the first either.
	before := mustParse(t, modelDoc(20, `,{"name":"second","value":"o9","percent":10}`))
	after := mustParse(t, modelDoc(20, `,{"name":"second","value":"o9","percent":80}`))
	for i := range users {
		b, a := before.Assign("acme", fmt.Sprint("u", i)).Get(canary.Model).Variant, after.Assign("acme", fmt.Sprint("u", i)).Get(canary.Model).Variant
		if b == "canary" && a != "canary" || b == "second" && a != "second" {
			t.Fatalf("user %d moved from %q to %q when second grew", i, b, a)
		}
	}
}

func TestAllowlistsAndTenantFilters(t *testing.T) {
	p := mustParse(t, `{"models":["gpt-4o","gpt-5","o9"],"model":{"stable":"gpt-4o","variants":[
		{"name":"beta","value":"gpt-5","users":["alice","globex/bob"]},
		{"name":"acme-only","value":"o9","percent":100,"tenants":["acme"]}]}}`)
	tests := []struct {
		tenant, user, wantVariant, wantReason string
	}{
		{"acme", "alice", "beta", "allowlist"},
		{"globex", "alice", "beta", "allowlist"},
		{"globex", "bob", "beta", "allowlist"},
		{"acme", "bob", "acme-only", "bucket"}, // "globex/bob" is another bob
		{"acme", "carol", "acme-only", "bucket"},
		{"initech", "carol", "stable", "tenant filter: initech is not in acme-only's tenants"},
	}
	for _, tc := range tests {
		var got canary.Explanation
		for _, e := range p.Explain(tc.tenant, tc.user) {
			if e.Dimension == "model" {
				got = e
			}
		}
		if got.Variant != tc.wantVariant || !strings.Contains(got.Reason, tc.wantReason) {
			t.Errorf("Explain(%s, %s) model = %+v; want variant %s because %q", tc.tenant, tc.user, got, tc.wantVariant, tc.wantReason)
		}
		want := tc.wantVariant
		if want == "stable" {
			want = ""
		}
		if a := p.Assign(tc.tenant, tc.user).Get(canary.Model); a.Variant != want {
			t.Errorf("Assign(%s, %s) = %+v; want variant %q", tc.tenant, tc.user, a, want)
		}
	}
}

func TestHaltedVariantsServeStable(t *testing.T) {
	p := mustParse(t, modelDoc(100, `,{"name":"beta","value":"o9","users":["alice"]}`))
	if v := p.Assign("acme", "bob").Get(canary.Model).Variant; v != "canary" {
		t.Fatalf("before halting, bob = %q", v)
	}
	doc := p.Document()
	doc.Halted = []string{"model/canary", "model/beta"}
	h, err := canary.Compile(doc, known)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if got := h.Assign("acme", u).Get(canary.Model); got.Value != "gpt-4o" || got.Variant != "" {
			t.Errorf("halted: %s = %+v; want stable gpt-4o", u, got)
		}
	}
	if !h.Halted(canary.Model, "canary") || h.Halted(canary.Model, "other") {
		t.Errorf("Halted reports wrongly")
	}
	if e := h.Explain("acme", "bob")[0]; !strings.Contains(e.Reason, "canary is halted") {
		t.Errorf("Explain = %+v; want the halt mentioned", e)
	}
}

func TestOnRollback(t *testing.T) {
	p := mustParse(t, `{"models":["gpt-4o","o9"],"rules":{"stable":"v1","on_rollback":"finish"},"skills":{"stable":"default","on_rollback":"migrate"}}`)
	for _, tc := range []struct {
		dim  canary.Dimension
		want bool
	}{{canary.Rules, true}, {canary.Skills, false}, {canary.Model, false}, {canary.Sandbox, false}} {
		if got := p.Finish(tc.dim); got != tc.want {
			t.Errorf("Finish(%s) = %v; want %v", tc.dim, got, tc.want)
		}
	}
	if !p.HasModel("o9") || p.HasModel("gpt-5") {
		t.Errorf("HasModel: o9 %v, gpt-5 %v; want true, false", p.HasModel("o9"), p.HasModel("gpt-5"))
	}
}

func TestBucketIsStable(t *testing.T) {
	// The documented hash must not change between releases: sessions and
	// operators rely on it. These values pin it.
	for _, tc := range []struct {
		salt, tenant, user string
		want               int
	}{
		{"model", "acme", "alice", 7043},
		{"skills", "acme", "alice", 7416},
		{"rules", "globex", "bob", 6783},
		{"model", "", "", 4790},
	} {
		if got := canary.Bucket(tc.salt, tc.tenant, tc.user); got != tc.want {
			t.Errorf("Bucket(%q, %q, %q) = %d; want %d", tc.salt, tc.tenant, tc.user, got, tc.want)
		}
	}
	if canary.Bucket("model", "acme", "alice") == canary.Bucket("skills", "acme", "alice") &&
		canary.Bucket("model", "acme", "bob") == canary.Bucket("skills", "acme", "bob") {
		t.Errorf("dimensions with different salts bucket identically")
	}
	if canary.Bucket("model", "ac", "me/alice") == canary.Bucket("model", "acme/", "alice") {
		t.Errorf("tenant and user are not separated in the hash")
	}
}

func ExamplePolicy_Explain() {
	p, _ := canary.Parse([]byte(`{
		"models": ["gpt-4o", "gpt-5"],
		"model": {"stable": "gpt-4o", "variants": [
			{"name": "gpt5-beta", "value": "gpt-5", "percent": 5, "users": ["alice"], "tenants": ["acme"]}]}
	}`), known)
	for _, e := range p.Explain("acme", "alice")[:1] {
		fmt.Println(e.Dimension, e.Value, e.Variant, e.Reason)
	}
	for _, e := range p.Explain("globex", "alice")[:1] {
		fmt.Println(e.Dimension, e.Value, e.Variant, e.Reason)
	}
	// Output:
	// model gpt-5 gpt5-beta allowlist: gpt5-beta lists user alice
	// model gpt-4o stable stable: no variant takes this user by percent; tenant filter: globex is not in gpt5-beta's tenants [acme]
}

var sink canary.Assignment

// BenchmarkAssign routes a user in all five dimensions, two of them with
// variants, next to a baseline of five plain map lookups.
func BenchmarkAssign(b *testing.B) {
	p := mustParse(b, `{"models":["gpt-4o","gpt-5"],
		"model":{"stable":"gpt-4o","variants":[{"name":"beta","value":"gpt-5","users":["alice","acme/bob"]},{"name":"canary","value":"gpt-5","percent":5}]},
		"rules":{"stable":"v1","variants":[{"name":"tight","value":"v2","percent":10,"tenants":["acme","globex"]}]}}`)
	r := canary.NewRouter(p, 7)
	users := make([]string, 1024)
	for i := range users {
		users[i] = fmt.Sprintf("user-%d", i)
	}
	b.Run("router", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			sink = r.Assign("acme", users[i&1023])
		}
	})
	b.Run("baseline-map-lookup", func(b *testing.B) {
		m := map[string]canary.Pick{}
		for _, u := range users {
			m["acme/"+u] = canary.Pick{Value: "gpt-4o"}
		}
		keys := make([]string, len(users))
		for i, u := range users {
			keys[i] = "acme/" + u
		}
		b.ReportAllocs()
		for i := range b.N {
			var a canary.Assignment
			k := keys[i&1023]
			for d := range a.Picks {
				a.Picks[d] = m[k]
			}
			sink = a
		}
	})
}
