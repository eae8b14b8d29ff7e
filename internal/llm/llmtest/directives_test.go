package llmtest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
)

func TestDefaultResponder(t *testing.T) {
	user := func(s string) agent.Message { return agent.Message{Role: agent.RoleUser, Content: s} }
	call := func(id string) agent.Message {
		return agent.Message{Role: agent.RoleAssistant, ToolCalls: []agent.ToolCall{{ID: id, Type: "function", Function: agent.FunctionCall{Name: "ls"}}}}
	}
	result := func(id, s string) agent.Message {
		return agent.Message{Role: agent.RoleTool, ToolCallID: id, Content: s}
	}
	long := strings.Repeat("é", 250)

	tests := []struct {
		name string
		msgs []agent.Message
		want llmtest.Reply
	}{
		{"echo", []agent.Message{{Role: agent.RoleSystem, Content: "sys"}, user("hello there")},
			llmtest.Reply{Text: "echo: hello there"}},
		{"echo of the last user message", []agent.Message{user("one"), {Role: agent.RoleAssistant, Content: "echo: one"}, user("  two  ")},
			llmtest.Reply{Text: "echo: two"}},
		{"no user message", []agent.Message{{Role: agent.RoleSystem, Content: "sys"}},
			llmtest.Reply{Text: "echo: "}},
		{"tool call", []agent.Message{user(`list it [[tool ls {"path": "/tmp", "all": true}]]`)},
			llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "ls", Arguments: `{"path":"/tmp","all":true}`}}}},
		{"tool call without args", []agent.Message{user(`[[tool pwd]]`)},
			llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "pwd", Arguments: `{}`}}}},
		{"args containing brackets", []agent.Message{user(`[[tool echo {"s": "]] [[x"}]]`)},
			llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "echo", Arguments: `{"s":"]] [[x"}`}}}},
		{"parallel tool calls", []agent.Message{user(`[[tool a {"n":1}]] and [[tool b]]`)},
			llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "a", Arguments: `{"n":1}`}, {Name: "b", Arguments: `{}`}}}},
		{"after the tool result", []agent.Message{user(`[[tool ls]]`), call("c1"), result("c1", "a.go b.go")},
			llmtest.Reply{Text: "tool said: a.go b.go"}},
		{"tool result cut to 200 characters", []agent.Message{user(`[[tool ls]]`), call("c1"), result("c1", long)},
			llmtest.Reply{Text: "tool said: " + long[:400]}},
		{"tool result of an earlier turn", []agent.Message{user(`[[tool ls]]`), call("c1"), result("c1", "x"), user("[[tool ls]]")},
			llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "ls", Arguments: `{}`}}}},
		{"error", []agent.Message{user("[[error 503]] hi")},
			llmtest.Reply{Status: 503, ErrorMessage: "llmtest: directive [[error 503]]"}},
		{"error wins over a tool", []agent.Message{user("[[tool ls]][[error 429]]")},
			llmtest.Reply{Status: 429, ErrorMessage: "llmtest: directive [[error 429]]"}},
		{"sleep", []agent.Message{user("[[sleep 2s]]slow")},
			llmtest.Reply{Text: "echo: slow", Delay: 2 * time.Second}},
		{"hang", []agent.Message{user("wait [[hang]]")},
			llmtest.Reply{Text: "echo: wait", HangAfterChunks: 1}},
		{"unknown and malformed directives stay", []agent.Message{user(`[[nope]] [[error 200]] [[sleep x]] [[tool bad name]] [[tool f {oops]] [[hang`)},
			llmtest.Reply{Text: `echo: [[nope]] [[error 200]] [[sleep x]] [[tool bad name]] [[tool f {oops]] [[hang`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := llmtest.DefaultResponder(llmtest.Request{Model: "m", Messages: tc.msgs})
			if g, w := mustJSON(got), mustJSON(tc.want); g != w {
				t.Errorf("DefaultResponder = %s; want %s", g, w)
			}
		})
	}
}

// TestDefaultResponderLoop drives a whole tool round trip through the server
// as the agent loop would.
func TestDefaultResponderLoop(t *testing.T) {
	s := llmtest.NewServer(t)
	msgs := []agent.Message{{Role: agent.RoleUser, Content: `[[tool read_file {"path":"go.mod"}]]`}}
	body := func() string { return mustJSON(map[string]any{"model": "m", "messages": msgs}) }

	var first struct {
		Choices []struct {
			Message      agent.Message `json:"message"`
			FinishReason string        `json:"finish_reason"`
		} `json:"choices"`
	}
	postJSON(t, s.URL()+"/chat/completions", body(), &first)
	m := first.Choices[0].Message
	if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "read_file" || m.ToolCalls[0].Function.Arguments != `{"path":"go.mod"}` {
		t.Fatalf("first reply = %+v; want a call of read_file", m)
	}
	msgs = append(msgs, m, agent.Message{Role: agent.RoleTool, ToolCallID: m.ToolCalls[0].ID, Content: "module x"})
	var second struct {
		Choices []struct {
			Message agent.Message `json:"message"`
		} `json:"choices"`
	}
	postJSON(t, s.URL()+"/chat/completions", body(), &second)
	if got := second.Choices[0].Message.Content; got != "tool said: module x" {
		t.Errorf("second reply = %q; want %q", got, "tool said: module x")
	}
}
