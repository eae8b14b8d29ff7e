package main_test

// End-to-end tests of ACP: `agentd acp` over stdio, GET /v1/acp over
// WebSocket on `agentd serve`, and the official TypeScript SDK as the
// client of both (when node and npm are here).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
)

// acpMsg is a decoded JSON-RPC message from agentd.
type acpMsg map[string]any

func (m acpMsg) id() string {
	if v, ok := m["id"]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}
func (m acpMsg) method() string { s, _ := m["method"].(string); return s }
func (m acpMsg) params() map[string]any {
	p, _ := m["params"].(map[string]any)
	return p
}
func (m acpMsg) result() map[string]any {
	r, _ := m["result"].(map[string]any)
	return r
}
func (m acpMsg) update() map[string]any {
	if m.method() != "session/update" {
		return nil
	}
	u, _ := m.params()["update"].(map[string]any)
	return u
}

// acpPeer is the client side of one ACP connection: a child's stdio or a
// WebSocket.
type acpPeer struct {
	t     *testing.T
	write func([]byte) error
	msgs  chan acpMsg
	next  int
}

func (c *acpPeer) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.write(b); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *acpPeer) request(method string, params any) string {
	c.t.Helper()
	c.next++
	c.send(map[string]any{"jsonrpc": "2.0", "id": c.next, "method": method, "params": params})
	return fmt.Sprint(c.next)
}

func (c *acpPeer) notify(method string, params any) {
	c.t.Helper()
	c.send(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
}

func (c *acpPeer) read() acpMsg {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("agentd closed the connection")
		}
		return m
	case <-time.After(20 * time.Second):
		c.t.Fatal("no message from agentd in 20s")
	}
	return nil
}

// until reads up to the response to id; onRequest answers agentd's
// requests on the way (nil: they are collected like notifications).
func (c *acpPeer) until(id string, onRequest func(acpMsg)) ([]acpMsg, acpMsg) {
	c.t.Helper()
	var before []acpMsg
	for {
		m := c.read()
		if m.method() == "" && m.id() == id {
			return before, m
		}
		if m.method() != "" && m.id() != "" && onRequest != nil {
			onRequest(m)
		}
		before = append(before, m)
	}
}

func (c *acpPeer) call(method string, params any) (map[string]any, []acpMsg) {
	c.t.Helper()
	before, resp := c.until(c.request(method, params), nil)
	if resp["error"] != nil {
		c.t.Fatalf("%s: %v", method, resp["error"])
	}
	return resp.result(), before
}

func (c *acpPeer) initialize() {
	c.t.Helper()
	res, _ := c.call("initialize", map[string]any{"protocolVersion": 1, "clientCapabilities": map[string]any{}})
	if res["protocolVersion"] != float64(1) || res["agentCapabilities"].(map[string]any)["loadSession"] != true {
		c.t.Fatalf("initialize = %v", res)
	}
}

func (c *acpPeer) newSession() string {
	c.t.Helper()
	res, _ := c.call("session/new", map[string]any{"cwd": "/home/alice/src", "mcpServers": []any{}})
	return res["sessionId"].(string)
}

func acpText(sid, text string) map[string]any {
	return map[string]any{"sessionId": sid, "prompt": []any{map[string]any{"type": "text", "text": text}}}
}

func acpAgentText(ms []acpMsg) string {
	var b strings.Builder
	for _, m := range ms {
		if u := m.update(); u != nil && u["sessionUpdate"] == "agent_message_chunk" {
			b.WriteString(u["content"].(map[string]any)["text"].(string))
		}
	}
	return b.String()
}

// acpProc is a running `agentd acp`.
type acpProc struct {
	*acpPeer
	cmd   *exec.Cmd
	stdin io.WriteCloser
	logs  *syncBuffer
	done  chan struct{}
	lines []string // every stdout line
	mu    sync.Mutex
}

// acpEnv is the environment of `agentd acp` against llm on data.
func acpEnv(t *testing.T, llm *llmtest.Server, data string, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"AGENTD_DATA=" + data,
		"AGENTD_CONFIG_DIR=" + configDir(t, "{}"),
		"OPENAI_BASE_URL=" + llm.URL(),
		"OPENAI_API_KEY=sk-test-not-a-real-key",
		"OPENAI_MODEL=stable-model",
		"AGENTD_MODELS=canary-model",
		"AGENTD_ACP_TENANT=acme",
		"AGENTD_ACP_USER=alice",
		"AGENTD_LLM_MAX_ATTEMPTS=1",
	}, extra...)
}

// startACP runs `agentd acp`; it skips the test when this build has no acp
// command yet (the wiring into main.go).
func startACP(t *testing.T, env []string) *acpProc {
	t.Helper()
	cmd := exec.Command(binary, "acp")
	cmd.Env = env
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &acpProc{cmd: cmd, stdin: stdin, logs: &syncBuffer{}, done: make(chan struct{})}
	p.acpPeer = &acpPeer{t: t, msgs: make(chan acpMsg, 10000), write: func(b []byte) error {
		_, err := p.stdin.Write(append(b, '\n'))
		return err
	}}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			var m acpMsg
			if err := json.Unmarshal([]byte(line), &m); err != nil || m["jsonrpc"] != "2.0" {
				t.Errorf("stdout carries something else than protocol: %q", line)
				continue
			}
			p.msgs <- m
		}
		close(p.msgs)
	}()
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	reapOnCleanup(t, cmd, p.done, p.logs, "agentd acp")
	// The first exchange tells whether this build has the command.
	id := p.request("initialize", map[string]any{"protocolVersion": 1})
	select {
	case m, ok := <-p.msgs:
		if !ok {
			<-p.done
			t.Fatalf("agentd acp exited at once:\n%s", p.logs.String())
		}
		if m.id() != id || m["error"] != nil {
			t.Fatalf("initialize = %v", m)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("agentd acp did not answer initialize:\n%s", p.logs.String())
	}
	return p
}

// exit closes stdin and waits for the process; it returns the exit code.
func (p *acpProc) exit() int {
	p.t.Helper()
	p.stdin.Close()
	return p.wait()
}

func (p *acpProc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("agentd acp did not exit:\n%s", p.logs.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

func acpAskConfig(t *testing.T) string {
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/permissions/v1.json", `{"rules": [{"tool": "run_shell_command", "args": {"command": "^touch "}, "action": "ask"}]}`)
	return dir
}

// TestACPStdio: a whole life over stdio: prompts with a permission round
// trip, a cancel, a disconnect, a restart with session/load, and the same
// session seen by the HTTP API afterwards.
func TestACPStdio(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	env := acpEnv(t, llm, data, "AGENTD_CONFIG_DIR="+acpAskConfig(t))
	p := startACP(t, env)
	sid := p.newSession()

	before, resp := p.until(p.request("session/prompt", acpText(sid, `[[tool run_shell_command {"command":"touch acp.txt"}]]`)), func(m acpMsg) {
		if m.method() != "session/request_permission" {
			t.Errorf("unexpected request %v", m)
			return
		}
		p.send(map[string]any{"jsonrpc": "2.0", "id": m.id(), "result": map[string]any{"outcome": map[string]any{"outcome": "selected", "optionId": "allow_once"}}})
	})
	if resp.result()["stopReason"] != "end_turn" || !strings.HasPrefix(acpAgentText(before), "tool said: Exit code: 0") {
		t.Fatalf("prompt = %v, text %q", resp, acpAgentText(before))
	}
	var announced, asked bool
	for _, m := range before {
		if u := m.update(); u != nil && u["sessionUpdate"] == "tool_call" && !asked {
			announced = u["kind"] == "execute" && u["status"] == "pending"
		}
		if m.method() == "session/request_permission" {
			asked = announced
		}
	}
	if !asked {
		t.Errorf("no tool_call before the permission request:\n%v", before)
	}
	if _, err := os.Stat(filepath.Join(data, "workspaces", "acme", sid, "acp.txt")); err != nil {
		t.Errorf("the allowed command did not run: %v", err)
	}

	calls := llm.Calls() // before the request: the call may land at once
	pid := p.request("session/prompt", acpText(sid, "[[hang]]"))
	waitFor(t, func() bool { return llm.Calls() > calls })
	p.notify("session/cancel", map[string]any{"sessionId": sid})
	if _, resp := p.until(pid, nil); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("cancelled prompt = %v", resp)
	}
	if code := p.exit(); code != 0 || !strings.Contains(p.logs.String(), "every session saved") {
		t.Fatalf("exit at stdin EOF = %d\n%s", code, p.logs.String())
	}

	p2 := startACP(t, env)
	res, replay := p2.call("session/load", map[string]any{"sessionId": sid, "cwd": "/home/alice/src", "mcpServers": []any{}})
	var kinds []string
	for _, m := range replay {
		if u := m.update(); u != nil {
			kinds = append(kinds, u["sessionUpdate"].(string))
			if u["sessionUpdate"] == "user_message_chunk" && strings.Contains(u["content"].(map[string]any)["text"].(string), "system-reminder") {
				t.Errorf("a replayed user message carries the reminder: %v", u)
			}
		}
	}
	want := "user_message_chunk tool_call tool_call_update agent_message_chunk user_message_chunk agent_message_chunk"
	if strings.Join(kinds, " ") != want {
		t.Errorf("replay = %s; want %s", strings.Join(kinds, " "), want)
	}
	if res["configOptions"] == nil {
		t.Errorf("load = %v", res)
	}
	res, before = p2.call("session/prompt", acpText(sid, "hello again"))
	if res["stopReason"] != "end_turn" || acpAgentText(before) != "echo: hello again" {
		t.Errorf("prompt after load = %v %q", res, acpAgentText(before))
	}
	if code := p2.exit(); code != 0 {
		t.Fatalf("second exit = %d", code)
	}

	// The HTTP API sees the same session (same id, same history).
	srv := start(t, llm, data, "AGENTD_CONFIG_DIR="+acpAskConfig(t))
	msgs := srv.messages(acmeKey, sid)
	if err := agent.Validate(msgs); err != nil || msgs[len(msgs)-1].Content != "echo: hello again" {
		t.Errorf("history over HTTP: %v, %+v", err, msgs)
	}
	if got := msgs[5].Content; got != "[Cancelled: acp-session-cancel]" {
		t.Errorf("cancelled turn's reply = %q", got)
	}
}

// TestACPStdioEnds: stdin EOF and SIGTERM in the middle of a turn cancel it
// ("connection-closed", "shutdown"), answer the prompt when the client can
// still read, save it, and exit 0.
func TestACPStdioEnds(t *testing.T) {
	for _, how := range []string{"eof", "sigterm"} {
		t.Run(how, func(t *testing.T) {
			llm := llmtest.NewServer(t)
			data := t.TempDir()
			env := acpEnv(t, llm, data)
			p := startACP(t, env)
			sid := p.newSession()
			pid := p.request("session/prompt", acpText(sid, "[[hang]]"))
			waitFor(t, func() bool { return llm.Calls() == 1 })
			var code int
			want := "[Cancelled: connection-closed]"
			if how == "eof" {
				code = p.exit()
			} else {
				want = "[Cancelled: shutdown]"
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if _, resp := p.until(pid, nil); resp.result()["stopReason"] != "cancelled" {
					t.Errorf("prompt at SIGTERM = %v; want cancelled", resp)
				}
				code = p.wait()
			}
			if code != 0 {
				t.Fatalf("exit = %d\n%s", code, p.logs.String())
			}
			p2 := startACP(t, env)
			_, replay := p2.call("session/load", map[string]any{"sessionId": sid, "cwd": "/", "mcpServers": []any{}})
			if got := acpAgentText(replay); got != want {
				t.Errorf("replayed reply = %q; want %q", got, want)
			}
			p2.exit()
		})
	}
}

func TestACPConfig(t *testing.T) {
	llm := llmtest.NewServer(t)
	out, err := exec.Command(binary, "acp", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "AGENTD_ACP_TENANT") || !strings.Contains(string(out), "AGENTD_ACP_USER") ||
		!strings.Contains(string(out), "OPENAI_BASE_URL") || strings.Contains(string(out), "AGENTD_ADDR") {
		t.Errorf("acp --help: %v\n%s", err, out)
	}
	data := t.TempDir()
	base := acpEnv(t, llm, data)
	for _, tc := range []struct {
		name string
		env  []string
		code int
		want string
	}{
		{"bad tenant", []string{"AGENTD_ACP_TENANT=no tenant"}, 2, "AGENTD_ACP_TENANT"},
		{"no user", []string{"AGENTD_ACP_USER="}, 2, "--user"},
		{"bad duration", []string{"AGENTD_TURN_TIMEOUT=soon"}, 2, "AGENTD_TURN_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := acpEnvWithout(append(append([]string(nil), base...), tc.env...), "USER=", "LOGNAME=")
			cmd := exec.Command(binary, "acp")
			cmd.Env = env
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
				t.Errorf("exit %d, stderr %q, stdout %q; want exit %d mentioning %q and nothing on stdout", code, stderr.String(), stdout.String(), tc.code, tc.want)
			}
		})
	}
	t.Run("data dir in use", func(t *testing.T) {
		start(t, llm, data) // holds the store's lock
		cmd := exec.Command(binary, "acp")
		cmd.Env = base
		out, _ := cmd.CombinedOutput()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "in use by another agentd") {
			t.Errorf("acp on a busy data dir: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
		}
	})
	t.Run("user defaults to USER", func(t *testing.T) {
		env := append(acpEnvWithout(base, "AGENTD_ACP_USER="), "USER=dora")
		p := startACP(t, env)
		p.newSession()
		p.exit()
		if !strings.Contains(p.logs.String(), `"user":"dora"`) {
			t.Errorf("logs do not show user dora:\n%s", p.logs.String())
		}
	})
}

func acpEnvWithout(env []string, prefixes ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// acpDial opens GET /v1/acp of p over WebSocket.
func acpDial(t *testing.T, p *proc, key, user string) *acpPeer {
	t.Helper()
	r := p.do("GET", "/v1/acp", key, "")
	if r.Status == http.StatusNotFound {
		t.Fatalf("GET /v1/acp is not mounted: %s", r.Raw)
	}
	header := http.Header{"Authorization": {"Bearer " + key}}
	if user != "" {
		header.Set("X-Agentd-User", user)
	}
	ws, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(p.url, "http")+"/v1/acp", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		t.Fatalf("dial /v1/acp: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &acpPeer{t: t, msgs: make(chan acpMsg, 10000), write: func(b []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return ws.Write(ctx, websocket.MessageText, b)
	}}
	go func() {
		defer close(c.msgs)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var m acpMsg
			if json.Unmarshal(data, &m) != nil {
				t.Errorf("frame %q is not JSON", data)
				continue
			}
			c.msgs <- m
		}
	}()
	return c
}

// TestACPWebSocket: /v1/acp on serve, authenticated like the API, shares
// sessions with it; SIGTERM answers a running prompt and exits 0.
func TestACPWebSocket(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir())
	if r := p.do("GET", "/v1/acp", "", ""); r.Status != http.StatusUnauthorized && r.Status != http.StatusNotFound {
		t.Errorf("/v1/acp without a key = %d; want 401", r.Status)
	}
	c := acpDial(t, p, acmeKey, "alice")
	c.initialize()
	sid := c.newSession()
	res, before := c.call("session/prompt", acpText(sid, "over the socket"))
	if res["stopReason"] != "end_turn" || acpAgentText(before) != "echo: over the socket" {
		t.Fatalf("prompt = %v %q", res, acpAgentText(before))
	}
	if msgs := p.messages(acmeKey, sid); len(msgs) != 2 {
		t.Errorf("the HTTP API sees %d messages; want 2", len(msgs))
	}
	if r := p.do("GET", "/v1/sessions/"+sid, globexKey, ""); r.Status != 404 {
		t.Errorf("another tenant sees the ACP session: %d", r.Status)
	}
	// A session made over HTTP loads over ACP, with its history.
	httpID := p.create(acmeKey)
	p.turn(acmeKey, httpID, "made over HTTP")
	_, replay := c.call("session/load", map[string]any{"sessionId": httpID, "cwd": "/", "mcpServers": []any{}})
	if got := acpAgentText(replay); got != "echo: made over HTTP" {
		t.Errorf("replay of an HTTP session = %q", got)
	}
	other := acpDial(t, p, globexKey, "mallory")
	other.initialize()
	_, resp := other.until(other.request("session/load", map[string]any{"sessionId": sid, "cwd": "/", "mcpServers": []any{}}), nil)
	if e, _ := resp["error"].(map[string]any); e == nil || e["code"] != float64(-32002) {
		t.Errorf("another tenant's load = %v; want -32002", resp)
	}

	calls := llm.Calls() // before the request: the call may land at once
	pid := c.request("session/prompt", acpText(sid, "[[hang]]"))
	waitFor(t, func() bool { return llm.Calls() > calls })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, resp := c.until(pid, nil); resp.result()["stopReason"] != "cancelled" {
		t.Errorf("prompt at SIGTERM = %v; want cancelled", resp)
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit = %d\n%s", code, p.logs.String())
	}
}

// TestACPSessionsOverWebSocket: session/list shows the tenant's sessions,
// also those made over HTTP, and not another tenant's; session/resume
// re-attaches without a replay; session/close ends a running prompt first.
func TestACPSessionsOverWebSocket(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir())
	httpID := p.create(acmeKey)
	p.turn(acmeKey, httpID, "made over HTTP")
	p.create(globexKey)
	c := acpDial(t, p, acmeKey, "alice")
	c.initialize()
	sid := c.newSession()

	res, _ := c.call("session/list", map[string]any{})
	var ids []string
	var title any
	for _, s := range res["sessions"].([]any) {
		info := s.(map[string]any)
		ids = append(ids, info["sessionId"].(string))
		if info["sessionId"] == httpID {
			title = info["title"]
		}
	}
	if strings.Join(ids, " ") != sid+" "+httpID || title != "made over HTTP" || res["nextCursor"] != nil {
		t.Errorf("session/list = %v; want %s then %s (titled), no other tenant's", res, sid, httpID)
	}

	other := acpDial(t, p, acmeKey, "bob")
	other.initialize()
	if _, before := other.call("session/resume", map[string]any{"sessionId": httpID, "cwd": "/"}); len(before) != 0 {
		t.Errorf("session/resume sent %v before its response; want no replay", before)
	}
	if res, before := other.call("session/prompt", acpText(httpID, "resumed")); res["stopReason"] != "end_turn" || acpAgentText(before) != "echo: resumed" {
		t.Errorf("prompt after resume = %v %q", res, acpAgentText(before))
	}

	calls := llm.Calls()
	pid := c.request("session/prompt", acpText(sid, "[[hang]]"))
	waitFor(t, func() bool { return llm.Calls() > calls })
	cid := c.request("session/close", map[string]any{"sessionId": sid})
	var order []string
	for len(order) < 2 {
		switch m := c.read(); {
		case m.method() != "":
		case m.id() == pid:
			order = append(order, fmt.Sprint("prompt ", m.result()["stopReason"]))
		case m.id() == cid:
			order = append(order, "close")
		}
	}
	if strings.Join(order, ", ") != "prompt cancelled, close" {
		t.Errorf("answers = %v; want the prompt's (cancelled), then the close's", order)
	}
}

// TestACPInteropTypeScriptSDK runs internal/acp/interop/interop.mjs: the
// official ACP TypeScript SDK (@agentclientprotocol/sdk 2.4.0) as the client
// of `agentd acp` over stdio and of GET /v1/acp over WebSocket.
func TestACPInteropTypeScriptSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED: node is not installed")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("SKIPPED: npm is not installed")
	}
	_, self, _, _ := runtime.Caller(0)
	project := filepath.Join(filepath.Dir(self), "..", "..", "internal", "acp", "interop")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "interop.mjs"} {
		b, err := os.ReadFile(filepath.Join(project, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, f, string(b))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: npm ci of the interop project failed (no registry or cache?): %v\n%s", err, out)
	}

	llm := llmtest.NewServer(t)
	serveData := t.TempDir()
	srv := start(t, llm, serveData)
	wsURL := ""
	if r := srv.do("GET", "/v1/acp", acmeKey, ""); r.Status != http.StatusNotFound {
		wsURL = "ws" + strings.TrimPrefix(srv.url, "http") + "/v1/acp"
	} else {
		t.Log("GET /v1/acp is not mounted in this build: the WebSocket part is skipped")
	}
	cmd := exec.CommandContext(ctx, node, "interop.mjs")
	cmd.Dir = dir
	cmd.Env = append(acpEnv(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+acpAskConfig(t)),
		"AGENTD_BIN="+binary, "AGENTD_WS_URL="+wsURL, "AGENTD_WS_KEY="+acmeKey)
	out, err := cmd.CombinedOutput()
	t.Logf("interop.mjs:\n%s", out)
	if err != nil || !strings.Contains(string(out), "ok: interop passed") {
		t.Fatalf("interop with the TypeScript SDK failed: %v", err)
	}
	steps := []string{"ok: stdio session/list", "ok: stdio session/close"}
	if wsURL != "" {
		steps = append(steps, "ok: websocket session/resume")
	}
	for _, step := range steps {
		if !strings.Contains(string(out), step) {
			t.Errorf("interop.mjs did not run %q", step)
		}
	}
}
