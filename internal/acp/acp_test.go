package acp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/session"
)

func TestFraming(t *testing.T) {
	e := newEnv(t, session.Config{})
	c := e.connect(t.Context())
	tests := []struct {
		name, line string
		wantID     any // nil: null
		wantCode   int
	}{
		{"not JSON", `{"jsonrpc":"2.0","id":1,"method":`, nil, acp.CodeParseError},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"initialize"}]`, nil, acp.CodeInvalidRequest},
		{"not an object", `"initialize"`, nil, acp.CodeInvalidRequest},
		{"wrong version", `{"jsonrpc":"1.0","id":7,"method":"initialize","params":{"protocolVersion":1}}`, float64(7), acp.CodeInvalidRequest},
		{"bad id", `{"jsonrpc":"2.0","id":{"a":1},"method":"initialize"}`, nil, acp.CodeInvalidRequest},
		{"params not an object", `{"jsonrpc":"2.0","id":"s","method":"initialize","params":[1]}`, "s", acp.CodeInvalidParams},
		{"neither request nor response", `{"jsonrpc":"2.0","id":3}`, float64(3), acp.CodeInvalidRequest},
		{"unknown method", `{"jsonrpc":"2.0","id":4,"method":"session/fly"}`, float64(4), acp.CodeMethodNotFound},
		{"before initialize", `{"jsonrpc":"2.0","id":5,"method":"session/new","params":{"cwd":"/","mcpServers":[]}}`, float64(5), acp.CodeInvalidRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.sendRaw(tc.line)
			m := c.read()
			if m.errCode() != tc.wantCode || m["id"] != tc.wantID || m["jsonrpc"] != "2.0" {
				t.Errorf("answer to %s = %v; want error %d with id %v", tc.line, m, tc.wantCode, tc.wantID)
			}
		})
	}
	t.Run("notifications and stray responses get no answer", func(t *testing.T) {
		c.sendRaw(`{"jsonrpc":"2.0","method":"session/fly","params":{}}`)
		c.sendRaw(`{"jsonrpc":"2.0","id":"srv_0000000000000000","result":{}}`)
		c.sendRaw(`{"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"sess_nope"}}`)
		c.sendRaw("") // blank lines are skipped, CRLF is fine
		c.sendRaw(`{"jsonrpc":"2.0","id":"after","method":"initialize","params":{"protocolVersion":1}}` + "\r")
		if m := c.read(); m.id() != "after" || m.errCode() != 0 {
			t.Errorf("first answer = %v; want the initialize response only", m)
		}
	})
}

func TestLineTooLong(t *testing.T) {
	e := newEnv(t, session.Config{})
	c := connectServer(t, e.srv, t.Context(), 256)
	c.sendRaw(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1,"x":"` + strings.Repeat("a", 1000) + `"}}`)
	if m := c.read(); m.errCode() != acp.CodeParseError || m["id"] != nil {
		t.Errorf("answer to an oversized line = %v; want -32700 with id null", m)
	}
	c.initialize() // the connection goes on
}

func TestInitialize(t *testing.T) {
	e := newEnv(t, session.Config{})
	c := e.connect(t.Context())
	for _, v := range []int{1, 2, 0} {
		res, _ := c.call("initialize", map[string]any{"protocolVersion": v, "clientInfo": map[string]any{"name": "t", "version": "1"}})
		if res["protocolVersion"] != float64(1) {
			t.Errorf("initialize(%d) protocolVersion = %v; want 1", v, res["protocolVersion"])
		}
		caps := res["agentCapabilities"].(map[string]any)
		pc := caps["promptCapabilities"].(map[string]any)
		// The SDK's PromptCapabilities leaves a false out: omitted means
		// unsupported.
		for _, k := range []string{"image", "audio", "embeddedContext"} {
			if v, ok := pc[k]; ok && v != false {
				t.Errorf("promptCapabilities.%s = %v; want false or absent", k, v)
			}
		}
		sc, _ := caps["sessionCapabilities"].(map[string]any)
		for _, k := range []string{"list", "resume", "close"} {
			if _, ok := sc[k].(map[string]any); !ok {
				t.Errorf("sessionCapabilities.%s = %v; want {}", k, sc[k])
			}
		}
		if caps["loadSession"] != true {
			t.Errorf("agentCapabilities = %v", caps)
		}
		if res["agentInfo"].(map[string]any)["name"] != "agentd" || len(res["authMethods"].([]any)) != 0 {
			t.Errorf("initialize = %v", res)
		}
	}
	for _, params := range []any{
		map[string]any{"protocolVersion": "1"},
		map[string]any{"protocolVersion": true},
		map[string]any{"protocolVersion": 1.5},
		map[string]any{},
		map[string]any{"protocolVersion": 1, "clientCapabilities": "all"},
	} {
		if code, _ := c.callErr("initialize", params); code != acp.CodeInvalidParams {
			t.Errorf("initialize(%v) = %d; want -32602", params, code)
		}
	}
}

func TestInvalidParams(t *testing.T) {
	e := newEnv(t, session.Config{})
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	tests := []struct {
		method string
		params any
		want   string // in the message
	}{
		{"session/new", map[string]any{"cwd": "/x"}, "mcpServers"},
		{"session/new", map[string]any{"cwd": "/x", "mcpServers": "none"}, "mcpServers"},
		{"session/new", map[string]any{"cwd": "/x", "mcpServers": []any{"fs"}}, "mcpServers[0]"},
		{"session/new", map[string]any{"cwd": "project", "mcpServers": []any{}}, "absolute"},
		{"session/new", map[string]any{"mcpServers": []any{}}, "cwd"},
		{"session/load", map[string]any{"cwd": "/x", "mcpServers": []any{}}, "sessionId"},
		{"session/load", map[string]any{"sessionId": sid, "cwd": "/x"}, "mcpServers"},
		{"session/prompt", map[string]any{"sessionId": sid}, "prompt"},
		{"session/prompt", map[string]any{"sessionId": sid, "prompt": []any{}}, "no text"},
		{"session/prompt", map[string]any{"sessionId": sid, "prompt": []any{map[string]any{"type": "image", "data": "AA==", "mimeType": "image/png"}}}, "image"},
		{"session/prompt", map[string]any{"sessionId": sid, "prompt": []any{map[string]any{"type": "resource", "resource": map[string]any{}}}}, "resource"},
		{"session/prompt", map[string]any{"sessionId": sid, "prompt": []any{map[string]any{"type": "video"}}}, "video"},
		{"session/prompt", map[string]any{"sessionId": 42, "prompt": []any{}}, "sessionId"},
		{"session/set_config_option", map[string]any{"sessionId": sid, "configId": "mode", "value": "x"}, "configId"},
		{"session/set_config_option", map[string]any{"sessionId": sid, "configId": "model", "type": "boolean", "value": true}, "value"},
		{"session/set_config_option", map[string]any{"sessionId": sid, "configId": "model", "value": "gpt-99"}, "not in the catalog"},
	}
	for _, tc := range tests {
		code, e := c.callErr(tc.method, tc.params)
		if code != acp.CodeInvalidParams || !strings.Contains(e["message"].(string), tc.want) {
			t.Errorf("%s %v = %d %v; want -32602 mentioning %q", tc.method, tc.params, code, e, tc.want)
		}
	}
	// Accepted: a Windows cwd (a remote client's), and MCP servers, which
	// agentd ignores.
	c.call("session/new", map[string]any{"cwd": `C:\Users\alice\project`, "mcpServers": []any{map[string]any{"name": "fs", "command": "/bin/fs", "args": []any{}, "env": []any{}}}})
}

func TestUnknownSession(t *testing.T) {
	e := newEnv(t, session.Config{})
	c := e.connect(t.Context())
	c.initialize()
	for _, sid := range []string{"sess_0123456789abcdef0123456789abcdef", "not-an-id"} {
		for _, req := range []struct {
			method string
			params map[string]any
		}{
			{"session/load", map[string]any{"sessionId": sid, "cwd": "/", "mcpServers": []any{}}},
			{"session/prompt", textPrompt(sid, "hi")},
			{"session/set_config_option", map[string]any{"sessionId": sid, "configId": "model", "value": "m2"}},
			{"session/cancel", map[string]any{"sessionId": sid}},
		} {
			code, e := c.callErr(req.method, req.params)
			data, _ := e["data"].(map[string]any)
			if code != acp.CodeNotFound || data["sessionId"] != sid {
				t.Errorf("%s of %s = %d %v; want -32002 with data.sessionId", req.method, sid, code, e)
			}
		}
	}
	// Another tenant's session does not exist for this connection.
	other, err := e.pool.Create(t.Context(), "globex", "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := c.callErr("session/prompt", textPrompt(string(other.ID), "hi")); code != acp.CodeNotFound {
		t.Errorf("prompt to another tenant's session = %d; want -32002", code)
	}
}

func TestPromptStreamsUpdates(t *testing.T) {
	e := newEnv(t, session.Config{},
		agenttest.Step{Text: "Let me look.", Reasoning: "need the file", ToolCalls: agenttest.Calls("read_file", `{"file_path":"a.txt"}`).ToolCalls},
		agenttest.Reply("It says hello."))
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	res, before := c.call("session/prompt", map[string]any{"sessionId": sid, "prompt": []any{
		map[string]any{"type": "text", "text": "What is in a.txt?"},
		map[string]any{"type": "resource_link", "uri": "file:///home/alice/a.txt", "name": "a.txt"},
	}})
	if res["stopReason"] != "end_turn" {
		t.Errorf("stopReason = %v; want end_turn", res["stopReason"])
	}
	if got := agentText(before); got != "Let me look.It says hello." {
		t.Errorf("agent text = %q", got)
	}
	var kinds []string
	var call, done, content, thought map[string]any
	for _, u := range updatesOf(before) {
		kinds = append(kinds, u["sessionUpdate"].(string))
		switch {
		case u["sessionUpdate"] == "tool_call":
			call = u
		case u["sessionUpdate"] == "tool_call_update" && u["status"] != nil:
			done = u
		case u["sessionUpdate"] == "tool_call_update":
			content = u
		case u["sessionUpdate"] == "agent_thought_chunk":
			thought = u
		}
	}
	if call == nil || call["toolCallId"] != "call_0_read_file" || call["kind"] != "read" || call["status"] != "pending" ||
		call["title"] != "read_file: a.txt" || call["rawInput"].(map[string]any)["file_path"] != "a.txt" {
		t.Errorf("tool_call = %v; want the real call id, kind read, pending, rawInput", call)
	}
	if done == nil || done["status"] != "completed" || done["toolCallId"] != "call_0_read_file" {
		t.Errorf("completion = %v", done)
	}
	if content == nil || !strings.Contains(content["content"].([]any)[0].(map[string]any)["content"].(map[string]any)["text"].(string), "hello from a.txt") {
		t.Errorf("tool content = %v", content)
	}
	if thought == nil || thought["content"].(map[string]any)["text"] != "need the file" {
		t.Errorf("thought = %v (updates %v)", thought, kinds)
	}
	// The turn is the pool's: the user message as agentd stores it.
	sess, err := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if err != nil {
		t.Fatal(err)
	}
	if got := agent.StripReminders(sess.Messages[0].Content); got != "What is in a.txt?\n\n[Resource: a.txt](file:///home/alice/a.txt)" {
		t.Errorf("stored user message = %q", got)
	}
	if sess.User != "alice" || sess.Tenant != "acme" {
		t.Errorf("session owner = %s/%s", sess.Tenant, sess.User)
	}
}

func TestStopReasons(t *testing.T) {
	tests := []struct {
		name string
		step agenttest.Step
		want string
	}{
		{"answer", agenttest.Reply("ok"), "end_turn"},
		{"truncated", agenttest.Step{Text: "cut", Finish: "length"}, "max_tokens"},
		{"LLM error", agenttest.Step{Err: &agent.ModelError{StatusCode: 500, Attempts: 1, Err: errors.New("boom")}}, "end_turn"},
		{"doom loop", agenttest.Calls("read_file", `{"file_path":"x"}`), "max_turn_requests"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, session.Config{}, tc.step)
			// After the first step the model repeats one call: the doom-loop
			// guard ends the turn on the third.
			e.model.Default = func(agent.Request) agenttest.Step { return agenttest.Calls("read_file", `{"file_path":"y"}`) }
			c := e.connect(t.Context())
			c.initialize()
			sid := c.newSession()
			before, resp := c.until(c.request("session/prompt", textPrompt(sid, "go")))
			if resp.errCode() != 0 || resp.result()["stopReason"] != tc.want {
				t.Errorf("prompt = %v; want stopReason %s", resp, tc.want)
			}
			if tc.name == "LLM error" && !strings.Contains(agentText(before), "boom") {
				t.Errorf("the client is not told about the LLM error: %q", agentText(before))
			}
		})
	}
}

// TestCancelWhilePromptRuns: a session/cancel is handled while the prompt
// runs, the prompt answers cancelled (not an error), and a second prompt
// meanwhile is refused with -32600.
func TestCancelWhilePromptRuns(t *testing.T) {
	for _, asRequest := range []bool{false, true} {
		name := "notification"
		if asRequest {
			name = "request"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, session.Config{}, agenttest.Step{Text: "partial ", Block: true}, agenttest.Reply("back"))
			c := e.connect(t.Context())
			c.initialize()
			sid := c.newSession()
			pid := c.request("session/prompt", textPrompt(sid, "long job"))
			e.waitModelCalls(1)
			if code, _ := c.callErr("session/prompt", textPrompt(sid, "second")); code != acp.CodeInvalidRequest {
				t.Errorf("second prompt = %d; want -32600", code)
			}
			if asRequest {
				cid := c.request("session/cancel", map[string]any{"sessionId": sid})
				_, resp := c.until(cid)
				if _, ok := resp["result"]; !ok || resp["result"] != nil {
					t.Errorf("session/cancel as a request = %v; want result null", resp)
				}
			} else {
				c.notify("session/cancel", map[string]any{"sessionId": sid})
			}
			_, resp := c.until(pid)
			if resp.errCode() != 0 || resp.result()["stopReason"] != "cancelled" {
				t.Fatalf("prompt = %v; want stopReason cancelled", resp)
			}
			sess, _ := e.pool.Get(t.Context(), "acme", session.ID(sid))
			last := sess.Turns[len(sess.Turns)-1].Outcome
			if last.Status != agent.StatusCancelled || last.CancelReason != acp.ReasonSessionCancel {
				t.Errorf("outcome = %+v; want cancelled by %s", last, acp.ReasonSessionCancel)
			}
			if err := agent.Validate(sess.Messages); err != nil {
				t.Errorf("history: %v", err)
			}
			if res, _ := c.call("session/prompt", textPrompt(sid, "again")); res["stopReason"] != "end_turn" {
				t.Errorf("prompt after cancel = %v", res)
			}
		})
	}
}

// TestCancelDuringTool: a cancel reaches a running tool; the tool call is
// reported failed and the prompt cancelled.
func TestCancelDuringTool(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Calls("run_shell_command", `{"command":"wait"}`))
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	pid := c.request("session/prompt", textPrompt(sid, "wait"))
	waitFor(t, func() bool { return len(e.shell.Calls()) == 1 })
	c.notify("session/cancel", map[string]any{"sessionId": sid})
	before, resp := c.until(pid)
	if resp.result()["stopReason"] != "cancelled" {
		t.Fatalf("prompt = %v", resp)
	}
	var statuses []any
	for _, u := range updatesOf(before) {
		if u["toolCallId"] == "call_0_run_shell_command" {
			statuses = append(statuses, u["status"])
		}
	}
	if len(statuses) < 3 || statuses[0] != "pending" || statuses[1] != "in_progress" || statuses[len(statuses)-2] != "failed" {
		t.Errorf("tool call statuses = %v; want pending, in_progress (output), …, failed", statuses)
	}
}

// TestPermission: the tool_call goes out first, then the permission request
// with the real call id and four options; the answer, sent while the prompt
// is still pending, decides whether the tool runs.
func TestPermission(t *testing.T) {
	tests := []struct {
		name   string
		answer any // nil: an error response
		runs   bool
	}{
		{"allow once", map[string]any{"outcome": map[string]any{"outcome": "selected", "optionId": "allow_once"}}, true},
		{"allow always, flattened", map[string]any{"outcome": "selected", "optionId": "allow_always"}, true},
		{"reject once", map[string]any{"outcome": map[string]any{"outcome": "selected", "optionId": "reject_once"}}, false},
		{"cancelled", map[string]any{"outcome": map[string]any{"outcome": "cancelled"}}, false},
		{"unknown option", map[string]any{"outcome": map[string]any{"outcome": "selected", "optionId": "yes"}}, false},
		{"error response", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, session.Config{}, agenttest.Calls("run_shell_command", `{"command":"touch x.txt"}`), agenttest.Reply("done"))
			c := e.connect(t.Context())
			c.initialize()
			sid := c.newSession()
			pid := c.request("session/prompt", textPrompt(sid, "touch it"))
			var announced bool
			var ask msg
			for ask == nil {
				m := c.read()
				if u := m.update(); u != nil && u["sessionUpdate"] == "tool_call" {
					announced = u["toolCallId"] == "call_0_run_shell_command" && u["status"] == "pending" && u["kind"] == "execute"
				}
				if m.method() == "session/request_permission" {
					ask = m
				}
			}
			if !announced {
				t.Errorf("no pending tool_call before the permission request")
			}
			p := ask.params()
			tc0 := p["toolCall"].(map[string]any)
			if !strings.HasPrefix(ask.id(), "srv_") || p["sessionId"] != sid || tc0["toolCallId"] != "call_0_run_shell_command" ||
				tc0["rawInput"].(map[string]any)["command"] != "touch x.txt" || len(p["options"].([]any)) != 4 {
				t.Errorf("permission request = %v", ask)
			}
			if tc.answer == nil {
				c.send(map[string]any{"jsonrpc": "2.0", "id": ask.id(), "error": map[string]any{"code": -32603, "message": "no UI"}})
			} else {
				c.answer(ask.id(), tc.answer)
			}
			before, resp := c.until(pid)
			if resp.result()["stopReason"] != "end_turn" {
				t.Errorf("prompt = %v", resp)
			}
			if ran := len(e.shell.Calls()) == 1; ran != tc.runs {
				t.Errorf("tool ran = %v; want %v", ran, tc.runs)
			}
			want := "failed"
			if tc.runs {
				want = "completed"
			}
			var last any
			for _, u := range updatesOf(before) {
				if u["toolCallId"] == "call_0_run_shell_command" && u["status"] != nil {
					last = u["status"]
				}
				if u["sessionUpdate"] == "tool_call" {
					t.Errorf("a second tool_call for the announced call: %v", u)
				}
			}
			if last != want {
				t.Errorf("last status = %v; want %s", last, want)
			}
		})
	}
}

// TestPermissionTimeout: the pool's approval timeout still applies; the
// client's pending request is withdrawn with $/cancel_request.
func TestPermissionTimeout(t *testing.T) {
	e := newEnv(t, session.Config{ApprovalTimeout: 100 * time.Millisecond},
		agenttest.Calls("run_shell_command", `{"command":"touch late.txt"}`), agenttest.Reply("gave up"))
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	before, resp := c.until(c.request("session/prompt", textPrompt(sid, "touch it")))
	if resp.result()["stopReason"] != "end_turn" || len(e.shell.Calls()) != 0 {
		t.Errorf("prompt = %v, tool calls %d; want end_turn without running", resp, len(e.shell.Calls()))
	}
	var asked, withdrawn string
	for _, m := range before {
		switch m.method() {
		case "session/request_permission":
			asked = m.id()
		case "$/cancel_request":
			withdrawn, _ = m.params()["requestId"].(string)
		}
	}
	if asked == "" || withdrawn != asked {
		t.Errorf("asked %q, withdrawn %q; want the request withdrawn", asked, withdrawn)
	}
	// A late answer is ignored.
	c.answer(asked, map[string]any{"outcome": map[string]any{"outcome": "selected", "optionId": "allow_once"}})
	if res, _ := c.call("session/prompt", textPrompt(sid, "still there?")); res["stopReason"] != "end_turn" {
		t.Errorf("next prompt = %v", res)
	}
}

// TestCancelWhileAsking: after a session/cancel agentd stops waiting for the
// permission at once.
func TestCancelWhileAsking(t *testing.T) {
	e := newEnv(t, session.Config{ApprovalTimeout: time.Hour}, agenttest.Calls("run_shell_command", `{"command":"touch x"}`))
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	pid := c.request("session/prompt", textPrompt(sid, "touch"))
	for m := c.read(); m.method() != "session/request_permission"; m = c.read() {
	}
	began := time.Now()
	c.notify("session/cancel", map[string]any{"sessionId": sid})
	_, resp := c.until(pid)
	if resp.result()["stopReason"] != "cancelled" || time.Since(began) > 5*time.Second {
		t.Errorf("prompt = %v after %v; want cancelled at once", resp, time.Since(began))
	}
	if len(e.shell.Calls()) != 0 {
		t.Errorf("the tool ran")
	}
}

// TestLoadReplaysHistoryFirst: session/load on a new connection (a new
// process: a new pool on the same store) replays the whole history as
// updates before its response.
func TestLoadReplaysHistoryFirst(t *testing.T) {
	e := newEnv(t, session.Config{},
		agenttest.Calls("read_file", `{"file_path":"a.txt"}`), agenttest.Reply("It says hello."), agenttest.Reply("Bye."))
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	c.call("session/prompt", textPrompt(sid, "Read a.txt"))
	c.call("session/prompt", textPrompt(sid, "Thanks"))
	c.in.Close()
	<-c.done

	e.close()
	e.open() // a restarted process
	c2 := e.connect(t.Context())
	c2.initialize()
	res, before := c2.call("session/load", map[string]any{"sessionId": sid, "cwd": "/home/alice/project", "mcpServers": []any{}})
	var got []string
	for _, u := range updatesOf(before) {
		s := u["sessionUpdate"].(string)
		switch s {
		case "user_message_chunk", "agent_message_chunk":
			s += " " + u["content"].(map[string]any)["text"].(string)
			if u["messageId"] == nil {
				t.Errorf("%v has no messageId", u)
			}
		case "tool_call":
			s += " " + u["toolCallId"].(string) + " " + u["status"].(string) + " " + u["kind"].(string) + " " + u["rawInput"].(map[string]any)["file_path"].(string)
		case "tool_call_update":
			s += " " + u["toolCallId"].(string) + " " + u["status"].(string) + " " + u["content"].([]any)[0].(map[string]any)["content"].(map[string]any)["text"].(string)
		}
		got = append(got, s)
	}
	want := []string{
		"user_message_chunk Read a.txt",
		"tool_call call_0_read_file completed read a.txt",
		"tool_call_update call_0_read_file completed hello from a.txt",
		"agent_message_chunk It says hello.",
		"user_message_chunk Thanks",
		"agent_message_chunk Bye.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("replay =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	opts := res["configOptions"].([]any)[0].(map[string]any)
	if opts["id"] != "model" || opts["currentValue"] != "m1" || opts["category"] != "model" || len(opts["options"].([]any)) != 2 {
		t.Errorf("configOptions = %v", opts)
	}
	e.model.Push(agenttest.Reply("Hello again."))
	if res, before := c2.call("session/prompt", textPrompt(sid, "Still there?")); res["stopReason"] != "end_turn" || agentText(before) != "Hello again." {
		t.Errorf("prompt after load = %v %q", res, agentText(before))
	}
}

func TestLoadWhileTurnRuns(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	pid := c.request("session/prompt", textPrompt(sid, "long"))
	e.waitModelCalls(1)
	other := e.connect(t.Context())
	other.initialize()
	load := map[string]any{"sessionId": sid, "cwd": "/", "mcpServers": []any{}}
	if code, _ := other.callErr("session/load", load); code != acp.CodeInvalidRequest {
		t.Errorf("load of a running session = %d; want -32600", code)
	}
	if code, _ := other.callErr("session/set_config_option", map[string]any{"sessionId": sid, "configId": "model", "value": "m2"}); code != acp.CodeInvalidRequest {
		t.Errorf("model switch of a running session = %d; want -32600", code)
	}
	// Another connection (of the same tenant) may cancel it, as the HTTP
	// API's cancel may.
	other.notify("session/cancel", map[string]any{"sessionId": sid})
	if _, resp := c.until(pid); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("prompt = %v", resp)
	}
	other.call("session/load", load)
}

// TestDisconnectCancelsTurns: stdin EOF cancels the connection's running
// turn with reason connection-closed, and Serve returns once it is saved.
func TestDisconnectCancelsTurns(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Text: "half an answer", Block: true})
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	c.request("session/prompt", textPrompt(sid, "long"))
	e.waitModelCalls(1)
	c.in.Close()
	select {
	case <-c.done:
		if c.err != nil {
			t.Errorf("Serve = %v; want nil at EOF", c.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	sess, err := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sess.Turns); n != 1 || sess.Turns[0].Outcome.CancelReason != acp.ReasonConnectionClosed {
		t.Errorf("turns = %+v; want one cancelled by connection-closed", sess.Turns)
	}
	if err := agent.Validate(sess.Messages); err != nil || sess.InFlight != nil {
		t.Errorf("history valid: %v, in flight %v", err, sess.InFlight)
	}
}

// TestShutdown: a done Serve context (SIGTERM in agentd acp) cancels with
// reason shutdown and answers the prompt cancelled before returning.
func TestShutdown(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
	ctx, cancel := context.WithCancel(t.Context())
	c := e.connect(ctx)
	c.initialize()
	sid := c.newSession()
	pid := c.request("session/prompt", textPrompt(sid, "long"))
	e.waitModelCalls(1)
	cancel()
	if _, resp := c.until(pid); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("prompt = %v; want cancelled", resp)
	}
	<-c.done
	sess, _ := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if sess.Turns[0].Outcome.CancelReason != agent.ReasonShutdown {
		t.Errorf("outcome = %+v; want cancelled by shutdown", sess.Turns[0].Outcome)
	}
	// Server.Shutdown refuses new connections.
	if err := e.srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Serve(t.Context(), acp.NewStdio(strings.NewReader(""), new(strings.Builder), 0), acp.Peer{Tenant: "acme", User: "a"}); err != acp.ErrShuttingDown {
		t.Errorf("Serve after Shutdown = %v", err)
	}
}

func TestSetConfigOption(t *testing.T) {
	e := newEnv(t, session.Config{})
	c := e.connect(t.Context())
	c.initialize()
	res, _ := c.call("session/new", map[string]any{"cwd": "/p", "mcpServers": []any{}})
	sid := res["sessionId"].(string)
	opt := res["configOptions"].([]any)[0].(map[string]any)
	if opt["currentValue"] != "m1" || opt["type"] != "select" {
		t.Errorf("session/new configOptions = %v", opt)
	}
	res, _ = c.call("session/set_config_option", map[string]any{"sessionId": sid, "configId": "model", "value": "m2"})
	if res["configOptions"].([]any)[0].(map[string]any)["currentValue"] != "m2" {
		t.Errorf("set_config_option = %v", res)
	}
	sess, _ := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if sess.Model != "m2" {
		t.Errorf("model = %s; want m2", sess.Model)
	}
}

// TestConcurrentSessions: prompts of two sessions on one connection run at
// once, and responses come back in the order they finish.
func TestConcurrentSessions(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
	e.model.Default = func(agent.Request) agenttest.Step { return agenttest.Reply("quick") }
	c := e.connect(t.Context())
	c.initialize()
	slow, fast := c.newSession(), c.newSession()
	slowID := c.request("session/prompt", textPrompt(slow, "slow"))
	e.waitModelCalls(1)
	_, resp := c.until(c.request("session/prompt", textPrompt(fast, "fast")))
	if resp.result()["stopReason"] != "end_turn" {
		t.Errorf("fast prompt = %v", resp)
	}
	c.notify("session/cancel", map[string]any{"sessionId": slow})
	if _, resp := c.until(slowID); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("slow prompt = %v", resp)
	}
}

// TestPipelined: messages are taken in order even though they are handled
// concurrently: a cancel sent right after its prompt cancels it, and a
// prompt sent right after a load runs after the replay and the load's
// response.
func TestPipelined(t *testing.T) {
	t.Run("prompt then cancel", func(t *testing.T) {
		e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
		c := e.connect(t.Context())
		c.initialize()
		sid := c.newSession()
		pid := c.request("session/prompt", textPrompt(sid, "long"))
		c.notify("session/cancel", map[string]any{"sessionId": sid})
		if _, resp := c.until(pid); resp.result()["stopReason"] != "cancelled" {
			t.Errorf("prompt = %v; want cancelled", resp)
		}
	})
	t.Run("load then prompt", func(t *testing.T) {
		e := newEnv(t, session.Config{}, agenttest.Reply("first answer"), agenttest.Reply("second answer"))
		c := e.connect(t.Context())
		c.initialize()
		sid := c.newSession()
		c.call("session/prompt", textPrompt(sid, "first"))
		c2 := e.connect(t.Context())
		c2.initialize()
		lid := c2.request("session/load", map[string]any{"sessionId": sid, "cwd": "/", "mcpServers": []any{}})
		pid := c2.request("session/prompt", textPrompt(sid, "second"))
		var order []string
		lastMsg := ""
		for done := 0; done < 2; {
			m := c2.read()
			switch {
			case m.id() == lid:
				order, lastMsg = append(order, "load response"), ""
				done++
			case m.id() == pid:
				order, lastMsg = append(order, "prompt response"), ""
				done++
			case m.update() != nil:
				u := m.update()
				c, _ := u["content"].(map[string]any)
				switch id, _ := u["messageId"].(string); {
				case c == nil:
				case id == lastMsg: // chunks of one message
					order[len(order)-1] += c["text"].(string)
				default:
					order, lastMsg = append(order, c["text"].(string)), id
				}
			}
		}
		want := "first|first answer|load response|second answer|prompt response"
		if got := strings.Join(order, "|"); got != want {
			t.Errorf("wire order = %s; want %s", got, want)
		}
	})
}

// spentMeter refuses every turn: the tenant's daily budget is spent.
type spentMeter struct{ reset time.Time }

func (m spentMeter) Admit(session.Summary) error {
	return &session.BudgetError{Scope: "tenant acme", Used: 100, Limit: 100, Reset: m.reset}
}
func (spentMeter) Called(session.Summary, agent.LLMCall) {}

// TestPromptOverBudget: a prompt while the budget is spent is JSON-RPC
// error -32029 with what a client needs to wait (the HTTP API's 429), and
// no turn is run or recorded.
func TestPromptOverBudget(t *testing.T) {
	reset := time.Now().Add(90 * time.Minute)
	e := &env{t: t, dir: t.TempDir(), model: agenttest.NewModel(), meter: spentMeter{reset}}
	e.shell = agenttest.NewTool("run_shell_command", func(context.Context, agent.Call) (string, error) { return "", nil })
	e.open()
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	code, er := c.callErr("session/prompt", textPrompt(sid, "hi"))
	data, _ := er["data"].(map[string]any)
	if code != acp.CodeBudgetExceeded || data["code"] != "budget_exceeded" || data["resetsAt"] != reset.UTC().Format(time.RFC3339) ||
		!strings.Contains(er["message"].(string), "100 of 100") {
		t.Fatalf("prompt over budget = %d %v; want -32029 with data.code, retryAfter and resetsAt", code, er)
	}
	if ra, _ := data["retryAfter"].(float64); ra < 5300 || ra > 5401 {
		t.Errorf("retryAfter = %v; want about 5400 seconds", data["retryAfter"])
	}
	if n := len(e.model.Requests()); n != 0 {
		t.Errorf("the model was called %d times", n)
	}
	s, err := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if err != nil || len(s.Turns) != 0 || len(s.Messages) != 0 {
		t.Errorf("after the refused prompt: %v, turns %+v, %d messages; want none", err, s.Turns, len(s.Messages))
	}
}
