package tools_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/tools"
)

// hangGuard bounds how long a test waits for a call that must end on its
// own; it only catches hangs, it does not measure anything.
const hangGuard = 60 * time.Second

func shell(t *testing.T, s *tools.Set, args map[string]any) (string, error) {
	t.Helper()
	return run(t, s, tools.RunShellCommand, args)
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

// gone waits until process pid has exited (it no longer exists or is a
// zombie left to init) and reports whether it did. Kill delivers signals
// asynchronously, so this polls; it asserts the outcome, not a duration.
func gone(t *testing.T, pid int) bool {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return true
			}
			t.Fatalf("read /proc/%d/stat: %v", pid, err)
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

func TestShellResult(t *testing.T) {
	s, _ := newSet(t, tools.Config{})
	tests := []struct {
		name    string
		command string
		want    string
	}{
		{"success", "echo hello", "Exit code: 0\nOutput:\nhello\n"},
		{"exit code", "echo oops; exit 3", "Exit code: 3\nOutput:\noops\n"},
		{"stderr interleaved", "echo out; echo err >&2; echo out2", "Exit code: 0\nOutput:\nout\nerr\nout2\n"},
		{"no output", "true", "Exit code: 0\nOutput: (none)\n"},
		{"no final newline", "printf abc", "Exit code: 0\nOutput:\nabc\n"},
		{"killed by a signal", "kill -9 $$", "Killed by signal: killed\nOutput: (none)\n"},
		{"ansi stripped", `printf '\033[1;31mred\033[0m plain \033]0;title\007done \033(Bok\n'`, "Exit code: 0\nOutput:\nred plain done ok\n"},
		{"carriage returns collapsed", `printf 'progress 10%%\rprogress 100%%\nnext\r\nwiped\r\nlast\n'`, "Exit code: 0\nOutput:\nprogress 100%\nnext\nwiped\nlast\n"},
		{"binary output", `printf 'a\000b'`, "Exit code: 0\nOutput:\n[binary output: 3 bytes not shown]\n"},
		{"stdin is empty", "cat; echo end", "Exit code: 0\nOutput:\nend\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := shell(t, s, map[string]any{"command": tc.command, "description": "test"})
			if err != nil || got != tc.want {
				t.Errorf("run_shell_command(%q) = %q, %v; want %q", tc.command, got, err, tc.want)
			}
		})
	}
}

func TestShellOutputCapKeepsTail(t *testing.T) {
	s, _ := newSet(t, tools.Config{MaxOutputChars: 200})
	var full strings.Builder
	for i := range 100 {
		fmt.Fprintf(&full, "line %d\n", i)
	}
	got, err := shell(t, s, map[string]any{"command": `i=0; while [ $i -lt 100 ]; do echo "line $i"; i=$((i+1)); done`})
	if err != nil {
		t.Fatal(err)
	}
	all := full.String()
	want := fmt.Sprintf("Exit code: 0\nOutput:\n[... %d earlier characters omitted; showing the last 200 ...]\n%s", len(all)-200, all[len(all)-200:])
	if got != want {
		t.Errorf("capped output =\n%q\nwant\n%q", got, want)
	}
}

func TestShellOutputCapOnHugeOutput(t *testing.T) {
	s, _ := newSet(t, tools.Config{MaxOutputChars: 100})
	// Far more than the raw tail buffer holds, so the front is dropped while
	// the command runs.
	got, err := shell(t, s, map[string]any{"command": `i=0; while [ $i -lt 20000 ]; do echo "row $i"; i=$((i+1)); done; echo END`})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(got, "row 19999\nEND\n") || !strings.Contains(got, "earlier characters omitted; showing the last 100 ...]") {
		t.Errorf("output = %q; want the last 100 characters and a note", got)
	}
	if _, text, _ := strings.Cut(got, "...]\n"); len(text) != 100 {
		t.Errorf("kept %d characters (%q); want 100", len(text), text)
	}
}

func TestShellStreamsOutput(t *testing.T) {
	s, _ := newSet(t, tools.Config{})
	var chunks []string
	got, err := runCtx(t.Context(), t, s, tools.RunShellCommand,
		map[string]any{"command": `echo first; sleep 0.1; printf '\303'; sleep 0.1; printf '\251 second\n' >&2`},
		func(c string) { chunks = append(chunks, c) })
	if err != nil {
		t.Fatal(err)
	}
	if joined := strings.Join(chunks, ""); joined != "first\né second\n" {
		t.Errorf("streamed %q (joined %q); want %q", chunks, joined, "first\né second\n")
	}
	if want := "Output:\nfirst\né second\n"; !strings.HasSuffix(got, want) {
		t.Errorf("result = %q; want it to end with %q", got, want)
	}
}

func TestShellEnvironment(t *testing.T) {
	env := func() []string {
		return []string{
			"PATH=" + os.Getenv("PATH"), "HOME=/home/agent", "TMPDIR=/tmp/agent", "ORDINARY=visible",
			"OPENAI_API_KEY=sk-secret-openai", "AGENTD_API_KEYS=key1=acme:admin", "AGENTD_DATA=/data",
			"CUSTOM_API_KEY=sk-secret-custom", "anthropic_api_key=sk-secret-lower", "LLM_EXTRA_BODY={\"x\":1}",
			"MY_TOKEN=tok-secret", "PWD=/somewhere/else", "malformed",
		}
	}
	tests := []struct {
		name     string
		scrub    []string
		present  []string
		absent   []string
		explicit bool
	}{
		{"default scrub", nil,
			[]string{"ORDINARY=visible", "HOME=/home/agent", "TMPDIR=/tmp/agent", "MY_TOKEN=tok-secret"},
			[]string{"OPENAI_API_KEY", "AGENTD_", "CUSTOM_API_KEY", "anthropic_api_key", "LLM_EXTRA_BODY", "sk-secret", "/somewhere/else"}, false},
		{"custom scrub list", []string{"my_token"},
			[]string{"ORDINARY=visible", "LLM_EXTRA_BODY="},
			[]string{"MY_TOKEN", "OPENAI_API_KEY", "AGENTD_", "sk-secret"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newSet(t, tools.Config{Env: env, ScrubEnv: tc.scrub})
			got, err := shell(t, s, map[string]any{"command": "env"})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range append(tc.present, "PWD="+dir+"\n") {
				if !strings.Contains(got, w) {
					t.Errorf("env output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tc.absent {
				if strings.Contains(got, w) {
					t.Errorf("env output contains %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestShellWorkingDirectory(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{"sub/deeper/f.txt": "f", "file.txt": "x"})
	tests := []struct {
		wd      string
		want    string // in the result, or in the error if wantErr
		wantErr bool
	}{
		{"", dir + "\n", false},
		{".", dir + "\n", false},
		{"sub/deeper", filepath.Join(dir, "sub", "deeper") + "\n", false},
		{filepath.Join(dir, "sub"), filepath.Join(dir, "sub") + "\n", false},
		{"file.txt", `working_directory "file.txt" is not a directory`, true},
		{"missing", `"missing" does not exist`, true},
		{"..", `path ".." is outside the workspace`, true},
		{"/tmp", `path "/tmp" is outside the workspace`, true},
	}
	for _, tc := range tests {
		got, err := shell(t, s, map[string]any{"command": `pwd; echo "PWD=$PWD"`, "working_directory": tc.wd})
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run_shell_command(working_directory=%q) = %q, %v; want error containing %q", tc.wd, got, err, tc.want)
			}
			continue
		}
		if err != nil || !strings.Contains(got, "Output:\n"+tc.want+"PWD="+tc.want) {
			t.Errorf("run_shell_command(working_directory=%q) = %q, %v; want pwd and $PWD %q", tc.wd, got, err, tc.want)
		}
	}
}

func TestShellInactivityTimeoutKillsGroup(t *testing.T) {
	tests := []struct {
		name    string
		command string
	}{
		{"grandchild", "sleep 300 & echo $! > pid; echo started; wait"},
		{"SIGTERM ignored, so SIGKILL", "trap '' TERM; sleep 300 & echo $! > pid; echo started; wait"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newSet(t, tools.Config{})
			got, err := shell(t, s, map[string]any{"command": tc.command, "timeout": 1})
			if err == nil || !strings.Contains(err.Error(), "timed out after 1s without output; its whole process group was killed") {
				t.Fatalf("run_shell_command(%q) = %q, %v; want an inactivity timeout error", tc.command, got, err)
			}
			if !strings.Contains(err.Error(), "Output before it was stopped:\nstarted") {
				t.Errorf("timeout error %q lacks the partial output", err)
			}
			if pid := readPID(t, filepath.Join(dir, "pid")); !gone(t, pid) {
				t.Errorf("grandchild %d still runs after the timeout", pid)
			}
		})
	}
}

func TestShellTimeoutArgumentIsCapped(t *testing.T) {
	s, _ := newSet(t, tools.Config{ShellInactivityTimeout: 500 * time.Millisecond, MaxShellTimeout: time.Second})
	_, err := shell(t, s, map[string]any{"command": "echo started; sleep 300", "timeout": 3600})
	if err == nil || !strings.Contains(err.Error(), "timed out after 1s without output") {
		t.Fatalf("run_shell_command(timeout=3600) error = %v; want a timeout capped at 1s", err)
	}
}

func TestShellCancelKillsGroup(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	var seen strings.Builder
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := runCtx(ctx, t, s, tools.RunShellCommand,
			map[string]any{"command": "sleep 300 & echo $! > pid; echo started; wait"},
			func(c string) {
				if seen.WriteString(c); strings.Contains(seen.String(), "started") {
					cancel(agent.Cancelled(agent.ReasonUserCancel))
				}
			})
		done <- result{out, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(hangGuard):
		t.Fatal("run_shell_command did not return after its context was cancelled")
	}
	if r.err == nil || !strings.Contains(r.err.Error(), "turn was cancelled (user-cancel); its whole process group was killed") {
		t.Fatalf("run_shell_command after cancel = %q, %v; want a cancellation error", r.out, r.err)
	}
	if pid := readPID(t, filepath.Join(dir, "pid")); !gone(t, pid) {
		t.Errorf("grandchild %d still runs after the cancel", pid)
	}
}

func TestShellKillsLeftoversWhenTheShellExits(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	got, err := shell(t, s, map[string]any{"command": "sleep 300 & echo $! > pid; echo bye"})
	if err != nil || got != "Exit code: 0\nOutput:\nbye\n" {
		t.Fatalf("run_shell_command = %q, %v; want exit 0 and bye", got, err)
	}
	if pid := readPID(t, filepath.Join(dir, "pid")); !gone(t, pid) {
		t.Errorf("left-behind process %d still runs", pid)
	}
}

func TestShellCloseStopsRunningCommand(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var seen strings.Builder
		signalled := false
		_, err := runCtx(context.Background(), t, s, tools.RunShellCommand,
			map[string]any{"command": "sleep 300 & echo $! > pid; echo started; wait"},
			func(c string) {
				if seen.WriteString(c); strings.Contains(seen.String(), "started") && !signalled {
					signalled = true
					close(started)
				}
			})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(hangGuard):
		t.Fatal("command did not start")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "session is closing") {
		t.Errorf("run_shell_command during Close: error = %v; want one saying the session is closing", err)
	}
	if pid := readPID(t, filepath.Join(dir, "pid")); !gone(t, pid) {
		t.Errorf("grandchild %d still runs after Close", pid)
	}
}

func TestShellPrepareShell(t *testing.T) {
	t.Run("error refuses", func(t *testing.T) {
		s, dir := newSet(t, tools.Config{PrepareShell: func(*exec.Cmd) error { return errors.New("sandbox unavailable") }})
		for _, bg := range []bool{false, true} {
			got, err := shell(t, s, map[string]any{"command": "touch marker", "is_background": bg})
			if err == nil || !strings.Contains(err.Error(), "sandbox unavailable") {
				t.Errorf("run_shell_command(is_background=%v) = %q, %v; want the PrepareShell error", bg, got, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "marker")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("marker exists (stat error %v): a refused command ran", err)
		}
		if logs, _ := filepath.Glob(filepath.Join(dir, ".agentd", "background", "*")); len(logs) > 0 {
			t.Errorf("refused background command left logs %v", logs)
		}
	})
	t.Run("sees and may change the command", func(t *testing.T) {
		var s *tools.Set
		var dir string
		var problems []string
		s, dir = newSet(t, tools.Config{PrepareShell: func(cmd *exec.Cmd) error {
			if cmd.Path != "/bin/sh" || len(cmd.Args) != 3 || cmd.Args[1] != "-c" {
				problems = append(problems, fmt.Sprintf("command %q %q", cmd.Path, cmd.Args))
			}
			if cmd.Dir != dir {
				problems = append(problems, "dir "+cmd.Dir)
			}
			if cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setpgid {
				problems = append(problems, "no Setpgid")
			}
			if cmd.Stdout == nil || cmd.Stderr == nil {
				problems = append(problems, "output not set")
			}
			cmd.Env = append(cmd.Env, "SANDBOXED=yes")
			return nil
		}})
		got, err := shell(t, s, map[string]any{"command": "echo $SANDBOXED"})
		if err != nil || got != "Exit code: 0\nOutput:\nyes\n" {
			t.Errorf("run_shell_command = %q, %v; want the variable PrepareShell added", got, err)
		}
		if problems != nil {
			t.Errorf("PrepareShell saw: %v", problems)
		}
	})
}

func TestShellBackground(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	commands := []string{
		"sleep 300 & echo $! > pid1; echo hello; wait",
		"trap '' TERM; sleep 300 & echo $! > pid2; wait",
		"echo quick",
	}
	var pgids []int
	for i, command := range commands {
		got, err := shell(t, s, map[string]any{"command": command, "is_background": true})
		if err != nil {
			t.Fatalf("run_shell_command(%q, is_background) error: %v", command, err)
		}
		m := regexp.MustCompile(`(?m)^PGID: (\d+)\nLog: (\.agentd/background/\S+\.log) `).FindStringSubmatch(got)
		if m == nil {
			t.Fatalf("background result = %q; want PGID and a workspace-relative log path", got)
		}
		pgid, _ := strconv.Atoi(m[1])
		pgids = append(pgids, pgid)
		if i == 0 {
			// The log fills while the command runs, and the model can read it.
			deadline := time.Now().Add(hangGuard)
			for !strings.Contains(readFile(t, filepath.Join(dir, m[2])), "hello") {
				if time.Now().After(deadline) {
					t.Fatalf("log %s never got the output", m[2])
				}
				time.Sleep(10 * time.Millisecond)
			}
			if got := mustRun(t, s, tools.ReadFile, map[string]any{"file_path": m[2]}); !strings.Contains(got, "1\thello") {
				t.Errorf("read_file(%s) = %q; want hello", m[2], got)
			}
		}
	}
	grandchildren := []int{readPID(t, filepath.Join(dir, "pid1")), readPID(t, filepath.Join(dir, "pid2"))}
	for _, pgid := range pgids[:2] {
		if err := syscall.Kill(pgid, 0); err != nil {
			t.Errorf("background leader %d is not running before Close: %v", pgid, err)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	for _, pid := range append(pgids, grandchildren...) {
		if !gone(t, pid) {
			t.Errorf("process %d still runs after Close", pid)
		}
	}
}
