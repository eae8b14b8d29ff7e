//go:build linux

package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/agentd/agentd/internal/sandbox"
)

// The test binary is its own sandbox helper, as agentd is: run as
// "<test binary> __sandbox-exec ..." it behaves as the helper, and as
// "<test binary> __test-net ..." it is a small network client that the
// sandboxed shell commands run.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case sandbox.ExecArg:
			os.Exit(sandbox.ExecMain(os.Args[2:], os.Stderr))
		case netClientArg:
			os.Exit(netClient(os.Args[2:]))
		case parentArg:
			os.Exit(fakeParent(os.Args[2:]))
		}
	}
	code := m.Run()
	sandbox.ReleaseCgroups() // the preflights' parent of command cgroups
	sandbox.SweepCgroups()   // and what earlier runs left
	os.Exit(code)
}

const netClientArg = "__test-net"

// hangGuard bounds a command that must end on its own; it only catches hangs.
const hangGuard = 60 * time.Second

// netClient tries one network operation with raw system calls and prints
// what happened, naming the call that failed:
//
//	tcp <ip:port>     socket, connect, write "hello"  → "connected" or "<call>: <error>"
//	udp <ip:port>     socket, sendto "hello"          → "sent" or "<call>: <error>"
//	socket <family>   socket(family)                  → "ok" or "socket: <error>"
//	unix <path|@name> socket, connect                 → "connected" or "<call>: <error>"
//	caps -            capget                          → "none" or the sets left
func netClient(args []string) int {
	fail := func(call string, err error) int {
		fmt.Printf("%s: %v\n", call, err)
		return 1
	}
	if len(args) != 2 {
		return fail("usage", errors.New("tcp|udp|socket|unix|caps <arg>"))
	}
	switch args[0] {
	case "unix":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return fail("socket", err)
		}
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: args[1]}); err != nil {
			return fail("connect", err)
		}
		fmt.Println("connected")
		return 0
	case "caps":
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return fail("capget", err)
		}
		if data != [2]unix.CapUserData{} {
			fmt.Printf("%+v\n", data)
			return 1
		}
		fmt.Println("none")
		return 0
	}
	if args[0] == "socket" {
		fam, ok := map[string]int{"inet": unix.AF_INET, "inet6": unix.AF_INET6, "packet": unix.AF_PACKET,
			"unix": unix.AF_UNIX, "netlink": unix.AF_NETLINK, "vsock": unix.AF_VSOCK}[args[1]]
		if !ok {
			return fail("usage", fmt.Errorf("unknown family %q", args[1]))
		}
		typ := unix.SOCK_DGRAM
		if fam == unix.AF_PACKET {
			typ = unix.SOCK_RAW
		}
		if fam == unix.AF_NETLINK {
			typ = unix.SOCK_RAW
		}
		fd, err := unix.Socket(fam, typ, 0)
		if err != nil {
			return fail("socket", err)
		}
		unix.Close(fd)
		fmt.Println("ok")
		return 0
	}
	ap, err := netip.ParseAddrPort(args[1])
	if err != nil {
		return fail("address", err)
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	switch args[0] {
	case "tcp":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			return fail("socket", err)
		}
		if err := unix.Connect(fd, sa); err != nil {
			return fail("connect", err)
		}
		if _, err := unix.Write(fd, []byte("hello")); err != nil {
			return fail("write", err)
		}
		fmt.Println("connected")
	case "udp":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return fail("socket", err)
		}
		if err := unix.Sendto(fd, []byte("hello"), 0, sa); err != nil {
			return fail("sendto", err)
		}
		fmt.Println("sent")
	default:
		return fail("usage", fmt.Errorf("unknown operation %q", args[0]))
	}
	return 0
}

// self is the path of the test binary, the helper.
func self(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	sharedOnce   sync.Once
	sharedPolicy *sandbox.Policy
	sharedReport sandbox.Report
)

// preflighted returns the default policy, preflighted once for the whole
// test binary; tests pick profiles with the hook's override.
func preflighted(t testing.TB) *sandbox.Policy {
	t.Helper()
	sharedOnce.Do(func() {
		sharedPolicy = sandbox.DefaultPolicy()
		sharedReport = sandbox.Preflight(context.Background(), self(t), sharedPolicy)
	})
	for _, pr := range sharedReport.Profiles {
		if !pr.OK {
			t.Fatalf("preflight failed, so the hook would refuse:\n%s", sharedReport)
		}
	}
	return sharedPolicy
}

// preflightedReport is the report of preflighted's policy.
func preflightedReport(t testing.TB) sandbox.Report {
	t.Helper()
	preflighted(t)
	return sharedReport
}

// dirOutsideTmp makes a directory that is not under /tmp (which the write
// profiles may write to), so that only the workspace rule can make writes
// in it succeed. It is removed at the end of the test.
func dirOutsideTmp(t testing.TB) string {
	t.Helper()
	for _, base := range []string{"/var/tmp", "/dev/shm"} {
		real, err := filepath.EvalSymlinks(base)
		if err != nil || real == "/tmp" || strings.HasPrefix(real, "/tmp/") {
			continue
		}
		d, err := os.MkdirTemp(real, "agentd-sandbox-test-*")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	t.Skip("no writable directory outside /tmp (tried /var/tmp, /dev/shm)")
	return ""
}

// shq quotes s for /bin/sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// shellResult is what a shell command did.
type shellResult struct {
	code           int
	stdout, stderr string
}

func (r shellResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// runShell runs script the way internal/tools does (/bin/sh -c in dir, own
// process group), after passing the command through hook if it is not nil.
func runShell(t testing.TB, hook func(*exec.Cmd) error, dir, script string) shellResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PWD="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if hook != nil {
		if err := hook(cmd); err != nil {
			t.Fatalf("hook refused %q: %v", script, err)
		}
		if !cmd.SysProcAttr.Setpgid {
			t.Fatalf("hook dropped Setpgid")
		}
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run %q: %v", script, err)
	}
	return shellResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// hookFor returns the hook for a session with workspace ws under profile;
// the test binary (the network client) is readable.
func hookFor(t testing.TB, ws string, profile sandbox.Profile) func(*exec.Cmd) error {
	t.Helper()
	return preflighted(t).HookWith(self(t), ws, "run_shell_command", string(profile), sandbox.Confine{ReadOnly: []string{self(t)}})
}

const parentArg = "__test-parent"

// fakeParent plays agentd for the parent-death tests: it preflights the
// default policy, starts "<script>" under the hook in workspace <ws>,
// prints the helper's PID, and waits for it (until the test kills it).
func fakeParent(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: __test-parent <ws> <script>")
		return 2
	}
	me, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p := sandbox.DefaultPolicy()
	if r := sandbox.Preflight(context.Background(), me, p); !r.OK() {
		fmt.Fprintln(os.Stderr, r)
		return 1
	}
	cmd := exec.Command("/bin/sh", "-c", args[1])
	cmd.Dir = args[0]
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := p.Hook(me, args[0], "run_shell_command", "")(cmd); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("helper %d\n", cmd.Process.Pid)
	cmd.Wait()
	sandbox.ReleaseCgroups()
	return 0
}
