package agent

import "time"

// Event types streamed to clients while a turn runs (Agentao's names,
// serialised in lowercase). Append only: clients match on these strings.
const (
	EventTurnBegin        = "turn_begin"
	EventTurnStart        = "turn_start"
	EventLLMCallStarted   = "llm_call_started"
	EventLLMText          = "llm_text"
	EventThinking         = "thinking"
	EventLLMCallCompleted = "llm_call_completed"
	EventToolStart        = "tool_start"
	EventToolOutput       = "tool_output"
	EventToolComplete     = "tool_complete"
	EventToolResult       = "tool_result"
	EventError            = "error"
	EventTurnEnd          = "turn_end"
	// EventContextCompressed: the history was compacted before an LLM
	// call (kind: microcompact, summary, dropped-history).
	EventContextCompressed = "context_compressed"
)

// Event is one thing that happened during a turn. Data is one of this
// package's payload types (or another package's: internal/session's
// approval events); consumers switch on its type. Its JSON fields follow
// Agentao's event catalog.
type Event struct {
	Type string    `json:"type"` // Data.EventType()
	Data Payload   `json:"data"`
	Time time.Time `json:"-"`
}

// Payload is the data of an event.
type Payload interface {
	EventType() string
}

// NewEvent returns the event carrying p at time t.
func NewEvent(p Payload, t time.Time) Event { return Event{Type: p.EventType(), Data: p, Time: t} }

// TurnBegin: a turn begins with the user's message.
type TurnBegin struct {
	UserMessage string `json:"user_message"`
}

// TurnStart: an LLM step of the turn begins (a new assistant message).
type TurnStart struct{}

// LLMCallStarted: a model call is sent.
type LLMCallStarted struct {
	Model     string `json:"model"`
	Messages  int    `json:"n_messages"`
	ToolCount int    `json:"tool_count"`
}

// LLMText is a chunk of the model's answer as it streams.
type LLMText struct {
	Chunk string `json:"chunk"`
}

// Thinking is the model's reasoning text of a step.
type Thinking struct {
	Text string `json:"text"`
}

// LLMCallCompleted: a model call ended. A failed call has Status (the HTTP
// status, when the provider answered one), Streamed and ErrorMessage (not
// for a cancelled call); a successful one its usage and finish reason.
type LLMCallCompleted struct {
	DurationMS       int64  `json:"duration_ms"`
	Status           int    `json:"status,omitempty"`
	Attempts         int    `json:"attempts,omitempty"`
	Streamed         bool   `json:"streamed,omitempty"`
	ErrorMessage     string `json:"error_message,omitempty"`
	FirstTokenMS     int64  `json:"first_token_ms,omitempty"`
	PromptTokens     int    `json:"prompt_tokens,omitempty"`
	CompletionTokens int    `json:"completion_tokens,omitempty"`
	FinishReason     string `json:"finish_reason,omitempty"`
}

// ToolStart: a tool call starts (or is reported, when it did not run).
// Args is the call's JSON arguments, or their text when they do not parse.
type ToolStart struct {
	Tool   string `json:"tool"`
	Args   any    `json:"args"`
	CallID string `json:"call_id"`
}

// ToolOutput is output a running tool streamed (a shell command's).
type ToolOutput struct {
	Tool   string `json:"tool"`
	Chunk  string `json:"chunk"`
	CallID string `json:"call_id"`
}

// ToolComplete: a tool call ended. Status is ok, error, cancelled, denied
// or rejected.
type ToolComplete struct {
	Tool       string `json:"tool"`
	CallID     string `json:"call_id"`
	Status     string `json:"status"`
	DurationMS int64  `json:"duration_ms"`
	Error      string `json:"error"`
}

// ToolResult is what the model gets back from a tool call: the content,
// an excerpt of it when the whole was saved to the workspace (DiskPath).
type ToolResult struct {
	Tool          string `json:"tool"`
	CallID        string `json:"call_id"`
	Content       string `json:"content"`
	ContentHash   string `json:"content_hash"`
	OriginalChars int    `json:"original_chars"`
	SavedToDisk   bool   `json:"saved_to_disk"`
	DiskPath      string `json:"disk_path"`
	Status        string `json:"status"`
	DurationMS    int64  `json:"duration_ms"`
	Error         string `json:"error"`
}

// ErrorEvent: something failed (an LLM call after its retries, the turn).
type ErrorEvent struct {
	Message string `json:"message"`
	Detail  string `json:"detail"`
}

// TurnEnd: the turn ended with this outcome.
type TurnEnd struct {
	FinalText           string `json:"final_text"`
	Status              Status `json:"status"`
	Error               string `json:"error"`
	ToolCount           int    `json:"tool_count"`
	IncompleteReason    string `json:"incomplete_reason"`
	CancelReason        string `json:"cancel_reason"`
	FinishReasonMissing bool   `json:"finish_reason_missing"`
}

// ContextCompressed: the history was compacted before an LLM call.
type ContextCompressed struct {
	Kind          string `json:"kind"`
	BeforeTokens  int    `json:"before_tokens"`
	AfterTokens   int    `json:"after_tokens"`
	ContextTokens int    `json:"context_tokens"`
}

func (TurnBegin) EventType() string         { return EventTurnBegin }
func (TurnStart) EventType() string         { return EventTurnStart }
func (LLMCallStarted) EventType() string    { return EventLLMCallStarted }
func (LLMText) EventType() string           { return EventLLMText }
func (Thinking) EventType() string          { return EventThinking }
func (LLMCallCompleted) EventType() string  { return EventLLMCallCompleted }
func (ToolStart) EventType() string         { return EventToolStart }
func (ToolOutput) EventType() string        { return EventToolOutput }
func (ToolComplete) EventType() string      { return EventToolComplete }
func (ToolResult) EventType() string        { return EventToolResult }
func (ErrorEvent) EventType() string        { return EventError }
func (TurnEnd) EventType() string           { return EventTurnEnd }
func (ContextCompressed) EventType() string { return EventContextCompressed }
