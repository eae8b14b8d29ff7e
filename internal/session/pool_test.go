package session_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

// harness is a pool over a real bbolt file in a temp dir.
type harness struct {
	t     *testing.T
	dir   string
	db    *boltdb.DB
	model *agenttest.Model
	tools []agent.Tool
	cfg   session.Config
	agent agent.Config // of the pool's agent
	pool  *session.Pool
	clock *clock
	// wrap, if set, stands between the pool and the store (to stall or
	// fail its calls).
	wrap func(session.Store) session.Store
}

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

func newHarness(t *testing.T, cfg session.Config, steps ...agenttest.Step) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, nil, steps...)
}

func newHarnessWith(t *testing.T, cfg session.Config, wrap func(session.Store) session.Store, steps ...agenttest.Step) *harness {
	t.Helper()
	h := &harness{wrap: wrap, t: t, dir: t.TempDir(), model: agenttest.NewModel(steps...), clock: &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}}
	h.tools = []agent.Tool{agenttest.NewTool("echo", func(_ context.Context, c agent.Call) (string, error) { return "echo " + string(c.Args), nil })}
	cfg.Dir = filepath.Join(h.dir, "workspaces")
	cfg.Logger = zaptest.NewLogger(t)
	if cfg.Now == nil {
		cfg.Now = h.clock.Now
	}
	h.cfg = cfg
	h.open()
	return h
}

// open starts a pool on the harness's data dir, as a restarted process would.
func (h *harness) open() {
	h.t.Helper()
	db, err := boltdb.Open(filepath.Join(h.dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.db = db
	hooks := (&sessiontest.Hooks{
		AssignFn: func(tenant, user string) (session.Assignment, error) {
			return session.Assignment{Model: "stable-model", Skills: "default", Rules: "v1", Sandbox: "workspace-write", Instructions: "AGENTAO.md"}, nil
		},
		ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return h.tools, nil, nil },
		CheckModelFn: func(m string) error {
			if m == "bad" {
				return session.ErrInvalid
			}
			return nil
		},
	}).Pool()
	var store session.Store = db.Sessions()
	if h.wrap != nil {
		store = h.wrap(store)
	}
	pool, err := session.NewPool(store, agent.New(h.model, h.agent), hooks, h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.pool = pool
	h.t.Cleanup(h.close)
}

func (h *harness) close() {
	if h.pool != nil {
		_ = h.pool.Close()
		_ = h.db.Close()
		h.pool = nil
	}
}

// restart closes the pool and the file and opens them again.
func (h *harness) restart() {
	h.close()
	h.open()
}

func (h *harness) create(tenant, user string) *session.Session {
	h.t.Helper()
	s, err := h.pool.Create(h.t.Context(), tenant, user, "")
	if err != nil {
		h.t.Fatalf("Create: %v", err)
	}
	return s
}

func TestTurnIsPersistedAndSurvivesRestart(t *testing.T) {
	h := newHarness(t, session.Config{}, agenttest.Calls("echo", `{"a":1}`), agenttest.Reply("first answer"), agenttest.Reply("second answer"))
	s := h.create("acme", "alice")
	if s.Assignment.Model != "stable-model" || s.Model != "stable-model" {
		t.Errorf("new session model = %q, assignment %+v; want the assigned stable model", s.Model, s.Assignment)
	}
	if fi, err := os.Stat(h.pool.Dir("acme", s.ID)); err != nil || !fi.IsDir() {
		t.Errorf("workspace not created: %v", err)
	}
	res, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reply != "first answer" || res.Outcome.Status != agent.StatusOK || res.Turn != 1 {
		t.Errorf("Turn = %+v; want first answer, ok, turn 1", res)
	}
	h.restart()
	got, err := h.pool.Get(t.Context(), "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := agent.Validate(got.Messages); err != nil {
		t.Errorf("reloaded history invalid: %v", err)
	}
	if n := len(got.Messages); n != 4 || got.Messages[3].Content != "first answer" {
		t.Errorf("reloaded %d messages %+v; want user, tool call, tool result, answer", n, got.Messages)
	}
	if len(got.Turns) != 1 || got.Turns[0].Outcome.Status != agent.StatusOK || got.Title != "hello" {
		t.Errorf("turn records %+v, title %q; want one ok turn and title hello", got.Turns, got.Title)
	}
	res, err = h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "again"})
	if err != nil || res.Reply != "second answer" || res.Turn != 2 {
		t.Fatalf("Turn after restart = %+v, %v; want the second answer as turn 2", res, err)
	}
	reqs := h.model.Requests()
	if last := reqs[len(reqs)-1]; len(last.Messages) != 5 {
		t.Errorf("the model saw %d messages after the restart; want the 4 stored plus the new user message (no system prompt): %+v", len(last.Messages), last.Messages)
	}
}

func TestOneTurnAtATime(t *testing.T) {
	h := newHarness(t, session.Config{}, agenttest.Step{Text: "slow", Block: true})
	s := h.create("acme", "alice")
	ctx, cancel := context.WithCancelCause(t.Context())
	done := make(chan session.TurnResult)
	go func() {
		res, _ := h.pool.Turn(ctx, "acme", s.ID, session.TurnInput{Content: "first"})
		done <- res
	}()
	waitFor(t, func() bool { return len(h.model.Requests()) == 1 })
	for _, op := range []struct {
		name string
		fn   func() error
	}{
		{"second turn", func() error {
			_, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "second"})
			return err
		}},
		{"model switch", func() error { _, err := h.pool.SetModel(t.Context(), "acme", s.ID, "other"); return err }},
		{"clear", func() error { _, err := h.pool.Clear(t.Context(), "acme", s.ID); return err }},
		{"delete", func() error { return h.pool.Delete(t.Context(), "acme", s.ID) }},
	} {
		if err := op.fn(); !errors.Is(err, session.ErrBusy) {
			t.Errorf("%s during a turn = %v; want ErrBusy", op.name, err)
		}
	}
	sums, _, err := h.pool.List(t.Context(), "acme", session.ListQuery{})
	if err != nil || len(sums) != 1 || !sums[0].Running {
		t.Errorf("List during a turn = %+v, %v; want the session marked running", sums, err)
	}
	cancel(agent.Cancelled(agent.ReasonClientDisconnected))
	res := <-done
	if res.Outcome.Status != agent.StatusCancelled || res.Outcome.CancelReason != agent.ReasonClientDisconnected {
		t.Errorf("outcome = %+v; want cancelled by client-disconnected", res.Outcome)
	}
	if len(h.model.Requests()) != 1 {
		t.Errorf("model got %d calls; the busy turn must not have been queued", len(h.model.Requests()))
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t, session.Config{}, agenttest.Step{Block: true})
	s := h.create("acme", "alice")
	if ok, err := h.pool.Cancel(t.Context(), "acme", s.ID, agent.ReasonUserCancel); ok || err != nil {
		t.Errorf("Cancel with no turn = %v, %v; want false, nil", ok, err)
	}
	done := make(chan session.TurnResult)
	go func() {
		res, _ := h.pool.Turn(context.Background(), "acme", s.ID, session.TurnInput{Content: "x"})
		done <- res
	}()
	waitFor(t, func() bool { return len(h.model.Requests()) == 1 })
	if ok, err := h.pool.Cancel(t.Context(), "acme", s.ID, agent.ReasonUserCancel); !ok || err != nil {
		t.Errorf("Cancel = %v, %v; want true, nil", ok, err)
	}
	res := <-done
	if res.Reply != "[Cancelled: user-cancel]" || res.Outcome.CancelReason != agent.ReasonUserCancel {
		t.Errorf("result = %+v; want the user-cancel sentinel", res)
	}
	got, _ := h.pool.Get(t.Context(), "acme", s.ID)
	if len(got.Turns) != 1 || got.Turns[0].Outcome.Status != agent.StatusCancelled || got.InFlight != nil {
		t.Errorf("recorded turns %+v, in flight %v; want one cancelled turn", got.Turns, got.InFlight)
	}
}

func TestTurnTimeout(t *testing.T) {
	h := newHarness(t, session.Config{TurnTimeout: 30 * time.Millisecond, Now: time.Now}, agenttest.Step{Block: true})
	s := h.create("acme", "alice")
	res, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "x"})
	if err != nil || res.Outcome.CancelReason != agent.ReasonTimeout {
		t.Errorf("Turn = %+v, %v; want cancelled with reason timeout", res, err)
	}
}

func TestModelSwitchKeepsHistoryAndClearEmptiesIt(t *testing.T) {
	h := newHarness(t, session.Config{}, agenttest.Reply("one"), agenttest.Reply("two"))
	s := h.create("acme", "alice")
	if _, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.SetModel(t.Context(), "acme", s.ID, "bad"); !errors.Is(err, session.ErrInvalid) {
		t.Errorf("SetModel(bad) = %v; want ErrInvalid", err)
	}
	got, err := h.pool.SetModel(t.Context(), "acme", s.ID, "bigger")
	if err != nil || got.Model != "bigger" || len(got.Messages) != 2 {
		t.Fatalf("SetModel = %+v, %v; want model bigger with the 2 messages kept", got, err)
	}
	if _, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "again"}); err != nil {
		t.Fatal(err)
	}
	reqs := h.model.Requests()
	if reqs[1].Model != "bigger" || len(reqs[1].Messages) != 3 {
		t.Errorf("second call model %q with %d messages; want bigger with history", reqs[1].Model, len(reqs[1].Messages))
	}
	h.restart()
	got, err = h.pool.Clear(t.Context(), "acme", s.ID)
	if err != nil || len(got.Messages) != 0 || got.Model != "bigger" || len(got.Turns) != 2 {
		t.Errorf("Clear = %+v, %v; want no messages, model and turn records kept", got, err)
	}
	h.restart()
	got, _ = h.pool.Get(t.Context(), "acme", s.ID)
	if len(got.Messages) != 0 || got.Model != "bigger" {
		t.Errorf("after restart: %d messages, model %q; the clear and switch must be durable", len(got.Messages), got.Model)
	}
}

func TestTenantIsolationAndBadIDs(t *testing.T) {
	h := newHarness(t, session.Config{})
	s := h.create("acme", "alice")
	for _, tc := range []struct{ tenant, id string }{
		{"globex", string(s.ID)},
		{"acme", "sess_" + strings.Repeat("0", 32)},
		{"acme", "../../etc"},
		{"acme", ""},
		{"../acme", string(s.ID)},
	} {
		if _, err := h.pool.Get(t.Context(), tc.tenant, session.ID(tc.id)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Get(%q, %q) = %v; want ErrNotFound", tc.tenant, tc.id, err)
		}
		if err := h.pool.Delete(t.Context(), tc.tenant, session.ID(tc.id)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Delete(%q, %q) = %v; want ErrNotFound", tc.tenant, tc.id, err)
		}
	}
	sums, _, _ := h.pool.List(t.Context(), "globex", session.ListQuery{})
	if len(sums) != 0 {
		t.Errorf("globex lists %d sessions of acme", len(sums))
	}
}

func TestDelete(t *testing.T) {
	h := newHarness(t, session.Config{})
	s := h.create("acme", "alice")
	if err := h.pool.Delete(t.Context(), "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.pool.Dir("acme", s.ID)); !os.IsNotExist(err) {
		t.Errorf("workspace still there: %v", err)
	}
	h.restart()
	if _, err := h.pool.Get(t.Context(), "acme", s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after delete and restart = %v; want ErrNotFound", err)
	}
}

// gatedStore stalls Delete until release is closed, or fails it.
type gatedStore struct {
	session.Store
	reached chan struct{}
	release chan struct{}
	fail    error
}

func (g *gatedStore) Delete(ctx context.Context, tenant string, id session.ID) error {
	close(g.reached)
	<-g.release
	if g.fail != nil {
		return g.fail
	}
	return g.Store.Delete(ctx, tenant, id)
}

// TestDeleteIsFinal: while a delete is committing, the session is gone for
// every other call (a racing turn gets ErrNotFound instead of loading the
// still-stored session and saving it back), and stays gone, also after a
// restart. A delete the store refuses leaves the session usable.
func TestDeleteIsFinal(t *testing.T) {
	for _, fail := range []error{nil, errors.New("disk on fire")} {
		t.Run(fmt.Sprint("store error ", fail), func(t *testing.T) {
			gate := &gatedStore{reached: make(chan struct{}), release: make(chan struct{}), fail: fail}
			h := newHarnessWith(t, session.Config{}, func(st session.Store) session.Store { gate.Store = st; return gate },
				agenttest.Reply("one"), agenttest.Reply("two"))
			s := h.create("acme", "alice")
			deleted := make(chan error, 1)
			go func() { deleted <- h.pool.Delete(context.Background(), "acme", s.ID) }()
			<-gate.reached
			if _, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "racing"}); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("turn during the delete = %v; want ErrNotFound", err)
			}
			if _, err := h.pool.Get(t.Context(), "acme", s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("get during the delete = %v; want ErrNotFound", err)
			}
			close(gate.release)
			err := <-deleted
			if fail != nil {
				if err == nil {
					t.Fatal("Delete = nil although the store failed")
				}
				if _, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "still here"}); err != nil {
					t.Errorf("turn after a failed delete = %v; want the session usable", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "after"}); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("turn after the delete = %v; want ErrNotFound", err)
			}
			h.restart()
			if _, err := h.pool.Get(t.Context(), "acme", s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("get after a restart = %v; want ErrNotFound", err)
			}
			if _, err := os.Stat(h.pool.Dir("acme", s.ID)); !os.IsNotExist(err) {
				t.Errorf("workspace after the delete: %v", err)
			}
		})
	}
}

func TestEvictionReloadsTransparently(t *testing.T) {
	h := newHarness(t, session.Config{MaxLive: 2, TTL: time.Hour}, agenttest.Reply("a"), agenttest.Reply("b"))
	first := h.create("acme", "u1")
	if _, err := h.pool.Turn(t.Context(), "acme", first.ID, session.TurnInput{Content: "remember me"}); err != nil {
		t.Fatal(err)
	}
	h.create("acme", "u2")
	h.create("acme", "u3")
	if n, _ := h.pool.Live(); n != 2 {
		t.Errorf("live sessions = %d; want the cap of 2", n)
	}
	got, err := h.pool.Get(t.Context(), "acme", first.ID) // evicted as least recently used
	if err != nil || len(got.Messages) != 2 {
		t.Fatalf("Get of an evicted session = %+v, %v; want it reloaded with its history", got, err)
	}
	h.clock.Add(2 * time.Hour)
	if _, err := h.pool.Turn(t.Context(), "acme", first.ID, session.TurnInput{Content: "still there?"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.pool.Live(); n != 1 {
		t.Errorf("live sessions after the TTL = %d; want only the one just used", n)
	}
}

func TestShutdownCancelsAndPersistsRunningTurns(t *testing.T) {
	h := newHarness(t, session.Config{})
	h.model.Default = func(agent.Request) agenttest.Step { return agenttest.Step{Text: "thinking...", Block: true} }
	const n = 20
	var ids []session.ID
	for range n {
		ids = append(ids, h.create("acme", "u").ID)
	}
	var wg sync.WaitGroup
	results := make([]session.TurnResult, n)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = h.pool.Turn(context.Background(), "acme", id, session.TurnInput{Content: "long job"})
		}()
	}
	waitFor(t, func() bool { _, running := h.pool.Live(); return running == n && len(h.model.Requests()) == n })
	if err := h.pool.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	wg.Wait()
	for i, r := range results {
		if r.Outcome.CancelReason != agent.ReasonShutdown {
			t.Errorf("turn %d outcome %+v; want cancelled by shutdown", i, r.Outcome)
		}
	}
	if _, err := h.pool.Create(t.Context(), "acme", "u", ""); !errors.Is(err, session.ErrShuttingDown) {
		t.Errorf("Create after shutdown = %v; want ErrShuttingDown", err)
	}
	if _, err := h.pool.Turn(t.Context(), "acme", ids[0], session.TurnInput{Content: "x"}); !errors.Is(err, session.ErrShuttingDown) {
		t.Errorf("Turn after shutdown = %v; want ErrShuttingDown", err)
	}
	h.restart()
	for _, id := range ids {
		s, err := h.pool.Get(t.Context(), "acme", id)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Turns) != 1 || s.Turns[0].Outcome.Status != agent.StatusCancelled || agent.Validate(s.Messages) != nil {
			t.Errorf("session %s after restart: turns %+v; want one cancelled turn with a valid history", id, s.Turns)
		}
		if last := s.Messages[len(s.Messages)-1]; last.Content != "[Cancelled: shutdown]" {
			t.Errorf("last message %q; want the shutdown sentinel", last.Content)
		}
	}
}

// TestCrashMidTurn simulates kill -9 while a tool runs: the checkpoint
// written after the LLM step is what a restarted process finds.
func TestCrashMidTurn(t *testing.T) {
	h := newHarness(t, session.Config{}, agenttest.Calls("echo", `{"slow":true}`), agenttest.Reply("after restart"))
	release := make(chan struct{})
	started := make(chan struct{})
	h.tools = []agent.Tool{agenttest.NewTool("echo", func(ctx context.Context, c agent.Call) (string, error) {
		close(started)
		<-release
		return "late", nil
	})}
	s := h.create("acme", "alice")
	go func() { _, _ = h.pool.Turn(context.Background(), "acme", s.ID, session.TurnInput{Content: "run it"}) }()
	<-started
	// Read the file as a fresh process would, while the turn is still running.
	stored, err := h.db.Sessions().Load(t.Context(), "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.InFlight == nil || len(stored.Messages) != 3 || agent.Validate(stored.Messages) != nil {
		t.Fatalf("mid-turn checkpoint = in flight %v, messages %+v; want the call with a placeholder result", stored.InFlight, stored.Messages)
	}
	if stored.Messages[2].Content != agent.InterruptedResult {
		t.Errorf("placeholder = %q; want %q", stored.Messages[2].Content, agent.InterruptedResult)
	}
	// A second store on a copy of the file plays the restarted process.
	close(release)
	h.close()
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	mustCopy(t, filepath.Join(h.dir, "agentd.db"), copyPath)
	db2, err := boltdb.Open(copyPath, boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.Sessions().Save(t.Context(), stored, session.Mark{}); err != nil { // the file as the crash left it
		t.Fatal(err)
	}
	p2, err := session.NewPool(db2.Sessions(), agent.New(h.model, agent.Config{}), (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{}, nil },
		ToolsFn:  func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return h.tools, nil, nil },
	}).Pool(), session.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	got, err := p2.Get(t.Context(), "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.InFlight != nil || len(got.Turns) != 1 || got.Turns[0].Outcome.Status != agent.StatusError {
		t.Errorf("after the crash: in flight %v, turns %+v; want the interrupted turn recorded as an error", got.InFlight, got.Turns)
	}
	res, err := p2.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "continue"})
	if err != nil || res.Outcome.Status != agent.StatusOK {
		t.Errorf("turn after the crash = %+v, %v; want the session usable", res, err)
	}
}

func TestListPages(t *testing.T) {
	h := newHarness(t, session.Config{})
	var ids []session.ID
	for i := range 5 {
		user := "alice"
		if i%2 == 1 {
			user = "bob"
		}
		ids = append(ids, h.create("acme", user).ID)
		h.clock.Add(time.Millisecond)
	}
	h.create("globex", "alice")
	page1, next, err := h.pool.List(t.Context(), "acme", session.ListQuery{Limit: 2})
	if err != nil || len(page1) != 2 || page1[0].ID != ids[4] || page1[1].ID != ids[3] || next != ids[3] {
		t.Fatalf("page 1 = %v next %q, %v; want the two newest", page1, next, err)
	}
	page2, next, _ := h.pool.List(t.Context(), "acme", session.ListQuery{Limit: 2, Before: next})
	if len(page2) != 2 || page2[0].ID != ids[2] || page2[1].ID != ids[1] {
		t.Errorf("page 2 = %v; want the next two", page2)
	}
	page3, next, _ := h.pool.List(t.Context(), "acme", session.ListQuery{Limit: 2, Before: next})
	if len(page3) != 1 || page3[0].ID != ids[0] || next != "" {
		t.Errorf("page 3 = %v next %q; want the oldest and no cursor", page3, next)
	}
	bobs, _, _ := h.pool.List(t.Context(), "acme", session.ListQuery{User: "bob"})
	if len(bobs) != 2 {
		t.Errorf("bob's sessions = %d; want 2", len(bobs))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func mustCopy(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// failingStore fails saves on demand.
type failingStore struct {
	*boltdb.SessionStore
	fail bool
}

func (f *failingStore) Save(ctx context.Context, s *session.Session, from session.Mark) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.SessionStore.Save(ctx, s, from)
}

// TestFailedSaveChangesNothing: a change the store refuses is undone in
// memory too, so what clients read is what is on disk.
func TestFailedSaveChangesNothing(t *testing.T) {
	db, err := boltdb.Open(filepath.Join(t.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := &failingStore{SessionStore: db.Sessions()}
	pool, err := session.NewPool(st, agent.New(agenttest.NewModel(), agent.Config{}), (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{Model: "m"}, nil },
		ToolsFn:  func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return nil, nil, nil },
	}).Pool(), session.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, _ := pool.Create(t.Context(), "acme", "alice", "")
	st.fail = true
	if _, err := pool.SetModel(t.Context(), "acme", s.ID, "other"); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("SetModel with a failing store = %v", err)
	}
	if _, err := pool.Create(t.Context(), "acme", "bob", ""); err == nil {
		t.Errorf("Create with a failing store succeeded")
	}
	st.fail = false
	got, _ := pool.Get(t.Context(), "acme", s.ID)
	if got.Model != "m" {
		t.Errorf("model after a failed switch = %q; want m", got.Model)
	}
}

// TestCompactedHistoryIsStoredWhole: when compaction rewrites earlier
// turns, the store gets the whole new history, not just the turn's part,
// and a restarted process reads exactly what the pool held.
func TestCompactedHistoryIsStoredWhole(t *testing.T) {
	h := newHarness(t, session.Config{})
	h.agent = agent.Config{ContextTokens: 3000}
	h.restart()
	h.tools = []agent.Tool{agenttest.NewTool("big", func(context.Context, agent.Call) (string, error) {
		return strings.Repeat("z", 4000), nil
	})}
	summaries := 0
	h.model.Default = func(req agent.Request) agenttest.Step {
		switch last := req.Messages[len(req.Messages)-1]; {
		case req.Messages[0].Content == agent.SummaryPrompt:
			summaries++
			return agenttest.Reply("SUMMARY of the earlier turns")
		case last.Role == agent.RoleUser:
			return agenttest.Calls("big", `{}`)
		default:
			return agenttest.Reply("answer")
		}
	}
	s := h.create("acme", "alice")
	for i := range 4 {
		if _, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: fmt.Sprintf("turn %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if summaries == 0 {
		t.Fatalf("no summary was made; the test's sizes are wrong")
	}
	before, err := h.pool.Get(t.Context(), "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	h.restart()
	after, err := h.pool.Get(t.Context(), "acme", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if agent.Validate(after.Messages) != nil || !strings.Contains(after.Messages[0].Content, "SUMMARY of the earlier turns") {
		t.Fatalf("stored history after compaction = %+v", after.Messages)
	}
	if fmt.Sprint(before.Messages) != fmt.Sprint(after.Messages) {
		t.Errorf("stored history differs from the pool's:\nmemory %d messages\nstored %d messages", len(before.Messages), len(after.Messages))
	}
	if len(after.Turns) != 4 {
		t.Errorf("turn records = %d; want 4", len(after.Turns))
	}
}
