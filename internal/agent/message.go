package agent

import "encoding/json"

// Roles of a chat message, as in the OpenAI chat-completions format.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one entry of a conversation in OpenAI chat-completions format.
// A stored history is a []Message without the system prompt, which is rebuilt
// every turn and never persisted.
type Message struct {
	Role             string     `json:"role"`
	Content          string     `json:"content"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
	Name             string     `json:"name,omitempty"`
}

// ToolCall is a function call requested by the model, in OpenAI format.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"` // always "function"
	Function FunctionCall `json:"function"`
}

// FunctionCall names the function and carries its raw JSON arguments exactly
// as the model produced them (they may be invalid JSON).
type FunctionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolSpec describes a tool to the model and to the permission layer.
type ToolSpec struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"` // a JSON Schema object
	// ReadOnly tools never change files, processes or remote state.
	ReadOnly bool `json:"-"`
	// Confirm marks tools that write, execute or reach the network: a rule
	// decision of "ask" only prompts for these (Agentao's requires_confirmation).
	Confirm bool `json:"-"`
}
