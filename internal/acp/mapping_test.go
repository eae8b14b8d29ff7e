package acp

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	sdk "github.com/coder/acp-go-sdk"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

func TestStopReasonPrecedence(t *testing.T) {
	tests := []struct {
		name      string
		o         agent.Outcome
		cancelled bool
		want      string
	}{
		{"answer", agent.Outcome{Status: agent.StatusOK}, false, "end_turn"},
		{"cancelled turn", agent.Outcome{Status: agent.StatusCancelled, CancelReason: "timeout"}, false, "cancelled"},
		{"cancel asked, turn ended first", agent.Outcome{Status: agent.StatusOK, IncompleteReason: agent.IncompleteMaxIterations}, true, "cancelled"},
		{"max iterations", agent.Outcome{Status: agent.StatusOK, IncompleteReason: agent.IncompleteMaxIterations}, false, "max_turn_requests"},
		{"doom loop", agent.Outcome{Status: agent.StatusOK, IncompleteReason: agent.IncompleteDoomLoop}, false, "max_turn_requests"},
		{"length", agent.Outcome{Status: agent.StatusOK, IncompleteReason: agent.IncompleteLengthTruncated}, false, "max_tokens"},
		{"no output", agent.Outcome{Status: agent.StatusOK, IncompleteReason: agent.IncompleteNoOutput}, false, "end_turn"},
		{"reasoning only", agent.Outcome{Status: agent.StatusOK, IncompleteReason: agent.IncompleteReasoningOnly}, false, "end_turn"},
		{"llm error", agent.Outcome{Status: agent.StatusOK, IncompleteReason: agent.IncompleteLLMError}, false, "end_turn"},
	}
	for _, tc := range tests {
		if got := stopReason(tc.o, tc.cancelled); string(got) != tc.want {
			t.Errorf("%s: stopReason(%+v, %v) = %s; want %s", tc.name, tc.o, tc.cancelled, got, tc.want)
		}
	}
}

func TestToolKindAndTitle(t *testing.T) {
	for name, want := range map[string]string{
		"read_file": "read", "list_directory": "read", "write_file": "edit", "replace": "edit",
		"glob": "search", "search_file_content": "search", "run_shell_command": "execute",
		"activate_skill": "other", "mcp_github_get_issue": "other",
	} {
		if got := toolKind(name); string(got) != want {
			t.Errorf("toolKind(%s) = %s; want %s", name, got, want)
		}
	}
	for _, tc := range []struct{ name, args, want string }{
		{"run_shell_command", `{"command":"make test\nmake lint"}`, "run_shell_command: make test"},
		{"write_file", `{"file_path":"a/b.txt","content":"x"}`, "write_file: a/b.txt"},
		{"glob", `{"pattern":"**/*.go"}`, "glob: **/*.go"},
		{"list_directory", `{}`, "list_directory"},
		{"read_file", `not json`, "read_file"},
		{"run_shell_command", `{"command":"` + strings.Repeat("x", 100) + `"}`, "run_shell_command: " + strings.Repeat("x", 80) + "…"},
	} {
		if got := toolTitle(tc.name, json.RawMessage(tc.args)); got != tc.want {
			t.Errorf("toolTitle(%s, %s) = %q; want %q", tc.name, tc.args, got, tc.want)
		}
	}
}

func TestRawInput(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{json.RawMessage(`{"a":1}`), `{"a":1}`},
		{`{"a":1}`, `{"a":1}`},
		{`{"a":`, `{"_raw":"{\"a\":"}`},
		{json.RawMessage(`{"a":`), `{"_raw":"{\"a\":"}`},
		{nil, `{}`},
	} {
		if got := string(rawInput(tc.in)); got != tc.want {
			t.Errorf("rawInput(%v) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

// TestDecisionOf: the client's answer as it arrives, through the
// adapter's rewrite of the flattened shape and the SDK's decode.
func TestDecisionOf(t *testing.T) {
	for _, tc := range []struct {
		result string
		err    bool
		want   string
	}{
		{`{"outcome":{"outcome":"selected","optionId":"allow_once"}}`, false, session.AllowOnce},
		{`{"outcome":{"outcome":"selected","optionId":"reject_always"}}`, false, session.RejectAlways},
		{`{"outcome":"selected","optionId":"allow_always"}`, false, session.AllowAlways},
		{`{"outcome":{"outcome":"cancelled"}}`, false, session.RejectOnce},
		{`{"outcome":"cancelled"}`, false, session.RejectOnce},
		{`{"outcome":{"outcome":"selected","optionId":"allow-once"}}`, false, session.RejectOnce},
		{`{"outcome":{"outcome":"maybe"}}`, false, session.RejectOnce},
		{`null`, false, session.RejectOnce},
		{``, true, session.RejectOnce},
	} {
		raw := json.RawMessage(tc.result)
		if nested, ok := flattenedOutcome(raw); ok {
			raw = nested
		}
		var resp sdk.RequestPermissionResponse
		var err error
		if tc.err {
			err = &Error{Code: -32603, Message: "x"}
		} else {
			err = json.Unmarshal(raw, &resp)
		}
		if got := decisionOf(resp, err); got != tc.want {
			t.Errorf("decisionOf(%s) = %s; want %s", tc.result, got, tc.want)
		}
	}
}

var testTime = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func TestReplayMapping(t *testing.T) {
	msgs := []agent.Message{
		{Role: agent.RoleUser, Content: agent.Reminder(testTime) + "hi"},
		{Role: agent.RoleAssistant, ReasoningContent: "hmm", Content: "looking", ToolCalls: []agent.ToolCall{
			{ID: "call_1", Type: "function", Function: agent.FunctionCall{Name: "run_shell_command", Arguments: `{"command":"ls"}`}},
			{ID: "call_2", Type: "function", Function: agent.FunctionCall{Name: "read_file", Arguments: `{bad`}},
		}},
		{Role: agent.RoleTool, ToolCallID: "call_1", Name: "run_shell_command", Content: "a.txt"},
		{Role: agent.RoleTool, ToolCallID: "call_2", Name: "read_file", Content: agent.InterruptedResult},
		{Role: agent.RoleAssistant, Content: "done"},
		{Role: agent.RoleUser, Content: agent.Reminder(testTime)}, // nothing left to show
	}
	meta := func(tool string) string { return `"_meta":{"agentd":{"toolName":"` + tool + `"}}` }
	want := []string{
		`{"sessionUpdate":"user_message_chunk","messageId":"msg_0","content":{"type":"text","text":"hi"}}`,
		`{"sessionUpdate":"agent_thought_chunk","messageId":"msg_1_thought","content":{"type":"text","text":"hmm"}}`,
		`{"sessionUpdate":"agent_message_chunk","messageId":"msg_1","content":{"type":"text","text":"looking"}}`,
		`{"sessionUpdate":"tool_call","toolCallId":"call_1","title":"run_shell_command: ls",` + meta("run_shell_command") + `,"kind":"execute","status":"completed","rawInput":{"command":"ls"}}`,
		`{"sessionUpdate":"tool_call","toolCallId":"call_2","title":"read_file",` + meta("read_file") + `,"kind":"read","status":"completed","rawInput":{"_raw":"{bad"}}`,
		`{"sessionUpdate":"tool_call_update","toolCallId":"call_1","status":"completed","content":[{"type":"content","content":{"type":"text","text":"a.txt"}}]}`,
		`{"sessionUpdate":"tool_call_update","toolCallId":"call_2","status":"completed","content":[{"type":"content","content":{"type":"text","text":"` + agent.InterruptedResult + `"}}]}`,
		`{"sessionUpdate":"agent_message_chunk","messageId":"msg_4","content":{"type":"text","text":"done"}}`,
	}
	got := replay(msgs)
	if len(got) != len(want) {
		t.Fatalf("replay gave %d updates; want %d", len(got), len(want))
	}
	// The SDK's encoder orders the members its own way: compare values.
	for i, u := range got {
		b, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		var g, w any
		_ = json.Unmarshal(b, &g)
		if err := json.Unmarshal([]byte(want[i]), &w); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("replay[%d] = %s; want %s", i, b, want[i])
		}
	}
}

func TestParseEnvelope(t *testing.T) {
	for _, tc := range []struct {
		in       string
		wantCode int
		request  bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"m"}`, 0, true},
		{`{"jsonrpc":"2.0","id":null,"method":"m"}`, 0, true},
		{`{"jsonrpc":"2.0","method":"m","params":null}`, 0, false},
		{`{"jsonrpc":"2.0","id":"srv_1","result":null}`, 0, false},
		{`{"jsonrpc":"2.0","id":"srv_1","error":{"code":1,"message":"x"}}`, 0, false},
		{`{"jsonrpc":"2.0","id":"srv_1","result":1,"error":{}}`, CodeInvalidRequest, false},
		{`{"jsonrpc":"2.0","method":""}`, CodeInvalidRequest, false},
		{`{"jsonrpc":"2.0","method":5}`, CodeInvalidRequest, false},
		{`{"id":1,"method":"m"}`, CodeInvalidRequest, false},
		{`{"jsonrpc":"2.0","id":[1],"method":"m"}`, CodeInvalidRequest, false},
		{`{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}`, CodeInvalidParams, false},
		{`nope`, CodeParseError, false},
		{`[]`, CodeInvalidRequest, false},
		{`42`, CodeInvalidRequest, false},
	} {
		e, _, err := parseEnvelope([]byte(tc.in))
		code := 0
		if err != nil {
			code = err.Code
		}
		if code != tc.wantCode || (code == 0 && (e.method != "" && e.id != nil) != tc.request) {
			t.Errorf("parseEnvelope(%s) = %+v, %v; want code %d, request %v", tc.in, e, err, tc.wantCode, tc.request)
		}
	}
}

func TestIDKey(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{`"a<b"`, `"a\u003cb"`}, // the SDK's encoder escapes HTML characters
		{`"x"`, `"\u0078"`},
		{`7`, `7`},
	} {
		if ka, kb := idKey(json.RawMessage(tc.a)), idKey(json.RawMessage(tc.b)); ka != kb {
			t.Errorf("idKey(%s) = %q, idKey(%s) = %q; want equal", tc.a, ka, tc.b, kb)
		}
	}
	if idKey(json.RawMessage(`"7"`)) == idKey(json.RawMessage(`7`)) {
		t.Error(`idKey("7") = idKey(7); want them apart`)
	}
}
