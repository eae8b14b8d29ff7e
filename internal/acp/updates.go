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

	sdk "github.com/coder/acp-go-sdk"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

func textChunk(kind, messageID, s string) sdk.SessionUpdate {
	id, block := sdk.Ptr(messageID), sdk.TextBlock(s)
	switch kind {
	case "user_message_chunk":
		return sdk.SessionUpdate{UserMessageChunk: &sdk.SessionUpdateUserMessageChunk{Content: block, MessageId: id}}
	case "agent_thought_chunk":
		return sdk.SessionUpdate{AgentThoughtChunk: &sdk.SessionUpdateAgentThoughtChunk{Content: block, MessageId: id}}
	}
	return sdk.SessionUpdate{AgentMessageChunk: &sdk.SessionUpdateAgentMessageChunk{Content: block, MessageId: id}}
}

func toolText(s string) []sdk.ToolCallContent {
	return []sdk.ToolCallContent{sdk.ToolContent(sdk.TextBlock(s))}
}

// toolCall is the tool_call update that shows a call: its arguments as
// rawInput, agentd's tool name in _meta ({"agentd": {"toolName": …}}).
func toolCall(id, tool string, in json.RawMessage, status sdk.ToolCallStatus) sdk.SessionUpdate {
	return sdk.SessionUpdate{ToolCall: &sdk.SessionUpdateToolCall{
		ToolCallId: sdk.ToolCallId(id), Title: toolTitle(tool, in), Kind: toolKind(tool), Status: status, RawInput: in,
		Meta: map[string]any{"agentd": map[string]string{"toolName": tool}},
	}}
}

// toolUpdate patches a tool call; a zero status or nil content is left
// out.
func toolUpdate(id string, status sdk.ToolCallStatus, content []sdk.ToolCallContent) sdk.SessionUpdate {
	u := &sdk.SessionToolCallUpdate{ToolCallId: sdk.ToolCallId(id), Content: content}
	if status != "" {
		u.Status = sdk.Ptr(status)
	}
	return sdk.SessionUpdate{ToolCallUpdate: u}
}

// toolKind maps agentd's tool names to ACP tool kinds.
func toolKind(name string) sdk.ToolKind {
	switch name {
	case "read_file", "list_directory":
		return sdk.ToolKindRead
	case "write_file", "replace":
		return sdk.ToolKindEdit
	case "glob", "search_file_content", "web_search":
		return sdk.ToolKindSearch
	case "run_shell_command":
		return sdk.ToolKindExecute
	case "web_fetch":
		return sdk.ToolKindFetch
	}
	return sdk.ToolKindOther
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
func replay(msgs []agent.Message) []sdk.SessionUpdate {
	var out []sdk.SessionUpdate
	for i, m := range msgs {
		id := "msg_" + strconv.Itoa(i)
		switch m.Role {
		case agent.RoleUser:
			if t := strings.TrimSpace(agent.StripReminders(m.Content)); t != "" {
				out = append(out, textChunk("user_message_chunk", id, t))
			}
		case agent.RoleAssistant:
			if m.ReasoningContent != "" {
				out = append(out, textChunk("agent_thought_chunk", id+"_thought", m.ReasoningContent))
			}
			if m.Content != "" {
				out = append(out, textChunk("agent_message_chunk", id, m.Content))
			}
			for _, tc := range m.ToolCalls {
				out = append(out, toolCall(tc.ID, tc.Function.Name, rawInput(tc.Function.Arguments), sdk.ToolCallStatusCompleted))
			}
		case agent.RoleTool:
			out = append(out, toolUpdate(m.ToolCallID, sdk.ToolCallStatusCompleted, toolText(m.Content)))
		}
	}
	return out
}

// Permission options, Agentao's four; the option id is the pool's decision.
var permissionOptions = []sdk.PermissionOption{
	{OptionId: session.AllowOnce, Name: "Allow once", Kind: sdk.PermissionOptionKindAllowOnce},
	{OptionId: session.AllowAlways, Name: "Always allow", Kind: sdk.PermissionOptionKindAllowAlways},
	{OptionId: session.RejectOnce, Name: "Reject once", Kind: sdk.PermissionOptionKindRejectOnce},
	{OptionId: session.RejectAlways, Name: "Always reject", Kind: sdk.PermissionOptionKindRejectAlways},
}

// decisionOf reads the client's answer to session/request_permission: the
// option it selected, if one of the four. An error, "cancelled" or another
// option is a rejection.
func decisionOf(resp sdk.RequestPermissionResponse, err error) string {
	if sel := resp.Outcome.Selected; err == nil && sel != nil && slices.Contains(session.Decisions, string(sel.OptionId)) {
		return string(sel.OptionId)
	}
	return session.RejectOnce
}

// maxOutputTail bounds the streamed output shown in a running tool call
// (tool_call_update content replaces the previous content).
const maxOutputTail = 4 << 10

// withdrawWait bounds the wait for a withdrawn permission request's
// $/cancel_request to reach the wire. The SDK queues it (a full queue
// drops it), so the wait is for wire order only, not for correctness.
const withdrawWait = time.Second

// prompt is one session/prompt of the connection, from its admission to
// its response, and the mapping of its turn's events to session/update
// notifications.
type prompt struct {
	c         *conn
	sid       session.ID
	text      string
	loading   <-chan struct{} // a session/load admitted before the prompt; closed once answered
	ctx       context.Context // the turn's
	cancel    context.CancelCauseFunc
	cancelled atomic.Bool   // the client asked to cancel it
	answered  chan struct{} // closed once its response is on the wire
	// relayed is closed once a prompt relayed to the session's owner is
	// on the owner's wire, or will never be; a session/close waits for it
	// so that it reaches the owner after the prompt.
	relayed     chan struct{}
	relayedOnce sync.Once

	mu        sync.Mutex
	messageID string // of the agent message being streamed
	thoughtID string
	calls     map[string]*callState
}

// callState is what the mapping remembers of one tool call.
type callState struct {
	announced  bool        // its tool_call went out with the permission request
	allowed    bool        // the permission was granted
	permission *permission // an unanswered session/request_permission
	output     string      // tail of the streamed output
}

// permission is a session/request_permission waiting for the client.
type permission struct {
	cancel   context.CancelFunc // withdraws it
	returned chan struct{}      // closed once the SDK's call has returned
}

func newPrompt(c *conn, sid session.ID, text string, loading <-chan struct{}) *prompt {
	ctx, cancel := context.WithCancelCause(c.ctx)
	return &prompt{
		c: c, sid: sid, text: text, loading: loading, ctx: ctx, cancel: cancel, answered: make(chan struct{}), relayed: make(chan struct{}),
		messageID: newMessageID(), thoughtID: newMessageID(), calls: map[string]*callState{},
	}
}

// cancelRequested cancels the prompt's turn on the client's request.
func (p *prompt) cancelRequested(reason string) {
	p.cancelled.Store(true)
	p.cancel(agent.Cancelled(reason))
}

// end runs before the prompt is answered: the session takes prompts
// again (a client may send the next one as soon as it reads the answer),
// and the permission requests the client still shows are withdrawn.
func (p *prompt) end() {
	p.settleRelay()
	p.forget()
	p.cancel(nil)
	p.mu.Lock()
	var open []*permission
	for _, st := range p.calls {
		if st.permission != nil {
			open = append(open, st.permission)
			st.permission = nil
		}
	}
	p.mu.Unlock()
	for _, perm := range open {
		p.withdraw(perm)
	}
}

// settleRelay notes that the prompt is on the owner's wire, or will never
// be.
func (p *prompt) settleRelay() { p.relayedOnce.Do(func() { close(p.relayed) }) }

// answer runs once the prompt's response is on the wire (or never will
// be).
func (p *prompt) answer() {
	p.forget()
	p.cancel(nil)
	close(p.answered)
}

func (p *prompt) forget() {
	p.c.mu.Lock()
	if p.c.prompts[p.sid] == p {
		delete(p.c.prompts, p.sid)
	}
	p.c.mu.Unlock()
}

// withdraw withdraws a permission request: the SDK sends $/cancel_request
// when the request's context ends (Connection.waitForResponse), from a
// goroutine of its own. withdraw waits until it is on the wire (returned,
// see askPermission), so that it comes before what the turn sends next.
func (p *prompt) withdraw(perm *permission) {
	perm.cancel()
	select {
	case <-perm.returned:
	case <-p.c.done:
	}
}

func (p *prompt) send(u sdk.SessionUpdate) {
	// Not the turn's context: updates still go out while a cancelled turn
	// winds down, before its prompt is answered.
	_ = p.c.sdk.SessionUpdate(context.WithoutCancel(p.ctx), sdk.SessionNotification{SessionId: sdk.SessionId(p.sid), Update: u})
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
	switch d := e.Data.(type) {
	case agent.TurnStart: // a new LLM call: a new agent message
		p.mu.Lock()
		p.messageID, p.thoughtID = newMessageID(), newMessageID()
		p.mu.Unlock()
	case agent.LLMText:
		if d.Chunk != "" {
			p.send(textChunk("agent_message_chunk", p.ids(false), d.Chunk))
		}
	case agent.Thinking:
		if d.Text != "" {
			p.send(textChunk("agent_thought_chunk", p.ids(true), d.Text))
		}
	case agent.ErrorEvent:
		msg := "Error: " + d.Message
		if d.Detail != "" {
			msg += " — " + d.Detail
		}
		p.send(textChunk("agent_message_chunk", newMessageID(), msg))
	case session.ToolConfirmation:
		p.askPermission(d.CallID, d.Tool, d.Args)
	case session.ToolConfirmationResolved:
		p.resolved(d.CallID, d.Decision)
	case agent.ToolStart:
		p.toolStart(d.CallID, d.Tool, d.Args)
	case agent.ToolOutput:
		p.mu.Lock()
		st := p.call(d.CallID)
		st.output += d.Chunk
		if len(st.output) > maxOutputTail {
			cut := len(st.output) - maxOutputTail
			for cut < len(st.output) && !utf8.RuneStart(st.output[cut]) {
				cut++
			}
			st.output = st.output[cut:]
		}
		out := st.output
		p.mu.Unlock()
		p.send(toolUpdate(d.CallID, sdk.ToolCallStatusInProgress, toolText(out)))
	case agent.ToolComplete:
		status := sdk.ToolCallStatusFailed // error, cancelled, denied, rejected
		if d.Status == "ok" {
			status = sdk.ToolCallStatusCompleted
		}
		p.send(toolUpdate(d.CallID, status, nil))
	case agent.ToolResult:
		p.send(toolUpdate(d.CallID, "", toolText(d.Content)))
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
		p.send(toolCall(callID, tool, rawInput(args), sdk.ToolCallStatusPending))
	case allowed:
		p.send(toolUpdate(callID, sdk.ToolCallStatusInProgress, nil))
	}
}

// askPermission bridges the pool's tool_confirmation: the call is shown
// (tool_call, pending, with its real id) and then the client is asked; its
// answer, in a goroutine of its own, becomes the pool's decision. The
// pool's approval timeout still applies, and a cancelled turn stops
// waiting.
func (p *prompt) askPermission(callID, tool string, args any) {
	in := rawInput(args)
	p.mu.Lock()
	st := p.call(callID)
	st.announced = true
	p.mu.Unlock()
	p.send(toolCall(callID, tool, in, sdk.ToolCallStatusPending))
	c := p.c
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return // the turn is being cancelled: the pool stops waiting
	}
	c.tasks.Add(1)
	c.mu.Unlock()
	ctx, cancel := context.WithCancel(p.ctx)
	perm := &permission{cancel: cancel, returned: make(chan struct{})}
	p.mu.Lock()
	st.permission = perm
	p.mu.Unlock()
	req := sdk.RequestPermissionRequest{
		SessionId: sdk.SessionId(p.sid),
		ToolCall: sdk.ToolCallUpdate{ToolCallId: sdk.ToolCallId(callID), Title: sdk.Ptr(toolTitle(tool, in)), Kind: sdk.Ptr(toolKind(tool)),
			Status: sdk.Ptr(sdk.ToolCallStatusPending), RawInput: in},
		Options: permissionOptions,
	}
	go func() {
		defer c.tasks.Done()
		defer cancel()
		resp, err := c.sdk.RequestPermission(ctx, req)
		// The request is on the wire by now (SendRequest writes it before
		// it waits): if it was withdrawn, wait until the withdrawal is.
		if ctx.Err() != nil {
			if settled := c.settledOf(callKey(string(p.sid), callID)); settled != nil {
				select {
				case <-settled:
				case <-c.done:
				case <-time.After(withdrawWait):
				}
			}
			close(perm.returned)
			return // withdrawn: the pool decided, or the turn is over
		}
		close(perm.returned)
		p.mu.Lock()
		if st.permission == perm {
			st.permission = nil
		}
		p.mu.Unlock()
		actx, acancel := context.WithTimeout(context.WithoutCancel(p.ctx), 5*time.Second)
		defer acancel()
		err = c.s.pool.Approve(actx, c.peer.Tenant, p.sid, callID, decisionOf(resp, err))
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
	st.permission = nil
	p.mu.Unlock()
	if open != nil {
		p.withdraw(open)
	}
}
