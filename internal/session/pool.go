// Package session keeps the pool of live sessions, runs their turns and
// persists them.
//
// At most one turn runs per session: a second gets ErrBusy at once, never
// queued, and so do model switches, clears and deletes while a turn runs.
// Every change is saved through the Store before the call that made it
// returns; a running turn is also saved after every LLM step and tool batch,
// so an acknowledged turn survives a crash and a crashed one leaves a valid
// history. Sessions idle longer than the TTL, or beyond the live cap (least
// recently used first), leave memory and are reloaded from the Store
// transparently when used again.
//
// Cancel ends a running turn with a reason; Shutdown refuses new work,
// cancels every running turn with reason "shutdown" and waits until each has
// saved its cancelled state.
package session

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/workspace"
)

// Errors callers branch on.
var (
	ErrNotFound     = errors.New("session not found")
	ErrBusy         = errors.New("a turn is already running in this session")
	ErrShuttingDown = errors.New("agentd is shutting down")
	ErrInvalid      = errors.New("invalid request")
)

// Store persists sessions. *boltdb.SessionStore implements it.
type Store interface {
	// Save writes s and is durable (on disk, synced) when it returns. Only
	// s.Messages[from.Messages:] and s.Turns[from.Turns:] may differ from
	// what is stored: earlier ones are not rewritten, so a save costs the
	// size of what changed, not of the whole conversation. Stored messages
	// beyond len(s.Messages) are dropped.
	Save(ctx context.Context, s *Session, from Mark) error
	Load(ctx context.Context, tenant string, id ID) (*Session, error) // ErrNotFound if absent
	Delete(ctx context.Context, tenant string, id ID) error           // ErrNotFound if absent
	// List returns a tenant's sessions newest first, and the cursor of the
	// next page ("" at the end).
	List(ctx context.Context, tenant string, q ListQuery) ([]Summary, ID, error)
}

// Mark is a position in a session's messages and turn records.
type Mark struct{ Messages, Turns int }

// ListQuery selects a page of a tenant's sessions.
type ListQuery struct {
	User   string // only this end user's sessions, if set
	Before ID     // cursor: sessions created before this one
	Limit  int    // page size
}

// Hooks connect the pool to the rest of agentd. Assign and Tools are
// required; the others have defaults.
type Hooks struct {
	// Assigner decides what a session runs with. Required.
	Assigner Assigner
	// Toolbox gives a session its tools and system prompt. Required.
	Toolbox Toolbox
	// Authorizer decides planned tool calls. Nil denies every call.
	Authorizer Authorizer
	// Observer sees finished turns and answered asks. May be nil.
	Observer Observer
	// Meter counts LLM calls and may refuse turns (budgets). May be nil.
	Meter Meter
}

// Assigner decides what a session runs with.
type Assigner interface {
	// Assign gives a new session of tenant/user what it runs with.
	Assign(tenant, user string) (Assignment, error)
	// Rebind runs at every turn boundary, before the turn: it may change
	// the session's assignment and model (a rollback moves the sessions it
	// reached; the history is kept) and says what it did, one line per
	// change, which the turn's record keeps.
	Rebind(s *Session) (changes []string)
	// CheckModel accepts or refuses a model a client asks for (ErrInvalid).
	CheckModel(model string) error
}

// Toolbox gives a session its tools and system prompt.
type Toolbox interface {
	// Tools builds the tools of a session working in dir. The closer (may
	// be nil) is called when the session leaves memory.
	Tools(s *Session, dir string) ([]agent.Tool, io.Closer, error)
	// TurnTools adds the tools of one turn that depend on the session's
	// current state (activate_skill over its skill set) or come and go
	// (MCP servers). It is called with the session locked, so it must
	// return soon and when ctx (the turn's) ends; h lets the tools change
	// the session later, while they run.
	TurnTools(ctx context.Context, s *Session, h *Handle) []agent.Tool
	// SystemPrompt builds the system prompt; it is called before every LLM
	// call of a turn (so a skill activated mid-turn is in the next call),
	// with the session locked: it must not block.
	SystemPrompt(s *Session, dir string) (string, error)
}

// Authorizer applies the permission rules to a planned call.
type Authorizer interface {
	Permit(s *Session, c agent.Call, spec agent.ToolSpec) Permit
}

// Observer sees what happened (metrics, the rollback guard).
type Observer interface {
	// Observe sees every finished turn.
	Observe(s Summary, rec TurnRecord)
	// Approved sees the answer to every ask: allow_once, allow_always,
	// reject_once, reject_always, timeout or cancelled.
	Approved(s Summary, tool, decision string)
}

// Config tunes a Pool.
type Config struct {
	Dir string // workspaces live in Dir/<tenant>/<session id>
	// Node, if set, is this replica's name in a fleet: new session ids
	// carry it (NewID). "" (a single process): ids without a node.
	Node        string
	TTL         time.Duration // idle time before a session leaves memory; default 30 min
	MaxLive     int           // sessions kept in memory; default 500
	TurnTimeout time.Duration // wall-clock limit of a turn; 0: none
	SaveTimeout time.Duration // bound of one save, also after a cancel; default 5 s
	// ApprovalTimeout is how long a call the rules say to ask about waits
	// for the client's decision before it is rejected; default 60 s.
	ApprovalTimeout time.Duration
	Now             func() time.Time
	Logger          *zap.Logger
}

// Defaults of Config.
const (
	DefaultTTL         = 30 * time.Minute
	DefaultMaxLive     = 500
	DefaultSaveTimeout = 5 * time.Second
	DefaultApproval    = 60 * time.Second
)

// TurnInput is one user message and how to run it.
type TurnInput struct {
	Content       string
	MaxIterations int               // 0: the agent's default
	Emit          func(agent.Event) // streamed events; may be nil
	// Unattended turns have no person to answer an ask: a call the rules
	// ask about is rejected at once (the canary probe, the red-team check).
	Unattended bool
}

// TurnResult is what a finished turn returns to the client.
type TurnResult struct {
	Turn    int
	Reply   string
	Outcome agent.Outcome
	Stats   agent.Stats
	Model   string
}

// Pool holds live sessions.
type Pool struct {
	cfg   Config
	hooks Hooks
	store Store
	agent *agent.Agent
	log   *zap.Logger

	mu      sync.Mutex
	live    map[string]*entry
	lru     *list.List // of *entry, most recently used at the front
	closing bool
	turns   sync.WaitGroup

	stop chan struct{}
	done chan struct{}
}

// entry is a live session. Fields after mu are guarded by mu; the rest by
// Pool.mu.
type entry struct {
	key    string
	tenant string
	id     ID
	ready  chan struct{} // closed once loaded (or failed: err set)
	err    error

	elem   *list.Element
	used   time.Time
	refs   int  // operations holding the entry; never evicted while > 0
	busy   bool // a turn or an exclusive change runs
	gone   bool // deleted or evicted: holders must not use it for new work
	moving bool // held for a handoff to another replica (Hold): every call gets ErrMoving
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	sess    *Session
	tools   []agent.Tool
	closer  io.Closer
	pending map[string]*approval // by call id: calls of the running turn waiting for a person
	always  map[string]bool      // tool → allowed (allow_always) or rejected (reject_always) for the session's life in memory
}

// NewPool returns a pool over store running turns with a. Call Shutdown (or
// Close) to stop its sweeper.
func NewPool(store Store, a *agent.Agent, hooks Hooks, cfg Config) (*Pool, error) {
	if hooks.Assigner == nil || hooks.Toolbox == nil {
		return nil, errors.New("session: Hooks.Assigner and Hooks.Toolbox are required")
	}
	if cfg.Dir == "" {
		return nil, errors.New("session: Config.Dir is required")
	}
	if cfg.Node != "" {
		if err := ValidNode(cfg.Node); err != nil {
			return nil, fmt.Errorf("session: Config.Node: %w", err)
		}
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxLive <= 0 {
		cfg.MaxLive = DefaultMaxLive
	}
	if cfg.SaveTimeout <= 0 {
		cfg.SaveTimeout = DefaultSaveTimeout
	}
	if cfg.ApprovalTimeout <= 0 {
		cfg.ApprovalTimeout = DefaultApproval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	p := &Pool{
		cfg: cfg, hooks: hooks, store: store, agent: a, log: cfg.Logger.Named("session"),
		live: make(map[string]*entry), lru: list.New(),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go p.sweep()
	return p, nil
}

var tenantPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func key(tenant string, id ID) string { return tenant + "\x00" + string(id) }

// Dir returns the workspace directory of a session.
func (p *Pool) Dir(tenant string, id ID) string { return filepath.Join(p.cfg.Dir, tenant, string(id)) }

// Create starts a session for tenant's end user. model, if set, overrides
// the assigned model.
func (p *Pool) Create(ctx context.Context, tenant, user, model string) (*Session, error) {
	return p.create(ctx, tenant, user, model, nil)
}

// create is Create, with the assignment pinned if pin is set.
func (p *Pool) create(ctx context.Context, tenant, user, model string, pin *Assignment) (*Session, error) {
	if !tenantPattern.MatchString(tenant) && (pin == nil || tenant != ProbeTenant) {
		return nil, fmt.Errorf("%w: tenant %q", ErrInvalid, tenant)
	}
	if p.isClosing() {
		return nil, ErrShuttingDown
	}
	var a Assignment
	if pin != nil {
		a = *pin
	} else {
		var err error
		if a, err = p.hooks.Assigner.Assign(tenant, user); err != nil {
			return nil, fmt.Errorf("assign: %w", err)
		}
	}
	now := p.cfg.Now().UTC()
	s := &Session{
		ID: NewID(now, p.cfg.Node), Tenant: tenant, User: user, CreatedAt: now, UpdatedAt: now,
		Model: a.Model, Assignment: a, Messages: []agent.Message{},
	}
	if model != "" {
		if err := p.hooks.Assigner.CheckModel(model); err != nil {
			return nil, err
		}
		s.Model = model
	}
	if err := os.MkdirAll(p.Dir(tenant, s.ID), 0o700); err != nil {
		return nil, fmt.Errorf("create workspace: %w", err)
	}
	if err := p.save(ctx, s, Mark{}); err != nil {
		_ = os.RemoveAll(p.Dir(tenant, s.ID))
		return nil, err
	}
	e := &entry{key: key(tenant, s.ID), tenant: tenant, id: s.ID, ready: make(chan struct{}), sess: s}
	close(e.ready)
	var closers []io.Closer
	p.mu.Lock()
	p.insertLocked(e)
	closers = p.evictLocked(p.cfg.Now())
	p.mu.Unlock()
	closeAll(closers)
	return s.clone(), nil
}

// Get returns a copy of a session with its history.
func (p *Pool) Get(ctx context.Context, tenant string, id ID) (*Session, error) {
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	defer p.release(e)
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sess.clone(), nil
}

// List returns a page of a tenant's sessions, newest first.
func (p *Pool) List(ctx context.Context, tenant string, q ListQuery) ([]Summary, ID, error) {
	sums, next, err := p.store.List(ctx, tenant, q)
	if err != nil {
		return nil, "", err
	}
	p.mu.Lock()
	for i := range sums {
		// A running turn always has a live entry; a stored in-flight mark
		// without one is a turn cut off by a crash, recorded on next load.
		e, ok := p.live[key(tenant, sums[i].ID)]
		sums[i].Running = ok && e.cancel != nil
	}
	p.mu.Unlock()
	return sums, next, nil
}

// Delete removes a session, its history and its workspace. It is final:
// until the store's delete has committed and the workspace is gone, the
// live entry stays in the pool as a tombstone that every other call sees as
// ErrNotFound, so a request racing the delete can neither run a turn on the
// session nor load it again from the store and save it back.
func (p *Pool) Delete(ctx context.Context, tenant string, id ID) error {
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return err
	}
	defer p.release(e)
	p.mu.Lock()
	switch {
	case e.gone:
		p.mu.Unlock()
		return ErrNotFound
	case e.busy:
		p.mu.Unlock()
		return ErrBusy
	}
	e.gone = true
	p.mu.Unlock()
	closeAll([]io.Closer{e.takeCloser()})
	// Like a save, the delete outlives the caller: a client that hangs up
	// must not leave it half done.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.SaveTimeout)
	defer cancel()
	if err := p.store.Delete(dctx, tenant, id); err != nil && !errors.Is(err, ErrNotFound) {
		p.mu.Lock()
		e.gone = false // nothing was deleted: the session stays usable
		p.mu.Unlock()
		return err
	}
	if err := os.RemoveAll(p.Dir(tenant, id)); err != nil {
		p.log.Warn("remove workspace", zap.String("session_id", string(id)), zap.Error(err))
	}
	p.mu.Lock()
	p.removeLocked(e)
	p.mu.Unlock()
	return nil
}

// SetModel switches the session's model; the history is kept.
func (p *Pool) SetModel(ctx context.Context, tenant string, id ID, model string) (*Session, error) {
	if err := p.hooks.Assigner.CheckModel(model); err != nil {
		return nil, err
	}
	return p.change(ctx, tenant, id, func(s *Session) Mark {
		s.Model = model
		return Mark{Messages: len(s.Messages), Turns: len(s.Turns)}
	})
}

// Clear empties the session's history and deactivates its skills. Its turn
// records are kept.
func (p *Pool) Clear(ctx context.Context, tenant string, id ID) (*Session, error) {
	return p.change(ctx, tenant, id, func(s *Session) Mark {
		s.Messages = []agent.Message{}
		s.ActiveSkills = nil
		s.Title = ""
		return Mark{Turns: len(s.Turns)}
	})
}

// change applies fn to an idle session and saves it from the mark fn
// returns.
func (p *Pool) change(ctx context.Context, tenant string, id ID, fn func(*Session) Mark) (*Session, error) {
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	defer p.release(e)
	if err := p.claim(e, nil); err != nil {
		return nil, err
	}
	defer p.unclaim(e)
	e.mu.Lock()
	prev := e.sess.clone()
	from := fn(e.sess)
	e.sess.UpdatedAt = p.cfg.Now().UTC()
	snap := e.sess.clone()
	e.mu.Unlock()
	if err := p.save(ctx, snap, from); err != nil {
		e.mu.Lock()
		*e.sess = *prev // a rejected change changes nothing (in place: tools hold the pointer)
		e.mu.Unlock()
		return nil, err
	}
	return snap, nil
}

// Cancel ends the session's running turn with reason. It reports whether a
// turn was running.
func (p *Pool) Cancel(ctx context.Context, tenant string, id ID, reason string) (bool, error) {
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return false, err
	}
	defer p.release(e)
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.cancel == nil {
		return false, nil
	}
	e.cancel(agent.Cancelled(reason))
	return true, nil
}

// Turn runs one turn of the session and returns once its outcome is saved.
// ctx carries the caller's cancellation (use a CancelError cause).
func (p *Pool) Turn(ctx context.Context, tenant string, id ID, in TurnInput) (TurnResult, error) {
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return TurnResult{}, err
	}
	defer p.release(e)
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if p.cfg.TurnTimeout > 0 {
		var stop context.CancelFunc
		tctx, stop = context.WithTimeoutCause(tctx, p.cfg.TurnTimeout, agent.Cancelled(agent.ReasonTimeout))
		defer stop()
	}
	if err := p.claim(e, cancel); err != nil {
		return TurnResult{}, err
	}
	defer p.unclaim(e)
	e.mu.Lock()
	sum := e.sess.Summary()
	e.mu.Unlock()
	if err := p.admit(sum); err != nil { // over budget: no turn at all
		return TurnResult{}, err
	}
	return p.runTurn(tctx, e, in)
}

func (p *Pool) runTurn(ctx context.Context, e *entry, in TurnInput) (TurnResult, error) {
	e.mu.Lock()
	s := e.sess
	dir := p.Dir(s.Tenant, s.ID)
	moved := p.hooks.Assigner.Rebind(s)
	if len(moved) > 0 {
		p.log.Warn("session moved by a rollback", zap.String("session_id", string(s.ID)), zap.String("tenant", s.Tenant),
			zap.String("user", s.User), zap.Strings("changes", moved))
	}
	if e.tools == nil {
		tools, closer, err := p.hooks.Toolbox.Tools(s, dir)
		if err != nil {
			e.mu.Unlock()
			return TurnResult{}, fmt.Errorf("build tools: %w", err)
		}
		e.tools, e.closer = tools, closer
	}
	tools := e.tools
	tools = append(slices.Clip(tools), p.hooks.Toolbox.TurnTools(ctx, s, &Handle{e: e})...)
	first, err := p.hooks.Toolbox.SystemPrompt(s, dir)
	if err != nil {
		e.mu.Unlock()
		return TurnResult{}, fmt.Errorf("build system prompt: %w", err)
	}
	rec := TurnRecord{N: len(s.Turns) + 1, StartedAt: p.cfg.Now().UTC(), Model: s.Model, Moved: moved}
	// Messages before the turn's never change during it: saves rewrite only
	// the turn's own (its placeholders are replaced as tools finish).
	from := Mark{Messages: len(s.Messages), Turns: len(s.Turns)}
	inflight := rec
	s.InFlight = &inflight
	snapBefore := s.Summary() // what the meter sees: the assignment after Rebind
	if s.Title == "" {
		s.Title = title(in.Content)
	}
	turn := agent.Turn{
		Model: s.Model, History: s.Messages, Input: in.Content, Tools: tools,
		MaxIterations: in.MaxIterations, Emit: in.Emit,
		Prompt: func() string {
			if first != "" { // the first LLM call uses the prompt built above
				system := first
				first = ""
				return system
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			system, err := p.hooks.Toolbox.SystemPrompt(s, dir)
			if err != nil { // it built at the start of the turn; keep going without what failed
				p.log.Error("rebuild system prompt", zap.String("session_id", string(s.ID)), zap.Error(err))
			}
			return system
		},
	}
	e.mu.Unlock()

	log := p.log.With(zap.String("session_id", string(s.ID)), zap.String("tenant", s.Tenant), zap.String("user", s.User),
		zap.String("model", rec.Model), zap.Int("turn", rec.N))
	turn.Checkpoint = func(h []agent.Message) error {
		e.mu.Lock()
		s.Messages = h
		s.UpdatedAt = p.cfg.Now().UTC()
		snap := s.clone()
		e.mu.Unlock()
		return p.save(ctx, snap, from)
	}
	// Compaction rewrote earlier turns' messages: from now on every save
	// stores the whole history (checkpoints and the final save run on this
	// goroutine, so from needs no lock).
	turn.HistoryRewritten = func() { from.Messages = 0 }
	turn.Spill = func(callID, content string) (string, error) { return spill(dir, callID, content) }
	turn.Authorize = p.authorize(e, s, in.Unattended)
	p.meterTurn(&turn, snapBefore)

	res := p.agent.Run(ctx, turn)

	e.mu.Lock()
	rec.EndedAt = p.cfg.Now().UTC()
	rec.Outcome, rec.Stats = res.Outcome, res.Stats
	s.Messages = res.Messages
	s.Turns = append(s.Turns, rec)
	s.InFlight = nil
	s.UpdatedAt = rec.EndedAt
	snap := s.clone()
	e.mu.Unlock()
	saveErr := p.save(ctx, snap, from)

	fields := []zap.Field{
		zap.String("status", string(rec.Outcome.Status)), zap.String("incomplete_reason", rec.Outcome.IncompleteReason),
		zap.String("cancel_reason", rec.Outcome.CancelReason), zap.Int64("duration_ms", rec.EndedAt.Sub(rec.StartedAt).Milliseconds()),
		zap.Int("llm_calls", rec.Stats.LLMCalls), zap.Int("llm_errors", rec.Stats.LLMErrors), zap.Int("tool_calls", rec.Stats.ToolCalls),
		zap.Int("tool_failures", rec.Stats.ToolFailures), zap.Int("prompt_tokens", rec.Stats.Usage.PromptTokens),
		zap.Int("completion_tokens", rec.Stats.Usage.CompletionTokens),
	}
	fields = append(fields, zap.String("cohort", snap.Assignment.Cohort()), zap.Int("config_version", snap.Assignment.ConfigVersion))
	switch {
	case saveErr != nil:
		log.Error("turn not saved", append(fields, zap.Error(saveErr))...)
		return TurnResult{}, fmt.Errorf("save turn: %w", saveErr)
	case rec.Outcome.Status == agent.StatusError:
		log.Error("turn failed", append(fields, zap.String("error", rec.Outcome.Error))...)
	default:
		log.Info("turn", fields...)
	}
	if p.hooks.Observer != nil && observed(snap.Tenant) {
		p.hooks.Observer.Observe(snap.Summary(), rec)
	}
	return TurnResult{Turn: rec.N, Reply: res.Reply, Outcome: res.Outcome, Stats: res.Stats, Model: rec.Model}, nil
}

// save persists a snapshot with a context that outlives the caller's
// cancellation: a cancelled turn must still record how it ended.
func (p *Pool) save(ctx context.Context, s *Session, from Mark) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.SaveTimeout)
	defer cancel()
	if err := p.store.Save(sctx, s, from); err != nil {
		return fmt.Errorf("save session %s: %w", s.ID, err)
	}
	return nil
}

// claim marks e busy for a turn (cancel set) or an exclusive change.
func (p *Pool) claim(e *entry, cancel context.CancelCauseFunc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case e.gone:
		return ErrNotFound
	case e.moving:
		return ErrMoving
	case p.closing:
		return ErrShuttingDown
	case e.busy:
		return ErrBusy
	}
	e.busy, e.cancel = true, cancel
	if cancel != nil {
		p.turns.Add(1)
	}
	return nil
}

func (p *Pool) unclaim(e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.cancel != nil {
		p.turns.Done()
	}
	e.busy, e.cancel = false, nil
}

// acquire returns the live entry of a session, loading it if needed, and
// holds it until release.
func (p *Pool) acquire(ctx context.Context, tenant string, id ID) (*entry, error) {
	if !id.Valid() || !(tenantPattern.MatchString(tenant) || tenant == ProbeTenant) {
		return nil, ErrNotFound
	}
	k := key(tenant, id)
	p.mu.Lock()
	e, ok := p.live[k]
	if ok && e.gone { // a tombstone: the session is being deleted
		p.mu.Unlock()
		return nil, ErrNotFound
	}
	if ok && e.moving {
		p.mu.Unlock()
		return nil, ErrMoving
	}
	if !ok {
		e = &entry{key: k, tenant: tenant, id: id, ready: make(chan struct{})}
		p.insertLocked(e)
	}
	e.refs++
	e.used = p.cfg.Now()
	p.lru.MoveToFront(e.elem)
	p.mu.Unlock()
	if ok {
		select {
		case <-e.ready:
		case <-ctx.Done():
			p.release(e)
			return nil, context.Cause(ctx)
		}
		if e.err != nil {
			p.release(e)
			return nil, e.err
		}
		return e, nil
	}
	s, err := p.load(ctx, tenant, id)
	p.mu.Lock()
	if err != nil {
		e.err = err
		e.gone = true
		p.removeLocked(e)
		e.refs--
		p.mu.Unlock()
		close(e.ready)
		return nil, err
	}
	e.sess = s
	closers := p.evictLocked(p.cfg.Now())
	p.mu.Unlock()
	close(e.ready)
	closeAll(closers)
	return e, nil
}

func (p *Pool) load(ctx context.Context, tenant string, id ID) (*Session, error) {
	s, err := p.store.Load(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	if s.Messages == nil {
		s.Messages = []agent.Message{}
	}
	if s.recoverInterrupted(p.cfg.Now().UTC()) {
		p.log.Warn("recorded a turn interrupted by a process exit", zap.String("session_id", string(id)), zap.String("tenant", tenant))
		if err := p.save(ctx, s, Mark{}); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (p *Pool) release(e *entry) {
	p.mu.Lock()
	e.refs--
	closers := p.evictLocked(p.cfg.Now())
	p.mu.Unlock()
	closeAll(closers)
}

func (p *Pool) insertLocked(e *entry) {
	p.live[e.key] = e
	e.elem = p.lru.PushFront(e)
	e.used = p.cfg.Now()
}

func (p *Pool) removeLocked(e *entry) {
	if p.live[e.key] == e {
		delete(p.live, e.key)
		p.lru.Remove(e.elem)
	}
}

// evictLocked drops idle sessions past the TTL, then the least recently used
// beyond the cap. It returns the closers to call outside the lock.
func (p *Pool) evictLocked(now time.Time) []io.Closer {
	var closers []io.Closer
	for el := p.lru.Back(); el != nil; {
		prev := el.Prev()
		e := el.Value.(*entry)
		expired := now.Sub(e.used) > p.cfg.TTL
		if !expired && p.lru.Len() <= p.cfg.MaxLive {
			break // everything in front was used more recently
		}
		if e.refs == 0 && !e.busy {
			e.gone = true
			p.removeLocked(e)
			closers = append(closers, e.takeCloser())
		}
		el = prev
	}
	return closers
}

func (e *entry) takeCloser() io.Closer {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.closer
	e.tools, e.closer = nil, nil
	return c
}

func closeAll(cs []io.Closer) {
	for _, c := range cs {
		if c != nil {
			_ = c.Close()
		}
	}
}

// sweep evicts expired sessions in the background until Shutdown.
func (p *Pool) sweep() {
	defer close(p.done)
	every := min(p.cfg.TTL/2, 30*time.Second)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.mu.Lock()
			closers := p.evictLocked(p.cfg.Now())
			p.mu.Unlock()
			closeAll(closers)
		}
	}
}

func (p *Pool) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

// Live returns how many sessions are in memory and how many turns run.
func (p *Pool) Live() (sessions, running int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.live {
		if e.cancel != nil {
			running++
		}
	}
	return len(p.live), running
}

// Shutdown refuses new sessions and turns, cancels every running turn with
// reason "shutdown", waits until each has saved how it ended (or ctx
// expires), and releases every session's tools.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	first := !p.closing
	p.closing = true
	n := 0
	for _, e := range p.live {
		if e.cancel != nil {
			e.cancel(agent.Cancelled(agent.ReasonShutdown))
			n++
		}
	}
	p.mu.Unlock()
	if first {
		close(p.stop)
		p.log.Info("shutting down", zap.Int("running_turns", n))
	}
	waited := make(chan struct{})
	go func() { p.turns.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("%d turn(s) did not finish saving: %w", n, context.Cause(ctx))
	}
	<-p.done
	p.mu.Lock()
	var closers []io.Closer
	for _, e := range p.live {
		if !e.busy {
			closers = append(closers, e.takeCloser())
		}
	}
	p.mu.Unlock()
	closeAll(closers)
	return err
}

// Close is Shutdown without a deadline.
func (p *Pool) Close() error { return p.Shutdown(context.Background()) }

// spill saves a long tool result in the session's workspace and returns its
// path relative to the workspace, which read_file accepts. It writes
// through the workspace's os.Root: the session's commands own the
// workspace, and a link they plant (.agentd/tool-outputs -> another
// session's workspace) must not carry agentd's own, unconfined write out
// of it. The file is always a new one (O_EXCL): a FIFO or a link planted
// under the expected name is never opened, it only makes the name change.
func spill(dir, callID, content string) (string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	outputs := filepath.Join(".agentd", "tool-outputs")
	if err := workspace.EnsureDir(root, outputs, 0o700); err != nil {
		return "", err
	}
	rel := filepath.Join(outputs, safeName(callID)+".txt")
	f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		rel = filepath.Join(outputs, safeName(callID)+"-"+safeName(agent.NewCallID())+".txt")
		f, err = root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return "", err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return rel, err
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)

func safeName(s string) string {
	s = unsafeChars.ReplaceAllString(s, "_")
	if s == "" {
		s = agent.NewCallID()
	}
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// Handle lets a session's tools change it during a turn.
type Handle struct{ e *entry }

// Session returns a copy of the session.
func (h *Handle) Session() *Session {
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	return h.e.sess.clone()
}

// ActivateSkill records an active skill (kept with the session and in every
// later system prompt). It reports whether it was active already.
func (h *Handle) ActivateSkill(name string) (already bool) {
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	s := h.e.sess
	if slices.Contains(s.ActiveSkills, name) {
		return true
	}
	s.ActiveSkills = append(s.ActiveSkills, name)
	return false
}
