package main_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

// usageOf is GET /v1/usage (or an admin path) decoded.
type usageOf struct {
	Zone     string    `json:"zone"`
	Day      string    `json:"day"`
	ResetsAt time.Time `json:"resets_at"`
	Tenant   *struct {
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
	} `json:"tenant"`
	User *struct {
		Name   string `json:"name"`
		Tokens int64  `json:"tokens"`
	} `json:"user"`
	Users []struct {
		Name   string `json:"name"`
		Tokens int64  `json:"tokens"`
	} `json:"users"`
}

func (p *proc) usage(path, key string) usageOf {
	p.t.Helper()
	r := p.do("GET", path, key, "")
	if r.Status != http.StatusOK {
		p.t.Fatalf("GET %s = %d %s", path, r.Status, r.Raw)
	}
	var u usageOf
	if err := json.Unmarshal([]byte(r.Raw), &u); err != nil {
		p.t.Fatal(err)
	}
	return u
}

// TestBudgetOverHTTP: on the real binary, a tenant's daily token budget
// stops a turn mid-way, refuses the next with 429 and Retry-After at
// midnight in the usage zone, shows in GET /v1/usage, follows edits of
// budgets.json at the next poll, and keeps its count across a restart.
func TestBudgetOverHTTP(t *testing.T) {
	llm := llmtest.NewServer(t)
	cfg := configDir(t, "{}")
	writeFile(t, cfg, ".agentao/budgets.json", `{"tenants": {"acme": {"daily_tokens": 100}}}`)
	data := t.TempDir()
	zone, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"AGENTD_CONFIG_DIR=" + cfg, "AGENTD_USAGE_ZONE=Asia/Kolkata"}
	p := start(t, llm, data, env...)

	// The first LLM call spends the whole budget and asks for a tool: the
	// tool runs, the second call is refused.
	llm.Enqueue(llmtest.Reply{
		ToolCalls: []llmtest.ToolCall{{Name: "write_file", Arguments: `{"file_path":"a.txt","content":"hi"}`}},
		Usage:     &llmtest.Usage{PromptTokens: 80, CompletionTokens: 20},
	})
	id := p.create(acmeKey)
	r := p.turn(acmeKey, id, "write a file")
	if r.Status != http.StatusOK || outcome(r)["status"] != "error" || outcome(r)["incomplete_reason"] != "budget_exceeded" {
		t.Fatalf("turn over budget = %d %s; want 200 with outcome error/budget_exceeded", r.Status, r.Raw)
	}
	if reply, _ := r.Body["reply"].(string); !strings.HasPrefix(reply, "[Stopped: the daily token budget of tenant acme is spent (100 of 100 tokens)") {
		t.Errorf("reply = %q", reply)
	}
	if n := llm.Calls(); n != 1 {
		t.Errorf("LLM calls = %d; want 1", n)
	}
	msgs := p.messages(acmeKey, id)
	if len(msgs) != 4 || msgs[2].Role != "tool" || msgs[3].Role != "assistant" {
		t.Errorf("history = %+v; want user, assistant with the call, its result, the stop", msgs)
	}

	// The next turn: 429 budget_exceeded, Retry-After at midnight in Kolkata.
	req, _ := httpRequest("POST", p.url+"/v1/sessions/"+id+"/messages", `{"content":"again"}`)
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	now := time.Now().In(zone)
	midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, zone)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), `"code":"budget_exceeded"`) {
		t.Fatalf("next turn = %d %s; want 429 budget_exceeded", resp.StatusCode, body)
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if want := int(math.Ceil(time.Until(midnight).Seconds())); err != nil || ra < want-60 || ra > want+60 {
		t.Errorf("Retry-After = %q; want about %d (seconds to %v)", resp.Header.Get("Retry-After"), want, midnight)
	}
	if n := llm.Calls(); n != 1 {
		t.Errorf("LLM calls after the refused turn = %d; want still 1", n)
	}

	u := p.usage("/v1/usage", acmeKey)
	if u.Zone != "Asia/Kolkata" || !u.ResetsAt.Equal(midnight) || u.Tenant == nil || u.Tenant.Tokens != 100 || u.Tenant.LLMCalls != 1 ||
		u.Tenant.ToolCalls != 1 || u.Tenant.Budget == nil || *u.Tenant.Budget != 100 || *u.Tenant.Remaining != 0 || len(u.Tenant.Days) != 7 {
		t.Errorf("GET /v1/usage = %+v tenant %+v; want Asia/Kolkata, 100 of 100 tokens, 1 LLM call, 1 tool call, resets %v", u, u.Tenant, midnight)
	}
	if u.User == nil || u.User.Name != "alice" || u.User.Tokens != 100 {
		t.Errorf("user = %+v; want alice with 100 tokens", u.User)
	}
	g := p.do("GET", "/v1/usage", globexKey, "")
	if g.Status != http.StatusOK || strings.Contains(g.Raw, "acme") || !strings.Contains(g.Raw, `"tokens":0`) {
		t.Errorf("globex's usage = %d %s; want its own zero, nothing of acme", g.Status, g.Raw)
	}
	if r := p.do("GET", "/v1/admin/usage?tenant=acme", acmeKey, ""); r.Status != http.StatusForbidden {
		t.Errorf("admin usage with a user key = %d; want 403", r.Status)
	}
	if a := p.usage("/v1/admin/usage?tenant=acme", opsKey); a.Tenant.Tokens != 100 || len(a.Users) != 1 || a.Users[0].Name != "alice" {
		t.Errorf("admin usage of acme = %+v %+v; want 100 tokens, user alice", a.Tenant, a.Users)
	}

	// An invalid edit keeps the budget and is a refused part.
	writeFile(t, cfg, ".agentao/budgets.json", `{"tenants": {"acme": {"daily_tokens": -1}}}`)
	waitUntil(t, "budgets.json refused", func() bool {
		return strings.Contains(p.do("GET", "/v1/admin/canary", opsKey, "").Raw, `"budgets.json"`)
	})
	if r := p.turn(acmeKey, id, "still refused?"); r.Status != http.StatusTooManyRequests {
		t.Errorf("turn after an invalid edit = %d; want 429 (the last good budgets serve)", r.Status)
	}
	// A raised budget applies at the next poll.
	writeFile(t, cfg, ".agentao/budgets.json", `{"tenants": {"acme": {"daily_tokens": 1000}}}`)
	llm.Enqueue(llmtest.Reply{Text: "served", Usage: &llmtest.Usage{PromptTokens: 5, CompletionTokens: 5}})
	waitUntil(t, "the raised budget", func() bool {
		r := p.turn(acmeKey, id, "now?")
		return r.Status == http.StatusOK && r.Body["reply"] == "served"
	})

	// A restart keeps the day's count.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit = %d", code)
	}
	p = start(t, llm, data, env...)
	if u := p.usage("/v1/usage", acmeKey); u.Tenant.Tokens != 110 || *u.Tenant.Remaining != 890 {
		t.Errorf("after a restart tenant = %+v; want 110 tokens, 890 remaining", u.Tenant)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFleetBudget: in a fleet of three real replicas a tenant's budget
// counts its use on every replica: spent 70 on one and 40 on another, its
// session on the third (which spent nothing itself) is refused with 429,
// and GET /v1/usage on any replica shows the fleet's 110.
func TestFleetBudget(t *testing.T) {
	llm := llmtest.NewServer(t)
	ms := startFleet(t, llm, 3, "{}", nil)
	for _, m := range ms {
		writeFile(t, m.dir, ".agentao/budgets.json", `{"tenants": {"acme": {"daily_tokens": 100}}}`)
	}
	tokens := func(m *member) int64 {
		u := m.p.usage("/v1/usage", acmeKey)
		if u.Tenant == nil || u.Tenant.Budget == nil {
			return -1 // budgets.json not served yet
		}
		return u.Tenant.Tokens
	}
	waitLong(t, "budgets.json served everywhere", func() bool {
		for _, m := range ms {
			if tokens(m) != 0 {
				return false
			}
		}
		return true
	})
	spend := func(m *member, n int) {
		t.Helper()
		llm.Enqueue(llmtest.Reply{Text: "ok", Usage: &llmtest.Usage{PromptTokens: n}})
		id := m.p.create(acmeKey)
		if r := m.p.turn(acmeKey, id, "hello"); r.Status != http.StatusOK || outcome(r)["status"] != "ok" {
			t.Fatalf("turn on %s = %d %s", m.name, r.Status, r.Raw)
		}
	}
	spend(ms[0], 70)
	waitLong(t, ms[1].name+" counts what "+ms[0].name+" spent", func() bool { return tokens(ms[1]) == 70 })
	spend(ms[1], 40) // 70 of 100 when it starts: it runs, and the fleet is at 110
	for _, m := range ms {
		waitLong(t, m.name+" shows the fleet's use", func() bool { return tokens(m) == 110 })
	}
	// The shares travel on the cluster channel: a tenant's key reads none.
	if r := ms[0].p.do("GET", "/cluster/v1/usage", acmeKey, ""); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /cluster/v1/usage with a tenant's key = %d %s; want 401", r.Status, r.Raw)
	}
	// ms[2] spent nothing itself; the fleet's use refuses its turn.
	r := ms[2].p.turn(acmeKey, ms[2].p.create(acmeKey), "again")
	if r.Status != http.StatusTooManyRequests || !strings.Contains(r.Raw, "110 of 100 tokens") {
		t.Errorf("a turn on %s = %d %s; want 429 with the fleet's 110 of 100", ms[2].name, r.Status, r.Raw)
	}
}
