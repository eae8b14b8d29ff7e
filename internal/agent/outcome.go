package agent

import "slices"

// Status is how a turn ended.
type Status string

// Turn statuses.
const (
	StatusOK        Status = "ok"
	StatusError     Status = "error"
	StatusCancelled Status = "cancelled"
)

// Incomplete reasons (Agentao's closed vocabulary). They are only set when the
// status is ok: the turn ended normally but did not produce a real answer;
// IncompleteInterrupted, agentd's own, is the one set with status error.
const (
	IncompleteNoOutput        = "no_output"
	IncompleteReasoningOnly   = "reasoning_only"
	IncompleteLengthTruncated = "length_truncated"
	IncompleteDoomLoop        = "doom_loop"
	IncompleteMaxIterations   = "max_iterations"
	IncompleteLLMError        = "llm_error"
	// IncompleteInterrupted: agentd stopped (a crash, kill -9) while the
	// turn ran; the turn is recorded when its session is next loaded.
	IncompleteInterrupted = "interrupted"
	// IncompleteBudgetExceeded, agentd's own, set with status error: a
	// token budget was spent before an LLM call (Turn.Admit).
	IncompleteBudgetExceeded = "budget_exceeded"
)

// Outcome is the structured result of a turn, returned by the API and kept
// with the session.
type Outcome struct {
	Status              Status `json:"status"`
	IncompleteReason    string `json:"incomplete_reason,omitempty"`
	CancelReason        string `json:"cancel_reason,omitempty"`
	ToolCount           int    `json:"tool_count"`
	Error               string `json:"error,omitempty"`
	FinishReasonMissing bool   `json:"finish_reason_missing,omitempty"`
}

// IsAnswer reports whether the turn produced a complete answer.
func (o Outcome) IsAnswer() bool { return o.Status == StatusOK && o.IncompleteReason == "" }

// Stats are the per-turn counters the metrics and the rollback guard read.
type Stats struct {
	LLMCalls     int   `json:"llm_calls"`
	LLMErrors    int   `json:"llm_errors,omitempty"`
	LLM5xx       int   `json:"llm_5xx,omitempty"`
	ToolCalls    int   `json:"tool_calls"`
	ToolFailures int   `json:"tool_failures,omitempty"`
	Usage        Usage `json:"usage"`
	// Compactions counts the times the history was compacted (compact.go).
	Compactions int `json:"compactions,omitempty"`
	// Tools breaks the tool calls down by tool, in order of first use.
	// Calls of a name the model made up count under UnknownTool, so the
	// model cannot mint new names in metrics.
	Tools []ToolStat `json:"tools,omitempty"`
}

// UnknownTool is the ToolStat name of calls to tools that do not exist.
const UnknownTool = "(unknown)"

// ToolStat counts one tool's calls in a turn.
type ToolStat struct {
	Name     string `json:"name"`
	Calls    int    `json:"calls"`
	Failures int    `json:"failures,omitempty"`
	// Millis is the time the calls ran, summed (0 for calls that did not
	// run: refused, cancelled, invalid).
	Millis int64 `json:"ms"`
}

// countTool adds one call of tool name to s.
func (s *Stats) countTool(name string, failed bool, millis int64) {
	i := slices.IndexFunc(s.Tools, func(t ToolStat) bool { return t.Name == name })
	if i < 0 {
		s.Tools = append(s.Tools, ToolStat{Name: name})
		i = len(s.Tools) - 1
	}
	t := &s.Tools[i]
	t.Calls++
	t.Millis += millis
	if failed {
		t.Failures++
	}
}
