package acp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
)

// env is a real pool over bbolt in a temp dir, a scripted model, and tools
// named like agentd's: read_file answers at once, run_shell_command asks
// for permission when its command starts with "touch" (as a rule would)
// and blocks until cancelled when it is "wait".
type env struct {
	t     *testing.T
	dir   string
	db    *boltdb.DB
	model *agenttest.Model
	shell *agenttest.Tool
	pool  *session.Pool
	srv   *acp.Server
	cfg   session.Config
	acp   acp.Config    // the server's, besides Models, Version and Logger
	meter session.Meter // the pool's, if set (budgets)
}

func newEnv(t *testing.T, cfg session.Config, steps ...agenttest.Step) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), model: agenttest.NewModel(steps...), cfg: cfg}
	e.shell = agenttest.NewTool("run_shell_command", func(ctx context.Context, c agent.Call) (string, error) {
		var a struct{ Command string }
		_ = json.Unmarshal(c.Args, &a)
		if a.Command == "wait" {
			c.Output("waiting…\n")
			<-ctx.Done()
			return "", context.Cause(ctx)
		}
		c.Output("$ " + a.Command + "\n")
		return "Exit code: 0", nil
	})
	e.open()
	return e
}

// open starts a pool and an ACP server on the env's data dir, as a
// (re)started process would.
func (e *env) open() {
	e.t.Helper()
	db, err := boltdb.Open(filepath.Join(e.dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	read := agenttest.NewTool("read_file", func(context.Context, agent.Call) (string, error) { return "hello from a.txt", nil })
	cfg := e.cfg
	cfg.Dir = filepath.Join(e.dir, "workspaces")
	cfg.Logger = zaptest.NewLogger(e.t)
	hooks := (&sessiontest.Hooks{
		AssignFn: func(string, string) (session.Assignment, error) { return session.Assignment{Model: "m1"}, nil },
		ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) {
			return []agent.Tool{read, e.shell}, nil, nil
		},
		CheckModelFn: func(m string) error {
			if m != "m1" && m != "m2" {
				return fmt.Errorf("%w: model %q is not in the catalog: m1, m2", session.ErrInvalid, m)
			}
			return nil
		},
		PermitFn: func(_ *session.Session, c agent.Call, _ agent.ToolSpec) session.Permit {
			if c.Name == "run_shell_command" && strings.Contains(string(c.Args), `"touch`) {
				return session.Permit{Action: session.ActionAsk, Why: "test rule: ask on touch"}
			}
			return session.Permit{Action: session.ActionAllow}
		},
	}).Pool()
	hooks.Meter = e.meter
	pool, err := session.NewPool(db.Sessions(), agent.New(e.model, agent.Config{}), hooks, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.db, e.pool = db, pool
	ac := e.acp
	ac.Models, ac.Version, ac.Logger = func() []string { return []string{"m1", "m2"} }, "test", zaptest.NewLogger(e.t)
	e.srv = acp.New(pool, ac)
	e.t.Cleanup(e.close)
}

func (e *env) close() {
	if e.pool != nil {
		_ = e.pool.Close()
		_ = e.db.Close()
		e.pool = nil
	}
}

// waitModelCalls waits until the model has been called n times.
func (e *env) waitModelCalls(n int) {
	e.t.Helper()
	waitFor(e.t, func() bool { return len(e.model.Requests()) >= n })
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

// msg is a decoded JSON-RPC message from the server.
type msg map[string]any

func (m msg) id() string {
	if v, ok := m["id"]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}
func (m msg) method() string { s, _ := m["method"].(string); return s }
func (m msg) params() map[string]any {
	p, _ := m["params"].(map[string]any)
	return p
}
func (m msg) result() map[string]any {
	r, _ := m["result"].(map[string]any)
	return r
}
func (m msg) errCode() int {
	e, _ := m["error"].(map[string]any)
	if e == nil {
		return 0
	}
	c, _ := e["code"].(float64)
	return int(c)
}

// update returns the update of a session/update notification, or nil.
func (m msg) update() map[string]any {
	if m.method() != "session/update" {
		return nil
	}
	u, _ := m.params()["update"].(map[string]any)
	return u
}

// client drives one connection of the server over in-memory pipes, as an
// ACP client would over a child's stdio.
type client struct {
	t    *testing.T
	in   *io.PipeWriter
	msgs chan msg
	raw  []string // every line received, in order
	mu   sync.Mutex
	done chan struct{} // closed when Serve has returned
	err  error         // Serve's result, once done
	next int
}

func (e *env) connect(ctx context.Context) *client {
	e.t.Helper()
	return connectServer(e.t, e.srv, ctx, 0)
}

func connectServer(t *testing.T, srv *acp.Server, ctx context.Context, max int) *client {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	c := &client{t: t, in: inW, msgs: make(chan msg, 10000), done: make(chan struct{})}
	go func() {
		c.err = srv.Serve(ctx, acp.NewStdio(inR, outW, max), acp.Peer{Tenant: "acme", User: "alice", Transport: "test"})
		outW.Close()
		close(c.done)
	}()
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.raw = append(c.raw, line)
			c.mu.Unlock()
			var m msg
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Errorf("server wrote a line that is not JSON: %q", line)
				continue
			}
			c.msgs <- m
		}
		close(c.msgs)
	}()
	t.Cleanup(func() {
		inW.Close()
		inR.Close()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after the client closed its side")
		}
	})
	return c
}

func (c *client) sendRaw(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// request sends a request and returns its id.
func (c *client) request(method string, params any) string {
	c.t.Helper()
	c.next++
	id := c.next
	c.send(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return fmt.Sprint(id)
}

func (c *client) notify(method string, params any) {
	c.t.Helper()
	c.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

// answer responds to a request of the server.
func (c *client) answer(id string, result any) {
	c.t.Helper()
	c.send(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
}

// read returns the next message from the server.
func (c *client) read() msg {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("the server closed the connection")
		}
		return m
	case <-time.After(10 * time.Second):
		c.t.Fatal("no message from the server in 10s")
	}
	return nil
}

// until reads messages until the response to id and returns those before
// it and the response.
func (c *client) until(id string) ([]msg, msg) {
	c.t.Helper()
	var before []msg
	for {
		m := c.read()
		if m.method() == "" && m.id() == id {
			return before, m
		}
		before = append(before, m)
	}
}

// call sends a request and waits for its response, failing on an error.
func (c *client) call(method string, params any) (map[string]any, []msg) {
	c.t.Helper()
	before, resp := c.until(c.request(method, params))
	if resp.errCode() != 0 {
		c.t.Fatalf("%s: error %v", method, resp["error"])
	}
	return resp.result(), before
}

// callErr sends a request that must fail and returns the error code and
// object.
func (c *client) callErr(method string, params any) (int, map[string]any) {
	c.t.Helper()
	_, resp := c.until(c.request(method, params))
	e, _ := resp["error"].(map[string]any)
	if e == nil {
		c.t.Fatalf("%s = %v; want an error", method, resp)
	}
	return resp.errCode(), e
}

func (c *client) initialize() {
	c.t.Helper()
	c.call("initialize", map[string]any{"protocolVersion": 1, "clientCapabilities": map[string]any{}})
}

func (c *client) newSession() string {
	c.t.Helper()
	res, _ := c.call("session/new", map[string]any{"cwd": "/home/alice/project", "mcpServers": []any{}})
	id, _ := res["sessionId"].(string)
	if id == "" {
		c.t.Fatalf("session/new = %v", res)
	}
	return id
}

func textPrompt(sid, text string) map[string]any {
	return map[string]any{"sessionId": sid, "prompt": []any{map[string]any{"type": "text", "text": text}}}
}

func updatesOf(ms []msg) []map[string]any {
	var out []map[string]any
	for _, m := range ms {
		if u := m.update(); u != nil {
			out = append(out, u)
		}
	}
	return out
}

func agentText(ms []msg) string {
	var b strings.Builder
	for _, u := range updatesOf(ms) {
		if u["sessionUpdate"] == "agent_message_chunk" {
			b.WriteString(u["content"].(map[string]any)["text"].(string))
		}
	}
	return b.String()
}
