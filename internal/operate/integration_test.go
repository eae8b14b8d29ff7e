package operate_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/usage"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestAlertsOverTheRealMeter drives the built-in alerts with the real
// meter on a real store, a fake clock turning the days: what alerts assume
// of their Source (days in the zone, 5-minute windows, active scopes,
// session totals) holds for usage.Meter.
func TestAlertsOverTheRealMeter(t *testing.T) {
	zone := time.FixedZone("UTC+5", 5*3600)
	c := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, zone)}
	db, err := boltdb.Open(filepath.Join(t.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log := zaptest.NewLogger(t)
	meter, err := usage.New(usage.Config{Store: db.Usage(), Zone: zone, Now: c.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { meter.Close() })
	al, err := alerts.New(context.Background(), alerts.Config{Source: meter, Store: db.Alerts(), Zone: zone, Now: c.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	firing := func(name string) map[alerts.Scope]alerts.Alert {
		if err := al.Evaluate(context.Background()); err != nil {
			t.Fatal(err)
		}
		out := map[alerts.Scope]alerts.Alert{}
		for _, a := range al.List() {
			if a.Name == name && a.ResolvedAt == nil {
				out[a.Scope] = a
			}
		}
		return out
	}
	sum := func(tenant, id string) session.Summary {
		return session.Summary{ID: session.ID(id), Tenant: tenant, User: "alice",
			Assignment: session.Assignment{Model: "m", Variants: map[string]string{"model": "canary"}}}
	}
	call := func(s session.Summary, tokens int, status int) {
		c := agent.LLMCall{Model: "m", Usage: agent.Usage{PromptTokens: tokens}}
		if status != 0 {
			c.Usage, c.Status, c.ErrorType = agent.Usage{}, status, "5xx"
		}
		meter.Called(s, c)
	}

	// Seven days of 1,000 tokens a day for acme, one session a day.
	for d := range 7 {
		call(sum("acme", "sess_day"+string(rune('a'+d))), 1000, 0)
		c.Add(24 * time.Hour)
	}
	// Today: 1,400 tokens, under 1.5 × the mean of 1,000.
	s := sum("acme", "sess_today")
	call(s, 1400, 0)
	if got := firing(alerts.DailyTokensHigh); len(got) != 0 {
		t.Fatalf("daily tokens at 1.4 × the mean: firing %v", got)
	}
	call(s, 200, 0) // 1,600: over
	got := firing(alerts.DailyTokensHigh)
	if a, ok := got[alerts.Scope{Tenant: "acme"}]; !ok || a.Value != 1.6 {
		t.Fatalf("daily tokens at 1.6 × the mean: firing %v", got)
	}
	// The next day in the zone starts at 0: resolved.
	today := c.Now()
	c.now = time.Date(today.Year(), today.Month(), today.Day()+1, 0, 1, 0, 0, zone)
	if got := firing(alerts.DailyTokensHigh); len(got) != 0 {
		t.Fatalf("after midnight in the zone: firing %v", got)
	}

	// A session over 50,000 tokens, quiet for an hour: fires, then resolves.
	stuck := sum("acme", "sess_stuck")
	for range 6 {
		call(stuck, 9000, 0)
	}
	if got := firing(alerts.SessionTokensHigh); len(got) != 1 {
		t.Fatalf("a session at 54,000 tokens: firing %v", got)
	}
	c.Add(61 * time.Minute)
	if got := firing(alerts.SessionTokensHigh); len(got) != 0 {
		t.Fatalf("an hour quiet: firing %v", got)
	}

	// LLM 5xx for the canary: 25 calls, 10 of them 5xx; the variant
	// scope and the tenant fire; the window passes, they resolve.
	for i := range 25 {
		status := 0
		if i%5 < 2 {
			status = 502
		}
		call(sum("acme", "sess_five"), 10, status)
	}
	got = firing(alerts.LLM5xxRateHigh)
	for _, sc := range []alerts.Scope{{}, {Tenant: "acme"}, {Variant: "model/canary"}} {
		if a, ok := got[sc]; !ok || a.Value != 0.4 {
			t.Errorf("LLM 5xx for %v: %+v (firing %v)", sc, a, got)
		}
	}
	c.Add(25 * time.Minute)
	if got := firing(alerts.LLM5xxRateHigh); len(got) != 0 {
		t.Fatalf("after the window: firing %v", got)
	}
}
