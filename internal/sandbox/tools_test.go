//go:build linux

package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/tools"
)

// TestToolsShell runs the real run_shell_command of internal/tools with the
// hook as its PrepareShell: commands are confined, and the tool's process
// group handling (inactivity timeout, background commands) still works on
// the helper-started command.
func TestToolsShell(t *testing.T) {
	t.Parallel()
	ws, out := dirOutsideTmp(t), dirOutsideTmp(t)
	set, err := tools.New(ws, tools.Config{
		PrepareShell:           hookFor(t, ws, sandbox.WorkspaceWriteNoNetwork),
		ShellInactivityTimeout: time.Hour,
		KillGrace:              200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	t.Run("confined", func(t *testing.T) {
		cmd := fmt.Sprintf("echo inside > in.txt; echo x > %s; cat in.txt; %s %s tcp %s",
			shq(out+"/f"), shq(self(t)), netClientArg, ln.Addr())
		got, err := shell(t, set, map[string]any{"command": cmd})
		if err != nil {
			t.Fatalf("run_shell_command = %v", err)
		}
		for _, want := range []string{"Exit code: 1\n", "Permission denied", "inside\n", "socket: permission denied"} {
			if !strings.Contains(got, want) {
				t.Errorf("run_shell_command(%q) = %q; want it to contain %q", cmd, got, want)
			}
		}
		if _, err := os.Lstat(filepath.Join(out, "f")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/f exists (%v); want the write refused", out, err)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
		if c, err := ln.Accept(); err == nil {
			c.Close()
			t.Errorf("the listener accepted a connection; want none")
		}
	})

	t.Run("inactivity timeout kills the whole group", func(t *testing.T) {
		got, err := shell(t, set, map[string]any{"command": "sleep 300 & echo $! > pid; echo started; wait", "timeout": 1})
		if err == nil || !strings.Contains(err.Error(), "timed out after 1s without output; its whole process group was killed") {
			t.Fatalf("run_shell_command = %q, %v; want an inactivity timeout", got, err)
		}
		if pid := readPID(t, filepath.Join(ws, "pid")); !gone(t, pid) {
			t.Errorf("grandchild %d still runs after the timeout", pid)
		}
	})

	t.Run("background command", func(t *testing.T) {
		got, err := shell(t, set, map[string]any{"command": "echo x > " + shq(out+"/bg") + "; echo done", "is_background": true})
		if err != nil {
			t.Fatalf("run_shell_command(is_background) = %v", err)
		}
		m := regexp.MustCompile(`Log: (\S+)`).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("run_shell_command(is_background) = %q; want a Log: line", got)
		}
		log := waitFor(t, filepath.Join(ws, m[1]), "done")
		if !strings.Contains(log, "Permission denied") {
			t.Errorf("background log = %q; want the write refused", log)
		}
		if _, err := os.Lstat(filepath.Join(out, "bg")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s/bg exists (%v); want the write refused", out, err)
		}
	})

	t.Run("a misconfigured sandbox runs nothing", func(t *testing.T) {
		_, loadErr := sandbox.Parse([]byte(`{"profiles_dir": "/etc/profiles"}`))
		refusing, err := tools.New(ws, tools.Config{PrepareShell: sandbox.Refuse(loadErr)})
		if err != nil {
			t.Fatal(err)
		}
		defer refusing.Close()
		got, err := shell(t, refusing, map[string]any{"command": "echo ran > ran.txt"})
		if err == nil || !strings.Contains(err.Error(), "command refused, nothing was run: sandbox misconfigured: profiles_dir:") {
			t.Errorf("run_shell_command = %q, %v; want the refusal", got, err)
		}
		if _, err := os.Lstat(filepath.Join(ws, "ran.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ran.txt exists (%v); want nothing run", err)
		}
	})
}

func shell(t *testing.T, s *tools.Set, args map[string]any) (string, error) {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range s.Tools() {
		if tool.Spec().Name == tools.RunShellCommand {
			ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
			defer cancel()
			return tool.Run(ctx, agent.Call{ID: "call_1", Name: tools.RunShellCommand, Args: raw, Output: func(string) {}})
		}
	}
	t.Fatalf("no %s tool", tools.RunShellCommand)
	return "", nil
}

// waitFor waits until the file at p contains want and returns its content.
func waitFor(t *testing.T, p, want string) string {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q; want it to contain %q", p, b, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readPID waits for a file holding a PID to be written, and returns the PID.
func readPID(t *testing.T, p string) int {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		b, err := os.ReadFile(p)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 0 {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PID in %s (%q, %v)", p, b, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gone waits until process pid has exited (no longer exists, or is a zombie
// left to init) and reports whether it did.
func gone(t *testing.T, pid int) bool {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return errors.Is(err, os.ErrNotExist)
		}
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return true
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL) // don't leave it behind
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
