package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	openai "github.com/sashabaranov/go-openai"

	"github.com/agentd/agentd/internal/agent"
)

// emptySchema stands in for a tool without parameters: the API wants an
// object schema, and a nil json.RawMessage would be sent as null.
const emptySchema = `{"type":"object","properties":{}}`

// chatRequest converts req to go-openai's request, without its tools: those
// are encoded once per tool set ([toolCache]) and spliced into the body by
// the patch. go-openai also omits empty "content" and "arguments" fields,
// which the API requires on most messages; the returned patch, non-nil when
// anything is to be done, puts them back into the body.
func chatRequest(req agent.Request, tools []byte) (openai.ChatCompletionRequest, *bodyPatch) {
	r := openai.ChatCompletionRequest{
		Model:         req.Model,
		Messages:      make([]openai.ChatCompletionMessage, 0, len(req.Messages)),
		Stream:        true,
		StreamOptions: &openai.StreamOptions{IncludeUsage: true},
	}
	patch := bodyPatch{tools: tools}
	for i, m := range req.Messages {
		om := openai.ChatCompletionMessage{
			Role:       m.Role,
			Content:    m.Content,
			Name:       m.Name,
			ToolCallID: m.ToolCallID,
			// ReasoningContent is not sent back: several providers reject
			// it in requests.
		}
		for j, tc := range m.ToolCalls {
			typ := openai.ToolType(tc.Type)
			if typ == "" {
				typ = openai.ToolTypeFunction
			}
			om.ToolCalls = append(om.ToolCalls, openai.ToolCall{
				ID:       tc.ID,
				Type:     typ,
				Function: openai.FunctionCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments},
			})
			if tc.Function.Arguments == "" {
				patch.args = append(patch.args, [2]int{i, j})
			}
		}
		// An assistant message with tool calls may go without content (it
		// is then null, as the API itself returns it); every other message
		// needs it, if only "".
		if m.Content == "" && !(m.Role == agent.RoleAssistant && len(m.ToolCalls) > 0) {
			patch.content = append(patch.content, i)
		}
		r.Messages = append(r.Messages, om)
	}
	if req.MaxTokens > 0 {
		// max_tokens is what OpenAI-compatible servers (Ollama, vLLM, older
		// gateways) understand; OpenAI's reasoning models want
		// max_completion_tokens instead, and go-openai refuses to send
		// max_tokens to them.
		r.MaxTokens = req.MaxTokens
		if errors.Is(openai.NewReasoningValidator().Validate(r), openai.ErrReasoningModelMaxTokensDeprecated) {
			r.MaxTokens, r.MaxCompletionTokens = 0, req.MaxTokens
		}
	}
	if len(patch.content) == 0 && len(patch.args) == 0 && patch.tools == nil {
		return r, nil
	}
	return r, &patch
}

// encodeTools is the JSON array of the "tools" field for specs.
func encodeTools(specs []agent.ToolSpec) ([]byte, error) {
	tools := make([]openai.Tool, 0, len(specs))
	for _, t := range specs {
		params := json.RawMessage(bytes.TrimSpace(t.Parameters))
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(emptySchema)
		}
		tools = append(tools, openai.Tool{
			Type: openai.ToolTypeFunction,
			Function: &openai.FunctionDefinition{
				Name:        t.Name,
				Description: t.Description,
				Parameters:  params,
			},
		})
	}
	return json.Marshal(tools)
}

// bodyPatch lists what go-openai's request body lacks.
type bodyPatch struct {
	content []int    // messages that need "content": ""
	args    [][2]int // (message, tool call) pairs that need "arguments": ""
	tools   []byte   // the encoded "tools" array; nil: no tools
}

// apply rewrites the JSON body of a chat request.
func (p *bodyPatch) apply(body []byte) ([]byte, error) {
	if len(p.content) > 0 || len(p.args) > 0 {
		var err error
		if body, err = p.fields(body); err != nil {
			return nil, err
		}
	}
	if p.tools == nil {
		return body, nil
	}
	// The body is a JSON object without a "tools" member (the request had
	// none): add it before the closing brace.
	body = bytes.TrimRight(body, " \t\r\n")
	if len(body) < 2 || body[len(body)-1] != '}' {
		return nil, errors.New("request body is not a JSON object")
	}
	out := make([]byte, 0, len(body)+len(p.tools)+10)
	out = append(out, body[:len(body)-1]...)
	if bytes.TrimSpace(out)[len(bytes.TrimSpace(out))-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, `"tools":`...)
	out = append(out, p.tools...)
	return append(out, '}'), nil
}

// fields puts the empty "content" and "arguments" fields back.
func (p *bodyPatch) fields(body []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	var msgs []map[string]json.RawMessage
	if err := json.Unmarshal(top["messages"], &msgs); err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, errors.New("no messages in request body")
	}
	for _, i := range p.content {
		msgs[i]["content"] = json.RawMessage(`""`)
	}
	for _, a := range p.args {
		var calls []map[string]json.RawMessage
		if err := json.Unmarshal(msgs[a[0]]["tool_calls"], &calls); err != nil {
			return nil, err
		}
		var fn map[string]json.RawMessage
		if err := json.Unmarshal(calls[a[1]]["function"], &fn); err != nil {
			return nil, err
		}
		fn["arguments"] = json.RawMessage(`""`)
		var err error
		if calls[a[1]]["function"], err = json.Marshal(fn); err != nil {
			return nil, err
		}
		if msgs[a[0]]["tool_calls"], err = json.Marshal(calls); err != nil {
			return nil, err
		}
	}
	var err error
	if top["messages"], err = json.Marshal(msgs); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}

// bodyPrefixLen is how much of a response body is kept to explain a
// response that is not what it should be.
const bodyPrefixLen = 512

// attemptDoer sends the HTTP request of one attempt for go-openai and keeps
// what go-openai does not expose: the status, the headers (Retry-After) and
// the start of the body. It is used by one goroutine at a time.
type attemptDoer struct {
	hc    *http.Client
	patch *bodyPatch

	sent   bool // a response arrived
	status int
	header http.Header
	body   *prefixReader
}

func (d *attemptDoer) Do(req *http.Request) (*http.Response, error) {
	if d.patch != nil && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err == nil {
			body, err = d.patch.apply(body)
		}
		if err != nil {
			return nil, fmt.Errorf("build request body: %w", err)
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return nil, err
	}
	d.sent, d.status, d.header = true, resp.StatusCode, resp.Header
	d.body = &prefixReader{rc: resp.Body}
	resp.Body = d.body
	return resp, nil
}

// prefixReader keeps the first bodyPrefixLen bytes read through it.
type prefixReader struct {
	rc     io.ReadCloser
	prefix []byte
}

func (r *prefixReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if k := min(n, bodyPrefixLen-len(r.prefix)); k > 0 {
		r.prefix = append(r.prefix, p[:k]...)
	}
	return n, err
}

func (r *prefixReader) Close() error { return r.rc.Close() }

// prefix returns the start of the response body read so far.
func (d *attemptDoer) prefix() []byte {
	if d.body == nil {
		return nil
	}
	return d.body.prefix
}
