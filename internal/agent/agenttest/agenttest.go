// Package agenttest provides hand-written fakes of agent.Model and
// agent.Tool for tests: a model scripted step by step and tools made of
// functions.
package agenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/agentd/agentd/internal/agent"
)

// Step is what the scripted model answers to one call.
type Step struct {
	Text      string           // streamed in ChunkSize pieces
	Reasoning string           // returned as reasoning_content
	ToolCalls []agent.ToolCall // requested tools
	Finish    string           // finish_reason; default "stop", or "tool_calls" with calls; "-" sends none
	Usage     agent.Usage
	Err       error // returned instead of a response
	// Block makes the call wait until its context is done (after streaming Text).
	Block bool
	// Panic makes the call panic with this value.
	Panic any
}

// Reply is a step that answers with text.
func Reply(text string) Step { return Step{Text: text} }

// Calls is a step that requests tool calls given as name, JSON-arguments pairs.
func Calls(nameArgs ...string) Step {
	var s Step
	for i := 0; i+1 < len(nameArgs); i += 2 {
		s.ToolCalls = append(s.ToolCalls, agent.ToolCall{
			ID: fmt.Sprintf("call_%d_%s", i/2, nameArgs[i]), Type: "function",
			Function: agent.FunctionCall{Name: nameArgs[i], Arguments: nameArgs[i+1]},
		})
	}
	return s
}

// Model is a scripted agent.Model. Each call consumes the next step; when
// the script runs out, Default is used (an error if nil). Safe for
// concurrent use.
type Model struct {
	ChunkSize int // runes per streamed text delta; default 4

	mu       sync.Mutex
	steps    []Step
	Default  func(req agent.Request) Step
	requests []agent.Request
}

// NewModel returns a model that plays steps in order.
func NewModel(steps ...Step) *Model { return &Model{steps: steps} }

// Push appends steps to the script.
func (m *Model) Push(steps ...Step) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.steps = append(m.steps, steps...)
}

// Requests returns the requests received so far.
func (m *Model) Requests() []agent.Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]agent.Request(nil), m.requests...)
}

// Stream implements agent.Model.
func (m *Model) Stream(ctx context.Context, req agent.Request, onDelta func(agent.Delta)) (agent.Response, error) {
	m.mu.Lock()
	req.Messages = append([]agent.Message(nil), req.Messages...)
	m.requests = append(m.requests, req)
	var st Step
	switch {
	case len(m.steps) > 0:
		st, m.steps = m.steps[0], m.steps[1:]
	case m.Default != nil:
		st = m.Default(req)
	default:
		st = Step{Err: fmt.Errorf("agenttest: script exhausted after %d calls", len(m.requests)-1)}
	}
	chunk := m.ChunkSize
	m.mu.Unlock()
	if chunk <= 0 {
		chunk = 4
	}
	if err := ctx.Err(); err != nil {
		return agent.Response{}, context.Cause(ctx)
	}
	if st.Panic != nil {
		panic(st.Panic)
	}
	if st.Err != nil {
		return agent.Response{}, st.Err
	}
	runes := []rune(st.Text)
	for i := 0; i < len(runes); i += chunk {
		if err := ctx.Err(); err != nil {
			return agent.Response{}, context.Cause(ctx)
		}
		onDelta(agent.Delta{Text: string(runes[i:min(i+chunk, len(runes))])})
	}
	if st.Block {
		<-ctx.Done()
		return agent.Response{}, context.Cause(ctx)
	}
	finish := st.Finish
	switch {
	case finish == "-":
		finish = ""
	case finish == "" && len(st.ToolCalls) > 0:
		finish = "tool_calls"
	case finish == "":
		finish = "stop"
	}
	calls := append([]agent.ToolCall(nil), st.ToolCalls...)
	return agent.Response{
		Message:      agent.Message{Role: agent.RoleAssistant, Content: st.Text, ReasoningContent: st.Reasoning, ToolCalls: calls},
		FinishReason: finish,
		Usage:        st.Usage,
		Attempts:     1,
	}, nil
}

// Tool is an agent.Tool made of a spec and a function.
type Tool struct {
	Def   agent.ToolSpec
	RunFn func(ctx context.Context, c agent.Call) (string, error)

	mu    sync.Mutex
	calls []agent.Call
}

// NewTool returns a tool named name that runs fn.
func NewTool(name string, fn func(ctx context.Context, c agent.Call) (string, error)) *Tool {
	return &Tool{
		Def: agent.ToolSpec{
			Name: name, Description: "test tool " + name,
			Parameters: json.RawMessage(`{"type":"object","properties":{}}`),
		},
		RunFn: fn,
	}
}

// Spec implements agent.Tool.
func (t *Tool) Spec() agent.ToolSpec { return t.Def }

// Run implements agent.Tool.
func (t *Tool) Run(ctx context.Context, c agent.Call) (string, error) {
	t.mu.Lock()
	t.calls = append(t.calls, c)
	t.mu.Unlock()
	return t.RunFn(ctx, c)
}

// Calls returns the calls received so far.
func (t *Tool) Calls() []agent.Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]agent.Call(nil), t.calls...)
}
