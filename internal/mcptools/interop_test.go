package mcptools

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// allowSkipInterop lets machines without node/npm skip the interop test;
// otherwise it fails, so that CI cannot lose it silently.
const allowSkipInterop = "AGENTD_ALLOW_SKIP_MCP_INTEROP"

// interopUnavailable fails the test, or skips it when allowed.
func interopUnavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(allowSkipInterop) == "1" {
		t.Skipf("SKIPPED ("+allowSkipInterop+"=1): "+format, args...)
	}
	t.Fatalf(format+" (set "+allowSkipInterop+"=1 to skip this test on a machine without them)", args...)
}

// TestMCPInteropServerEverything runs the reference MCP server
// @modelcontextprotocol/server-everything, pinned in interop/package.json
// and package-lock.json, through the Manager over stdio and over
// Streamable HTTP on 127.0.0.1.
func TestMCPInteropServerEverything(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		interopUnavailable(t, "node is not installed: it is needed to run @modelcontextprotocol/server-everything")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		interopUnavailable(t, "npm is not installed: it is needed to install @modelcontextprotocol/server-everything")
	}
	_, here, _, _ := runtime.Caller(0)
	project := filepath.Join(filepath.Dir(here), "interop")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "loopback-only.cjs"} {
		b, err := os.ReadFile(filepath.Join(project, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		interopUnavailable(t, "npm ci of internal/mcptools/interop failed (no registry or cache?): %v\n%s", err, out)
	}
	index := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js")

	check := func(t *testing.T, m *Manager) {
		t.Helper()
		h := health(m, "everything")
		if h.State != StateConnected || h.Tools < 10 {
			t.Fatalf("health = %+v; want connected with its tools", h)
		}
		t.Logf("server-everything: %d tools, protocol %s", h.Tools, h.Protocol)
		tools := toolMap(m.Tools())
		for _, n := range []string{"mcp_everything_echo", "mcp_everything_get_sum", "mcp_everything_get_tiny_image"} {
			if _, ok := tools[n]; !ok {
				t.Errorf("no %s in %v", n, names(m.Tools()))
			}
		}
		if s := tools["mcp_everything_echo"].Spec(); !s.Confirm || !strings.HasPrefix(s.Description, "[MCP:everything] ") ||
			!strings.Contains(string(s.Parameters), `"message"`) {
			t.Errorf("echo spec = %+v (%s)", s, s.Parameters)
		}
		if got, err := run(t, tools["mcp_everything_echo"], `{"message":"hi"}`); err != nil || got != "Echo: hi" {
			t.Errorf("echo = %q, %v; want \"Echo: hi\"", got, err)
		}
		if got, err := run(t, tools["mcp_everything_get_sum"], `{"a":2,"b":3}`); err != nil || !strings.Contains(got, "5") {
			t.Errorf("get-sum(2, 3) = %q, %v", got, err)
		}
		if got, err := run(t, tools["mcp_everything_get_tiny_image"], `{}`); err != nil || !strings.Contains(got, "[image: image/png,") {
			t.Errorf("get-tiny-image = %q, %v", got, err)
		}
	}

	t.Run("stdio", func(t *testing.T) {
		cfg := ServerConfig{Transport: TransportStdio, Command: node, Args: []string{index, "stdio"}}
		m, _ := newManager(t, map[string]ServerConfig{"everything": cfg}, Options{Dir: dir})
		check(t, m)
		pid := health(m, "everything").PID
		m.Close()
		if m.Children() != 0 || alive(pid) {
			t.Errorf("node %d survived Close (children %d)", pid, m.Children())
		}
	})

	t.Run("streamableHttp", func(t *testing.T) {
		srv := exec.Command(node, "--require", filepath.Join(dir, "loopback-only.cjs"), index, "streamableHttp")
		srv.Dir = dir
		srv.Env = append(os.Environ(), "PORT=0")
		srv.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stderr, err := srv.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			syscall.Kill(-srv.Process.Pid, syscall.SIGKILL)
			srv.Wait()
		})
		addr := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if a, ok := strings.CutPrefix(sc.Text(), "agentd-loopback-listening "); ok {
					select {
					case addr <- a:
					default:
					}
				}
			}
		}()
		var url string
		select {
		case a := <-addr:
			if !strings.HasPrefix(a, "127.0.0.1:") {
				t.Fatalf("server-everything listens on %s, not loopback", a)
			}
			url = "http://" + a + "/mcp"
		case <-time.After(waitLimit):
			t.Fatal("server-everything did not report its address")
		}
		m, _ := newManager(t, map[string]ServerConfig{"everything": {Transport: TransportHTTP, URL: url}}, Options{})
		check(t, m)
	})
}
