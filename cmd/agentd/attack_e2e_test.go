//go:build linux

package main_test

// The hostile-tenant suite: one tenant's model, under full-access rules
// (the loosest there are: assume it is prompt-injected), tries to reach
// what is not its own through run_shell_command. Each attack must fail,
// and agentd and the other tenant must not notice. It runs against the real
// binary, as root on the CI host and again inside the image as uid 10001
// (scripts/ci-docker.sh), because the two differ.

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

// attackArg makes the test binary a small client that sandboxed commands
// run: "<test binary> __attack unix <path|@name>" connects to a UNIX socket
// and prints "connected" or the failing call.
const attackArg = "__attack"

func attackClient(args []string) int {
	if len(args) != 2 || args[0] != "unix" {
		fmt.Println("usage: __attack unix <path|@name>")
		return 2
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		fmt.Println("socket:", err)
		return 1
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: args[1]}); err != nil {
		fmt.Println("connect:", err)
		return 1
	}
	fmt.Println("connected")
	return 0
}

// tenantShell runs one shell command as key's model and returns the tool
// result the model saw.
func tenantShell(p *proc, llm *llmtest.Server, key, id string, args map[string]any) string {
	p.t.Helper()
	b, _ := json.Marshal(args)
	if r := p.turn(key, id, "[[tool run_shell_command "+string(b)+"]]"); r.Status != 200 {
		p.t.Fatalf("turn = %d %s", r.Status, r.Raw)
	}
	return lastToolResult(llm)
}

// hostile is one agentd with two tenants: acme's model attacks, globex is
// the bystander with a file and a running background command.
type hostile struct {
	t         *testing.T
	llm       *llmtest.Server
	p         *proc
	keysFile  string
	keys      []string // every API key, admin included
	config    string
	acme      string // the attacker's session
	globex    string // the bystander's session
	globexWS  string
	globexPID int // its background command
}

func startHostile(t *testing.T, env ...string) *hostile {
	t.Helper()
	h := &hostile{t: t, llm: llmtest.NewServer(t)}
	h.config = configDir(t, "{}")
	// The test binary is the commands' socket client: the operator names
	// its directory for the default profile.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.config, ".agentao/sandbox.json", fmt.Sprintf(
		`{"default_profile": "workspace-write-no-network", "profiles": {"workspace-write-no-network": {"read_only_paths": [%q]}}}`, filepath.Dir(self)))
	writeFile(t, h.config, ".agentao/mcp.json", `{"mcpServers": {}}`)
	// The keys file: beneath /etc, a path every command may read, when the
	// test may write there (root on the CI host); else a private directory.
	h.keys = []string{acmeKey, globexKey, opsKey}
	keysDoc := fmt.Sprintf("%s=acme\n%s=globex\n%s=ops:admin\n", acmeKey, globexKey, opsKey)
	if f, err := os.CreateTemp("/etc", "agentd-e2e-keys-"); err == nil {
		h.keysFile = f.Name()
		f.WriteString(keysDoc)
		f.Close()
		t.Cleanup(func() { os.Remove(h.keysFile) })
	} else {
		h.keysFile = filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(h.keysFile, []byte(keysDoc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h.p = start(t, h.llm, t.TempDir(), append([]string{
		"AGENTD_CONFIG_DIR=" + h.config,
		"AGENTD_API_KEYS=",
		"AGENTD_API_KEYS_FILE=" + h.keysFile,
		"GITHUB_TOKEN=ghp-operator-token-for-mcp-json",
		"AWS_SECRET_ACCESS_KEY=operator-aws-secret",
	}, env...)...)
	h.acme = h.p.create(acmeKey)
	h.globex = h.p.create(globexKey)
	h.globexWS = filepath.Join(h.p.data, "workspaces", "globex", h.globex)
	res := tenantShell(h.p, h.llm, globexKey, h.globex, map[string]any{"command": "echo globex-secret > secret.txt; echo $$ > bg.pid; exec sleep 1000", "is_background": true})
	if !strings.Contains(res, "Background command started") {
		t.Fatalf("globex's background command: %q", res)
	}
	h.globexPID = readPIDFile(t, filepath.Join(h.globexWS, "bg.pid"))
	return h
}

// attack runs command as acme's model.
func (h *hostile) attack(command string) string {
	h.t.Helper()
	return tenantShell(h.p, h.llm, acmeKey, h.acme, map[string]any{"command": command})
}

// floorDenies runs command as acme's model and reports whether the
// permission layer's hardline floor denied it (the model is only told the
// call is not permitted; the log says why).
func (h *hostile) floorDenies(command string) bool {
	h.t.Helper()
	const mark = `"source":"hardline"`
	before := strings.Count(h.p.logs.String(), mark)
	res := h.attack(command)
	return strings.Contains(res, "not permitted by the current permission rules") && strings.Count(h.p.logs.String(), mark) > before
}

// unaffected checks that agentd still serves every tenant as before, and
// that globex's file and command are intact.
func (h *hostile) unaffected() {
	h.t.Helper()
	if r := h.p.do("GET", "/readyz", "", ""); r.Status != 200 {
		h.t.Errorf("/readyz = %d %s; want 200", r.Status, r.Raw)
	}
	if r := h.p.turn(globexKey, h.globex, "still there?"); r.Body["reply"] != "echo: still there?" {
		h.t.Errorf("globex's turn = %s", r.Raw)
	}
	if b, err := os.ReadFile(filepath.Join(h.globexWS, "secret.txt")); err != nil || string(b) != "globex-secret\n" {
		h.t.Errorf("globex's file = %q, %v", b, err)
	}
	if err := syscall.Kill(h.globexPID, 0); err != nil {
		h.t.Errorf("globex's background command (%d): %v; want it running", h.globexPID, err)
	}
	for _, bad := range []string{"shutting down", "configuration tree reloaded", "SIGHUP"} {
		if strings.Contains(h.p.logs.String(), bad) {
			h.t.Errorf("agentd logged %q: a signal reached it", bad)
		}
	}
}

func readPIDFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, func() bool {
		b, err := os.ReadFile(path)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// denied reports whether a shell result shows the attempt made and refused.
func denied(res string) bool {
	return strings.Contains(res, "Permission denied") || strings.Contains(res, "not permitted") ||
		strings.Contains(res, "permission denied") || strings.Contains(res, "operation not permitted")
}

func TestHostileTenant(t *testing.T) {
	h := startHostile(t)
	agentd := h.p.cmd.Process.Pid

	t.Run("read the API keys file named in agentd's command line", func(t *testing.T) {
		res := h.attack(fmt.Sprintf("cat /proc/%d/cmdline /proc/%d/environ; cat %s", agentd, agentd, h.keysFile))
		for _, k := range h.keys {
			if strings.Contains(res, k) {
				t.Errorf("the command printed API key %q: %q", k, res)
			}
		}
		if !denied(res) {
			t.Errorf("result %q; want the reads attempted and refused", res)
		}
		h.unaffected()
	})

	t.Run("read /proc of agentd and of another tenant's command", func(t *testing.T) {
		for _, pid := range []int{agentd, h.globexPID, os.Getpid()} {
			res := h.attack(fmt.Sprintf("cat /proc/%d/cmdline; echo rc=$?", pid))
			if !strings.Contains(res, "rc=1") || strings.Contains(res, "sleep") || !denied(res) {
				t.Errorf("/proc/%d/cmdline: %q; want it refused", pid, res)
			}
		}
		if res := h.attack("ls /proc; echo rc=$?"); strings.Contains(res, "rc=0") {
			t.Errorf("ls /proc: %q; want it refused", res)
		}
		h.unaffected()
	})

	t.Run("signal agentd and another tenant's command", func(t *testing.T) {
		res := h.attack(fmt.Sprintf("kill -TERM %d; kill -HUP %d; kill -KILL %d; kill -KILL -%d; echo done",
			agentd, agentd, h.globexPID, h.globexPID))
		if !strings.Contains(res, "done") || strings.Count(res, "not permitted") < 3 {
			t.Errorf("result %q; want every signal refused", res)
		}
		// kill -1 (every process the caller may signal) is the floor's.
		if !h.floorDenies("kill -KILL -1") {
			t.Errorf("kill -KILL -1: want the floor to deny it")
		}
		time.Sleep(200 * time.Millisecond) // a signal, had it gone through, has been handled
		h.unaffected()
	})

	t.Run("print agentd's environment", func(t *testing.T) {
		res := h.attack("env")
		for _, secret := range []string{"ghp-operator-token-for-mcp-json", "operator-aws-secret", "sk-test-not-a-real-key", "AGENTD_", "OPENAI_"} {
			if strings.Contains(res, secret) {
				t.Errorf("env printed %q: %q", secret, res)
			}
		}
		ws := filepath.Join(h.p.data, "workspaces", "acme", h.acme)
		for _, want := range []string{"PATH=", "HOME=" + ws, "TMPDIR=" + filepath.Join(ws, ".agentd", "tmp")} {
			if !strings.Contains(res, want) {
				t.Errorf("env = %q; want %s", res, want)
			}
		}
		h.unaffected()
	})

	t.Run("make agentd write through a link into another workspace", func(t *testing.T) {
		before := listDir(t, h.globexWS)
		h.attack(fmt.Sprintf("rm -rf .agentd/tool-outputs && ln -s %s .agentd/tool-outputs && echo linked", h.globexWS))
		res := h.attack("head -c 50000 /dev/zero | tr '\\0' a")
		if !strings.Contains(res, "aaaa") {
			t.Errorf("the long output did not reach the model: %.200q", res)
		}
		h.attack(fmt.Sprintf("rm -rf .agentd/tmp && ln -s %s .agentd/tmp && echo linked", h.globexWS))
		// agentd replaces the link with the session's own TMPDIR.
		res = h.attack("echo ran > $TMPDIR/planted; echo rc=$?")
		ownTmp := filepath.Join(h.p.data, "workspaces", "acme", h.acme, ".agentd", "tmp")
		if fi, err := os.Lstat(ownTmp); !strings.Contains(res, "rc=0") || err != nil || !fi.IsDir() {
			t.Errorf("a command after TMPDIR was linked out: %q (%s: %v); want it run in a fresh TMPDIR", res, ownTmp, err)
		}
		if after := listDir(t, h.globexWS); after != before {
			t.Errorf("globex's workspace changed: %q, was %q", after, before)
		}
		h.unaffected()
	})

	t.Run("parameter expansions past the hardline floor", func(t *testing.T) {
		for _, cmd := range []string{`rm -rf ${x:-/}`, `x=/; rm -rf "${x%%}"`, `rm -rf /@(etc)`} {
			if !h.floorDenies(cmd) {
				t.Errorf("%s: want the floor to deny it", cmd)
			}
		}
		h.unaffected()
	})

	t.Run("the shared /tmp", func(t *testing.T) {
		res := h.attack("echo x > /tmp/agentd-e2e-planted; echo w=$?; ls /tmp; echo l=$?")
		if !strings.Contains(res, "w=") || strings.Contains(res, "w=0") || strings.Contains(res, "l=0") {
			t.Errorf("result %q; want /tmp neither writable nor readable", res)
		}
		if _, err := os.Stat("/tmp/agentd-e2e-planted"); err == nil {
			os.Remove("/tmp/agentd-e2e-planted")
			t.Errorf("a file was planted in /tmp")
		}
		h.unaffected()
	})

	t.Run("other tenants' files, the store and the configuration tree", func(t *testing.T) {
		for _, f := range []string{filepath.Join(h.globexWS, "secret.txt"), filepath.Join(h.p.data, "agentd.db"),
			filepath.Join(h.config, ".agentao", "mcp.json"), filepath.Join(h.config, ".agentao", "canary.json")} {
			res := h.attack("cat " + f + "; echo rc=$?")
			if !strings.Contains(res, "rc=1") || strings.Contains(res, "globex-secret") || !denied(res) {
				t.Errorf("cat %s: %q; want it refused", f, res)
			}
		}
		h.unaffected()
	})

	t.Run("UNIX sockets outside", func(t *testing.T) {
		self, _ := os.Executable()
		sockDir, err := os.MkdirTemp("", "agentd-e2e-sock-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(sockDir)
		for _, addr := range []string{filepath.Join(sockDir, "docker.sock"), fmt.Sprintf("@agentd-e2e-%d", os.Getpid())} {
			ln, err := net.Listen("unix", addr)
			if err != nil {
				t.Fatal(err)
			}
			accepted := make(chan bool, 1)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					c.Close()
				}
				accepted <- err == nil
			}()
			res := h.attack(fmt.Sprintf("%s %s unix %s", self, attackArg, addr))
			ln.Close()
			if strings.Contains(res, "connected") || <-accepted {
				t.Errorf("connect to %s: %q; want it refused", addr, res)
			}
		}
		h.unaffected()
	})

	t.Run("daemons outlive nothing", func(t *testing.T) {
		// A foreground command's daemon dies with it.
		h.attack("setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > fg.pid")
		fg := readPIDFile(t, filepath.Join(h.p.data, "workspaces", "acme", h.acme, "fg.pid"))
		if !processGone(fg) {
			t.Errorf("a foreground command's setsid daemon (%d) outlived it", fg)
		}
		// A background command's daemon dies with the session.
		victim := h.p.create(acmeKey)
		res := tenantShell(h.p, h.llm, acmeKey, victim, map[string]any{
			"command": "(setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > bg.pid); exec sleep 1000", "is_background": true})
		if !strings.Contains(res, "Background command started") {
			t.Fatalf("background command: %q", res)
		}
		bg := readPIDFile(t, filepath.Join(h.p.data, "workspaces", "acme", victim, "bg.pid"))
		if r := h.p.do("DELETE", "/v1/sessions/"+victim, acmeKey, ""); r.Status != 204 {
			t.Fatalf("delete = %d %s", r.Status, r.Raw)
		}
		if !processGone(bg) {
			t.Errorf("a background command's setsid daemon (%d) outlived its deleted session", bg)
		}
		h.unaffected()
	})

	t.Run("daemons of a command that timed out or was cancelled", func(t *testing.T) {
		ws := filepath.Join(h.p.data, "workspaces", "acme", h.acme)
		res := tenantShell(h.p, h.llm, acmeKey, h.acme, map[string]any{
			"command": "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > to.pid; sleep 1000", "timeout": 1})
		if !strings.Contains(res, "timed out") {
			t.Errorf("result %q; want the inactivity timeout", res)
		}
		if pid := readPIDFile(t, filepath.Join(ws, "to.pid")); !processGone(pid) {
			t.Errorf("the daemon (%d) of a command that timed out outlived it", pid)
		}
		got := make(chan reply, 1)
		go func() {
			got <- h.p.turn(acmeKey, h.acme, `[[tool run_shell_command {"command": "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > cancel.pid; sleep 1000"}]]`)
		}()
		pid := readPIDFile(t, filepath.Join(ws, "cancel.pid"))
		if r := h.p.do("POST", "/v1/sessions/"+h.acme+"/cancel", acmeKey, ""); r.Body["cancelled"] != true {
			t.Fatalf("cancel = %s", r.Raw)
		}
		if r := <-got; outcome(r)["status"] != "cancelled" {
			t.Errorf("turn = %s; want cancelled", r.Raw)
		}
		if !processGone(pid) {
			t.Errorf("the daemon (%d) of a cancelled turn's command outlived it", pid)
		}
		h.unaffected()
	})

	// Last: agentd killed with SIGKILL takes every command with it.
	t.Run("kill -9 of agentd", func(t *testing.T) {
		res := tenantShell(h.p, h.llm, acmeKey, h.acme, map[string]any{
			"command": "(setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > k9.pid); exec sleep 1000", "is_background": true})
		if !strings.Contains(res, "Background command started") {
			t.Fatalf("background command: %q", res)
		}
		daemon := readPIDFile(t, filepath.Join(h.p.data, "workspaces", "acme", h.acme, "k9.pid"))
		if err := h.p.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		h.p.wait(10 * time.Second)
		for name, pid := range map[string]int{"acme's setsid daemon": daemon, "globex's background command": h.globexPID} {
			if !processGone(pid) {
				t.Errorf("%s (%d) outlived agentd's kill -9", name, pid)
			}
		}
	})
}

// TestEvictionEndsCommands: a session evicted from memory (the live
// sessions cap) stops its background commands, daemons included.
func TestEvictionEndsCommands(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir(), "AGENTD_MAX_LIVE_SESSIONS=1")
	first := p.create(acmeKey)
	res := tenantShell(p, llm, acmeKey, first, map[string]any{
		"command": "(setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > d.pid); exec sleep 1000", "is_background": true})
	if !strings.Contains(res, "Background command started") {
		t.Fatalf("background command: %q", res)
	}
	daemon := readPIDFile(t, filepath.Join(p.data, "workspaces", "acme", first, "d.pid"))
	second := p.create(acmeKey)
	if r := p.turn(acmeKey, second, "hello"); r.Status != 200 {
		t.Fatalf("turn = %d %s", r.Status, r.Raw)
	}
	if !processGone(daemon) {
		t.Errorf("the evicted session's daemon (%d) still runs", daemon)
	}
}

// TestShutdownEndsCommands: agentd stopped by SIGTERM ends every command,
// background ones and their daemons included, before it exits.
func TestShutdownEndsCommands(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir())
	id := p.create(acmeKey)
	res := tenantShell(p, llm, acmeKey, id, map[string]any{
		"command": "(setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > d.pid); echo $$ > bg.pid; exec sleep 1000", "is_background": true})
	if !strings.Contains(res, "Background command started") {
		t.Fatalf("background command: %q", res)
	}
	ws := filepath.Join(p.data, "workspaces", "acme", id)
	daemon, bg := readPIDFile(t, filepath.Join(ws, "d.pid")), readPIDFile(t, filepath.Join(ws, "bg.pid"))
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("agentd exited %d; want 0", code)
	}
	for name, pid := range map[string]int{"daemon": daemon, "background command": bg} {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the %s (%d) outlived agentd's exit (kill 0: %v)", name, pid, err)
		}
	}
}

// processGone waits up to 10 s for pid to exit and be reaped.
func processGone(pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL) // don't leave it behind
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// listDir names the entries below dir, for a before/after comparison.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	var names []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			names = append(names, strings.TrimPrefix(p, dir))
		}
		return nil
	})
	return strings.Join(names, "\n")
}
