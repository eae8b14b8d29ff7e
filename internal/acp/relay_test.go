package acp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
)

// The fleet of these tests: replicas "a" and "b", each an acp.Server over
// its own pool and bbolt store, served over WebSocket by httptest. A
// directory says who owns which session (the forwarding helper's ids name
// their node; here the test fills the map after creating sessions on "a").

const globexKey = "globex-key-0123456789"

// directory is the fleet's membership and session owners, shared by the
// replicas' Fleet views.
type directory struct {
	mu     sync.Mutex
	urls   map[string]string
	owners map[session.ID]string
}

func (d *directory) own(id string, node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.owners[session.ID(id)] = node
}

func (d *directory) member(node, url string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.urls[node] = url
}

// fleetView is one replica's acp.Fleet.
type fleetView struct {
	self string
	d    *directory
}

func (f fleetView) Self() string { return f.self }

func (f fleetView) Owner(id session.ID) (string, string, bool) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	node, ok := f.d.owners[id]
	if !ok {
		node = f.self
	}
	url, ok := f.d.urls[node]
	return node, url, ok
}

func (f fleetView) Peers() map[string]string {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	peers := maps.Clone(f.d.urls)
	delete(peers, f.self)
	return peers
}

// upgrade is a WebSocket handshake a replica saw.
type upgrade struct {
	auth, user, forwardedBy string
}

// replica is an env served over WebSocket as a member of a fleet.
type replica struct {
	*env
	ts *httptest.Server

	mu       sync.Mutex
	upgrades []upgrade
	open     int // handlers running: connections open
}

func (r *replica) seen() ([]upgrade, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]upgrade(nil), r.upgrades...), r.open
}

func newReplica(t *testing.T, name string, d *directory, cfg session.Config, model func(agent.Request) agenttest.Step, steps ...agenttest.Step) *replica {
	t.Helper()
	e := newEnv(t, cfg, steps...)
	e.close()
	e.model.Default = model // before anything serves
	e.acp.Fleet = fleetView{self: name, d: d}
	e.open()
	keys, err := tenant.Parse(wsKey + "=acme," + globexKey + "=globex")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{env: e}
	h := e.srv.Handler(keys)
	r.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.upgrades = append(r.upgrades, upgrade{req.Header.Get("Authorization"), req.Header.Get("X-Agentd-User"), req.Header.Get(acp.ForwardedByHeader)})
		r.open++
		r.mu.Unlock()
		defer func() {
			r.mu.Lock()
			r.open--
			r.mu.Unlock()
		}()
		h.ServeHTTP(w, req)
	}))
	r.ts.Listener = &cutListener{Listener: r.ts.Listener}
	r.ts.Start()
	t.Cleanup(r.ts.Close)
	// Before the server and the store close, and before the test ends
	// (its logger with it): the clients are gone by now (their cleanups
	// run first), and the connections, relays included, follow.
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for _, open := r.seen(); open > 0; _, open = r.seen() {
			if time.Now().After(deadline) {
				t.Errorf("replica %s: %d connections still open 10s after the clients left", name, open)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	d.member(name, r.ts.URL)
	return r
}

// newFleet starts replicas "a" (with the model's steps) and "b".
func newFleet(t *testing.T, cfg session.Config, steps ...agenttest.Step) (a, b *replica, d *directory) {
	t.Helper()
	return newFleetModel(t, cfg, nil, steps...)
}

// newFleetModel is newFleet with a's model answering model(request) once
// the steps run out.
func newFleetModel(t *testing.T, cfg session.Config, model func(agent.Request) agenttest.Step, steps ...agenttest.Step) (a, b *replica, d *directory) {
	t.Helper()
	d = &directory{urls: map[string]string{}, owners: map[session.ID]string{}}
	a = newReplica(t, "a", d, cfg, model, steps...)
	b = newReplica(t, "b", d, cfg, nil)
	return a, b, d
}

// cutListener can cut every connection it accepted, hijacked ones too
// (httptest's CloseClientConnections forgets those): a replica that goes
// away from the network.
type cutListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *cutListener) cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

// peer is an ACP client over WebSocket that reads in the background.
type peer struct {
	t    *testing.T
	c    *websocket.Conn
	msgs chan msg
	next int
}

func dialPeer(t *testing.T, url, key, user string) *peer {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + key}, "X-Agentd-User": {user}}
	c, resp, err := websocket.Dial(t.Context(), strings.Replace(url, "http", "ws", 1), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c.SetReadLimit(-1)
	p := &peer{t: t, c: c, msgs: make(chan msg, 10000)}
	go func() {
		defer close(p.msgs)
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var m msg
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("frame %q is not JSON", data)
				continue
			}
			p.msgs <- m
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return p
}

func (p *peer) send(v any) {
	p.t.Helper()
	b, _ := json.Marshal(v)
	if err := p.c.Write(p.t.Context(), websocket.MessageText, b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) request(method string, params any) string {
	p.t.Helper()
	p.next++
	p.send(map[string]any{"jsonrpc": "2.0", "id": p.next, "method": method, "params": params})
	return fmt.Sprint(p.next)
}

func (p *peer) notify(method string, params any) {
	p.t.Helper()
	p.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

func (p *peer) read() msg {
	p.t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok {
			p.t.Fatal("the server closed the connection")
		}
		return m
	case <-time.After(10 * time.Second):
		p.t.Fatal("no message from the server in 10s")
	}
	return nil
}

func (p *peer) until(id string) ([]msg, msg) {
	p.t.Helper()
	var before []msg
	for {
		m := p.read()
		if m.method() == "" && m.id() == id {
			return before, m
		}
		before = append(before, m)
	}
}

func (p *peer) call(method string, params any) (map[string]any, []msg) {
	p.t.Helper()
	before, resp := p.until(p.request(method, params))
	if resp.errCode() != 0 {
		p.t.Fatalf("%s: error %v", method, resp["error"])
	}
	return resp.result(), before
}

func (p *peer) callErr(method string, params any) (int, map[string]any) {
	p.t.Helper()
	_, resp := p.until(p.request(method, params))
	e, _ := resp["error"].(map[string]any)
	if e == nil {
		p.t.Fatalf("%s = %v; want an error", method, resp)
	}
	return resp.errCode(), e
}

func (p *peer) initialize() {
	p.t.Helper()
	p.call("initialize", map[string]any{"protocolVersion": 1, "clientCapabilities": map[string]any{}, "clientInfo": map[string]any{"name": "relay-test", "version": "1"}})
}

// remoteSession creates a session of acme's alice on a, owned by a.
func remoteSession(t *testing.T, a *replica, d *directory) string {
	t.Helper()
	s, err := a.pool.Create(t.Context(), "acme", "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	d.own(string(s.ID), "a")
	return string(s.ID)
}

func loadParams(sid string) map[string]any {
	return map[string]any{"sessionId": sid, "cwd": "/home/alice/project", "mcpServers": []any{}}
}

// TestRelayLoad: session/load through b of a session a owns replays a's
// history, update for update as a itself does, then answers; b stores
// nothing, and a sees one relayed connection with the client's key and
// user, marked as forwarded by b.
func TestRelayLoad(t *testing.T) {
	a, b, d := newFleet(t, session.Config{},
		agenttest.Step{Text: "Let me look.", Reasoning: "need the file", ToolCalls: agenttest.Calls("read_file", `{"file_path":"a.txt"}`).ToolCalls},
		agenttest.Reply("It says hello."))
	pa := dialPeer(t, a.ts.URL, wsKey, "alice")
	pa.initialize()
	res, _ := pa.call("session/new", map[string]any{"cwd": "/src", "mcpServers": []any{}})
	sid := res["sessionId"].(string)
	d.own(sid, "a")
	if res, _ := pa.call("session/prompt", textPrompt(sid, "What is in a.txt?")); res["stopReason"] != "end_turn" {
		t.Fatalf("prompt on a = %v", res)
	}
	wantRes, wantUpdates := pa.call("session/load", loadParams(sid))
	if len(wantUpdates) < 5 {
		t.Fatalf("load on a replayed %d updates", len(wantUpdates))
	}

	pb := dialPeer(t, b.ts.URL, wsKey, "carol")
	pb.initialize()
	gotRes, gotUpdates := pb.call("session/load", loadParams(sid))
	if !reflect.DeepEqual(gotUpdates, wantUpdates) || !reflect.DeepEqual(gotRes, wantRes) {
		t.Errorf("load through b = %v, %v\nwant (as on a) %v, %v", gotRes, gotUpdates, wantRes, wantUpdates)
	}
	if _, err := b.pool.Get(t.Context(), "acme", session.ID(sid)); err == nil {
		t.Error("b has a copy of the session")
	}
	// A second request reuses the relay.
	pb.call("session/resume", map[string]any{"sessionId": sid, "cwd": "/src"})
	ups, _ := a.seen()
	want := []upgrade{{}, {"Bearer " + wsKey, "carol", "b"}}
	want[0] = ups[0]
	if !reflect.DeepEqual(ups, want) {
		t.Errorf("a saw upgrades %+v; want the client's, then one relay %+v", ups, want[1])
	}
	// The relay closes with the client's connection.
	pb.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, func() bool { _, open := a.seen(); return open == 1 })
}

// TestRelayPrompt: a prompt through b runs on a: its updates stream
// through b before its answer, and a stores the turn.
func TestRelayPrompt(t *testing.T) {
	a, b, d := newFleet(t, session.Config{},
		agenttest.Step{Text: "Let me look.", ToolCalls: agenttest.Calls("read_file", `{"file_path":"a.txt"}`).ToolCalls},
		agenttest.Reply("It says hello."),
		agenttest.Reply("Again."))
	sid := remoteSession(t, a, d)
	pb := dialPeer(t, b.ts.URL, wsKey, "alice")
	pb.initialize()
	res, before := pb.call("session/prompt", textPrompt(sid, "What is in a.txt?"))
	if res["stopReason"] != "end_turn" || agentText(before) != "Let me look.It says hello." {
		t.Fatalf("prompt through b = %v, text %q", res, agentText(before))
	}
	var kinds []string
	for _, u := range updatesOf(before) {
		kinds = append(kinds, u["sessionUpdate"].(string))
	}
	if !strings.Contains(strings.Join(kinds, " "), "tool_call tool_call_update") {
		t.Errorf("updates = %v; want the tool call", kinds)
	}
	sess, err := a.pool.Get(t.Context(), "acme", session.ID(sid))
	if err != nil || len(sess.Turns) != 1 || sess.Turns[0].Outcome.Status != agent.StatusOK {
		t.Fatalf("a's session = %+v, %v; want one completed turn", sess, err)
	}
	// The model switch and the next prompt go to a as well.
	res, _ = pb.call("session/set_config_option", map[string]any{"sessionId": sid, "configId": "model", "value": "m2"})
	if opt := res["configOptions"].([]any)[0].(map[string]any); opt["currentValue"] != "m2" {
		t.Errorf("set_config_option = %v", res)
	}
	if res, _ := pb.call("session/prompt", textPrompt(sid, "again")); res["stopReason"] != "end_turn" {
		t.Errorf("second prompt = %v", res)
	}
	if sess, _ := a.pool.Get(t.Context(), "acme", session.ID(sid)); sess.Model != "m2" || len(sess.Turns) != 2 {
		t.Errorf("a's session: model %q, %d turns; want m2, 2", sess.Model, len(sess.Turns))
	}
	if ups, _ := a.seen(); len(ups) != 1 {
		t.Errorf("a saw %d connections; want one relay", len(ups))
	}
}

// TestRelayCancel: every way of ending a prompt through b ends the turn
// on a, which records why; a prompt answers "cancelled" as a local one
// does.
func TestRelayCancel(t *testing.T) {
	tests := []struct {
		name   string
		cancel func(p *peer, sid, pid string) (after string) // a request answered after the prompt
		reason string
		answer bool // the prompt is answered "cancelled"
	}{
		{"session/cancel", func(p *peer, sid, _ string) string {
			p.notify("session/cancel", map[string]any{"sessionId": sid})
			return ""
		}, acp.ReasonSessionCancel, true},
		{"session/cancel as a request", func(p *peer, sid, _ string) string {
			p.request("session/cancel", map[string]any{"sessionId": sid})
			return ""
		}, acp.ReasonSessionCancel, true},
		{"$/cancel_request", func(p *peer, _, pid string) string {
			p.notify("$/cancel_request", map[string]any{"requestId": json.Number(pid)})
			return ""
		}, acp.ReasonSessionCancel, true},
		{"session/close", func(p *peer, sid, _ string) string {
			return p.request("session/close", map[string]any{"sessionId": sid})
		}, acp.ReasonSessionCancel, true},
		{"disconnect", func(p *peer, _, _ string) string {
			p.c.Close(websocket.StatusNormalClosure, "bye")
			return ""
		}, acp.ReasonConnectionClosed, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b, d := newFleet(t, session.Config{}, agenttest.Step{Text: "working", Block: true})
			sid := remoteSession(t, a, d)
			pb := dialPeer(t, b.ts.URL, wsKey, "alice")
			pb.initialize()
			pid := pb.request("session/prompt", textPrompt(sid, "long"))
			var streamed []msg
			for agentText(streamed) != "working" {
				streamed = append(streamed, pb.read())
			}
			after := tc.cancel(pb, sid, pid)
			if tc.answer {
				before, resp := pb.until(pid)
				if resp.result()["stopReason"] != "cancelled" {
					t.Errorf("prompt = %v; want cancelled", resp)
				}
				for _, m := range before {
					if after != "" && m.id() == after {
						t.Errorf("answered %v before the prompt", m)
					}
				}
				if after != "" {
					if _, resp := pb.until(after); resp.errCode() != 0 {
						t.Errorf("%s = %v", tc.name, resp)
					}
				}
			}
			waitFor(t, func() bool {
				s, err := a.pool.Get(t.Context(), "acme", session.ID(sid))
				return err == nil && len(s.Turns) == 1
			})
			s, _ := a.pool.Get(t.Context(), "acme", session.ID(sid))
			if o := s.Turns[0].Outcome; o.Status != agent.StatusCancelled || o.CancelReason != tc.reason {
				t.Errorf("a's outcome = %+v; want cancelled by %s", o, tc.reason)
			}
		})
	}
}

// TestRelayCancelOrder: a session/cancel cancels the prompt sent before
// it, never the one sent after it, also through a relay.
func TestRelayCancelOrder(t *testing.T) {
	// The first prompt may be cancelled before it reaches a.
	a, b, d := newFleetModel(t, session.Config{}, func(req agent.Request) agenttest.Step {
		if last := req.Messages[len(req.Messages)-1]; strings.Contains(last.Content, "one") {
			return agenttest.Step{Block: true}
		}
		return agenttest.Reply("second")
	})
	sid := remoteSession(t, a, d)
	pb := dialPeer(t, b.ts.URL, wsKey, "alice")
	pb.initialize()
	first := pb.request("session/prompt", textPrompt(sid, "one"))
	pb.notify("session/cancel", map[string]any{"sessionId": sid})
	if _, resp := pb.until(first); resp.result()["stopReason"] != "cancelled" {
		t.Fatalf("first prompt = %v; want cancelled", resp)
	}
	second := pb.request("session/prompt", textPrompt(sid, "two"))
	if _, resp := pb.until(second); resp.result()["stopReason"] != "end_turn" {
		t.Errorf("second prompt = %v; want end_turn", resp)
	}
}

// TestRelayPipelined: a prompt sent right after a session/load of its
// session runs after the replay and the load's response, through a relay
// as here.
func TestRelayPipelined(t *testing.T) {
	a, b, d := newFleet(t, session.Config{}, agenttest.Reply("first answer"), agenttest.Reply("second answer"))
	sid := remoteSession(t, a, d)
	pa := dialPeer(t, a.ts.URL, wsKey, "alice")
	pa.initialize()
	pa.call("session/prompt", textPrompt(sid, "first"))
	pb := dialPeer(t, b.ts.URL, wsKey, "alice")
	pb.initialize()
	load := pb.request("session/load", loadParams(sid))
	prompt := pb.request("session/prompt", textPrompt(sid, "second"))
	before, resp := pb.until(prompt)
	if resp.result()["stopReason"] != "end_turn" {
		t.Fatalf("prompt = %v", resp)
	}
	loadAt := -1
	for i, m := range before {
		if m.id() == load && m.method() == "" {
			loadAt = i
		}
	}
	if loadAt < 0 || agentText(before[:loadAt]) != "first answer" || agentText(before[loadAt:]) != "second answer" {
		t.Errorf("load answered at %d of %v; want after the replay, before the prompt's updates", loadAt, before)
	}
}

// TestRelayPermission: a permission request of a turn on a reaches the
// client through b, and its answer goes back to a; a request a withdraws
// is withdrawn from the client before what follows.
func TestRelayPermission(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		a, b, d := newFleet(t, session.Config{ApprovalTimeout: time.Hour},
			agenttest.Calls("run_shell_command", `{"command":"touch x.txt"}`), agenttest.Reply("done"))
		sid := remoteSession(t, a, d)
		pb := dialPeer(t, b.ts.URL, wsKey, "alice")
		pb.initialize()
		pid := pb.request("session/prompt", textPrompt(sid, "touch it"))
		var ask msg
		for m := pb.read(); ; m = pb.read() {
			if m.method() == "session/request_permission" {
				ask = m
				break
			}
		}
		p := ask.params()
		if !strings.HasPrefix(ask.id(), "srv_") || p["sessionId"] != sid || p["toolCall"].(map[string]any)["toolCallId"] != "call_0_run_shell_command" {
			t.Fatalf("permission request = %v", ask)
		}
		pb.send(map[string]any{"jsonrpc": "2.0", "id": ask.id(), "result": map[string]any{"outcome": "selected", "optionId": "allow_once"}}) // flattened
		before, resp := pb.until(pid)
		if resp.result()["stopReason"] != "end_turn" || agentText(before) != "done" {
			t.Errorf("prompt = %v, text %q", resp, agentText(before))
		}
		if len(a.shell.Calls()) != 1 {
			t.Errorf("the tool ran %d times on a; want once", len(a.shell.Calls()))
		}
	})
	t.Run("withdrawn", func(t *testing.T) {
		a, b, d := newFleet(t, session.Config{ApprovalTimeout: 200 * time.Millisecond},
			agenttest.Calls("run_shell_command", `{"command":"touch x.txt"}`), agenttest.Reply("gave up"))
		sid := remoteSession(t, a, d)
		pb := dialPeer(t, b.ts.URL, wsKey, "alice")
		pb.initialize()
		before, resp := pb.until(pb.request("session/prompt", textPrompt(sid, "touch it")))
		if resp.result()["stopReason"] != "end_turn" {
			t.Fatalf("prompt = %v", resp)
		}
		var asked, withdrawn string
		var after []string
		for _, m := range before {
			switch {
			case m.method() == "session/request_permission":
				asked = m.id()
			case m.method() == "$/cancel_request":
				withdrawn, _ = m.params()["requestId"].(string)
			case withdrawn == "" && asked != "" && m.update() != nil:
				after = append(after, fmt.Sprint(m.update()["sessionUpdate"], m.update()["status"]))
			}
		}
		if asked == "" || withdrawn != asked {
			t.Errorf("asked %q, withdrawn %q; want the request withdrawn", asked, withdrawn)
		}
		if len(after) != 0 {
			t.Errorf("updates between the request and its withdrawal: %v", after)
		}
		if len(a.shell.Calls()) != 0 {
			t.Error("the tool ran")
		}
	})
}

// TestRelayTenants: the owner authenticates the client's key again and
// applies its tenant rules: another tenant's session is not found
// through the relay; an id whose owner is no member is not found either.
func TestRelayTenants(t *testing.T) {
	a, b, d := newFleet(t, session.Config{})
	other, err := a.pool.Create(t.Context(), "globex", "mallory", "")
	if err != nil {
		t.Fatal(err)
	}
	d.own(string(other.ID), "a")
	orphan := session.NewID(time.Now(), "")
	d.own(string(orphan), "gone")
	pb := dialPeer(t, b.ts.URL, wsKey, "alice")
	pb.initialize()
	for _, sid := range []string{string(other.ID), string(orphan)} {
		for _, req := range []struct {
			method string
			params map[string]any
		}{
			{"session/load", loadParams(sid)},
			{"session/resume", map[string]any{"sessionId": sid, "cwd": "/"}},
			{"session/prompt", textPrompt(sid, "hi")},
			{"session/set_config_option", map[string]any{"sessionId": sid, "configId": "model", "value": "m2"}},
			{"session/cancel", map[string]any{"sessionId": sid}},
			{"session/close", map[string]any{"sessionId": sid}},
		} {
			code, e := pb.callErr(req.method, req.params)
			data, _ := e["data"].(map[string]any)
			if code != acp.CodeNotFound || data["sessionId"] != sid {
				t.Errorf("%s of %s through b = %d %v; want -32002", req.method, sid, code, e)
			}
		}
	}
	if s, _ := a.pool.Get(t.Context(), "globex", other.ID); len(s.Turns) != 0 {
		t.Error("acme's key ran a turn in globex's session")
	}
	// globex's own key reaches it.
	pg := dialPeer(t, b.ts.URL, globexKey, "mallory")
	pg.initialize()
	pg.call("session/resume", map[string]any{"sessionId": string(other.ID), "cwd": "/"})
}

// TestRelayOwnerUnavailable: an owner that cannot be reached is
// owner_unavailable, never "not found"; a relayed connection does not
// relay again, and stdio serves this replica's sessions only.
func TestRelayOwnerUnavailable(t *testing.T) {
	_, b, d := newFleet(t, session.Config{})
	down := httptest.NewServer(http.NotFoundHandler())
	d.member("c", down.URL)
	down.Close() // a member whose address refuses connections
	sid := session.NewID(time.Now(), "")
	d.own(string(sid), "c")
	a2 := session.NewID(time.Now(), "")
	d.own(string(a2), "a")

	check := func(t *testing.T, code int, e map[string]any, node string) {
		t.Helper()
		data, _ := e["data"].(map[string]any)
		if code != acp.CodeOwnerUnavailable || data["code"] != "owner_unavailable" || data["node"] != node {
			t.Errorf("error = %d %v; want %d owner_unavailable naming %s", code, e, acp.CodeOwnerUnavailable, node)
		}
	}
	pb := dialPeer(t, b.ts.URL, wsKey, "alice")
	pb.initialize()
	for _, req := range []struct {
		method string
		params map[string]any
	}{
		{"session/load", loadParams(string(sid))},
		{"session/resume", map[string]any{"sessionId": string(sid), "cwd": "/"}},
		{"session/prompt", textPrompt(string(sid), "hi")},
		{"session/set_config_option", map[string]any{"sessionId": string(sid), "configId": "model", "value": "m2"}},
		{"session/cancel", map[string]any{"sessionId": string(sid)}},
		{"session/close", map[string]any{"sessionId": string(sid)}},
	} {
		t.Run(req.method, func(t *testing.T) {
			code, e := pb.callErr(req.method, req.params)
			check(t, code, e, "c")
		})
	}
	t.Run("forwarded already", func(t *testing.T) {
		h := http.Header{"Authorization": {"Bearer " + wsKey}, "X-Agentd-User": {"alice"}, acp.ForwardedByHeader: {"a"}}
		c, _, err := websocket.Dial(t.Context(), strings.Replace(b.ts.URL, "http", "ws", 1), &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		w := &wsClient{t: t, c: c}
		w.until(w.request("initialize", map[string]any{"protocolVersion": 1}))
		_, resp := w.until(w.request("session/load", loadParams(string(a2))))
		e, _ := resp["error"].(map[string]any)
		check(t, resp.errCode(), e, "a")
	})
	t.Run("stdio", func(t *testing.T) {
		c := connectServer(t, b.srv, t.Context(), 0)
		c.initialize()
		code, e := c.callErr("session/load", loadParams(string(a2)))
		check(t, code, e, "a")
	})
}

// TestRelayOwnerGoesAway: a prompt whose owner goes away mid-turn is
// owner_unavailable; once the owner is back, the session is served
// again on the same connection.
func TestRelayOwnerGoesAway(t *testing.T) {
	a, b, d := newFleet(t, session.Config{}, agenttest.Step{Block: true}, agenttest.Reply("back"))
	sid := remoteSession(t, a, d)
	pb := dialPeer(t, b.ts.URL, wsKey, "alice")
	pb.initialize()
	pid := pb.request("session/prompt", textPrompt(sid, "long"))
	a.waitModelCalls(1)
	a.ts.Listener.(*cutListener).cut()
	_, resp := pb.until(pid)
	if e, _ := resp["error"].(map[string]any); resp.errCode() != acp.CodeOwnerUnavailable || e["data"].(map[string]any)["node"] != "a" {
		t.Fatalf("prompt = %v; want owner_unavailable", resp)
	}
	// a's side of the relay ends once the turn it ran is saved.
	waitFor(t, func() bool { _, open := a.seen(); return open == 0 })
	if res, _ := pb.call("session/prompt", textPrompt(sid, "again")); res["stopReason"] != "end_turn" {
		t.Errorf("prompt after the owner came back = %v", res)
	}
}

// TestRelayShutdown: Shutdown of the relaying replica answers a relayed
// prompt "cancelled" and the owner cancels the turn.
func TestRelayShutdown(t *testing.T) {
	a, b, d := newFleet(t, session.Config{}, agenttest.Step{Block: true})
	sid := remoteSession(t, a, d)
	pb := dialPeer(t, b.ts.URL, wsKey, "alice")
	pb.initialize()
	pid := pb.request("session/prompt", textPrompt(sid, "long"))
	a.waitModelCalls(1)
	shut := make(chan error, 1)
	go func() { shut <- b.srv.Shutdown(t.Context()) }()
	if _, resp := pb.until(pid); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("prompt = %v; want cancelled", resp)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s, err := a.pool.Get(t.Context(), "acme", session.ID(sid))
		return err == nil && len(s.Turns) == 1 && s.Turns[0].Outcome.Status == agent.StatusCancelled
	})
}
