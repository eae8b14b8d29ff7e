package agent_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
)

// TestAdmitStopsBeforeACall: Turn.Admit is asked before every LLM call; a
// refusal ends the turn there with status error, the Stop's reason, a
// "[Stopped: …]" reply and a valid history, and the call is not made.
func TestAdmitStopsBeforeACall(t *testing.T) {
	budget := &agent.Stop{Reason: agent.IncompleteBudgetExceeded, Message: "the daily token budget of tenant acme is spent"}
	tcs := []struct {
		name     string
		steps    []agenttest.Step
		refuseAt int   // the Admit call (1-based) that refuses
		err      error // what it returns
		want     want
		calls    int // model calls made
	}{
		{name: "before the first call", steps: []agenttest.Step{agenttest.Reply("never")}, refuseAt: 1, err: budget,
			want: want{status: agent.StatusError, incomplete: agent.IncompleteBudgetExceeded, reply: "[Stopped: " + budget.Message + "]"}},
		{name: "after a tool call, before the second", steps: []agenttest.Step{agenttest.Calls("echo", `{"a":1}`), agenttest.Reply("never")},
			refuseAt: 2, err: budget, calls: 1,
			want: want{status: agent.StatusError, incomplete: agent.IncompleteBudgetExceeded, reply: "[Stopped: " + budget.Message + "]",
				toolCount: 1, llmCalls: 1, toolResults: []string{`echoed {"a":1}`}}},
		{name: "an error that is no Stop", steps: []agenttest.Step{agenttest.Calls("echo", `{}`), agenttest.Reply("never")},
			refuseAt: 2, err: errors.New("meter down"), calls: 1,
			want: want{status: agent.StatusError, incomplete: "refused", reply: "[Stopped: meter down]", toolCount: 1, llmCalls: 1, toolResults: []string{"echoed"}}},
		{name: "admitted throughout", steps: []agenttest.Step{agenttest.Calls("echo", `{}`), agenttest.Reply("done")}, refuseAt: 99, calls: 2,
			want: want{status: agent.StatusOK, reply: "done", toolCount: 1, llmCalls: 2, toolResults: []string{"echoed"}}},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			m := agenttest.NewModel(tc.steps...)
			asked := 0
			var events []string
			res := agent.New(m, agent.Config{}).Run(t.Context(), agent.Turn{
				Authorize: agent.AllowAll, Input: "go", Tools: []agent.Tool{echoTool()},
				Admit: func() error {
					asked++
					if asked == tc.refuseAt {
						return tc.err
					}
					return nil
				},
				Emit: func(e agent.Event) { events = append(events, e.Type) },
			})
			checkResult(t, res, tc.want)
			if n := len(m.Requests()); n != tc.calls {
				t.Errorf("model calls = %d; want %d", n, tc.calls)
			}
			if tc.want.status == agent.StatusError {
				if res.Outcome.Error == "" || res.Outcome.Error != tc.err.Error() {
					t.Errorf("outcome error = %q; want %q", res.Outcome.Error, tc.err.Error())
				}
				last := res.Messages[len(res.Messages)-1]
				if last.Role != agent.RoleAssistant || last.Content != tc.want.reply {
					t.Errorf("last message = %+v; want the assistant's %q", last, tc.want.reply)
				}
				if !contains(events, agent.EventError) {
					t.Errorf("events = %v; want an error event for the stop", events)
				}
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestCalledSeesEveryCall: Turn.Called gets each LLM call with its model,
// usage and error type.
func TestCalledSeesEveryCall(t *testing.T) {
	withUsage := func(s agenttest.Step, in, out int) agenttest.Step {
		s.Usage = agent.Usage{PromptTokens: in, CompletionTokens: out}
		return s
	}
	tcs := []struct {
		name   string
		steps  []agenttest.Step
		cancel bool // the turn's context is cancelled (user-cancel) by the first call
		want   []agent.LLMCall
	}{
		{name: "two successful calls", steps: []agenttest.Step{withUsage(agenttest.Calls("echo", `{}`), 10, 2), withUsage(agenttest.Reply("ok"), 15, 3)},
			want: []agent.LLMCall{{Model: "m", Usage: agent.Usage{PromptTokens: 10, CompletionTokens: 2}}, {Model: "m", Usage: agent.Usage{PromptTokens: 15, CompletionTokens: 3}}}},
		{name: "a 5xx", steps: []agenttest.Step{{Err: &agent.ModelError{StatusCode: 503, Attempts: 3, Err: errors.New("unavailable")}}},
			want: []agent.LLMCall{{Model: "m", ErrorType: "503", Status: 503}}},
		{name: "a 429", steps: []agenttest.Step{{Err: &agent.ModelError{StatusCode: 429, Attempts: 1, Err: errors.New("slow down")}}},
			want: []agent.LLMCall{{Model: "m", ErrorType: "429", Status: 429}}},
		{name: "a timeout", steps: []agenttest.Step{{Err: fmt.Errorf("read: %w", context.DeadlineExceeded)}},
			want: []agent.LLMCall{{Model: "m", ErrorType: "timeout"}}},
		{name: "something else", steps: []agenttest.Step{{Err: errors.New("connection reset")}},
			want: []agent.LLMCall{{Model: "m", ErrorType: "_OTHER"}}},
		{name: "cancelled", steps: []agenttest.Step{{Block: true}}, cancel: true,
			want: []agent.LLMCall{{Model: "m", ErrorType: "cancelled"}}},
	}
	for _, tc := range tcs {
		t.Run(tc.name, func(t *testing.T) {
			m := agenttest.NewModel(tc.steps...)
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			var got []agent.LLMCall
			res := agent.New(m, agent.Config{}).Run(ctx, agent.Turn{
				Authorize: agent.AllowAll, Model: "m", Input: "go", Tools: []agent.Tool{echoTool()},
				Emit: func(e agent.Event) {
					if tc.cancel && e.Type == agent.EventLLMCallStarted {
						cancel(agent.Cancelled("user-cancel"))
					}
				},
				Called: func(c agent.LLMCall) {
					if c.Duration < 0 {
						t.Errorf("call duration %v < 0", c.Duration)
					}
					c.Duration = 0
					got = append(got, c)
				},
			})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Called saw %+v; want %+v (outcome %+v)", got, tc.want, res.Outcome)
			}
		})
	}
}
