package agent

import (
	"fmt"
	"slices"
)

// Result texts the model sees for calls that did not run normally
// (Agentao's wording, so prompts and evaluations carry over).
const (
	InterruptedResult = "Tool call interrupted: the turn ended before this tool's result was recorded. " +
		"The tool may or may not have run — verify the current state before retrying."
	DoomLoopResult  = "Tool not executed (halted by doom-loop detection)."
	TruncatedResult = "Tool call not executed: your previous response was cut off at the output token limit, " +
		"so its arguments may be incomplete. Re-issue the call with complete arguments, or split the work into smaller steps."
	EmptyNameResult = "Tool call rejected: the tool name was empty. Call one of the available tools by its exact name."
)

// Backfill makes a history API-valid: every assistant tool call gets a tool
// result. Calls without one get InterruptedResult, placed right after the
// results of their batch. msgs is returned unchanged when nothing is missing;
// otherwise a new slice is returned and msgs is not modified.
func Backfill(msgs []Message) []Message {
	var out []Message
	for i := 0; i < len(msgs); i++ {
		m := msgs[i]
		if m.Role != RoleAssistant || len(m.ToolCalls) == 0 {
			if out != nil {
				out = append(out, m)
			}
			continue
		}
		end := i + 1
		answered := make(map[string]bool, len(m.ToolCalls))
		for ; end < len(msgs) && msgs[end].Role == RoleTool; end++ {
			answered[msgs[end].ToolCallID] = true
		}
		var missing []Message
		for _, tc := range m.ToolCalls {
			if !answered[tc.ID] {
				missing = append(missing, Message{Role: RoleTool, ToolCallID: tc.ID, Name: tc.Function.Name, Content: InterruptedResult})
				answered[tc.ID] = true
			}
		}
		if missing == nil {
			if out != nil {
				out = append(out, msgs[i:end]...)
			}
			i = end - 1
			continue
		}
		if out == nil {
			out = slices.Clone(msgs[:i])
		}
		out = append(out, msgs[i:end]...)
		out = append(out, missing...)
		i = end - 1
	}
	if out == nil {
		return msgs
	}
	return out
}

// Validate reports the first way msgs would be rejected by a strict
// OpenAI-compatible API: an unanswered tool call, or a tool result that
// answers no call of the assistant message before it.
func Validate(msgs []Message) error {
	for i := 0; i < len(msgs); i++ {
		m := msgs[i]
		switch {
		case m.Role == RoleTool:
			return fmt.Errorf("message %d: tool result %q follows no assistant tool call", i, m.ToolCallID)
		case m.Role == RoleAssistant && len(m.ToolCalls) > 0:
			want := make(map[string]bool, len(m.ToolCalls))
			for _, tc := range m.ToolCalls {
				if tc.ID == "" {
					return fmt.Errorf("message %d: tool call without id", i)
				}
				want[tc.ID] = true
			}
			j := i + 1
			for ; j < len(msgs) && msgs[j].Role == RoleTool; j++ {
				if !want[msgs[j].ToolCallID] {
					return fmt.Errorf("message %d: tool result %q answers no call of message %d", j, msgs[j].ToolCallID, i)
				}
				delete(want, msgs[j].ToolCallID)
			}
			for id := range want {
				return fmt.Errorf("message %d: tool call %q has no result", i, id)
			}
			i = j - 1
		}
	}
	return nil
}
