package agent

import (
	"context"
	"fmt"
)

// Model is what the loop needs from an LLM provider: one streamed
// chat-completions call. *llm.Client implements it.
//
// Stream calls onDelta, from the calling goroutine, for every streamed piece
// of text or reasoning in order, and returns the assembled assistant message.
// Implementations retry transient failures themselves, but never after a text
// delta was delivered, and stop promptly when ctx is done.
type Model interface {
	Stream(ctx context.Context, req Request, onDelta func(Delta)) (Response, error)
}

// Request is one chat-completions call.
type Request struct {
	Model     string
	Messages  []Message // the system prompt, if any, first
	Tools     []ToolSpec
	MaxTokens int // 0: provider default
}

// Delta is one streamed piece of the assistant's reply.
type Delta struct {
	Text      string
	Reasoning string
}

// Response is the assembled result of one call.
type Response struct {
	Message      Message // role assistant; tool calls assembled from their deltas
	FinishReason string  // "" when the provider sent none
	Usage        Usage
	Attempts     int // how many HTTP attempts the call took (1 = no retry)
	FirstTokenMS int64
}

// Usage counts tokens of one call, or summed over a turn.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	CachedTokens     int `json:"cached_tokens,omitempty"`
}

// Add returns the sum of two usages.
func (u Usage) Add(o Usage) Usage {
	return Usage{
		PromptTokens:     u.PromptTokens + o.PromptTokens,
		CompletionTokens: u.CompletionTokens + o.CompletionTokens,
		CachedTokens:     u.CachedTokens + o.CachedTokens,
	}
}

// ModelError is a model call that failed after the provider's retries.
// StatusCode is the last HTTP status (0 for network or protocol errors).
type ModelError struct {
	StatusCode int
	Attempts   int
	Streamed   bool // text had already reached the caller, so no retry was possible
	Err        error
}

func (e *ModelError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("model call failed with HTTP %d after %d attempt(s): %v", e.StatusCode, e.Attempts, e.Err)
	}
	return fmt.Sprintf("model call failed after %d attempt(s): %v", e.Attempts, e.Err)
}

func (e *ModelError) Unwrap() error { return e.Err }
