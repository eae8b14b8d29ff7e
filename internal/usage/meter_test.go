package usage_test

import (
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/usage"
)

// The built-in alerts read the meter.
var _ alerts.Source = (*usage.Meter)(nil)

// clock is a fake clock the tests move.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// rig is a Meter on a real bbolt file, which restart closes and opens again.
type rig struct {
	t       *testing.T
	path    string
	db      *boltdb.DB
	m       *usage.Meter
	clock   *clock
	zone    *time.Location
	budgets atomic.Pointer[usage.Budgets]
	refused []string // OnRefuse's kinds
	mu      sync.Mutex
	logs    *observer.ObservedLogs
}

func newRig(t *testing.T, zone *time.Location, start time.Time) *rig {
	t.Helper()
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "agentd.db"), clock: &clock{now: start}, zone: zone}
	r.budgets.Store(&usage.Budgets{})
	r.open()
	t.Cleanup(r.close)
	return r
}

func (r *rig) open() {
	r.t.Helper()
	db, err := boltdb.Open(r.path, boltdb.Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	core, logs := observer.New(zapcore.InfoLevel)
	r.logs = logs
	m, err := usage.New(usage.Config{
		Store: db.Usage(), Zone: r.zone, Now: r.clock.Now, Logger: zap.New(core),
		Budgets: func() usage.Budgets { return *r.budgets.Load() },
		OnRefuse: func(kind string) {
			r.mu.Lock()
			r.refused = append(r.refused, kind)
			r.mu.Unlock()
		},
	})
	if err != nil {
		db.Close()
		r.t.Fatal(err)
	}
	r.db, r.m = db, m
}

func (r *rig) close() {
	if r.m == nil {
		return
	}
	if err := r.m.Close(); err != nil {
		r.t.Errorf("Meter.Close: %v", err)
	}
	if err := r.db.Close(); err != nil {
		r.t.Errorf("DB.Close: %v", err)
	}
	r.m = nil
}

func (r *rig) restart() { r.close(); r.open() }

func (r *rig) setBudgets(doc string) {
	r.t.Helper()
	b, err := usage.Parse([]byte(doc))
	if err != nil {
		r.t.Fatal(err)
	}
	r.budgets.Store(&b)
}

func (r *rig) refusals() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.refused)
}

func sum(tenant, user, id string, variants map[string]string) session.Summary {
	return session.Summary{ID: session.ID(id), Tenant: tenant, User: user, Assignment: session.Assignment{Model: "m", Variants: variants}}
}

func call(in, out int) agent.LLMCall {
	return agent.LLMCall{Model: "m", Usage: agent.Usage{PromptTokens: in, CompletionTokens: out}}
}

var noon = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestCountsPerScope(t *testing.T) {
	r := newRig(t, time.UTC, noon)
	alice := sum("acme", "alice", "s1", map[string]string{"model": "canary-b"})
	anon := sum("acme", "", "s2", nil)
	r.m.Called(alice, call(100, 20))
	r.m.Called(alice, agent.LLMCall{Model: "m", ErrorType: "502", Status: 502})
	r.m.Called(anon, call(10, 5))
	r.m.Turn(alice, session.TurnRecord{Stats: agent.Stats{ToolCalls: 4, ToolFailures: 1}})
	r.m.Called(sum(session.ProbeTenant, "probe", "s3", nil), call(1000, 1000)) // never counted
	r.m.Turn(sum(session.ProbeTenant, "probe", "s3", nil), session.TurnRecord{Stats: agent.Stats{ToolCalls: 9}})

	tcs := []struct {
		scope usage.Scope
		want  usage.Counts
	}{
		{usage.Total(), usage.Counts{InputTokens: 110, OutputTokens: 25, LLMCalls: 3, LLM5xx: 1, ToolCalls: 4, ToolFailures: 1}},
		{usage.Tenant("acme"), usage.Counts{InputTokens: 110, OutputTokens: 25, LLMCalls: 3, LLM5xx: 1, ToolCalls: 4, ToolFailures: 1}},
		{usage.User("acme", "alice"), usage.Counts{InputTokens: 100, OutputTokens: 20, LLMCalls: 2, LLM5xx: 1, ToolCalls: 4, ToolFailures: 1}},
		{usage.Variant("model", "canary-b"), usage.Counts{InputTokens: 100, OutputTokens: 20, LLMCalls: 2, LLM5xx: 1, ToolCalls: 4, ToolFailures: 1}},
		{usage.Variant("model", "stable"), usage.Counts{InputTokens: 10, OutputTokens: 5, LLMCalls: 1}},
		{usage.Variant("rules", "stable"), usage.Counts{InputTokens: 110, OutputTokens: 25, LLMCalls: 3, LLM5xx: 1, ToolCalls: 4, ToolFailures: 1}},
		{usage.Tenant(session.ProbeTenant), usage.Counts{}},
		{usage.User("acme", ""), usage.Counts{}},
	}
	for _, tc := range tcs {
		if got := r.m.Day(tc.scope, noon); got != tc.want {
			t.Errorf("Day(%s) = %+v; want %+v", tc.scope, got, tc.want)
		}
		if got := r.m.Window(tc.scope, noon.Add(-15*time.Minute)); got != tc.want {
			t.Errorf("Window(%s) = %+v; want %+v", tc.scope, got, tc.want)
		}
	}
	wantActive := []usage.Scope{"tenant:acme", "total", "user:acme/alice", "variant:instructions/stable", "variant:model/canary-b",
		"variant:model/stable", "variant:rules/stable", "variant:sandbox/stable", "variant:skills/stable"}
	if got := r.m.Active(noon.Add(-time.Minute)); !slices.Equal(got, wantActive) {
		t.Errorf("Active = %v; want %v", got, wantActive)
	}
	wantSessions := []usage.SessionUse{{Tenant: "acme", Session: "s1", Tokens: 120, Last: noon}, {Tenant: "acme", Session: "s2", Tokens: 15, Last: noon}}
	if got := r.m.Sessions(noon); !slices.Equal(got, wantSessions) {
		t.Errorf("Sessions = %+v; want %+v", got, wantSessions)
	}
	if got := r.m.SessionTokensMax(noon); got != 120 {
		t.Errorf("SessionTokensMax = %d; want 120", got)
	}

	// 20 minutes later the window of the last 15 minutes is empty, the day is not.
	r.clock.Add(20 * time.Minute)
	now := r.clock.Now()
	if got := r.m.Window(usage.Total(), now.Add(-15*time.Minute)); got != (usage.Counts{}) {
		t.Errorf("Window(total, last 15m) 20 minutes on = %+v; want zero", got)
	}
	if got := r.m.Active(now.Add(-15 * time.Minute)); len(got) != 0 {
		t.Errorf("Active(last 15m) 20 minutes on = %v; want none", got)
	}
	if got := r.m.Day(usage.Total(), now).Tokens(); got != 135 {
		t.Errorf("Day(total).Tokens() = %d; want 135", got)
	}
	if got := r.m.Sessions(now.Add(-time.Minute)); len(got) != 0 {
		t.Errorf("Sessions(last minute) = %v; want none", got)
	}
	r.m.Called(alice, call(1, 1))
	if got := r.m.Window(usage.Total(), now.Add(-15*time.Minute)).LLMCalls; got != 1 {
		t.Errorf("Window(total).LLMCalls after a new call = %d; want 1", got)
	}
	if got := r.m.Sessions(now); len(got) != 1 || got[0].Tokens != 122 {
		t.Errorf("Sessions(now) = %+v; want s1 with 122 tokens", got)
	}
}

func TestDaysFollowTheZone(t *testing.T) {
	zone := time.FixedZone("UTC-5", -5*3600)
	// 03:00 UTC on Dec 3 is 22:00 on Dec 2 in the zone.
	late := time.Date(2026, 12, 3, 3, 0, 0, 0, time.UTC)
	r := newRig(t, zone, late)
	r.m.Called(sum("acme", "", "s1", nil), call(10, 0))
	if got := r.m.Day(usage.Total(), time.Date(2026, 12, 2, 20, 0, 0, 0, zone)).Tokens(); got != 10 {
		t.Errorf("Day(Dec 2 in the zone) = %d tokens; want 10", got)
	}
	if got := r.m.Day(usage.Total(), time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)).Tokens(); got != 0 {
		t.Errorf("Day(Dec 3, UTC noon, Dec 3 in the zone too) = %d tokens; want 0", got)
	}
	if got, want := r.m.DayEnd(late), time.Date(2026, 12, 3, 0, 0, 0, 0, zone); !got.Equal(want) {
		t.Errorf("DayEnd = %v; want %v", got, want)
	}
	st := r.m.TenantStatus("acme")
	if st.Today.Tokens() != 10 || len(st.Days) != usage.StatusDays || st.Days[6].Day != "2026-12-02" || st.Days[0].Day != "2026-11-26" {
		t.Errorf("TenantStatus = %+v; want 10 tokens today, 7 days from 2026-11-26 to 2026-12-02", st)
	}
}

func TestBudgets(t *testing.T) {
	r := newRig(t, time.UTC, noon)
	r.setBudgets(`{"tenants": {"acme": {"daily_tokens": 100}}, "users": {"acme/alice": {"daily_tokens": 30}, "globex/bob": {"daily_tokens": 10}},
		"default": {"daily_tokens": 50}}`)
	alice, bob, globex, free := sum("acme", "alice", "s1", nil), sum("acme", "bob", "s2", nil), sum("globex", "bob", "s3", nil), sum("free", "", "s4", nil)
	midnight := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	admit := func(s session.Summary) *session.BudgetError {
		t.Helper()
		err := r.m.Admit(s)
		if err == nil {
			return nil
		}
		var be *session.BudgetError
		if !errors.As(err, &be) || !errors.Is(err, session.ErrOverBudget) {
			t.Fatalf("Admit(%s/%s) = %v; want a *session.BudgetError wrapping ErrOverBudget", s.Tenant, s.User, err)
		}
		return be
	}

	for _, s := range []session.Summary{alice, bob, globex, free} {
		if be := admit(s); be != nil {
			t.Fatalf("Admit(%s/%s) before any use = %v", s.Tenant, s.User, be)
		}
	}
	r.m.Called(alice, call(25, 5)) // alice: 30 of 30; acme: 30 of 100
	if be := admit(alice); be == nil || be.Scope != "user acme/alice" || be.Used != 30 || be.Limit != 30 || !be.Reset.Equal(midnight) {
		t.Errorf("Admit(alice) at her budget = %+v; want user acme/alice 30 of 30 until %v", be, midnight)
	}
	if be := admit(bob); be != nil {
		t.Errorf("Admit(bob), no user budget, tenant under budget = %v; want nil", be)
	}
	r.m.Called(bob, call(60, 10)) // acme: 100 of 100
	if be := admit(bob); be == nil || be.Scope != "tenant acme" || be.Used != 100 || be.Limit != 100 {
		t.Errorf("Admit(bob) at the tenant's budget = %+v; want tenant acme 100 of 100", be)
	}
	// globex has the default (50); its user bob has 10 of his own.
	r.m.Called(globex, call(9, 0))
	if be := admit(globex); be != nil {
		t.Errorf("Admit(globex/bob) at 9 of 10 = %v; want nil", be)
	}
	r.m.Called(globex, call(1, 0))
	if be := admit(globex); be == nil || be.Scope != "user globex/bob" {
		t.Errorf("Admit(globex/bob) at 10 of 10 = %+v; want user globex/bob", be)
	}
	r.m.Called(sum("globex", "carol", "s5", nil), call(40, 0)) // globex: 50 of the default 50
	if be := admit(sum("globex", "carol", "s5", nil)); be == nil || be.Scope != "tenant globex" || be.Limit != 50 {
		t.Errorf("Admit(globex/carol) at the default's 50 = %+v; want tenant globex, limit 50", be)
	}
	// "free" falls under the default too: 50.
	r.m.Called(free, call(49, 0))
	if be := admit(free); be != nil {
		t.Errorf("Admit(free) at 49 of 50 = %v", be)
	}
	if got, want := r.refusals(), []string{"user", "tenant", "user", "tenant"}; !slices.Equal(got, want) {
		t.Errorf("OnRefuse kinds = %v; want %v", got, want)
	}

	// A refused scope is logged once per day, however often it retries.
	for range 5 {
		admit(bob)
	}
	if n := r.logs.FilterMessageSnippet("budget spent").FilterField(zap.String("tenant", "acme")).FilterField(zap.String("scope", "tenant")).Len(); n != 1 {
		t.Errorf("refusal log lines for tenant acme = %d; want 1", n)
	}

	// An edit of the budgets applies at the next Admit: 0 is no limit.
	r.setBudgets(`{"tenants": {"acme": {"daily_tokens": 0}}}`)
	if be := admit(bob); be != nil {
		t.Errorf("Admit(bob) after acme's budget became 0 (no limit) = %v", be)
	}
	r.setBudgets(`{"tenants": {"acme": {"daily_tokens": 100}}, "users": {"acme/alice": {"daily_tokens": 30}}}`)

	// After midnight (in the zone) the budgets are whole again, and the
	// refusal is logged again on the new day if it comes.
	r.clock.Set(midnight.Add(-time.Second))
	if be := admit(alice); be == nil {
		t.Error("Admit(alice) a second before midnight = nil; want refused")
	}
	r.clock.Set(midnight)
	for _, s := range []session.Summary{alice, bob} {
		if be := admit(s); be != nil {
			t.Errorf("Admit(%s/%s) at midnight = %v; want nil", s.Tenant, s.User, be)
		}
	}
	if got := r.m.Day(usage.Tenant("acme"), midnight.Add(-time.Second)).Tokens(); got != 100 {
		t.Errorf("yesterday's acme tokens = %d; want 100 (kept)", got)
	}
}

func TestRestartKeepsCounts(t *testing.T) {
	r := newRig(t, time.UTC, noon)
	s := sum("acme", "alice", "s1", map[string]string{"skills": "beta"})
	r.m.Called(s, call(300, 30))
	r.m.Turn(s, session.TurnRecord{Stats: agent.Stats{ToolCalls: 2, ToolFailures: 2}})
	before := map[usage.Scope]usage.Counts{}
	scopes := r.m.Active(noon.Add(-time.Hour))
	for _, sc := range scopes {
		before[sc] = r.m.Day(sc, noon)
	}
	r.restart()
	for _, sc := range scopes {
		if got := r.m.Day(sc, noon); got != before[sc] {
			t.Errorf("after a restart Day(%s) = %+v; want %+v", sc, got, before[sc])
		}
		if got := r.m.Window(sc, noon.Add(-time.Minute)); got != before[sc] {
			t.Errorf("after a restart Window(%s) = %+v; want %+v", sc, got, before[sc])
		}
	}
	if got := r.m.Active(noon.Add(-time.Hour)); !slices.Equal(got, scopes) {
		t.Errorf("after a restart Active = %v; want %v", got, scopes)
	}
	if got := r.m.SessionTokensMax(noon); got != 330 {
		t.Errorf("after a restart SessionTokensMax = %d; want 330", got)
	}

	// The writer flushes by itself (within a second): a later count
	// survives without Close too (what a kill -9 keeps).
	r.m.Called(s, call(1, 1))
	deadline := time.Now().Add(20 * time.Second)
	for {
		recs, err := r.db.Usage().Load()
		if err != nil {
			t.Fatal(err)
		}
		if recs.Days[usage.DayKey{Day: "2026-12-02", Scope: usage.Total()}].Tokens() == 332 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the count of a new call was not written within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Nine days on, the old day, its slots and the session are pruned, in
	// memory at once and in the store after the next flush.
	r.clock.Add(9 * 24 * time.Hour)
	r.restart()
	if got := r.m.Day(usage.Total(), noon); got != (usage.Counts{}) {
		t.Errorf("a 9-day-old day = %+v; want pruned", got)
	}
	if got := r.m.Sessions(time.Time{}); len(got) != 0 {
		t.Errorf("sessions 9 days on = %+v; want pruned", got)
	}
	r.close()
	db, err := boltdb.Open(r.path, boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, err := db.Usage().Load()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(recs.Days) + len(recs.Slots) + len(recs.Sessions); n != 0 {
		t.Errorf("the store keeps %d records 9 days on; want 0", n)
	}
}

func TestKeepsEightDays(t *testing.T) {
	r := newRig(t, time.UTC, noon)
	for i := range 10 { // a call a day for 10 days
		r.m.Called(sum("acme", "", "s", nil), call(i+1, 0))
		if i < 9 {
			r.clock.Add(24 * time.Hour)
		}
	}
	r.restart() // pruning happens at start (and every minute)
	now := r.clock.Now()
	for i := range 10 {
		day := now.AddDate(0, 0, -i)
		want := int64(10 - i)
		if i >= usage.KeepDays {
			want = 0
		}
		if got := r.m.Day(usage.Total(), day).Tokens(); got != want {
			t.Errorf("Day(today-%d) = %d tokens; want %d", i, got, want)
		}
	}
	if got := r.m.Active(now.AddDate(0, 0, -3)); !slices.Contains(got, usage.Tenant("acme")) {
		t.Errorf("Active(3 days ago) = %v; want acme in it", got)
	}
}

// failingStore fails its writes until told otherwise.
type failingStore struct {
	usage.Store
	fail atomic.Bool
}

func (f *failingStore) Apply(ch usage.Changes) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.Store.Apply(ch)
}

func TestFailedFlushIsRetried(t *testing.T) {
	dir := t.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs := &failingStore{Store: db.Usage()}
	fs.fail.Store(true)
	clk := &clock{now: noon}
	m, err := usage.New(usage.Config{Store: fs, Now: clk.Now, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Called(sum("acme", "", "s", nil), call(5, 5))
	if err := m.Flush(); err == nil {
		t.Fatal("Flush on a failing store = nil; want the error")
	}
	m.Called(sum("acme", "", "s", nil), call(1, 0))
	fs.fail.Store(false)
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := db.Usage().Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := recs.Days[usage.DayKey{Day: "2026-12-02", Scope: usage.Tenant("acme")}].Tokens(); got != 11 {
		t.Errorf("stored acme tokens after a failed then a good flush = %d; want 11", got)
	}
	if got := recs.Sessions[usage.SessionKey{Tenant: "acme", Session: "s"}].Tokens; got != 11 {
		t.Errorf("stored session tokens = %d; want 11", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	r := newRig(t, time.UTC, noon)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := sum("acme", "u", string(rune('a'+i)), nil)
			for range 200 {
				r.m.Called(s, call(1, 1))
				_ = r.m.Admit(s)
				_ = r.m.Window(usage.Total(), noon.Add(-time.Hour))
				_ = r.m.Active(noon.Add(-time.Hour))
			}
		}()
	}
	wg.Wait()
	if got := r.m.Day(usage.Total(), noon).LLMCalls; got != 1600 {
		t.Errorf("LLMCalls after 8×200 concurrent calls = %d; want 1600", got)
	}
}
