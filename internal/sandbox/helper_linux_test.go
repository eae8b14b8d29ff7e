package sandbox

import (
	"encoding/binary"
	"testing"

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

func TestNetworkFilter(t *testing.T) {
	const (
		amd64, arm64 = unix.AUDIT_ARCH_X86_64, unix.AUDIT_ARCH_AARCH64
		i386, arm    = unix.AUDIT_ARCH_I386, unix.AUDIT_ARCH_ARM
		eacces       = seccompRetEACCES
		enosys       = seccompRetENOSYS
		allow        = seccompRetAllow
		kill         = seccompRetKill
	)
	tests := []struct {
		name   string
		goarch string
		nr     uint32
		arch   uint32
		arg0   uint64
		want   uint32
	}{
		{"socket(AF_INET)", "amd64", 41, amd64, unix.AF_INET, eacces},
		{"socket(AF_INET6)", "amd64", 41, amd64, unix.AF_INET6, eacces},
		{"socket(AF_PACKET)", "amd64", 41, amd64, unix.AF_PACKET, eacces},
		{"socket(AF_VSOCK)", "amd64", 41, amd64, unix.AF_VSOCK, eacces},
		{"socket(AF_UNIX)", "amd64", 41, amd64, unix.AF_UNIX, allow},
		{"socket(AF_NETLINK)", "amd64", 41, amd64, unix.AF_NETLINK, allow},
		{"socket(AF_UNIX + high bits): the kernel reads an int", "amd64", 41, amd64, 1<<32 | unix.AF_UNIX, allow},
		{"socket(AF_INET + high bits)", "amd64", 41, amd64, 1<<32 | unix.AF_INET, eacces},
		{"io_uring_setup", "amd64", 425, amd64, 0, enosys},
		{"read", "amd64", 0, amd64, unix.AF_INET, allow},
		{"connect", "amd64", 42, amd64, 3, allow},
		{"x32 socket", "amd64", x32SyscallBit | 41, amd64, unix.AF_INET, kill},
		{"x32 read", "amd64", x32SyscallBit, amd64, 0, kill},
		{"i386 ABI (int 0x80)", "amd64", 102, i386, 1, kill},
		{"arm64 socket(AF_INET)", "arm64", 198, arm64, unix.AF_INET, eacces},
		{"arm64 socket(AF_PACKET)", "arm64", 198, arm64, unix.AF_PACKET, eacces},
		{"arm64 socket(AF_UNIX)", "arm64", 198, arm64, unix.AF_UNIX, allow},
		{"arm64 io_uring_setup", "arm64", 425, arm64, 0, enosys},
		{"arm64 nr 41 is not socket", "arm64", 41, arm64, unix.AF_INET, allow},
		{"arm64 filter, amd64 call", "arm64", 41, amd64, unix.AF_INET, kill},
		{"arm32 compat", "arm64", 281, arm, unix.AF_INET, kill},
	}
	for _, tc := range tests {
		prog, err := networkFilter(tc.goarch)
		if err != nil {
			t.Fatal(err)
		}
		if got := runBPF(t, prog, seccompData(tc.nr, tc.arch, tc.arg0)); got != tc.want {
			t.Errorf("%s: %s filter returns %#x; want %#x", tc.name, tc.goarch, got, tc.want)
		}
	}
	if _, err := networkFilter("riscv64"); err == nil {
		t.Errorf("networkFilter(riscv64) = nil error; want an error (fail closed)")
	}
}

func TestPlanLandlock(t *testing.T) {
	s := func(p Profile) spec {
		return spec{Version: specVersion, Profile: p, Workspace: "/ws", Writable: []string{"/cache"}, Path: "/bin/sh"}
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
		}{{2, WorkspaceWrite}, {3, WorkspaceWriteNoNetwork}, {3, Readonly}, {0, WorkspaceWrite}} {
			if _, err := planLandlock(tc.abi, s(tc.prof)); err == nil {
				t.Errorf("planLandlock(ABI %d, %s) = nil error; want too old", tc.abi, tc.prof)
			}
		}
	})
	t.Run("readonly", func(t *testing.T) {
		plan, err := planLandlock(7, s(Readonly))
		if err != nil {
			t.Fatal(err)
		}
		if plan.attr.handledAccessNet != netV4 || plan.attr.scoped != scopeV6Abstract {
			t.Errorf("net %#x, scoped %#x; want %#x, %#x", plan.attr.handledAccessNet, plan.attr.scoped, netV4, scopeV6Abstract)
		}
		for _, p := range []string{"/ws", "/cache", "/tmp", "/dev/zero"} {
			if a, ok := rights(plan, p); ok {
				t.Errorf("readonly grants %#x on %s; want nothing", a, p)
			}
		}
		if a, _ := rights(plan, "/"); a != fsReadExec {
			t.Errorf("/ gets %#x; want read+exec %#x", a, fsReadExec)
		}
		if a, _ := rights(plan, "/dev/null"); a != fsDevWrite {
			t.Errorf("/dev/null gets %#x; want %#x", a, fsDevWrite)
		}
	})
	t.Run("workspace-write", func(t *testing.T) {
		plan, err := planLandlock(7, s(WorkspaceWrite))
		if err != nil {
			t.Fatal(err)
		}
		if plan.attr.handledAccessNet != 0 || plan.attr.scoped != 0 {
			t.Errorf("net %#x, scoped %#x; want none (network allowed)", plan.attr.handledAccessNet, plan.attr.scoped)
		}
		for _, p := range []string{"/ws", "/cache", "/tmp"} {
			a, ok := rights(plan, p)
			if !ok || a&unix.LANDLOCK_ACCESS_FS_WRITE_FILE == 0 || a&unix.LANDLOCK_ACCESS_FS_MAKE_REG == 0 || a&fsNeverGranted != 0 {
				t.Errorf("%s gets %#x, %v; want writes without %#x", p, a, ok, fsNeverGranted)
			}
		}
	})
	t.Run("newer ABIs handle more", func(t *testing.T) {
		plan, err := planLandlock(10, s(WorkspaceWriteNoNetwork))
		if err != nil {
			t.Fatal(err)
		}
		if plan.attr.handledAccessNet != netV4|netV10 || plan.attr.handledAccessFS&fsV9 == 0 {
			t.Errorf("ABI 10: fs %#x, net %#x; want resolve-unix and UDP handled", plan.attr.handledAccessFS, plan.attr.handledAccessNet)
		}
		if a, _ := rights(plan, "/"); a&fsV9 != 0 {
			t.Errorf("/ gets resolve-unix (%#x); want it only where writes are allowed", a)
		}
	})
}
