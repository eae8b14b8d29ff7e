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
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
	"github.com/agentd/agentd/internal/tenant"
)

const (
	acmeKey   = "acme-key-0123456789"
	globexKey = "globex-key-012345678"
)

type fixture struct {
	t     *testing.T
	srv   *httptest.Server
	api   *httpapi.Server
	pool  *session.Pool
	model *agenttest.Model
}

func newFixture(t *testing.T, steps ...agenttest.Step) *fixture {
	t.Helper()
	return newFixtureWith(t, nil, steps...)
}

// newFixtureWith is newFixture with edit applied to the API's Config.
func newFixtureWith(t *testing.T, edit func(*httpapi.Config), steps ...agenttest.Step) *fixture {
	t.Helper()
	return newFixtureOn(t, edit, nil, steps...)
}

// newFixtureOn is newFixtureWith serving on wrap(listener) when wrap is not nil.
func newFixtureOn(t *testing.T, edit func(*httpapi.Config), wrap func(net.Listener) net.Listener, steps ...agenttest.Step) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	m := agenttest.NewModel(steps...)
	echo := agenttest.NewTool("echo", func(_ context.Context, c agent.Call) (string, error) { return "echo " + string(c.Args), nil })
	pool, err := session.NewPool(db.Sessions(), agent.New(m, agent.Config{}), (&sessiontest.Hooks{
		AssignFn: func(tenant, user string) (session.Assignment, error) { return session.Assignment{Model: "stable"}, nil },
		ToolsFn:  func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return []agent.Tool{echo}, nil, nil },
		CheckModelFn: func(m string) error {
			if m != "stable" && m != "bigger" {
				return fmt.Errorf("%w: model %q is not in the catalog", session.ErrInvalid, m)
			}
			return nil
		},
	}).Pool(), session.Config{Dir: filepath.Join(dir, "ws"), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	keys, err := tenant.Parse(acmeKey + "=acme," + globexKey + "=globex")
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{MaxBodyBytes: 4096, Logger: zaptest.NewLogger(t), Heartbeat: 20 * time.Millisecond}
	if edit != nil {
		edit(&cfg)
	}
	api := httpapi.New(pool, keys, cfg)
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = api.HTTPServer() // agentd's own server, with its timeouts
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, api: api, pool: pool, model: m}
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(method, path, key, body string, headers ...string) reply {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
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

func (f *fixture) create(key string) string {
	f.t.Helper()
	r := f.do("POST", "/v1/sessions", key, "")
	if r.status != http.StatusCreated {
		f.t.Fatalf("create = %d %s", r.status, r.raw)
	}
	return r.body["id"].(string)
}

func errCode(r reply) string {
	e, _ := r.body["error"].(map[string]any)
	code, _ := e["code"].(string)
	if msg, _ := e["message"].(string); msg == "" {
		return "(no message) " + code
	}
	return code
}

func TestAuthAndErrors(t *testing.T) {
	f := newFixture(t)
	id := f.create(acmeKey)
	big := `{"content":"` + strings.Repeat("x", 5000) + `"}`
	tests := []struct {
		name, method, path, key, body string
		headers                       []string
		status                        int
		code                          string
	}{
		{"health needs no key", "GET", "/healthz", "", "", nil, 200, ""},
		{"readiness needs no key", "GET", "/readyz", "", "", nil, 200, ""},
		{"no key", "GET", "/v1/sessions", "", "", nil, 401, "unauthorized"},
		{"unknown key", "GET", "/v1/sessions", "not-a-real-key-at-all", "", nil, 401, "unauthorized"},
		{"basic auth is not a bearer key", "GET", "/v1/sessions", "", "", []string{"Authorization", "Basic YTpi"}, 401, "unauthorized"},
		{"unknown route behind auth still needs a key", "GET", "/v1/nope", "", "", nil, 401, "unauthorized"},
		{"unknown route", "GET", "/v1/nope", acmeKey, "", nil, 404, "not_found"},
		{"wrong method", "PATCH", "/v1/sessions", acmeKey, "", nil, 405, "method_not_allowed"},
		{"missing user", "POST", "/v1/sessions", acmeKey, "", []string{httpapi.UserHeader, ""}, 400, "missing_user"},
		{"malformed JSON", "POST", "/v1/sessions", acmeKey, `{"model":`, nil, 400, "invalid_json"},
		{"not an object", "POST", "/v1/sessions", acmeKey, `[1,2]`, nil, 400, "invalid_json"},
		{"unknown field", "POST", "/v1/sessions", acmeKey, `{"modle":"x"}`, nil, 400, "unknown_field"},
		{"trailing data", "POST", "/v1/sessions", acmeKey, `{} {}`, nil, 400, "invalid_json"},
		{"wrong type", "POST", "/v1/sessions/" + id + "/messages", acmeKey, `{"content":5}`, nil, 400, "invalid_json"},
		{"not JSON content type", "POST", "/v1/sessions/" + id + "/messages", acmeKey, `{"content":"hi"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"body too large", "POST", "/v1/sessions/" + id + "/messages", acmeKey, big, nil, 413, "body_too_large"},
		{"blank content", "POST", "/v1/sessions/" + id + "/messages", acmeKey, `{"content":"  "}`, nil, 400, "invalid_request"},
		{"bad max_iterations", "POST", "/v1/sessions/" + id + "/messages", acmeKey, `{"content":"x","max_iterations":5000}`, nil, 400, "invalid_request"},
		{"unknown model on create", "POST", "/v1/sessions", acmeKey, `{"model":"gpt-9"}`, nil, 400, "invalid_request"},
		{"unknown model on switch", "PUT", "/v1/sessions/" + id + "/model", acmeKey, `{"model":"gpt-9"}`, nil, 400, "invalid_request"},
		{"empty model on switch", "PUT", "/v1/sessions/" + id + "/model", acmeKey, `{}`, nil, 400, "invalid_request"},
		{"unknown session", "GET", "/v1/sessions/sess_00000000000000000000000000000000", acmeKey, "", nil, 404, "not_found"},
		{"garbage session id", "GET", "/v1/sessions/..%2F..%2Fetc", acmeKey, "", nil, 404, "not_found"},
		{"another tenant's session", "GET", "/v1/sessions/" + id, globexKey, "", nil, 404, "not_found"},
		{"another tenant's turn", "POST", "/v1/sessions/" + id + "/messages", globexKey, `{"content":"hi"}`, nil, 404, "not_found"},
		{"another tenant's delete", "DELETE", "/v1/sessions/" + id, globexKey, "", nil, 404, "not_found"},
		{"another tenant's cancel", "POST", "/v1/sessions/" + id + "/cancel", globexKey, "", nil, 404, "not_found"},
		{"bad list limit", "GET", "/v1/sessions?limit=0", acmeKey, "", nil, 400, "invalid_request"},
		{"bad cursor", "GET", "/v1/sessions?cursor=x", acmeKey, "", nil, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(tc.method, tc.path, tc.key, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("%s %s = %d %s; want %d", tc.method, tc.path, r.status, r.raw, tc.status)
			}
			if tc.code != "" && errCode(r) != tc.code {
				t.Errorf("error = %s; want code %q with a message", r.raw, tc.code)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	// None of the rejected requests changed the session.
	r := f.do("GET", "/v1/sessions/"+id, acmeKey, "")
	if r.body["model"] != "stable" || len(r.body["messages"].([]any)) != 0 || len(f.model.Requests()) != 0 {
		t.Errorf("session after rejected requests = %s; want untouched", r.raw)
	}
	if r := f.do("GET", "/v1/sessions", globexKey, ""); len(r.body["sessions"].([]any)) != 0 {
		t.Errorf("globex lists acme's sessions: %s", r.raw)
	}
}

func TestSessionLifecycle(t *testing.T) {
	f := newFixture(t, agenttest.Calls("echo", `{"q":1}`), agenttest.Reply("the answer"), agenttest.Reply("second"))
	r := f.do("POST", "/v1/sessions", acmeKey, `{}`)
	if r.status != 201 || r.body["tenant"] != "acme" || r.body["user"] != "alice" || r.header.Get("Location") == "" {
		t.Fatalf("create = %d %s; want 201 for acme/alice with a Location", r.status, r.raw)
	}
	if a, _ := r.body["assignment"].(map[string]any); a["model"] != "stable" {
		t.Errorf("assignment = %v; want model stable", r.body["assignment"])
	}
	id := r.body["id"].(string)
	r = f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"what is it?"}`)
	if r.status != 200 || r.body["reply"] != "the answer" {
		t.Fatalf("turn = %d %s", r.status, r.raw)
	}
	if o := r.body["outcome"].(map[string]any); o["status"] != "ok" || o["tool_count"] != 1.0 {
		t.Errorf("outcome = %v; want ok with one tool call", o)
	}
	r = f.do("PUT", "/v1/sessions/"+id+"/model", acmeKey, `{"model":"bigger"}`)
	if r.status != 200 || r.body["model"] != "bigger" {
		t.Fatalf("switch = %d %s", r.status, r.raw)
	}
	r = f.do("GET", "/v1/sessions/"+id, acmeKey, "")
	msgs := r.body["messages"].([]any)
	if len(msgs) != 4 || r.body["turn_count"] != 1.0 || r.body["model"] != "bigger" {
		t.Errorf("get = %s; want 4 messages kept across the switch", r.raw)
	}
	if r := f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"more"}`); r.body["model"] != "bigger" {
		t.Errorf("turn after switch ran on %v; want bigger", r.body["model"])
	}
	r = f.do("POST", "/v1/sessions/"+id+"/clear", acmeKey, "")
	if r.status != 200 {
		t.Fatalf("clear = %d %s", r.status, r.raw)
	}
	if r := f.do("GET", "/v1/sessions/"+id, acmeKey, ""); len(r.body["messages"].([]any)) != 0 {
		t.Errorf("messages after clear = %v; want none", r.body["messages"])
	}
	r = f.do("GET", "/v1/sessions?user=alice", acmeKey, "")
	if list := r.body["sessions"].([]any); len(list) != 1 {
		t.Errorf("list = %s; want the one session", r.raw)
	}
	if r := f.do("DELETE", "/v1/sessions/"+id, acmeKey, ""); r.status != 204 {
		t.Errorf("delete = %d %s", r.status, r.raw)
	}
	if r := f.do("GET", "/v1/sessions/"+id, acmeKey, ""); r.status != 404 {
		t.Errorf("get after delete = %d; want 404", r.status)
	}
}

// sse reads Server-Sent Events until the stream ends.
func sse(t *testing.T, body io.Reader) (names []string, data []map[string]any) {
	t.Helper()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d); err != nil {
				t.Errorf("event %s has bad JSON: %v", name, err)
			}
			names, data = append(names, name), append(data, d)
		}
	}
	return names, data
}

func TestStreamingTurn(t *testing.T) {
	f := newFixture(t, agenttest.Calls("echo", `{"q":1}`), agenttest.Reply("streamed answer"))
	id := f.create(acmeKey)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", f.srv.URL+"/v1/sessions/"+id+"/messages", strings.NewReader(`{"content":"go"}`))
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	names, data := sse(t, resp.Body)
	if len(names) == 0 || names[len(names)-1] != "done" {
		t.Fatalf("events = %v; want a final done", names)
	}
	done := data[len(data)-1]
	if done["reply"] != "streamed answer" || done["outcome"].(map[string]any)["status"] != "ok" {
		t.Errorf("done = %v", done)
	}
	var text strings.Builder
	seen := map[string]bool{}
	for i, n := range names {
		seen[n] = true
		if n == "llm_text" {
			text.WriteString(data[i]["data"].(map[string]any)["chunk"].(string))
		}
	}
	for _, want := range []string{"turn_begin", "tool_start", "tool_result", "llm_text", "turn_end"} {
		if !seen[want] {
			t.Errorf("no %s event in %v", want, names)
		}
	}
	if text.String() != "streamed answer" {
		t.Errorf("streamed text = %q", text.String())
	}
}

func TestBusyCancelAndDisconnect(t *testing.T) {
	f := newFixture(t)
	f.model.Default = func(agent.Request) agenttest.Step { return agenttest.Step{Text: "working", Block: true} }
	id := f.create(acmeKey)

	// A streaming client that goes away cancels its turn.
	ctx, hangUp := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/v1/sessions/"+id+"/messages", strings.NewReader(`{"content":"long"}`))
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(f.model.Requests()) == 1 })
	if r := f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"second"}`); r.status != 409 || errCode(r) != "session_busy" {
		t.Errorf("second turn = %d %s; want 409 session_busy", r.status, r.raw)
	}
	hangUp()
	resp.Body.Close()
	waitFor(t, func() bool { _, running := f.pool.Live(); return running == 0 })
	s, _ := f.pool.Get(t.Context(), "acme", session.ID(id))
	if o := s.Turns[0].Outcome; o.Status != agent.StatusCancelled || o.CancelReason != agent.ReasonClientDisconnected {
		t.Errorf("outcome after hang-up = %+v; want cancelled by client-disconnected", o)
	}

	// POST /cancel ends a JSON turn with user-cancel.
	result := make(chan reply)
	go func() { result <- f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"again"}`) }()
	waitFor(t, func() bool { return len(f.model.Requests()) == 2 })
	if r := f.do("POST", "/v1/sessions/"+id+"/cancel", acmeKey, ""); r.status != 200 || r.body["cancelled"] != true {
		t.Errorf("cancel = %d %s; want cancelled true", r.status, r.raw)
	}
	r := <-result
	if r.status != 200 || r.body["reply"] != "[Cancelled: user-cancel]" {
		t.Errorf("cancelled turn = %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/v1/sessions/"+id+"/cancel", acmeKey, ""); r.body["cancelled"] != false {
		t.Errorf("cancel with nothing running = %s; want cancelled false", r.raw)
	}
}

func TestDraining(t *testing.T) {
	f := newFixture(t, agenttest.Reply("x"))
	id := f.create(acmeKey)
	f.api.Drain()
	if r := f.do("GET", "/readyz", "", ""); r.status != 503 {
		t.Errorf("readyz while draining = %d; want 503", r.status)
	}
	if r := f.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Errorf("healthz while draining = %d; want 200 (liveness must not fail)", r.status)
	}
	for _, path := range []string{"/v1/sessions", "/v1/sessions/" + id + "/messages"} {
		r := f.do("POST", path, acmeKey, `{"content":"x"}`)
		if r.status != 503 || errCode(r) != "shutting_down" || r.header.Get("Retry-After") == "" {
			t.Errorf("POST %s while draining = %d %s; want 503 shutting_down with Retry-After", path, r.status, r.raw)
		}
	}
	if r := f.do("GET", "/v1/sessions/"+id, acmeKey, ""); r.status != 200 {
		t.Errorf("GET while draining = %d; reads still work", r.status)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestMetricsRoute: /metrics needs no key, and every answered request is
// reported with its route pattern, never the raw path.
func TestMetricsRoute(t *testing.T) {
	type seen struct {
		method, route string
		status        int
	}
	var mu sync.Mutex
	var got []seen
	f := newFixtureWith(t, func(c *httpapi.Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "agentd_up 1\n") })
		c.OnRequest = func(method, route string, status int, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, seen{method, route, status})
		}
	}, agenttest.Reply("hello"))
	if r := f.do("GET", "/metrics", "", ""); r.status != 200 || r.raw != "agentd_up 1\n" {
		t.Errorf("GET /metrics without a key = %d %q", r.status, r.raw)
	}
	id := f.create(acmeKey)
	f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"hi"}`)
	f.do("GET", "/v1/sessions/"+id, "", "")
	f.do("GET", "/nope", acmeKey, "")
	want := []seen{
		{"GET", "/metrics", 200},
		{"POST", "/v1/sessions", 201},
		{"POST", "/v1/sessions/{id}/messages", 200},
		{"GET", "/v1/*", 401}, // refused before the sub-routes matched
		{"GET", "", 404},
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests seen = %v\nwant %v", got, want)
	}
}
