// Package agent runs conversational turns: a loop of (LLM call → tool calls)
// faithful to Agentao's turn semantics.
//
// One Run is one turn. It never returns an error: every way a turn can end is
// an Outcome (ok, error or cancelled, with an incomplete reason), and the
// returned history is always API-valid — every assistant tool call is answered
// by a tool result, with placeholders on cancel, error or a crashed tool.
//
// Cancellation is cooperative: cancel the context with a cause from
// Cancelled(reason). The loop checks it before each LLM call, per streamed
// chunk (the Model stops), right after a stream ends, before each tool and
// after each tool batch. An Agent is safe for concurrent use; a Turn is not.
package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultMaxIterations  = 100
	DefaultMaxResultChars = 40_000
	// MaxParallelTools bounds how many tool calls of one batch run at once;
	// calls of the same tool always run one after another.
	MaxParallelTools = 8
	// ToolHaltThreshold is how many identical calls, unparseable arguments of
	// one tool in a row, empty tool names or length-truncated responses in a
	// row end a turn.
	ToolHaltThreshold = 3
)

// Config tunes an Agent. The zero value is usable.
type Config struct {
	MaxIterations  int              // LLM calls per turn; default 100
	MaxResultChars int              // longer tool results are spilled; default 40,000
	ContextTokens  int              // the context window compaction keeps requests within; default 200,000
	Now            func() time.Time // clock for the per-turn date reminder; default time.Now
	Logger         *zap.Logger
}

// Agent runs turns against one Model.
type Agent struct {
	model Model
	cfg   Config
	log   *zap.Logger
}

// New returns an Agent that calls m.
func New(m Model, cfg Config) *Agent {
	if cfg.MaxIterations <= 0 {
		cfg.MaxIterations = DefaultMaxIterations
	}
	if cfg.MaxResultChars <= 0 {
		cfg.MaxResultChars = DefaultMaxResultChars
	}
	if cfg.ContextTokens <= 0 {
		cfg.ContextTokens = DefaultContextTokens
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Agent{model: m, cfg: cfg, log: cfg.Logger.Named("agent")}
}

// Turn is the input of one Run.
type Turn struct {
	Model  string // model id sent to the provider
	System string // system prompt, rebuilt by the caller every turn; never stored
	// Prompt, if set, is called before every LLM call and its result is
	// used instead of System: a tool that changes the prompt (activating a
	// skill) takes effect within the turn.
	Prompt        func() string
	History       []Message // the conversation so far; not modified
	Input         string    // the user's message
	Tools         []Tool
	MaxIterations int // 0: the Agent's default
	MaxTokens     int // completion cap per LLM call; 0: provider default
	ContextTokens int // the model's context window; 0: the Agent's default (see compact.go)

	// Emit receives events in order, from one goroutine at a time. May be nil.
	Emit func(Event)
	// Checkpoint is called with the full, API-valid history once before the
	// first LLM call (the user's message added), after every LLM step that
	// requested tools and after every tool batch, so a crash loses at most
	// the step in progress. An error ends the turn with status error.
	Checkpoint func(history []Message) error
	// HistoryRewritten, if set, is called when compaction changed messages
	// of earlier turns (History): the next Checkpoint's and the Result's
	// history must then be stored whole, not from this turn's start.
	HistoryRewritten func()
	// Spill stores a tool result too long for the context and returns where
	// (a path the model can read_file). May be nil: results are then cut.
	Spill func(callID, content string) (string, error)
	// Authorize decides whether a planned call may run. It is called for
	// every runnable call of a batch, one after another, before any of them
	// runs (Agentao's confirmation phase), and may block while a person is
	// asked, until ctx is done. emit sends events to the turn's client. Nil
	// denies every call (AllowAll lets everything run).
	Authorize func(ctx context.Context, c Call, spec ToolSpec, emit func(Event)) Verdict
	// Admit, if set, is asked before every LLM call. An error stops the turn
	// there, before the call: status error, and as incomplete reason the
	// error's Stop.Reason if it is a *Stop ("refused" otherwise), with a
	// valid history (a token budget spent, say).
	Admit func() error
	// Called, if set, sees every LLM call as it ends (after its retries),
	// on the turn's goroutine: the metrics and the token meter read it.
	Called func(LLMCall)
}

// Stop is an error of Turn.Admit that names the incomplete reason of the
// turn it stops.
type Stop struct {
	Reason  string // the outcome's incomplete_reason, e.g. IncompleteBudgetExceeded
	Message string // for the history, the outcome's error and the logs
}

func (s *Stop) Error() string { return s.Message }

// LLMCall is one LLM call as Turn.Called sees it.
type LLMCall struct {
	Model    string
	Duration time.Duration // from the request to the last byte, retries included
	Usage    Usage         // what the provider reported (zero on an error)
	// ErrorType is "" for a call that succeeded; otherwise the HTTP status
	// ("500", "429"), "cancelled", "timeout" or "_OTHER" (OpenTelemetry's
	// error.type: a closed, low-cardinality set).
	ErrorType string
	Status    int // the HTTP status of a failed call, 0 if none
}

// Verdict is Authorize's answer for one call.
type Verdict struct {
	Allow bool
	// Result is what the model sees instead of the tool's output when the
	// call may not run.
	Result string
	// Denied marks a refusal by the rules (counted as a failed tool call by
	// the guard), as opposed to a person declining.
	Denied bool
}

// Result is how a turn ended.
type Result struct {
	Messages []Message // the whole history after the turn, API-valid
	Reply    string    // the final assistant text (or a sentinel such as "[Cancelled: timeout]")
	Outcome  Outcome
	Stats    Stats
}

// Run runs one turn. It returns when the turn is over, whatever happened.
func (a *Agent) Run(ctx context.Context, t Turn) Result {
	r := &run{
		a:          a,
		ctx:        ctx,
		t:          &t,
		msgs:       slices.Clip(t.History),
		tools:      make(map[string]Tool, len(t.Tools)),
		seen:       make(map[string]int),
		parseFails: make(map[string]int),
		start:      len(t.History),
	}
	for _, tool := range t.Tools {
		s := tool.Spec()
		if _, dup := r.tools[s.Name]; dup {
			continue // first wins, as in a registry
		}
		r.tools[s.Name] = tool
		r.specs = append(r.specs, s)
	}
	r.emit(TurnBegin{UserMessage: t.Input})
	res := r.guarded()
	r.emit(TurnEnd{
		FinalText: res.Reply, Status: res.Outcome.Status, Error: res.Outcome.Error, ToolCount: res.Outcome.ToolCount,
		IncompleteReason: res.Outcome.IncompleteReason, CancelReason: res.Outcome.CancelReason,
		FinishReasonMissing: res.Outcome.FinishReasonMissing,
	})
	return res
}

// run is the state of one turn.
type run struct {
	a     *Agent
	ctx   context.Context
	t     *Turn
	msgs  []Message
	start int // index of the first message of this turn
	tools map[string]Tool
	specs []ToolSpec

	stats       Stats
	outcome     Outcome
	seen        map[string]int // (name, raw args) → times called this turn
	parseFails  map[string]int // tool → unparseable arguments in a row
	emptyNames  int
	truncations int // length-truncated tool-call responses in a row

	// compaction (compact.go)
	lastPromptTokens int // the provider's count of the last request
	lastPromptChars  int // r.chars of that request
	overflows        int // requests refused as too long this turn

	emitMu sync.Mutex
}

func (r *run) emit(p Payload) {
	if r.t.Emit == nil {
		return
	}
	r.emitMu.Lock()
	defer r.emitMu.Unlock()
	r.t.Emit(NewEvent(p, r.a.cfg.Now()))
}

// guarded runs the loop and turns a panic into an error outcome with a
// valid history.
func (r *run) guarded() (res Result) {
	defer func() {
		if p := recover(); p != nil {
			r.a.log.Error("turn panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			res = r.fail(fmt.Errorf("internal error: %v", p))
		}
	}()
	return r.loop()
}

func (r *run) loop() Result {
	r.msgs = append(r.msgs, Message{Role: RoleUser, Content: Reminder(r.a.cfg.Now()) + r.t.Input})
	// The turn is on record before the model is called: a process that
	// dies during the first call leaves the user's message behind.
	if err := r.checkpoint(); err != nil {
		return r.fail(err)
	}
	max := r.t.MaxIterations
	if max <= 0 {
		max = r.a.cfg.MaxIterations
	}
	for iteration := 0; ; {
		if reason, ok := CancelReason(r.ctx); ok {
			return r.cancelled(reason)
		}
		if iteration >= max {
			return r.capped()
		}
		iteration++
		if r.t.Admit != nil {
			if err := r.t.Admit(); err != nil {
				return r.stopped(err)
			}
		}
		r.emit(TurnStart{})
		resp, system, err := r.callModel()
		if reason, ok := CancelReason(r.ctx); ok {
			return r.cancelled(reason) // checked before anything of a late response runs
		}
		if err != nil {
			if isContextOverflow(err) && r.recoverOverflow(system) {
				iteration-- // the refused call does not count
				continue
			}
			return r.llmError(err)
		}
		if resp.FinishReason == "" {
			r.outcome.FinishReasonMissing = true
		}
		am := resp.Message
		am.Role = RoleAssistant
		am.ReasoningContent = truncateRunes(am.ReasoningContent, 500)
		if len(am.ToolCalls) == 0 {
			return r.final(am, resp.FinishReason)
		}
		normalizeCalls(am.ToolCalls)
		if am.ReasoningContent != "" {
			r.emit(Thinking{Text: am.ReasoningContent})
		}
		r.msgs = append(r.msgs, am)
		if isLengthFinish(resp.FinishReason) {
			// Arguments may be cut mid-way: never execute them.
			r.truncations++
			for _, tc := range am.ToolCalls {
				r.msgs = append(r.msgs, toolMessage(tc, TruncatedResult))
			}
			if err := r.checkpoint(); err != nil {
				return r.fail(err)
			}
			if r.truncations >= ToolHaltThreshold {
				return r.halt(IncompleteLengthTruncated, "Response truncated at the output token limit.")
			}
			continue
		}
		r.truncations = 0
		if err := r.checkpoint(); err != nil {
			return r.fail(err)
		}
		halted := r.runTools(am.ToolCalls)
		if err := r.checkpoint(); err != nil {
			return r.fail(err)
		}
		if halted {
			return r.halt(IncompleteDoomLoop, "Tool execution halted by doom-loop detection.")
		}
	}
}

// callModel makes one LLM call, after compacting the history if the
// request would be large. It returns the system prompt it used.
func (r *run) callModel() (Response, string, error) {
	system := r.t.System
	if r.t.Prompt != nil {
		system = r.t.Prompt()
	}
	r.compact(system)
	req := Request{Model: r.t.Model, Tools: r.specs, MaxTokens: r.t.MaxTokens}
	req.Messages = make([]Message, 0, len(r.msgs)+1)
	if system != "" {
		req.Messages = append(req.Messages, Message{Role: RoleSystem, Content: system})
	}
	req.Messages = append(req.Messages, r.msgs...)
	r.emit(LLMCallStarted{Model: r.t.Model, Messages: len(req.Messages), ToolCount: len(r.specs)})
	began := time.Now()
	resp, err := r.a.model.Stream(r.ctx, req, func(d Delta) {
		if d.Text != "" {
			r.emit(LLMText{Chunk: d.Text})
		}
	})
	r.stats.LLMCalls++
	done := LLMCallCompleted{DurationMS: time.Since(began).Milliseconds()}
	if err != nil {
		var me *ModelError
		if errors.As(err, &me) {
			done.Status, done.Attempts, done.Streamed = me.StatusCode, me.Attempts, me.Streamed
			if me.StatusCode >= 500 {
				r.stats.LLM5xx++
			}
		}
		if _, cancelled := CancelReason(r.ctx); !cancelled {
			r.stats.LLMErrors++
			done.ErrorMessage = truncateRunes(err.Error(), 500)
		}
		r.emit(done)
		r.called(time.Since(began), Usage{}, me, err)
		return resp, system, err
	}
	r.stats.Usage = r.stats.Usage.Add(resp.Usage)
	if resp.Usage.PromptTokens > 0 {
		r.lastPromptTokens, r.lastPromptChars = resp.Usage.PromptTokens, r.chars(system)
	}
	done.Attempts, done.FirstTokenMS, done.FinishReason = resp.Attempts, resp.FirstTokenMS, resp.FinishReason
	done.PromptTokens, done.CompletionTokens = resp.Usage.PromptTokens, resp.Usage.CompletionTokens
	r.emit(done)
	r.called(time.Since(began), resp.Usage, nil, nil)
	return resp, system, nil
}

// checkpoint hands the caller a valid snapshot of the history.
func (r *run) checkpoint() error {
	if r.t.Checkpoint == nil {
		return nil
	}
	if err := r.t.Checkpoint(Backfill(r.msgs)); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

func (r *run) result(reply string) Result {
	return Result{Messages: r.msgs, Reply: reply, Outcome: r.outcome, Stats: r.stats}
}

// final ends a turn on a response without tool calls.
func (r *run) final(am Message, finish string) Result {
	length := isLengthFinish(finish)
	switch {
	case am.Content == "" && am.ReasoningContent != "":
		am.Content, r.outcome.IncompleteReason = "[No text response]", IncompleteReasoningOnly
	case am.Content == "":
		am.Content, r.outcome.IncompleteReason = "[No response]", IncompleteNoOutput
	}
	if length {
		r.outcome.IncompleteReason = IncompleteLengthTruncated
	}
	r.msgs = append(r.msgs, am)
	r.outcome.Status = StatusOK
	return r.result(am.Content)
}

// halt ends a turn the loop stopped on purpose; the reply is an assistant
// message so the history reads naturally on the next turn.
func (r *run) halt(reason, text string) Result {
	r.msgs = append(r.msgs, Message{Role: RoleAssistant, Content: text})
	r.outcome.Status = StatusOK
	r.outcome.IncompleteReason = reason
	return r.result(text)
}

// capped ends a turn that used all its LLM calls.
func (r *run) capped() Result {
	text := "Maximum tool call iterations reached."
	for i := len(r.msgs) - 1; i >= r.start; i-- {
		if m := r.msgs[i]; m.Role == RoleAssistant && strings.TrimSpace(m.Content) != "" {
			text = m.Content
			break
		}
	}
	return r.halt(IncompleteMaxIterations, text)
}

func (r *run) cancelled(reason string) Result {
	text := "[Cancelled: " + reason + "]"
	r.msgs = append(Backfill(r.msgs), Message{Role: RoleAssistant, Content: text})
	r.outcome = Outcome{Status: StatusCancelled, CancelReason: reason, ToolCount: r.outcome.ToolCount}
	return r.result(text)
}

func (r *run) llmError(err error) Result {
	msg := err.Error()
	r.emit(ErrorEvent{Message: "LLM call failed", Detail: msg})
	text := "[LLM API error: " + msg + "]"
	r.msgs = append(r.msgs, Message{Role: RoleAssistant, Content: text})
	r.outcome.Status = StatusOK
	r.outcome.IncompleteReason = IncompleteLLMError
	r.outcome.Error = msg
	return r.result(text)
}

// called reports an LLM call to Turn.Called.
func (r *run) called(d time.Duration, u Usage, me *ModelError, err error) {
	if r.t.Called == nil {
		return
	}
	c := LLMCall{Model: r.t.Model, Duration: d, Usage: u}
	switch {
	case err == nil:
	case me != nil && me.StatusCode > 0:
		c.Status, c.ErrorType = me.StatusCode, strconv.Itoa(me.StatusCode)
	case errors.Is(err, context.DeadlineExceeded):
		c.ErrorType = "timeout"
	default:
		if _, cancelled := CancelReason(r.ctx); cancelled {
			c.ErrorType = "cancelled"
		} else {
			c.ErrorType = "_OTHER"
		}
	}
	r.t.Called(c)
}

// stopped ends a turn that Turn.Admit refused before an LLM call.
func (r *run) stopped(err error) Result {
	reason := "refused"
	var st *Stop
	if errors.As(err, &st) && st.Reason != "" {
		reason = st.Reason
	}
	msg := err.Error()
	r.emit(ErrorEvent{Message: "turn stopped: " + reason, Detail: msg})
	text := "[Stopped: " + msg + "]"
	r.msgs = append(Backfill(r.msgs), Message{Role: RoleAssistant, Content: text})
	r.outcome = Outcome{Status: StatusError, IncompleteReason: reason, Error: msg, ToolCount: r.outcome.ToolCount}
	return r.result(text)
}

// fail ends a turn on an infrastructure error (a failed checkpoint, a panic).
func (r *run) fail(err error) Result {
	r.emit(ErrorEvent{Message: "turn failed", Detail: err.Error()})
	r.msgs = Backfill(r.msgs)
	r.outcome = Outcome{Status: StatusError, Error: err.Error(), ToolCount: r.outcome.ToolCount}
	return r.result("")
}

// Reminder is the per-turn prefix of every stored user message (Agentao's
// format): the date lives here, not in the system prompt, so the prompt
// prefix stays cacheable.
func Reminder(now time.Time) string {
	return "<system-reminder>\nCurrent Date/Time: " + now.Format("2006-01-02 15:04:05 (Monday)") + "\n</system-reminder>\n"
}

// StripReminders removes <system-reminder> blocks from a user message, for
// titles and for showing a history to people.
func StripReminders(s string) string {
	const open, close = "<system-reminder>", "</system-reminder>"
	for {
		i := strings.Index(s, open)
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], close)
		if j < 0 {
			return s
		}
		end := i + j + len(close)
		if end < len(s) && s[end] == '\n' {
			end++
		}
		s = s[:i] + s[end:]
	}
}

func isLengthFinish(reason string) bool {
	switch strings.ToLower(reason) {
	case "length", "max_tokens", "model_length":
		return true
	}
	return false
}

func toolMessage(tc ToolCall, content string) Message {
	return Message{Role: RoleTool, ToolCallID: tc.ID, Name: tc.Function.Name, Content: content}
}

// normalizeCalls gives every call a unique id and the function type, so the
// history stays valid whatever the provider sent.
func normalizeCalls(calls []ToolCall) {
	seen := make(map[string]bool, len(calls))
	for i := range calls {
		if calls[i].Type == "" {
			calls[i].Type = "function"
		}
		if calls[i].ID == "" || seen[calls[i].ID] {
			calls[i].ID = NewCallID()
		}
		seen[calls[i].ID] = true
	}
}

// NewCallID returns a fresh tool-call id in OpenAI's shape.
func NewCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "call_" + hex.EncodeToString(b[:])
}

func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}
