//go:build linux

package sandbox_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/sandbox"
)

// TestHookFilesystem runs shell commands through the hook under each
// profile. Every command that must be refused is first run unconfined and
// must succeed there, so the refusal is the sandbox's, not file
// permissions' (the tests may run as root, whom file permissions never stop).
func TestHookFilesystem(t *testing.T) {
	t.Parallel()
	const (
		ro  = sandbox.Readonly
		rw  = sandbox.WorkspaceWrite
		rwn = sandbox.WorkspaceWriteNoNetwork
	)
	tests := []struct {
		name     string
		profiles []sandbox.Profile
		script   string // %WS% is the workspace, %OUT% another directory
		allowed  bool
		created  string // with allowed=false: a path that must not exist afterwards
		kept     string // with allowed=false: a file (made with "keep") that must be unchanged
	}{
		{"write in the workspace", []sandbox.Profile{rw, rwn}, `echo in > f && cat f && rm f`, true, "", ""},
		{"write in the workspace, readonly", []sandbox.Profile{ro}, `echo in > f`, false, "%WS%/f", ""},
		{"mkdir in the workspace", []sandbox.Profile{rw, rwn}, `mkdir -p a/b && rm -r a`, true, "", ""},
		{"write in /tmp", []sandbox.Profile{ro, rw, rwn}, `f=/tmp/agentd-sandbox-test-$$; echo t > "$f" && rm "$f"`, false, "", ""},
		{"list /tmp", []sandbox.Profile{ro, rw, rwn}, `ls /tmp`, false, "", ""},
		{"read outside", []sandbox.Profile{ro, rw, rwn}, `cat %OUT%/keep`, false, "", ""},
		{"list /", []sandbox.Profile{ro, rw, rwn}, `ls /`, false, "", ""},
		{"read /proc", []sandbox.Profile{ro, rw, rwn}, `cat /proc/self/status`, false, "", ""},
		{"write outside", []sandbox.Profile{ro, rw, rwn}, `echo x > %OUT%/f`, false, "%OUT%/f", ""},
		{"append outside", []sandbox.Profile{ro, rw, rwn}, `echo x >> %OUT%/keep`, false, "", "%OUT%/keep"},
		{"truncate outside", []sandbox.Profile{ro, rw, rwn}, `: > %OUT%/keep`, false, "", "%OUT%/keep"},
		{"remove outside", []sandbox.Profile{ro, rw, rwn}, `rm %OUT%/keep`, false, "", "%OUT%/keep"},
		{"rename out of the workspace", []sandbox.Profile{rw, rwn}, `echo y > f && mv f %OUT%/moved`, false, "%OUT%/moved", ""},
		{"mkdir outside", []sandbox.Profile{ro, rw, rwn}, `mkdir %OUT%/d`, false, "%OUT%/d", ""},
		{"symlink outside", []sandbox.Profile{ro, rw, rwn}, `ln -s /etc/passwd %OUT%/l`, false, "%OUT%/l", ""},
		{"write through a symlink in the workspace", []sandbox.Profile{rw, rwn}, `ln -s %OUT%/keep l && echo x >> l`, false, "", "%OUT%/keep"},
		{"write /dev/null", []sandbox.Profile{ro, rw, rwn}, `echo x > /dev/null`, true, "", ""},
		{"read system files and run programs", []sandbox.Profile{ro, rw, rwn}, `cat /etc/passwd >/dev/null && ls /usr/bin >/dev/null && head -c1 /dev/urandom >/dev/null`, true, "", ""},
		{"read and write the workspace's TMPDIR", []sandbox.Profile{rw, rwn}, `mkdir -p .agentd/tmp && f=$(TMPDIR=$PWD/.agentd/tmp mktemp) && echo t > "$f" && cat "$f"`, true, "", ""},
	}
	for _, tc := range tests {
		for _, prof := range tc.profiles {
			t.Run(tc.name+"/"+string(prof), func(t *testing.T) {
				ws, out := dirOutsideTmp(t), dirOutsideTmp(t)
				reset := func() {
					os.RemoveAll(out)
					os.Mkdir(out, 0o700)
					if err := os.WriteFile(filepath.Join(out, "keep"), []byte("keep\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				expand := strings.NewReplacer("%WS%", ws, "%OUT%", out).Replace
				script := expand(tc.script)
				reset()
				if !tc.allowed {
					// Control: unconfined, the same command works.
					if got := runShell(t, nil, ws, script); got.code != 0 {
						t.Fatalf("unconfined %q: %v; want exit 0 (else the test proves nothing)", script, got)
					}
					os.RemoveAll(filepath.Join(ws, "f"))
					os.RemoveAll(filepath.Join(ws, "l"))
					reset()
				}
				got := runShell(t, hookFor(t, ws, prof), ws, script)
				if tc.allowed {
					if got.code != 0 {
						t.Fatalf("%s: %q: %v; want exit 0", prof, script, got)
					}
					return
				}
				if got.code == 0 || !strings.Contains(got.stderr, "Permission denied") {
					t.Errorf("%s: %q: %v; want a failure saying Permission denied", prof, script, got)
				}
				if strings.Contains(got.stderr, "agentd sandbox:") {
					t.Errorf("%s: %q: the helper failed (%v); want the command to run and be refused", prof, script, got)
				}
				if tc.created != "" {
					if _, err := os.Lstat(expand(tc.created)); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s: %q: %s exists afterwards (%v)", prof, script, expand(tc.created), err)
					}
				}
				if tc.kept != "" {
					if b, err := os.ReadFile(expand(tc.kept)); err != nil || string(b) != "keep\n" {
						t.Errorf("%s: %q: %s = %q, %v afterwards; want it unchanged", prof, script, expand(tc.kept), b, err)
					}
				}
			})
		}
	}
}

// TestHookExtraWritable: an extra writable directory given to the hook is
// writable under the write profiles, and nothing else is.
func TestHookExtraWritable(t *testing.T) {
	ws, extra, out := dirOutsideTmp(t), dirOutsideTmp(t), dirOutsideTmp(t)
	hook := preflighted(t).Hook(self(t), ws, "run_shell_command", string(sandbox.WorkspaceWrite), extra)
	if got := runShell(t, hook, ws, "echo x > "+shq(extra+"/f")); got.code != 0 {
		t.Errorf("write in the extra directory: %v; want exit 0", got)
	}
	if got := runShell(t, hook, ws, "echo x > "+shq(out+"/f")); got.code == 0 {
		t.Errorf("write outside: %v; want a failure", got)
	}
}

// TestHookNetwork connects to loopback listeners the test opened, with TCP
// and UDP, under each profile.
func TestHookNetwork(t *testing.T) {
	t.Parallel()
	tests := []struct {
		profile sandbox.Profile
		proto   string
		allowed bool
		failure string // the client's output when refused
	}{
		{sandbox.WorkspaceWrite, "tcp", true, ""},
		{sandbox.WorkspaceWrite, "udp", true, ""},
		{sandbox.WorkspaceWriteNoNetwork, "tcp", false, "socket: permission denied"},
		{sandbox.WorkspaceWriteNoNetwork, "udp", false, "socket: permission denied"},
		{sandbox.Readonly, "tcp", false, "socket: permission denied"},
		{sandbox.Readonly, "udp", false, "socket: permission denied"},
	}
	for _, tc := range tests {
		t.Run(string(tc.profile)+"/"+tc.proto, func(t *testing.T) {
			ws := t.TempDir()
			var addr string
			var receive func(wait time.Duration) (string, error)
			if tc.proto == "tcp" {
				ln, err := net.Listen("tcp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				addr = ln.Addr().String()
				receive = func(wait time.Duration) (string, error) {
					ln.(*net.TCPListener).SetDeadline(time.Now().Add(wait))
					c, err := ln.Accept()
					if err != nil {
						return "", err
					}
					defer c.Close()
					c.SetReadDeadline(time.Now().Add(wait))
					b := make([]byte, 5)
					n, err := c.Read(b)
					return string(b[:n]), err
				}
			} else {
				pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				defer pc.Close()
				addr = pc.LocalAddr().String()
				receive = func(wait time.Duration) (string, error) {
					pc.SetReadDeadline(time.Now().Add(wait))
					b := make([]byte, 16)
					n, _, err := pc.ReadFrom(b)
					return string(b[:n]), err
				}
			}
			script := shq(self(t)) + " " + netClientArg + " " + tc.proto + " " + addr
			got := runShell(t, hookFor(t, ws, tc.profile), ws, script)
			if tc.allowed {
				if got.code != 0 {
					t.Fatalf("%s: %q: %v; want exit 0", tc.profile, script, got)
				}
				if msg, err := receive(hangGuard); msg != "hello" || err != nil {
					t.Errorf("%s: listener got %q, %v; want hello", tc.profile, msg, err)
				}
				return
			}
			if got.code == 0 || !strings.Contains(got.stdout, tc.failure) {
				t.Errorf("%s: %q: %v; want a failure printing %q", tc.profile, script, got, tc.failure)
			}
			if msg, err := receive(200 * time.Millisecond); !isTimeout(err) {
				t.Errorf("%s: listener got %q, %v; want nothing (a timeout)", tc.profile, msg, err)
			}
		})
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestHookSocketFamilies: under the no-network profiles the seccomp filter
// lets socket(2) create only AF_NETLINK sockets, and AF_UNIX ones on a
// kernel whose Landlock restricts connect(2) on them (ABI 9).
func TestHookSocketFamilies(t *testing.T) {
	t.Parallel()
	unixWant := "socket: permission denied"
	if preflightedReport(t).LandlockABI >= 9 {
		unixWant = "ok"
	}
	tests := []struct {
		family string
		want   string
	}{
		{"inet", "socket: permission denied"},
		{"inet6", "socket: permission denied"},
		{"packet", "socket: permission denied"},
		{"vsock", "socket: permission denied"},
		{"unix", unixWant},
		{"netlink", "ok"},
	}
	for _, prof := range []sandbox.Profile{sandbox.WorkspaceWriteNoNetwork, sandbox.Readonly} {
		ws := t.TempDir()
		hook := hookFor(t, ws, prof)
		for _, tc := range tests {
			got := runShell(t, hook, ws, shq(self(t))+" "+netClientArg+" socket "+tc.family)
			if strings.TrimSpace(got.stdout) != tc.want {
				t.Errorf("%s: socket(%s): %v; want %q", prof, tc.family, got, tc.want)
			}
		}
	}
	// Control: with network allowed, the same client creates an AF_INET socket.
	ws := t.TempDir()
	if got := runShell(t, hookFor(t, ws, sandbox.WorkspaceWrite), ws, shq(self(t))+" "+netClientArg+" socket inet"); got.code != 0 {
		t.Errorf("workspace-write: socket(inet): %v; want ok", got)
	}
}

// TestHookDropsCapabilities: the command has no capabilities, whoever runs
// agentd (as root, the bounding set is emptied too).
func TestHookDropsCapabilities(t *testing.T) {
	for _, prof := range sandbox.Profiles() {
		ws := t.TempDir()
		got := runShell(t, hookFor(t, ws, prof), ws, shq(self(t))+" "+netClientArg+" caps -")
		if got.code != 0 || strings.TrimSpace(got.stdout) != "none" {
			t.Errorf("%s: capget: %v; want none", prof, got)
		}
	}
}

// TestHookRewritesCommand checks the argv protocol of the helper.
func TestHookRewritesCommand(t *testing.T) {
	ws := t.TempDir()
	hook := hookFor(t, ws, sandbox.WorkspaceWrite)
	cmd := exec.Command("/bin/sh", "-c", "echo hi")
	cmd.Dir = ws
	cmd.Env = []string{"A=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := hook(cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.Path != self(t) {
		t.Errorf("Path = %q; want %q", cmd.Path, self(t))
	}
	if len(cmd.Args) != 7 || cmd.Args[0] != self(t) || cmd.Args[1] != sandbox.ExecArg || cmd.Args[3] != "--" ||
		!slices.Equal(cmd.Args[4:], []string{"/bin/sh", "-c", "echo hi"}) {
		t.Fatalf("Args = %q; want [self __sandbox-exec <spec> -- /bin/sh -c 'echo hi']", cmd.Args)
	}
	raw, err := base64.RawURLEncoding.DecodeString(cmd.Args[2])
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"v": 2.0, "profile": "workspace-write", "workspace": ws, "path": "/bin/sh"}
	delete(spec, "hidden")    // the host's secrets under /etc that agentd can read
	delete(spec, "read_only") // the test binary
	if got, want := spec["cgroup"], preflightedReport(t).Cgroup; want != "" && got != want {
		t.Errorf("spec cgroup = %v; want the preflight's %s", got, want)
	}
	delete(spec, "cgroup") // where this machine delegates one
	if len(spec) != len(want) {
		t.Errorf("spec = %v; want %v", spec, want)
	}
	for k, v := range want {
		if spec[k] != v {
			t.Errorf("spec[%q] = %v; want %v", k, spec[k], v)
		}
	}
	if cmd.Dir != ws || !slices.Equal(cmd.Env, []string{"A=1"}) || !cmd.SysProcAttr.Setpgid {
		t.Errorf("Dir, Env, Setpgid = %q, %q, %v; want them unchanged", cmd.Dir, cmd.Env, cmd.SysProcAttr.Setpgid)
	}
	if cmd.SysProcAttr.Pdeathsig != syscall.SIGTERM {
		t.Errorf("Pdeathsig = %v; want SIGTERM (the helper ends the command when agentd dies)", cmd.SysProcAttr.Pdeathsig)
	}
}

// TestExecMainArgs runs the helper directly with hand-made arguments: the
// documented protocol runs the command; anything wrong is refused with exit
// 125 (126/127 when the program cannot run) and an "agentd sandbox:"
// message, and the command never runs.
func TestExecMainArgs(t *testing.T) {
	ws := t.TempDir()
	file := filepath.Join(ws, "a-file")
	os.WriteFile(file, nil, 0o600)
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	good := func(profile, workspace, path string) string {
		b, _ := json.Marshal(map[string]any{"v": 2, "profile": profile, "workspace": workspace, "path": path})
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name     string
		args     []string // after ExecArg; the command is appended when it ends in "--"
		wantCode int
		wantErr  string
	}{
		{"the documented protocol", []string{good("workspace-write", ws, "/bin/sh"), "--"}, 0, ""},
		{"no arguments", nil, 125, "usage"},
		{"no --", []string{good("workspace-write", ws, "/bin/sh"), "/bin/sh", "-c", "x"}, 125, "usage"},
		{"no command", []string{good("workspace-write", ws, "/bin/sh"), "--"}, 125, "usage"},
		{"not base64", []string{"!!!", "--"}, 125, "not base64url"},
		{"not JSON", []string{enc("{"), "--"}, 125, "spec is not valid"},
		{"unknown field", []string{enc(`{"v":2,"profile":"readonly","workspace":"/","path":"/bin/sh","net":true}`), "--"}, 125, "unknown field"},
		{"trailing data", []string{enc(`{"v":2,"profile":"readonly","workspace":"/","path":"/bin/sh"}{}`), "--"}, 125, "trailing data"},
		{"other version", []string{enc(`{"v":1,"profile":"readonly","workspace":"/","path":"/bin/sh"}`), "--"}, 125, "spec version 1"},
		{"unknown profile", []string{good("none", ws, "/bin/sh"), "--"}, 125, `unknown profile "none"`},
		{"empty profile", []string{good("", ws, "/bin/sh"), "--"}, 125, `unknown profile ""`},
		{"relative workspace", []string{good("readonly", "ws", "/bin/sh"), "--"}, 125, "not an absolute path"},
		{"missing workspace", []string{good("workspace-write", ws+"/nope", "/bin/sh"), "--"}, 125, "no such file"},
		{"workspace is a file", []string{good("workspace-write", file, "/bin/sh"), "--"}, 125, "not a directory"},
		{"no program path", []string{good("readonly", ws, ""), "--"}, 125, "no program path"},
		{"program missing", []string{good("readonly", ws, "/nonexistent/prog"), "--"}, 127, "exec /nonexistent/prog"},
		{"program not executable", []string{good("readonly", ws, file), "--"}, 126, "permission denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(ws, "ran") // writable for the protocol's workspace-write
			os.Remove(marker)
			args := append([]string{sandbox.ExecArg}, tc.args...)
			if tc.name != "no command" && len(tc.args) > 0 && tc.args[len(tc.args)-1] == "--" {
				args = append(args, "/bin/sh", "-c", "echo ran > "+shq(marker))
			}
			cmd := exec.Command(self(t), args...)
			cmd.Dir = ws
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			if got := cmd.ProcessState.ExitCode(); got != tc.wantCode {
				t.Errorf("exit code = %d (stderr %q); want %d", got, stderr.String(), tc.wantCode)
			}
			_, statErr := os.Stat(marker)
			if tc.wantCode == 0 {
				if statErr != nil || stderr.Len() != 0 {
					t.Errorf("command ran: %v, stderr %q; want it run, no stderr", statErr, stderr.String())
				}
				return
			}
			if !strings.HasPrefix(stderr.String(), "agentd sandbox: ") || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr = %q; want \"agentd sandbox: ...%s...\"", stderr.String(), tc.wantErr)
			}
			if statErr == nil {
				t.Errorf("the command ran; want it refused")
			}
		})
	}
}

// TestHookRefuses: every way the sandbox can be misconfigured makes the hook
// refuse, leaving the command untouched, so the tool runs nothing.
func TestHookRefuses(t *testing.T) {
	ws := t.TempDir()
	failed := sandbox.DefaultPolicy()
	// /bin/false as "agentd" cannot act as the helper: every profile fails.
	if r := sandbox.Preflight(t.Context(), "/bin/false", failed); r.OK() {
		t.Fatalf("Preflight with /bin/false as the helper = OK; want failures:\n%s", r)
	}
	_, loadErr := sandbox.Parse([]byte(`{"default_profile": "workspace-rw"}`))
	exposing, err := sandbox.Parse([]byte(`{"profiles": {"workspace-write-no-network": {"read_only_paths": ["/srv/agentd"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		hook func(*exec.Cmd) error
		want string
	}{
		{"load error", sandbox.Refuse(loadErr), `default_profile: unknown profile "workspace-rw"`},
		{"nil policy", (*sandbox.Policy)(nil).Hook(self(t), ws, "run_shell_command", ""), "no sandbox policy"},
		{"unknown override", preflighted(t).Hook(self(t), ws, "run_shell_command", "sandboxed"), `profile override: unknown profile "sandboxed"`},
		{"no preflight", sandbox.DefaultPolicy().Hook(self(t), ws, "run_shell_command", ""), "preflight check has not run"},
		{"failed preflight", failed.Hook(self(t), ws, "run_shell_command", ""), "profile workspace-write-no-network failed its preflight"},
		{"relative binary", preflighted(t).Hook("agentd", ws, "run_shell_command", ""), "not absolute"},
		{"relative workspace", preflighted(t).Hook(self(t), "ws", "run_shell_command", ""), `workspace "ws" is not an absolute path`},
		{"missing workspace", preflighted(t).Hook(self(t), ws+"/nope", "run_shell_command", ""), "no such file"},
		{"relative writable", preflighted(t).Hook(self(t), ws, "run_shell_command", "", "cache"), `writable directory "cache" is not an absolute path`},
		{"relative read-only", preflighted(t).HookWith(self(t), ws, "run_shell_command", "", sandbox.Confine{ReadOnly: []string{"skills"}}), `read-only path "skills" is not an absolute path`},
		{"hidden /", preflighted(t).HookWith(self(t), ws, "run_shell_command", "", sandbox.Confine{Hidden: []string{"/"}}), `hidden path "/" is not an absolute path below /`},
		{"read_only_paths exposing the data directory", exposing.HookWith(self(t), ws, "run_shell_command", "", sandbox.Confine{Hidden: []string{"/srv/agentd/data"}}),
			"profiles.workspace-write-no-network.read_only_paths: /srv/agentd would expose /srv/agentd/data"},
		{"read_only_paths inside the keys file's directory", exposing.HookWith(self(t), ws, "run_shell_command", "", sandbox.Confine{Hidden: []string{"/srv"}}),
			"/srv/agentd would expose /srv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", "echo ran")
			before := slices.Clone(cmd.Args)
			err := tc.hook(cmd)
			if !errors.Is(err, sandbox.ErrMisconfigured) || !strings.Contains(err.Error(), tc.want) ||
				!strings.HasSuffix(err.Error(), "; the shell tool is disabled until it is fixed") {
				t.Errorf("hook error = %v; want sandbox misconfigured: ...%s...; the shell tool is disabled until it is fixed", err, tc.want)
			}
			if cmd.Path != "/bin/sh" || !slices.Equal(cmd.Args, before) {
				t.Errorf("refused command rewritten to %q %q", cmd.Path, cmd.Args)
			}
		})
	}
}

// TestPreflightMissingReadOnlyPath: a read_only_paths entry that does not
// exist fails its profile's preflight, naming the path; the other profiles
// are fine.
func TestPreflightMissingReadOnlyPath(t *testing.T) {
	p, err := sandbox.Parse([]byte(`{"profiles": {"readonly": {"read_only_paths": ["/nonexistent/toolchain"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := sandbox.Preflight(t.Context(), self(t), p)
	for _, pr := range r.Profiles {
		if pr.Profile == sandbox.Readonly {
			if pr.OK || !strings.Contains(pr.Problem, "/nonexistent/toolchain") {
				t.Errorf("readonly: OK %v, problem %q; want refused, naming the path", pr.OK, pr.Problem)
			}
		} else if !pr.OK {
			t.Errorf("%s: %s; want OK", pr.Profile, pr.Problem)
		}
	}
	if !r.OK() || !strings.Contains(r.String(), "readonly: REFUSED") {
		t.Errorf("report OK %v (readonly is not in use), %q; want OK and readonly REFUSED", r.OK(), r)
	}
}

// TestDisabled: "enabled": false leaves commands unconfined, and the
// preflight report says so loudly.
func TestDisabled(t *testing.T) {
	p, err := sandbox.Parse([]byte(`{"enabled": false}`))
	if err != nil {
		t.Fatal(err)
	}
	r := sandbox.Preflight(t.Context(), self(t), p)
	if r.Enabled || len(r.Profiles) != 0 || !strings.Contains(r.String(), "sandbox DISABLED") ||
		!strings.Contains(r.String(), "UNCONFINED") {
		t.Errorf("Preflight(disabled) = %+v, %q; want a DISABLED ... UNCONFINED report", r, r)
	}
	ws, out := dirOutsideTmp(t), dirOutsideTmp(t)
	got := runShell(t, p.Hook(self(t), ws, "run_shell_command", ""), ws, "echo x > "+shq(out+"/f"))
	if got.code != 0 {
		t.Errorf("write outside with the sandbox disabled: %v; want exit 0", got)
	}
}

// TestPreflight: on this kernel every profile is proven, with the checks
// reported.
func TestPreflight(t *testing.T) {
	t.Parallel()
	p, err := sandbox.Parse([]byte(`{"rules": [{"tool": "run_shell_command", "profile": "workspace-write"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	r := sandbox.Preflight(ctx, self(t), p)
	t.Log(r)
	if !r.Enabled || r.LandlockABI < 6 || r.LandlockProblem != "" || !r.OK() {
		t.Fatalf("Preflight = %s; want enabled, Landlock ABI >= 6, OK", r)
	}
	wantInUse := map[sandbox.Profile]bool{sandbox.WorkspaceWrite: true, sandbox.WorkspaceWriteNoNetwork: true}
	var got []sandbox.Profile
	for _, pr := range r.Profiles {
		got = append(got, pr.Profile)
		if !pr.OK || pr.InUse != wantInUse[pr.Profile] {
			t.Errorf("%s: OK %v, InUse %v (%s); want OK, InUse %v", pr.Profile, pr.OK, pr.InUse, pr.Problem, wantInUse[pr.Profile])
		}
		proved := strings.Join(pr.Proved, "\n")
		for _, want := range []string{"write outside the workspace: EACCES", "shell write outside the workspace: refused",
			"read a file outside the workspace: EACCES", "read /proc/<agentd>/cmdline: EACCES", "signal agentd: EPERM",
			"signal its own helper: EPERM", "write in /tmp: EACCES", "setsid daemon: gone with its command"} {
			if !strings.Contains(proved, want) {
				t.Errorf("%s proved %q; want it to include %q", pr.Profile, pr.Proved, want)
			}
		}
		tcp := "TCP connect to a loopback listener (Landlock, on a socket made outside): EACCES"
		if pr.Profile.Network() {
			tcp = "TCP connect to a loopback listener (Landlock, on a socket made outside): ok"
		}
		if !strings.Contains(proved, tcp) {
			t.Errorf("%s proved %q; want it to include %q", pr.Profile, pr.Proved, tcp)
		}
	}
	if !slices.Equal(got, sandbox.Profiles()) {
		t.Errorf("profiles reported = %v; want %v", got, sandbox.Profiles())
	}
	// The hook now serves the policy's profiles.
	ws := t.TempDir()
	if res := runShell(t, p.Hook(self(t), ws, "run_shell_command", ""), ws, "echo ok"); res.code != 0 {
		t.Errorf("hook after Preflight: %v; want exit 0", res)
	}
}

// TestHookServerProcessHidden: a confined command cannot read the server's
// environment (its API keys) or memory through /proc, although it runs as
// the same user; Landlock denies ptrace-class access to processes outside
// the sandbox. The unconfined control can.
func TestHookServerProcessHidden(t *testing.T) {
	ws := t.TempDir()
	for _, file := range []string{"environ", "maps"} {
		script := "head -c1 /proc/" + strconv.Itoa(os.Getpid()) + "/" + file + " >/dev/null"
		if got := runShell(t, nil, ws, script); got.code != 0 {
			t.Fatalf("unconfined %q: %v; want exit 0 (else the test proves nothing)", script, got)
		}
		for _, prof := range sandbox.Profiles() {
			got := runShell(t, hookFor(t, ws, prof), ws, script)
			if got.code == 0 || !strings.Contains(got.stderr, "Permission denied") {
				t.Errorf("%s: %q: %v; want Permission denied", prof, script, got)
			}
		}
	}
}

// TestHookHidden: with the data directory hidden, a command cannot read
// another session's workspace or the store, or list the data directory,
// while its own workspace (beneath the data directory) stays readable and
// writable, and the rest of the system readable.
func TestHookHidden(t *testing.T) {
	// The data directory outside /tmp (production: /data), and inside /tmp,
	// which the write profiles may otherwise write to.
	for _, where := range []string{"outside /tmp", "inside /tmp"} {
		t.Run(where, func(t *testing.T) {
			data := dirOutsideTmp(t)
			if where == "inside /tmp" {
				data = t.TempDir()
			}
			testHidden(t, data)
		})
	}
}

func testHidden(t *testing.T, data string) {
	mine, other := filepath.Join(data, "workspaces", "acme", "sess_mine"), filepath.Join(data, "workspaces", "globex", "sess_other")
	for _, d := range []string{mine, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(other, "secret.txt"), []byte("globex data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "agentd.db"), []byte("store"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mine, "own.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, profile := range []sandbox.Profile{sandbox.Readonly, sandbox.WorkspaceWrite, sandbox.WorkspaceWriteNoNetwork} {
		t.Run(string(profile), func(t *testing.T) {
			hook := preflighted(t).HookWith(self(t), mine, "run_shell_command", string(profile), sandbox.Confine{Hidden: []string{data}})
			tests := []struct {
				name, script string
				ok           bool
			}{
				{"another session's file", "cat " + shq(filepath.Join(other, "secret.txt")), false},
				{"writing another session's workspace", "echo x >> " + shq(filepath.Join(other, "secret.txt")), false},
				{"the store", "cat " + shq(filepath.Join(data, "agentd.db")), false},
				{"listing the data dir", "ls " + shq(filepath.Join(data, "workspaces")), false},
				{"own file", "cat own.txt", true},
				{"system files", "cat /etc/passwd > /dev/null && ls /usr/bin > /dev/null", true},
			}
			if profile.Writes() {
				tests = append(tests, struct {
					name, script string
					ok           bool
				}{"writing the own workspace", "echo x > new.txt && cat new.txt", true})
			}
			for _, tc := range tests {
				// Unconfined, every command works: a refusal below is the sandbox's.
				if free := runShell(t, nil, mine, tc.script); free.code != 0 {
					t.Fatalf("%s unconfined: %v", tc.name, free)
				}
				got := runShell(t, hook, mine, tc.script)
				if (got.code == 0) != tc.ok {
					t.Errorf("%s: %v; want success %v", tc.name, got, tc.ok)
				}
				if !tc.ok && !strings.Contains(got.stderr, "Permission denied") {
					t.Errorf("%s: stderr %q; want Permission denied", tc.name, got.stderr)
				}
			}
		})
	}
}
