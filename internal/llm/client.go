// Package llm is agentd's client of OpenAI-compatible chat-completions
// endpoints (OpenAI, Azure-style gateways, Ollama, vLLM, ...), and the only
// importer of github.com/sashabaranov/go-openai. [*Client] implements
// [agent.Model].
//
// One [Client.Stream] call makes one streamed request (with
// stream_options.include_usage), hands every text and reasoning piece to
// onDelta in order from the calling goroutine, and assembles the assistant
// message, tool calls included, from the pieces.
//
// Retries follow Agentao's client: HTTP 408, 409, 425, 429, 500, 502, 503,
// 504 and 529, network failures (a stream that breaks before any text
// reached onDelta included) and server_error events inside the stream are
// retried, up to Config.MaxAttempts attempts,
// after BaseBackoff·2^n plus up to 30% jitter, or the Retry-After the
// provider sent, each wait capped at MaxBackoff and all of them at
// MaxRetryTotal. Once text reached onDelta a call is never retried: that
// would repeat it. Other statuses and malformed responses fail at once.
//
// A call that fails returns an [*agent.ModelError] (with the last HTTP
// status, the number of attempts, whether text was streamed, and the
// provider's message), except when ctx ends: then the error wraps
// context.Cause(ctx) and nothing else. The API key is never logged nor put
// in an error, even if the provider echoes it.
//
// A Client is safe for concurrent use.
package llm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
)

// Client calls one OpenAI-compatible endpoint.
type Client struct {
	cfg   Config
	log   *zap.Logger
	tools *toolCache

	// Tests in this package replace these.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func() float64 // in [0, 1)
}

var _ agent.Model = (*Client)(nil)

// NewClient returns a Client for cfg, or cfg's problems.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Client{
		cfg:    cfg,
		log:    cfg.Logger.Named("llm"),
		tools:  newToolCache(),
		sleep:  sleepCtx,
		jitter: rand.Float64,
	}, nil
}

// callState is what outlives one attempt of a call.
type callState struct {
	start      time.Time
	streamed   bool  // text or reasoning reached onDelta
	firstToken int64 // ms from start to the first piece of the reply; 0: none yet
}

// Stream makes one chat-completions call; see the package doc for retries
// and errors. Response.FirstTokenMS counts from the start of the call,
// retries included, to the first piece of the reply (text, reasoning or a
// tool call). On error the Response is empty but for Attempts and, if text
// was streamed, the partial text.
func (c *Client) Stream(ctx context.Context, req agent.Request, onDelta func(agent.Delta)) (agent.Response, error) {
	if onDelta == nil {
		onDelta = func(agent.Delta) {}
	}
	if ctx.Err() != nil {
		return agent.Response{}, stopped(ctx)
	}
	tools, err := c.tools.encoded(req.Tools)
	if err != nil {
		return agent.Response{}, &agent.ModelError{Err: fmt.Errorf("encode tool schemas: %w", err)}
	}
	oreq, patch := chatRequest(req, tools)
	st := &callState{start: time.Now()}
	var slept time.Duration
	for attempt := 1; ; attempt++ {
		st.firstToken = 0
		asm, f := c.attempt(ctx, oreq, patch, onDelta, st)
		resp := agent.Response{Attempts: attempt, FirstTokenMS: st.firstToken}
		if f == nil {
			resp.Message = asm.message()
			resp.FinishReason = asm.finish
			resp.Usage = asm.usage
			c.log.Debug("model call done",
				zap.String("model", req.Model), zap.Int("attempts", attempt),
				zap.Int64("first_token_ms", st.firstToken), zap.String("finish_reason", asm.finish),
				zap.Int("prompt_tokens", asm.usage.PromptTokens), zap.Int("completion_tokens", asm.usage.CompletionTokens))
			return resp, nil
		}
		if st.streamed {
			resp.Message = agent.Message{Role: agent.RoleAssistant, Content: asm.text.String(), ReasoningContent: asm.reasoning.String()}
		}
		if ctx.Err() != nil {
			return resp, stopped(ctx)
		}
		final := st.streamed || !f.retryable || attempt >= c.cfg.MaxAttempts
		var wait time.Duration
		if !final {
			wait = c.backoff(attempt-1, f)
			left := c.cfg.MaxRetryTotal - slept
			final = left <= 0
			wait = min(wait, left)
		}
		if final {
			return resp, &agent.ModelError{StatusCode: f.status, Attempts: attempt, Streamed: st.streamed, Err: f.err}
		}
		c.log.Warn("model call failed; retrying",
			zap.String("model", req.Model), zap.Int("attempt", attempt), zap.Int("status", f.status),
			zap.Duration("wait", wait), zap.Error(f.err))
		if err := c.sleep(ctx, wait); err != nil || ctx.Err() != nil {
			return resp, stopped(ctx)
		}
		slept += wait
	}
}

// attempt makes one HTTP request and reads its stream. It returns the
// assembled reply, or why the attempt failed.
func (c *Client) attempt(ctx context.Context, oreq openai.ChatCompletionRequest, patch *bodyPatch,
	onDelta func(agent.Delta), st *callState) (*assembler, *failure) {
	doer := &attemptDoer{hc: c.cfg.HTTPClient, patch: patch}
	ocfg := openai.DefaultConfig(c.cfg.APIKey)
	ocfg.BaseURL = c.cfg.BaseURL
	ocfg.HTTPClient = doer
	asm := &assembler{}
	stream, err := openai.NewClientWithConfig(ocfg).CreateChatCompletionStream(ctx, oreq)
	if err != nil {
		return asm, c.classify(err, doer)
	}
	defer stream.Close()
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if asm.chunks == 0 && !bytes.Contains(doer.prefix(), []byte("data:")) {
				return asm, &failure{err: c.notAStream(doer)}
			}
			return asm, nil
		}
		if err != nil {
			return asm, c.classify(err, doer)
		}
		d, content := asm.add(chunk)
		if content && st.firstToken == 0 {
			st.firstToken = max(time.Since(st.start).Milliseconds(), 1)
		}
		if d.Text != "" || d.Reasoning != "" {
			st.streamed = true
			onDelta(d)
		}
	}
}

// stopped is the error of a call whose ctx ended.
func stopped(ctx context.Context) error {
	return fmt.Errorf("llm: model call stopped: %w", context.Cause(ctx))
}
