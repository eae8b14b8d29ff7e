package usage_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/usage"
)

// TestFleetShares: two replicas of a fleet, each counting its own sessions;
// each takes the other's share, and budgets and the usage routes count the
// tenant's use on both, while the alerts' reads stay this replica's own.
func TestFleetShares(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	a, b := newRig(t, time.UTC, start), newRig(t, time.UTC, start)
	for _, r := range []*rig{a, b} {
		r.setBudgets(`{"tenants": {"acme": {"daily_tokens": 100}}}`)
	}
	call := func(r *rig, user string, tokens int) {
		r.m.Called(sum("acme", user, "sess_0123456789abcdef0123456789abcdef", nil), agent.LLMCall{Usage: agent.Usage{PromptTokens: tokens}})
	}
	call(a, "alice", 70)
	call(b, "bob", 20)
	if err := b.m.Admit(sum("acme", "bob", "", nil)); err != nil {
		t.Fatalf("b alone is at 20 of 100: %v", err)
	}
	// The share goes over JSON, as on the cluster channel.
	var s usage.Share
	raw, err := json.Marshal(a.m.Share("a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	b.m.SetShare(s)
	if got := b.m.TenantStatus("acme").Today.Tokens(); got != 90 {
		t.Fatalf("b's view of acme today = %d; want 90 (70 on a, 20 on b)", got)
	}
	if users := b.m.Users("acme"); len(users) != 2 || users[0] != "alice" || users[1] != "bob" {
		t.Errorf("b's users of acme = %v; want alice (on a) and bob", users)
	}
	if got := b.m.Day(usage.Tenant("acme"), b.clock.Now()).Tokens(); got != 20 {
		t.Errorf("Day (the alerts' read) = %d; want b's own 20", got)
	}
	call(b, "bob", 10) // 100 in the fleet
	var be *session.BudgetError
	if err := b.m.Admit(sum("acme", "bob", "", nil)); !errors.As(err, &be) || be.Used != 100 {
		t.Fatalf("b at 100 of 100 in the fleet: %v; want a BudgetError with used 100", err)
	}
	// A newer share replaces the last, not adds to it.
	b.m.SetShare(a.m.Share("a"))
	if got := b.m.TenantStatus("acme").Today.Tokens(); got != 100 {
		t.Errorf("after the same share again: %d; want 100", got)
	}
	// What a share may not carry is dropped: other scope kinds, bad days.
	b.m.SetShare(usage.Share{Node: "c", Days: map[string]map[usage.Scope]usage.Counts{
		"2026-03-10": {usage.Total(): {InputTokens: 1000}, usage.Variant("model", "x"): {InputTokens: 1000}},
		"not-a-day":  {usage.Tenant("acme"): {InputTokens: 1000}},
	}})
	if got := b.m.TenantStatus("acme").Today.Tokens(); got != 100 {
		t.Errorf("after a share of other scopes: %d; want 100", got)
	}
	// Tomorrow: nothing spent yet anywhere.
	b.clock.Add(24 * time.Hour)
	if err := b.m.Admit(sum("acme", "bob", "", nil)); err != nil {
		t.Errorf("the next day: %v", err)
	}
}
