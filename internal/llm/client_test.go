package llm

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
)

// testClient returns a Client of s whose waits are recorded, not slept, and
// whose jitter is fixed at half of its range.
func testClient(t *testing.T, s *llmtest.Server, edit func(*Config)) (*Client, *[]time.Duration) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BaseURL = s.URL()
	cfg.APIKey = "sk-test-key"
	cfg.Logger = zaptest.NewLogger(t)
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	var slept []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return ctx.Err()
	}
	c.jitter = func() float64 { return 0.5 }
	return c, &slept
}

func userRequest(text string) agent.Request {
	return agent.Request{
		Model:    "fake-model",
		Messages: []agent.Message{{Role: agent.RoleSystem, Content: "be brief"}, {Role: agent.RoleUser, Content: text}},
	}
}

// stream calls c.Stream and returns the deltas it delivered too.
func stream(t *testing.T, ctx context.Context, c *Client, req agent.Request) (agent.Response, []agent.Delta, error) {
	t.Helper()
	var deltas []agent.Delta
	resp, err := c.Stream(ctx, req, func(d agent.Delta) { deltas = append(deltas, d) })
	return resp, deltas, err
}

func joinDeltas(ds []agent.Delta) (text, reasoning string) {
	var t, r strings.Builder
	for _, d := range ds {
		t.WriteString(d.Text)
		r.WriteString(d.Reasoning)
	}
	return t.String(), r.String()
}

func TestStreamText(t *testing.T) {
	tests := []struct {
		name          string
		reply         llmtest.Reply
		wantText      string
		wantReasoning string
		wantFinish    string
		minDeltas     int
	}{
		{
			name:       "plain text",
			reply:      llmtest.Reply{Text: "Hello, streaming world! ünïcödé ✓", ChunkSize: 3},
			wantText:   "Hello, streaming world! ünïcödé ✓",
			wantFinish: "stop",
			minDeltas:  11,
		},
		{
			name:          "reasoning then text",
			reply:         llmtest.Reply{Reasoning: "let me think", Text: "42"},
			wantText:      "42",
			wantReasoning: "let me think",
			wantFinish:    "stop",
			minDeltas:     4,
		},
		{
			name:       "finish reason length",
			reply:      llmtest.Reply{Text: "cut", FinishReason: "length"},
			wantText:   "cut",
			wantFinish: "length",
			minDeltas:  1,
		},
		{
			name:       "missing finish_reason",
			reply:      llmtest.Reply{Text: "no end", OmitFinishReason: true},
			wantText:   "no end",
			wantFinish: "",
			minDeltas:  2,
		},
		{
			name:       "empty reply",
			reply:      llmtest.Reply{},
			wantFinish: "stop",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tc.reply)
			c, _ := testClient(t, s, nil)
			resp, deltas, err := stream(t, t.Context(), c, userRequest("hi"))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			text, reasoning := joinDeltas(deltas)
			if text != tc.wantText || reasoning != tc.wantReasoning {
				t.Errorf("deltas = %q, %q; want %q, %q", text, reasoning, tc.wantText, tc.wantReasoning)
			}
			if len(deltas) < tc.minDeltas {
				t.Errorf("got %d deltas; want at least %d", len(deltas), tc.minDeltas)
			}
			for i, d := range deltas {
				if d.Text == "" && d.Reasoning == "" {
					t.Errorf("delta %d is empty", i)
				}
			}
			want := agent.Message{Role: agent.RoleAssistant, Content: tc.wantText, ReasoningContent: tc.wantReasoning}
			if got := resp.Message; !equalJSON(got, want) {
				t.Errorf("Message = %+v; want %+v", got, want)
			}
			if resp.FinishReason != tc.wantFinish {
				t.Errorf("FinishReason = %q; want %q", resp.FinishReason, tc.wantFinish)
			}
			if resp.Attempts != 1 {
				t.Errorf("Attempts = %d; want 1", resp.Attempts)
			}
			if tc.wantText != "" && resp.FirstTokenMS <= 0 {
				t.Errorf("FirstTokenMS = %d; want > 0", resp.FirstTokenMS)
			}
		})
	}
}

func TestStreamUsage(t *testing.T) {
	tests := []struct {
		name  string
		reply llmtest.Reply
		want  agent.Usage
	}{
		{"reported", llmtest.Reply{Text: "x", Usage: &llmtest.Usage{PromptTokens: 120, CompletionTokens: 7, CachedTokens: 64}},
			agent.Usage{PromptTokens: 120, CompletionTokens: 7, CachedTokens: 64}},
		{"estimated by the fake", llmtest.Reply{Text: "12345678"}, agent.Usage{PromptTokens: 3, CompletionTokens: 2}},
		{"not sent", llmtest.Reply{Text: "x", OmitUsage: true}, agent.Usage{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tc.reply)
			c, _ := testClient(t, s, nil)
			resp, _, err := stream(t, t.Context(), c, userRequest("hi"))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if resp.Usage != tc.want {
				t.Errorf("Usage = %+v; want %+v", resp.Usage, tc.want)
			}
			if r := s.Requests()[0]; !r.Stream || !r.IncludeUsage {
				t.Errorf("request stream=%v include_usage=%v; want both true", r.Stream, r.IncludeUsage)
			}
		})
	}
}

var callIDPattern = regexp.MustCompile(`^call_[0-9a-f]{24}$`)

func TestStreamToolCalls(t *testing.T) {
	weather := `{"city": "Zürich", "days": [1, 2, 3], "note": "a \"quoted\" }{ brace"}`
	search := `{"query":"go streaming json","limit":10}`
	tests := []struct {
		name  string
		reply llmtest.Reply
		want  []agent.ToolCall // an ID "*" means generated
	}{
		{
			name: "two calls interleaved, args split",
			reply: llmtest.Reply{Text: "checking", InterleaveToolCalls: true, ChunkSize: 5, ToolCalls: []llmtest.ToolCall{
				{ID: "call_a", Name: "weather", Arguments: weather},
				{ID: "call_b", Name: "search", Arguments: search},
			}},
			want: []agent.ToolCall{
				{ID: "call_a", Type: "function", Function: agent.FunctionCall{Name: "weather", Arguments: weather}},
				{ID: "call_b", Type: "function", Function: agent.FunctionCall{Name: "search", Arguments: search}},
			},
		},
		{
			name: "two calls in sequence without index",
			reply: llmtest.Reply{OmitIndex: true, ToolCalls: []llmtest.ToolCall{
				{ID: "call_a", Name: "weather", Arguments: weather},
				{ID: "call_b", Name: "search", Arguments: search},
			}},
			want: []agent.ToolCall{
				{ID: "call_a", Type: "function", Function: agent.FunctionCall{Name: "weather", Arguments: weather}},
				{ID: "call_b", Type: "function", Function: agent.FunctionCall{Name: "search", Arguments: search}},
			},
		},
		{
			name: "no id, no type, no index",
			reply: llmtest.Reply{Frames: []string{
				`{"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"function":{"name":"ls","arguments":"{\"pa"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"th\":\".\"}"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
			}},
			want: []agent.ToolCall{{ID: "*", Type: "function", Function: agent.FunctionCall{Name: "ls", Arguments: `{"path":"."}`}}},
		},
		{
			name: "pieces matched by id without index",
			reply: llmtest.Reply{Frames: []string{
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c1","type":"function","function":{"name":"a","arguments":"{\"x\""}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c2","type":"function","function":{"name":"b","arguments":"{\"y\""}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c1","function":{"arguments":":1}"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c2","function":{"arguments":":2}"}}]}}]}`,
			}},
			want: []agent.ToolCall{
				{ID: "c1", Type: "function", Function: agent.FunctionCall{Name: "a", Arguments: `{"x":1}`}},
				{ID: "c2", Type: "function", Function: agent.FunctionCall{Name: "b", Arguments: `{"y":2}`}},
			},
		},
		{
			name: "same index reused for a new id",
			reply: llmtest.Reply{Frames: []string{
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"g1","type":"function","function":{"name":"a","arguments":"{}"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"g2","type":"function","function":{"name":"b","arguments":"{\"k\":"}}]}}]}`,
				`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"true}"}}]}}]}`,
			}},
			want: []agent.ToolCall{
				{ID: "g1", Type: "function", Function: agent.FunctionCall{Name: "a", Arguments: `{}`}},
				{ID: "g2", Type: "function", Function: agent.FunctionCall{Name: "b", Arguments: `{"k":true}`}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tc.reply)
			c, _ := testClient(t, s, nil)
			resp, deltas, err := stream(t, t.Context(), c, userRequest("go"))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if text, _ := joinDeltas(deltas); text != tc.reply.Text {
				t.Errorf("streamed text = %q; want %q", text, tc.reply.Text)
			}
			got := resp.Message.ToolCalls
			if len(got) != len(tc.want) {
				t.Fatalf("ToolCalls = %+v; want %+v", got, tc.want)
			}
			for i := range got {
				want := tc.want[i]
				if want.ID == "*" {
					if !callIDPattern.MatchString(got[i].ID) {
						t.Errorf("ToolCalls[%d].ID = %q; want call_<24 hex>", i, got[i].ID)
					}
					want.ID = got[i].ID
				}
				if got[i] != want {
					t.Errorf("ToolCalls[%d] = %+v; want %+v", i, got[i], want)
				}
			}
			if resp.FinishReason != "tool_calls" && tc.reply.Frames == nil {
				t.Errorf("FinishReason = %q; want tool_calls", resp.FinishReason)
			}
			if resp.FirstTokenMS <= 0 {
				t.Errorf("FirstTokenMS = %d; want > 0", resp.FirstTokenMS)
			}
		})
	}
}

func TestStreamRetries(t *testing.T) {
	// With jitter fixed at 0.5, a computed wait is 1.15 times the base.
	ok := llmtest.Reply{Text: "ok"}
	tests := []struct {
		name       string
		replies    []llmtest.Reply
		edit       func(*Config)
		wantSlept  []time.Duration
		wantStatus int // of the ModelError; -1: success
		wantCalls  int
		wantErr    string // in the error message
	}{
		{
			name:       "500 then success",
			replies:    []llmtest.Reply{{Status: 500}, ok},
			wantSlept:  []time.Duration{1725 * time.Millisecond},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name:       "Retry-After seconds honoured",
			replies:    []llmtest.Reply{{Status: 429, RetryAfter: "7"}, ok},
			wantSlept:  []time.Duration{7 * time.Second},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name:       "Retry-After capped per step",
			replies:    []llmtest.Reply{{Status: 503, RetryAfter: "120"}, ok},
			wantSlept:  []time.Duration{30 * time.Second},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name:       "Retry-After zero",
			replies:    []llmtest.Reply{{Status: 529, RetryAfter: "0"}, ok},
			wantSlept:  []time.Duration{0},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name: "429 exhausts MaxAttempts",
			replies: []llmtest.Reply{
				{Status: 429, ErrorMessage: "Rate limit reached for requests"}, {Status: 429}, {Status: 429}, {Status: 429},
				{Status: 429, ErrorMessage: "Rate limit reached for requests"}, ok,
			},
			wantSlept: []time.Duration{
				1725 * time.Millisecond, 3450 * time.Millisecond, 6900 * time.Millisecond, 13800 * time.Millisecond,
			},
			wantStatus: 429,
			wantCalls:  5,
			wantErr:    "HTTP 429 after 5 attempt(s): Too Many Requests: Rate limit reached for requests (type requests, code rate_limit_exceeded)",
		},
		{
			name:       "MaxAttempts 2",
			replies:    []llmtest.Reply{{Status: 502}, {Status: 502}, ok},
			edit:       func(c *Config) { c.MaxAttempts = 2 },
			wantSlept:  []time.Duration{1725 * time.Millisecond},
			wantStatus: 502,
			wantCalls:  2,
			wantErr:    "Bad Gateway",
		},
		{
			name:       "total wait capped",
			replies:    []llmtest.Reply{{Status: 429, RetryAfter: "25"}, {Status: 429, RetryAfter: "25"}, {Status: 429, RetryAfter: "25"}, ok},
			wantSlept:  []time.Duration{25 * time.Second, 25 * time.Second, 10 * time.Second},
			wantStatus: -1,
			wantCalls:  4,
		},
		{
			name: "total wait spent",
			replies: []llmtest.Reply{
				{Status: 429, RetryAfter: "30"}, {Status: 429, RetryAfter: "30"}, {Status: 429, RetryAfter: "30"}, ok,
			},
			wantSlept:  []time.Duration{30 * time.Second, 30 * time.Second},
			wantStatus: 429,
			wantCalls:  3,
		},
		{
			name:       "400 not retried",
			replies:    []llmtest.Reply{{Status: 400, ErrorMessage: "Invalid 'messages[1].content'"}, ok},
			wantStatus: 400,
			wantCalls:  1,
			wantErr:    "HTTP 400 after 1 attempt(s): Bad Request: Invalid 'messages[1].content' (type invalid_request_error)",
		},
		{name: "401 not retried", replies: []llmtest.Reply{{Status: 401}, ok}, wantStatus: 401, wantCalls: 1},
		{name: "404 not retried", replies: []llmtest.Reply{{Status: 404}, ok}, wantStatus: 404, wantCalls: 1},
		{name: "422 not retried", replies: []llmtest.Reply{{Status: 422}, ok}, wantStatus: 422, wantCalls: 1},
		{name: "501 not retried", replies: []llmtest.Reply{{Status: 501}, ok}, wantStatus: 501, wantCalls: 1},
		{
			name:       "dropped before any text",
			replies:    []llmtest.Reply{{Text: "lost", DropAfterChunks: 1}, ok},
			wantSlept:  []time.Duration{1725 * time.Millisecond},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name: "dropped after a tool-call piece",
			replies: []llmtest.Reply{
				{ToolCalls: []llmtest.ToolCall{{Name: "ls", Arguments: `{"path":"/"}`}}, DropAfterChunks: 3}, ok,
			},
			wantSlept:  []time.Duration{1725 * time.Millisecond},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name:       "garbage 200 not retried",
			replies:    []llmtest.Reply{{RawBody: "<html><body>Welcome to nginx!</body></html>"}, ok},
			wantStatus: 0,
			wantCalls:  1,
			wantErr:    `response is not an event stream (HTTP 200, Content-Type "text/plain; charset=utf-8"): "<html><body>Welcome to nginx!</body></html>"`,
		},
		{
			name:       "garbage 502 retried",
			replies:    []llmtest.Reply{{Status: 502, RawBody: "<html>bad gateway</html>"}, ok},
			wantSlept:  []time.Duration{1725 * time.Millisecond},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name:       "garbage 502 reported",
			replies:    []llmtest.Reply{{Status: 502, RawBody: "<html>bad gateway</html>"}},
			edit:       func(c *Config) { c.MaxAttempts = 1 },
			wantStatus: 502,
			wantCalls:  1,
			wantErr:    `Bad Gateway: response body is not an API error: "<html>bad gateway</html>"`,
		},
		{
			name:       "malformed chunk",
			replies:    []llmtest.Reply{{Frames: []string{`{"choices": [oops`}}, ok},
			wantStatus: 0,
			wantCalls:  1,
			wantErr:    "malformed stream chunk",
		},
		{
			name:       "server error inside the stream retried",
			replies:    []llmtest.Reply{{Frames: []string{`{"error":{"message":"The server had an error","type":"server_error"}}`}}, ok},
			wantSlept:  []time.Duration{1725 * time.Millisecond},
			wantStatus: -1,
			wantCalls:  2,
		},
		{
			name:       "invalid request inside the stream",
			replies:    []llmtest.Reply{{Frames: []string{`{"error":{"message":"context too long","type":"invalid_request_error"}}`}}, ok},
			wantStatus: 0,
			wantCalls:  1,
			wantErr:    "error in stream: context too long (type invalid_request_error)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tc.replies...)
			c, slept := testClient(t, s, tc.edit)
			resp, deltas, err := stream(t, t.Context(), c, userRequest("hi"))
			if got := s.Calls(); got != tc.wantCalls {
				t.Errorf("server calls = %d; want %d", got, tc.wantCalls)
			}
			if !equalDurations(*slept, tc.wantSlept) {
				t.Errorf("slept %v; want %v", *slept, tc.wantSlept)
			}
			if tc.wantStatus < 0 {
				if err != nil {
					t.Fatalf("Stream: %v", err)
				}
				if resp.Attempts != tc.wantCalls || resp.Message.Content != "ok" {
					t.Errorf("Attempts, Content = %d, %q; want %d, %q", resp.Attempts, resp.Message.Content, tc.wantCalls, "ok")
				}
				if text, _ := joinDeltas(deltas); text != "ok" {
					t.Errorf("streamed %q; want %q", text, "ok")
				}
				return
			}
			var me *agent.ModelError
			if !errors.As(err, &me) {
				t.Fatalf("Stream error = %v (%T); want *agent.ModelError", err, err)
			}
			if me.StatusCode != tc.wantStatus || me.Attempts != tc.wantCalls || me.Streamed {
				t.Errorf("ModelError{StatusCode %d, Attempts %d, Streamed %v}; want {%d, %d, false}",
					me.StatusCode, me.Attempts, me.Streamed, tc.wantStatus, tc.wantCalls)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %q; want it to contain %q", err, tc.wantErr)
			}
			if len(deltas) != 0 {
				t.Errorf("deltas = %v; want none", deltas)
			}
		})
	}
}

func TestStreamRetryAfterDate(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Status: 503, RetryAfter: time.Now().Add(10 * time.Second).UTC().Format(http.TimeFormat)}, llmtest.Reply{Text: "ok"})
	c, slept := testClient(t, s, nil)
	if _, _, err := stream(t, t.Context(), c, userRequest("hi")); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	// HTTP dates have a resolution of a second.
	if len(*slept) != 1 || (*slept)[0] < 8*time.Second || (*slept)[0] > 10*time.Second {
		t.Errorf("slept %v; want one wait of 8s to 10s", *slept)
	}
}

func TestStreamNoRetryAfterText(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Text: "partial answer that breaks", ChunkSize: 4, DropAfterChunks: 3}, llmtest.Reply{Text: "never"})
	c, slept := testClient(t, s, nil)
	resp, deltas, err := stream(t, t.Context(), c, userRequest("hi"))
	var me *agent.ModelError
	if !errors.As(err, &me) {
		t.Fatalf("Stream error = %v; want *agent.ModelError", err)
	}
	if !me.Streamed || me.Attempts != 1 || me.StatusCode != 0 {
		t.Errorf("ModelError{StatusCode %d, Attempts %d, Streamed %v}; want {0, 1, true}", me.StatusCode, me.Attempts, me.Streamed)
	}
	if !strings.Contains(err.Error(), "connection error") {
		t.Errorf("error = %q; want a connection error", err)
	}
	if s.Calls() != 1 || len(*slept) != 0 {
		t.Errorf("calls, waits = %d, %v; want 1, none", s.Calls(), *slept)
	}
	if text, _ := joinDeltas(deltas); text != "partial " {
		t.Errorf("streamed %q; want %q (the two pieces sent)", text, "partial ")
	}
	if text, _ := joinDeltas(deltas); resp.Message.Content != text {
		t.Errorf("partial Content = %q; want what was streamed, %q", resp.Message.Content, text)
	}
}

func TestStreamConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := llmtest.NewServer(t)
	c, slept := testClient(t, s, func(c *Config) { c.BaseURL = "http://" + addr + "/v1"; c.MaxAttempts = 3 })
	_, _, err = stream(t, t.Context(), c, userRequest("hi"))
	var me *agent.ModelError
	if !errors.As(err, &me) || me.StatusCode != 0 || me.Attempts != 3 {
		t.Fatalf("Stream error = %#v; want a ModelError with status 0 after 3 attempts", err)
	}
	if len(*slept) != 2 {
		t.Errorf("slept %v; want 2 waits", *slept)
	}
	if !strings.Contains(err.Error(), "connection error") {
		t.Errorf("error = %q; want a connection error", err)
	}
}

func TestStreamCancel(t *testing.T) {
	cause := agent.Cancelled(agent.ReasonUserCancel)
	tests := []struct {
		name  string
		reply llmtest.Reply
		// cancel is called with the cancel func: from onDelta, from the
		// sleep hook, or before the call.
		when string
	}{
		{"before the call", llmtest.Reply{Text: "never"}, "before"},
		{"mid-stream", llmtest.Reply{Text: "some text then silence", HangAfterChunks: 3}, "delta"},
		{"waiting for the first chunk", llmtest.Reply{Text: "x", HangAfterChunks: 1}, "timer"},
		{"during backoff", llmtest.Reply{Status: 503}, "sleep"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tc.reply)
			c, _ := testClient(t, s, nil)
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			switch tc.when {
			case "before":
				cancel(cause)
			case "timer":
				time.AfterFunc(100*time.Millisecond, func() { cancel(cause) })
			case "sleep":
				c.sleep = func(ctx context.Context, d time.Duration) error {
					cancel(cause)
					return sleepCtx(ctx, time.Hour)
				}
			}
			start := time.Now()
			_, err := c.Stream(ctx, userRequest("hi"), func(agent.Delta) {
				if tc.when == "delta" {
					cancel(cause)
				}
			})
			if elapsed := time.Since(start); elapsed > 2*time.Second {
				t.Errorf("Stream returned after %v; want promptly", elapsed)
			}
			if !errors.Is(err, cause) {
				t.Errorf("Stream error = %v; want it to wrap the cause %v", err, cause)
			}
			var me *agent.ModelError
			if errors.As(err, &me) {
				t.Errorf("Stream error is a ModelError (%v); want the bare cause", me)
			}
			if tc.when == "before" && s.Calls() != 0 {
				t.Errorf("server calls = %d; want 0", s.Calls())
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	const key = "sk-very-secret-key-123"
	s := llmtest.NewServer(t)
	s.Enqueue(
		llmtest.Reply{Status: 500, ErrorMessage: "upstream rejected key " + key},
		llmtest.Reply{Status: 401, ErrorMessage: "Incorrect API key provided: " + key + "."},
	)
	logs := &strings.Builder{}
	logger := zap.New(zapcoreFor(logs))
	c, _ := testClient(t, s, func(c *Config) { c.APIKey = key; c.Logger = logger })
	_, _, err := stream(t, t.Context(), c, userRequest("hi"))
	if err == nil {
		t.Fatal("Stream: no error; want 401")
	}
	for _, r := range s.Requests() {
		if got, want := r.Authorization, "Bearer "+key; got != want {
			t.Errorf("Authorization = %q; want %q", got, want)
		}
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("error %q contains the API key", err)
	}
	if !strings.Contains(err.Error(), "Incorrect API key provided: [redacted]") {
		t.Errorf("error = %q; want the provider's message, redacted", err)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("logs = %q; want the retry logged", logs)
	}
	if strings.Contains(logs.String(), key) {
		t.Errorf("logs contain the API key: %s", logs)
	}
	if s := c.cfg.String(); strings.Contains(s, key) {
		t.Errorf("Config.String() = %q; contains the API key", s)
	}
}

func TestRequestOnTheWire(t *testing.T) {
	history := []agent.Message{
		{Role: agent.RoleSystem, Content: "You are terse."},
		{Role: agent.RoleUser, Content: "list files", Name: "alice"},
		{Role: agent.RoleAssistant, ReasoningContent: "need ls", ToolCalls: []agent.ToolCall{
			{ID: "call_1", Type: "function", Function: agent.FunctionCall{Name: "ls", Arguments: `{"path":"."}`}},
			{ID: "call_2", Function: agent.FunctionCall{Name: "pwd"}},
		}},
		{Role: agent.RoleTool, ToolCallID: "call_1", Name: "ls", Content: "a.go\nb.go"},
		{Role: agent.RoleTool, ToolCallID: "call_2", Name: "pwd", Content: ""},
		{Role: agent.RoleAssistant, Content: ""},
		{Role: agent.RoleUser, Content: "thanks"},
	}
	tools := []agent.ToolSpec{
		{Name: "ls", Description: "list a directory", Parameters: json.RawMessage(`{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}`)},
		{Name: "pwd", Description: "print the working directory"},
	}
	tests := []struct {
		model          string
		wantMaxField   string
		wantNoMaxField string
	}{
		{"llama3.1:8b", "max_tokens", "max_completion_tokens"},
		{"gpt-5-mini", "max_completion_tokens", "max_tokens"},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			s := llmtest.NewServer(t) // rejects what the OpenAI API rejects
			c, _ := testClient(t, s, nil)
			_, err := c.Stream(t.Context(), agent.Request{Model: tc.model, Messages: history, Tools: tools, MaxTokens: 256}, nil)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			got := s.Requests()[0]
			if got.Model != tc.model || got.MaxTokens != 256 {
				t.Errorf("model, max tokens = %q, %d; want %q, 256", got.Model, got.MaxTokens, tc.model)
			}
			want := append([]agent.Message(nil), history...)
			want[2].ReasoningContent = "" // not sent back
			want[2].ToolCalls[1].Type = "function"
			if !equalJSON(got.Messages, want) {
				t.Errorf("messages on the wire:\n%s\nwant\n%s", mustJSON(got.Messages), mustJSON(want))
			}
			wantTools := append([]agent.ToolSpec(nil), tools...)
			wantTools[1].Parameters = json.RawMessage(emptySchema)
			if !equalJSON(got.Tools, wantTools) {
				t.Errorf("tools on the wire = %s; want %s", mustJSON(got.Tools), mustJSON(wantTools))
			}
			var body map[string]any
			if err := json.Unmarshal(got.Body, &body); err != nil {
				t.Fatal(err)
			}
			if _, ok := body[tc.wantMaxField]; !ok {
				t.Errorf("body has no %s: %s", tc.wantMaxField, got.Body)
			}
			if _, ok := body[tc.wantNoMaxField]; ok {
				t.Errorf("body has %s: %s", tc.wantNoMaxField, got.Body)
			}
			msgs := body["messages"].([]any)
			if _, ok := msgs[2].(map[string]any)["content"]; ok {
				t.Errorf("assistant tool-call message has content: %v; want it omitted", msgs[2])
			}
			for _, i := range []int{4, 5} {
				if c, ok := msgs[i].(map[string]any)["content"]; !ok || c != "" {
					t.Errorf("message %d content = %v (present %v); want \"\"", i, c, ok)
				}
			}
			fn := msgs[2].(map[string]any)["tool_calls"].([]any)[1].(map[string]any)["function"].(map[string]any)
			if a, ok := fn["arguments"]; !ok || a != "" {
				t.Errorf("empty arguments = %v (present %v); want \"\"", a, ok)
			}
		})
	}
}

func TestNewClient(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"zero values mean defaults", func(c *Config) { *c = Config{BaseURL: "http://localhost:11434/v1"} }, nil},
		{"no base URL", func(c *Config) { c.BaseURL = "" }, []string{"base URL is empty"}},
		{"not http", func(c *Config) { c.BaseURL = "ftp://x/v1" }, []string{"not an http(s) URL"}},
		{"no host", func(c *Config) { c.BaseURL = "http:///v1" }, []string{"not an http(s) URL"}},
		{"negatives", func(c *Config) { c.MaxAttempts = -1; c.BaseBackoff = -1; c.MaxRetryTotal = -time.Second },
			[]string{"max attempts is -1", "base backoff is -1ns", "max retry total is -1s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			c, err := NewClient(cfg)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("NewClient: %v", err)
				}
				if c.cfg.MaxAttempts != 5 || c.cfg.BaseBackoff != 1500*time.Millisecond ||
					c.cfg.MaxBackoff != 30*time.Second || c.cfg.MaxRetryTotal != time.Minute || c.cfg.HTTPClient == nil {
					t.Errorf("config = %v; want the defaults", c.cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("NewClient: no error; want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"5", 5 * time.Second, true},
		{" 2 ", 2 * time.Second, true},
		{"0.5", 500 * time.Millisecond, true},
		{"0", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{"NaN", 0, false},
		{"Sat, 01 Mar 2025 12:00:20 GMT", 20 * time.Second, true},
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0, true},
		{"99999999999", 24 * time.Hour, true},
	}
	for _, tc := range tests {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestBackoff(t *testing.T) {
	c, err := NewClient(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n      int
		jitter float64
		f      failure
		want   time.Duration
	}{
		{0, 0, failure{}, 1500 * time.Millisecond},
		{1, 0, failure{}, 3 * time.Second},
		{3, 0, failure{}, 12 * time.Second},
		{0, 0.999999, failure{}, 1950 * time.Millisecond},
		{4, 0, failure{}, 24 * time.Second},
		{4, 0.999999, failure{}, 30 * time.Second},
		{5, 0, failure{}, 30 * time.Second},
		{80, 0.5, failure{}, 30 * time.Second},
		{0, 0.5, failure{retryAfter: 3 * time.Second, hasRetryAfter: true}, 3 * time.Second},
		{0, 0.5, failure{retryAfter: time.Hour, hasRetryAfter: true}, 30 * time.Second},
	}
	for _, tc := range tests {
		c.jitter = func() float64 { return tc.jitter }
		got := c.backoff(tc.n, &tc.f)
		if got.Round(time.Millisecond) != tc.want {
			t.Errorf("backoff(%d, jitter %v, %+v) = %v; want %v", tc.n, tc.jitter, tc.f, got, tc.want)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

func equalJSON(a, b any) bool { return mustJSON(a) == mustJSON(b) }

func TestStreamConcurrent(t *testing.T) {
	s := llmtest.NewServer(t)
	c, _ := testClient(t, s, nil)
	c.sleep = sleepCtx // the recording hook is not safe for concurrent use
	errc := make(chan error, 8)
	for i := range 8 {
		go func() {
			prompt := strings.Repeat("x", i+1)
			resp, err := c.Stream(t.Context(), userRequest(prompt), nil)
			if err == nil && resp.Message.Content != "echo: "+prompt {
				err = errors.New("reply " + resp.Message.Content + " to " + prompt)
			}
			errc <- err
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
}
