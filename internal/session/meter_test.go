package session_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
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

// meter is a fake session.Meter: it refuses the admits listed in refuse
// (1-based) and records what it sees.
type meter struct {
	mu     sync.Mutex
	refuse map[int]bool
	admits []session.Summary
	calls  []agent.LLMCall
	sums   []session.Summary
}

func (m *meter) Admit(s session.Summary) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.admits = append(m.admits, s)
	if m.refuse[len(m.admits)] {
		return &session.BudgetError{Scope: "tenant " + s.Tenant, Used: 10, Limit: 10, Reset: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	}
	return nil
}

func (m *meter) Called(s session.Summary, c agent.LLMCall) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sums, m.calls = append(m.sums, s), append(m.calls, c)
}

func (m *meter) counts() (admits, calls int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.admits), len(m.calls)
}

// meteredPool is a pool on a real bbolt file with m as its meter and an
// "echo" tool.
func meteredPool(t *testing.T, m session.Meter, steps ...agenttest.Step) (*session.Pool, *agenttest.Model) {
	t.Helper()
	dir := t.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	model := agenttest.NewModel(steps...)
	echo := agenttest.NewTool("echo", func(_ context.Context, c agent.Call) (string, error) { return "echo " + string(c.Args), nil })
	hooks := (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) {
			return session.Assignment{Model: "stable-model"}, nil
		},
		ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return []agent.Tool{echo}, nil, nil },
	}).Pool()
	hooks.Meter = m
	pool, err := session.NewPool(db.Sessions(), agent.New(model, agent.Config{}), hooks,
		session.Config{Dir: filepath.Join(dir, "ws"), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool, model
}

func TestMeterHook(t *testing.T) {
	tcs := []struct {
		name       string
		refuse     map[int]bool
		steps      []agenttest.Step
		wantErr    bool // Turn returns ErrOverBudget
		wantStatus agent.Status
		incomplete string
		admits     int
		calls      int
		turns      int // recorded
	}{
		{name: "admitted", steps: []agenttest.Step{agenttest.Calls("echo", `{}`), {Text: "done", Usage: agent.Usage{PromptTokens: 7, CompletionTokens: 3}}},
			wantStatus: agent.StatusOK, admits: 3, calls: 2, turns: 1}, // before the turn, before each call
		{name: "refused before the turn", refuse: map[int]bool{1: true}, steps: []agenttest.Step{agenttest.Reply("never")},
			wantErr: true, admits: 1, calls: 0, turns: 0},
		{name: "refused mid-turn", refuse: map[int]bool{3: true}, steps: []agenttest.Step{agenttest.Calls("echo", `{}`), agenttest.Reply("never")},
			wantStatus: agent.StatusError, incomplete: agent.IncompleteBudgetExceeded, admits: 3, calls: 1, turns: 1},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			m := &meter{refuse: tc.refuse}
			pool, model := meteredPool(t, m, tc.steps...)
			s, err := pool.Create(t.Context(), "acme", "alice", "")
			if err != nil {
				t.Fatal(err)
			}
			res, err := pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "go"})
			if tc.wantErr {
				var be *session.BudgetError
				if !errors.Is(err, session.ErrOverBudget) || !errors.As(err, &be) || be.Scope != "tenant acme" {
					t.Fatalf("Turn = %+v, %v; want a *BudgetError wrapping ErrOverBudget", res, err)
				}
				if n := len(model.Requests()); n != 0 {
					t.Errorf("model calls = %d; want 0", n)
				}
			} else {
				if err != nil {
					t.Fatalf("Turn: %v", err)
				}
				if res.Outcome.Status != tc.wantStatus || res.Outcome.IncompleteReason != tc.incomplete {
					t.Errorf("outcome = %+v; want %s/%s", res.Outcome, tc.wantStatus, tc.incomplete)
				}
			}
			if a, c := m.counts(); a != tc.admits || c != tc.calls {
				t.Errorf("meter saw %d admits and %d calls; want %d and %d", a, c, tc.admits, tc.calls)
			}
			got, err := pool.Get(t.Context(), "acme", s.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Turns) != tc.turns {
				t.Errorf("turns recorded = %d; want %d", len(got.Turns), tc.turns)
			}
			if err := agent.Validate(got.Messages); err != nil {
				t.Errorf("history is not valid: %v", err)
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, sum := range append(m.admits, m.sums...) {
				if sum.ID != s.ID || sum.Tenant != "acme" || sum.User != "alice" || sum.Assignment.Model != "stable-model" {
					t.Errorf("meter saw summary %+v; want session %s of acme/alice on stable-model", sum, s.ID)
				}
			}
			if tc.name == "admitted" && (m.calls[1].Usage.PromptTokens != 7 || m.calls[1].Usage.CompletionTokens != 3 || m.calls[1].Model != "stable-model") {
				t.Errorf("second call = %+v; want 7+3 tokens on stable-model", m.calls[1])
			}
		})
	}
}
