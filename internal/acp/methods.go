package acp

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// initialize negotiates the version and states what agentd supports.
func (c *conn) initialize(params json.RawMessage) (any, *Error) {
	var p struct {
		ProtocolVersion    *int            `json:"protocolVersion"`
		ClientCapabilities json.RawMessage `json:"clientCapabilities"`
	}
	if err := decodeParams(params, &p); err != nil {
		return nil, err
	}
	if p.ProtocolVersion == nil {
		return nil, errInvalidParams("protocolVersion (an integer) is required")
	}
	if len(p.ClientCapabilities) > 0 && p.ClientCapabilities[0] != '{' && !bytes.Equal(p.ClientCapabilities, nullID) {
		return nil, errInvalidParams("clientCapabilities must be an object")
	}
	c.mu.Lock()
	c.initialized = true
	c.mu.Unlock()
	// Echo a version agentd speaks, otherwise answer its latest: the client
	// decides whether to go on.
	return map[string]any{
		"protocolVersion": ProtocolVersion,
		"agentCapabilities": map[string]any{
			"loadSession":        true,
			"promptCapabilities": map[string]bool{"image": false, "audio": false, "embeddedContext": false},
			"mcpCapabilities":    map[string]bool{"http": false, "sse": false},
		},
		"agentInfo":   map[string]string{"name": "agentd", "title": "agentd", "version": c.s.cfg.Version},
		"authMethods": []any{},
	}, nil
}

// sessionSetup is what session/new and session/load take besides the id.
type sessionSetup struct {
	Cwd        *string            `json:"cwd"`
	MCPServers *[]json.RawMessage `json:"mcpServers"`
}

var windowsAbs = regexp.MustCompile(`^([A-Za-z]:[\\/]|\\\\)`)

// check validates cwd and mcpServers. agentd uses neither: a session works
// in its own workspace on the agentd host, and tools (MCP servers
// included) are the operator's to configure, never the client's to launch.
// Client MCP servers are accepted (clients send the ones their user
// configured with every session) and ignored, with a warning in the log.
func (p sessionSetup) check(c *conn, method string) *Error {
	switch {
	case p.Cwd == nil:
		return errInvalidParams("cwd (an absolute path) is required")
	case !filepath.IsAbs(*p.Cwd) && !windowsAbs.MatchString(*p.Cwd):
		return errInvalidParams("cwd must be an absolute path, got %s", quote(*p.Cwd))
	case p.MCPServers == nil:
		return errInvalidParams("mcpServers (an array, [] for none) is required")
	}
	var names []string
	for i, raw := range *p.MCPServers {
		var srv struct {
			Name string `json:"name"`
		}
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &srv) != nil {
			return errInvalidParams("mcpServers[%d] must be an object", i)
		}
		names = append(names, srv.Name)
	}
	if len(names) > 0 {
		c.log.Warn("ignoring the client's MCP servers: agentd's tools are configured by the operator", zap.String("method", method), zap.Strings("mcp_servers", names))
	}
	return nil
}

// newSession creates an agentd session for the connection's user.
func (c *conn) newSession(_, params json.RawMessage) (work, *Error) {
	var p sessionSetup
	if err := decodeParams(params, &p); err != nil {
		return work{}, err
	}
	if err := p.check(c, "session/new"); err != nil {
		return work{}, err
	}
	return work{run: func() (any, *Error) {
		sess, err := c.s.pool.Create(c.ctx, c.peer.Tenant, c.peer.User, "")
		if err != nil {
			return nil, c.mapError(err, "")
		}
		c.log.Info("acp session created", zap.String("session_id", string(sess.ID)), zap.String("model", sess.Model))
		return map[string]any{"sessionId": sess.ID, "configOptions": c.s.configOptions(sess.Model)}, nil
	}}, nil
}

// loadSession replays a stored session's history as session/update
// notifications, then answers.
func (c *conn) loadSession(_, params json.RawMessage) (work, *Error) {
	var p struct {
		SessionID *string `json:"sessionId"`
		sessionSetup
	}
	if err := decodeParams(params, &p); err != nil {
		return work{}, err
	}
	if p.SessionID == nil {
		return work{}, errInvalidParams("sessionId (a string) is required")
	}
	if err := p.check(c, "session/load"); err != nil {
		return work{}, err
	}
	sid := session.ID(*p.SessionID)
	c.mu.Lock()
	if c.prompts[sid] != nil || c.loading[sid] != nil {
		c.mu.Unlock()
		return work{}, errBusy(sid)
	}
	loaded := make(chan struct{})
	c.loading[sid] = loaded
	c.mu.Unlock()
	// A prompt of this session read after the load waits until the load's
	// response is on the wire.
	answered := func() {
		c.mu.Lock()
		delete(c.loading, sid)
		c.mu.Unlock()
		close(loaded)
	}
	return work{answered: answered, run: func() (any, *Error) {
		sess, err := c.s.pool.Get(c.ctx, c.peer.Tenant, sid)
		if err != nil {
			return nil, c.mapError(err, sid)
		}
		if sess.InFlight != nil {
			return nil, errBusy(sid)
		}
		for _, u := range replay(sess.Messages) {
			if err := c.notify("session/update", notification{SessionID: sid, Update: u}); err != nil {
				return nil, &Error{Code: CodeInternalError, Message: "Internal error: the replay could not be sent"}
			}
		}
		c.log.Info("acp session loaded", zap.String("session_id", string(sid)), zap.Int("messages", len(sess.Messages)))
		return map[string]any{"configOptions": c.s.configOptions(sess.Model)}, nil
	}}, nil
}

// prompt runs one turn and answers with its stop reason.
func (c *conn) prompt(id, params json.RawMessage) (work, *Error) {
	var p struct {
		SessionID *string            `json:"sessionId"`
		Prompt    *[]json.RawMessage `json:"prompt"`
	}
	if err := decodeParams(params, &p); err != nil {
		return work{}, err
	}
	switch {
	case p.SessionID == nil:
		return work{}, errInvalidParams("sessionId (a string) is required")
	case p.Prompt == nil:
		return work{}, errInvalidParams("prompt (an array of content blocks) is required")
	}
	text, perr := promptText(*p.Prompt)
	if perr != nil {
		return work{}, perr
	}
	sid := session.ID(*p.SessionID)
	c.mu.Lock()
	if c.prompts[sid] != nil {
		c.mu.Unlock()
		return work{}, errBusy(sid)
	}
	loading := c.loading[sid]
	pr := newPrompt(c, sid, id)
	c.prompts[sid] = pr
	c.mu.Unlock()
	return work{run: func() (any, *Error) {
		defer c.endPrompt(pr)
		if loading != nil { // a pipelined prompt waits for the replay to reach the wire
			select {
			case <-loading:
			case <-pr.ctx.Done():
			}
		}
		res, err := c.s.pool.Turn(pr.ctx, c.peer.Tenant, sid, session.TurnInput{Content: text, Emit: pr.emit})
		var ce *agent.CancelError
		switch {
		case err != nil && errors.As(err, &ce):
			return map[string]string{"stopReason": "cancelled"}, nil
		case err != nil:
			return nil, c.mapError(err, sid)
		}
		reason := stopReason(res.Outcome, pr.cancelled.Load())
		if res.Outcome.Status == agent.StatusError && reason != "cancelled" {
			return nil, &Error{Code: CodeInternalError, Message: "Internal error: the turn failed; see the agentd log", Data: map[string]string{"error": res.Outcome.Error}}
		}
		return map[string]string{"stopReason": reason}, nil
	}}, nil
}

func (c *conn) endPrompt(pr *prompt) {
	c.mu.Lock()
	if c.prompts[pr.sid] == pr {
		delete(c.prompts, pr.sid)
	}
	c.mu.Unlock()
	pr.close()
}

// stopReason maps a turn's outcome to ACP's stop reason, with Agentao's
// precedence: cancelled > max_turn_requests > max_tokens > end_turn.
// refusal is never sent.
func stopReason(o agent.Outcome, cancelRequested bool) string {
	switch {
	case cancelRequested || o.Status == agent.StatusCancelled:
		return "cancelled"
	case o.IncompleteReason == agent.IncompleteMaxIterations || o.IncompleteReason == agent.IncompleteDoomLoop:
		return "max_turn_requests"
	case o.IncompleteReason == agent.IncompleteLengthTruncated:
		return "max_tokens"
	default:
		return "end_turn"
	}
}

// promptText renders a prompt's content blocks as the user message: text
// as is, resource links as Markdown links (Agentao's rendering), joined by
// blank lines. Other blocks are not advertised and are refused.
func promptText(blocks []json.RawMessage) (string, *Error) {
	var parts []string
	for i, raw := range blocks {
		var b struct {
			Type  string  `json:"type"`
			Text  *string `json:"text"`
			URI   string  `json:"uri"`
			Name  string  `json:"name"`
			Title string  `json:"title"`
		}
		if len(raw) == 0 || raw[0] != '{' {
			return "", errInvalidParams("prompt[%d] must be a content block object", i)
		}
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", errInvalidParams("prompt[%d]: %v", i, err)
		}
		switch b.Type {
		case "text":
			if b.Text == nil {
				return "", errInvalidParams("prompt[%d]: a text block needs text", i)
			}
			parts = append(parts, *b.Text)
		case "resource_link":
			if b.URI == "" {
				return "", errInvalidParams("prompt[%d]: a resource_link block needs uri", i)
			}
			label := b.Title
			if label == "" {
				label = b.Name
			}
			if label == "" {
				label = b.URI
			}
			parts = append(parts, "[Resource: "+label+"]("+b.URI+")")
		case "image", "audio", "resource":
			return "", errInvalidParams("prompt[%d]: %s content is not supported (see promptCapabilities); send text or resource_link", i, b.Type)
		default:
			return "", errInvalidParams("prompt[%d]: unknown content type %s", i, quote(b.Type))
		}
	}
	text := strings.Join(parts, "\n\n")
	if strings.TrimSpace(text) == "" {
		return "", errInvalidParams("prompt has no text")
	}
	return text, nil
}

// cancelSession ends the session's running turn (reason
// acp-session-cancel), whoever started it; the prompt that runs it answers
// with stopReason cancelled. Cancelling an idle session does nothing.
func (c *conn) cancelSession(params json.RawMessage) *Error {
	var p struct {
		SessionID *string `json:"sessionId"`
	}
	if err := decodeParams(params, &p); err != nil {
		return err
	}
	if p.SessionID == nil {
		return errInvalidParams("sessionId (a string) is required")
	}
	sid := session.ID(*p.SessionID)
	c.mu.Lock()
	pr := c.prompts[sid]
	c.mu.Unlock()
	if pr != nil {
		pr.cancelRequested(ReasonSessionCancel)
	}
	if _, err := c.s.pool.Cancel(c.ctx, c.peer.Tenant, sid, ReasonSessionCancel); err != nil && pr == nil {
		return c.mapError(err, sid)
	}
	return nil
}

// cancelRequest handles $/cancel_request: for a running session/prompt it
// is a session/cancel; the other methods finish quickly and are answered
// as usual.
func (c *conn) cancelRequest(params json.RawMessage) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if decodeParams(params, &p) != nil || len(p.RequestID) == 0 {
		return
	}
	key := compactJSON(p.RequestID)
	c.mu.Lock()
	var target *prompt
	for _, pr := range c.prompts {
		if pr.requestKey == key {
			target = pr
		}
	}
	c.mu.Unlock()
	if target != nil {
		target.cancelRequested(ReasonSessionCancel)
	}
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

// setConfigOption changes the session's model (the only option).
func (c *conn) setConfigOption(_, params json.RawMessage) (work, *Error) {
	var p struct {
		SessionID *string         `json:"sessionId"`
		ConfigID  *string         `json:"configId"`
		Type      string          `json:"type"`
		Value     json.RawMessage `json:"value"`
	}
	if err := decodeParams(params, &p); err != nil {
		return work{}, err
	}
	var value string
	switch {
	case p.SessionID == nil:
		return work{}, errInvalidParams("sessionId (a string) is required")
	case p.ConfigID == nil:
		return work{}, errInvalidParams("configId (a string) is required")
	case *p.ConfigID != "model":
		return work{}, errInvalidParams("unknown configId %s; agentd offers \"model\"", quote(*p.ConfigID))
	case p.Type == "boolean" || json.Unmarshal(p.Value, &value) != nil || strings.TrimSpace(value) == "":
		return work{}, errInvalidParams("value must be a model id from the \"model\" option")
	}
	sid := session.ID(*p.SessionID)
	return work{run: func() (any, *Error) {
		sess, err := c.s.pool.SetModel(c.ctx, c.peer.Tenant, sid, strings.TrimSpace(value))
		if err != nil {
			return nil, c.mapError(err, sid)
		}
		c.log.Info("acp model switched", zap.String("session_id", string(sid)), zap.String("model", sess.Model))
		return map[string]any{"configOptions": c.s.configOptions(sess.Model)}, nil
	}}, nil
}

// configOption is a session configuration option (a select).
type configOption struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Description  string         `json:"description,omitempty"`
	Category     string         `json:"category"`
	Type         string         `json:"type"`
	CurrentValue string         `json:"currentValue"`
	Options      []selectOption `json:"options"`
}

type selectOption struct {
	Value string `json:"value"`
	Name  string `json:"name"`
}

// configOptions is the complete option list: the model, from the catalog.
func (s *Server) configOptions(current string) []configOption {
	var models []string
	if s.cfg.Models != nil {
		models = s.cfg.Models()
	}
	opt := configOption{ID: "model", Name: "Model", Description: "The model this session's turns use; the history is kept when it changes.",
		Category: "model", Type: "select", CurrentValue: current}
	seen := false
	for _, m := range models {
		opt.Options = append(opt.Options, selectOption{Value: m, Name: m})
		seen = seen || m == current
	}
	if !seen { // a model no longer in the catalog is still the session's
		opt.Options = append([]selectOption{{Value: current, Name: current}}, opt.Options...)
	}
	return []configOption{opt}
}

func errBusy(sid session.ID) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "Invalid request: session " + string(sid) + " already has an active turn; cancel it (session/cancel) or wait until it ends",
		Data: map[string]string{"sessionId": string(sid)}}
}

// mapError turns a pool error into a JSON-RPC error; the one place where
// that happens. Internal failures are logged, not shown.
func (c *conn) mapError(err error, sid session.ID) *Error {
	switch {
	case errors.Is(err, session.ErrNotFound):
		return errSessionNotFound(string(sid))
	case errors.Is(err, session.ErrBusy):
		return errBusy(sid)
	case errors.Is(err, session.ErrInvalid):
		return errInvalidParams("%s", strings.TrimPrefix(err.Error(), session.ErrInvalid.Error()+": "))
	case errors.Is(err, session.ErrShuttingDown):
		return &Error{Code: CodeInternalError, Message: "Internal error: agentd is shutting down; reconnect and session/load later"}
	default:
		c.log.Error("acp request failed", zap.String("session_id", string(sid)), zap.Error(err))
		return &Error{Code: CodeInternalError, Message: "Internal error; see the agentd log"}
	}
}
