package sandbox

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
)

// runBPF interprets the classic BPF subset the filters use over a
// seccomp_data, so that the filters of every supported architecture can be
// checked on any machine.
func runBPF(t *testing.T, prog []unix.SockFilter, data []byte) uint32 {
	t.Helper()
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if int(in.K)+4 > len(data) {
				t.Fatalf("pc %d: load beyond seccomp_data at %d", pc, in.K)
			}
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if acc == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			if acc >= in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("pc %d: unexpected instruction %#x", pc, in.Code)
		}
	}
	t.Fatal("fell off the end of the program")
	return 0
}

// seccompData lays out struct seccomp_data (little-endian).
func seccompData(nr, arch uint32, arg0 uint64) []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], nr)
	binary.LittleEndian.PutUint32(b[4:], arch)
	binary.LittleEndian.PutUint64(b[16:], arg0)
	return b
}

// seccompData2 lays out struct seccomp_data with two arguments.
func seccompData2(nr, arch uint32, arg0, arg1 uint64) []byte {
	b := seccompData(nr, arch, arg0)
	binary.LittleEndian.PutUint64(b[24:], arg1)
	return b
}

func TestCommandFilter(t *testing.T) {
	const (
		amd64, arm64 = unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_AARCH64
		i386, arm    = unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM
		eacces       = seccompRetEACCES
		enosys       = seccompRetENOSYS
		eperm        = seccompRetEPERM
		allow        = seccompRetAllow
		kill         = seccompRetKill
		tid          = 4242
	)
	noNet := filterOptions{noNetwork: true, thread: tid}
	noUnix := filterOptions{noNetwork: true, denyUnix: true, thread: tid}
	net := filterOptions{thread: tid}
	tests := []struct {
		name       string
		goarch     string
		o          filterOptions
		nr         uint32
		arch       uint32
		arg0, arg1 uint64
		want       uint32
	}{
		{"socket(AF_INET)", "amd64", noNet, 41, amd64, unix.AF_INET, 0, eacces},
		{"socket(AF_INET6)", "amd64", noNet, 41, amd64, unix.AF_INET6, 0, eacces},
		{"socket(AF_PACKET)", "amd64", noNet, 41, amd64, unix.AF_PACKET, 0, eacces},
		{"socket(AF_VSOCK)", "amd64", noNet, 41, amd64, unix.AF_VSOCK, 0, eacces},
		{"socket(AF_UNIX)", "amd64", noNet, 41, amd64, unix.AF_UNIX, 0, allow},
		{"socket(AF_UNIX), refused below Landlock ABI 9", "amd64", noUnix, 41, amd64, unix.AF_UNIX, 0, eacces},
		{"socket(AF_NETLINK)", "amd64", noNet, 41, amd64, unix.AF_NETLINK, 0, allow},
		{"socket(AF_NETLINK), AF_UNIX refused", "amd64", noUnix, 41, amd64, unix.AF_NETLINK, 0, allow},
		{"socketpair(AF_UNIX) stays allowed", "amd64", noUnix, 53, amd64, unix.AF_UNIX, 0, allow},
		{"socket(AF_UNIX + high bits): the kernel reads an int", "amd64", noNet, 41, amd64, 1<<32 | unix.AF_UNIX, 0, allow},
		{"socket(AF_UNIX + high bits), AF_UNIX refused", "amd64", noUnix, 41, amd64, 1<<32 | unix.AF_UNIX, 0, eacces},
		{"socket(AF_INET + high bits)", "amd64", noNet, 41, amd64, 1<<32 | unix.AF_INET, 0, eacces},
		{"io_uring_setup", "amd64", noNet, 425, amd64, 0, 0, enosys},
		{"network profile: socket(AF_INET)", "amd64", net, 41, amd64, unix.AF_INET, 0, allow},
		{"network profile: io_uring_setup", "amd64", net, 425, amd64, 0, 0, allow},
		{"read", "amd64", noNet, 0, amd64, unix.AF_INET, 0, allow},
		{"connect", "amd64", noNet, 42, amd64, 3, 0, allow},
		{"tkill(helper thread)", "amd64", net, 200, amd64, tid, 9, eperm},
		{"tkill(own thread)", "amd64", net, 200, amd64, tid + 1, 9, allow},
		{"tgkill(helper, helper thread)", "amd64", noNet, 234, amd64, 17, tid, eperm},
		{"tgkill(own)", "amd64", noNet, 234, amd64, tid, tid + 1, allow},
		{"rt_tgsigqueueinfo(helper thread)", "amd64", net, 297, amd64, 17, tid, eperm},
		{"pidfd_open(helper thread)", "amd64", net, 434, amd64, tid, 0, eperm},
		{"pidfd_open(own child)", "amd64", net, 434, amd64, tid + 7, 0, allow},
		{"ptrace(ATTACH, helper thread)", "amd64", net, 101, amd64, unix.PTRACE_ATTACH, tid, eperm},
		{"ptrace(TRACEME)", "amd64", net, 101, amd64, unix.PTRACE_TRACEME, 0, allow},
		{"process_vm_writev(helper thread)", "amd64", net, 311, amd64, tid, 0, eperm},
		{"kill(helper thread ID): Landlock's, and ESRCH for a thread", "amd64", net, 62, amd64, tid, 9, allow},
		{"x32 socket", "amd64", noNet, x32SyscallBit | 41, amd64, unix.AF_INET, 0, kill},
		{"x32 read", "amd64", net, x32SyscallBit, amd64, 0, 0, kill},
		{"i386 ABI (int 0x80)", "amd64", net, 102, i386, 1, 0, kill},
		{"arm64 socket(AF_INET)", "arm64", noNet, 198, arm64, unix.AF_INET, 0, eacces},
		{"arm64 socket(AF_PACKET)", "arm64", noNet, 198, arm64, unix.AF_PACKET, 0, eacces},
		{"arm64 socket(AF_UNIX)", "arm64", noNet, 198, arm64, unix.AF_UNIX, 0, allow},
		{"arm64 socket(AF_UNIX), refused", "arm64", noUnix, 198, arm64, unix.AF_UNIX, 0, eacces},
		{"arm64 io_uring_setup", "arm64", noNet, 425, arm64, 0, 0, enosys},
		{"arm64 nr 41 is not socket", "arm64", noNet, 41, arm64, unix.AF_INET, 0, allow},
		{"arm64 tgkill(helper thread)", "arm64", net, 131, arm64, 17, tid, eperm},
		{"arm64 tkill(helper thread)", "arm64", net, 130, arm64, tid, 9, eperm},
		{"arm64 ptrace(helper thread)", "arm64", net, 117, arm64, unix.PTRACE_SEIZE, tid, eperm},
		{"arm64 filter, amd64 call", "arm64", noNet, 41, amd64, unix.AF_INET, 0, kill},
		{"arm32 compat", "arm64", net, 281, arm, unix.AF_INET, 0, kill},
	}
	for _, tc := range tests {
		prog, err := commandFilter(tc.goarch, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if got := runBPF(t, prog, seccompData2(tc.nr, tc.arch, tc.arg0, tc.arg1)); got != tc.want {
			t.Errorf("%s: %s filter returns %#x; want %#x", tc.name, tc.goarch, got, tc.want)
		}
	}
	if _, err := commandFilter("riscv64", net); err == nil {
		t.Errorf("commandFilter(riscv64) = nil error; want an error (fail closed)")
	}
}

func TestPlanLandlock(t *testing.T) {
	s := func(p Profile) spec {
		return spec{Version: specVersion, Profile: p, Workspace: "/ws", Writable: []string{"/cache"},
			ReadOnly: []string{"/opt/tools"}, Path: "/bin/sh"}
	}
	rights := func(plan landlockPlan, path string) (uint64, bool) {
		for _, r := range plan.rules {
			if r.path == path {
				return r.access, true
			}
		}
		return 0, false
	}
	t.Run("too old", func(t *testing.T) {
		for _, tc := range []struct {
			abi  int
			prof Profile
		}{{2, WorkspaceWrite}, {5, WorkspaceWrite}, {5, WorkspaceWriteNoNetwork}, {4, Readonly}, {0, WorkspaceWrite}} {
			if _, err := planLandlock(tc.abi, s(tc.prof)); err == nil || !strings.Contains(err.Error(), "needs ABI 6") {
				t.Errorf("planLandlock(ABI %d, %s) = %v; want too old, needs ABI 6", tc.abi, tc.prof, err)
			}
		}
	})
	t.Run("readonly", func(t *testing.T) {
		plan, err := planLandlock(7, s(Readonly))
		if err != nil {
			t.Fatal(err)
		}
		if plan.net != netV4 || plan.scoped != scopeV6 || !plan.denyUnixSockets {
			t.Errorf("net %#x, scoped %#x, deny AF_UNIX %v; want %#x, %#x, true", plan.net, plan.scoped, plan.denyUnixSockets, netV4, scopeV6)
		}
		for _, p := range []string{"/cache", "/tmp", "/", "/proc", "/var", "/home"} {
			if a, ok := rights(plan, p); ok {
				t.Errorf("readonly grants %#x on %s; want nothing", a, p)
			}
		}
		for _, p := range []string{"/ws", "/usr", "/etc", "/bin", "/opt/tools"} {
			if a, _ := rights(plan, p); a != fsRead {
				t.Errorf("%s gets %#x; want read+exec %#x", p, a, fsRead)
			}
		}
		if a, _ := rights(plan, "/dev/null"); a != fsDevWrite {
			t.Errorf("/dev/null gets %#x; want %#x", a, fsDevWrite)
		}
		if a, _ := rights(plan, "/dev/zero"); a != ll.AccessFSReadFile {
			t.Errorf("/dev/zero gets %#x; want read only", a)
		}
	})
	t.Run("workspace-write", func(t *testing.T) {
		plan, err := planLandlock(7, s(WorkspaceWrite))
		if err != nil {
			t.Fatal(err)
		}
		if plan.net != 0 || plan.scoped != scopeV6 || plan.denyUnixSockets {
			t.Errorf("net %#x, scoped %#x, deny AF_UNIX %v; want no network rights handled, both scopes, AF_UNIX allowed",
				plan.net, plan.scoped, plan.denyUnixSockets)
		}
		for _, p := range []string{"/ws", "/cache"} {
			a, ok := rights(plan, p)
			if !ok || a&ll.AccessFSWriteFile == 0 || a&ll.AccessFSMakeReg == 0 || a&fsNeverGranted != 0 {
				t.Errorf("%s gets %#x, %v; want writes without %#x", p, a, ok, fsNeverGranted)
			}
		}
		if a, ok := rights(plan, "/tmp"); ok {
			t.Errorf("/tmp gets %#x; want nothing (each session has its own TMPDIR)", a)
		}
		if a, _ := rights(plan, "/dev/zero"); a != fsDevWrite {
			t.Errorf("/dev/zero gets %#x; want %#x", a, fsDevWrite)
		}
	})
	t.Run("newer ABIs handle more", func(t *testing.T) {
		plan, err := planLandlock(10, s(WorkspaceWriteNoNetwork))
		if err != nil {
			t.Fatal(err)
		}
		if plan.net != netV4|netV10 || plan.fs&fsV9 == 0 || plan.denyUnixSockets {
			t.Errorf("ABI 10: fs %#x, net %#x, deny AF_UNIX %v; want resolve-unix and UDP handled by Landlock", plan.fs, plan.net, plan.denyUnixSockets)
		}
		if a, _ := rights(plan, "/usr"); a&fsV9 != 0 {
			t.Errorf("/usr gets resolve-unix (%#x); want it only in the workspace", a)
		}
		if a, _ := rights(plan, "/ws"); a&fsV9 == 0 {
			t.Errorf("/ws gets %#x; want resolve-unix for the command's own sockets", a)
		}
	})
	t.Run("hidden paths", func(t *testing.T) {
		etc := t.TempDir()
		for _, d := range []string{"agentd/skills/default/git", "ssl/certs"} {
			if err := os.MkdirAll(filepath.Join(etc, d), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []string{"passwd", "shadow", "agentd/.agentao-keys"} {
			if err := os.WriteFile(filepath.Join(etc, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		sp := s(WorkspaceWriteNoNetwork)
		sp.ReadOnly = []string{etc, filepath.Join(etc, "agentd/skills/default/git")}
		sp.Hidden = []string{filepath.Join(etc, "agentd"), filepath.Join(etc, "shadow")}
		plan, err := planLandlock(7, sp)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"passwd", "ssl", "agentd/skills/default/git"} {
			if _, ok := rights(plan, filepath.Join(etc, p)); !ok {
				t.Errorf("%s is not readable; want it granted", p)
			}
		}
		for _, p := range []string{"", "agentd", "shadow", "agentd/.agentao-keys", "agentd/skills"} {
			if a, ok := rights(plan, filepath.Join(etc, p)); ok {
				t.Errorf("%s gets %#x; want it hidden", p, a)
			}
		}
	})
}
