package acp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// notification is the params of session/update.
type notification struct {
	SessionID session.ID `json:"sessionId"`
	Update    update     `json:"update"`
}

// update is one session/update: a message chunk or a tool call (or its
// update); fields not used by a kind are left out.
type update struct {
	SessionUpdate string          `json:"sessionUpdate"`
	MessageID     string          `json:"messageId,omitempty"`
	ToolCallID    string          `json:"toolCallId,omitempty"`
	Title         string          `json:"title,omitempty"`
	Name          string          `json:"name,omitempty"` // agentd's tool name
	Kind          string          `json:"kind,omitempty"`
	Status        string          `json:"status,omitempty"`
	RawInput      json.RawMessage `json:"rawInput,omitempty"`
	Content       any             `json:"content,omitempty"` // a content block for chunks, []toolContent for tool calls
}

// Session update kinds and tool call statuses of ACP.
const (
	updUserChunk     = "user_message_chunk"
	updAgentChunk    = "agent_message_chunk"
	updThoughtChunk  = "agent_thought_chunk"
	updToolCall      = "tool_call"
	updToolCallPatch = "tool_call_update"

	statusPending    = "pending"
	statusInProgress = "in_progress"
	statusCompleted  = "completed"
	statusFailed     = "failed"
)

type textBlock struct {
	Type string `json:"type"` // "text"
	Text string `json:"text"`
}

type toolContent struct {
	Type    string    `json:"type"` // "content"
	Content textBlock `json:"content"`
}

func text(s string) textBlock { return textBlock{Type: "text", Text: s} }

func toolText(s string) []toolContent {
	return []toolContent{{Type: "content", Content: text(s)}}
}

func chunk(kind, messageID, s string) update {
	return update{SessionUpdate: kind, MessageID: messageID, Content: text(s)}
}

// toolKind maps agentd's tool names to ACP tool kinds.
func toolKind(name string) string {
	switch name {
	case "read_file", "list_directory":
		return "read"
	case "write_file", "replace":
		return "edit"
	case "glob", "search_file_content", "web_search":
		return "search"
	case "run_shell_command":
		return "execute"
	case "web_fetch":
		return "fetch"
	}
	return "other"
}

// titleArgs are the arguments that say best what a call does, by priority.
var titleArgs = []string{"command", "file_path", "directory_path", "pattern", "url", "skill_name"}

// toolTitle is a short human title: the tool's name and its main argument,
// e.g. "run_shell_command: make test".
func toolTitle(name string, args json.RawMessage) string {
	var m map[string]any
	if json.Unmarshal(args, &m) == nil {
		for _, k := range titleArgs {
			if v, ok := m[k].(string); ok && strings.TrimSpace(v) != "" {
				v, _, _ = strings.Cut(strings.TrimSpace(v), "\n")
				if utf8.RuneCountInString(v) > 80 {
					v = string([]rune(v)[:80]) + "…"
				}
				return name + ": " + v
			}
		}
	}
	if name == "" {
		return "tool call"
	}
	return name
}

// rawInput is a call's arguments as ACP's rawInput: the JSON object, or
// {"_raw": text} for arguments that are not JSON (Agentao's convention).
func rawInput(v any) json.RawMessage {
	var s string
	switch a := v.(type) {
	case json.RawMessage:
		if json.Valid(a) {
			return a
		}
		s = string(a)
	case string:
		if json.Valid([]byte(a)) && strings.HasPrefix(strings.TrimSpace(a), "{") {
			return json.RawMessage(a)
		}
		s = a
	case nil:
		return json.RawMessage("{}")
	default:
		b, err := json.Marshal(a)
		if err != nil {
			return json.RawMessage("{}")
		}
		return b
	}
	b, _ := json.Marshal(map[string]string{"_raw": s})
	return b
}

func newMessageID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "msg_" + hex.EncodeToString(b[:])
}

// replay renders a stored history as the session/update notifications a
// live turn would have sent: user messages (system reminders stripped),
// reasoning, agent text, each tool call (completed, with its arguments) and
// each tool result. Every message keeps one messageId, derived from its
// position, so a reload gives the same ids.
func replay(msgs []agent.Message) []update {
	var out []update
	for i, m := range msgs {
		id := "msg_" + strconv.Itoa(i)
		switch m.Role {
		case agent.RoleUser:
			if t := strings.TrimSpace(agent.StripReminders(m.Content)); t != "" {
				out = append(out, chunk(updUserChunk, id, t))
			}
		case agent.RoleAssistant:
			if m.ReasoningContent != "" {
				out = append(out, chunk(updThoughtChunk, id+"_thought", m.ReasoningContent))
			}
			if m.Content != "" {
				out = append(out, chunk(updAgentChunk, id, m.Content))
			}
			for _, tc := range m.ToolCalls {
				args := rawInput(tc.Function.Arguments)
				out = append(out, update{SessionUpdate: updToolCall, ToolCallID: tc.ID, Title: toolTitle(tc.Function.Name, args),
					Name: tc.Function.Name, Kind: toolKind(tc.Function.Name), Status: statusCompleted, RawInput: args})
			}
		case agent.RoleTool:
			out = append(out, update{SessionUpdate: updToolCallPatch, ToolCallID: m.ToolCallID, Status: statusCompleted, Content: toolText(m.Content)})
		}
	}
	return out
}

// Permission options, Agentao's four; the option id is the pool's decision.
var permissionOptions = []map[string]string{
	{"optionId": session.AllowOnce, "name": "Allow once", "kind": "allow_once"},
	{"optionId": session.AllowAlways, "name": "Always allow", "kind": "allow_always"},
	{"optionId": session.RejectOnce, "name": "Reject once", "kind": "reject_once"},
	{"optionId": session.RejectAlways, "name": "Always reject", "kind": "reject_always"},
}

// maxOutputTail bounds the streamed output shown in a running tool call
// (tool_call_update content replaces the previous content).
const maxOutputTail = 4 << 10

// prompt is one running session/prompt and the mapping of its turn's
// events to session/update notifications.
type prompt struct {
	c          *conn
	sid        session.ID
	requestKey string // the JSON-RPC id of the session/prompt request, for $/cancel_request
	ctx        context.Context
	cancel     context.CancelCauseFunc
	cancelled  atomic.Bool // the client asked to cancel it

	mu        sync.Mutex
	messageID string // of the agent message being streamed
	thoughtID string
	calls     map[string]*callState
}

// callState is what the mapping remembers of one tool call.
type callState struct {
	announced  bool   // its tool_call went out with the permission request
	allowed    bool   // the permission was granted
	permission string // id of an unanswered session/request_permission
	output     string // tail of the streamed output
}

func newPrompt(c *conn, sid session.ID, id json.RawMessage) *prompt {
	ctx, cancel := context.WithCancelCause(c.ctx)
	return &prompt{
		c: c, sid: sid, requestKey: compactJSON(id), ctx: ctx, cancel: cancel,
		messageID: newMessageID(), thoughtID: newMessageID(), calls: map[string]*callState{},
	}
}

// cancelRequested cancels the prompt's turn on the client's request.
func (p *prompt) cancelRequested(reason string) {
	p.cancelled.Store(true)
	p.cancel(agent.Cancelled(reason))
}

// close ends the prompt's context and dismisses permission requests the
// client still shows.
func (p *prompt) close() {
	p.cancel(nil)
	p.mu.Lock()
	var open []string
	for _, st := range p.calls {
		if st.permission != "" {
			open = append(open, st.permission)
			st.permission = ""
		}
	}
	p.mu.Unlock()
	for _, id := range open {
		p.dismiss(id)
	}
}

// dismiss withdraws a session/request_permission the client has not
// answered ($/cancel_request), if it is still pending.
func (p *prompt) dismiss(id string) {
	if p.c.forget(id) {
		_ = p.c.notify("$/cancel_request", map[string]string{"requestId": id})
	}
}

func (p *prompt) send(u update) {
	_ = p.c.notify("session/update", notification{SessionID: p.sid, Update: u})
}

func (p *prompt) call(id string) *callState {
	st := p.calls[id]
	if st == nil {
		st = &callState{}
		p.calls[id] = st
	}
	return st
}

// emit maps one event of the turn; the agent calls it from one goroutine at
// a time, in order.
func (p *prompt) emit(e agent.Event) {
	data, _ := e.Data.(map[string]any)
	str := func(k string) string { s, _ := data[k].(string); return s }
	switch e.Type {
	case agent.EventTurnStart: // a new LLM call: a new agent message
		p.mu.Lock()
		p.messageID, p.thoughtID = newMessageID(), newMessageID()
		p.mu.Unlock()
	case agent.EventLLMText:
		if s := str("chunk"); s != "" {
			p.send(chunk(updAgentChunk, p.ids(false), s))
		}
	case agent.EventThinking:
		if s := str("text"); s != "" {
			p.send(chunk(updThoughtChunk, p.ids(true), s))
		}
	case agent.EventError:
		msg := "Error: " + str("message")
		if d := str("detail"); d != "" {
			msg += " — " + d
		}
		p.send(chunk(updAgentChunk, newMessageID(), msg))
	case session.EventToolConfirmation:
		p.askPermission(str("call_id"), str("tool"), data["args"])
	case session.EventToolConfirmationResolved:
		p.resolved(str("call_id"), str("decision"))
	case agent.EventToolStart:
		p.toolStart(str("call_id"), str("tool"), data["args"])
	case agent.EventToolOutput:
		p.mu.Lock()
		st := p.call(str("call_id"))
		st.output += str("chunk")
		if len(st.output) > maxOutputTail {
			cut := len(st.output) - maxOutputTail
			for cut < len(st.output) && !utf8.RuneStart(st.output[cut]) {
				cut++
			}
			st.output = st.output[cut:]
		}
		out := st.output
		p.mu.Unlock()
		p.send(update{SessionUpdate: updToolCallPatch, ToolCallID: str("call_id"), Status: statusInProgress, Content: toolText(out)})
	case agent.EventToolComplete:
		status := statusFailed // error, cancelled, denied, rejected
		if str("status") == "ok" {
			status = statusCompleted
		}
		p.send(update{SessionUpdate: updToolCallPatch, ToolCallID: str("call_id"), Status: status})
	case agent.EventToolResult:
		p.send(update{SessionUpdate: updToolCallPatch, ToolCallID: str("call_id"), Content: toolText(str("content"))})
	}
}

func (p *prompt) ids(thought bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if thought {
		return p.thoughtID
	}
	return p.messageID
}

func (p *prompt) toolStart(callID, tool string, args any) {
	p.mu.Lock()
	st := p.call(callID)
	announced, allowed := st.announced, st.allowed
	p.mu.Unlock()
	switch {
	case !announced:
		in := rawInput(args)
		p.send(update{SessionUpdate: updToolCall, ToolCallID: callID, Title: toolTitle(tool, in), Name: tool, Kind: toolKind(tool),
			Status: statusPending, RawInput: in})
	case allowed:
		p.send(update{SessionUpdate: updToolCallPatch, ToolCallID: callID, Status: statusInProgress})
	}
}

// askPermission bridges the pool's tool_confirmation: the call is shown
// (tool_call, pending, with its real id) and then the client is asked; its
// answer, in a goroutine of its own, becomes the pool's decision. The
// pool's approval timeout still applies, and a cancelled turn stops
// waiting.
func (p *prompt) askPermission(callID, tool string, args any) {
	in := rawInput(args)
	title, kind := toolTitle(tool, in), toolKind(tool)
	p.mu.Lock()
	st := p.call(callID)
	st.announced = true
	p.mu.Unlock()
	p.send(update{SessionUpdate: updToolCall, ToolCallID: callID, Title: title, Name: tool, Kind: kind, Status: statusPending, RawInput: in})
	c := p.c
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return // the turn is being cancelled: the pool stops waiting
	}
	c.handlers.Add(1)
	c.mu.Unlock()
	id, answer, err := c.call("session/request_permission", map[string]any{
		"sessionId": p.sid,
		"toolCall":  update{ToolCallID: callID, Title: title, Kind: kind, Status: statusPending, RawInput: in}.asToolCall(),
		"options":   permissionOptions,
	})
	if err != nil {
		c.handlers.Done()
		return
	}
	p.mu.Lock()
	st.permission = id
	p.mu.Unlock()
	go func() {
		defer c.handlers.Done()
		var decision string
		select {
		case m, ok := <-answer:
			decision = session.RejectOnce // a disconnect, an error, "cancelled", an unknown option
			if ok {
				decision = decisionOf(m)
			}
		case <-p.ctx.Done():
			return // the turn is over or cancelled: the pool no longer waits
		}
		p.mu.Lock()
		if st.permission == id {
			st.permission = ""
		}
		p.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(p.ctx), 5*time.Second)
		defer cancel()
		err := c.s.pool.Approve(ctx, c.peer.Tenant, p.sid, callID, decision)
		if err != nil && !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrBusy) {
			c.log.Warn("acp permission answer not applied", zap.String("session_id", string(p.sid)), zap.String("call_id", callID), zap.Error(err))
		}
	}()
}

// resolved notes how the pool decided a call. A decision the client did
// not make (the approval timeout, a cancel, an answer over the HTTP API)
// withdraws the client's permission request.
func (p *prompt) resolved(callID, decision string) {
	p.mu.Lock()
	st := p.call(callID)
	st.allowed = decision == session.AllowOnce || decision == session.AllowAlways
	open := st.permission
	st.permission = ""
	p.mu.Unlock()
	if open != "" {
		p.dismiss(open)
	}
}

// asToolCall renders the update's fields as a ToolCallUpdate object (the
// toolCall of a permission request), without sessionUpdate.
func (u update) asToolCall() map[string]any {
	m := map[string]any{"toolCallId": u.ToolCallID}
	if u.Title != "" {
		m["title"] = u.Title
	}
	if u.Kind != "" {
		m["kind"] = u.Kind
	}
	if u.Status != "" {
		m["status"] = u.Status
	}
	if u.RawInput != nil {
		m["rawInput"] = u.RawInput
	}
	return m
}

// decisionOf reads the client's answer to session/request_permission:
// {"outcome": {"outcome": "selected", "optionId": ...}}, or the same
// flattened. Anything else is a rejection.
func decisionOf(m message) string {
	if m.Error != nil || len(m.Result) == 0 {
		return session.RejectOnce
	}
	type outcome struct {
		Outcome  string `json:"outcome"`
		OptionID string `json:"optionId"`
	}
	var nested struct {
		Outcome json.RawMessage `json:"outcome"`
	}
	if json.Unmarshal(m.Result, &nested) != nil {
		return session.RejectOnce
	}
	var o outcome
	if len(nested.Outcome) > 0 && nested.Outcome[0] == '{' {
		_ = json.Unmarshal(nested.Outcome, &o)
	} else {
		_ = json.Unmarshal(m.Result, &o)
	}
	if o.Outcome == "selected" && slices.Contains(session.Decisions, o.OptionID) {
		return o.OptionID
	}
	return session.RejectOnce
}
