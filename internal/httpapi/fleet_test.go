package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
	"github.com/agentd/agentd/internal/tenant"
)

// members is a static membership shared by the nodes of a test fleet.
type members struct {
	mu   sync.Mutex
	urls map[string]string // name -> base URL
}

func (m *members) set(name, url string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.urls[name] = url
}

// staticFleet is one node's view of members: httpapi.Fleet as
// internal/fleet implements it, without a handoff directory.
type staticFleet struct {
	self string
	m    *members
}

var _ httpapi.Fleet = staticFleet{}

func (f staticFleet) Self() string { return f.self }

func (f staticFleet) Owner(id session.ID) (string, string, bool) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	url, ok := f.m.urls[id.Node()]
	return id.Node(), url, ok
}

func (f staticFleet) Peers() map[string]string {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	out := map[string]string{}
	for name, url := range f.m.urls {
		if name != f.self {
			out[name] = url
		}
	}
	return out
}

// fleetNode is one replica: its own bbolt file, pool and HTTP API, talking
// to the fleet's fake LLM.
type fleetNode struct {
	name string
	api  *httpapi.Server
	pool *session.Pool
	srv  *httptest.Server
	url  string

	mu   sync.Mutex
	seen []*http.Request // every request that reached this node, headers only
}

func (n *fleetNode) requests() []*http.Request {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.seen)
}

// handler records what reaches the node, then serves it.
func (n *fleetNode) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		n.seen = append(n.seen, &http.Request{Method: r.Method, URL: r.URL, Header: r.Header.Clone()})
		n.mu.Unlock()
		n.api.ServeHTTP(w, r)
	})
}

// restart serves the node again on its old address, after close.
func (n *fleetNode) restart(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", strings.TrimPrefix(n.url, "http://"))
	if err != nil {
		t.Fatalf("listen again on %s: %v", n.url, err)
	}
	n.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: n.handler()}}
	n.srv.Start()
	t.Cleanup(n.srv.Close)
}

type testFleet struct {
	t     testing.TB
	llm   *llmtest.Server
	nodes map[string]*fleetNode
}

// newTestFleet starts one node per name, each a member of the same static
// fleet, with a fake OpenAI server behind them all. Tool "guarded" asks
// for approval; "echo" is allowed.
func newTestFleet(t testing.TB, names ...string) *testFleet {
	t.Helper()
	fake := llmtest.NewServer(t)
	logger := func(name string) *zap.Logger { return zaptest.NewLogger(t).Named(name) }
	if _, bench := t.(*testing.B); bench {
		fake.KeepRequests(false)
		logger = func(string) *zap.Logger { return zap.NewNop() }
	}
	m := &members{urls: map[string]string{}}
	f := &testFleet{t: t, llm: fake, nodes: map[string]*fleetNode{}}
	keys, err := tenant.Parse(acmeKey + "=acme," + globexKey + "=globex")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		dir := t.TempDir()
		db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		client, err := llm.NewClient(llm.Config{BaseURL: fake.URL(), APIKey: "sk-test", MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		run := func(_ context.Context, c agent.Call) (string, error) {
			return c.Name + " ran with " + string(c.Args), nil
		}
		guarded := agenttest.NewTool("guarded", run)
		guarded.Def.Confirm = true
		tools := []agent.Tool{agenttest.NewTool("echo", run), guarded}
		pool, err := session.NewPool(db.Sessions(), agent.New(client, agent.Config{}), (&sessiontest.Hooks{
			AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{Model: "stable"}, nil },
			ToolsFn:  func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return tools, nil, nil },
			CheckModelFn: func(m string) error {
				if m != "stable" && m != "bigger" {
					return fmt.Errorf("%w: model %q is not in the catalog", session.ErrInvalid, m)
				}
				return nil
			},
			PermitFn: func(_ *session.Session, c agent.Call, _ agent.ToolSpec) session.Permit {
				if c.Name == "guarded" {
					return session.Permit{Action: session.ActionAsk, Why: "test rule"}
				}
				return session.Permit{Action: session.ActionAllow}
			},
		}).Pool(), session.Config{Dir: filepath.Join(dir, "ws"), Node: name, Logger: logger(name)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pool.Close() })
		n := &fleetNode{name: name, pool: pool}
		n.api = httpapi.New(pool, keys, httpapi.Config{
			MaxBodyBytes: 4096, Logger: logger(name), Heartbeat: time.Hour,
			Fleet: staticFleet{self: name, m: m},
		})
		n.srv = httptest.NewUnstartedServer(nil)
		n.srv.Config = n.api.HTTPServer()
		n.srv.Config.Handler = n.handler()
		n.srv.Start()
		t.Cleanup(n.srv.Close)
		n.url = n.srv.URL
		m.set(name, n.url)
		f.nodes[name] = n
	}
	return f
}

// do sends a request to node with acme's key and user alice unless headers
// say otherwise ("" deletes one).
func (f *testFleet) do(node, method, path, key, body string, headers ...string) reply {
	f.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, f.nodes[node].url+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set(httpapi.UserHeader, "alice")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, raw: string(data)}
	_ = json.Unmarshal(data, &r.body)
	return r
}

func (f *testFleet) create(node, key string) string {
	f.t.Helper()
	r := f.do(node, "POST", "/v1/sessions", key, "")
	if r.status != http.StatusCreated {
		f.t.Fatalf("create on %s = %d %s", node, r.status, r.raw)
	}
	if got := r.header.Get(httpapi.OwnerHeader); got != node {
		f.t.Errorf("create on %s: %s = %q; want %q", node, httpapi.OwnerHeader, got, node)
	}
	return r.body["id"].(string)
}

// forwarded returns the requests node received forwarded by b.
func (f *testFleet) forwarded(node string) []*http.Request {
	var out []*http.Request
	for _, r := range f.nodes[node].requests() {
		if r.Header.Get(httpapi.ForwardedByHeader) == "b" {
			out = append(out, r)
		}
	}
	return out
}

// TestForwardedSessionLifecycle: a session created on a is used through b
// for everything a client does with it, and every answer names a as the
// owner, exactly as if the client had asked a.
func TestForwardedSessionLifecycle(t *testing.T) {
	f := newTestFleet(t, "a", "b")
	id := f.create("a", acmeKey)
	if session.ID(id).Node() != "a" {
		t.Fatalf("id %s does not name node a", id)
	}
	p := "/v1/sessions/" + id
	steps := []struct {
		name, method, path, body string
		status                   int
		check                    func(t *testing.T, r reply)
	}{
		{"read", "GET", p, "", 200, func(t *testing.T, r reply) {
			if r.body["id"] != id || r.body["tenant"] != "acme" {
				t.Errorf("got %s", r.raw)
			}
		}},
		{"JSON turn", "POST", p + "/messages", `{"content":"hello there"}`, 200, func(t *testing.T, r reply) {
			if r.body["reply"] != "echo: hello there" || r.body["outcome"].(map[string]any)["status"] != "ok" {
				t.Errorf("turn = %s", r.raw)
			}
		}},
		{"model switch", "PUT", p + "/model", `{"model":"bigger"}`, 200, func(t *testing.T, r reply) {
			if r.body["model"] != "bigger" {
				t.Errorf("switch = %s", r.raw)
			}
		}},
		{"bad model is refused by the owner", "PUT", p + "/model", `{"model":"gpt-9"}`, 400, nil},
		{"history kept", "GET", p, "", 200, func(t *testing.T, r reply) {
			if len(r.body["messages"].([]any)) != 2 || r.body["model"] != "bigger" {
				t.Errorf("session = %s; want 2 messages on bigger", r.raw)
			}
		}},
		{"cancel with nothing running", "POST", p + "/cancel", "", 200, func(t *testing.T, r reply) {
			if r.body["cancelled"] != false {
				t.Errorf("cancel = %s", r.raw)
			}
		}},
		{"clear", "POST", p + "/clear", "", 200, nil},
		{"cleared", "GET", p, "", 200, func(t *testing.T, r reply) {
			if len(r.body["messages"].([]any)) != 0 {
				t.Errorf("messages after clear = %v", r.body["messages"])
			}
		}},
		{"approval of no such call", "POST", p + "/approvals/call_nope", `{"decision":"allow_once"}`, 404, nil},
		{"unknown route under the session stays local", "GET", p + "/nope", "", 404, nil},
		{"delete", "DELETE", p, "", 204, nil},
		{"deleted", "GET", p, "", 404, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := f.do("b", st.method, st.path, acmeKey, st.body)
			if r.status != st.status {
				t.Fatalf("%s %s through b = %d %s; want %d", st.method, st.path, r.status, r.raw, st.status)
			}
			if got := r.header.Get(httpapi.OwnerHeader); got != "a" && st.name != "unknown route under the session stays local" {
				t.Errorf("%s = %q; want a", httpapi.OwnerHeader, got)
			}
			if n := len(r.header.Values(httpapi.OwnerHeader)); n > 1 {
				t.Errorf("%d %s headers; want one", n, httpapi.OwnerHeader)
			}
			if st.check != nil {
				st.check(t, r)
			}
		})
	}
	// What a received: the caller's key and user, and who forwarded it.
	fwd := f.forwarded("a")
	if len(fwd) == 0 {
		t.Fatal("a received no forwarded request")
	}
	for _, r := range fwd {
		if r.Header.Get(httpapi.ForwardedByHeader) != "b" || r.Header.Get("Authorization") != "Bearer "+acmeKey || r.Header.Get(httpapi.UserHeader) != "alice" {
			t.Errorf("forwarded %s %s carried %v; want b's name, acme's key and alice", r.Method, r.URL.Path, r.Header)
		}
	}
	// b served nothing of it itself: it has no such session.
	if _, err := f.nodes["b"].pool.Get(t.Context(), "acme", session.ID(id)); err == nil {
		t.Error("b holds a copy of a's session")
	}
}

// TestForwardedApproval: a turn on a that asks for approval is answered
// through b, and the turn goes on on a.
func TestForwardedApproval(t *testing.T) {
	f := newTestFleet(t, "a", "b")
	id := f.create("a", acmeKey)
	p := "/v1/sessions/" + id
	turn := make(chan reply, 1)
	go func() { turn <- f.do("b", "POST", p+"/messages", acmeKey, `{"content":"[[tool guarded {\"x\":1}]]"}`) }()
	var call string
	waitFor(t, func() bool {
		r := f.do("b", "GET", p, acmeKey, "")
		if pending, _ := r.body["pending_approvals"].([]any); len(pending) == 1 {
			call, _ = pending[0].(map[string]any)["call_id"].(string)
		}
		return call != ""
	})
	r := f.do("b", "POST", p+"/approvals/"+call, acmeKey, `{"decision":"allow_once"}`)
	if r.status != 200 || r.header.Get(httpapi.OwnerHeader) != "a" {
		t.Fatalf("approve through b = %d %s", r.status, r.raw)
	}
	r = <-turn
	if r.status != 200 || !strings.Contains(r.body["reply"].(string), "guarded ran with") {
		t.Errorf("turn after approval = %d %s; want the tool's result", r.status, r.raw)
	}
}

// sseReader reads Server-Sent Events one at a time.
type sseReader struct{ sc *bufio.Scanner }

func (s *sseReader) next() (string, map[string]any, bool) {
	var name string
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
			return name, d, true
		}
	}
	return "", nil, false
}

func (f *testFleet) stream(ctx context.Context, node, id, content string) (*http.Response, *sseReader) {
	f.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", f.nodes[node].url+"/v1/sessions/"+id+"/messages", strings.NewReader(`{"content":`+fmt.Sprintf("%q", content)+`}`))
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, &sseReader{bufio.NewScanner(resp.Body)}
}

// TestForwardedStream: an SSE turn through b arrives as a stream (events
// come while the turn still runs on a), a cancel through b ends it, and a
// client that hangs up on b cancels the turn on a (client-disconnected).
func TestForwardedStream(t *testing.T) {
	f := newTestFleet(t, "a", "b")
	a := f.nodes["a"]
	t.Run("complete", func(t *testing.T) {
		id := f.create("a", acmeKey)
		resp, events := f.stream(t.Context(), "b", id, "stream me")
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get(httpapi.OwnerHeader) != "a" {
			t.Errorf("headers = %v", resp.Header)
		}
		var names []string
		var text strings.Builder
		for {
			name, d, ok := events.next()
			if !ok {
				break
			}
			names = append(names, name)
			if name == "llm_text" {
				text.WriteString(d["data"].(map[string]any)["chunk"].(string))
			}
			if name == "done" && d["reply"] != "echo: stream me" {
				t.Errorf("done = %v", d)
			}
		}
		if len(names) == 0 || names[len(names)-1] != "done" || !slices.Contains(names, "turn_begin") || text.String() != "echo: stream me" {
			t.Errorf("events = %v, text %q; want turn_begin ... done", names, text.String())
		}
	})
	t.Run("events come while the turn runs, and a cancel through b ends it", func(t *testing.T) {
		id := f.create("a", acmeKey)
		resp, events := f.stream(t.Context(), "b", id, "[[hang]]")
		defer resp.Body.Close()
		// The model hangs until the turn ends: whatever arrives now came
		// while the turn runs.
		for name := ""; name != agent.EventLLMCallStarted; {
			var ok bool
			if name, _, ok = events.next(); !ok || name == "done" {
				t.Fatalf("stream ended (%q) before the turn's LLM call", name)
			}
		}
		if _, running := a.pool.Live(); running != 1 {
			t.Fatalf("a runs %d turns; want the streamed one", running)
		}
		if r := f.do("b", "POST", "/v1/sessions/"+id+"/cancel", acmeKey, ""); r.status != 200 || r.body["cancelled"] != true {
			t.Fatalf("cancel through b = %d %s", r.status, r.raw)
		}
		var last map[string]any
		for {
			name, d, ok := events.next()
			if !ok {
				break
			}
			if name == "done" {
				last = d
			}
		}
		if o, _ := last["outcome"].(map[string]any); o["status"] != "cancelled" || o["cancel_reason"] != "user-cancel" {
			t.Errorf("done = %v; want cancelled by user-cancel", last)
		}
	})
	t.Run("a client that hangs up on b cancels the turn on a", func(t *testing.T) {
		id := f.create("a", acmeKey)
		ctx, hangUp := context.WithCancel(t.Context())
		resp, events := f.stream(ctx, "b", id, "[[hang]]")
		for name := ""; name != agent.EventLLMCallStarted; {
			var ok bool
			if name, _, ok = events.next(); !ok {
				t.Fatal("stream ended early")
			}
		}
		hangUp()
		resp.Body.Close()
		waitFor(t, func() bool { _, running := a.pool.Live(); return running == 0 })
		s, err := a.pool.Get(t.Context(), "acme", session.ID(id))
		if err != nil {
			t.Fatal(err)
		}
		if o := s.Turns[len(s.Turns)-1].Outcome; o.Status != agent.StatusCancelled || o.CancelReason != agent.ReasonClientDisconnected {
			t.Errorf("turn on a after the hang-up on b = %+v; want cancelled by client-disconnected", o)
		}
	})
}

// TestForwardingRefusals: what b answers when it cannot or must not forward,
// and what a hostile tenant gets from ids and headers of its own making.
func TestForwardingRefusals(t *testing.T) {
	f := newTestFleet(t, "a", "b", "c")
	id := f.create("a", acmeKey)
	hex := strings.TrimPrefix(strings.TrimSuffix(id, "_a"), "sess_")
	p := "/v1/sessions/" + id
	tests := []struct {
		name, node, method, path, key, body string
		headers                             []string
		status                              int
		code, owner                         string
		reachesA                            bool
	}{
		{"another tenant through b: 404 like on a", "b", "GET", p, globexKey, "", nil, 404, "not_found", "a", true},
		{"another tenant on a", "a", "GET", p, globexKey, "", nil, 404, "not_found", "a", false},
		{"another tenant's turn through b", "b", "POST", p + "/messages", globexKey, `{"content":"x"}`, nil, 404, "not_found", "a", true},
		{"another tenant's delete through b", "b", "DELETE", p, globexKey, "", nil, 404, "not_found", "a", true},
		{"another tenant's approval through b", "b", "POST", p + "/approvals/x", globexKey, `{"decision":"allow_once"}`, nil, 404, "not_found", "a", true},
		{"an unknown key is refused by b itself", "b", "GET", p, "not-a-key-at-all-0000", "", nil, 401, "unauthorized", "", false},
		{"no key is refused by b itself", "b", "GET", p, "", "", []string{"Authorization", ""}, 401, "unauthorized", "", false},
		{"a node that is not a member: 404", "b", "GET", "/v1/sessions/sess_" + hex + "_zz", acmeKey, "", nil, 404, "not_found", "", false},
		{"a node named like an address: 404", "b", "GET", "/v1/sessions/sess_" + hex + "_127.0.0.1", acmeKey, "", nil, 404, "not_found", "", false},
		{"a host and port in the id: not an id", "b", "GET", "/v1/sessions/sess_" + hex + "_evil.example:80", acmeKey, "", nil, 404, "not_found", "", false},
		{"user info in the id: not an id", "b", "GET", "/v1/sessions/sess_" + hex + "_a@evil.example", acmeKey, "", nil, 404, "not_found", "", false},
		{"a path in the id: not an id", "b", "GET", "/v1/sessions/sess_" + hex + "_a%2F..%2F..%2Fcluster%2Fv1%2Fraft", acmeKey, "", nil, 404, "not_found", "", false},
		{"a forged forwarded header does not make b serve a's session", "b", "GET", p, acmeKey, "", []string{httpapi.ForwardedByHeader, "a"}, 503, "owner_unavailable", "a", false},
		{"a forged forwarded header on the owner changes nothing", "a", "GET", p, acmeKey, "", []string{httpapi.ForwardedByHeader, "c"}, 200, "", "a", false},
		{"a forged forwarded header does not open another tenant's session", "a", "GET", p, globexKey, "", []string{httpapi.ForwardedByHeader, "c"}, 404, "not_found", "a", false},
		{"a traversal in an approval id stays a session route on a", "b", "POST", p + "/approvals/..%2F..%2F..%2Fadmin%2Fcanary", acmeKey, `{"decision":"allow_once"}`, nil, 404, "not_found", "a", true},
		{"a body over the limit is refused by b", "b", "POST", p + "/messages", acmeKey, `{"content":"` + strings.Repeat("x", 5000) + `"}`, nil, 413, "body_too_large", "a", false},
		{"an upgrade is not forwarded", "b", "GET", p, acmeKey, "", []string{"Connection", "Upgrade", "Upgrade", "agentd-raft/1"}, 200, "", "a", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.forwarded("a"))
			r := f.do(tc.node, tc.method, tc.path, tc.key, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("%s %s on %s = %d %s; want %d", tc.method, tc.path, tc.node, r.status, r.raw, tc.status)
			}
			if tc.code != "" && errCode(r) != tc.code {
				t.Errorf("error = %s; want %s", r.raw, tc.code)
			}
			if got := r.header.Get(httpapi.OwnerHeader); got != tc.owner {
				t.Errorf("%s = %q; want %q", httpapi.OwnerHeader, got, tc.owner)
			}
			fwd := f.forwarded("a")
			if reached := len(fwd) > before; reached != tc.reachesA {
				t.Errorf("forwarded to a: %v; want %v", reached, tc.reachesA)
			}
			if len(fwd) > before {
				last := fwd[len(fwd)-1]
				if last.Header.Get("Upgrade") != "" || strings.Contains(strings.ToLower(last.Header.Get("Connection")), "upgrade") {
					t.Errorf("a received an upgrade: %v", last.Header)
				}
				if !strings.HasPrefix(last.URL.Path, "/v1/sessions/"+id) {
					t.Errorf("a received %s; want a route of the session", last.URL.Path)
				}
			}
		})
	}
	// Nothing above touched the session.
	if r := f.do("a", "GET", p, acmeKey, ""); r.status != 200 || len(r.body["messages"].([]any)) != 0 {
		t.Errorf("session after the refusals = %d %s; want untouched", r.status, r.raw)
	}
	// A forged forwarded header on a listing only narrows the caller's own
	// listing to that replica.
	f.create("b", acmeKey)
	r := f.do("b", "GET", "/v1/sessions", acmeKey, "", httpapi.ForwardedByHeader, "a")
	if list := r.body["sessions"].([]any); r.status != 200 || len(list) != 1 || list[0].(map[string]any)["id"] == id {
		t.Errorf("list on b with a forged header = %s; want b's one session", r.raw)
	}
}

// TestOwnerDown: while a is down its sessions answer 503 owner_unavailable
// with Retry-After through b, never 404; once a is back they are served
// again.
func TestOwnerDown(t *testing.T) {
	f := newTestFleet(t, "a", "b")
	id := f.create("a", acmeKey)
	p := "/v1/sessions/" + id
	if r := f.do("b", "GET", p, acmeKey, ""); r.status != 200 {
		t.Fatalf("before: %d %s", r.status, r.raw) // leaves a kept-alive connection to a in b's pool
	}
	f.nodes["a"].srv.Close()
	for _, rq := range []struct{ method, path, body string }{
		{"GET", p, ""},
		{"POST", p + "/messages", `{"content":"hi"}`},
		{"POST", p + "/cancel", ""},
		{"DELETE", p, ""},
	} {
		r := f.do("b", rq.method, rq.path, acmeKey, rq.body)
		if r.status != 503 || errCode(r) != "owner_unavailable" || r.header.Get("Retry-After") != "5" || r.header.Get(httpapi.OwnerHeader) != "a" {
			t.Errorf("%s %s with a down = %d %v %s; want 503 owner_unavailable, Retry-After 5, owner a", rq.method, rq.path, r.status, r.header, r.raw)
		}
		if msg := r.body["error"].(map[string]any)["message"].(string); !strings.Contains(msg, `"a"`) || strings.Contains(msg, "127.0.0.1") {
			t.Errorf("message %q; want the node named, not its address", msg)
		}
	}
	f.nodes["a"].restart(t)
	if r := f.do("b", "GET", p, acmeKey, ""); r.status != 200 || r.body["id"] != id {
		t.Errorf("once a is back = %d %s; want the session", r.status, r.raw)
	}
}

// TestFleetList: GET /v1/sessions lists the tenant's sessions on every
// member, newest first, in pages that cross members; a member that does not
// answer is named rather than failing the list.
func TestFleetList(t *testing.T) {
	f := newTestFleet(t, "a", "b", "c")
	var all []string
	for i := range 7 {
		all = append(all, f.create([]string{"a", "b", "c"}[i%3], acmeKey))
	}
	f.create("b", globexKey)
	// Newest first: ids sort by creation time (sessions made in the same
	// millisecond by their random part, on every replica alike).
	slices.Sort(all)
	slices.Reverse(all)
	ids := func(r reply) []string {
		var out []string
		for _, s := range r.body["sessions"].([]any) {
			out = append(out, s.(map[string]any)["id"].(string))
		}
		return out
	}
	for _, node := range []string{"a", "b", "c"} {
		r := f.do(node, "GET", "/v1/sessions", acmeKey, "")
		if got := ids(r); r.status != 200 || !slices.Equal(got, all) || r.body["unavailable"] != nil || r.body["next_cursor"] != nil {
			t.Errorf("list on %s = %d %v; want %v, complete", node, r.status, got, all)
		}
	}
	// Pages of 3 through b cover every session once, in order.
	var paged []string
	for cursor, pages := "", 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := f.do("b", "GET", "/v1/sessions?limit=3&cursor="+cursor, acmeKey, "")
		page := ids(r)
		if len(page) > 3 {
			t.Fatalf("page of %d; want at most 3", len(page))
		}
		paged = append(paged, page...)
		next, _ := r.body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged = %v; want %v", paged, all)
	}
	if r := f.do("c", "GET", "/v1/sessions", globexKey, ""); len(ids(r)) != 1 {
		t.Errorf("globex's list = %s; want its one session", r.raw)
	}
	// c is down: the list still answers, naming it.
	f.nodes["c"].srv.Close()
	r := f.do("a", "GET", "/v1/sessions", acmeKey, "")
	var want []string
	for _, id := range all {
		if session.ID(id).Node() != "c" {
			want = append(want, id)
		}
	}
	if got := ids(r); r.status != 200 || !slices.Equal(got, want) {
		t.Errorf("list with c down = %d %v; want %v", r.status, got, want)
	}
	if u, _ := r.body["unavailable"].([]any); len(u) != 1 || u[0] != "c" {
		t.Errorf("unavailable = %v; want [c]", r.body["unavailable"])
	}
}

// TestNoFleetNoOwnerHeader: a server without a fleet answers as before: no
// owner header, and a forwarded header changes nothing.
func TestNoFleetNoOwnerHeader(t *testing.T) {
	f := newFixture(t)
	id := f.create(acmeKey)
	for _, r := range []reply{
		f.do("GET", "/v1/sessions/"+id, acmeKey, ""),
		f.do("GET", "/v1/sessions/"+id, acmeKey, "", httpapi.ForwardedByHeader, "x"),
		f.do("GET", "/v1/sessions", acmeKey, ""),
	} {
		if r.status != 200 || r.header.Get(httpapi.OwnerHeader) != "" || strings.Contains(r.raw, "unavailable") {
			t.Errorf("= %d %v %s; want today's answer", r.status, r.header, r.raw)
		}
	}
}

// TestShutdownEndsForwardedTurns: a replica that shuts down ends the turns
// it relays like its own (their owner sees the client go) instead of
// waiting for them, and answers no new forwarded turn.
func TestShutdownEndsForwardedTurns(t *testing.T) {
	f := newTestFleet(t, "a", "b")
	a, b := f.nodes["a"], f.nodes["b"]
	id := f.create("a", acmeKey)
	resp, events := f.stream(t.Context(), "b", id, "[[hang]]")
	defer resp.Body.Close()
	for name := ""; name != agent.EventLLMCallStarted; {
		var ok bool
		if name, _, ok = events.next(); !ok {
			t.Fatal("stream ended early")
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := b.api.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown of b = %v; want it done without waiting for a's turn", err)
	}
	waitFor(t, func() bool { _, running := a.pool.Live(); return running == 0 })
	s, err := a.pool.Get(t.Context(), "acme", session.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	if o := s.Turns[len(s.Turns)-1].Outcome; o.Status != agent.StatusCancelled || o.CancelReason != agent.ReasonClientDisconnected {
		t.Errorf("turn on a after b shut down = %+v; want cancelled by client-disconnected", o)
	}
}
