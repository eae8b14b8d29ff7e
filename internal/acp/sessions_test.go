package acp_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/session"
)

// TestListSessions: session/list pages the tenant's sessions (any user's),
// newest first, with the title from the first user message; cwd does not
// filter.
func TestListSessions(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Reply("hello"))
	e.close()
	e.acp.ListPageSize = 2
	e.open()
	c := e.connect(t.Context())
	c.initialize()
	// Ids order by their millisecond, then at random: one apart each.
	first := c.newSession()
	c.call("session/prompt", textPrompt(first, "Read a.txt, please"))
	nextMillisecond()
	second := c.newSession()
	nextMillisecond()
	bobs, err := e.pool.Create(t.Context(), "acme", "bob", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Create(t.Context(), "globex", "mallory", ""); err != nil {
		t.Fatal(err)
	}
	newest := []string{string(bobs.ID), second, first}

	res, before := c.call("session/list", map[string]any{})
	if len(updatesOf(before)) != 0 {
		t.Errorf("session/list sent updates: %v", before)
	}
	cursor, _ := res["nextCursor"].(string)
	page1 := listed(t, res)
	if !slices.Equal(page1, newest[:2]) || cursor == "" {
		t.Fatalf("first page = %v, next %q; want %v and a cursor", page1, cursor, newest[:2])
	}
	for _, s := range res["sessions"].([]any) {
		info := s.(map[string]any)
		cwd, _ := info["cwd"].(string)
		if !filepath.IsAbs(cwd) || !strings.HasSuffix(cwd, filepath.Join("workspaces", "acme", info["sessionId"].(string))) {
			t.Errorf("cwd = %q; want the session's workspace", cwd)
		}
		if _, err := time.Parse(time.RFC3339, info["updatedAt"].(string)); err != nil {
			t.Errorf("updatedAt: %v", err)
		}
		if _, ok := info["title"]; ok {
			t.Errorf("a session without messages has title %v", info["title"])
		}
	}

	tests := []struct {
		name     string
		params   map[string]any
		want     []string
		wantNext bool
		wantCode int
	}{
		{"second page", map[string]any{"cursor": cursor}, newest[2:], false, 0},
		{"cwd does not filter", map[string]any{"cwd": "/somewhere/else"}, newest[:2], true, 0},
		{"not a cursor", map[string]any{"cursor": "page-2"}, nil, false, acp.CodeInvalidParams},
		{"cursor of another type", map[string]any{"cursor": 2}, nil, false, acp.CodeInvalidParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, resp := c.until(c.request("session/list", tc.params))
			if code := resp.errCode(); code != tc.wantCode {
				t.Fatalf("session/list(%v) = %v; want code %d", tc.params, resp, tc.wantCode)
			}
			if tc.wantCode != 0 {
				return
			}
			_, hasNext := resp.result()["nextCursor"]
			if got := listed(t, resp.result()); !slices.Equal(got, tc.want) || hasNext != tc.wantNext {
				t.Errorf("session/list(%v) = %v, next %v; want %v, next %v", tc.params, got, hasNext, tc.want, tc.wantNext)
			}
		})
	}
	_, resp := c.until(c.request("session/list", map[string]any{"cursor": cursor}))
	if info := resp.result()["sessions"].([]any)[0].(map[string]any); info["title"] != "Read a.txt, please" {
		t.Errorf("title = %v; want the first user message", info["title"])
	}
}

// nextMillisecond returns once the clock is past the millisecond it was
// in: session ids created before and after it are in creation order.
func nextMillisecond() {
	for now := time.Now().UnixMilli(); time.Now().UnixMilli() == now; {
		time.Sleep(100 * time.Microsecond)
	}
}

func listed(t *testing.T, res map[string]any) []string {
	t.Helper()
	sessions, ok := res["sessions"].([]any)
	if !ok {
		t.Fatalf("no sessions array in %v", res)
	}
	ids := []string{}
	for _, s := range sessions {
		ids = append(ids, s.(map[string]any)["sessionId"].(string))
	}
	return ids
}

// TestResumeSession: session/resume re-attaches to a stored session, also
// after a restart, without replaying anything; prompts go on from there.
func TestResumeSession(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Reply("first answer"), agenttest.Reply("second answer"))
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	c.call("session/prompt", textPrompt(sid, "first"))
	c.in.Close()
	<-c.done
	e.close()
	e.open() // a restarted process

	c2 := e.connect(t.Context())
	c2.initialize()
	res, before := c2.call("session/resume", map[string]any{"sessionId": sid, "cwd": "/home/alice/project"})
	if len(before) != 0 {
		t.Errorf("session/resume sent %d messages before its response: %v", len(before), before)
	}
	opts, _ := res["configOptions"].([]any)
	if len(opts) != 1 || opts[0].(map[string]any)["currentValue"] != "m1" {
		t.Errorf("configOptions = %v", res["configOptions"])
	}
	if res, before := c2.call("session/prompt", textPrompt(sid, "second")); res["stopReason"] != "end_turn" || agentText(before) != "second answer" {
		t.Errorf("prompt after resume = %v %q", res, agentText(before))
	}
	sess, err := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if err != nil || len(sess.Turns) != 2 {
		t.Fatalf("session after resume: %d turns, %v; want 2", len(sess.Turns), err)
	}

	tests := []struct {
		name     string
		params   map[string]any
		wantCode int
		want     string // in the message
	}{
		{"with MCP servers", map[string]any{"sessionId": sid, "cwd": "/", "mcpServers": []any{}}, 0, ""},
		{"unknown session", map[string]any{"sessionId": "sess_0123456789abcdef0123456789abcdef", "cwd": "/"}, acp.CodeNotFound, "sess_0123456789abcdef0123456789abcdef"},
		{"no sessionId", map[string]any{"cwd": "/"}, acp.CodeInvalidParams, "sessionId"},
		{"no cwd", map[string]any{"sessionId": sid}, acp.CodeInvalidParams, "cwd"},
		{"relative cwd", map[string]any{"sessionId": sid, "cwd": "project"}, acp.CodeInvalidParams, "absolute"},
		{"bad mcpServers", map[string]any{"sessionId": sid, "cwd": "/", "mcpServers": []any{1}}, acp.CodeInvalidParams, "mcpServers[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, resp := c2.until(c2.request("session/resume", tc.params))
			e, _ := resp["error"].(map[string]any)
			msg, _ := e["message"].(string)
			if resp.errCode() != tc.wantCode || !strings.Contains(msg, tc.want) {
				t.Errorf("session/resume(%v) = %v; want code %d mentioning %q", tc.params, resp, tc.wantCode, tc.want)
			}
		})
	}
}

// TestResumeWhileTurnRuns: unlike session/load, which would replay a
// history that misses the running turn, resume answers at once.
func TestResumeWhileTurnRuns(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	pid := c.request("session/prompt", textPrompt(sid, "long"))
	e.waitModelCalls(1)
	other := e.connect(t.Context())
	other.initialize()
	other.call("session/resume", map[string]any{"sessionId": sid, "cwd": "/"})
	if code, _ := other.callErr("session/prompt", textPrompt(sid, "too")); code != acp.CodeInvalidRequest {
		t.Errorf("prompt of a session running elsewhere = %d; want -32600", code)
	}
	other.notify("session/cancel", map[string]any{"sessionId": sid})
	if _, resp := c.until(pid); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("prompt = %v", resp)
	}
}

// TestCloseSession: session/close cancels the session's running turn as
// session/cancel does; this connection's prompt is answered before the
// close, and the session stays usable.
func TestCloseSession(t *testing.T) {
	tests := []struct {
		name    string
		running string // "": idle; "here": a prompt of this connection; "elsewhere": of another connection
	}{
		{"idle", ""},
		{"prompt running here", "here"},
		{"turn running elsewhere", "elsewhere"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, session.Config{})
			e.model.Default = func(agent.Request) agenttest.Step { return agenttest.Reply("after the close") }
			c := e.connect(t.Context())
			c.initialize()
			sid := c.newSession()
			closer := c
			var pid string
			if tc.running != "" {
				e.model.Push(agenttest.Step{Text: "partial ", Block: true})
				pid = c.request("session/prompt", textPrompt(sid, "long"))
				e.waitModelCalls(1)
			}
			if tc.running == "elsewhere" {
				closer = e.connect(t.Context())
				closer.initialize()
			}
			cid := closer.request("session/close", map[string]any{"sessionId": sid})
			var order []string
			for len(order) < 1 || (tc.running == "here" && len(order) < 2) {
				m := closer.read()
				switch {
				case m.method() != "":
				case m.id() == cid:
					if m.errCode() != 0 || m["result"] == nil {
						t.Fatalf("session/close = %v; want {}", m)
					}
					order = append(order, "close")
				case m.id() == pid:
					order = append(order, fmt.Sprint("prompt ", m.result()["stopReason"]))
				}
			}
			if tc.running == "here" && strings.Join(order, ", ") != "prompt cancelled, close" {
				t.Errorf("answers = %v; want the prompt's (cancelled) before the close's", order)
			}
			if tc.running == "elsewhere" {
				if _, resp := c.until(pid); resp.result()["stopReason"] != "cancelled" {
					t.Errorf("the other connection's prompt = %v; want cancelled", resp)
				}
			}
			sess, err := e.pool.Get(t.Context(), "acme", session.ID(sid))
			if err != nil {
				t.Fatal(err)
			}
			if tc.running != "" {
				if o := sess.Turns[0].Outcome; o.Status != agent.StatusCancelled || o.CancelReason != acp.ReasonSessionCancel {
					t.Errorf("outcome = %+v; want cancelled by %s", o, acp.ReasonSessionCancel)
				}
			}
			if res, before := closer.call("session/prompt", textPrompt(sid, "again")); res["stopReason"] != "end_turn" || agentText(before) != "after the close" {
				t.Errorf("prompt after close = %v %q", res, agentText(before))
			}
		})
	}
}

func TestCloseSessionErrors(t *testing.T) {
	e := newEnv(t, session.Config{})
	c := e.connect(t.Context())
	c.initialize()
	for _, tc := range []struct {
		params   map[string]any
		wantCode int
	}{
		{map[string]any{"sessionId": "sess_0123456789abcdef0123456789abcdef"}, acp.CodeNotFound},
		{map[string]any{}, acp.CodeInvalidParams},
		{map[string]any{"sessionId": true}, acp.CodeInvalidParams},
	} {
		code, err := c.callErr("session/close", tc.params)
		if code != tc.wantCode {
			t.Errorf("session/close(%v) = %d %v; want %d", tc.params, code, err, tc.wantCode)
		}
		if data, _ := err["data"].(map[string]any); tc.wantCode == acp.CodeNotFound && data["sessionId"] != tc.params["sessionId"] {
			t.Errorf("session/close(%v) data = %v; want the sessionId", tc.params, err["data"])
		}
	}
}

// TestPipelinedCancels: a session/cancel or session/close acts on what
// was read before it, never on a prompt read after it, even though the
// SDK handles them concurrently.
func TestPipelinedCancels(t *testing.T) {
	for _, method := range []string{"session/cancel", "session/close"} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t, session.Config{})
			e.model.Default = func(agent.Request) agenttest.Step { return agenttest.Reply("not cancelled") }
			c := e.connect(t.Context())
			c.initialize()
			sid := c.newSession()
			for i := range 20 {
				if method == "session/cancel" {
					c.notify(method, map[string]any{"sessionId": sid})
				} else {
					c.request(method, map[string]any{"sessionId": sid})
				}
				_, resp := c.until(c.request("session/prompt", textPrompt(sid, "go")))
				if resp.result()["stopReason"] != "end_turn" {
					t.Fatalf("round %d: prompt after %s = %v; want end_turn", i, method, resp)
				}
			}
		})
	}
}

// TestRequestIDs: a request with a null id is answered under null, and an
// id still in flight is refused.
func TestRequestIDs(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
	c := e.connect(t.Context())
	c.sendRaw(`{"jsonrpc":"2.0","id":null,"method":"initialize","params":{"protocolVersion":1}}`)
	if m := c.read(); m["id"] != nil || m.errCode() != 0 || m.result()["protocolVersion"] != float64(1) {
		t.Errorf("answer to a null id = %v; want the initialize result under id null", m)
	}
	sid := c.newSession()
	c.send(map[string]any{"jsonrpc": "2.0", "id": "p", "method": "session/prompt", "params": textPrompt(sid, "long")})
	e.waitModelCalls(1)
	c.send(map[string]any{"jsonrpc": "2.0", "id": "p", "method": "session/list", "params": map[string]any{}})
	if m := c.read(); m.id() != "p" || m.errCode() != acp.CodeInvalidRequest {
		t.Errorf("answer to an id in flight = %v; want -32600", m)
	}
	c.notify("session/cancel", map[string]any{"sessionId": sid})
	if m := c.read(); m.id() != "p" || m.result()["stopReason"] != "cancelled" {
		t.Errorf("prompt = %v; want cancelled", m)
	}
}

// TestCancelRequest: $/cancel_request of a running session/prompt cancels
// its turn, as session/cancel does; of another request it changes nothing.
func TestCancelRequest(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
	c := e.connect(t.Context())
	c.initialize()
	sid := c.newSession()
	pid := c.request("session/prompt", textPrompt(sid, "long"))
	e.waitModelCalls(1)
	c.notify("$/cancel_request", map[string]any{"requestId": 1}) // initialize's, long answered
	n, _ := strconv.Atoi(pid)
	c.notify("$/cancel_request", map[string]any{"requestId": n})
	if _, resp := c.until(pid); resp.result()["stopReason"] != "cancelled" {
		t.Fatalf("prompt = %v; want cancelled", resp)
	}
	sess, _ := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if o := sess.Turns[0].Outcome; o.CancelReason != acp.ReasonSessionCancel {
		t.Errorf("outcome = %+v; want cancelled by %s", o, acp.ReasonSessionCancel)
	}
}
