//go:build linux

package sandbox

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Every command gets a seccomp-bpf filter beside Landlock, written by hand
// (no seccomp library is in the module, and this one is a few dozen
// instructions with its own table test), as classic BPF over struct
// seccomp_data. It does two things.
//
// It guards the helper's starting thread. The command is started from a
// helper thread that is confined like the command, in the same Landlock
// domain, for the microseconds until that thread exits; a thread-directed
// signal (tkill, tgkill, rt_tgsigqueueinfo, a pidfd_open'ed thread),
// ptrace or process_vm_* aimed at that thread's ID would reach the helper,
// so those calls fail with EPERM when they name it. (Process-directed
// signals and everything aimed at the helper's other threads are Landlock's
// to refuse: they are outside the command's domain.)
//
// For the no-network profiles it also narrows sockets: Landlock only
// handles TCP bind/connect (and UDP from ABI 10), so socket(2) fails with
// EACCES for every address family except AF_UNIX and AF_NETLINK, and UDP,
// raw, packet, vsock, SCTP, MPTCP, ... sockets cannot even be created;
// io_uring, which can make sockets without socket(2), is ENOSYS. On a kernel
// whose Landlock cannot restrict connect(2) to pathname UNIX sockets (ABI <
// 9), AF_UNIX is refused too: otherwise a command could reach any socket
// file it can name (a mounted docker.sock, say). socketpair(2) stays
// allowed: it connects nothing outside the command.
//
//	ld  [4]                   ; arch
//	jeq #AUDIT_ARCH, ok, kill ; a foreign syscall ABI (i386 int 0x80, arm32) is killed
//	ld  [0]                   ; syscall number
//	jge #0x40000000, kill     ; amd64 only: the x32 ABI shares AUDIT_ARCH_X86_64
//	jeq #tkill, a0 ...        ; each call naming a thread: load the argument
//	jeq #socket, sock         ; (no-network only)
//	jeq #io_uring_setup, enosys
//	ret ALLOW
//	a0: ld [16]               ; args[0], low 32 bits (little-endian): pid_t is an int
//	jeq #TID, eperm, allow
//	sock: ld [16]             ; the family
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
	// Calls that name a thread, with the index of the argument holding its
	// ID: tkill(tid), tgkill(tgid, tid), rt_tgsigqueueinfo(tgid, tid),
	// pidfd_open(pid), ptrace(req, pid), process_vm_readv/writev(pid).
	threadCalls []threadCall
}

type threadCall struct {
	nr  uint32
	arg uint32 // 0-5
}

var seccompArches = map[string]seccompArch{
	"amd64": {auditArch: unix.AUDIT_ARCH_X86_64, sysSocket: 41, sysIOURing: 425, x32BitCheck: true, littleEndian: true,
		threadCalls: []threadCall{{200, 0}, {234, 1}, {297, 1}, {434, 0}, {101, 1}, {310, 0}, {311, 0}}},
	"arm64": {auditArch: unix.AUDIT_ARCH_AARCH64, sysSocket: 198, sysIOURing: 425, littleEndian: true,
		threadCalls: []threadCall{{130, 0}, {131, 1}, {240, 1}, {434, 0}, {117, 1}, {270, 0}, {271, 0}}},
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
	seccompRetEPERM  = seccompRetErrno | uint32(unix.EPERM)
)

// bpfInsn is one instruction with symbolic jump targets ("" = next).
type bpfInsn struct {
	label  string // this instruction's label, if any
	code   uint16
	k      uint32
	jt, jf string
}

// filterOptions chooses what a command's filter refuses.
type filterOptions struct {
	noNetwork bool   // narrow socket families, no io_uring
	denyUnix  bool   // with noNetwork: no AF_UNIX sockets either
	thread    uint32 // the helper thread's ID that no call may name
}

// commandFilter returns the seccomp filter of a command for goarch, or an
// error if goarch is not supported: then no profile can be enforced and the
// helper refuses.
func commandFilter(goarch string, o filterOptions) ([]unix.SockFilter, error) {
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
	arg := func(i uint32) uint32 {
		off := seccompDataArg0 + 8*i
		if !a.littleEndian {
			off += 4
		}
		return off
	}
	prog := []bpfInsn{
		{code: ldAbs, k: seccompDataArch},
		{code: jeq, k: a.auditArch, jf: "kill"},
		{code: ldAbs, k: seccompDataNR},
	}
	if a.x32BitCheck {
		prog = append(prog, bpfInsn{code: jge, k: x32SyscallBit, jt: "kill"})
	}
	for _, tc := range a.threadCalls {
		prog = append(prog, bpfInsn{code: jeq, k: tc.nr, jt: fmt.Sprintf("arg%d", tc.arg)})
	}
	if o.noNetwork {
		prog = append(prog,
			bpfInsn{code: jeq, k: a.sysSocket, jt: "socket"},
			bpfInsn{code: jeq, k: a.sysIOURing, jt: "enosys"})
	}
	prog = append(prog, bpfInsn{code: ret, k: seccompRetAllow})
	for _, i := range []uint32{0, 1} {
		prog = append(prog,
			bpfInsn{label: fmt.Sprintf("arg%d", i), code: ldAbs, k: arg(i)},
			bpfInsn{code: jeq, k: o.thread, jt: "eperm", jf: "allow"})
	}
	if o.noNetwork {
		prog = append(prog, bpfInsn{label: "socket", code: ldAbs, k: arg(0)})
		if !o.denyUnix {
			prog = append(prog, bpfInsn{code: jeq, k: unix.AF_UNIX, jt: "allow"})
		}
		prog = append(prog,
			bpfInsn{code: jeq, k: unix.AF_NETLINK, jt: "allow"},
			bpfInsn{code: ret, k: seccompRetEACCES},
			bpfInsn{label: "enosys", code: ret, k: seccompRetENOSYS})
	}
	prog = append(prog,
		bpfInsn{label: "eperm", code: ret, k: seccompRetEPERM},
		bpfInsn{label: "allow", code: ret, k: seccompRetAllow},
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
