package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/agent"
)

// created is the fixed "created" timestamp of every response, so that
// transcripts are reproducible.
const created = 1735689600 // 2025-01-01T00:00:00Z

const defaultChunkSize = 4

// exchange answers one chat request with its reply.
type exchange struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	req   Request
	reply Reply
	n     int // the request's number, from 1
}

func (e *exchange) serve() {
	rp := e.reply
	if rp.RetryAfter != "" {
		e.w.Header().Set("Retry-After", rp.RetryAfter)
	}
	switch {
	case rp.RawBody != "":
		status := rp.Status
		if status == 0 {
			status = http.StatusOK
		}
		e.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		e.w.WriteHeader(status)
		_, _ = io.WriteString(e.w, rp.RawBody)
	case rp.Status >= 400:
		msg := rp.ErrorMessage
		if msg == "" {
			msg = http.StatusText(rp.Status)
		}
		writeError(e.w, rp.Status, msg, rp.RetryAfter)
	case e.req.Stream:
		e.stream()
	default:
		e.complete()
	}
}

// stream sends the reply as Server-Sent Events.
func (e *exchange) stream() {
	rp := e.reply
	frames := rp.Frames
	if frames == nil {
		frames = e.frames()
	}
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	e.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(e.w)
	for i, f := range frames {
		if i > 0 {
			d := rp.ChunkDelay
			if i == 1 {
				d += rp.Delay
			}
			if !e.wait(d) {
				return
			}
		}
		if _, err := io.WriteString(e.w, "data: "+f+"\n\n"); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if e.stop(i + 1) {
			return
		}
	}
	if e.stop(-1) {
		return
	}
	_, _ = io.WriteString(e.w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

// stop applies HangAfterChunks and DropAfterChunks after sent frames; sent is
// -1 once every frame was sent. It reports whether the handler must return.
func (e *exchange) stop(sent int) bool {
	rp := e.reply
	if rp.HangAfterChunks > 0 && (sent == rp.HangAfterChunks || sent < 0) {
		e.hang()
		return true
	}
	if rp.DropAfterChunks > 0 && (sent == rp.DropAfterChunks || sent < 0) {
		panic(http.ErrAbortHandler) // net/http closes the connection mid-body, silently
	}
	return false
}

// complete sends the reply as one chat.completion object.
func (e *exchange) complete() {
	rp := e.reply
	if e.stop(-1) || !e.wait(rp.Delay) {
		return
	}
	msg := completionMessage{Role: agent.RoleAssistant, ReasoningContent: rp.Reasoning}
	if rp.Text != "" || len(rp.ToolCalls) == 0 {
		msg.Content = &rp.Text
	}
	for i, tc := range rp.ToolCalls {
		id, args := e.toolCallDefaults(i, tc)
		msg.ToolCalls = append(msg.ToolCalls, agent.ToolCall{
			ID: id, Type: "function", Function: agent.FunctionCall{Name: tc.Name, Arguments: args},
		})
	}
	c := completion{
		ID:                e.id(),
		Object:            "chat.completion",
		Created:           created,
		Model:             e.req.Model,
		SystemFingerprint: "fp_llmtest",
		Choices:           []completionChoice{{Message: msg, FinishReason: e.finishReason()}},
	}
	if !rp.OmitUsage {
		u := e.usage()
		c.Usage = &u
	}
	e.w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(e.w).Encode(c)
}

// frames builds the data of the SSE frames of the reply.
func (e *exchange) frames() []string {
	rp := e.reply
	size := rp.ChunkSize
	if size <= 0 {
		size = defaultChunkSize
	}
	var out []string
	add := func(c chunk) {
		b, err := json.Marshal(c)
		if err != nil {
			panic(err) // the types above always marshal
		}
		out = append(out, string(b))
	}
	delta := func(d chunkDelta, finish *string) chunk {
		c := chunk{
			ID:                e.id(),
			Object:            "chat.completion.chunk",
			Created:           created,
			Model:             e.req.Model,
			SystemFingerprint: "fp_llmtest",
			Choices:           []chunkChoice{{Delta: d, FinishReason: finish}},
		}
		if e.req.IncludeUsage {
			c.Usage = json.RawMessage("null")
		}
		return c
	}
	empty := ""
	add(delta(chunkDelta{Role: agent.RoleAssistant, Content: &empty}, nil))
	for _, p := range splitRunes(rp.Reasoning, size) {
		add(delta(chunkDelta{ReasoningContent: p}, nil))
	}
	for _, p := range splitRunes(rp.Text, size) {
		add(delta(chunkDelta{Content: &p}, nil))
	}
	for _, tc := range e.toolCallPieces(size) {
		add(delta(chunkDelta{ToolCalls: []chunkToolCall{tc}}, nil))
	}
	if !rp.OmitFinishReason {
		reason := e.finishReason()
		add(delta(chunkDelta{}, &reason))
	}
	if e.req.IncludeUsage && !rp.OmitUsage {
		u, err := json.Marshal(e.usage())
		if err != nil {
			panic(err)
		}
		add(chunk{
			ID: e.id(), Object: "chat.completion.chunk", Created: created, Model: e.req.Model,
			SystemFingerprint: "fp_llmtest", Choices: []chunkChoice{}, Usage: u,
		})
	}
	return out
}

// toolCallPieces returns the streamed pieces of the reply's tool calls.
func (e *exchange) toolCallPieces(size int) []chunkToolCall {
	rp := e.reply
	perCall := make([][]chunkToolCall, len(rp.ToolCalls))
	for i, tc := range rp.ToolCalls {
		var index *int
		if !rp.OmitIndex {
			index = &i
		}
		id, args := e.toolCallDefaults(i, tc)
		pieces := []chunkToolCall{{Index: index, ID: id, Type: "function", Function: chunkFunction{Name: tc.Name}}}
		for _, a := range splitArgs(args, size) {
			pieces = append(pieces, chunkToolCall{Index: index, Function: chunkFunction{Arguments: a}})
		}
		perCall[i] = pieces
	}
	var out []chunkToolCall
	if !rp.InterleaveToolCalls {
		for _, p := range perCall {
			out = append(out, p...)
		}
		return out
	}
	for k := 0; ; k++ {
		more := false
		for _, p := range perCall {
			if k < len(p) {
				out = append(out, p[k])
				more = true
			}
		}
		if !more {
			return out
		}
	}
}

func (e *exchange) toolCallDefaults(i int, tc ToolCall) (id, args string) {
	id, args = tc.ID, tc.Arguments
	if id == "" {
		id = fmt.Sprintf("call_llmtest_%d_%d", e.n, i)
	}
	if args == "" {
		args = "{}"
	}
	return id, args
}

func (e *exchange) id() string { return "chatcmpl-llmtest-" + strconv.Itoa(e.n) }

func (e *exchange) finishReason() string {
	switch {
	case e.reply.FinishReason != "":
		return e.reply.FinishReason
	case len(e.reply.ToolCalls) > 0:
		return "tool_calls"
	default:
		return "stop"
	}
}

func (e *exchange) usage() wireUsage {
	var u wireUsage
	if e.reply.Usage != nil {
		u.PromptTokens = e.reply.Usage.PromptTokens
		u.CompletionTokens = e.reply.Usage.CompletionTokens
		u.PromptTokensDetails.CachedTokens = e.reply.Usage.CachedTokens
	} else {
		prompt := 0
		for _, m := range e.req.Messages {
			prompt += utf8.RuneCountInString(m.Content)
		}
		out := utf8.RuneCountInString(e.reply.Text) + utf8.RuneCountInString(e.reply.Reasoning)
		for _, tc := range e.reply.ToolCalls {
			out += utf8.RuneCountInString(tc.Name) + utf8.RuneCountInString(tc.Arguments)
		}
		u.PromptTokens = (prompt + 3) / 4
		u.CompletionTokens = (out + 3) / 4
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// wait sleeps for d unless the client goes away or the server closes first;
// it reports whether to go on.
func (e *exchange) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-e.r.Context().Done():
	case <-e.s.done:
	}
	return false
}

// hang blocks until the client goes away or the server closes.
func (e *exchange) hang() {
	select {
	case <-e.r.Context().Done():
	case <-e.s.done:
	}
}

// splitRunes cuts s into pieces of n runes.
func splitRunes(s string, n int) []string {
	var out []string
	for s != "" {
		i, k := 0, 0
		for i < len(s) && k < n {
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
			k++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// splitArgs cuts tool-call arguments into pieces of n runes, and at least two
// pieces when they have two runes or more.
func splitArgs(args string, n int) []string {
	if c := utf8.RuneCountInString(args); c <= n {
		n = max(1, (c+1)/2)
	}
	return splitRunes(args, n)
}
