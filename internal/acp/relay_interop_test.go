package acp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/session"
)

// TestRelayInteropTypeScriptSDK: the official ACP TypeScript SDK talks to
// replica b about a session a owns (interop/relay.mjs): load, a
// permission round trip, a cancel, and the relay's errors.
func TestRelayInteropTypeScriptSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED: node is not installed")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("SKIPPED: npm is not installed")
	}
	_, self, _, _ := runtime.Caller(0)
	project := filepath.Join(filepath.Dir(self), "interop")
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "relay.mjs"} {
		b, err := os.ReadFile(filepath.Join(project, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: npm ci of the interop project failed (no registry or cache?): %v\n%s", err, out)
	}

	a, b, d := newFleet(t, session.Config{ApprovalTimeout: time.Hour},
		agenttest.Reply("history"),
		agenttest.Calls("run_shell_command", `{"command":"touch x.txt"}`), agenttest.Reply("done"),
		agenttest.Step{Block: true})
	sid := remoteSession(t, a, d)
	pa := dialPeer(t, a.ts.URL, wsKey, "alice")
	pa.initialize()
	pa.call("session/prompt", textPrompt(sid, "first"))
	_, replayed := pa.call("session/load", loadParams(sid))
	down := httptest.NewServer(http.NotFoundHandler())
	d.member("c", down.URL)
	down.Close()
	downSID, orphan := session.NewID(time.Now(), ""), session.NewID(time.Now(), "")
	d.own(string(downSID), "c")
	d.own(string(orphan), "gone")

	cmd := exec.CommandContext(ctx, node, "relay.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"AGENTD_WS_URL="+strings.Replace(b.ts.URL, "http", "ws", 1)+"/v1/acp", "AGENTD_WS_KEY="+wsKey,
		"AGENTD_SESSION="+sid, fmt.Sprintf("AGENTD_REPLAY=%d", len(updatesOf(replayed))),
		"AGENTD_DOWN_SESSION="+string(downSID), "AGENTD_ORPHAN_SESSION="+string(orphan))
	out, err := cmd.CombinedOutput()
	t.Logf("relay.mjs:\n%s", out)
	if err != nil || !strings.Contains(string(out), "ok: relay interop passed") {
		t.Fatalf("relay interop with the TypeScript SDK failed: %v", err)
	}
	if len(a.shell.Calls()) != 1 {
		t.Errorf("the tool ran %d times on a; want once", len(a.shell.Calls()))
	}
	waitFor(t, func() bool {
		s, err := a.pool.Get(t.Context(), "acme", session.ID(sid))
		return err == nil && len(s.Turns) == 3
	})
}
