package llmtest

import (
	"encoding/json"
	"time"

	"github.com/agentd/agentd/internal/agent"
)

// Request is one chat-completions request as the server received it.
type Request struct {
	Model    string
	Messages []agent.Message // content parts are joined into Content
	Tools    []agent.ToolSpec
	// Stream and IncludeUsage mirror "stream" and
	// "stream_options.include_usage".
	Stream       bool
	IncludeUsage bool
	// MaxTokens is max_tokens, or max_completion_tokens when that is set.
	MaxTokens     int
	Authorization string // the raw Authorization header
	Body          []byte // the raw JSON body
}

// Reply scripts the answer to one chat request. The zero Reply streams an
// empty assistant message that ends with finish_reason "stop".
//
// A streamed reply is sent as frames in this order: the role frame, then
// (after Delay) Reasoning, Text and ToolCalls pieces, a frame with the finish
// reason, the usage frame, then [DONE]. HangAfterChunks and DropAfterChunks
// count these data frames, the role frame being frame 1.
type Reply struct {
	// Text is the assistant's content, streamed in pieces of ChunkSize runes.
	Text string
	// Reasoning is streamed as reasoning_content before Text.
	Reasoning string
	// ToolCalls are streamed after Text: per call a first piece with index,
	// id, type and name and empty arguments, then the arguments split over at
	// least two pieces (pieces of ChunkSize runes when longer).
	ToolCalls []ToolCall
	// ChunkSize is how many runes of text go into one frame; 0 means 4.
	ChunkSize int
	// InterleaveToolCalls sends the pieces of the tool calls round-robin
	// instead of one call after the other.
	InterleaveToolCalls bool
	// OmitIndex leaves the index out of every tool-call piece (some
	// providers do). Do not combine with InterleaveToolCalls.
	OmitIndex bool

	// FinishReason defaults to "stop", or "tool_calls" when there are tool
	// calls. OmitFinishReason sends no finish frame at all.
	FinishReason     string
	OmitFinishReason bool

	// Usage is sent when the request asked for it (stream_options.include_usage)
	// and always in a non-streamed reply. nil means an estimate: a token per
	// four runes of prompt and of output. OmitUsage never sends it.
	Usage     *Usage
	OmitUsage bool

	// Status, when 400 or more, answers with that HTTP status and an
	// OpenAI-shaped error body carrying ErrorMessage (default: the status
	// text). RetryAfter, when set, is sent verbatim as the Retry-After header
	// (with any status).
	Status       int
	RetryAfter   string
	ErrorMessage string

	// RawBody, when set, is sent verbatim as text/plain with Status (default
	// 200) instead of anything else: a garbage response.
	RawBody string
	// Frames, when set, are sent verbatim as the data of SSE frames, followed
	// by [DONE], instead of the frames built from the fields above. Use it
	// for shapes the fields cannot express (a piece without an id, an error
	// inside the stream).
	Frames []string

	// Delay waits after the role frame, before the first content frame (for
	// a non-streamed reply: before answering).
	Delay time.Duration
	// ChunkDelay waits before each frame after the first.
	ChunkDelay time.Duration
	// HangAfterChunks > 0 sends that many frames, then blocks until the client
	// goes away or the server closes (a non-streamed reply blocks at once).
	HangAfterChunks int
	// DropAfterChunks > 0 sends that many frames, then closes the connection
	// without ending the stream (a non-streamed reply closes at once).
	DropAfterChunks int
}

// ToolCall is a tool call in a Reply. An empty ID is replaced by a unique one
// ("call_llmtest_<request>_<n>"); empty Arguments by "{}".
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Usage is the token usage a Reply reports.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	CachedTokens     int
}

// Wire types of the requests the server decodes. They are written here
// rather than taken from go-openai so that the fake checks the client
// independently.
type wireRequest struct {
	Model               string        `json:"model"`
	Messages            []wireMessage `json:"messages"`
	Tools               []wireTool    `json:"tools"`
	Stream              bool          `json:"stream"`
	MaxTokens           int           `json:"max_tokens"`
	MaxCompletionTokens int           `json:"max_completion_tokens"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type wireMessage struct {
	Role             string           `json:"role"`
	Content          json.RawMessage  `json:"content"`
	ReasoningContent string           `json:"reasoning_content"`
	ToolCalls        []agent.ToolCall `json:"tool_calls"`
	ToolCallID       string           `json:"tool_call_id"`
	Name             string           `json:"name"`
}

type wireTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// Wire types of what the server sends.
type chunk struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             json.RawMessage `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int        `json:"index"`
	Delta        chunkDelta `json:"delta"`
	Logprobs     *struct{}  `json:"logprobs"`
	FinishReason *string    `json:"finish_reason"`
}

type chunkDelta struct {
	Role             string          `json:"role,omitempty"`
	Content          *string         `json:"content,omitempty"`
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	ToolCalls        []chunkToolCall `json:"tool_calls,omitempty"`
}

type chunkToolCall struct {
	Index    *int          `json:"index,omitempty"`
	ID       string        `json:"id,omitempty"`
	Type     string        `json:"type,omitempty"`
	Function chunkFunction `json:"function"`
}

type chunkFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type wireUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

type completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint"`
	Choices           []completionChoice `json:"choices"`
	Usage             *wireUsage         `json:"usage,omitempty"`
}

type completionChoice struct {
	Index        int               `json:"index"`
	Message      completionMessage `json:"message"`
	Logprobs     *struct{}         `json:"logprobs"`
	FinishReason string            `json:"finish_reason"`
}

type completionMessage struct {
	Role             string           `json:"role"`
	Content          *string          `json:"content"`
	ReasoningContent string           `json:"reasoning_content,omitempty"`
	ToolCalls        []agent.ToolCall `json:"tool_calls,omitempty"`
}

type wireError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}
