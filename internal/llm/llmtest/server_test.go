package llmtest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
)

func openaiClient(s *llmtest.Server) *openai.Client {
	cfg := openai.DefaultConfig("sk-fake")
	cfg.BaseURL = s.URL()
	return openai.NewClientWithConfig(cfg)
}

func chatRequest(text string) openai.ChatCompletionRequest {
	return openai.ChatCompletionRequest{
		Model:         "fake-model",
		Messages:      []openai.ChatCompletionMessage{{Role: "user", Content: text}},
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	}
}

// recvAll reads a go-openai stream to its end.
func recvAll(t *testing.T, s *llmtest.Server, req openai.ChatCompletionRequest) []openai.ChatCompletionStreamResponse {
	t.Helper()
	st, err := openaiClient(s).CreateChatCompletionStream(t.Context(), req)
	if err != nil {
		t.Fatalf("CreateChatCompletionStream: %v", err)
	}
	defer st.Close()
	var out []openai.ChatCompletionStreamResponse
	for {
		c, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Recv after %d chunks: %v", len(out), err)
		}
		out = append(out, c)
	}
}

func TestStreamParsesWithGoOpenAI(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Reasoning: "hmm, well", Text: "Hello there, world", ChunkSize: 5,
		Usage: &llmtest.Usage{PromptTokens: 11, CompletionTokens: 4, CachedTokens: 2}})
	chunks := recvAll(t, s, chatRequest("hi"))

	if len(chunks) < 8 {
		t.Fatalf("got %d chunks; want at least 8", len(chunks))
	}
	if got := chunks[0].Choices[0].Delta.Role; got != "assistant" {
		t.Errorf("first delta role = %q; want assistant", got)
	}
	var text, reasoning strings.Builder
	var finish openai.FinishReason
	for _, c := range chunks {
		if c.Object != "chat.completion.chunk" || c.Model != "fake-model" || c.ID == "" {
			t.Errorf("chunk header = %q %q %q; want chat.completion.chunk, fake-model, an id", c.Object, c.Model, c.ID)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
			reasoning.WriteString(ch.Delta.ReasoningContent)
			if ch.FinishReason != "" {
				finish = ch.FinishReason
			}
		}
	}
	if text.String() != "Hello there, world" || reasoning.String() != "hmm, well" {
		t.Errorf("text, reasoning = %q, %q; want %q, %q", text.String(), reasoning.String(), "Hello there, world", "hmm, well")
	}
	if finish != "stop" {
		t.Errorf("finish_reason = %q; want stop", finish)
	}
	last := chunks[len(chunks)-1]
	if len(last.Choices) != 0 || last.Usage == nil {
		t.Fatalf("last chunk = %+v; want the usage chunk with no choices", last)
	}
	if u := last.Usage; u.PromptTokens != 11 || u.CompletionTokens != 4 || u.TotalTokens != 15 || u.PromptTokensDetails.CachedTokens != 2 {
		t.Errorf("usage = %+v; want 11/4/15 with 2 cached", u)
	}
	for _, c := range chunks[:len(chunks)-1] {
		if c.Usage != nil {
			t.Errorf("usage in a content chunk: %+v", c.Usage)
		}
	}
}

func TestSSEFraming(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Text: "abcdefgh", ChunkSize: 2, OmitUsage: true})
	resp, err := http.Post(s.URL()+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q; want text/event-stream", ct)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	frames := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
	// role, 4 text pieces, finish.
	if len(frames) != 7 {
		t.Fatalf("got %d frames; want 7:\n%s", len(frames), body)
	}
	for i, f := range frames[:6] {
		data, ok := strings.CutPrefix(f, "data: ")
		if !ok || strings.Contains(data, "\n") || !json.Valid([]byte(data)) {
			t.Errorf("frame %d = %q; want one line \"data: <json>\"", i, f)
		}
		if strings.Contains(data, `"usage"`) {
			t.Errorf("frame %d has usage although the request did not ask: %s", i, data)
		}
	}
	if frames[6] != "data: [DONE]" {
		t.Errorf("last frame = %q; want data: [DONE]", frames[6])
	}
}

func TestStreamIsFlushedPerFrame(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Text: "ab", ChunkSize: 1, HangAfterChunks: 2})
	st, err := openaiClient(s).CreateChatCompletionStream(t.Context(), chatRequest("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Both frames must arrive although the handler then blocks.
	for i := range 2 {
		if _, err := st.Recv(); err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
	}
}

func TestToolCallArgumentsReassemble(t *testing.T) {
	calls := []llmtest.ToolCall{
		{ID: "call_1", Name: "write_file", Arguments: `{"path":"a/ü.txt","content":"line 1\nline \"2\"\n","mode":420}`},
		{ID: "call_2", Name: "shell", Arguments: `{"cmd":["ls","-la"]}`},
		{Name: "noargs"},
	}
	tests := []struct {
		name  string
		reply llmtest.Reply
	}{
		{"sequential", llmtest.Reply{ToolCalls: calls}},
		{"interleaved", llmtest.Reply{ToolCalls: calls, InterleaveToolCalls: true, ChunkSize: 3}},
		{"large chunks", llmtest.Reply{ToolCalls: calls, ChunkSize: 1000}},
		{"without index", llmtest.Reply{ToolCalls: calls, OmitIndex: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(tc.reply)
			chunks := recvAll(t, s, chatRequest("x"))

			type acc struct {
				id, name, args string
				pieces         int
			}
			var got []*acc
			var finish openai.FinishReason
			for _, c := range chunks {
				for _, ch := range c.Choices {
					if ch.FinishReason != "" {
						finish = ch.FinishReason
					}
					for _, p := range ch.Delta.ToolCalls {
						var a *acc
						switch {
						case p.Index != nil && *p.Index < len(got):
							a = got[*p.Index]
						case p.Index != nil || p.ID != "":
							if tc.reply.OmitIndex != (p.Index == nil) {
								t.Errorf("piece %+v: index present = %v; want %v", p, p.Index != nil, !tc.reply.OmitIndex)
							}
							a = &acc{id: p.ID, name: p.Function.Name}
							got = append(got, a)
							if p.ID == "" || p.Function.Name == "" || p.Type != "function" || p.Function.Arguments != "" {
								t.Errorf("first piece = %+v; want id, type function, name and no arguments", p)
							}
							continue
						default:
							a = got[len(got)-1]
						}
						if p.ID != "" || p.Function.Name != "" || p.Type != "" {
							t.Errorf("later piece = %+v; want only arguments", p)
						}
						a.args += p.Function.Arguments
						a.pieces++
					}
				}
			}
			if len(got) != len(calls) {
				t.Fatalf("got %d tool calls; want %d", len(got), len(calls))
			}
			for i, want := range calls {
				wantArgs := want.Arguments
				if wantArgs == "" {
					wantArgs = "{}"
				}
				if want.ID != "" && got[i].id != want.ID {
					t.Errorf("call %d id = %q; want %q", i, got[i].id, want.ID)
				}
				if got[i].name != want.Name || got[i].args != wantArgs {
					t.Errorf("call %d = %s(%s); want %s(%s)", i, got[i].name, got[i].args, want.Name, wantArgs)
				}
				if got[i].pieces < 2 {
					t.Errorf("call %d arguments came in %d piece(s); want at least 2", i, got[i].pieces)
				}
			}
			if got[2].id != "call_llmtest_1_2" {
				t.Errorf("generated id = %q; want call_llmtest_1_2", got[2].id)
			}
			if finish != "tool_calls" {
				t.Errorf("finish_reason = %q; want tool_calls", finish)
			}
		})
	}
}

func TestErrorReplies(t *testing.T) {
	tests := []struct {
		name        string
		reply       llmtest.Reply
		wantStatus  int
		wantRetry   string
		wantMessage string
		wantType    string
		wantBody    string // for raw bodies
	}{
		{"429 with Retry-After", llmtest.Reply{Status: 429, RetryAfter: "7", ErrorMessage: "slow down"}, 429, "7", "slow down", "requests", ""},
		{"500 default message", llmtest.Reply{Status: 500}, 500, "", "Internal Server Error", "server_error", ""},
		{"400", llmtest.Reply{Status: 400, ErrorMessage: "bad"}, 400, "", "bad", "invalid_request_error", ""},
		{"503 with date", llmtest.Reply{Status: 503, RetryAfter: "Wed, 21 Oct 2015 07:28:00 GMT"}, 503, "Wed, 21 Oct 2015 07:28:00 GMT", "Service Unavailable", "server_error", ""},
		{"raw garbage 200", llmtest.Reply{RawBody: "<html>hi</html>"}, 200, "", "", "", "<html>hi</html>"},
		{"raw garbage 502", llmtest.Reply{Status: 502, RawBody: "upstream gone"}, 502, "", "", "", "upstream gone"},
	}
	for _, tc := range tests {
		for _, streamed := range []bool{true, false} {
			name := tc.name
			if !streamed {
				name += " not streamed"
			}
			t.Run(name, func(t *testing.T) {
				s := llmtest.NewServer(t)
				s.Enqueue(tc.reply)
				body := `{"model":"m","stream":` + map[bool]string{true: "true", false: "false"}[streamed] + `,"messages":[{"role":"user","content":"x"}]}`
				resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.wantStatus {
					t.Errorf("status = %d; want %d", resp.StatusCode, tc.wantStatus)
				}
				if got := resp.Header.Get("Retry-After"); got != tc.wantRetry {
					t.Errorf("Retry-After = %q; want %q", got, tc.wantRetry)
				}
				if tc.wantBody != "" {
					if string(raw) != tc.wantBody {
						t.Errorf("body = %q; want %q", raw, tc.wantBody)
					}
					return
				}
				var e struct {
					Error struct {
						Message string  `json:"message"`
						Type    string  `json:"type"`
						Param   *string `json:"param"`
					} `json:"error"`
				}
				if err := json.Unmarshal(raw, &e); err != nil {
					t.Fatalf("error body %q: %v", raw, err)
				}
				if e.Error.Message != tc.wantMessage || e.Error.Type != tc.wantType {
					t.Errorf("error = %+v; want message %q, type %q", e.Error, tc.wantMessage, tc.wantType)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q; want application/json", ct)
				}
			})
		}
	}
}

func TestErrorSeenByGoOpenAI(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Status: 429, ErrorMessage: "Rate limit reached"})
	_, err := openaiClient(s).CreateChatCompletionStream(t.Context(), chatRequest("x"))
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error = %v; want *openai.APIError", err)
	}
	if apiErr.HTTPStatusCode != 429 || apiErr.Message != "Rate limit reached" || apiErr.Code != "rate_limit_exceeded" {
		t.Errorf("APIError = %+v; want 429, the message and code rate_limit_exceeded", apiErr)
	}
}

func TestNotStreamed(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(
		llmtest.Reply{Text: "plain answer", Usage: &llmtest.Usage{PromptTokens: 3, CompletionTokens: 2}},
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "ls", Arguments: `{"p":1}`}}},
	)
	c := openaiClient(s)
	req := chatRequest("x")
	req.StreamOptions = nil
	resp, err := c.CreateChatCompletion(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if m := resp.Choices[0].Message; m.Content != "plain answer" || m.Role != "assistant" || resp.Choices[0].FinishReason != "stop" {
		t.Errorf("message = %+v, finish %q; want the text and stop", m, resp.Choices[0].FinishReason)
	}
	if resp.Usage.PromptTokens != 3 || resp.Usage.CompletionTokens != 2 || resp.Usage.TotalTokens != 5 {
		t.Errorf("usage = %+v; want 3/2/5", resp.Usage)
	}
	resp, err = c.CreateChatCompletion(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	tc := resp.Choices[0].Message.ToolCalls
	if len(tc) != 1 || tc[0].ID != "c1" || tc[0].Function.Name != "ls" || tc[0].Function.Arguments != `{"p":1}` || resp.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("tool calls = %+v, finish %q; want c1 ls({\"p\":1}), tool_calls", tc, resp.Choices[0].FinishReason)
	}
	if s.Requests()[0].Stream {
		t.Errorf("request recorded as streamed")
	}
}

func TestRequestsRecorded(t *testing.T) {
	s := llmtest.NewServer(t)
	req := chatRequest("hello")
	req.Messages = append([]openai.ChatCompletionMessage{{Role: "system", Content: "sys"}}, req.Messages...)
	req.Messages = append(req.Messages,
		openai.ChatCompletionMessage{Role: "assistant", ToolCalls: []openai.ToolCall{{ID: "c1", Type: "function", Function: openai.FunctionCall{Name: "ls", Arguments: "{}"}}}},
		openai.ChatCompletionMessage{Role: "tool", ToolCallID: "c1", MultiContent: []openai.ChatMessagePart{{Type: "text", Text: "a.go"}, {Type: "text", Text: " b.go"}}},
	)
	req.Tools = []openai.Tool{{Type: "function", Function: &openai.FunctionDefinition{Name: "ls", Description: "list", Parameters: json.RawMessage(`{"type":"object"}`)}}}
	req.MaxTokens = 99
	recvAll(t, s, req)

	if s.Calls() != 1 {
		t.Fatalf("Calls() = %d; want 1", s.Calls())
	}
	got := s.Requests()[0]
	want := llmtest.Request{
		Model: "fake-model",
		Messages: []agent.Message{
			{Role: "system", Content: "sys"},
			{Role: "user", Content: "hello"},
			{Role: "assistant", ToolCalls: []agent.ToolCall{{ID: "c1", Type: "function", Function: agent.FunctionCall{Name: "ls", Arguments: "{}"}}}},
			{Role: "tool", ToolCallID: "c1", Content: "a.go b.go"},
		},
		Tools:         []agent.ToolSpec{{Name: "ls", Description: "list", Parameters: json.RawMessage(`{"type":"object"}`)}},
		Stream:        true,
		IncludeUsage:  true,
		MaxTokens:     99,
		Authorization: "Bearer sk-fake",
	}
	got.Body = nil
	if g, w := mustJSON(got), mustJSON(want); g != w {
		t.Errorf("Requests()[0] = %s; want %s", g, w)
	}
}

func TestValidation(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // "" means valid
	}{
		{"valid", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, ""},
		{"empty string content", `{"model":"m","messages":[{"role":"user","content":""}]}`, ""},
		{"not JSON", `{"model":`, "could not parse the JSON body"},
		{"no model", `{"messages":[{"role":"user","content":"x"}]}`, "you must provide a model parameter"},
		{"no messages", `{"model":"m","messages":[]}`, "[] is too short - 'messages'"},
		{"user without content", `{"model":"m","messages":[{"role":"user"}]}`, "Missing required parameter: 'messages[0].content'"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "Invalid value: 'robot'"},
		{"assistant without content or calls", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":null}]}`, "expected a string, got null"},
		{"tool without a call", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c1","content":"r"}]}`, "must be a response to a preceeding message with 'tool_calls'"},
		{"unanswered call", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"ls","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"ls","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"r"},{"role":"user","content":"y"}]}`, "did not have response messages: c2"},
		{"unanswered call at the end", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"ls","arguments":"{}"}}]}]}`, "did not have response messages: c1"},
		{"answered calls", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"ls","arguments":"{}"}},{"id":"c2","type":"function","function":{"name":"ls","arguments":""}}]},{"role":"tool","tool_call_id":"c2","content":""},{"role":"tool","tool_call_id":"c1","content":"r"}]}`, ""},
		{"tool without content", `{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"ls","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1"}]}`, "Missing required parameter: 'messages[2].content'"},
		{"bad tool name", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"read file"}}]}`, "does not match pattern"},
		{"tool parameters not an object", `{"model":"m","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":null}}]}`, "expected an object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := llmtest.NewServer(t)
			s.Enqueue(llmtest.Reply{Text: "queued"})
			resp, err := http.Post(s.URL()+"/chat/completions", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if tc.wantErr == "" {
				if resp.StatusCode != 200 || !strings.Contains(string(raw), "queued") {
					t.Errorf("status %d, body %s; want 200 with the queued reply", resp.StatusCode, raw)
				}
				return
			}
			if resp.StatusCode != 400 || !strings.Contains(string(raw), tc.wantErr) {
				t.Errorf("status %d, body %s; want 400 with %q", resp.StatusCode, raw, tc.wantErr)
			}
			// The reply stays queued for the next valid request.
			resp, err = http.Post(s.URL()+"/chat/completions", "application/json",
				strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(raw), "queued") {
				t.Errorf("next reply = %s; want the queued one", raw)
			}
		})
	}
}

func TestReplyOrder(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Text: "first"}, llmtest.Reply{Text: "second"})
	s.SetResponder(func(r llmtest.Request) llmtest.Reply {
		if r.Model == "broken" {
			return llmtest.Reply{Status: 500}
		}
		return llmtest.DefaultResponder(r)
	})
	text := func(model, prompt string) string {
		req := chatRequest(prompt)
		req.Model = model
		st, err := openaiClient(s).CreateChatCompletionStream(t.Context(), req)
		if err != nil {
			var apiErr *openai.APIError
			if errors.As(err, &apiErr) {
				return "HTTP " + apiErr.HTTPStatus
			}
			t.Fatal(err)
		}
		defer st.Close()
		var b strings.Builder
		for {
			c, err := st.Recv()
			if err != nil {
				return b.String()
			}
			for _, ch := range c.Choices {
				b.WriteString(ch.Delta.Content)
			}
		}
	}
	for _, step := range []struct{ model, prompt, want string }{
		{"broken", "a", "first"},
		{"m", "b", "second"},
		{"broken", "c", "HTTP 500 Internal Server Error"},
		{"m", "d", "echo: d"},
	} {
		if got := text(step.model, step.prompt); got != step.want {
			t.Errorf("%s %q: reply %q; want %q", step.model, step.prompt, got, step.want)
		}
	}
	s.SetResponder(nil)
	if got := text("broken", "e"); got != "echo: e" {
		t.Errorf("after SetResponder(nil): reply %q; want %q", got, "echo: e")
	}
}

func TestDropAfterChunks(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Text: "abcdefgh", ChunkSize: 2, DropAfterChunks: 3})
	st, err := openaiClient(s).CreateChatCompletionStream(t.Context(), chatRequest("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n int
	for {
		_, err = st.Recv()
		if err != nil {
			break
		}
		n++
	}
	if n != 3 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %d chunks then %v; want 3 then unexpected EOF", n, err)
	}
}

func TestHangEndsWhenClientLeaves(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Text: "abc", HangAfterChunks: 1}, llmtest.Reply{Text: "next"})
	ctx, cancel := context.WithCancel(t.Context())
	st, err := openaiClient(s).CreateChatCompletionStream(ctx, chatRequest("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := st.Recv()
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Recv returned %v while the server hangs", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	<-done
	st.Close()
	// The server still answers.
	chunks := recvAll(t, s, chatRequest("y"))
	if len(chunks) == 0 {
		t.Errorf("no reply after a hung one")
	}
}

func TestCloseReleasesHangingReplies(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{HangAfterChunks: 1}, llmtest.Reply{Text: "x", Delay: time.Hour})
	for range 2 {
		st, err := openaiClient(s).CreateChatCompletionStream(t.Context(), chatRequest("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		defer st.Close()
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on hanging replies")
	}
	s.Close() // idempotent
}

func TestDelays(t *testing.T) {
	s := llmtest.NewServer(t)
	s.Enqueue(llmtest.Reply{Text: "abcd", ChunkSize: 2, Delay: 150 * time.Millisecond, ChunkDelay: 20 * time.Millisecond})
	start := time.Now()
	recvAll(t, s, chatRequest("x"))
	// Delay once, ChunkDelay before each of the 4 frames after the role frame.
	if got, want := time.Since(start), 150*time.Millisecond+4*20*time.Millisecond; got < want {
		t.Errorf("stream took %v; want at least %v", got, want)
	}
}

func TestModels(t *testing.T) {
	s := llmtest.NewServer(t)
	list, err := openaiClient(s).ListModels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Models) == 0 || list.Models[0].ID == "" {
		t.Errorf("models = %+v; want at least one", list.Models)
	}
	resp, err := http.Get(s.URL() + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /v1/nope = %d; want 404", resp.StatusCode)
	}
}

func TestNewWithoutListener(t *testing.T) {
	s := llmtest.New()
	defer s.Close()
	if s.URL() != "" {
		t.Errorf("URL() = %q; want empty", s.URL())
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi [[tool ls]]"}]}`))
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"name":"ls"`) {
		t.Errorf("status %d, body %s; want 200 with a call of ls", rec.Code, rec.Body.String())
	}
}

func TestKeepRequestsOff(t *testing.T) {
	s := llmtest.NewServer(t)
	s.KeepRequests(false)
	for range 3 {
		resp, err := http.Post(s.URL()+"/chat/completions", "application/json",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if s.Calls() != 3 || len(s.Requests()) != 0 {
		t.Errorf("Calls, Requests = %d, %d; want 3, 0", s.Calls(), len(s.Requests()))
	}
}
