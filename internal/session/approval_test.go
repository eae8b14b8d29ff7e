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

// askPool is a pool whose rules ask about the "risky" tool and deny "rm".
func askPool(t *testing.T, timeout time.Duration, steps ...agenttest.Step) (*session.Pool, *agenttest.Model, *session.Session) {
	t.Helper()
	return askPoolWith(t, timeout, nil, steps...)
}

// askPoolWith is askPool with an Approved hook.
func askPoolWith(t *testing.T, timeout time.Duration, approved func(session.Summary, string, string), steps ...agenttest.Step) (*session.Pool, *agenttest.Model, *session.Session) {
	t.Helper()
	db, err := boltdb.Open(filepath.Join(t.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := agenttest.NewModel(steps...)
	risky := agenttest.NewTool("risky", func(context.Context, agent.Call) (string, error) { return "risky ran", nil })
	rm := agenttest.NewTool("rm", func(context.Context, agent.Call) (string, error) { return "rm ran", nil })
	pool, err := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{Model: "m"}, nil },
		ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) {
			return []agent.Tool{risky, rm}, nil, nil
		},
		PermitFn: func(_ *session.Session, c agent.Call, _ agent.ToolSpec) session.Permit {
			switch c.Name {
			case "risky":
				return session.Permit{Action: session.ActionAsk, Why: "rule 2: ask on risky"}
			case "rm":
				return session.Permit{Action: session.ActionDeny, Why: "hardline"}
			}
			return session.Permit{Action: session.ActionAllow}
		},
		ApprovedFn: approved,
	}).Pool(), session.Config{Dir: t.TempDir(), ApprovalTimeout: timeout, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	s, err := pool.Create(t.Context(), "acme", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	return pool, m, s
}

func toolResults(res []agent.Message) []string {
	var out []string
	for _, m := range res {
		if m.Role == agent.RoleTool {
			out = append(out, m.Content)
		}
	}
	return out
}

func TestApprovals(t *testing.T) {
	tests := []struct {
		name     string
		decision string // "" = nobody answers
		want     string
	}{
		{"allowed once", session.AllowOnce, "risky ran"},
		{"rejected", session.RejectOnce, "Tool execution cancelled by user. The user declined to execute risky."},
		{"timed out", "", "Tool execution cancelled: nobody approved risky within 50ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var approved []string
			pool, _, s := askPoolWith(t, 50*time.Millisecond, func(sum session.Summary, tool, decision string) {
				mu.Lock()
				defer mu.Unlock()
				approved = append(approved, sum.User+" "+tool+" "+decision)
			}, agenttest.Calls("risky", `{"x":1}`), agenttest.Reply("done"))
			events := make(chan agent.Event, 100)
			done := make(chan session.TurnResult)
			go func() {
				res, _ := pool.Turn(context.Background(), "acme", s.ID, session.TurnInput{Content: "go", Emit: func(e agent.Event) { events <- e }})
				done <- res
			}()
			if tc.decision != "" {
				var ask agent.Event
				for ask = range events {
					if ask.Type == session.EventToolConfirmation {
						break
					}
				}
				callID := ask.Data.(session.ToolConfirmation).CallID
				pending, _ := pool.Pending(t.Context(), "acme", s.ID)
				if len(pending) != 1 || pending[0].CallID != callID || pending[0].Why != "rule 2: ask on risky" {
					t.Errorf("pending = %+v", pending)
				}
				if err := pool.Approve(t.Context(), "acme", s.ID, callID, "maybe"); !errors.Is(err, session.ErrInvalid) {
					t.Errorf("Approve with a bad decision = %v; want ErrInvalid", err)
				}
				if err := pool.Approve(t.Context(), "acme", s.ID, "call_nope", tc.decision); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("Approve of an unknown call = %v; want ErrNotFound", err)
				}
				if err := pool.Approve(t.Context(), "globex", s.ID, callID, tc.decision); !errors.Is(err, session.ErrNotFound) {
					t.Errorf("Approve from another tenant = %v; want ErrNotFound", err)
				}
				if err := pool.Approve(t.Context(), "acme", s.ID, callID, tc.decision); err != nil {
					t.Fatal(err)
				}
			}
			<-done
			got, _ := pool.Get(t.Context(), "acme", s.ID)
			if r := toolResults(got.Messages); len(r) != 1 || !strings.HasPrefix(r[0], tc.want) {
				t.Errorf("tool result = %q; want %q", r, tc.want)
			}
			if pending, _ := pool.Pending(t.Context(), "acme", s.ID); len(pending) != 0 {
				t.Errorf("pending after the turn = %+v", pending)
			}
			want := "alice risky " + tc.decision
			if tc.decision == "" {
				want = "alice risky timeout"
			}
			mu.Lock()
			defer mu.Unlock()
			if len(approved) != 1 || approved[0] != want {
				t.Errorf("Approved hook saw %q; want %q", approved, want)
			}
		})
	}
}

func TestAlwaysDecisionsAndDenials(t *testing.T) {
	pool, _, s := askPool(t, time.Minute,
		agenttest.Calls("risky", `{"n":1}`, "rm", `{}`), agenttest.Reply("one"),
		agenttest.Calls("risky", `{"n":2}`), agenttest.Reply("two"))
	events := make(chan agent.Event, 100)
	go func() {
		for e := range events {
			if e.Type == session.EventToolConfirmation {
				_ = pool.Approve(context.Background(), "acme", s.ID, e.Data.(session.ToolConfirmation).CallID, session.AllowAlways)
			}
		}
	}()
	emit := func(e agent.Event) { events <- e }
	res, err := pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "1", Emit: emit})
	if err != nil || res.Stats.ToolFailures != 1 {
		t.Fatalf("turn 1 = %+v, %v; want the denied rm counted as a failed call", res, err)
	}
	// The second risky call is not asked about: allow_always holds for the session.
	asked := 0
	res, _ = pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "2", Emit: func(e agent.Event) {
		if e.Type == session.EventToolConfirmation {
			asked++
		}
	}})
	close(events)
	got, _ := pool.Get(t.Context(), "acme", s.ID)
	r := toolResults(got.Messages)
	if len(r) != 3 || r[0] != "risky ran" || !strings.HasPrefix(r[1], "Tool execution denied: 'rm'") || r[2] != "risky ran" || asked != 0 {
		t.Errorf("results %q, asked %d times in turn 2; want risky allowed, rm denied, then risky allowed without asking", r, asked)
	}
}

func TestCancelWhileWaitingForApproval(t *testing.T) {
	pool, _, s := askPool(t, time.Minute, agenttest.Calls("risky", `{}`))
	done := make(chan session.TurnResult)
	go func() {
		res, _ := pool.Turn(context.Background(), "acme", s.ID, session.TurnInput{Content: "go"})
		done <- res
	}()
	waitFor(t, func() bool { p, _ := pool.Pending(t.Context(), "acme", s.ID); return len(p) == 1 })
	if ok, _ := pool.Cancel(t.Context(), "acme", s.ID, agent.ReasonUserCancel); !ok {
		t.Fatal("Cancel found no turn")
	}
	res := <-done
	if res.Outcome.Status != agent.StatusCancelled {
		t.Errorf("outcome = %+v; want cancelled", res.Outcome)
	}
}

func TestActivationReachesThePromptWithinTheTurnAndIsKept(t *testing.T) {
	dir := t.TempDir()
	db, _ := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	defer db.Close()
	m := agenttest.NewModel(agenttest.Calls("learn", `{}`), agenttest.Reply("ok"))
	hooks := (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{Model: "m"}, nil },
		ToolsFn:  func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return nil, nil, nil },
		TurnToolsFn: func(_ context.Context, _ *session.Session, h *session.Handle) []agent.Tool {
			return []agent.Tool{agenttest.NewTool("learn", func(context.Context, agent.Call) (string, error) {
				h.ActivateSkill("review")
				return "activated", nil
			})}
		},
		SystemPromptFn: func(s *session.Session, _ string) (string, error) {
			return "active: " + strings.Join(s.ActiveSkills, ","), nil
		},
	}).Pool()
	pool, _ := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), hooks, session.Config{Dir: dir})
	s, _ := pool.Create(t.Context(), "acme", "alice", "")
	if _, err := pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "x"}); err != nil {
		t.Fatal(err)
	}
	reqs := m.Requests()
	if reqs[0].Messages[0].Content != "active: " || reqs[1].Messages[0].Content != "active: review" {
		t.Errorf("system prompts = %q, %q; want the skill in the second call", reqs[0].Messages[0].Content, reqs[1].Messages[0].Content)
	}
	pool.Close()
	pool, _ = session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), hooks, session.Config{Dir: dir})
	defer pool.Close()
	got, _ := pool.Get(t.Context(), "acme", s.ID)
	if strings.Join(got.ActiveSkills, ",") != "review" {
		t.Errorf("active skills after reload = %v", got.ActiveSkills)
	}
}

// TestNoAuthorizerDenies: a pool built without an Authorizer runs no tool
// call: the safe default, as permission.Action's zero value is Deny.
func TestNoAuthorizerDenies(t *testing.T) {
	db, err := boltdb.Open(filepath.Join(t.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ran := false
	tool := agenttest.NewTool("write", func(context.Context, agent.Call) (string, error) { ran = true; return "written", nil })
	fake := &sessiontest.Hooks{ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return []agent.Tool{tool}, nil, nil }}
	m := agenttest.NewModel(agenttest.Calls("write", `{}`), agenttest.Reply("done"))
	pool, err := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), session.Hooks{Assigner: fake, Toolbox: fake},
		session.Config{Dir: t.TempDir(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := pool.Create(t.Context(), "acme", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "write it"})
	if err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Errorf("the tool ran without an Authorizer")
	}
	reqs := m.Requests()
	last := reqs[len(reqs)-1].Messages
	if got := last[len(last)-1].Content; !strings.Contains(got, "is not permitted") || res.Outcome.ToolCount != 1 {
		t.Errorf("tool result %q (tool count %d); want the call denied", got, res.Outcome.ToolCount)
	}
}
