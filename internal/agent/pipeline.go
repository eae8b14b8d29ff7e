package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Tool statuses in tool_complete and tool_result events.
const (
	toolOK        = "ok"
	toolError     = "error"
	toolCancelled = "cancelled"
)

// step is one planned tool call of a batch.
type step struct {
	call   ToolCall
	tool   Tool // nil: the call is answered without running anything
	args   json.RawMessage
	result string
	status string
	errMsg string
	millis int64
	// spill bookkeeping for the tool_result event
	original int
	savedTo  string
}

// runTools plans, executes and records one batch of tool calls, appending a
// result per call in the model's order. It reports whether the doom-loop
// guard halted the turn.
func (r *run) runTools(calls []ToolCall) (halted bool) {
	steps := make([]*step, len(calls))
	for i, tc := range calls {
		steps[i] = &step{call: tc}
		if r.plan(steps[i]) {
			halted = true
		}
	}
	if halted {
		for _, s := range steps {
			r.msgs = append(r.msgs, toolMessage(s.call, DoomLoopResult))
		}
		return true
	}
	r.authorize(steps)
	r.execute(steps)
	for _, s := range steps {
		r.outcome.ToolCount++
		r.stats.ToolCalls++
		if s.status == toolError {
			r.stats.ToolFailures++
		}
		name := s.call.Function.Name
		if _, ok := r.tools[name]; !ok {
			name = UnknownTool
		}
		r.stats.countTool(name, s.status == toolError, s.millis)
		r.msgs = append(r.msgs, toolMessage(s.call, s.result))
	}
	return false
}

// plan validates a call. A call that cannot run gets its result here. plan
// reports whether the doom-loop guard trips.
func (r *run) plan(s *step) (doom bool) {
	name := s.call.Function.Name
	reject := func(text string) {
		s.result, s.status, s.errMsg = text, toolError, text
	}
	if strings.TrimSpace(name) == "" {
		r.emptyNames++
		reject(EmptyNameResult)
		return r.emptyNames >= ToolHaltThreshold
	}
	key := name + "\x00" + s.call.Function.Arguments
	r.seen[key]++
	if r.seen[key] >= ToolHaltThreshold {
		return true
	}
	args, err := ParseArgs(s.call.Function.Arguments)
	if err != nil {
		r.parseFails[name]++
		reject(fmt.Sprintf("Error: could not parse the arguments of '%s' as a JSON object (%v). Retry the call with valid JSON arguments.", name, err))
		return r.parseFails[name] >= ToolHaltThreshold
	}
	r.parseFails[name] = 0
	tool, ok := r.tools[name]
	if !ok {
		names := make([]string, len(r.specs))
		for i, sp := range r.specs {
			names[i] = sp.Name
		}
		reject(fmt.Sprintf("Error: unknown tool '%s'. Available tools: %s.", name, strings.Join(names, ", ")))
		return false
	}
	s.tool, s.args = tool, args
	return false
}

// denyAll is the authorizer of a turn that names none: a forgotten
// authorizer must not let a model run tools unchecked.
func denyAll(context.Context, Call, ToolSpec, func(Event)) Verdict {
	return Verdict{Result: "Error: no authorizer is configured; tool calls are denied.", Denied: true}
}

// AllowAll is an authorizer that lets every call run, for tests and
// trusted embedders that check nothing.
func AllowAll(context.Context, Call, ToolSpec, func(Event)) Verdict { return Verdict{Allow: true} }

// authorize asks, call by call and before anything runs, whether each
// runnable step may run; a refused step is answered with the verdict's text.
func (r *run) authorize(steps []*step) {
	authorize := r.t.Authorize
	if authorize == nil {
		authorize = denyAll
	}
	emit := func(e Event) { r.emit(e.Data) }
	for _, s := range steps {
		if s.tool == nil {
			continue
		}
		if reason, ok := CancelReason(r.ctx); ok {
			s.tool, s.result, s.status = nil, "[Operation Cancelled] "+reason, toolCancelled
			continue
		}
		v := authorize(r.ctx, Call{ID: s.call.ID, Name: s.call.Function.Name, Args: s.args}, s.tool.Spec(), emit)
		if v.Allow {
			continue
		}
		s.tool, s.result, s.status = nil, v.Result, toolCancelled
		if v.Denied {
			s.status, s.errMsg = toolError, "denied by the permission rules"
		}
	}
}

// execute runs the runnable steps: calls of the same tool one after another
// in order, different tools in parallel (at most MaxParallelTools at once).
func (r *run) execute(steps []*step) {
	var groups [][]*step
	index := map[string]int{}
	for _, s := range steps {
		if s.tool == nil {
			r.report(s) // answered at planning time; still shown to the client
			continue
		}
		name := s.call.Function.Name
		i, ok := index[name]
		if !ok {
			i = len(groups)
			index[name] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], s)
	}
	if len(groups) == 1 {
		for _, s := range groups[0] {
			r.runStep(s)
		}
		return
	}
	sem := make(chan struct{}, MaxParallelTools)
	var wg sync.WaitGroup
	for _, g := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, s := range g {
				r.runStep(s)
			}
		}()
	}
	wg.Wait()
}

// runStep runs one call, unless the turn was cancelled first.
func (r *run) runStep(s *step) {
	name := s.call.Function.Name
	if reason, ok := CancelReason(r.ctx); ok {
		s.result, s.status = "[Operation Cancelled] "+reason, toolCancelled
		r.report(s)
		return
	}
	r.emit(ToolStart{Tool: name, Args: s.args, CallID: s.call.ID})
	began := time.Now()
	out, err := r.invoke(s)
	s.millis = time.Since(began).Milliseconds()
	switch {
	case err != nil:
		if reason, ok := CancelReason(r.ctx); ok && out == "" {
			s.result, s.status = "[Operation Cancelled] "+reason+": "+err.Error(), toolCancelled
		} else {
			s.result, s.status, s.errMsg = "Error: "+err.Error(), toolError, err.Error()
			if out != "" {
				s.result = out + "\n" + s.result
			}
		}
	default:
		s.result, s.status = out, toolOK
	}
	r.complete(s)
}

// invoke calls the tool and turns a panic into an error.
func (r *run) invoke(s *step) (out string, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.a.log.Error("tool panicked", zap.String("tool", s.call.Function.Name), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			out, err = "", fmt.Errorf("the tool crashed: %v", p)
		}
	}()
	name := s.call.Function.Name
	return s.tool.Run(r.ctx, Call{
		ID:   s.call.ID,
		Name: name,
		Args: s.args,
		Output: func(chunk string) {
			r.emit(ToolOutput{Tool: name, Chunk: chunk, CallID: s.call.ID})
		},
	})
}

// report emits start and completion for a call that did not run.
func (r *run) report(s *step) {
	r.emit(ToolStart{Tool: s.call.Function.Name, Args: rawOrString(s.call.Function.Arguments), CallID: s.call.ID})
	r.complete(s)
}

// complete bounds the result's size and emits tool_complete and tool_result.
func (r *run) complete(s *step) {
	s.original = utf8.RuneCountInString(s.result)
	s.result, s.savedTo = r.bound(s.call.ID, s.result)
	name := s.call.Function.Name
	r.emit(ToolComplete{Tool: name, CallID: s.call.ID, Status: s.status, DurationMS: s.millis, Error: s.errMsg})
	sum := sha256.Sum256([]byte(s.result))
	r.emit(ToolResult{
		Tool: name, CallID: s.call.ID, Content: s.result,
		ContentHash: "sha256:" + hex.EncodeToString(sum[:]), OriginalChars: s.original,
		SavedToDisk: s.savedTo != "", DiskPath: s.savedTo,
		Status: s.status, DurationMS: s.millis, Error: s.errMsg,
	})
}

// bound keeps a tool result within MaxResultChars: the whole text is spilled
// to the session's directory when possible and replaced by an excerpt (the
// first 20% and last 80%); without a spill it is cut at twice the limit.
func (r *run) bound(callID, content string) (string, string) {
	limit := r.a.cfg.MaxResultChars
	n := utf8.RuneCountInString(content)
	if n <= limit {
		return content, ""
	}
	if r.t.Spill != nil {
		path, err := r.t.Spill(callID, content)
		if err == nil {
			return excerpt(content, limit) + fmt.Sprintf("\n\n[Output was %d characters; the full output is saved to %s. Use read_file with offset and limit to read more of it.]", n, path), path
		}
		r.a.log.Warn("spill tool output", zap.String("call_id", callID), zap.Error(err))
	}
	if n <= 2*limit {
		return content, ""
	}
	return excerpt(content, 2*limit) + fmt.Sprintf("\n\n[Output was %d characters and has been cut.]", n), ""
}

// excerpt keeps the first 20% and the last 80% of limit runes of s.
func excerpt(s string, limit int) string {
	head, tail := limit/5, limit-limit/5
	runes := []rune(s)
	omitted := len(runes) - head - tail
	return string(runes[:head]) + fmt.Sprintf("\n\n… [%d characters omitted] …\n\n", omitted) + string(runes[len(runes)-tail:])
}

// ParseArgs turns a model's raw tool-call arguments into a JSON object,
// repairing what models commonly get wrong: empty arguments, Markdown code
// fences, a JSON object encoded twice as a string, and trailing commas.
func ParseArgs(raw string) (json.RawMessage, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return json.RawMessage("{}"), nil
	}
	if strings.HasPrefix(s, "```") {
		s = strings.TrimPrefix(s, "```json")
		s = strings.TrimPrefix(s, "```")
		s = strings.TrimSuffix(strings.TrimSpace(s), "```")
		s = strings.TrimSpace(s)
	}
	try := func(s string) (json.RawMessage, error) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			var str string
			if json.Unmarshal([]byte(s), &str) == nil && strings.HasPrefix(strings.TrimSpace(str), "{") {
				if err2 := json.Unmarshal([]byte(str), &obj); err2 == nil {
					return json.RawMessage(str), nil
				}
			}
			return nil, err
		}
		if obj == nil {
			return nil, errors.New("arguments are null, not an object")
		}
		return json.RawMessage(s), nil
	}
	out, err := try(s)
	if err == nil {
		return out, nil
	}
	if len(s) <= 64<<10 {
		if fixed := dropTrailingCommas(s); fixed != s {
			if out, err2 := try(fixed); err2 == nil {
				return out, nil
			}
		}
	}
	return nil, err
}

// dropTrailingCommas removes commas that directly precede } or ] outside
// strings.
func dropTrailingCommas(s string) string {
	var b bytes.Buffer
	inString, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inString {
			b.WriteByte(c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
		}
		if c == ',' {
			j := i + 1
			for j < len(s) && strings.ContainsRune(" \t\r\n", rune(s[j])) {
				j++
			}
			if j < len(s) && (s[j] == '}' || s[j] == ']') {
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

// rawOrString shows unparseable arguments to clients as a string.
func rawOrString(raw string) any {
	if json.Valid([]byte(raw)) {
		return json.RawMessage(raw)
	}
	return raw
}
