package agent_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
)

var fixedNow = func() time.Time { return time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC) }

func echoTool() *agenttest.Tool {
	return agenttest.NewTool("echo", func(_ context.Context, c agent.Call) (string, error) {
		return "echoed " + string(c.Args), nil
	})
}

func failTool() *agenttest.Tool {
	return agenttest.NewTool("fail", func(context.Context, agent.Call) (string, error) {
		return "", errors.New("boom")
	})
}

func panicTool() *agenttest.Tool {
	return agenttest.NewTool("crash", func(context.Context, agent.Call) (string, error) {
		panic("tool exploded")
	})
}

type want struct {
	status     agent.Status
	incomplete string
	cancel     string
	reply      string // exact, unless replyPrefix
	replyPre   string
	toolCount  int
	llmCalls   int
	toolFails  int
	finishMiss bool
	// toolResults are the contents of the turn's tool messages, in order (prefix match).
	toolResults []string
}

func TestRunOutcomes(t *testing.T) {
	tests := []struct {
		name  string
		steps []agenttest.Step
		max   int
		want  want
	}{
		{
			name:  "plain reply",
			steps: []agenttest.Step{agenttest.Reply("hello there")},
			want:  want{status: agent.StatusOK, reply: "hello there", llmCalls: 1},
		},
		{
			name:  "tool call then answer",
			steps: []agenttest.Step{agenttest.Calls("echo", `{"x":1}`), agenttest.Reply("done")},
			want:  want{status: agent.StatusOK, reply: "done", toolCount: 1, llmCalls: 2, toolResults: []string{`echoed {"x":1}`}},
		},
		{
			name:  "two calls of different tools keep model order",
			steps: []agenttest.Step{agenttest.Calls("fail", `{}`, "echo", `{"a":2}`), agenttest.Reply("ok")},
			want:  want{status: agent.StatusOK, reply: "ok", toolCount: 2, llmCalls: 2, toolFails: 1, toolResults: []string{"Error: boom", `echoed {"a":2}`}},
		},
		{
			name:  "max iterations caps LLM calls",
			steps: []agenttest.Step{agenttest.Calls("echo", `{"i":1}`), agenttest.Calls("echo", `{"i":2}`), agenttest.Calls("echo", `{"i":3}`)},
			max:   2,
			want: want{status: agent.StatusOK, incomplete: agent.IncompleteMaxIterations, reply: "Maximum tool call iterations reached.",
				toolCount: 2, llmCalls: 2, toolResults: []string{"echoed", "echoed"}},
		},
		{
			name: "length-truncated tool calls are never executed",
			steps: []agenttest.Step{
				{ToolCalls: agenttest.Calls("fail", `{"pa`).ToolCalls, Finish: "length"},
				agenttest.Reply("recovered"),
			},
			want: want{status: agent.StatusOK, reply: "recovered", llmCalls: 2, toolResults: []string{agent.TruncatedResult}},
		},
		{
			name: "three truncations end the turn",
			steps: []agenttest.Step{
				{ToolCalls: agenttest.Calls("echo", `{"a`).ToolCalls, Finish: "length"},
				{ToolCalls: agenttest.Calls("echo", `{"b`).ToolCalls, Finish: "max_tokens"},
				{ToolCalls: agenttest.Calls("echo", `{"c`).ToolCalls, Finish: "LENGTH"},
			},
			want: want{status: agent.StatusOK, incomplete: agent.IncompleteLengthTruncated, replyPre: "Response truncated",
				llmCalls: 3, toolResults: []string{agent.TruncatedResult, agent.TruncatedResult, agent.TruncatedResult}},
		},
		{
			name: "identical call three times is a doom loop",
			steps: []agenttest.Step{
				agenttest.Calls("echo", `{"same":true}`), agenttest.Calls("echo", `{"same":true}`), agenttest.Calls("echo", `{"same":true}`),
			},
			want: want{status: agent.StatusOK, incomplete: agent.IncompleteDoomLoop, reply: "Tool execution halted by doom-loop detection.",
				toolCount: 2, llmCalls: 3, toolResults: []string{"echoed", "echoed", agent.DoomLoopResult}},
		},
		{
			name: "unparseable arguments three times is a doom loop",
			steps: []agenttest.Step{
				agenttest.Calls("echo", `{bad 1`), agenttest.Calls("echo", `{bad 2`), agenttest.Calls("echo", `{bad 3`),
			},
			want: want{status: agent.StatusOK, incomplete: agent.IncompleteDoomLoop, llmCalls: 3, toolCount: 2, toolFails: 2,
				replyPre: "Tool execution halted", toolResults: []string{"Error: could not parse", "Error: could not parse", agent.DoomLoopResult}},
		},
		{
			name:  "repairable arguments run",
			steps: []agenttest.Step{agenttest.Calls("echo", "```json\n{\"a\":1,}\n```"), agenttest.Reply("fine")},
			want:  want{status: agent.StatusOK, reply: "fine", toolCount: 1, llmCalls: 2, toolResults: []string{`echoed {"a":1}`}},
		},
		{
			name:  "unknown tool is reported to the model",
			steps: []agenttest.Step{agenttest.Calls("nope", `{}`), agenttest.Reply("sorry")},
			want:  want{status: agent.StatusOK, reply: "sorry", toolCount: 1, toolFails: 1, llmCalls: 2, toolResults: []string{"Error: unknown tool 'nope'. Available tools: echo, fail, crash."}},
		},
		{
			name:  "empty tool name",
			steps: []agenttest.Step{agenttest.Calls("", `{}`), agenttest.Reply("k")},
			want:  want{status: agent.StatusOK, reply: "k", toolCount: 1, toolFails: 1, llmCalls: 2, toolResults: []string{agent.EmptyNameResult}},
		},
		{
			name:  "a crashing tool is an error result and the turn goes on",
			steps: []agenttest.Step{agenttest.Calls("crash", `{}`), agenttest.Reply("after crash")},
			want:  want{status: agent.StatusOK, reply: "after crash", toolCount: 1, toolFails: 1, llmCalls: 2, toolResults: []string{"Error: the tool crashed: tool exploded"}},
		},
		{
			name:  "llm error after retries",
			steps: []agenttest.Step{{Err: &agent.ModelError{StatusCode: 503, Attempts: 5, Err: errors.New("overloaded")}}},
			want:  want{status: agent.StatusOK, incomplete: agent.IncompleteLLMError, replyPre: "[LLM API error: model call failed with HTTP 503", llmCalls: 1},
		},
		{
			name:  "a crashing model ends the turn with status error",
			steps: []agenttest.Step{agenttest.Calls("echo", `{}`), {Panic: "model exploded"}},
			want:  want{status: agent.StatusError, reply: "", toolCount: 1, llmCalls: 1, toolResults: []string{"echoed"}},
		},
		{
			name:  "empty answer",
			steps: []agenttest.Step{{}},
			want:  want{status: agent.StatusOK, incomplete: agent.IncompleteNoOutput, reply: "[No response]", llmCalls: 1},
		},
		{
			name:  "reasoning only",
			steps: []agenttest.Step{{Reasoning: "hmm"}},
			want:  want{status: agent.StatusOK, incomplete: agent.IncompleteReasoningOnly, reply: "[No text response]", llmCalls: 1},
		},
		{
			name:  "truncated text answer",
			steps: []agenttest.Step{{Text: "partial", Finish: "length"}},
			want:  want{status: agent.StatusOK, incomplete: agent.IncompleteLengthTruncated, reply: "partial", llmCalls: 1},
		},
		{
			name:  "missing finish reason is reported",
			steps: []agenttest.Step{{Text: "hi", Finish: "-"}},
			want:  want{status: agent.StatusOK, reply: "hi", llmCalls: 1, finishMiss: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := agenttest.NewModel(tc.steps...)
			a := agent.New(m, agent.Config{Now: fixedNow})
			history := []agent.Message{{Role: agent.RoleUser, Content: "earlier"}, {Role: agent.RoleAssistant, Content: "earlier reply"}}
			var checkpoints [][]agent.Message
			res := a.Run(t.Context(), agent.Turn{Authorize: agent.AllowAll,
				Model: "m1", System: "sys", History: history, Input: "do it",
				Tools:         []agent.Tool{echoTool(), failTool(), panicTool()},
				MaxIterations: tc.max,
				Checkpoint: func(h []agent.Message) error {
					if err := agent.Validate(h); err != nil {
						t.Errorf("checkpoint got an invalid history: %v", err)
					}
					checkpoints = append(checkpoints, h)
					return nil
				},
			})
			checkResult(t, res, tc.want)
			if len(history) != 2 || history[1].Content != "earlier reply" {
				t.Errorf("Run modified the caller's history: %+v", history)
			}
			if got := res.Messages[:2]; got[0].Content != "earlier" {
				t.Errorf("history prefix lost: %+v", got)
			}
			if u := res.Messages[2]; u.Role != agent.RoleUser || !strings.HasPrefix(u.Content, "<system-reminder>\nCurrent Date/Time: 2026-11-26 18:00:00 (Thursday)\n</system-reminder>\ndo it") {
				t.Errorf("user message = %q; want the reminder then the input", u.Content)
			}
			for _, req := range m.Requests() {
				if req.Messages[0].Role != agent.RoleSystem || req.Messages[0].Content != "sys" || req.Model != "m1" {
					t.Errorf("request does not start with the system prompt or has the wrong model: %+v", req.Messages[0])
				}
			}
		})
	}
}

func checkResult(t *testing.T, res agent.Result, w want) {
	t.Helper()
	if err := agent.Validate(res.Messages); err != nil {
		t.Fatalf("history is not API-valid: %v\n%+v", err, res.Messages)
	}
	o := res.Outcome
	if o.Status != w.status || o.IncompleteReason != w.incomplete || o.CancelReason != w.cancel {
		t.Errorf("outcome = %+v; want status %q incomplete %q cancel %q", o, w.status, w.incomplete, w.cancel)
	}
	if w.replyPre != "" {
		if !strings.HasPrefix(res.Reply, w.replyPre) {
			t.Errorf("reply = %q; want prefix %q", res.Reply, w.replyPre)
		}
	} else if res.Reply != w.reply {
		t.Errorf("reply = %q; want %q", res.Reply, w.reply)
	}
	if o.ToolCount != w.toolCount {
		t.Errorf("tool_count = %d; want %d", o.ToolCount, w.toolCount)
	}
	if res.Stats.LLMCalls != w.llmCalls {
		t.Errorf("llm calls = %d; want %d", res.Stats.LLMCalls, w.llmCalls)
	}
	if res.Stats.ToolFailures != w.toolFails {
		t.Errorf("tool failures = %d; want %d", res.Stats.ToolFailures, w.toolFails)
	}
	calls, fails := 0, 0
	for _, ts := range res.Stats.Tools {
		calls, fails = calls+ts.Calls, fails+ts.Failures
	}
	if calls != res.Stats.ToolCalls || fails != res.Stats.ToolFailures {
		t.Errorf("per-tool stats %+v sum to %d calls, %d failures; the turn has %d, %d", res.Stats.Tools, calls, fails, res.Stats.ToolCalls, res.Stats.ToolFailures)
	}
	if o.FinishReasonMissing != w.finishMiss {
		t.Errorf("finish_reason_missing = %v; want %v", o.FinishReasonMissing, w.finishMiss)
	}
	var results []string
	for _, m := range res.Messages {
		if m.Role == agent.RoleTool {
			results = append(results, m.Content)
		}
	}
	if len(results) != len(w.toolResults) {
		t.Fatalf("tool results = %q; want %d results %q", results, len(w.toolResults), w.toolResults)
	}
	for i := range results {
		if !strings.HasPrefix(results[i], w.toolResults[i]) {
			t.Errorf("tool result %d = %q; want prefix %q", i, results[i], w.toolResults[i])
		}
	}
}

// TestCancellation cancels a turn at each checkpoint the loop has.
func TestCancellation(t *testing.T) {
	type setup struct {
		steps []agenttest.Step
		// tool runs as "echo"; it may cancel or block.
		tool func(cancel context.CancelCauseFunc) func(context.Context, agent.Call) (string, error)
		// before cancels before Run starts.
		before bool
	}
	plain := func(context.CancelCauseFunc) func(context.Context, agent.Call) (string, error) {
		return func(_ context.Context, c agent.Call) (string, error) { return "ran", nil }
	}
	tests := []struct {
		name      string
		setup     setup
		reason    string
		results   []string
		toolCount int
	}{
		{
			name:   "before the first LLM call",
			setup:  setup{steps: []agenttest.Step{agenttest.Reply("never")}, tool: plain, before: true},
			reason: agent.ReasonUserCancel,
		},
		{
			name:   "during the stream",
			setup:  setup{steps: []agenttest.Step{{Text: "partial answ", Block: true}}, tool: plain},
			reason: agent.ReasonClientDisconnected,
		},
		{
			name: "during a tool, with a second call not yet run",
			setup: setup{
				steps: []agenttest.Step{agenttest.Calls("echo", `{"n":1}`, "echo", `{"n":2}`)},
				tool: func(cancel context.CancelCauseFunc) func(context.Context, agent.Call) (string, error) {
					return func(ctx context.Context, c agent.Call) (string, error) {
						cancel(agent.Cancelled(agent.ReasonShutdown))
						<-ctx.Done()
						return "", context.Cause(ctx)
					}
				},
			},
			reason:    agent.ReasonShutdown,
			results:   []string{"[Operation Cancelled] shutdown", "[Operation Cancelled] shutdown"},
			toolCount: 2,
		},
		{
			name: "after a tool batch",
			setup: setup{
				steps: []agenttest.Step{agenttest.Calls("echo", `{}`), agenttest.Reply("never")},
				tool: func(cancel context.CancelCauseFunc) func(context.Context, agent.Call) (string, error) {
					return func(context.Context, agent.Call) (string, error) {
						cancel(agent.Cancelled(agent.ReasonUserCancel))
						return "finished anyway", nil
					}
				},
			},
			reason:    agent.ReasonUserCancel,
			results:   []string{"finished anyway"},
			toolCount: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			m := agenttest.NewModel(tc.setup.steps...)
			if tc.setup.before {
				cancel(agent.Cancelled(tc.reason))
			}
			if tc.name == "during the stream" {
				m.Default = nil
				go func() {
					for len(m.Requests()) == 0 {
						time.Sleep(time.Millisecond)
					}
					cancel(agent.Cancelled(tc.reason))
				}()
			}
			tool := agenttest.NewTool("echo", tc.setup.tool(cancel))
			res := agent.New(m, agent.Config{}).Run(ctx, agent.Turn{Authorize: agent.AllowAll, Model: "m", Input: "hi", Tools: []agent.Tool{tool}})
			checkResult(t, res, want{
				status: agent.StatusCancelled, cancel: tc.reason, reply: "[Cancelled: " + tc.reason + "]",
				toolCount: tc.toolCount, llmCalls: len(m.Requests()), toolResults: tc.results,
			})
			if last := res.Messages[len(res.Messages)-1]; last.Role != agent.RoleAssistant || last.Content != res.Reply {
				t.Errorf("last message = %+v; want the cancel sentinel from the assistant", last)
			}
		})
	}
}

func TestTimeoutReason(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	m := agenttest.NewModel(agenttest.Step{Block: true})
	res := agent.New(m, agent.Config{}).Run(ctx, agent.Turn{Authorize: agent.AllowAll, Input: "slow"})
	if res.Outcome.Status != agent.StatusCancelled || res.Outcome.CancelReason != agent.ReasonTimeout {
		t.Errorf("outcome = %+v; want cancelled with reason timeout", res.Outcome)
	}
}

func TestCheckpointFailureEndsTurnWithError(t *testing.T) {
	m := agenttest.NewModel(agenttest.Calls("echo", `{}`), agenttest.Reply("unreached"))
	res := agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{Authorize: agent.AllowAll,
		Input: "x", Tools: []agent.Tool{echoTool()},
		Checkpoint: func([]agent.Message) error { return errors.New("disk full") },
	})
	if res.Outcome.Status != agent.StatusError || !strings.Contains(res.Outcome.Error, "disk full") {
		t.Errorf("outcome = %+v; want error mentioning the checkpoint failure", res.Outcome)
	}
	if err := agent.Validate(res.Messages); err != nil {
		t.Errorf("history invalid after a checkpoint failure: %v", err)
	}
}

func TestEventsOrder(t *testing.T) {
	m := agenttest.NewModel(agenttest.Step{Text: "let me look", ToolCalls: agenttest.Calls("echo", `{}`).ToolCalls}, agenttest.Reply("answer"))
	var mu sync.Mutex
	var types []string
	agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{Authorize: agent.AllowAll,
		Input: "x", Tools: []agent.Tool{echoTool()},
		Emit: func(e agent.Event) { mu.Lock(); types = append(types, e.Type); mu.Unlock() },
	})
	got := strings.Join(compact(types), ",")
	want := "turn_begin,turn_start,llm_call_started,llm_text,llm_call_completed,tool_start,tool_complete,tool_result," +
		"turn_start,llm_call_started,llm_text,llm_call_completed,turn_end"
	if got != want {
		t.Errorf("events = %s\nwant     %s", got, want)
	}
}

// compact folds runs of the same event type (text deltas) into one.
func compact(types []string) []string {
	var out []string
	for _, t := range types {
		if len(out) == 0 || out[len(out)-1] != t {
			out = append(out, t)
		}
	}
	return out
}

func TestSpillLongResults(t *testing.T) {
	long := strings.Repeat("a", 90) + strings.Repeat("z", 110)
	big := agenttest.NewTool("big", func(context.Context, agent.Call) (string, error) { return long, nil })
	tests := []struct {
		name      string
		spill     func(string, string) (string, error)
		wantSaved bool
		wantLen   int // runes of the head+tail excerpt, before the notes
	}{
		{"spilled", func(id, content string) (string, error) { return "/ws/.agentd/tool-outputs/" + id + ".txt", nil }, true, 50},
		{"spill fails: cut at twice the limit", func(string, string) (string, error) { return "", errors.New("ro") }, false, 100},
		{"no spill: cut at twice the limit", nil, false, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := agenttest.NewModel(agenttest.Calls("big", `{}`), agenttest.Reply("ok"))
			var saved string
			spill := tc.spill
			if spill != nil {
				orig := spill
				spill = func(id, content string) (string, error) { saved = content; return orig(id, content) }
			}
			res := agent.New(m, agent.Config{MaxResultChars: 50}).Run(t.Context(), agent.Turn{Authorize: agent.AllowAll, Input: "x", Tools: []agent.Tool{big}, Spill: spill})
			var got string
			for _, msg := range res.Messages {
				if msg.Role == agent.RoleTool {
					got = msg.Content
				}
			}
			head := tc.wantLen / 5
			if !strings.HasPrefix(got, strings.Repeat("a", head)+"\n\n…") {
				t.Errorf("result = %q; want the first %d chars then an omission mark", got, head)
			}
			if !strings.Contains(got, strings.Repeat("z", tc.wantLen-head)+"\n\n[Output was 200 characters") {
				t.Errorf("result = %q; want the last %d chars then a note", got, tc.wantLen-head)
			}
			if tc.wantSaved && (saved != long || !strings.Contains(got, "full output is saved to /ws/.agentd/tool-outputs/")) {
				t.Errorf("spill got %d chars, result %q; want the whole output saved and its path given", len(saved), got)
			}
		})
	}
}

func TestParallelToolsSerialisePerTool(t *testing.T) {
	var mu sync.Mutex
	running := map[string]int{}
	maxSame := 0
	mk := func(name string) *agenttest.Tool {
		return agenttest.NewTool(name, func(_ context.Context, c agent.Call) (string, error) {
			mu.Lock()
			running[name]++
			maxSame = max(maxSame, running[name])
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			mu.Lock()
			running[name]--
			mu.Unlock()
			return name + string(c.Args), nil
		})
	}
	var args []string
	for i := range 6 {
		args = append(args, []string{"a", "b", "c"}[i%3], fmt.Sprintf(`{"i":%d}`, i))
	}
	m := agenttest.NewModel(agenttest.Calls(args...), agenttest.Reply("ok"))
	res := agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{Authorize: agent.AllowAll, Input: "x", Tools: []agent.Tool{mk("a"), mk("b"), mk("c")}})
	var got []string
	for _, msg := range res.Messages {
		if msg.Role == agent.RoleTool {
			got = append(got, msg.Content)
		}
	}
	want := []string{`a{"i":0}`, `b{"i":1}`, `c{"i":2}`, `a{"i":3}`, `b{"i":4}`, `c{"i":5}`}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("results = %v; want %v in model order", got, want)
	}
	if maxSame != 1 {
		t.Errorf("a tool ran %d calls at once; want 1", maxSame)
	}
}

func TestBackfill(t *testing.T) {
	call := func(id string) agent.ToolCall {
		return agent.ToolCall{ID: id, Type: "function", Function: agent.FunctionCall{Name: "t", Arguments: "{}"}}
	}
	tests := []struct {
		name    string
		in      []agent.Message
		added   int
		changed bool
	}{
		{"valid stays as is", []agent.Message{
			{Role: "user", Content: "u"}, {Role: "assistant", ToolCalls: []agent.ToolCall{call("1")}}, {Role: "tool", ToolCallID: "1"},
		}, 0, false},
		{"trailing orphan", []agent.Message{
			{Role: "user"}, {Role: "assistant", ToolCalls: []agent.ToolCall{call("1"), call("2")}}, {Role: "tool", ToolCallID: "1"},
		}, 1, true},
		{"orphan in the middle", []agent.Message{
			{Role: "user"}, {Role: "assistant", ToolCalls: []agent.ToolCall{call("1")}}, {Role: "user"}, {Role: "assistant", Content: "x"},
		}, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := agent.Validate(tc.in); (err == nil) == tc.changed {
				t.Errorf("Validate(in) = %v; want invalid=%v", err, tc.changed)
			}
			before := len(tc.in)
			out := agent.Backfill(tc.in)
			if err := agent.Validate(out); err != nil {
				t.Errorf("Backfill result invalid: %v", err)
			}
			if len(out)-before != tc.added || len(tc.in) != before {
				t.Errorf("Backfill added %d messages (input now %d); want %d added, input untouched", len(out)-before, len(tc.in), tc.added)
			}
		})
	}
}

func TestStripReminders(t *testing.T) {
	in := agent.Reminder(fixedNow()) + "hello"
	if got := agent.StripReminders(in); got != "hello" {
		t.Errorf("StripReminders(%q) = %q; want %q", in, got, "hello")
	}
}

func TestAuthorizeRunsBeforeAnyToolAndRefusesWithItsText(t *testing.T) {
	var mu sync.Mutex
	var order []string
	rec := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	a := agenttest.NewTool("a", func(_ context.Context, c agent.Call) (string, error) { rec("run a"); return "ran a", nil })
	b := agenttest.NewTool("b", func(_ context.Context, c agent.Call) (string, error) { rec("run b"); return "ran b", nil })
	c := agenttest.NewTool("c", func(_ context.Context, c agent.Call) (string, error) { rec("run c"); return "ran c", nil })
	m := agenttest.NewModel(agenttest.Calls("a", `{}`, "b", `{}`, "c", `{}`), agenttest.Reply("done"))
	res := agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{
		Input: "x", Tools: []agent.Tool{a, b, c},
		Authorize: func(_ context.Context, call agent.Call, _ agent.ToolSpec, emit func(agent.Event)) agent.Verdict {
			rec("authorize " + call.Name)
			switch call.Name {
			case "b":
				return agent.Verdict{Result: "Tool execution denied: 'b' is not permitted.", Denied: true}
			case "c":
				emit(agent.NewEvent(agent.ErrorEvent{Message: "asking about " + call.Name}, time.Now()))
				return agent.Verdict{Result: "Tool execution cancelled by user."}
			}
			return agent.Verdict{Allow: true}
		},
	})
	checkResult(t, res, want{status: agent.StatusOK, reply: "done", toolCount: 3, llmCalls: 2, toolFails: 1,
		toolResults: []string{"ran a", "Tool execution denied: 'b'", "Tool execution cancelled by user."}})
	got := strings.Join(order, ", ")
	if got != "authorize a, authorize b, authorize c, run a" {
		t.Errorf("order = %s; want every call authorized before any runs, and only a run", got)
	}
}

func TestPromptIsRebuiltBeforeEveryLLMCall(t *testing.T) {
	version := 0
	bump := agenttest.NewTool("bump", func(context.Context, agent.Call) (string, error) { version++; return "ok", nil })
	m := agenttest.NewModel(agenttest.Calls("bump", `{}`), agenttest.Reply("done"))
	agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{Authorize: agent.AllowAll,
		Input: "x", System: "ignored", Tools: []agent.Tool{bump},
		Prompt: func() string { return fmt.Sprint("prompt v", version) },
	})
	reqs := m.Requests()
	if reqs[0].Messages[0].Content != "prompt v0" || reqs[1].Messages[0].Content != "prompt v1" {
		t.Errorf("system prompts = %q, %q; want v0 then v1", reqs[0].Messages[0].Content, reqs[1].Messages[0].Content)
	}
}

// TestToolStats: the turn's tool calls broken down by tool, with calls of a
// name the model made up under one label.
func TestToolStats(t *testing.T) {
	m := agenttest.NewModel(
		agenttest.Calls("fail", `{}`, "echo", `{"a":1}`, "made_up_1", `{}`),
		agenttest.Calls("echo", `{"a":2}`, "made_up_2", `{}`),
		agenttest.Reply("done"))
	a := agent.New(m, agent.Config{})
	res := a.Run(t.Context(), agent.Turn{Authorize: agent.AllowAll, Model: "m", Input: "go", Tools: []agent.Tool{echoTool(), failTool()}})
	want := []agent.ToolStat{
		{Name: "fail", Calls: 1, Failures: 1},
		{Name: "echo", Calls: 2},
		{Name: agent.UnknownTool, Calls: 2, Failures: 2},
	}
	got := res.Stats.Tools
	for i := range got {
		got[i].Millis = 0 // timing is not asserted
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tool stats = %+v; want %+v", got, want)
	}
}

// A turn that names no authorizer runs no tool: a forgotten authorizer must
// fail closed, as permission.Action's zero value does.
func TestNoAuthorizerDeniesEveryCall(t *testing.T) {
	ran := false
	tool := agenttest.NewTool("echo", func(context.Context, agent.Call) (string, error) { ran = true; return "ran", nil })
	m := agenttest.NewModel(agenttest.Calls("echo", `{}`), agenttest.Reply("done"))
	res := agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{Input: "x", Tools: []agent.Tool{tool}})
	if ran {
		t.Fatal("the tool ran although the turn had no authorizer")
	}
	checkResult(t, res, want{status: agent.StatusOK, reply: "done", toolCount: 1, llmCalls: 2, toolFails: 1,
		toolResults: []string{"Error: no authorizer is configured"}})
}

// The turn is checkpointed with the user's message before the model is
// called, and a failing first checkpoint ends the turn before any call.
func TestCheckpointBeforeTheFirstCall(t *testing.T) {
	for _, fail := range []bool{false, true} {
		m := agenttest.NewModel(agenttest.Reply("done"))
		var saved [][]agent.Message
		res := agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{Input: "hello", Checkpoint: func(h []agent.Message) error {
			if len(m.Requests()) == 0 {
				saved = append(saved, h)
			}
			if fail {
				return errors.New("disk full")
			}
			return nil
		}})
		if len(saved) != 1 || len(saved[0]) != 1 || !strings.HasSuffix(saved[0][0].Content, "hello") {
			t.Errorf("fail=%v: saved before the first call %+v; want the user's message", fail, saved)
		}
		if fail && (res.Outcome.Status != agent.StatusError || len(m.Requests()) != 0) {
			t.Errorf("a failed first checkpoint: outcome %+v after %d model calls; want an error before any", res.Outcome, len(m.Requests()))
		}
		if !fail && res.Reply != "done" {
			t.Errorf("reply = %q", res.Reply)
		}
	}
}
