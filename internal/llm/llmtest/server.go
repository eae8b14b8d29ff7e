package llmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/agent"
)

// maxBody bounds a request body the server reads.
const maxBody = 64 << 20

// Server is a fake OpenAI-compatible server. Create it with [NewServer] in
// tests or [New] to mount [Server.Handler] yourself.
type Server struct {
	ts   *httptest.Server // nil when made by New
	done chan struct{}    // closed by Close: releases hanging and sleeping replies
	once sync.Once

	mu        sync.Mutex
	queue     []Reply
	responder func(Request) Reply
	requests  []Request
	calls     int
	forget    bool // keep no requests (benchmarks)
}

// NewServer starts a Server on a loopback port. It is closed when the test
// ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := New()
	s.ts = httptest.NewServer(s.Handler())
	tb.Cleanup(s.Close)
	return s
}

// New returns a Server that is not listening: serve [Server.Handler] and call
// [Server.Close] before shutting the HTTP server down.
func New() *Server {
	return &Server{done: make(chan struct{})}
}

// URL returns the base URL to use as OPENAI_BASE_URL, ending in "/v1". It is
// empty for a Server made by New.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL + "/v1"
}

// Close releases every reply that hangs or sleeps, and for a Server made by
// NewServer, closes it. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		if s.ts != nil {
			s.ts.Close()
		}
	})
}

// Enqueue adds replies to the queue that chat requests consume in order.
func (s *Server) Enqueue(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, replies...)
}

// SetResponder sets the function that answers chat requests when the queue
// is empty; nil restores [DefaultResponder]. It may be called concurrently
// and must be safe for concurrent use itself.
func (s *Server) SetResponder(f func(Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responder = f
}

// KeepRequests sets whether the server keeps the requests it receives (the
// default) for [Server.Requests]. Benchmarks that send many thousands turn it
// off, so that the fake's own memory does not weigh on what they measure;
// [Server.Calls] still counts.
func (s *Server) KeepRequests(keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget = !keep
}

// Requests returns a copy of the chat requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Calls returns how many chat requests the server received.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Handler returns the HTTP handler serving /v1/chat/completions and
// /v1/models.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	mux.HandleFunc("GET /v1/models", s.models)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path), "")
	})
	return mux
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"fake-model","object":"model","created":0,"owned_by":"llmtest"}]}`)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return // the client went away
	}
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request. ("+err.Error()+")", "")
		return
	}
	req, err := decodeRequest(wr, body, r.Header.Get("Authorization"))
	s.mu.Lock()
	if !s.forget {
		s.requests = append(s.requests, req)
	}
	s.calls++
	n := s.calls
	s.mu.Unlock()
	if err == nil {
		err = validate(wr)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	reply := s.next(req)
	e := exchange{s: s, w: w, r: r, req: req, reply: reply, n: n}
	e.serve()
}

// next picks the reply to req: queue, responder, default.
func (s *Server) next(req Request) Reply {
	s.mu.Lock()
	if len(s.queue) > 0 {
		reply := s.queue[0]
		s.queue = s.queue[1:]
		s.mu.Unlock()
		return reply
	}
	f := s.responder
	s.mu.Unlock()
	if f == nil {
		f = DefaultResponder
	}
	return f(req)
}

func decodeRequest(wr wireRequest, body []byte, auth string) (Request, error) {
	req := Request{
		Model:         wr.Model,
		Stream:        wr.Stream,
		IncludeUsage:  wr.StreamOptions != nil && wr.StreamOptions.IncludeUsage,
		MaxTokens:     wr.MaxTokens,
		Authorization: auth,
		Body:          body,
	}
	if wr.MaxCompletionTokens > 0 {
		req.MaxTokens = wr.MaxCompletionTokens
	}
	var errs []string
	for i, m := range wr.Messages {
		content, err := contentText(m.Content)
		if err != nil {
			errs = append(errs, fmt.Sprintf("Invalid type for 'messages[%d].content': %v", i, err))
		}
		req.Messages = append(req.Messages, agent.Message{
			Role:             m.Role,
			Content:          content,
			ReasoningContent: m.ReasoningContent,
			ToolCalls:        m.ToolCalls,
			ToolCallID:       m.ToolCallID,
			Name:             m.Name,
		})
	}
	for _, t := range wr.Tools {
		req.Tools = append(req.Tools, agent.ToolSpec{
			Name:        t.Function.Name,
			Description: t.Function.Description,
			Parameters:  t.Function.Parameters,
		})
	}
	if len(errs) > 0 {
		return req, errors.New(strings.Join(errs, "; "))
	}
	return req, nil
}

// contentText reads a message content: a string, null, or an array of parts
// whose text parts are joined.
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", errors.New("expected a string or an array of content parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String(), nil
}

// validate rejects what the OpenAI API rejects about a conversation's shape.
// Its messages are the API's own, capitals and typos included.
func validate(wr wireRequest) error {
	if wr.Model == "" {
		return errors.New("you must provide a model parameter")
	}
	if len(wr.Messages) == 0 {
		return errors.New("[] is too short - 'messages'")
	}
	var pending []string // tool_call ids of the last assistant message not yet answered
	unanswered := func() error {
		if len(pending) == 0 {
			return nil
		}
		return fmt.Errorf("An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: %s", strings.Join(pending, ", "))
	}
	for i, m := range wr.Messages {
		hasContent := len(m.Content) > 0 && string(m.Content) != "null"
		switch m.Role {
		case agent.RoleSystem, agent.RoleUser, "developer":
			if !hasContent {
				return fmt.Errorf("Missing required parameter: 'messages[%d].content'.", i)
			}
		case agent.RoleAssistant:
			if !hasContent && len(m.ToolCalls) == 0 {
				return fmt.Errorf("Invalid value for 'messages[%d].content': expected a string, got null.", i)
			}
		case agent.RoleTool:
			if !hasContent {
				return fmt.Errorf("Missing required parameter: 'messages[%d].content'.", i)
			}
			k := slices.Index(pending, m.ToolCallID)
			if k < 0 {
				return errors.New("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.")
			}
			pending = slices.Delete(pending, k, k+1)
			continue
		default:
			return fmt.Errorf("Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.", m.Role)
		}
		if err := unanswered(); err != nil {
			return err
		}
		pending = nil
		if m.Role == agent.RoleAssistant && len(m.ToolCalls) > 0 {
			for j, tc := range m.ToolCalls {
				if tc.ID == "" {
					return fmt.Errorf("Missing required parameter: 'messages[%d].tool_calls[%d].id'.", i, j)
				}
				if tc.Function.Name == "" {
					return fmt.Errorf("Missing required parameter: 'messages[%d].tool_calls[%d].function.name'.", i, j)
				}
				pending = append(pending, tc.ID)
			}
		}
	}
	if err := unanswered(); err != nil {
		return err
	}
	for i, t := range wr.Tools {
		if t.Type != "function" {
			return fmt.Errorf("Invalid value: '%s'. Supported values are: 'function' ('tools[%d].type').", t.Type, i)
		}
		if !validToolName(t.Function.Name) {
			return fmt.Errorf("Invalid 'tools[%d].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", i)
		}
		if p := bytes.TrimSpace(t.Function.Parameters); len(p) > 0 && p[0] != '{' {
			return fmt.Errorf("Invalid type for 'tools[%d].function.parameters': expected an object.", i)
		}
	}
	return nil
}

func validToolName(name string) bool {
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// writeError answers with an OpenAI-shaped error body.
func writeError(w http.ResponseWriter, status int, message, retryAfter string) {
	var e wireError
	e.Error.Message = message
	e.Error.Type, e.Error.Code = errorKind(status)
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// errorKind returns the error type and code OpenAI uses for a status.
func errorKind(status int) (typ string, code *string) {
	str := func(s string) *string { return &s }
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", str("invalid_api_key")
	case status == http.StatusTooManyRequests:
		return "requests", str("rate_limit_exceeded")
	case status >= 500:
		return "server_error", nil
	default:
		return "invalid_request_error", nil
	}
}
