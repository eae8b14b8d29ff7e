package session_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
)

// countingMeter counts what the pool shows a Meter.
type countingMeter struct {
	mu             sync.Mutex
	admits, called int
	refuse         error
}

func (m *countingMeter) Admit(session.Summary) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.admits++
	return m.refuse
}

func (m *countingMeter) Called(session.Summary, agent.LLMCall) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.called++
}

func (m *countingMeter) counts() (int, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.admits, m.called
}

// TestProbeSessionsAreNotObserved: a session pinned with CreateAssigned
// under the probe tenant keeps its assignment, runs turns, and is seen by
// neither the observer nor the meter; an ordinary tenant's turn is seen by
// both. No API tenant can be the probe tenant.
func TestProbeSessionsAreNotObserved(t *testing.T) {
	db, err := boltdb.Open(filepath.Join(t.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := agenttest.NewModel()
	m.Default = func(agent.Request) agenttest.Step {
		return agenttest.Step{Text: "ok", Usage: agent.Usage{PromptTokens: 3, CompletionTokens: 2}}
	}
	var mu sync.Mutex
	observed := map[string]int{}
	hooks := (&sessiontest.Hooks{ObserveFn: func(s session.Summary, _ session.TurnRecord) {
		mu.Lock()
		observed[s.Tenant]++
		mu.Unlock()
	}}).Pool()
	meter := &countingMeter{}
	hooks.Meter = meter
	pool, err := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), hooks, session.Config{Dir: t.TempDir(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	ctx := t.Context()

	if _, err := pool.Create(ctx, session.ProbeTenant, "probe", ""); !errors.Is(err, session.ErrInvalid) {
		t.Fatalf("Create under the probe tenant: %v, want ErrInvalid", err)
	}
	pin := session.Assignment{Model: "m-canary", Skills: "default", Rules: "v2", Sandbox: "workspace-write", Instructions: "AGENTAO.md",
		Variants: map[string]string{"model": "canary"}}
	probe, err := pool.CreateAssigned(ctx, session.ProbeTenant, "probe", pin)
	if err != nil {
		t.Fatal(err)
	}
	if probe.Model != "m-canary" || probe.Assignment.Rules != "v2" || probe.Assignment.VariantOf(0) != "canary" {
		t.Fatalf("pinned session: model %q, assignment %+v", probe.Model, probe.Assignment)
	}
	if res, err := pool.Turn(ctx, session.ProbeTenant, probe.ID, session.TurnInput{Content: "hi", Unattended: true}); err != nil || res.Reply != "ok" {
		t.Fatalf("probe turn: %+v, %v", res, err)
	}
	if a, c := meter.counts(); a != 0 || c != 0 || observed[session.ProbeTenant] != 0 {
		t.Fatalf("the probe's turn was seen: meter admits %d calls %d, observer %v", a, c, observed)
	}

	s, err := pool.Create(ctx, "acme", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Turn(ctx, "acme", s.ID, session.TurnInput{Content: "hi"}); err != nil {
		t.Fatal(err)
	}
	// One Admit before the turn, one before its only LLM call.
	if a, c := meter.counts(); a != 2 || c != 1 {
		t.Fatalf("meter: admits %d, calls %d; want 2 and 1", a, c)
	}
	mu.Lock()
	defer mu.Unlock()
	if observed["acme"] != 1 {
		t.Fatalf("observer: %v", observed)
	}
}

// TestUnattendedTurnRejectsAsks: with nobody to answer, a call the rules
// ask about is rejected at once, not after the approval timeout.
func TestUnattendedTurnRejectsAsks(t *testing.T) {
	db, err := boltdb.Open(filepath.Join(t.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := agenttest.NewModel(agenttest.Calls("risky", `{}`), agenttest.Reply("done"))
	risky := agenttest.NewTool("risky", func(context.Context, agent.Call) (string, error) { return "risky ran", nil })
	pool, err := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), (&sessiontest.Hooks{
		ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return []agent.Tool{risky}, nil, nil },
		PermitFn: func(*session.Session, agent.Call, agent.ToolSpec) session.Permit {
			return session.Permit{Action: session.ActionAsk, Why: "ask on risky"}
		},
	}).Pool(), session.Config{Dir: t.TempDir(), ApprovalTimeout: time.Hour, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	s, err := pool.Create(t.Context(), "acme", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "go", Unattended: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(risky.Calls()) != 0 || res.Reply != "done" {
		t.Fatalf("risky ran %d times; reply %q", len(risky.Calls()), res.Reply)
	}
	got, err := pool.Get(t.Context(), "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, msg := range got.Messages {
		found = found || (msg.Role == agent.RoleTool && strings.Contains(msg.Content, "risky"))
	}
	if !found {
		t.Fatalf("no tool result tells the model the call was rejected: %+v", got.Messages)
	}
}
