package mcptools

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentd/agentd/internal/agent"
)

// waitLimit bounds every wait for something asynchronous; it is a
// deadlock guard, not a timing assertion.
const waitLimit = 60 * time.Second

// self is the path of the test binary, which serves MCP on stdio when
// serverModeEnv is set (see TestMain).
func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// stdioServer is a config entry running the test binary as a server.
func stdioServer(t *testing.T, mode string, env map[string]string) ServerConfig {
	e := map[string]string{serverModeEnv: mode, "GORACE": noExitSleep}
	for k, v := range env {
		e[k] = v
	}
	return ServerConfig{Transport: TransportStdio, Command: self(t), Env: e, Trust: true}
}

// noExitSleep stops a -race test binary serving MCP from sleeping a
// second at exit, which would make every Close wait for it.
const noExitSleep = "atexit_sleep_ms=0"

// newManager returns a started Manager that the test closes, and the
// observer of its logs.
func newManager(t *testing.T, servers map[string]ServerConfig, opts Options) (*Manager, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	opts.Logger = zap.New(core)
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	m := New(Config{Servers: servers}, opts)
	t.Cleanup(func() { m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return m, logs
}

func toolMap(ts []agent.Tool) map[string]agent.Tool {
	out := map[string]agent.Tool{}
	for _, t := range ts {
		out[t.Spec().Name] = t
	}
	return out
}

func names(ts []agent.Tool) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Spec().Name)
	}
	return out
}

func mustTool(t *testing.T, m *Manager, name string) agent.Tool {
	t.Helper()
	tool, ok := toolMap(m.Tools())[name]
	if !ok {
		t.Fatalf("no tool %s in %v; health %+v", name, names(m.Tools()), m.Health())
	}
	return tool
}

func run(t *testing.T, tool agent.Tool, args string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	return tool.Run(ctx, agent.Call{ID: "c1", Name: tool.Spec().Name, Args: []byte(args), Output: func(string) {}})
}

// eventually polls cond until it holds, failing after waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func health(m *Manager, name string) ServerHealth {
	for _, h := range m.Health() {
		if h.Name == name {
			return h
		}
	}
	return ServerHealth{}
}

// transports reaches newTestServer over stdio (the test binary itself),
// Streamable HTTP and SSE.
func transports(t *testing.T) map[string]func(t *testing.T) ServerConfig {
	return map[string]func(t *testing.T) ServerConfig{
		"stdio": func(t *testing.T) ServerConfig { return stdioServer(t, "stdio", nil) },
		"http": func(t *testing.T) ServerConfig {
			return ServerConfig{Transport: TransportHTTP, URL: startHTTP(t, newTestServer(3)), Trust: true}
		},
		"sse": func(t *testing.T) ServerConfig {
			return ServerConfig{Transport: TransportSSE, URL: startSSE(t, newTestServer(3)), Trust: true}
		},
	}
}

func TestTransports(t *testing.T) {
	for name, server := range transports(t) {
		t.Run(name, func(t *testing.T) {
			m, _ := newManager(t, map[string]ServerConfig{"test": server(t)}, Options{})
			h := health(m, "test")
			if h.State != StateConnected || h.Tools != len(testToolNames) {
				t.Fatalf("health = %+v; want connected with %d tools", h, len(testToolNames))
			}
			if (h.PID != 0) != (name == "stdio") {
				t.Errorf("PID = %d for %s", h.PID, name)
			}
			var want []string
			for _, n := range testToolNames {
				want = append(want, "mcp_test_"+n)
			}
			got := names(m.Tools())
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("tools (listed over pages of 3) = %v; want %v", got, want)
			}

			cases := []struct {
				tool, args, want, wantErr string
			}{
				{"echo", `{"text":"hi"}`, "echo: hi", ""},
				{"add", `{"a":2,"b":3}`, "5", ""},
				{"fail", `{}`, "", "it failed on purpose"},
				{"image", ``, fmt.Sprintf("[image: image/png, %d bytes]", imageBytes), ""},
				{"structured", `{}`, `{"answer":42}`, ""},
				{"resource", `{}`, "resource text\n[resource: file:///b.bin, application/octet-stream, 4 bytes]", ""},
				{"peek", `{}`, "peeked", ""},
				{"echo", `[1,2]`, "", "must be a JSON object"},
			}
			for _, c := range cases {
				got, err := run(t, mustTool(t, m, "mcp_test_"+c.tool), c.args)
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Errorf("%s(%s) = %q, %v; want error %q", c.tool, c.args, got, err, c.wantErr)
					}
					continue
				}
				if err != nil || got != c.want {
					t.Errorf("%s(%s) = %q, %v; want %q", c.tool, c.args, got, err, c.want)
				}
			}

			spec := mustTool(t, m, "mcp_test_echo").Spec()
			if spec.Description != "[MCP:test] Echoes text." {
				t.Errorf("description = %q", spec.Description)
			}
			if !strings.Contains(string(spec.Parameters), `"text"`) || !strings.Contains(string(spec.Parameters), `"object"`) {
				t.Errorf("parameters = %s", spec.Parameters)
			}
			if s := mustTool(t, m, "mcp_test_peek").Spec(); !s.ReadOnly || s.Confirm {
				t.Errorf("peek (trusted, readOnlyHint) ReadOnly=%v Confirm=%v; want true false", s.ReadOnly, s.Confirm)
			}
			if s := mustTool(t, m, "mcp_test_wipe").Spec(); s.ReadOnly || !s.Confirm {
				t.Errorf("wipe (trusted, destructiveHint) ReadOnly=%v Confirm=%v; want false true", s.ReadOnly, s.Confirm)
			}
			if s := spec; s.ReadOnly || s.Confirm {
				t.Errorf("echo (trusted, no hints) ReadOnly=%v Confirm=%v; want false false", s.ReadOnly, s.Confirm)
			}
		})
	}
}

func TestUntrustedServerConfirmsEverything(t *testing.T) {
	cfg := ServerConfig{Transport: TransportHTTP, URL: startHTTP(t, newTestServer(100))}
	m, _ := newManager(t, map[string]ServerConfig{"u": cfg}, Options{})
	for _, tool := range m.Tools() {
		if s := tool.Spec(); !s.Confirm || s.ReadOnly {
			t.Errorf("%s on an untrusted server: Confirm=%v ReadOnly=%v; want true false", s.Name, s.Confirm, s.ReadOnly)
		}
	}
}

func TestCancelCall(t *testing.T) {
	for name, server := range transports(t) {
		t.Run(name, func(t *testing.T) {
			m, _ := newManager(t, map[string]ServerConfig{"test": server(t)}, Options{})
			slow := mustTool(t, m, "mcp_test_slow")
			marker := filepath.Join(t.TempDir(), "started")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := slow.Run(ctx, agent.Call{Args: []byte(fmt.Sprintf(`{"marker":%q}`, marker)), Output: func(string) {}})
				done <- err
			}()
			eventually(t, "the slow tool to start", func() bool { _, err := os.Stat(marker); return err == nil })
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("canceled call: %v; want context.Canceled", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("a canceled call did not return")
			}
			// The connection survives a canceled call.
			if got, err := run(t, mustTool(t, m, "mcp_test_echo"), `{"text":"after"}`); err != nil || got != "echo: after" {
				t.Fatalf("echo after cancel = %q, %v", got, err)
			}
		})
	}
}

func TestRequestTimeout(t *testing.T) {
	cfg := stdioServer(t, "stdio", nil)
	cfg.RequestTimeout = 50 * time.Millisecond
	m, _ := newManager(t, map[string]ServerConfig{"test": cfg}, Options{})
	_, err := run(t, mustTool(t, m, "mcp_test_slow"), `{}`)
	if err == nil || !strings.Contains(err.Error(), "request timeout") {
		t.Fatalf("slow with a request timeout: %v", err)
	}
	if h := health(m, "test"); h.State != StateConnected {
		t.Fatalf("a timed-out call took the server down: %+v", h)
	}
}

func TestToolsListChanged(t *testing.T) {
	for name, server := range transports(t) {
		t.Run(name, func(t *testing.T) {
			m, _ := newManager(t, map[string]ServerConfig{"test": server(t)}, Options{})
			if got, err := run(t, mustTool(t, m, "mcp_test_add_tool"), `{"name":"extra"}`); err != nil || got != "added extra" {
				t.Fatalf("add_tool = %q, %v", got, err)
			}
			eventually(t, "the new tool after notifications/tools/list_changed", func() bool {
				_, ok := toolMap(m.Tools())["mcp_test_extra"]
				return ok
			})
			if got, err := run(t, mustTool(t, m, "mcp_test_extra"), `{}`); err != nil || got != "I am extra" {
				t.Fatalf("extra = %q, %v", got, err)
			}
		})
	}
}

func TestStdioEnvironmentIsScrubbed(t *testing.T) {
	dir := t.TempDir()
	base := []string{
		"PATH=" + os.Getenv("PATH"),
		"OPENAI_API_KEY=sk-secret",
		"ANTHROPIC_API_KEY=secret",
		"LLM_EXTRA_BODY={}",
		"AGENTD_API_KEYS=key=acme",
		"AGENTD_DATA=/data",
		"SOME_API_KEY=secret",
		"KEEP_ME=kept",
		"GITHUB_TOKEN=from-base",
		"PWD=/somewhere/else",
	}
	cfg := stdioServer(t, "stdio", map[string]string{
		"GITHUB_TOKEN":     "explicit-token",
		"EXPLICIT_API_KEY": "explicit-key",
	})
	cfg.Cwd = "sub"
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(t, map[string]ServerConfig{"test": cfg}, Options{Dir: dir, Env: func() []string { return base }})
	got, err := run(t, mustTool(t, m, "mcp_test_env"),
		`{"names":["OPENAI_API_KEY","ANTHROPIC_API_KEY","LLM_EXTRA_BODY","AGENTD_API_KEYS","AGENTD_DATA","SOME_API_KEY","KEEP_ME","GITHUB_TOKEN","EXPLICIT_API_KEY","PWD"]}`)
	if err != nil {
		t.Fatal(err)
	}
	realSub, _ := filepath.EvalSymlinks(filepath.Join(dir, "sub"))
	for _, want := range []string{
		"OPENAI_API_KEY unset", "ANTHROPIC_API_KEY unset", "LLM_EXTRA_BODY unset",
		"AGENTD_API_KEYS unset", "AGENTD_DATA unset", "SOME_API_KEY unset",
		"KEEP_ME=kept", "GITHUB_TOKEN=explicit-token", "EXPLICIT_API_KEY=explicit-key",
		"PWD=" + filepath.Join(dir, "sub"), "cwd=" + realSub,
	} {
		if !strings.Contains(got, want+"\n") && !strings.HasSuffix(got, want) {
			t.Errorf("child environment lacks %q:\n%s", want, got)
		}
	}
}

func TestChildEnv(t *testing.T) {
	base := []string{"A=1", "openai_api_key=x", "Agentd_X=1", "X_API_KEY=1", "CUSTOM=1", "PWD=/x", "B=2", "noequals"}
	got := childEnv(base, []string{"OPENAI_API_KEY", "CUSTOM"}, map[string]string{"B": "explicit", "X_API_KEY": "mine"}, "/w")
	want := []string{"A=1", "PWD=/w", "B=explicit", "X_API_KEY=mine"}
	if !slices.Equal(got, want) {
		t.Fatalf("childEnv = %v; want %v", got, want)
	}
}

func TestStderrIsLogged(t *testing.T) {
	m, logs := newManager(t, map[string]ServerConfig{"test": stdioServer(t, "stdio", nil)}, Options{})
	_ = m
	eventually(t, "the child's stderr line in the log", func() bool {
		for _, e := range logs.FilterMessage("MCP server stderr").All() {
			if e.ContextMap()["line"] == "test MCP server: serving stdio" && e.ContextMap()["mcp_server"] == "test" {
				return true
			}
		}
		return false
	})
}

func TestFailingServersDoNotStopOthers(t *testing.T) {
	// A port nothing listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/mcp"
	ln.Close()
	servers := map[string]ServerConfig{
		"good":    stdioServer(t, "stdio", nil),
		"missing": {Transport: TransportStdio, Command: "/nonexistent/mcp-server"},
		"crashes": {Transport: TransportStdio, Command: "sh", Args: []string{"-c", "echo boom >&2; exit 3"}},
		"nohttp":  {Transport: TransportHTTP, URL: refused},
		"slow":    {Transport: TransportStdio, Command: "sleep", Args: []string{"300"}, StartupTimeout: 200 * time.Millisecond},
	}
	m, _ := newManager(t, servers, Options{RetryInterval: time.Hour})
	want := map[string]string{
		"missing": "no such file",
		"crashes": "boom",
		"nohttp":  "initialize",
		"slow":    "did not start within 200ms",
	}
	for name, msg := range want {
		h := health(m, name)
		if h.State != StateFailed || !strings.Contains(h.LastError, msg) {
			t.Errorf("%s: %+v; want failed with %q", name, h, msg)
		}
	}
	if h := health(m, "good"); h.State != StateConnected {
		t.Fatalf("good: %+v", h)
	}
	for _, n := range names(m.Tools()) {
		if !strings.HasPrefix(n, "mcp_good_") {
			t.Errorf("tool %s of a failed server is offered", n)
		}
	}
	if got, err := run(t, mustTool(t, m, "mcp_good_echo"), `{"text":"x"}`); err != nil || got != "echo: x" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	if n := m.Children(); n != 1 {
		t.Errorf("Children() = %d; want 1 (the failed ones are reaped)", n)
	}
	// Not retried before RetryInterval.
	before := health(m, "missing").LastAttempt
	m.Tools()
	if after := health(m, "missing").LastAttempt; !after.Equal(before) {
		t.Errorf("a failed server was retried before its retry interval")
	}
}

func TestFailedServerIsRetried(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "ok")
	// Fails until the flag file exists.
	cfg := ServerConfig{Transport: TransportStdio, Command: "sh",
		Args: []string{"-c", `test -e "$FLAG" || exit 1; exec "$SELF"`},
		Env:  map[string]string{"FLAG": flag, "SELF": self(t), serverModeEnv: "stdio", "GORACE": noExitSleep}}
	m, _ := newManager(t, map[string]ServerConfig{"later": cfg}, Options{RetryInterval: time.Millisecond})
	if h := health(m, "later"); h.State != StateFailed {
		t.Fatalf("health = %+v; want failed", h)
	}
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the server to be retried by Tools", func() bool {
		_, ok := toolMap(m.Tools())["mcp_later_echo"]
		return ok
	})
}

func TestDefaultRetryInterval(t *testing.T) {
	m := New(Config{}, Options{})
	defer m.Close()
	if m.opts.RetryInterval != 30*time.Second || DefaultRetryInterval != 30*time.Second {
		t.Fatalf("retry interval = %v; want 30s", m.opts.RetryInterval)
	}
}

func TestKilledChildIsReconnected(t *testing.T) {
	m, _ := newManager(t, map[string]ServerConfig{"test": stdioServer(t, "stdio", nil)}, Options{RetryInterval: time.Millisecond})
	echo := mustTool(t, m, "mcp_test_echo")
	old := health(m, "test").PID
	if old == 0 {
		t.Fatal("no pid")
	}
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the dead server to be marked down", func() bool {
		h := health(m, "test")
		return h.State == StateFailed && strings.Contains(h.LastError, "connection lost")
	})
	eventually(t, "the dead child to be reaped", func() bool { return m.Children() == 0 })
	if _, err := run(t, echo, `{"text":"x"}`); err == nil || !strings.Contains(err.Error(), "may have stopped") {
		t.Errorf("call to a dead server: %v; want an error saying it may have stopped", err)
	}
	eventually(t, "Tools to reconnect the server", func() bool {
		_, ok := toolMap(m.Tools())["mcp_test_echo"]
		return ok
	})
	h := health(m, "test")
	if h.PID == 0 || h.PID == old {
		t.Fatalf("pid after reconnect = %d (old %d)", h.PID, old)
	}
	// A tool handle from before the crash uses the new connection.
	if got, err := run(t, echo, `{"text":"back"}`); err != nil || got != "echo: back" {
		t.Fatalf("echo after reconnect = %q, %v", got, err)
	}
	if alive(old) {
		t.Errorf("the killed child %d was not reaped", old)
	}
}

// procState is the state letter of /proc/pid/stat, "" if there is none.
func procState(pid int) (state string, pgrp int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return "", 0
	}
	pgrp, _ = strconv.Atoi(f[2])
	return f[0], pgrp
}

// alive reports a process that exists and is not a zombie.
func alive(pid int) bool {
	st, _ := procState(pid)
	return st != "" && st != "Z"
}

// groupMembers lists the live processes in process group pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, g := procState(pid); g == pgid && st != "" && st != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

func TestCloseKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "sleeper.pid")
	// sh starts a sleeper that ignores SIGTERM, then becomes the server.
	cfg := ServerConfig{Transport: TransportStdio, Command: "sh",
		Args: []string{"-c", `trap "" TERM; sleep 300 & echo $! > "$PIDFILE"; exec "$SELF"`},
		Env:  map[string]string{"PIDFILE": pidfile, "SELF": self(t), serverModeEnv: "stdio", "GORACE": noExitSleep}}
	m, _ := newManager(t, map[string]ServerConfig{"group": cfg}, Options{KillGrace: 100 * time.Millisecond})
	leader := health(m, "group").PID
	if leader == 0 || m.Children() != 1 {
		t.Fatalf("health %+v, children %d", m.Health(), m.Children())
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	sleeper, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !alive(sleeper) {
		t.Fatalf("sleeper %d is not running", sleeper)
	}
	if _, pg := procState(sleeper); pg != leader {
		t.Fatalf("sleeper's group = %d; want the server's own group %d", pg, leader)
	}

	m.Close()
	if m.Children() != 0 {
		t.Errorf("Children() = %d after Close", m.Children())
	}
	if alive(leader) {
		t.Errorf("server %d survived Close", leader)
	}
	// The sleeper was killed; its reaping is up to whoever inherited it.
	eventually(t, "the grandchild to die", func() bool { return !alive(sleeper) })
	if left := groupMembers(leader); len(left) > 0 {
		t.Errorf("processes left in the group after Close: %v", left)
	}
	if h := health(m, "group"); h.State != StateClosed {
		t.Errorf("state after Close = %s", h.State)
	}
}

func TestCloseKillsAStubbornServer(t *testing.T) {
	m, _ := newManager(t, map[string]ServerConfig{"stubborn": stdioServer(t, "stubborn", nil)}, Options{KillGrace: 50 * time.Millisecond})
	pid := health(m, "stubborn").PID
	if pid == 0 {
		t.Fatalf("health = %+v", m.Health())
	}
	m.Close()
	if alive(pid) || m.Children() != 0 {
		t.Fatalf("a server ignoring SIGTERM and stdin EOF survived Close (children %d)", m.Children())
	}
}

func TestCloseCancelsCallsAndIsIdempotent(t *testing.T) {
	m, _ := newManager(t, map[string]ServerConfig{"test": stdioServer(t, "stdio", nil)}, Options{})
	slow := mustTool(t, m, "mcp_test_slow")
	marker := filepath.Join(t.TempDir(), "started")
	done := make(chan error, 1)
	go func() {
		_, err := slow.Run(context.Background(), agent.Call{Args: []byte(fmt.Sprintf(`{"marker":%q}`, marker)), Output: func(string) {}})
		done <- err
	}()
	eventually(t, "the slow tool to start", func() bool { _, err := os.Stat(marker); return err == nil })
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Close()
		}()
	}
	wg.Wait()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("in-flight call after Close: %v; want ErrClosed", err)
	}
	if m.Tools() != nil {
		t.Error("Tools after Close is not nil")
	}
	if err := m.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v", err)
	}
	if _, err := run(t, slow, `{}`); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
	if m.Children() != 0 {
		t.Errorf("Children() = %d after Close", m.Children())
	}
}

func TestConcurrentUse(t *testing.T) {
	m, _ := newManager(t, map[string]ServerConfig{
		"a": stdioServer(t, "stdio", nil),
		"b": {Transport: TransportHTTP, URL: startHTTP(t, newTestServer(3)), Trust: true},
	}, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			server := []string{"a", "b"}[i%2]
			tools := toolMap(m.Tools())
			got, err := run(t, tools["mcp_"+server+"_add"], fmt.Sprintf(`{"a":%d,"b":1}`, i))
			if err != nil || got != strconv.Itoa(i+1) {
				errs <- fmt.Errorf("add(%d, 1) on %s = %q, %v", i, server, got, err)
			}
			_ = m.Health()
			_ = m.Children()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRawServer(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		tools int
	}{
		{"two pages", map[string]string{"RAW_PAGES": "2"}, 2},
		{"cursor loop stops", map[string]string{"RAW_CURSOR_LOOP": "1"}, 2},
		{"page cap", map[string]string{"RAW_PAGES": "150"}, MaxListPages},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _ := newManager(t, map[string]ServerConfig{"raw": stdioServer(t, "raw", c.env)}, Options{})
			if h := health(m, "raw"); h.State != StateConnected || h.Tools != c.tools {
				t.Fatalf("health = %+v; want connected with %d tools", h, c.tools)
			}
		})
	}
	t.Run("out of order responses", func(t *testing.T) {
		m, _ := newManager(t, map[string]ServerConfig{"raw": stdioServer(t, "raw", nil)}, Options{})
		tools := toolMap(m.Tools())
		var wg sync.WaitGroup
		got := make([]string, 2)
		for i, n := range []string{"first", "second"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := run(t, tools["mcp_raw_"+n], `{}`)
				if err != nil {
					out = err.Error()
				}
				got[i] = out
			}()
		}
		wg.Wait()
		if got[0] != "first done" || got[1] != "second done" {
			t.Fatalf("results = %q", got)
		}
	})
}

func TestToolCap(t *testing.T) {
	srv := mcpserver.NewMCPServer("many", "1", mcpserver.WithPaginationLimit(50))
	for i := range MaxServerTools + 76 {
		srv.AddTool(mcp.NewTool(fmt.Sprintf("t%04d", i)), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		})
	}
	m, _ := newManager(t, map[string]ServerConfig{"many": {Transport: TransportHTTP, URL: startHTTP(t, srv)}}, Options{})
	if h := health(m, "many"); h.Tools != MaxServerTools {
		t.Fatalf("tools = %d; want the cap %d", h.Tools, MaxServerTools)
	}
	if n := len(m.Tools()); n != MaxServerTools {
		t.Fatalf("len(Tools()) = %d", n)
	}
}

func TestHTTPHeaders(t *testing.T) {
	h := mcpserver.NewStreamableHTTPServer(newTestServer(100))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0k" {
			http.Error(w, "unauthorized", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	cfg, err := Parse([]byte(`{"mcpServers":{
		"ok":  {"url": "`+ts.URL+`/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
		"bad": {"url": "`+ts.URL+`/mcp", "headers": {"Authorization": "Bearer wrong"}}}}`), testVars)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := newManager(t, cfg.Servers, Options{})
	if got, err := run(t, mustTool(t, m, "mcp_ok_echo"), `{"text":"h"}`); err != nil || got != "echo: h" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	if h := health(m, "bad"); h.State != StateFailed {
		t.Fatalf("server with a wrong header: %+v", h)
	}
}
