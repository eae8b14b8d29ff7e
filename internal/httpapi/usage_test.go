package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
	"github.com/agentd/agentd/internal/tenant"
	"github.com/agentd/agentd/internal/usage"
)

const opsKey = "ops-admin-key-0123456"

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// adminOnly is a Control for routes that only need one to be set.
type adminOnly struct{ httpapi.Control }

// meterFixture is the API over a pool metered by a real usage.Meter on bbolt.
type meterFixture struct {
	*fixture
	meter   *usage.Meter
	clock   *fakeClock
	budgets atomic.Pointer[usage.Budgets]
}

func newMeterFixture(t *testing.T, zone *time.Location, steps ...agenttest.Step) *meterFixture {
	t.Helper()
	dir := t.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// The meter's clock starts at the real time: Retry-After is counted
	// from the real clock.
	f := &meterFixture{clock: &fakeClock{now: time.Now()}}
	f.budgets.Store(&usage.Budgets{})
	f.meter, err = usage.New(usage.Config{Store: db.Usage(), Zone: zone, Now: f.clock.Now, Logger: zaptest.NewLogger(t),
		Budgets: func() usage.Budgets { return *f.budgets.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.meter.Close() })
	m := agenttest.NewModel(steps...)
	echo := agenttest.NewTool("echo", func(_ context.Context, c agent.Call) (string, error) { return "echo " + string(c.Args), nil })
	hooks := (&sessiontest.Hooks{
		ToolsFn:   func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return []agent.Tool{echo}, nil, nil },
		ObserveFn: f.meter.Turn,
	}).Pool()
	hooks.Meter = f.meter
	pool, err := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), hooks, session.Config{Dir: filepath.Join(dir, "ws"), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	keys, err := tenant.Parse(acmeKey + "=acme," + globexKey + "=globex," + opsKey + "=ops:admin")
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(pool, keys, httpapi.Config{Logger: zaptest.NewLogger(t), Usage: f.meter, Control: adminOnly{}})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = api.HTTPServer()
	srv.Start()
	t.Cleanup(srv.Close)
	f.fixture = &fixture{t: t, srv: srv, api: api, pool: pool, model: m}
	return f
}

func (f *meterFixture) setBudgets(doc string) {
	f.t.Helper()
	b, err := usage.Parse([]byte(doc))
	if err != nil {
		f.t.Fatal(err)
	}
	f.budgets.Store(&b)
}

func tokens(in, out int) agent.Usage { return agent.Usage{PromptTokens: in, CompletionTokens: out} }

func TestBudgetStopsATurnAndRefusesTheNext(t *testing.T) {
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	callTool := agenttest.Calls("echo", `{"x":1}`)
	callTool.Usage = tokens(50, 10)
	f := newMeterFixture(t, zone, callTool) // a second call would exhaust the script
	f.setBudgets(`{"tenants": {"acme": {"daily_tokens": 60}}}`)
	id := f.create(acmeKey)

	// The first call spends the budget; the agent runs the tool, then is
	// refused before its second call.
	r := f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"go"}`)
	if r.status != http.StatusOK {
		t.Fatalf("turn = %d %s", r.status, r.raw)
	}
	out, _ := r.body["outcome"].(map[string]any)
	if out["status"] != "error" || out["incomplete_reason"] != agent.IncompleteBudgetExceeded {
		t.Errorf("outcome = %v; want error/budget_exceeded", out)
	}
	if reply, _ := r.body["reply"].(string); !strings.HasPrefix(reply, "[Stopped: the daily token budget of tenant acme is spent (60 of 60 tokens)") {
		t.Errorf("reply = %q; want [Stopped: the daily token budget of tenant acme is spent (60 of 60 tokens)…", reply)
	}
	if n := len(f.model.Requests()); n != 1 {
		t.Errorf("LLM calls = %d; want 1 (the second is refused before it is made)", n)
	}
	sess := f.do("GET", "/v1/sessions/"+id, acmeKey, "")
	var got struct{ Messages []agent.Message }
	if err := json.Unmarshal([]byte(sess.raw), &got); err != nil {
		t.Fatal(err)
	}
	if err := agent.Validate(got.Messages); err != nil {
		t.Errorf("history after the stop is not valid: %v\n%+v", err, got.Messages)
	}
	roles := []string{}
	for _, m := range got.Messages {
		roles = append(roles, m.Role)
	}
	if strings.Join(roles, ",") != "user,assistant,tool,assistant" {
		t.Errorf("history roles = %v; want user, assistant (tool call), tool (its result), assistant (the stop)", roles)
	}

	// The next turn is refused before it starts: 429 with Retry-After at
	// the day's end in the zone.
	r = f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"again"}`)
	if r.status != http.StatusTooManyRequests || errCode(r) != httpapi.CodeBudgetExceeded {
		t.Fatalf("turn over budget = %d %s; want 429 budget_exceeded", r.status, r.raw)
	}
	end := f.meter.DayEnd(f.clock.Now())
	if l := end.In(zone); l.Hour() != 0 || l.Minute() != 0 || !end.After(f.clock.Now()) {
		t.Fatalf("DayEnd = %v; want the next midnight in %v", end, zone)
	}
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	want := int(math.Ceil(time.Until(end).Seconds()))
	if err != nil || ra < want-60 || ra > want+1 { // the test's own time passes: a minute of slack
		t.Errorf("Retry-After = %q; want about %d (seconds to %v)", r.header.Get("Retry-After"), want, end)
	}
	if n := len(f.model.Requests()); n != 1 {
		t.Errorf("LLM calls after the refused turn = %d; want still 1", n)
	}
	var turns struct{ Turns []session.TurnRecord }
	_ = json.Unmarshal([]byte(f.do("GET", "/v1/sessions/"+id, acmeKey, "").raw), &turns)
	if len(turns.Turns) != 1 {
		t.Errorf("turns recorded = %d; want 1 (a refused turn records nothing)", len(turns.Turns))
	}
	// Another tenant is not affected.
	gid := f.create(globexKey)
	f.model.Push(agenttest.Reply("hi globex"))
	if r := f.do("POST", "/v1/sessions/"+gid+"/messages", globexKey, `{"content":"hi"}`); r.status != http.StatusOK || r.body["reply"] != "hi globex" {
		t.Errorf("globex's turn = %d %s; want 200 hi globex", r.status, r.raw)
	}

	// After midnight in the zone, acme is served again.
	f.clock.Set(end)
	f.model.Push(agenttest.Reply("served again"))
	r = f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"next day"}`)
	if r.status != http.StatusOK || r.body["reply"] != "served again" {
		t.Errorf("turn after midnight = %d %s; want 200 served again", r.status, r.raw)
	}
}

func TestUserBudgetWithinTenant(t *testing.T) {
	f := newMeterFixture(t, time.UTC)
	f.setBudgets(`{"tenants": {"acme": {"daily_tokens": 1000}}, "users": {"acme/alice": {"daily_tokens": 10}}}`)
	f.model.Default = func(agent.Request) agenttest.Step { return agenttest.Step{Text: "ok", Usage: tokens(8, 2)} }
	id := f.create(acmeKey) // alice (the fixture's X-Agentd-User)
	if r := f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"a"}`); r.status != http.StatusOK {
		t.Fatalf("alice's first turn = %d %s", r.status, r.raw)
	}
	r := f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"b"}`)
	if r.status != http.StatusTooManyRequests || !strings.Contains(r.raw, "user acme/alice") {
		t.Errorf("alice over her budget = %d %s; want 429 naming user acme/alice", r.status, r.raw)
	}
	// bob, same tenant, has only the tenant's budget.
	rb := f.do("POST", "/v1/sessions", acmeKey, "", httpapi.UserHeader, "bob")
	bid, _ := rb.body["id"].(string)
	if r := f.do("POST", "/v1/sessions/"+bid+"/messages", acmeKey, `{"content":"a"}`, httpapi.UserHeader, "bob"); r.status != http.StatusOK {
		t.Errorf("bob's turn = %d %s; want 200", r.status, r.raw)
	}
}

type usageBody struct {
	Zone     string    `json:"zone"`
	Day      string    `json:"day"`
	ResetsAt time.Time `json:"resets_at"`
	Tenant   *scope    `json:"tenant"`
	User     *scope    `json:"user"`
	Users    []scope   `json:"users"`
	Tenants  []scope   `json:"tenants"`
}

type scope struct {
	Name      string    `json:"name"`
	Tokens    int64     `json:"tokens"`
	LLMCalls  int64     `json:"llm_calls"`
	ToolCalls int64     `json:"tool_calls"`
	Budget    *int64    `json:"budget"`
	Remaining *int64    `json:"remaining"`
	ResetsAt  time.Time `json:"resets_at"`
	Days      []struct {
		Day    string `json:"day"`
		Tokens int64  `json:"tokens"`
	} `json:"days"`
}

func decodeUsage(t *testing.T, r reply) usageBody {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("usage = %d %s", r.status, r.raw)
	}
	var u usageBody
	if err := json.Unmarshal([]byte(r.raw), &u); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestUsageRoutes(t *testing.T) {
	f := newMeterFixture(t, time.UTC)
	f.setBudgets(`{"tenants": {"acme": {"daily_tokens": 1000}}, "users": {"acme/alice": {"daily_tokens": 100}}}`)
	step := agenttest.Calls("echo", `{}`)
	step.Usage = tokens(30, 10)
	f.model.Push(step, agenttest.Step{Text: "done", Usage: tokens(5, 5)})
	id := f.create(acmeKey)
	if r := f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"a"}`); r.status != http.StatusOK {
		t.Fatalf("turn = %d %s", r.status, r.raw)
	}
	f.model.Push(agenttest.Step{Text: "g", Usage: tokens(7, 0)})
	gid := f.create(globexKey)
	if r := f.do("POST", "/v1/sessions/"+gid+"/messages", globexKey, `{"content":"a"}`); r.status != http.StatusOK {
		t.Fatalf("globex turn = %d %s", r.status, r.raw)
	}
	today := f.clock.Now().UTC().Format(time.DateOnly)

	u := decodeUsage(t, f.do("GET", "/v1/usage", acmeKey, ""))
	if u.Zone != "UTC" || u.Day != today || u.Tenant == nil || u.User == nil {
		t.Fatalf("GET /v1/usage = %+v; want zone UTC, day %s, tenant and user", u, today)
	}
	if u.Tenant.Name != "acme" || u.Tenant.Tokens != 50 || u.Tenant.LLMCalls != 2 || u.Tenant.ToolCalls != 1 ||
		u.Tenant.Budget == nil || *u.Tenant.Budget != 1000 || u.Tenant.Remaining == nil || *u.Tenant.Remaining != 950 {
		t.Errorf("tenant = %+v; want acme, 50 tokens, 2 LLM calls, 1 tool call, budget 1000, remaining 950", *u.Tenant)
	}
	if len(u.Tenant.Days) != 7 || u.Tenant.Days[6].Day != today || u.Tenant.Days[6].Tokens != 50 || u.Tenant.Days[0].Tokens != 0 {
		t.Errorf("tenant days = %+v; want 7 days ending today with 50", u.Tenant.Days)
	}
	if u.User.Name != "alice" || u.User.Tokens != 50 || *u.User.Budget != 100 || *u.User.Remaining != 50 {
		t.Errorf("user = %+v; want alice, 50 tokens, budget 100, remaining 50", *u.User)
	}
	if !u.ResetsAt.Equal(u.Tenant.ResetsAt) || u.ResetsAt.Format(time.TimeOnly) != "00:00:00" {
		t.Errorf("resets_at = %v; want the next midnight UTC", u.ResetsAt)
	}
	if strings.Contains(f.do("GET", "/v1/usage", acmeKey, "").raw, "globex") {
		t.Error("acme's usage mentions globex")
	}

	// globex sees only its own: no budget, 7 tokens; its user carol has none.
	g := decodeUsage(t, f.do("GET", "/v1/usage", globexKey, "", httpapi.UserHeader, "carol"))
	if g.Tenant.Name != "globex" || g.Tenant.Tokens != 7 || g.Tenant.Budget != nil || g.Tenant.Remaining != nil || g.User.Name != "carol" || g.User.Tokens != 0 {
		t.Errorf("globex usage = tenant %+v user %+v; want globex 7 tokens, no budget; carol 0", *g.Tenant, *g.User)
	}
	if strings.Contains(f.do("GET", "/v1/usage", globexKey, "").raw, "acme") {
		t.Error("globex's usage mentions acme")
	}
	// No user header: the tenant only.
	if n := decodeUsage(t, f.do("GET", "/v1/usage", acmeKey, "", httpapi.UserHeader, "")); n.User != nil {
		t.Errorf("usage without X-Agentd-User has a user: %+v", n.User)
	}

	// Admin routes: not for user keys.
	for _, key := range []string{acmeKey, globexKey} {
		if r := f.do("GET", "/v1/admin/usage?tenant=acme", key, ""); r.status != http.StatusForbidden || errCode(r) != httpapi.CodeForbidden {
			t.Errorf("admin usage with a user key = %d %s; want 403", r.status, r.raw)
		}
	}
	if r := f.do("GET", "/v1/admin/usage?tenant=acme", "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("admin usage without a key = %d; want 401", r.status)
	}
	a := decodeUsage(t, f.do("GET", "/v1/admin/usage?tenant=acme", opsKey, ""))
	if a.Tenant == nil || a.Tenant.Name != "acme" || a.Tenant.Tokens != 50 || len(a.Users) != 1 || a.Users[0].Name != "alice" || a.Users[0].Tokens != 50 || len(a.Users[0].Days) != 7 {
		t.Errorf("admin usage of acme = %+v; want acme 50 with user alice 50 and 7 days", a)
	}
	all := decodeUsage(t, f.do("GET", "/v1/admin/usage", opsKey, ""))
	if len(all.Tenants) != 2 || all.Tenants[0].Name != "acme" || all.Tenants[1].Name != "globex" || all.Tenants[1].Tokens != 7 {
		t.Errorf("admin usage of every tenant = %+v; want acme and globex", all.Tenants)
	}
	if r := f.do("GET", "/v1/admin/usage?tenant=no%20such", opsKey, ""); r.status != http.StatusBadRequest || errCode(r) != httpapi.CodeInvalidRequest {
		t.Errorf("admin usage of a malformed tenant = %d %s; want 400 invalid_request", r.status, r.raw)
	}
}

func TestUsageWithoutMeter(t *testing.T) {
	f := newFixture(t)
	if r := f.do("GET", "/v1/usage", acmeKey, ""); r.status != http.StatusNotFound || errCode(r) != httpapi.CodeNotFound {
		t.Errorf("GET /v1/usage without a meter = %d %s; want 404 not_found", r.status, r.raw)
	}
}
