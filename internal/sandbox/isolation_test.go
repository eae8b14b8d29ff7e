//go:build linux

package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/sandbox"
)

// These tests try, as a hostile command would, to reach what is not its
// own: the server's process, its own helper, another command, sockets of
// other processes; and to leave processes behind. Each attack is also run
// unconfined first where that proves the sandbox (not the host) stops it.

// TestHookSignals: a command cannot signal agentd (this test process), its
// own helper or another session's command, and can signal its own children.
func TestHookSignals(t *testing.T) {
	t.Parallel()
	for _, prof := range sandbox.Profiles() {
		t.Run(string(prof), func(t *testing.T) {
			ws := t.TempDir()
			hook := hookFor(t, ws, prof)
			// Another command, running meanwhile under its own helper.
			other := exec.Command("/bin/sh", "-c", "echo $$; exec sleep 60")
			other.Dir = ws
			other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := hook(other); err != nil {
				t.Fatal(err)
			}
			out, err := other.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := other.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { syscall.Kill(-other.Process.Pid, syscall.SIGKILL); other.Wait() }()
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			otherPID := strings.TrimSpace(line)

			tests := []struct {
				name, script string
				ok           bool
			}{
				{"agentd", fmt.Sprintf("kill -0 %d", os.Getpid()), false},
				{"agentd, TERM", fmt.Sprintf("kill -TERM %d", os.Getpid()), false},
				{"agentd, HUP", fmt.Sprintf("kill -HUP %d", os.Getpid()), false},
				{"its own helper", "kill -0 $PPID", false},
				{"another command", "kill -KILL " + otherPID, false},
				{"every process it may (kill -1)", "kill -0 -1 && kill -0 " + otherPID, false},
				{"its own child", "sleep 30 & kill $! && wait $!; test $? -gt 128", true},
			}
			for _, tc := range tests {
				got := runShell(t, hook, ws, tc.script)
				if (got.code == 0) != tc.ok {
					t.Errorf("%s: %q: %v; want success %v", tc.name, tc.script, got, tc.ok)
				}
				if !tc.ok && !strings.Contains(got.stderr, "not permitted") {
					t.Errorf("%s: stderr %q; want Operation not permitted", tc.name, got.stderr)
				}
			}
			// The other command still runs.
			if err := syscall.Kill(other.Process.Pid, 0); err != nil {
				t.Errorf("the other command's helper: %v; want it alive", err)
			}
			if pid, _ := strconv.Atoi(otherPID); syscall.Kill(pid, 0) != nil {
				t.Errorf("the other command (%s) is gone; want it alive", otherPID)
			}
		})
	}
}

// TestHookUNIXSockets: an abstract socket of another process is out of
// reach under every profile; a socket file outside the workspace under the
// no-network profiles.
func TestHookUNIXSockets(t *testing.T) {
	t.Parallel()
	abi := preflightedReport(t).LandlockABI
	dir := dirOutsideTmp(t)
	abstract := fmt.Sprintf("@agentd-test-%d", os.Getpid())
	file := filepath.Join(dir, "sock")
	for _, addr := range []string{abstract, file} {
		ln, err := net.Listen("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		if got := runShell(t, nil, dir, shq(self(t))+" "+netClientArg+" unix "+shq(addr)); got.stdout != "connected\n" {
			t.Fatalf("unconfined connect to %s: %v; want connected (else the test proves nothing)", addr, got)
		}
	}
	for _, prof := range sandbox.Profiles() {
		ws := t.TempDir()
		hook := hookFor(t, ws, prof)
		for _, addr := range []string{abstract, file} {
			allowed := addr == file && prof.Network() && abi < 9 // reported as not enforced
			got := runShell(t, hook, ws, shq(self(t))+" "+netClientArg+" unix "+shq(addr))
			if (got.stdout == "connected\n") != allowed {
				t.Errorf("%s: connect to %s: %v; want connected %v", prof, addr, got, allowed)
			}
		}
	}
}

// TestHookDaemonsDie: nothing a command starts outlives it: not a setsid
// daemon, not a double-forked one, not a process group of its own; and the
// command's own exit status (code or signal) is what the caller sees.
func TestHookDaemonsDie(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	hook := hookFor(t, ws, sandbox.WorkspaceWriteNoNetwork)
	scripts := map[string]string{
		"setsid":      `setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > pids`,
		"double fork": `(sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > pids) ; true`,
		"own group":   `set -m; sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > pids`,
		"many":        `for i in 1 2 3 4 5; do (setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >> pids); done`,
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			os.Remove(filepath.Join(ws, "pids"))
			got := runShell(t, hook, ws, script+"; exit 7")
			if got.code != 7 {
				t.Errorf("exit code %v; want the command's 7", got)
			}
			b, err := os.ReadFile(filepath.Join(ws, "pids"))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range strings.Fields(string(b)) {
				pid, _ := strconv.Atoi(f)
				if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
					syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("%s: process %d outlived its command (kill 0: %v)", name, pid, err)
				}
			}
		})
	}
	t.Run("killed by a signal", func(t *testing.T) {
		cmd := exec.Command("/bin/sh", "-c", `kill -KILL $$`)
		cmd.Dir = ws
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := hook(cmd); err != nil {
			t.Fatal(err)
		}
		err := cmd.Run()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("wait = %v, %v; want the helper dead of SIGKILL, as its command", cmd.ProcessState, err)
		}
		if cg := preflightedReport(t).Cgroup; cg != "" {
			if _, err := os.Stat(filepath.Join(cg, fmt.Sprintf("cmd-%d", cmd.Process.Pid))); err == nil {
				t.Errorf("the command's cgroup outlived its helper")
			}
		}
	})
}

// TestHelperDiesWithAgentd: when agentd dies (here a stand-in killed with
// SIGKILL), the parent-death signal makes each helper kill its command's
// processes, daemons included.
func TestHelperDiesWithAgentd(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	parent := exec.CommandContext(ctx, self(t), "__test-parent", ws,
		`setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > daemon; sleep 1000 & echo $! > child; wait`)
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	parent.Stderr = &stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		parent.Wait()
		t.Fatalf("the stand-in printed nothing: %v, stderr %q", err, stderr.String())
	}
	helper, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "helper "))
	daemon, child := readPID(t, filepath.Join(ws, "daemon")), readPID(t, filepath.Join(ws, "child"))
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	for name, pid := range map[string]int{"helper": helper, "daemon": daemon, "child": child} {
		if !gone(t, pid) {
			t.Errorf("the %s (pid %d) outlived agentd", name, pid)
		}
	}
}

// TestHookTimeoutKillsDaemons: a command stopped by its caller (the shell
// tool's timeout or cancel signals the process group) takes its daemons
// with it.
func TestHookTimeoutKillsDaemons(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", `setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > daemon; exec sleep 1000`)
	cmd.Dir = ws
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := hookFor(t, ws, sandbox.WorkspaceWrite)(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	daemon := readPID(t, filepath.Join(ws, "daemon"))
	// What tools does on a timeout: TERM the group, then KILL it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	time.AfterFunc(time.Second, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	cmd.Wait()
	if !gone(t, daemon) {
		t.Errorf("the daemon (pid %d) outlived its stopped command", daemon)
	}
	if err := syscall.Kill(cmd.Process.Pid, 0); err != syscall.ESRCH {
		t.Errorf("the helper: kill 0 = %v; want it gone (ESRCH)", err)
	}
}

// TestHelperKilledOutright: where commands get a cgroup, a helper killed
// with SIGKILL (by the OOM killer, say: never by agentd) leaves its
// command's processes in that cgroup, and the sweep ends them.
func TestHelperKilledOutright(t *testing.T) {
	r := preflightedReport(t)
	if r.Cgroup == "" {
		t.Skipf("SKIPPED: commands get no cgroup here: %s", r.Containment)
	}
	ws := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", `setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > daemon; exec sleep 1000`)
	cmd.Dir = ws
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := hookFor(t, ws, sandbox.WorkspaceWriteNoNetwork)(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	daemon := readPID(t, filepath.Join(ws, "daemon"))
	cg := filepath.Join(r.Cgroup, fmt.Sprintf("cmd-%d", cmd.Process.Pid))
	if b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs")); err != nil || !strings.Contains(string(b), strconv.Itoa(daemon)) {
		t.Errorf("%s/cgroup.procs = %q, %v; want the daemon %d in it", cg, b, err, daemon)
	}
	cmd.Process.Kill() // the helper, outright: it cannot clean up
	cmd.Wait()
	if err := syscall.Kill(daemon, 0); err != nil {
		t.Fatalf("the daemon is gone before the sweep (%v): the test proves nothing", err)
	}
	sandbox.SweepCgroups()
	if !gone(t, daemon) {
		t.Errorf("the daemon (%d) survived the sweep", daemon)
	}
	if _, err := os.Stat(cg); err == nil {
		t.Errorf("%s is still there after the sweep", cg)
	}
}
