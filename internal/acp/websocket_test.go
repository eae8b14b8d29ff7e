package acp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
)

const wsKey = "acme-key-0123456789"

func wsServer(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	keys, err := tenant.Parse(wsKey + "=acme")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e.srv.Handler(keys))
	t.Cleanup(ts.Close)
	return ts
}

// wsClient is a minimal ACP client over WebSocket.
type wsClient struct {
	t    *testing.T
	c    *websocket.Conn
	next int
}

func dialWS(t *testing.T, url string, header http.Header) *wsClient {
	t.Helper()
	c, resp, err := websocket.Dial(t.Context(), strings.Replace(url, "http", "ws", 1), &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func (w *wsClient) request(method string, params any) string {
	w.t.Helper()
	w.next++
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": w.next, "method": method, "params": params})
	if err := w.c.Write(w.t.Context(), websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
	return fmt.Sprint(w.next)
}

func (w *wsClient) until(id string) ([]msg, msg) {
	w.t.Helper()
	var before []msg
	ctx, cancel := context.WithTimeout(w.t.Context(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("read: %v", err)
		}
		var m msg
		if err := json.Unmarshal(data, &m); err != nil {
			w.t.Fatalf("frame %q: %v", data, err)
		}
		if m.method() == "" && m.id() == id {
			return before, m
		}
		before = append(before, m)
	}
}

func TestWebSocketAuth(t *testing.T) {
	e := newEnv(t, session.Config{})
	ts := wsServer(t, e)
	for _, tc := range []struct {
		name   string
		method string
		header map[string]string
		query  string
		status int
		code   string
	}{
		{"no key", "GET", map[string]string{"X-Agentd-User": "alice"}, "", 401, "unauthorized"},
		{"unknown key", "GET", map[string]string{"Authorization": "Bearer nope-nope-nope-nope", "X-Agentd-User": "alice"}, "", 401, "unauthorized"},
		{"no user", "GET", map[string]string{"Authorization": "Bearer " + wsKey}, "", 400, "missing_user"},
		{"bad user", "GET", map[string]string{"Authorization": "Bearer " + wsKey}, "?user=a%01b", 400, "invalid_request"},
		{"POST", "POST", map[string]string{"Authorization": "Bearer " + wsKey}, "", 405, "method_not_allowed"},
		{"not a WebSocket", "GET", map[string]string{"Authorization": "Bearer " + wsKey}, "?user=alice", 426, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.query, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error struct{ Code string } }
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Error.Code != tc.code {
				t.Errorf("status %d code %q; want %d %q", resp.StatusCode, body.Error.Code, tc.status, tc.code)
			}
		})
	}
}

func TestWebSocketSession(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Reply("hello over the socket"), agenttest.Step{Block: true})
	ts := wsServer(t, e)
	w := dialWS(t, ts.URL+"?user=bob", http.Header{"Authorization": {"Bearer " + wsKey}})
	w.until(w.request("initialize", map[string]any{"protocolVersion": 1}))
	_, resp := w.until(w.request("session/new", map[string]any{"cwd": "/src", "mcpServers": []any{}}))
	sid, _ := resp.result()["sessionId"].(string)
	before, resp := w.until(w.request("session/prompt", textPrompt(sid, "hi")))
	if resp.result()["stopReason"] != "end_turn" || agentText(before) != "hello over the socket" {
		t.Fatalf("prompt = %v, text %q", resp, agentText(before))
	}
	sess, err := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if err != nil || sess.User != "bob" {
		t.Fatalf("session %+v, %v; want bob's (from the user query parameter)", sess, err)
	}

	// Closing the socket mid-turn cancels the turn ("connection-closed").
	w.request("session/prompt", textPrompt(sid, "long"))
	e.waitModelCalls(2)
	w.c.Close(websocket.StatusNormalClosure, "bye")
	waitFor(t, func() bool {
		s, err := e.pool.Get(t.Context(), "acme", session.ID(sid))
		return err == nil && len(s.Turns) == 2
	})
	s, _ := e.pool.Get(t.Context(), "acme", session.ID(sid))
	if o := s.Turns[1].Outcome; o.Status != agent.StatusCancelled || o.CancelReason != acp.ReasonConnectionClosed {
		t.Errorf("outcome = %+v; want cancelled by connection-closed", o)
	}
}

// TestWebSocketShutdown: Shutdown answers running prompts (cancelled), closes
// the sockets, and refuses new ones with 503.
func TestWebSocketShutdown(t *testing.T) {
	e := newEnv(t, session.Config{}, agenttest.Step{Block: true})
	ts := wsServer(t, e)
	header := http.Header{"Authorization": {"Bearer " + wsKey}, "X-Agentd-User": {"alice"}}
	w := dialWS(t, ts.URL, header)
	w.until(w.request("initialize", map[string]any{"protocolVersion": 1}))
	_, resp := w.until(w.request("session/new", map[string]any{"cwd": "/src", "mcpServers": []any{}}))
	sid := resp.result()["sessionId"].(string)
	pid := w.request("session/prompt", textPrompt(sid, "long"))
	e.waitModelCalls(1)
	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(t.Context()) }()
	if _, resp := w.until(pid); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("prompt = %v; want cancelled", resp)
	}
	// Keep reading, as a client does: the close handshake needs it.
	if _, _, err := w.c.Read(t.Context()); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after Shutdown, read = %v; want a normal closure", err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	_, resp2, err := websocket.Dial(t.Context(), strings.Replace(ts.URL, "http", "ws", 1), &websocket.DialOptions{HTTPHeader: header})
	if err == nil || resp2 == nil || resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial while shutting down = %v %v; want 503", err, resp2)
	}
}
