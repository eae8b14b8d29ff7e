// Package probe is agentd's continuous canary probe: at a schedule, it
// sends the fixed prompts of .agentao/probes.json through stable and every
// live variant of each dimension, as the synthetic tenant
// session.ProbeTenant (which no guard, metric, budget or alert sees), keeps
// the outputs, and diffs each against the previous run of the same prompt
// and cohort and against stable's output of the same run. A changed output
// is a warn log line and agentd_probe_changed (States); a human decides:
// the probe halts nothing.
//
// A run sends its turns one after the other, each in a fresh session pinned
// to its cohort (session.Pool.CreateAssigned) and deleted afterwards, with
// Unattended set so that nobody is waited for: the probe exercises the real
// pipeline (rules, sandbox, tools, instructions) at the pace of one user.
// One run at a time: a manual run waits for a running one. A run cut short
// by Close is not stored, so a shutdown never shows up as a change.
//
// In a fleet only the leader runs on schedule (Options.IsLeader); each
// replica stores the runs it made in its own store.
package probe

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/session"
)

// Pool is what the probe needs of the session pool (*session.Pool).
type Pool interface {
	CreateAssigned(ctx context.Context, tenant, user string, a session.Assignment) (*session.Session, error)
	Turn(ctx context.Context, tenant string, id session.ID, in session.TurnInput) (session.TurnResult, error)
	Delete(ctx context.Context, tenant string, id session.ID) error
	List(ctx context.Context, tenant string, q session.ListQuery) ([]session.Summary, session.ID, error)
}

// Store keeps runs (internal/boltdb's ProbeStore).
type Store interface {
	// Append stores r as the next run, setting its ID, and keeps only the
	// newest keep runs.
	Append(ctx context.Context, r Run, keep int) (Run, error)
	// Runs returns up to limit runs, newest first.
	Runs(ctx context.Context, limit int) ([]Run, error)
}

// Options build a Prober.
type Options struct {
	Pool  Pool
	Store Store
	// Config is the served probes.json (control.File.Get). Required.
	Config func() Config
	// Cohorts are the cohorts to probe now (control.Plane.ProbeCohorts).
	Cohorts func() []control.Cohort
	// IsLeader tells whether this replica runs the schedule (a fleet's
	// leader); nil: always.
	IsLeader func() bool
	// Keep is how many runs are stored. Default 48.
	Keep int
	// Tick is how often the scheduler looks at the clock and the
	// configuration. Default 5 s.
	Tick   time.Duration
	Now    func() time.Time
	Logger *zap.Logger
}

// Defaults of Options.
const (
	DefaultKeep = 48
	DefaultTick = 5 * time.Second
	// User is the end user of the probe's sessions.
	User = "probe"
	// Triggers of a run.
	TriggerSchedule = "schedule"
	TriggerManual   = "manual"
)

// Errors callers branch on.
var (
	ErrNoPrompts = errors.New("probes.json names no prompts: there is nothing to probe")
	ErrClosed    = errors.New("the probe is stopping")
)

// Prober runs the probe. Build it with New, Start its schedule, Close it
// before the pool shuts down.
type Prober struct {
	o       Options
	log     *zap.Logger
	started time.Time

	ctx    context.Context // cancelled by Close: ends the schedule and a running run
	cancel context.CancelFunc
	sem    chan struct{} // one run at a time
	runs   sync.WaitGroup
	done   chan struct{} // closed when the schedule has stopped

	startOnce sync.Once
	closeOnce sync.Once

	mu          sync.Mutex
	closed      bool      // Close was called: no run starts
	last        *Run      // the newest stored run
	lastAttempt time.Time // the last scheduled run's start, stored or not
}

// New returns a Prober over o. It reads the newest stored run, which the
// next one is compared with and the schedule counts from.
func New(ctx context.Context, o Options) (*Prober, error) {
	if o.Pool == nil || o.Store == nil || o.Config == nil || o.Cohorts == nil {
		return nil, errors.New("probe: Pool, Store, Config and Cohorts are required")
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	if o.Tick <= 0 {
		o.Tick = DefaultTick
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	runs, err := o.Store.Runs(ctx, 1)
	if err != nil {
		return nil, fmt.Errorf("read the last probe run: %w", err)
	}
	p := &Prober{o: o, log: o.Logger.Named("probe"), started: o.Now(), sem: make(chan struct{}, 1), done: make(chan struct{})}
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if len(runs) > 0 {
		p.last = &runs[0]
	}
	return p, nil
}

// Start runs the schedule until Close: the first run one Every after start,
// or at once when the newest stored run is older than Every; then one every
// Every. Only the leader runs (Options.IsLeader), and nothing runs while
// probes.json names no prompts.
func (p *Prober) Start() {
	p.startOnce.Do(func() {
		go func() {
			defer close(p.done)
			p.sweep()
			t := time.NewTicker(p.o.Tick)
			defer t.Stop()
			for {
				p.tick()
				select {
				case <-p.ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	})
}

// Close stops the schedule and cuts a running run short (it is not
// stored), and waits for both. Call it before the pool shuts down.
func (p *Prober) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		p.startOnce.Do(func() { close(p.done) }) // never started
		<-p.done
		p.runs.Wait()
	})
	return nil
}

// Config returns the served probes.json.
func (p *Prober) Config() Config { return p.o.Config() }

// Runs returns up to n stored runs, newest first.
func (p *Prober) Runs(ctx context.Context, n int) ([]Run, error) { return p.o.Store.Runs(ctx, n) }

// States returns the newest run's verdict per prompt and cohort.
func (p *Prober) States() []State {
	p.mu.Lock()
	last := p.last
	p.mu.Unlock()
	if last == nil {
		return nil
	}
	out := make([]State, 0, len(last.Results))
	for _, r := range last.Results {
		dim := r.Dimension
		if dim == "" {
			dim = control.StableCohort // a label Prometheus shows, not an absent one
		}
		out = append(out, State{
			Probe: r.Prompt, Dimension: dim, Variant: r.Variant, LastRun: last.FinishedAt,
			ChangedVsPrevious: r.VsPrevious != nil && r.VsPrevious.Changed,
			ChangedVsStable:   r.VsStable != nil && r.VsStable.Changed,
		})
	}
	return out
}

// Status is the schedule as this replica sees it.
type Status struct {
	// Leader: this replica runs the schedule (always true outside a fleet).
	Leader bool `json:"leader"`
	// Running: a run is in progress.
	Running bool `json:"running"`
	// NextRun is when the schedule runs next; absent when probes.json
	// names no prompts or another replica leads.
	NextRun *time.Time `json:"next_run,omitempty"`
}

// Status returns the schedule's state.
func (p *Prober) Status() Status {
	st := Status{Leader: p.o.IsLeader == nil || p.o.IsLeader(), Running: len(p.sem) > 0}
	if cfg := p.o.Config(); st.Leader && len(cfg.Prompts) > 0 {
		next := p.next(cfg.Every.D()).UTC()
		if now := p.o.Now(); next.Before(now) {
			next = now.UTC() // due: at the scheduler's next tick
		}
		st.NextRun = &next
	}
	return st
}

// next is when the schedule runs next under every.
func (p *Prober) next(every time.Duration) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	from := p.started
	if p.last != nil {
		from = p.last.StartedAt
	}
	if p.lastAttempt.After(from) { // a run that failed to store waits its turn too
		from = p.lastAttempt
	}
	return from.Add(every)
}

func (p *Prober) tick() {
	cfg := p.o.Config()
	if len(cfg.Prompts) == 0 || (p.o.IsLeader != nil && !p.o.IsLeader()) {
		return
	}
	if p.o.Now().Before(p.next(cfg.Every.D())) {
		return
	}
	p.mu.Lock()
	p.lastAttempt = p.o.Now()
	p.mu.Unlock()
	if _, err := p.RunOnce(p.ctx, TriggerSchedule); err != nil && !errors.Is(err, ErrClosed) {
		p.log.Error("probe run failed", zap.Error(err))
	}
}

// sweep deletes probe sessions a run left behind when agentd was killed in
// the middle of it.
func (p *Prober) sweep() {
	select { // not while a run (a manual one, at start) has sessions of its own
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-p.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	sums, _, err := p.o.Pool.List(ctx, session.ProbeTenant, session.ListQuery{Limit: 1000})
	if err != nil {
		p.log.Warn("list leftover probe sessions", zap.Error(err))
		return
	}
	for _, s := range sums {
		if err := p.o.Pool.Delete(ctx, session.ProbeTenant, s.ID); err != nil && !errors.Is(err, session.ErrNotFound) {
			p.log.Warn("delete a leftover probe session", zap.String("session_id", string(s.ID)), zap.Error(err))
		}
	}
}

// RunOnce runs every prompt through every cohort now, after any run in
// progress, stores the run and returns it. ctx bounds only the wait for a
// run in progress: a run, once begun, is finished (or cut short by Close)
// even if the caller goes away.
func (p *Prober) RunOnce(ctx context.Context, trigger string) (Run, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return Run{}, ErrClosed
	}
	p.runs.Add(1) // under mu: never after Close's Wait began
	p.mu.Unlock()
	defer p.runs.Done()
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return Run{}, context.Cause(ctx)
	case <-p.ctx.Done():
		return Run{}, ErrClosed
	}
	defer func() { <-p.sem }()
	if p.ctx.Err() != nil {
		return Run{}, ErrClosed
	}
	cfg := p.o.Config()
	if len(cfg.Prompts) == 0 {
		return Run{}, ErrNoPrompts
	}
	cohorts := p.o.Cohorts()
	run := Run{StartedAt: p.o.Now().UTC(), Trigger: trigger}
	if len(cohorts) > 0 {
		run.ConfigVersion = cohorts[0].Assignment.ConfigVersion
	}
	for _, pr := range cfg.Prompts {
		for _, c := range cohorts {
			run.Results = append(run.Results, p.one(pr, c, cfg.Timeout.D()))
			if p.ctx.Err() != nil {
				p.log.Info("probe run cut short by shutdown: not stored", zap.String("trigger", trigger))
				return Run{}, ErrClosed
			}
		}
	}
	run.FinishedAt = p.o.Now().UTC()
	p.mu.Lock()
	prev := p.last
	p.mu.Unlock()
	p.diff(&run, prev)
	sctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	stored, err := p.o.Store.Append(sctx, run, p.o.Keep)
	if err != nil {
		return Run{}, fmt.Errorf("store the probe run: %w", err)
	}
	p.mu.Lock()
	p.last = &stored
	p.mu.Unlock()
	p.report(stored)
	return stored, nil
}

// one sends a prompt through a cohort in a fresh session, and deletes it.
func (p *Prober) one(pr Prompt, c control.Cohort, timeout time.Duration) Result {
	r := Result{Prompt: pr.Name, Dimension: c.Dimension, Variant: c.Variant, Assignment: c.Assignment, Model: c.Assignment.Model}
	began := time.Now()
	defer func() { r.Millis = time.Since(began).Milliseconds() }()
	ctx, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	s, err := p.o.Pool.CreateAssigned(ctx, session.ProbeTenant, User, c.Assignment)
	if err != nil {
		r.Error, r.Outcome = "create the session: "+err.Error(), agent.Outcome{Status: agent.StatusError}
		return r
	}
	defer func() {
		// The session goes even when the run is cut short; Delete bounds
		// its own store write.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 30*time.Second)
		defer cancel()
		if err := p.o.Pool.Delete(dctx, session.ProbeTenant, s.ID); err != nil {
			p.log.Warn("delete a probe session", zap.String("session_id", string(s.ID)), zap.Error(err))
		}
	}()
	res, err := p.o.Pool.Turn(ctx, session.ProbeTenant, s.ID, session.TurnInput{Content: pr.Content, Unattended: true})
	if err != nil {
		r.Error, r.Outcome = "turn: "+err.Error(), agent.Outcome{Status: agent.StatusError}
		return r
	}
	r.Output, r.Outcome, r.Model = res.Reply, res.Outcome, res.Model
	if len(r.Output) > MaxOutput {
		r.Output, r.Truncated = cutUTF8(r.Output, MaxOutput), true
	}
	return r
}

// diff sets each result's comparisons with prev (may be nil) and with
// stable's result of the same prompt in run.
func (p *Prober) diff(run *Run, prev *Run) {
	before := map[string]Result{}
	prevID := 0
	if prev != nil {
		prevID = prev.ID
		for _, r := range prev.Results {
			before[r.Key()] = r
		}
	}
	stable := map[string]Result{}
	for _, r := range run.Results {
		if r.Dimension == "" {
			stable[r.Prompt] = r
		}
	}
	run.Changed = 0
	for i := range run.Results {
		r := &run.Results[i]
		if was, ok := before[r.Key()]; ok {
			r.VsPrevious = compare(was, *r, prevID, fmt.Sprintf("run %d %s", prevID, r.Key()), "this run "+r.Key())
		}
		if s, ok := stable[r.Prompt]; ok && r.Dimension != "" {
			r.VsStable = compare(s, *r, 0, s.Key(), r.Key())
		}
		if r.Changed() {
			run.Changed++
		}
	}
}

// report logs the run: a warn line per changed output, an info line for
// the run.
func (p *Prober) report(run Run) {
	for i := range run.Results {
		r := &run.Results[i]
		if !r.Changed() {
			continue
		}
		fields := []zap.Field{zap.Int("run", run.ID), zap.String("probe", r.Prompt), zap.String("cohort", r.Cohort()),
			zap.String("model", r.Model), zap.String("outcome", outcomeLabel(*r))}
		if d := r.VsPrevious; d != nil && d.Changed {
			fields = append(fields, zap.Bool("changed_vs_previous", true), zap.Int("previous_run", d.Against))
		}
		if d := r.VsStable; d != nil && d.Changed {
			fields = append(fields, zap.Bool("changed_vs_stable", true))
		}
		p.log.Warn("probe output changed; see GET /v1/admin/probes", fields...)
	}
	p.log.Info("probe run", zap.Int("run", run.ID), zap.String("trigger", run.Trigger), zap.Int("results", len(run.Results)),
		zap.Int("changed", run.Changed), zap.Int("config_version", run.ConfigVersion),
		zap.String("took", run.FinishedAt.Sub(run.StartedAt).String()))
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
