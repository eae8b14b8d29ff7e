package probe_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/probe"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
)

// harness is a real pool (real agent, bbolt in a temp dir) over a fake
// model that answers with what its session runs: the model id and the
// instructions file, which the system prompt carries.
type harness struct {
	t     *testing.T
	dir   string
	db    *boltdb.DB
	pool  *session.Pool
	model *agenttest.Model
	clock *clock
	logs  *observer.ObservedLogs

	observed atomic.Int32 // turns the pool's observer saw
	metered  atomic.Int32 // Admit and Called calls the meter saw

	mu      sync.Mutex
	cfg     probe.Config
	cohorts []control.Cohort
	leader  bool
	answer  func(req agent.Request) agenttest.Step // nil: the default
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

type meter struct{ n *atomic.Int32 }

func (m meter) Admit(session.Summary) error           { m.n.Add(1); return nil }
func (m meter) Called(session.Summary, agent.LLMCall) { m.n.Add(1) }

func stableA(model, instructions string) session.Assignment {
	return session.Assignment{Model: model, Skills: "default", Rules: "v1", Sandbox: "workspace-write", Instructions: instructions, ConfigVersion: 1}
}

func variant(dim, name string, a session.Assignment) control.Cohort {
	a.Variants = map[string]string{dim: name}
	return control.Cohort{Dimension: dim, Variant: name, Assignment: a}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}, leader: true}
	h.cfg = probe.Config{Every: probe.Duration(time.Hour), Timeout: probe.Duration(time.Minute), Prompts: []probe.Prompt{
		{Name: "capital", Content: "What is the capital of France?"},
		{Name: "sum", Content: "What is 2+2?"},
	}}
	h.cohorts = []control.Cohort{
		{Variant: "stable", Assignment: stableA("m-stable", "AGENTAO.md")},
		variant("model", "beta", stableA("m-beta", "AGENTAO.md")),
	}
	h.open()
	return h
}

// open opens the store and a pool on the harness's data dir, as a
// (re)started process does.
func (h *harness) open() {
	h.t.Helper()
	db, err := boltdb.Open(filepath.Join(h.dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	h.model = agenttest.NewModel()
	h.model.Default = func(req agent.Request) agenttest.Step {
		h.mu.Lock()
		answer := h.answer
		h.mu.Unlock()
		if answer != nil {
			return answer(req)
		}
		return agenttest.Reply(defaultAnswer(req))
	}
	fake := &sessiontest.Hooks{
		SystemPromptFn: func(s *session.Session, _ string) (string, error) {
			return "instructions: " + s.Assignment.Instructions, nil
		},
		ObserveFn: func(session.Summary, session.TurnRecord) { h.observed.Add(1) },
	}
	hooks := fake.Pool()
	hooks.Meter = meter{&h.metered}
	pool, err := session.NewPool(db.Sessions(), agent.New(h.model, agent.Config{}), hooks, session.Config{
		Dir: filepath.Join(h.dir, "workspaces"), Logger: zaptest.NewLogger(h.t),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.db, h.pool = db, pool
	h.t.Cleanup(h.close)
}

func (h *harness) close() {
	if h.pool != nil {
		_ = h.pool.Close()
		_ = h.db.Close()
		h.pool = nil
	}
}

// defaultAnswer: "<model> (<instructions>): <the question>".
func defaultAnswer(req agent.Request) string {
	system, question := "", ""
	for _, m := range req.Messages {
		switch m.Role {
		case agent.RoleSystem:
			system = strings.TrimPrefix(m.Content, "instructions: ")
		case agent.RoleUser:
			question = agent.StripReminders(m.Content) // the date the agent adds
		}
	}
	return fmt.Sprintf("%s (%s): the answer to %q\nis in line two.", req.Model, system, question)
}

// prober builds a Prober over the harness, with a scheduler tick of tick.
func (h *harness) prober(tick time.Duration) *probe.Prober {
	h.t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	h.logs = logs
	p, err := probe.New(h.t.Context(), probe.Options{
		Pool: h.pool, Store: h.db.Probes(), Tick: tick, Now: h.clock.Now, Logger: zap.New(core),
		Config: func() probe.Config { h.mu.Lock(); defer h.mu.Unlock(); return h.cfg },
		Cohorts: func() []control.Cohort {
			h.mu.Lock()
			defer h.mu.Unlock()
			return append([]control.Cohort(nil), h.cohorts...)
		},
		IsLeader: func() bool { h.mu.Lock(); defer h.mu.Unlock(); return h.leader },
	})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = p.Close() })
	return p
}

func (h *harness) set(fn func(h *harness)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h)
}

func (h *harness) run(p *probe.Prober) probe.Run {
	h.t.Helper()
	r, err := p.RunOnce(h.t.Context(), probe.TriggerManual)
	if err != nil {
		h.t.Fatalf("RunOnce: %v", err)
	}
	return r
}

func (h *harness) storedRuns() []probe.Run {
	h.t.Helper()
	runs, err := h.db.Probes().Runs(context.Background(), 100)
	if err != nil {
		h.t.Fatal(err)
	}
	return runs
}

// result finds a result by prompt and cohort ("stable", "model/beta").
func result(t *testing.T, r probe.Run, prompt, cohort string) probe.Result {
	t.Helper()
	for _, res := range r.Results {
		if res.Prompt == prompt && res.Cohort() == cohort {
			return res
		}
	}
	t.Fatalf("run %d has no result for %s %s: %+v", r.ID, prompt, cohort, r.Results)
	return probe.Result{}
}

func changed(d *probe.Diff) string {
	switch {
	case d == nil:
		return "none"
	case d.Changed:
		return "changed"
	default:
		return "same"
	}
}

func TestRunReportsChangedOutputs(t *testing.T) {
	h := newHarness(t)
	p := h.prober(time.Hour)

	// Run 1: nothing before it; the model variant answers differently
	// from stable.
	r1 := h.run(p)
	if r1.ID != 1 || r1.Trigger != probe.TriggerManual || len(r1.Results) != 4 || r1.ConfigVersion != 1 {
		t.Fatalf("run 1 = id %d trigger %q version %d with %d results; want 1, manual, 1, 4", r1.ID, r1.Trigger, r1.ConfigVersion, len(r1.Results))
	}
	st := result(t, r1, "capital", "stable")
	if st.Output != `m-stable (AGENTAO.md): the answer to "What is the capital of France?"`+"\nis in line two." || !st.Outcome.IsAnswer() || st.Model != "m-stable" {
		t.Errorf("stable output %q outcome %+v model %q", st.Output, st.Outcome, st.Model)
	}
	if st.VsPrevious != nil || st.VsStable != nil {
		t.Errorf("stable in run 1: vs previous %s, vs stable %s; want none, none", changed(st.VsPrevious), changed(st.VsStable))
	}
	beta := result(t, r1, "capital", "model/beta")
	if beta.VsPrevious != nil || changed(beta.VsStable) != "changed" {
		t.Errorf("beta in run 1: vs previous %s, vs stable %s; want none, changed", changed(beta.VsPrevious), changed(beta.VsStable))
	}
	wantDiff := "--- capital stable\n+++ capital model/beta\n@@ -1,2 +1,2 @@\n" +
		`-m-stable (AGENTAO.md): the answer to "What is the capital of France?"` + "\n" +
		`+m-beta (AGENTAO.md): the answer to "What is the capital of France?"` + "\n" +
		" is in line two.\n"
	if beta.VsStable.Text != wantDiff {
		t.Errorf("beta vs stable diff:\n%s\nwant:\n%s", beta.VsStable.Text, wantDiff)
	}
	if r1.Changed != 2 { // beta, for each prompt
		t.Errorf("run 1 changed = %d; want 2", r1.Changed)
	}

	// Run 2: the same answers (trailing spaces do not count).
	h.set(func(h *harness) {
		h.answer = func(req agent.Request) agenttest.Step {
			return agenttest.Reply(strings.ReplaceAll(defaultAnswer(req), "\n", "  \n") + "\n\n")
		}
	})
	r2 := h.run(p)
	for _, res := range r2.Results {
		if changed(res.VsPrevious) != "same" || res.VsPrevious.Against != 1 {
			t.Errorf("run 2 %s vs previous: %s against run %d; want same against run 1", res.Key(), changed(res.VsPrevious), res.VsPrevious.Against)
		}
	}

	// Run 3: the beta variant now points at another model (a canary.json
	// edit); stable stays.
	h.set(func(h *harness) {
		h.answer = nil
		h.cohorts[1] = variant("model", "beta", stableA("m-beta-2", "AGENTAO.md"))
	})
	r3 := h.run(p)
	for _, prompt := range []string{"capital", "sum"} {
		if s := result(t, r3, prompt, "stable"); changed(s.VsPrevious) != "same" {
			t.Errorf("run 3 %s stable vs previous: %s; want same", prompt, changed(s.VsPrevious))
		}
		b := result(t, r3, prompt, "model/beta")
		if changed(b.VsPrevious) != "changed" || changed(b.VsStable) != "changed" || b.VsPrevious.Against != 2 {
			t.Errorf("run 3 %s beta: vs previous %s (against %d), vs stable %s; want changed against 2, changed",
				prompt, changed(b.VsPrevious), b.VsPrevious.Against, changed(b.VsStable))
		}
		if !strings.Contains(b.VsPrevious.Text, "-m-beta (AGENTAO.md)") || !strings.Contains(b.VsPrevious.Text, "+m-beta-2 (AGENTAO.md)") {
			t.Errorf("run 3 %s beta diff vs previous:\n%s", prompt, b.VsPrevious.Text)
		}
	}
	// A warn line per changed output, naming the probe and the cohort.
	warned := h.logs.FilterMessageSnippet("probe output changed").FilterField(zap.Int("run", 3)).All()
	if len(warned) != 2 {
		t.Fatalf("run 3 warned %d times; want 2 (beta, per prompt): %v", len(warned), warned)
	}
	if f := warned[0].ContextMap(); f["cohort"] != "model/beta" || f["changed_vs_previous"] != true || f["previous_run"] != int64(2) || warned[0].Level != zap.WarnLevel {
		t.Errorf("warn line %v %v", warned[0].Level, f)
	}

	// States: the newest run's verdicts, for agentd_probe_changed.
	states := p.States()
	if len(states) != 4 {
		t.Fatalf("States() = %+v; want 4", states)
	}
	for _, s := range states {
		wantChanged := s.Variant == "beta"
		if s.ChangedVsPrevious != wantChanged || s.ChangedVsStable != wantChanged || !s.LastRun.Equal(r3.FinishedAt) {
			t.Errorf("state %+v; want changed %v at %v", s, wantChanged, r3.FinishedAt)
		}
		if s.Variant == "stable" && s.Dimension != "stable" {
			t.Errorf("stable state %+v; want dimension stable", s)
		}
	}

	// An instructions variant is compared with stable the same way.
	h.set(func(h *harness) {
		h.cohorts = append(h.cohorts, variant("instructions", "v2", stableA("m-stable", "instructions/v2.md")))
	})
	r4 := h.run(p)
	v2 := result(t, r4, "sum", "instructions/v2")
	if v2.VsPrevious != nil || changed(v2.VsStable) != "changed" || !strings.Contains(v2.VsStable.Text, "+m-stable (instructions/v2.md)") {
		t.Errorf("new variant: vs previous %s, vs stable %s:\n%s", changed(v2.VsPrevious), changed(v2.VsStable), v2.VsStable.Text)
	}
}

func TestOutcomeChangeIsAChange(t *testing.T) {
	h := newHarness(t)
	p := h.prober(time.Hour)
	h.run(p)
	h.set(func(h *harness) {
		h.answer = func(req agent.Request) agenttest.Step {
			if req.Model == "m-beta" {
				return agenttest.Step{Err: errors.New("the provider is down")}
			}
			return agenttest.Reply(defaultAnswer(req))
		}
	})
	r := h.run(p)
	b := result(t, r, "capital", "model/beta")
	if b.Outcome.IncompleteReason != agent.IncompleteLLMError || changed(b.VsPrevious) != "changed" || b.VsPrevious.Outcome != "ok → ok/llm_error" {
		t.Errorf("beta: outcome %+v, vs previous %+v", b.Outcome, b.VsPrevious)
	}
}

func TestProbeTenantIsNotObservedNorMeteredAndLeavesNothing(t *testing.T) {
	h := newHarness(t)
	p := h.prober(time.Hour)
	h.run(p)
	h.run(p)
	if n, m := h.observed.Load(), h.metered.Load(); n != 0 || m != 0 {
		t.Errorf("the observer saw %d probe turns and the meter %d calls; want 0 and 0", n, m)
	}
	if got := len(h.model.Requests()); got != 8 {
		t.Errorf("the model got %d requests; want 8 (2 runs × 2 prompts × 2 cohorts)", got)
	}
	sums, _, err := h.pool.List(t.Context(), session.ProbeTenant, session.ListQuery{})
	if err != nil || len(sums) != 0 {
		t.Errorf("probe sessions left: %v %v", sums, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(h.dir, "workspaces", session.ProbeTenant)); len(entries) != 0 {
		t.Errorf("probe workspaces left: %v", entries)
	}
	// An ordinary tenant's turn is still observed and metered.
	s, err := h.pool.Create(t.Context(), "acme", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Turn(t.Context(), "acme", s.ID, session.TurnInput{Content: "hi"}); err != nil {
		t.Fatal(err)
	}
	if n, m := h.observed.Load(), h.metered.Load(); n != 1 || m == 0 {
		t.Errorf("after acme's turn: observed %d, metered %d; want 1 and more than 0", n, m)
	}
}

func TestAskIsRejectedAtOnce(t *testing.T) {
	h := newHarness(t)
	h.close()
	// Rules that ask about every tool: an unattended probe turn must not
	// wait for an answer that never comes.
	db, err := boltdb.Open(filepath.Join(h.dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.model = agenttest.NewModel(agenttest.Calls("echo", `{"x":1}`), agenttest.Reply("gave up"),
		agenttest.Calls("echo", `{"x":1}`), agenttest.Reply("gave up"))
	tool := agenttest.NewTool("echo", func(context.Context, agent.Call) (string, error) { return "ran", nil })
	hooks := (&sessiontest.Hooks{
		ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return []agent.Tool{tool}, nil, nil },
		PermitFn: func(*session.Session, agent.Call, agent.ToolSpec) session.Permit {
			return session.Permit{Action: session.ActionAsk}
		},
	}).Pool()
	pool, err := session.NewPool(db.Sessions(), agent.New(h.model, agent.Config{}), hooks, session.Config{
		Dir: filepath.Join(h.dir, "workspaces"), Logger: zaptest.NewLogger(t), ApprovalTimeout: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.db, h.pool = db, pool
	t.Cleanup(h.close)
	h.set(func(h *harness) { h.cfg.Prompts = h.cfg.Prompts[:1]; h.cohorts = h.cohorts[:1] })
	r := h.run(h.prober(time.Hour))
	if got := r.Results[0]; got.Output != "gave up" || len(tool.Calls()) != 0 {
		t.Errorf("result %+v, tool ran %d times; want the model's answer after a rejection, no run", got, len(tool.Calls()))
	}
}

func TestRunsSurviveARestart(t *testing.T) {
	h := newHarness(t)
	p := h.prober(time.Hour)
	r1 := h.run(p)
	_ = p.Close()
	h.close()

	h.open()
	p = h.prober(time.Hour)
	if st := p.States(); len(st) != 4 || !st[0].LastRun.Equal(r1.FinishedAt) {
		t.Errorf("States() after a restart = %+v; want run 1's 4", st)
	}
	h.set(func(h *harness) { h.cohorts[1] = variant("model", "beta", stableA("m-beta-2", "AGENTAO.md")) })
	r2 := h.run(p)
	if r2.ID != 2 {
		t.Errorf("run after the restart has id %d; want 2", r2.ID)
	}
	if b := result(t, r2, "capital", "model/beta"); changed(b.VsPrevious) != "changed" || b.VsPrevious.Against != 1 {
		t.Errorf("beta after the restart: vs previous %+v; want changed against run 1", b.VsPrevious)
	}
	if s := result(t, r2, "capital", "stable"); changed(s.VsPrevious) != "same" {
		t.Errorf("stable after the restart: vs previous %+v; want same", s.VsPrevious)
	}
	runs, err := p.Runs(t.Context(), 10)
	if err != nil || len(runs) != 2 || runs[0].ID != 2 || runs[1].ID != 1 {
		t.Errorf("Runs(10) = %d runs %v; want 2 then 1", len(runs), err)
	}
}

func TestKeepsTheNewestRuns(t *testing.T) {
	h := newHarness(t)
	h.set(func(h *harness) { h.cfg.Prompts = h.cfg.Prompts[:1] })
	p, err := probe.New(t.Context(), probe.Options{
		Pool: h.pool, Store: h.db.Probes(), Keep: 3,
		Config:  func() probe.Config { h.mu.Lock(); defer h.mu.Unlock(); return h.cfg },
		Cohorts: func() []control.Cohort { return h.cohorts },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 5 {
		h.run(p)
	}
	var ids []int
	for _, r := range h.storedRuns() {
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[5 4 3]" {
		t.Errorf("stored runs %v; want [5 4 3]", ids)
	}
}

func TestSchedule(t *testing.T) {
	h := newHarness(t)
	start := h.clock.Now()
	p := h.prober(time.Millisecond)
	p.Start()
	// No stored run: the first one Every after start.
	if st := p.Status(); !st.Leader || st.NextRun == nil || !st.NextRun.Equal(start.Add(time.Hour)) {
		t.Fatalf("Status() = %+v; want next run at %v", st, start.Add(time.Hour))
	}
	h.clock.Add(time.Hour)
	waitFor(t, func() bool { return len(h.storedRuns()) == 1 })
	r := h.storedRuns()[0]
	if r.Trigger != probe.TriggerSchedule || !r.StartedAt.Equal(start.Add(time.Hour)) {
		t.Errorf("scheduled run %+v", r)
	}
	if st := p.Status(); st.NextRun == nil || !st.NextRun.Equal(start.Add(2*time.Hour)) {
		t.Errorf("after the run, Status() = %+v; want next at %v", st, start.Add(2*time.Hour))
	}
	h.clock.Add(time.Hour)
	waitFor(t, func() bool { return len(h.storedRuns()) == 2 })
	_ = p.Close()

	// Restarted two hours later: the newest stored run is older than
	// Every, so a run starts at once.
	h.clock.Add(2 * time.Hour)
	p = h.prober(time.Millisecond)
	p.Start()
	waitFor(t, func() bool { return len(h.storedRuns()) == 3 })
	_ = p.Close()

	// Restarted ten minutes after a run: the next one an hour after it,
	// not an hour after the start.
	last := h.storedRuns()[0].StartedAt
	h.clock.Add(10 * time.Minute)
	p = h.prober(time.Millisecond)
	if st := p.Status(); st.NextRun == nil || !st.NextRun.Equal(last.Add(time.Hour)) {
		t.Errorf("restarted 10 minutes after a run: Status() = %+v; want next at %v", st, last.Add(time.Hour))
	}
}

func TestOnlyTheLeaderRunsTheSchedule(t *testing.T) {
	h := newHarness(t)
	h.set(func(h *harness) { h.leader = false })
	p := h.prober(time.Millisecond)
	p.Start()
	h.clock.Add(3 * time.Hour)
	if st := p.Status(); st.Leader || st.NextRun != nil {
		t.Errorf("a follower's Status() = %+v; want no leader, no next run", st)
	}
	// A manual run still runs on a follower (an operator asked for it),
	// and the schedule counts from it.
	h.run(p)
	h.set(func(h *harness) { h.leader = true })
	h.clock.Add(time.Hour)
	waitFor(t, func() bool { return len(h.storedRuns()) == 2 })
	if got := h.storedRuns()[0].Trigger; got != probe.TriggerSchedule {
		t.Errorf("the new leader's run was %q; want schedule", got)
	}
}

func TestNoPromptsNoRun(t *testing.T) {
	h := newHarness(t)
	h.set(func(h *harness) { h.cfg.Prompts = nil })
	p := h.prober(time.Millisecond)
	if _, err := p.RunOnce(t.Context(), probe.TriggerManual); !errors.Is(err, probe.ErrNoPrompts) {
		t.Errorf("RunOnce without prompts = %v; want ErrNoPrompts", err)
	}
	if st := p.Status(); st.NextRun != nil {
		t.Errorf("Status() without prompts = %+v; want no next run", st)
	}
}

func TestCloseCutsARunShortAndStoresNothing(t *testing.T) {
	h := newHarness(t)
	var asked atomic.Bool
	h.set(func(h *harness) {
		h.answer = func(req agent.Request) agenttest.Step {
			asked.Store(true)
			return agenttest.Step{Block: true} // until the turn is cancelled
		}
	})
	p := h.prober(time.Hour)
	errc := make(chan error, 1)
	go func() { _, err := p.RunOnce(context.Background(), probe.TriggerManual); errc <- err }()
	waitFor(t, asked.Load)
	_ = p.Close()
	if err := <-errc; !errors.Is(err, probe.ErrClosed) {
		t.Errorf("RunOnce cut short = %v; want ErrClosed", err)
	}
	if runs := h.storedRuns(); len(runs) != 0 {
		t.Errorf("stored %d runs; want none", len(runs))
	}
	sums, _, _ := h.pool.List(t.Context(), session.ProbeTenant, session.ListQuery{})
	if len(sums) != 0 {
		t.Errorf("probe sessions left after Close: %v", sums)
	}
	if _, err := p.RunOnce(t.Context(), probe.TriggerManual); !errors.Is(err, probe.ErrClosed) {
		t.Errorf("RunOnce after Close = %v; want ErrClosed", err)
	}
}

func TestLeftoverProbeSessionsAreSwept(t *testing.T) {
	h := newHarness(t)
	// A run killed mid-way (kill -9) leaves its session in the store.
	s, err := h.pool.CreateAssigned(t.Context(), session.ProbeTenant, probe.User, h.cohorts[0].Assignment)
	if err != nil {
		t.Fatal(err)
	}
	p := h.prober(time.Hour)
	p.Start()
	waitFor(t, func() bool {
		sums, _, _ := h.pool.List(t.Context(), session.ProbeTenant, session.ListQuery{})
		return len(sums) == 0
	})
	if _, err := h.pool.Get(t.Context(), session.ProbeTenant, s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("leftover session: Get = %v; want ErrNotFound", err)
	}
}

func TestOneRunAtATime(t *testing.T) {
	h := newHarness(t)
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	h.set(func(h *harness) {
		h.answer = func(req agent.Request) agenttest.Step {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			<-release
			return agenttest.Reply(defaultAnswer(req))
		}
	})
	p := h.prober(time.Hour)
	var wg sync.WaitGroup
	ids := make(chan int, 2)
	runOnce := func() {
		r, err := p.RunOnce(context.Background(), probe.TriggerManual)
		if err != nil {
			t.Error(err)
		}
		ids <- r.ID
	}
	wg.Go(runOnce)
	waitFor(t, func() bool { return inFlight.Load() == 1 })
	// A caller that gives up waiting for the run in progress gets its
	// context's error, and no run.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.RunOnce(ctx, probe.TriggerManual); !errors.Is(err, context.Canceled) {
		t.Errorf("RunOnce(cancelled) while a run is in progress = %v; want context.Canceled", err)
	}
	wg.Go(runOnce) // waits for the first
	close(release)
	wg.Wait()
	close(ids)
	if most.Load() != 1 {
		t.Errorf("%d turns ran at once; want 1", most.Load())
	}
	if a, b := <-ids, <-ids; a+b != 3 {
		t.Errorf("run ids %d and %d; want 1 and 2", a, b)
	}
}

func TestLongOutputIsCut(t *testing.T) {
	h := newHarness(t)
	h.set(func(h *harness) {
		h.cfg.Prompts, h.cohorts = h.cfg.Prompts[:1], h.cohorts[:1]
		h.answer = func(agent.Request) agenttest.Step {
			return agenttest.Reply(strings.Repeat("é", probe.MaxOutput)) // 2 bytes each
		}
	})
	r := h.run(h.prober(time.Hour))
	if got := r.Results[0]; !got.Truncated || len(got.Output) != probe.MaxOutput || !strings.HasSuffix(got.Output, "é") {
		t.Errorf("output of %d bytes, truncated %v", len(got.Output), got.Truncated)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
