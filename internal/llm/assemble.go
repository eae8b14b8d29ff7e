package llm

import (
	"crypto/rand"
	"encoding/hex"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentd/agentd/internal/agent"
)

// assembler builds the assistant message from the chunks of one stream.
type assembler struct {
	text      strings.Builder
	reasoning strings.Builder
	calls     []*callBuilder
	finish    string
	usage     agent.Usage
	chunks    int // chunks received
}

type callBuilder struct {
	index    int
	hasIndex bool
	id, typ  string
	name     string
	args     strings.Builder
}

// add takes one chunk and returns the text and reasoning it carries, and
// whether it carried anything of the reply (text, reasoning or a tool call).
func (a *assembler) add(c openai.ChatCompletionStreamResponse) (d agent.Delta, content bool) {
	a.chunks++
	if c.Usage != nil {
		a.usage = agent.Usage{PromptTokens: c.Usage.PromptTokens, CompletionTokens: c.Usage.CompletionTokens}
		if c.Usage.PromptTokensDetails != nil {
			a.usage.CachedTokens = c.Usage.PromptTokensDetails.CachedTokens
		}
	}
	for _, ch := range c.Choices {
		if ch.Index != 0 { // only one choice is asked for
			continue
		}
		if ch.FinishReason != "" && ch.FinishReason != openai.FinishReasonNull {
			a.finish = string(ch.FinishReason)
		}
		d.Text += ch.Delta.Content
		d.Reasoning += ch.Delta.ReasoningContent
		a.text.WriteString(ch.Delta.Content)
		a.reasoning.WriteString(ch.Delta.ReasoningContent)
		for _, tc := range ch.Delta.ToolCalls {
			a.addToolCall(tc)
			content = true
		}
	}
	return d, content || d.Text != "" || d.Reasoning != ""
}

// addToolCall adds one piece of a streamed tool call. The piece belongs to
// the last call with its index (unless it names another id: some providers
// reuse index 0); without an index, to the call with its id; without either,
// to the last call.
func (a *assembler) addToolCall(tc openai.ToolCall) {
	var c *callBuilder
	switch {
	case tc.Index != nil:
		for i := len(a.calls) - 1; i >= 0; i-- {
			if a.calls[i].hasIndex && a.calls[i].index == *tc.Index {
				if tc.ID == "" || a.calls[i].id == "" || a.calls[i].id == tc.ID {
					c = a.calls[i]
				}
				break
			}
		}
	case tc.ID != "":
		for _, call := range a.calls {
			if call.id == tc.ID {
				c = call
				break
			}
		}
	case len(a.calls) > 0:
		c = a.calls[len(a.calls)-1]
	}
	if c == nil {
		c = &callBuilder{}
		if tc.Index != nil {
			c.index, c.hasIndex = *tc.Index, true
		}
		a.calls = append(a.calls, c)
	}
	if c.id == "" {
		c.id = tc.ID
	}
	if c.typ == "" {
		c.typ = string(tc.Type)
	}
	if c.name == "" {
		c.name = tc.Function.Name
	}
	c.args.WriteString(tc.Function.Arguments)
}

// message returns the assembled assistant message, with an id and a type
// filled in on every tool call.
func (a *assembler) message() agent.Message {
	m := agent.Message{
		Role:             agent.RoleAssistant,
		Content:          a.text.String(),
		ReasoningContent: a.reasoning.String(),
	}
	for _, c := range a.calls {
		tc := agent.ToolCall{
			ID:       c.id,
			Type:     c.typ,
			Function: agent.FunctionCall{Name: c.name, Arguments: c.args.String()},
		}
		if tc.ID == "" {
			tc.ID = newCallID()
		}
		if tc.Type == "" {
			tc.Type = "function"
		}
		m.ToolCalls = append(m.ToolCalls, tc)
	}
	return m
}

// newCallID returns "call_" and 24 random hex digits.
func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return "call_" + hex.EncodeToString(b[:])
}
