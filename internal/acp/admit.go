package acp

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"

	sdk "github.com/coder/acp-go-sdk"

	"github.com/agentd/agentd/internal/session"
)

// needsInitialize reports whether method is one agentd implements that
// waits for initialize; the SDK answers the methods agentd does not
// implement (-32601), and a cancel is always safe.
func needsInitialize(method string) bool {
	switch method {
	case sdk.AgentMethodSessionNew, sdk.AgentMethodSessionLoad, sdk.AgentMethodSessionResume, sdk.AgentMethodSessionList,
		sdk.AgentMethodSessionClose, sdk.AgentMethodSessionPrompt, sdk.AgentMethodSessionSetConfigOption:
		return true
	}
	return false
}

// admit runs, in read order, before the SDK dispatches a message:
//
//   - it checks the params, with messages that name the field. The SDK's
//     generated handler answers any decode failure with a bare "Invalid
//     params", and its union decoders are lossy: ContentBlock.UnmarshalJSON
//     takes an unknown type ("video") for an empty text block,
//     McpServer.UnmarshalJSON says "no matching variant for union" without
//     the index, SetSessionConfigOptionRequest.UnmarshalJSON takes a
//     missing value for the boolean false, and InitializeRequest cannot
//     tell a missing protocolVersion from 0. Params admitted here also
//     decode into the SDK's types, so the SDK's decode cannot fail after;
//   - it registers what a later message must find: a prompt (so a cancel
//     read after it cancels it, and a second prompt is refused), a load
//     (so a prompt read after it waits for the replay), initialize.
//
// It returns what to run once the request is answered.
func (c *conn) admit(method string, params json.RawMessage) (release func(), err *Error) {
	if len(params) == 0 || bytes.Equal(params, nullID) {
		params = json.RawMessage("{}")
	}
	switch method {
	case sdk.AgentMethodInitialize:
		return nil, c.admitInitialize(params)
	case sdk.AgentMethodSessionNew:
		var p setup
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if err := p.check(true); err != nil {
			return nil, err
		}
		return nil, decode(params, &sdk.NewSessionRequest{})
	case sdk.AgentMethodSessionLoad:
		return c.admitLoad(params)
	case sdk.AgentMethodSessionResume:
		if _, err := sessionSetup(params, false); err != nil {
			return nil, err
		}
		return nil, decode(params, &sdk.ResumeSessionRequest{})
	case sdk.AgentMethodSessionList:
		var p sdk.ListSessionsRequest
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if p.Cursor != nil && !session.ID(*p.Cursor).Valid() {
			return nil, errInvalidParams("cursor is not a nextCursor of session/list")
		}
		return nil, nil
	case sdk.AgentMethodSessionClose, sdk.AgentMethodSessionCancel:
		var p struct {
			SessionID *string `json:"sessionId"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if p.SessionID == nil {
			return nil, errInvalidParams("sessionId (a string) is required")
		}
		if method == sdk.AgentMethodSessionClose {
			return nil, decode(params, &sdk.CloseSessionRequest{})
		}
		return nil, decode(params, &sdk.CancelNotification{})
	case sdk.AgentMethodSessionPrompt:
		return c.admitPrompt(params)
	case sdk.AgentMethodSessionSetConfigOption:
		return nil, admitSetConfigOption(params)
	}
	return nil, nil
}

func (c *conn) admitInitialize(params json.RawMessage) *Error {
	var p struct {
		ProtocolVersion json.RawMessage `json:"protocolVersion"`
	}
	if err := decode(params, &p); err != nil {
		return err
	}
	if len(p.ProtocolVersion) == 0 || bytes.Equal(p.ProtocolVersion, nullID) {
		return errInvalidParams("protocolVersion (an integer) is required")
	}
	var init sdk.InitializeRequest
	if err := decode(params, &init); err != nil {
		return err
	}
	c.mu.Lock()
	c.initialized = true
	c.initReq = &init
	c.mu.Unlock()
	return nil
}

// setup is what session/new, session/load and session/resume take besides
// the id, as sent.
type setup struct {
	Cwd        *string            `json:"cwd"`
	MCPServers *[]json.RawMessage `json:"mcpServers"`
}

var windowsAbs = regexp.MustCompile(`^([A-Za-z]:[\\/]|\\\\)`)

// check validates cwd and mcpServers (required unless for resume). agentd
// uses neither: a session works in its own workspace on the agentd host,
// and tools (MCP servers included) are the operator's to configure, never
// the client's to launch.
func (p setup) check(mcpRequired bool) *Error {
	switch {
	case p.Cwd == nil:
		return errInvalidParams("cwd (an absolute path) is required")
	case !filepath.IsAbs(*p.Cwd) && !windowsAbs.MatchString(*p.Cwd):
		return errInvalidParams("cwd must be an absolute path, got %s", quote(*p.Cwd))
	case p.MCPServers == nil && mcpRequired:
		return errInvalidParams("mcpServers (an array, [] for none) is required")
	}
	if p.MCPServers != nil {
		for i, raw := range *p.MCPServers {
			if len(raw) == 0 || raw[0] != '{' {
				return errInvalidParams("mcpServers[%d] must be an object", i)
			}
			var srv sdk.McpServer
			if err := json.Unmarshal(raw, &srv); err != nil {
				return errInvalidParams("mcpServers[%d] is not an MCP server (stdio: name, command, args, env; http or sse: type, name, url, headers)", i)
			}
		}
	}
	return nil
}

// sessionSetup checks the params of a request naming a session and a
// setup (session/load, session/resume) and returns the session's id.
func sessionSetup(params json.RawMessage, mcpRequired bool) (session.ID, *Error) {
	var p struct {
		SessionID *string `json:"sessionId"`
		setup
	}
	if err := decode(params, &p); err != nil {
		return "", err
	}
	if p.SessionID == nil {
		return "", errInvalidParams("sessionId (a string) is required")
	}
	if err := p.check(mcpRequired); err != nil {
		return "", err
	}
	return session.ID(*p.SessionID), nil
}

func (c *conn) admitLoad(params json.RawMessage) (func(), *Error) {
	sid, err := sessionSetup(params, true)
	if err != nil {
		return nil, err
	}
	if err := decode(params, &sdk.LoadSessionRequest{}); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prompts[sid] != nil || c.loading[sid] != nil {
		return nil, errBusy(sid)
	}
	// A prompt of this session read after the load waits until the load's
	// response is on the wire.
	loaded := make(chan struct{})
	c.loading[sid] = loaded
	return func() {
		c.mu.Lock()
		delete(c.loading, sid)
		c.mu.Unlock()
		close(loaded)
	}, nil
}

func (c *conn) admitPrompt(params json.RawMessage) (func(), *Error) {
	var p struct {
		SessionID *string            `json:"sessionId"`
		Prompt    *[]json.RawMessage `json:"prompt"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	switch {
	case p.SessionID == nil:
		return nil, errInvalidParams("sessionId (a string) is required")
	case p.Prompt == nil:
		return nil, errInvalidParams("prompt (an array of content blocks) is required")
	}
	kinds, err := blockKinds(*p.Prompt)
	if err != nil {
		return nil, err
	}
	var req sdk.PromptRequest
	if err := decode(params, &req); err != nil {
		return nil, err
	}
	text, err := promptText(kinds, req.Prompt)
	if err != nil {
		return nil, err
	}
	sid := session.ID(*p.SessionID)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.prompts[sid] != nil {
		return nil, errBusy(sid)
	}
	pr := newPrompt(c, sid, text, c.loading[sid])
	c.prompts[sid] = pr
	return pr.answer, nil
}

// blockKinds checks a prompt's content blocks as sent and returns their
// types: text and resource_link. Other blocks are not advertised
// (promptCapabilities) and are refused.
func blockKinds(raw []json.RawMessage) ([]string, *Error) {
	kinds := make([]string, len(raw))
	for i, b := range raw {
		var block struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
			URI  *string `json:"uri"`
		}
		if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &block) != nil {
			return nil, errInvalidParams("prompt[%d] must be a content block object", i)
		}
		switch block.Type {
		case "text":
			if block.Text == nil {
				return nil, errInvalidParams("prompt[%d]: a text block needs text", i)
			}
		case "resource_link":
			if block.URI == nil || *block.URI == "" {
				return nil, errInvalidParams("prompt[%d]: a resource_link block needs uri", i)
			}
		case "image", "audio", "resource":
			return nil, errInvalidParams("prompt[%d]: %s content is not supported (see promptCapabilities); send text or resource_link", i, block.Type)
		default:
			return nil, errInvalidParams("prompt[%d]: unknown content type %s", i, quote(block.Type))
		}
		kinds[i] = block.Type
	}
	return kinds, nil
}

// promptText renders a prompt's content blocks (of the kinds blockKinds
// returned) as the user message: text as is, resource links as Markdown
// links (Agentao's rendering), joined by blank lines.
func promptText(kinds []string, blocks []sdk.ContentBlock) (string, *Error) {
	var parts []string
	for i, b := range blocks {
		switch {
		case kinds[i] == "text" && b.Text != nil:
			parts = append(parts, b.Text.Text)
		case kinds[i] == "resource_link" && b.ResourceLink != nil:
			l := b.ResourceLink
			label := l.Name
			if l.Title != nil && *l.Title != "" {
				label = *l.Title
			}
			if label == "" {
				label = l.Uri
			}
			parts = append(parts, "[Resource: "+label+"]("+l.Uri+")")
		default:
			return "", errInvalidParams("prompt[%d] is not a %s block", i, kinds[i])
		}
	}
	text := strings.Join(parts, "\n\n")
	if strings.TrimSpace(text) == "" {
		return "", errInvalidParams("prompt has no text")
	}
	return text, nil
}

func admitSetConfigOption(params json.RawMessage) *Error {
	var p struct {
		SessionID *string         `json:"sessionId"`
		ConfigID  *string         `json:"configId"`
		Type      string          `json:"type"`
		Value     json.RawMessage `json:"value"`
	}
	if err := decode(params, &p); err != nil {
		return err
	}
	var value string
	switch {
	case p.SessionID == nil:
		return errInvalidParams("sessionId (a string) is required")
	case p.ConfigID == nil:
		return errInvalidParams("configId (a string) is required")
	case *p.ConfigID != configModel:
		return errInvalidParams("unknown configId %s; agentd offers \"model\"", quote(*p.ConfigID))
	case p.Type == "boolean" || json.Unmarshal(p.Value, &value) != nil || strings.TrimSpace(value) == "":
		return errInvalidParams("value must be a model id from the \"model\" option")
	}
	return decode(params, &sdk.SetSessionConfigOptionRequest{})
}

// decode decodes params into v: agentd's view of them, or an SDK type,
// which must decode (and validate, as the SDK's handler does) for the SDK
// to dispatch the request.
func decode(params json.RawMessage, v any) *Error {
	if err := json.Unmarshal(params, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return errInvalidParams("%s must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
		}
		return errInvalidParams("%v", err)
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		if err := val.Validate(); err != nil {
			return errInvalidParams("%v", err)
		}
	}
	return nil
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64", "float64":
		return "an integer"
	case "string":
		return "a string"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "of another type"
}
