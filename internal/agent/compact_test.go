package agent_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
)

// history is n earlier turns, each a user message, a read_file call and a
// result of size chars, and an answer.
func history(n, size int) []agent.Message {
	var h []agent.Message
	for i := range n {
		id := fmt.Sprintf("call_%d", i)
		h = append(h,
			agent.Message{Role: agent.RoleUser, Content: fmt.Sprintf("question %d", i)},
			agent.Message{Role: agent.RoleAssistant, ToolCalls: []agent.ToolCall{{ID: id, Type: "function",
				Function: agent.FunctionCall{Name: "read_file", Arguments: `{"file_path":"f"}`}}}},
			agent.Message{Role: agent.RoleTool, ToolCallID: id, Name: "read_file", Content: fmt.Sprintf("%d:", i) + strings.Repeat("x", size)},
			agent.Message{Role: agent.RoleAssistant, Content: fmt.Sprintf("answer %d", i)})
	}
	return h
}

func cleared(msgs []agent.Message) (n int) {
	for _, m := range msgs {
		if m.Role == agent.RoleTool && strings.HasPrefix(m.Content, "[Earlier tool result cleared") {
			n++
		}
	}
	return n
}

type compactRun struct {
	res       agent.Result
	model     *agenttest.Model
	events    []agent.Event
	rewritten int
	saved     [][]agent.Message
}

func runCompact(t *testing.T, hist []agent.Message, window int, steps ...agenttest.Step) compactRun {
	t.Helper()
	var cr compactRun
	cr.model = agenttest.NewModel(steps...)
	a := agent.New(cr.model, agent.Config{ContextTokens: window})
	cr.res = a.Run(t.Context(), agent.Turn{Authorize: agent.AllowAll,
		Model: "m", History: hist, Input: "go on", Tools: []agent.Tool{echoTool()},
		Emit:             func(e agent.Event) { cr.events = append(cr.events, e) },
		HistoryRewritten: func() { cr.rewritten++ },
		Checkpoint:       func(h []agent.Message) error { cr.saved = append(cr.saved, h); return nil },
	})
	if err := agent.Validate(cr.res.Messages); err != nil {
		t.Fatalf("history after compaction is not API-valid: %v", err)
	}
	for _, h := range cr.saved {
		if err := agent.Validate(h); err != nil {
			t.Fatalf("a checkpoint is not API-valid: %v", err)
		}
	}
	return cr
}

func (cr compactRun) compressed() []string {
	var kinds []string
	for _, e := range cr.events {
		if e.Type == agent.EventContextCompressed {
			kinds = append(kinds, e.Data.(agent.ContextCompressed).Kind)
		}
	}
	return kinds
}

func TestCompaction(t *testing.T) {
	// 10 earlier turns with 2,000-character results: about 5,600 tokens.
	hist := history(10, 2000)
	tests := []struct {
		name        string
		window      int
		steps       []agenttest.Step
		wantKinds   []string
		wantCleared int
		wantSummary bool
	}{
		{"small request: nothing", 100_000, []agenttest.Step{agenttest.Reply("done")}, nil, 0, false},
		// 5,600 / 9,000 = 62%: between 55% and 65%.
		{"above 55%: old tool results cleared", 9_000, []agenttest.Step{agenttest.Reply("done")}, []string{agent.CompactMicro}, 4, false},
		// 5,600 / 7,000 = 80%.
		{"above 65%: earlier turns summarised", 7_000,
			[]agenttest.Step{agenttest.Reply("SUMMARY: ten questions about f, all answered."), agenttest.Reply("done")},
			[]string{agent.CompactSummary}, 0, true},
		{"summary fails: tool results cleared instead", 7_000,
			[]agenttest.Step{{Err: &agent.ModelError{StatusCode: 503, Attempts: 5, Err: fmt.Errorf("overloaded")}}, agenttest.Reply("done")},
			[]string{agent.CompactMicro}, 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := runCompact(t, hist, tc.window, tc.steps...)
			if cr.res.Reply != "done" || cr.res.Outcome.Status != agent.StatusOK {
				t.Fatalf("turn = %q %+v", cr.res.Reply, cr.res.Outcome)
			}
			if got := cr.compressed(); fmt.Sprint(got) != fmt.Sprint(tc.wantKinds) {
				t.Errorf("compactions = %v; want %v", got, tc.wantKinds)
			}
			reqs := cr.model.Requests()
			last := reqs[len(reqs)-1]
			if n := cleared(last.Messages); n != tc.wantCleared {
				t.Errorf("the request had %d cleared tool results; want %d", n, tc.wantCleared)
			}
			if tc.wantSummary {
				sum := reqs[0]
				if len(sum.Tools) != 0 || sum.Messages[0].Content != agent.SummaryPrompt || !strings.Contains(sum.Messages[1].Content, "question 9") {
					t.Errorf("summary request = %+v", sum.Messages[:1])
				}
				// The real call: the summary, the acknowledgement, then this turn.
				if len(last.Messages) != 3 || !strings.Contains(last.Messages[0].Content, "SUMMARY: ten questions") ||
					!strings.HasSuffix(last.Messages[2].Content, "go on") {
					t.Errorf("request after the summary = %+v", last.Messages)
				}
				if len(cr.res.Messages) != 4 || cr.res.Stats.LLMCalls != 2 {
					t.Errorf("history after the turn has %d messages, %d LLM calls; want 4, 2", len(cr.res.Messages), cr.res.Stats.LLMCalls)
				}
			}
			if want := len(tc.wantKinds) > 0; (cr.rewritten > 0) != want {
				t.Errorf("HistoryRewritten called %d times; want it called: %v", cr.rewritten, want)
			}
			if len(tc.wantKinds) > 0 && cr.res.Stats.Compactions != 1 {
				t.Errorf("compactions counted = %d", cr.res.Stats.Compactions)
			}
			// The six most recent tool results are never cleared.
			if got := cleared(hist); got != 0 {
				t.Errorf("the caller's history was modified")
			}
		})
	}
}

// TestCompactionKeepsTheCurrentTurn: a turn whose own tool results grow
// past the window clears its older results, never the latest ones.
func TestCompactionKeepsTheCurrentTurn(t *testing.T) {
	big := strings.Repeat("y", 3000)
	m := agenttest.NewModel()
	calls := 0
	m.Default = func(req agent.Request) agenttest.Step {
		calls++
		if calls <= 9 {
			return agenttest.Calls("echo", fmt.Sprintf(`{"n":%d,"pad":%q}`, calls, big))
		}
		return agenttest.Reply("done")
	}
	a := agent.New(m, agent.Config{ContextTokens: 12_000})
	res := a.Run(t.Context(), agent.Turn{Authorize: agent.AllowAll, Model: "m", Input: "work", Tools: []agent.Tool{echoTool()}})
	if res.Reply != "done" || agent.Validate(res.Messages) != nil {
		t.Fatalf("turn = %q %+v", res.Reply, res.Outcome)
	}
	reqs := m.Requests()
	last := reqs[len(reqs)-1]
	if cleared(last.Messages) == 0 {
		t.Errorf("no tool result was cleared in a turn of %d LLM calls", len(reqs))
	}
	tools := 0
	for i := len(last.Messages) - 1; i >= 0 && tools < 6; i-- {
		if mm := last.Messages[i]; mm.Role == agent.RoleTool {
			tools++
			if strings.HasPrefix(mm.Content, "[Earlier tool result cleared") {
				t.Errorf("one of the 6 most recent tool results was cleared")
			}
		}
	}
}

func TestContextOverflowRecovery(t *testing.T) {
	overflow := agenttest.Step{Err: &agent.ModelError{StatusCode: 400, Attempts: 1,
		Err: fmt.Errorf(`{"error":{"code":"context_length_exceeded","message":"This model's maximum context length is 8192 tokens."}}`)}}
	hist := history(3, 100)
	tests := []struct {
		name      string
		steps     []agenttest.Step
		wantKinds []string
		wantReply string
		wantMsgs  int // history length after the turn
	}{
		{"summary, then the call succeeds", []agenttest.Step{overflow, agenttest.Reply("S"), agenttest.Reply("done")},
			[]string{agent.CompactSummary}, "done", 4},
		{"still too long: only this turn", []agenttest.Step{overflow, agenttest.Reply("S"), overflow, agenttest.Reply("done")},
			[]string{agent.CompactSummary, agent.CompactDrop}, "done", 2},
		{"summary fails: only this turn", []agenttest.Step{overflow, overflow, agenttest.Reply("done")},
			[]string{agent.CompactDrop}, "done", 2},
		{"nothing left to drop: LLM error", []agenttest.Step{overflow, agenttest.Reply("S"), overflow, overflow},
			[]string{agent.CompactSummary, agent.CompactDrop}, "[LLM API error: ", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cr := runCompact(t, hist, 100_000, tc.steps...)
			if !strings.HasPrefix(cr.res.Reply, tc.wantReply) {
				t.Errorf("reply = %q; want %q", cr.res.Reply, tc.wantReply)
			}
			if got := cr.compressed(); fmt.Sprint(got) != fmt.Sprint(tc.wantKinds) {
				t.Errorf("compactions = %v; want %v", got, tc.wantKinds)
			}
			if len(cr.res.Messages) != tc.wantMsgs {
				t.Errorf("history has %d messages; want %d: %+v", len(cr.res.Messages), tc.wantMsgs, cr.res.Messages)
			}
		})
	}
	// Any other 400 is an error at once.
	other := agenttest.Step{Err: &agent.ModelError{StatusCode: 400, Attempts: 1, Err: fmt.Errorf("invalid tool schema")}}
	if cr := runCompact(t, hist, 100_000, other); !strings.HasPrefix(cr.res.Reply, "[LLM API error") || len(cr.compressed()) != 0 {
		t.Errorf("a plain 400 = %q, compactions %v", cr.res.Reply, cr.compressed())
	}
}

// TestOneSummaryPerTurn: when the current turn alone keeps the request
// large, the summary is not summarised again at every call.
func TestOneSummaryPerTurn(t *testing.T) {
	big := strings.Repeat("w", 3000)
	m := agenttest.NewModel()
	summaries, calls := 0, 0
	m.Default = func(req agent.Request) agenttest.Step {
		if req.Messages[0].Content == agent.SummaryPrompt {
			summaries++
			return agenttest.Reply("S")
		}
		calls++
		if calls <= 6 {
			return agenttest.Calls("echo", fmt.Sprintf(`{"n":%d,"pad":%q}`, calls, big))
		}
		return agenttest.Reply("done")
	}
	a := agent.New(m, agent.Config{ContextTokens: 7000})
	res := a.Run(t.Context(), agent.Turn{Authorize: agent.AllowAll, Model: "m", History: history(10, 2000), Input: "work", Tools: []agent.Tool{echoTool()}})
	if res.Reply != "done" || agent.Validate(res.Messages) != nil {
		t.Fatalf("turn = %q %+v", res.Reply, res.Outcome)
	}
	if summaries != 1 {
		t.Errorf("%d summaries in one turn; want 1", summaries)
	}
}
