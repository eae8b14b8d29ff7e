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

// Event is one thing that happened during a turn. Data is a JSON-encodable
// value (a map or struct) whose fields follow Agentao's event catalog.
type Event struct {
	Type string    `json:"type"`
	Data any       `json:"data"`
	Time time.Time `json:"-"`
}
