//go:build linux

package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// The no-network profiles add a seccomp-bpf filter to Landlock, which only
// handles TCP bind/connect (and UDP from ABI 10): socket(2) fails with
// EACCES for every address family except AF_UNIX and AF_NETLINK, so UDP,
// raw, packet, vsock, SCTP, MPTCP, ... sockets cannot even be created. On a
// kernel whose Landlock cannot restrict connect(2) to pathname UNIX sockets
// (ABI < 9), AF_UNIX is refused too: otherwise a command could reach any
// socket file it can name (a mounted docker.sock, say). socketpair(2) stays
// allowed: it connects nothing outside the command. The filter is written
// by hand (no seccomp library is in the module, and this one is a dozen
// instructions with its own table test), as classic BPF over struct
// seccomp_data:
//
//	ld  [4]                   ; arch
//	jeq #AUDIT_ARCH, ok, kill ; a foreign syscall ABI (i386 int 0x80, arm32) is killed
//	ld  [0]                   ; syscall number
//	jge #0x40000000, kill     ; amd64 only: the x32 ABI shares AUDIT_ARCH_X86_64
//	jeq #socket, sock
//	jeq #io_uring_setup, enosys ; io_uring can create sockets without socket(2)
//	ret ALLOW
//	sock: ld [16]             ; args[0], low 32 bits (little-endian): the family
//	jeq #AF_UNIX, allow       ; (not emitted when AF_UNIX is refused)
//	jeq #AF_NETLINK, allow
//	ret ERRNO(EACCES)
//	allow: ret ALLOW          ; (classic BPF jumps only forward)
//
// Syscall numbers are fixed per architecture here, not taken from the build,
// so the filters for both supported architectures can be tested anywhere.

// seccompArch describes one supported architecture.
type seccompArch struct {
	auditArch    uint32
	sysSocket    uint32
	sysIOURing   uint32 // io_uring_setup
	x32BitCheck  bool   // reject syscall numbers with __X32_SYSCALL_BIT
	littleEndian bool
}

var seccompArches = map[string]seccompArch{
	"amd64": {auditArch: unix.AUDIT_ARCH_X86_64, sysSocket: 41, sysIOURing: 425, x32BitCheck: true, littleEndian: true},
	"arm64": {auditArch: unix.AUDIT_ARCH_AARCH64, sysSocket: 198, sysIOURing: 425, littleEndian: true},
}

// Offsets in struct seccomp_data.
const (
	seccompDataNR    = 0
	seccompDataArch  = 4
	seccompDataArg0  = 16
	x32SyscallBit    = 0x40000000
	seccompRetKill   = unix.SECCOMP_RET_KILL_PROCESS
	seccompRetAllow  = unix.SECCOMP_RET_ALLOW
	seccompRetErrno  = unix.SECCOMP_RET_ERRNO
	seccompRetEACCES = seccompRetErrno | uint32(unix.EACCES)
	seccompRetENOSYS = seccompRetErrno | uint32(unix.ENOSYS)
)

// bpfInsn is one instruction with symbolic jump targets ("" = next).
type bpfInsn struct {
	label  string // this instruction's label, if any
	code   uint16
	k      uint32
	jt, jf string
}

// networkFilter returns the no-network seccomp filter for goarch, refusing
// AF_UNIX sockets too when denyUnix, or an error if goarch is not
// supported: then the no-network profiles cannot be enforced and the helper
// refuses.
func networkFilter(goarch string, denyUnix bool) ([]unix.SockFilter, error) {
	a, ok := seccompArches[goarch]
	if !ok {
		return nil, fmt.Errorf("no seccomp filter for %s (supported: amd64, arm64)", goarch)
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	arg0 := uint32(seccompDataArg0)
	if !a.littleEndian {
		arg0 += 4
	}
	prog := []bpfInsn{
		{code: ldAbs, k: seccompDataArch},
		{code: jeq, k: a.auditArch, jf: "kill"},
		{code: ldAbs, k: seccompDataNR},
	}
	if a.x32BitCheck {
		prog = append(prog, bpfInsn{code: jge, k: x32SyscallBit, jt: "kill"})
	}
	prog = append(prog,
		bpfInsn{code: jeq, k: a.sysSocket, jt: "socket"},
		bpfInsn{code: jeq, k: a.sysIOURing, jt: "enosys"},
		bpfInsn{label: "allow", code: ret, k: seccompRetAllow},
		bpfInsn{label: "socket", code: ldAbs, k: arg0},
	)
	if !denyUnix {
		prog = append(prog, bpfInsn{code: jeq, k: unix.AF_UNIX, jt: "family ok"})
	}
	prog = append(prog,
		bpfInsn{code: jeq, k: unix.AF_NETLINK, jt: "family ok"},
		bpfInsn{code: ret, k: seccompRetEACCES},
		bpfInsn{label: "family ok", code: ret, k: seccompRetAllow},
		bpfInsn{label: "enosys", code: ret, k: seccompRetENOSYS},
		bpfInsn{label: "kill", code: ret, k: seccompRetKill},
	)
	return assemble(prog)
}

// assemble resolves labels to the forward offsets classic BPF needs.
func assemble(prog []bpfInsn) ([]unix.SockFilter, error) {
	at := map[string]int{}
	for i, in := range prog {
		if in.label != "" {
			at[in.label] = i
		}
	}
	jump := func(i int, label string) (uint8, error) {
		if label == "" {
			return 0, nil
		}
		t, ok := at[label]
		if !ok || t <= i || t-i-1 > 255 {
			return 0, fmt.Errorf("bpf: bad jump from %d to %q", i, label)
		}
		return uint8(t - i - 1), nil
	}
	out := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		jt, err := jump(i, in.jt)
		if err != nil {
			return nil, err
		}
		jf, err := jump(i, in.jf)
		if err != nil {
			return nil, err
		}
		out[i] = unix.SockFilter{Code: in.code, Jt: jt, Jf: jf, K: in.k}
	}
	return out, nil
}
