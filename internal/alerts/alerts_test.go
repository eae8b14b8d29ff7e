package alerts_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/usage"
)

func TestParse(t *testing.T) {
	def := alerts.DefaultRules()
	cases := []struct {
		name    string
		in      string
		want    alerts.Rules
		wantErr string // substring; "" = no error
	}{
		{"no file", "", def, ""},
		{"empty object", `{}`, def, ""},
		{"every field", `{"daily_tokens_ratio": 2, "session_tokens": 1000, "tool_failure_rate": 0.2, "llm_5xx_rate": 0.01,
			"min_calls": 5, "window": "30m", "keep_resolved": "1h"}`,
			alerts.Rules{DailyTokensRatio: 2, SessionTokens: 1000, ToolFailureRate: 0.2, LLM5xxRate: 0.01, MinCalls: 5,
				Window: 30 * time.Minute, KeepResolved: time.Hour}, ""},
		{"0 turns an alert off, the rest keep defaults", `{"session_tokens": 0, "llm_5xx_rate": 0}`,
			func() alerts.Rules { r := def; r.SessionTokens, r.LLM5xxRate = 0, 0; return r }(), ""},
		{"unknown field named", `{"session_token": 5}`, alerts.Rules{}, `unknown field "session_token"`},
		{"negative ratio", `{"daily_tokens_ratio": -1}`, alerts.Rules{}, "daily_tokens_ratio -1"},
		{"negative session tokens", `{"session_tokens": -5}`, alerts.Rules{}, "session_tokens -5"},
		{"a rate of 1", `{"tool_failure_rate": 1}`, alerts.Rules{}, "tool_failure_rate 1: must be a fraction"},
		{"a percentage for a fraction", `{"llm_5xx_rate": 5}`, alerts.Rules{}, "llm_5xx_rate 5"},
		{"negative min_calls", `{"min_calls": -1}`, alerts.Rules{}, "min_calls -1"},
		{"window not a duration", `{"window": "15"}`, alerts.Rules{}, `window "15": not a duration`},
		{"window too short", `{"window": "1m"}`, alerts.Rules{}, "must be from 5m to 24h"},
		{"window too long", `{"window": "25h"}`, alerts.Rules{}, "must be from 5m to 24h"},
		{"keep_resolved negative", `{"keep_resolved": "-1h"}`, alerts.Rules{}, "keep_resolved"},
		{"every problem at once", `{"session_tokens": -1, "window": "x"}`, alerts.Rules{}, "session_tokens -1: must be 0 (off) or more\nwindow"},
		{"wrong type", `{"session_tokens": "50000"}`, alerts.Rules{}, "session_tokens"},
		{"malformed", `{"session_tokens":`, alerts.Rules{}, "not a valid alerts document"},
		{"two documents", `{} {}`, alerts.Rules{}, "data after the JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			if tc.in != "" {
				data = []byte(tc.in)
			}
			got, err := alerts.Parse(data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%s) error = %v; want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s) = %v", tc.in, err)
			}
			if got != tc.want {
				t.Errorf("Parse(%s) = %+v; want %+v", tc.in, got, tc.want)
			}
		})
	}
}

// TestDailyTokens drives days with a fake clock in a zone east of UTC: a
// tenant whose day runs 1.6× its 7-day mean fires (the total does not), a
// tenant without a baseline never fires, and the alert resolves when the
// day ends in the zone, not in UTC.
func TestDailyTokens(t *testing.T) {
	zone := time.FixedZone("UTC+5", 5*3600)
	day0 := time.Date(2026, 3, 10, 0, 0, 0, 0, zone) // today, at midnight in the zone
	e := newEnv(t, zone, day0.Add(9*time.Hour), nil)
	for i := 1; i <= 7; i++ { // 7 days of 1000 tokens a day each, for acme and globex
		at := day0.AddDate(0, 0, -i).Add(10 * time.Hour)
		e.src.add(at, usage.Counts{InputTokens: 600, OutputTokens: 400}, usage.Tenant("acme"))
		e.src.add(at, usage.Counts{InputTokens: 1000}, usage.Tenant("globex"))
	}
	e.src.add(day0.AddDate(0, 0, -8).Add(time.Hour), usage.Counts{InputTokens: 1e6}, usage.Tenant("acme")) // outside the 7 days
	for i := 1; i <= 7; i++ {                                                                              // hooli used 100000 a day, and nothing today: the total's mean is 102000
		e.src.add(day0.AddDate(0, 0, -i).Add(time.Hour), usage.Counts{InputTokens: 100000}, usage.Tenant("hooli"))
	}

	now := e.clock.now()
	e.src.add(now, usage.Counts{InputTokens: 1500}, usage.Tenant("acme"))
	e.src.add(now, usage.Counts{InputTokens: 99999}, usage.Tenant("initech")) // no baseline
	e.eval()
	if got := e.firing(alerts.DailyTokensHigh); len(got) != 0 {
		t.Fatalf("at 1.5× (not over): firing %v; want none", got)
	}

	e.clock.add(time.Hour)
	e.src.add(e.clock.now(), usage.Counts{OutputTokens: 100}, usage.Tenant("acme"))
	e.eval()
	got := e.firing(alerts.DailyTokensHigh)
	a, ok := got[alerts.Scope{Tenant: "acme"}]
	if len(got) != 1 || !ok {
		t.Fatalf("at 1.6×: firing %v; want acme only (not the total: %d of 102000; not initech: no baseline)", got, 1600+99999)
	}
	if a.Severity != alerts.P2 || a.Value != 1.6 || a.Threshold != 1.5 || !a.Since.Equal(e.clock.now()) {
		t.Errorf("alert = %+v; want P2, value 1.6, threshold 1.5, since now", a)
	}
	if !strings.Contains(a.Summary, "1600 tokens today") {
		t.Errorf("summary %q; want the tokens in it", a.Summary)
	}
	if n := e.lines("alert firing: AgentdDailyTokensHigh"); n != 1 {
		t.Errorf("%d firing lines; want 1", n)
	}

	// Still firing later in the day (in the zone: 23:59 is 18:59 UTC).
	e.clock.set(day0.Add(24*time.Hour - time.Minute))
	e.eval()
	if got := e.firing(alerts.DailyTokensHigh); len(got) != 1 || !got[alerts.Scope{Tenant: "acme"}].Since.Equal(a.Since) {
		t.Fatalf("at 23:59 in the zone: firing %v; want acme, since unchanged", got)
	}
	// Past midnight in the zone: a new day, nothing used yet.
	e.clock.set(day0.Add(24*time.Hour + time.Minute))
	e.eval()
	if got := e.firing(alerts.DailyTokensHigh); len(got) != 0 {
		t.Fatalf("after midnight in the zone: firing %v; want none", got)
	}
	r := e.resolved(alerts.DailyTokensHigh)[alerts.Scope{Tenant: "acme"}]
	if r.ResolvedAt == nil || !r.ResolvedAt.Equal(e.clock.now()) || !r.Since.Equal(a.Since) {
		t.Errorf("resolved = %+v; want resolved now, since kept", r)
	}
	if n := e.lines("alert resolved: AgentdDailyTokensHigh"); n != 1 {
		t.Errorf("%d resolved lines; want 1", n)
	}
}

// TestSessionTokens: a session over the threshold fires with its tenant
// and id, stays firing while it calls the model, and resolves after an
// hour without an LLM call. The probe tenant never fires.
func TestSessionTokens(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, nil)
	e.src.call(start, "acme", "sess_1", 30000)
	e.src.call(start, "acme", "sess_2", 1000)
	e.src.call(start, session.ProbeTenant, "sess_p", 1e6)
	e.eval()
	if got := e.firing(alerts.SessionTokensHigh); len(got) != 0 {
		t.Fatalf("at 30000 tokens: firing %v; want none", got)
	}
	e.clock.add(10 * time.Minute)
	e.src.call(e.clock.now(), "acme", "sess_1", 25000)
	e.eval()
	scope := alerts.Scope{Tenant: "acme", Session: "sess_1"}
	got := e.firing(alerts.SessionTokensHigh)
	a, ok := got[scope]
	if len(got) != 1 || !ok || a.Value != 55000 || a.Threshold != 50000 || a.Severity != alerts.P3 {
		t.Fatalf("at 55000 tokens: firing %v; want sess_1 of acme, value 55000, P3", got)
	}
	e.clock.add(59 * time.Minute) // 59 min after its last call
	e.eval()
	if len(e.firing(alerts.SessionTokensHigh)) != 1 {
		t.Fatal("59 min after its last call: resolved; want still firing")
	}
	e.clock.add(2 * time.Minute)
	e.eval()
	if got := e.firing(alerts.SessionTokensHigh); len(got) != 0 {
		t.Fatalf("61 min after its last call: firing %v; want none", got)
	}
	if r := e.resolved(alerts.SessionTokensHigh)[scope]; r.ResolvedAt == nil || r.Value != 55000 {
		t.Errorf("resolved = %+v; want sess_1 with its last value", r)
	}
}

// TestRates: each rate alert fires per scope (total, tenant, variant) with
// enough calls, not below min_calls, and resolves when the window passes.
func TestRates(t *testing.T) {
	cases := []struct {
		name  string
		alert string
		sev   string
		bad   func(calls, failed int64) usage.Counts
	}{
		{"tool failures", alerts.ToolFailureRateHigh, alerts.P2,
			func(calls, failed int64) usage.Counts { return usage.Counts{ToolCalls: calls, ToolFailures: failed} }},
		{"LLM 5xx", alerts.LLM5xxRateHigh, alerts.P1,
			func(calls, failed int64) usage.Counts { return usage.Counts{LLMCalls: calls, LLM5xx: failed} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
			e := newEnv(t, time.UTC, start, nil)
			canary, stable := usage.Variant("model", "canary-b"), usage.Variant("model", "stable")
			// acme on the canary: 5 of 20 fail (25 %). globex on stable: 0 of 500.
			e.src.add(start, tc.bad(20, 5), usage.Tenant("acme"), canary)
			e.src.add(start, tc.bad(500, 0), usage.Tenant("globex"), stable)
			// initech: all of 19 fail, under min_calls.
			e.src.add(start, tc.bad(19, 19), usage.Tenant("initech"))
			e.eval()
			got := e.firing(tc.alert)
			want := map[alerts.Scope]float64{{Tenant: "acme"}: 0.25, {Variant: "model/canary-b"}: 0.25}
			if len(got) != len(want) {
				t.Fatalf("firing %v; want %v (not the total: 24 of 539 is under 5 %%; not initech: under min_calls)", got, want)
			}
			for s, v := range want {
				if a, ok := got[s]; !ok || a.Value != v || a.Severity != tc.sev {
					t.Errorf("firing[%v] = %+v; want value %v, %s", s, a, v, tc.sev)
				}
			}
			if n := len(e.firing(otherRate(tc.alert))); n != 0 {
				t.Errorf("%d of the other rate alert firing; want 0", n)
			}

			// Calls keep coming and keep failing: still firing, value updated, since kept.
			since := got[alerts.Scope{Tenant: "acme"}].Since
			e.clock.add(5 * time.Minute)
			e.src.add(e.clock.now(), tc.bad(20, 15), usage.Tenant("acme"), canary)
			e.src.add(e.clock.now(), tc.bad(500, 0), usage.Tenant("globex"), stable)
			e.eval()
			if a := e.firing(tc.alert)[alerts.Scope{Tenant: "acme"}]; a.Value != 0.5 || !a.Since.Equal(since) {
				t.Errorf("after more failures: %+v; want value 0.5, since %v", a, since)
			}
			// The window passes with no more calls: resolved. (A window
			// counts whole 5-minute slots: the slot holding its start too.)
			e.clock.add(21 * time.Minute)
			e.eval()
			if got := e.firing(tc.alert); len(got) != 0 {
				t.Fatalf("after the window: firing %v; want none", got)
			}
			if r := e.resolved(tc.alert); len(r) != 2 {
				t.Errorf("resolved %v; want acme and the canary", r)
			}
			if n := e.lines("alert resolved: " + tc.alert); n != 2 {
				t.Errorf("%d resolved lines; want 2", n)
			}
		})
	}
}

func otherRate(name string) string {
	if name == alerts.LLM5xxRateHigh {
		return alerts.ToolFailureRateHigh
	}
	return alerts.LLM5xxRateHigh
}

// TestTotalRate: the total scope fires on its own (many tenants, each
// under min_calls, together over it).
func TestTotalRate(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, nil)
	for i := range 10 {
		e.src.add(start, usage.Counts{LLMCalls: 3, LLM5xx: 1}, usage.Tenant(string(rune('a'+i))))
	}
	e.eval()
	got := e.firing(alerts.LLM5xxRateHigh)
	if a, ok := got[alerts.Scope{}]; len(got) != 1 || !ok || a.Value != 0.3333 {
		t.Fatalf("firing %v; want the total only, value 0.3333", got)
	}
}

// TestRestartKeepsState: an alert firing before a restart is still firing
// after it with its first since, is not announced again, and resolves
// normally; resolved alerts stay listed for keep_resolved.
func TestRestartKeepsState(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, nil)
	e.src.call(start, "acme", "sess_1", 60000)
	e.src.call(start, "acme", "sess_2", 70000)
	e.eval()
	e.clock.add(30 * time.Minute)
	e.src.call(e.clock.now(), "acme", "sess_2", 1) // sess_2 keeps going
	e.eval()
	e.clock.add(31 * time.Minute) // sess_1 quiet for 61 min: resolved
	e.eval()
	before := e.al.List()
	if len(before) != 2 || before[0].Scope.Session != "sess_2" || before[0].ResolvedAt != nil ||
		before[1].Scope.Session != "sess_1" || before[1].ResolvedAt == nil {
		t.Fatalf("before the restart: %+v; want sess_2 firing, sess_1 resolved", before)
	}

	e.close()
	e.open()
	after := e.al.List()
	if len(after) != 2 || !after[0].Since.Equal(start) || after[0].ResolvedAt != nil || after[1].ResolvedAt == nil ||
		!after[1].ResolvedAt.Equal(*before[1].ResolvedAt) {
		t.Fatalf("after the restart: %+v; want the same as before: %+v", after, before)
	}
	if c := count(e.al.Counts(), alerts.SessionTokensHigh); c != 1 {
		t.Errorf("Counts: %d firing; want 1", c)
	}
	e.eval()
	if n := e.lines("alert firing:"); n != 0 {
		t.Errorf("%d firing lines after the restart; want 0 (not announced again)", n)
	}
	if a := e.firing(alerts.SessionTokensHigh)[alerts.Scope{Tenant: "acme", Session: "sess_2"}]; !a.Since.Equal(start) {
		t.Errorf("after an evaluation: %+v; want since %v", a, start)
	}

	// keep_resolved (24 h) later, the resolved one is gone, also from the store.
	e.clock.add(24*time.Hour + time.Minute)
	e.eval()
	if got := e.al.List(); len(got) != 1 || got[0].Scope.Session != "sess_2" || got[0].ResolvedAt == nil {
		t.Fatalf("a day later: %+v; want only sess_2, resolved", got)
	}
	e.close()
	e.open()
	if got := e.al.List(); len(got) != 1 {
		t.Fatalf("a day later, restarted: %+v; want only sess_2", got)
	}
}

// TestCounts: every name, its severity, and how many fire.
func TestCounts(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, nil)
	e.src.call(start, "acme", "s1", 60000)
	e.src.call(start, "globex", "s2", 60000)
	e.eval()
	got := e.al.Counts()
	want := []alerts.Count{
		{Name: alerts.LLM5xxRateHigh, Severity: "P1"}, {Name: alerts.DailyTokensHigh, Severity: "P2"},
		{Name: alerts.ToolFailureRateHigh, Severity: "P2"}, {Name: alerts.SessionTokensHigh, Severity: "P3", Firing: 2},
	}
	if len(got) != len(want) {
		t.Fatalf("Counts() = %+v; want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Counts()[%d] = %+v; want %+v", i, got[i], want[i])
		}
	}
}

func count(cs []alerts.Count, name string) int {
	for _, c := range cs {
		if c.Name == name {
			return c.Firing
		}
	}
	return -1
}

// TestRunAndClose: Run evaluates at once and then every Interval; Close
// stops it and waits for it; Run after Close returns at once; Close twice
// is fine.
func TestRunAndClose(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, func(c *alerts.Config) { c.Interval = 5 * time.Millisecond })
	ran := make(chan struct{})
	go func() { e.al.Run(t.Context()); close(ran) }()
	e.src.call(start, "acme", "s1", 60000)
	waitFor(t, "an evaluation of Run to fire", func() bool { return len(e.firing(alerts.SessionTokensHigh)) == 1 })
	e.clock.add(2 * time.Hour)
	waitFor(t, "an evaluation of Run to resolve", func() bool { return len(e.firing(alerts.SessionTokensHigh)) == 0 })
	al := e.al
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	<-ran // Close waited for Run; this does not block
	al.Run(t.Context())
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSummaries(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, func(c *alerts.Config) {
		c.Rules = func() alerts.Rules { r := alerts.DefaultRules(); r.Window = 90 * time.Minute; return r }
	})
	e.src.add(start, usage.Counts{ToolCalls: 40, ToolFailures: 10}, usage.Tenant("acme"))
	e.eval()
	a := e.firing(alerts.ToolFailureRateHigh)[alerts.Scope{Tenant: "acme"}]
	if want := "tenant acme: 10 of 40 tool calls failed in the last 1h30m (25.0 %; threshold 10 %)"; a.Summary != want {
		t.Errorf("summary %q; want %q", a.Summary, want)
	}
}

// TestStableIsNotAVariantScope: an outage on stable fires for the total and
// the tenant, not once more per dimension's stable cohort.
func TestStableIsNotAVariantScope(t *testing.T) {
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, nil)
	e.src.add(start, usage.Counts{LLMCalls: 30, LLM5xx: 30}, usage.Tenant("hooli"),
		usage.Variant("model", "stable"), usage.Variant("rules", "stable"))
	e.eval()
	got := e.firing(alerts.LLM5xxRateHigh)
	if len(got) != 2 {
		t.Fatalf("firing %v; want the total and hooli only", got)
	}
	for _, s := range []alerts.Scope{{}, {Tenant: "hooli"}} {
		if _, ok := got[s]; !ok {
			t.Errorf("no alert for %v in %v", s, got)
		}
	}
}
