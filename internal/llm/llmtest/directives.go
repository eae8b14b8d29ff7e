package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/agent"
)

// Directives documents the grammar [DefaultResponder] understands, for help
// texts (cmd/fakellm prints it).
const Directives = `The default responder reads directives in the last user message:

  [[tool NAME {json args}]]  call tool NAME with these arguments (a JSON object;
                             "{}" when omitted). Several tool directives make
                             parallel calls. Only while no tool result follows
                             that user message.
  [[error CODE]]             answer HTTP CODE (400-599) with an OpenAI error body.
  [[sleep DURATION]]         open the stream, then wait DURATION ("2s", "150ms")
                             before the first content chunk.
  [[hang]]                   open the stream, then send nothing more until the
                             client goes away.

Otherwise it replies "echo: TEXT", TEXT being the last user message without
its directives and <system-reminder> blocks, trimmed. Once a tool result follows the last user message, it
replies "tool said: RESULT", RESULT being the first 200 characters of the last
tool message. Unknown or malformed directives are left in the text.
`

// toolResultPrefix is how many runes of a tool result the default reply quotes.
const toolResultPrefix = 200

// DefaultResponder answers a request by the directives of its last user
// message (see the package doc and [Directives]). It is deterministic: the
// same conversation always gets the same reply. Custom responders can fall
// back to it.
func DefaultResponder(r Request) Reply {
	last := -1
	for i, m := range r.Messages {
		if m.Role == agent.RoleUser {
			last = i
		}
	}
	var d directives
	if last >= 0 {
		d = parseDirectives(agent.StripReminders(r.Messages[last].Content))
	}
	var reply Reply
	toolResult, answered := "", false
	for _, m := range r.Messages[last+1:] {
		if m.Role == agent.RoleTool {
			toolResult, answered = m.Content, true
		}
	}
	switch {
	case answered:
		reply.Text = "tool said: " + prefix(toolResult, toolResultPrefix)
	case len(d.tools) > 0:
		reply.ToolCalls = d.tools
	default:
		reply.Text = "echo: " + d.text
	}
	if d.status != 0 {
		return Reply{Status: d.status, ErrorMessage: fmt.Sprintf("llmtest: directive [[error %d]]", d.status)}
	}
	reply.Delay = d.sleep
	if d.hang {
		reply.HangAfterChunks = 1
	}
	return reply
}

type directives struct {
	text   string // the message without its directives, trimmed
	tools  []ToolCall
	status int
	sleep  time.Duration
	hang   bool
}

func parseDirectives(s string) directives {
	var d directives
	var text strings.Builder
	for {
		i := strings.Index(s, "[[")
		if i < 0 {
			text.WriteString(s)
			break
		}
		text.WriteString(s[:i])
		n := d.parseOne(s[i:])
		if n == 0 { // not a directive: keep "[[" as text
			text.WriteString("[[")
			s = s[i+2:]
			continue
		}
		s = s[i+n:]
	}
	d.text = strings.TrimSpace(text.String())
	return d
}

// parseOne reads the directive at the start of s ("[[...") and returns its
// length, or 0 if s does not start with a well-formed directive.
func (d *directives) parseOne(s string) int {
	body := s[2:]
	switch {
	case strings.HasPrefix(body, "hang]]"):
		d.hang = true
		return len("[[hang]]")
	case strings.HasPrefix(body, "error "), strings.HasPrefix(body, "sleep "):
		end := strings.Index(body, "]]")
		if end < 0 {
			return 0
		}
		verb, arg, _ := strings.Cut(body[:end], " ")
		arg = strings.TrimSpace(arg)
		if verb == "error" {
			code, err := strconv.Atoi(arg)
			if err != nil || code < 400 || code > 599 {
				return 0
			}
			d.status = code
		} else {
			dur, err := time.ParseDuration(arg)
			if err != nil || dur < 0 {
				return 0
			}
			d.sleep = dur
		}
		return 2 + end + 2
	case strings.HasPrefix(body, "tool "):
		return d.parseTool(s)
	}
	return 0
}

// parseTool reads "[[tool NAME]]" or "[[tool NAME {json}]]".
func (d *directives) parseTool(s string) int {
	rest := strings.TrimLeft(s[len("[[tool "):], " ")
	end := strings.IndexAny(rest, " ]")
	if end <= 0 || !validToolName(rest[:end]) {
		return 0
	}
	name := rest[:end]
	rest = rest[end:]
	args := "{}"
	trimmed := strings.TrimLeft(rest, " ")
	if strings.HasPrefix(trimmed, "{") {
		dec := json.NewDecoder(strings.NewReader(trimmed))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return 0
		}
		args = buf.String()
		trimmed = trimmed[dec.InputOffset():]
	}
	trimmed = strings.TrimLeft(trimmed, " ")
	if !strings.HasPrefix(trimmed, "]]") {
		return 0
	}
	d.tools = append(d.tools, ToolCall{Name: name, Arguments: args})
	return len(s) - len(trimmed) + 2
}

// prefix returns the first n runes of s.
func prefix(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := 0; k < n; k++ {
		_, w := utf8.DecodeRuneInString(s[i:])
		i += w
	}
	return s[:i]
}
