package usage_test

import (
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/usage"
)

func TestParse(t *testing.T) {
	tcs := []struct {
		name    string
		doc     string
		nilData bool
		want    usage.Budgets
		errs    []string // each must be in the error
	}{
		{name: "no file", nilData: true},
		{name: "empty object", doc: `{}`},
		{name: "full", doc: `{"tenants": {"acme": {"daily_tokens": 1000}, "globex": {}},
			"users": {"acme/alice": {"daily_tokens": 100}, "acme/team/bob": {"daily_tokens": 0}},
			"default": {"daily_tokens": 5000}}`,
			want: usage.Budgets{
				Tenants: map[string]usage.Budget{"acme": {DailyTokens: 1000}, "globex": {}},
				Users:   map[string]usage.Budget{"acme/alice": {DailyTokens: 100}, "acme/team/bob": {}},
				Default: usage.Budget{DailyTokens: 5000},
			}},
		{name: "null is absent", doc: `{"default": {"daily_tokens": null}, "tenants": null}`, want: usage.Budgets{Tenants: map[string]usage.Budget{}}},
		{name: "empty file", doc: " \n", errs: []string{"empty", "write {}"}},
		{name: "not JSON", doc: `{"tenants": `, errs: []string{"not valid JSON"}},
		{name: "not an object", doc: `[1]`, errs: []string{"want an object"}},
		{name: "unknown top field", doc: `{"tenant": {}}`, errs: []string{`unknown field "tenant"`}},
		{name: "unknown nested field", doc: `{"tenants": {"acme": {"daily_token": 5}}}`, errs: []string{`tenants.acme: unknown field "daily_token"`}},
		{name: "unknown default field", doc: `{"default": {"monthly_tokens": 5}}`, errs: []string{`default: unknown field "monthly_tokens"`}},
		{name: "negative", doc: `{"default": {"daily_tokens": -1}}`, errs: []string{"default.daily_tokens: -1 is negative"}},
		{name: "fraction", doc: `{"tenants": {"acme": {"daily_tokens": 1.5}}}`, errs: []string{"tenants.acme.daily_tokens: want a whole number"}},
		{name: "string", doc: `{"tenants": {"acme": {"daily_tokens": "100"}}}`, errs: []string{"tenants.acme.daily_tokens: want a whole number"}},
		{name: "bad tenant", doc: `{"tenants": {"_probe": {"daily_tokens": 1}}}`, errs: []string{"tenants._probe: not a tenant name"}},
		{name: "user without tenant", doc: `{"users": {"alice": {"daily_tokens": 1}}}`, errs: []string{`users.alice: want "tenant/user"`}},
		{name: "user empty", doc: `{"users": {"acme/": {"daily_tokens": 1}}}`, errs: []string{"users.acme/: the user is empty"}},
		{name: "user bad tenant", doc: `{"users": {"a b/alice": {"daily_tokens": 1}}}`, errs: []string{`"a b" is not a tenant name`}},
		{name: "user control", doc: `{"users": {"acme/al\u0007ice": {"daily_tokens": 1}}}`, errs: []string{"control characters"}},
		{name: "every problem at once", doc: `{"x": 1, "default": {"daily_tokens": -5}, "tenants": {"acme": {"y": 1}}}`,
			errs: []string{`unknown field "x"`, "default.daily_tokens: -5", `tenants.acme: unknown field "y"`}},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			if !tc.nilData {
				data = []byte(tc.doc)
			}
			got, err := usage.Parse(data)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Parse(%s) = %+v, nil; want an error", tc.doc, got)
				}
				for _, want := range tc.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("Parse(%s) error = %q; want it to contain %q", tc.doc, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s) = %v", tc.doc, err)
			}
			if !equalBudgets(got, tc.want) {
				t.Errorf("Parse(%s) = %+v; want %+v", tc.doc, got, tc.want)
			}
		})
	}
}

func equalBudgets(a, b usage.Budgets) bool {
	eq := func(x, y map[string]usage.Budget) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || w != v {
				return false
			}
		}
		return true
	}
	return a.Default == b.Default && eq(a.Tenants, b.Tenants) && eq(a.Users, b.Users)
}

func TestBudgetLookup(t *testing.T) {
	b, err := usage.Parse([]byte(`{"tenants": {"acme": {"daily_tokens": 10}, "free": {}}, "users": {"acme/alice": {"daily_tokens": 3}}, "default": {"daily_tokens": 7}}`))
	if err != nil {
		t.Fatal(err)
	}
	tcs := []struct {
		tenant, user   string
		tenantB, userB int64
	}{
		{"acme", "alice", 10, 3},
		{"acme", "bob", 10, 0},
		{"acme", "", 10, 0},
		{"globex", "alice", 7, 0}, // the default; acme/alice is not globex/alice
		{"free", "", 0, 0},        // listed without a limit: not the default
	}
	for _, tc := range tcs {
		if got := b.Tenant(tc.tenant).DailyTokens; got != tc.tenantB {
			t.Errorf("Tenant(%q) = %d; want %d", tc.tenant, got, tc.tenantB)
		}
		if got := b.User(tc.tenant, tc.user).DailyTokens; got != tc.userB {
			t.Errorf("User(%q, %q) = %d; want %d", tc.tenant, tc.user, got, tc.userB)
		}
	}
}
