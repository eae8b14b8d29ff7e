package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExecMain is the sandbox helper. agentd's main must call it first thing
// when os.Args[1] is [ExecArg], with the arguments after it, and exit with
// its result:
//
//	if len(os.Args) > 1 && os.Args[1] == sandbox.ExecArg {
//		os.Exit(sandbox.ExecMain(os.Args[2:], os.Stderr))
//	}
//
// args are "<spec> -- <argv...>" (see the package doc). ExecMain confines
// its own OS thread (no_new_privs, no capabilities, Landlock, and seccomp
// for the no-network profiles) and execve's the command from it, so it
// returns only on failure, after writing a message prefixed "agentd
// sandbox:" to stderr: 125 when the arguments are bad or the sandbox cannot
// be applied (the command never runs unconfined), 126 or 127 when the
// command cannot be executed.
func ExecMain(args []string, stderr io.Writer) int {
	if len(args) > 0 && args[0] == probeArg {
		return probeMain(args[1:], os.Stdout, stderr)
	}
	s, argv, err := parseExecArgs(args)
	if err != nil {
		return helperFail(stderr, exitSetup, "refusing to run the command: %v", err)
	}
	// Landlock, seccomp, no_new_privs and capabilities are per thread here:
	// confine this one and execve from it. It is never unlocked.
	runtime.LockOSThread()
	if err := confine(s); err != nil {
		return helperFail(stderr, exitSetup, "cannot confine the command with profile %s, so it was not run: %v", s.Profile, err)
	}
	err = syscall.Exec(s.Path, argv, os.Environ())
	code := exitCannotExec
	if errors.Is(err, syscall.ENOENT) {
		code = exitNotFound
	}
	return helperFail(stderr, code, "exec %s: %v", s.Path, err)
}

// confine applies s to the calling thread, which must be locked. Everything
// that can fail without side effects is checked before anything is applied.
func confine(s spec) error {
	for _, d := range append([]string{s.Workspace}, s.Writable...) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", d)
		}
	}
	abi, err := landlockABI()
	if err != nil {
		return err
	}
	plan, err := planLandlock(abi, s)
	if err != nil {
		return err
	}
	var filter []unix.SockFilter
	if !s.Profile.Network() {
		if filter, err = networkFilter(runtime.GOARCH); err != nil {
			return err
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %v", err)
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	if err := plan.enforce(); err != nil {
		return err
	}
	if filter != nil {
		if err := installSeccomp(filter); err != nil {
			return err
		}
	}
	return nil
}

// dropCapabilities empties the calling thread's ambient, inheritable,
// permitted and effective capability sets and, when it may (CAP_SETPCAP),
// its bounding set. With no_new_privs set, execve cannot give any back,
// even to root: Landlock does not stop a privileged process from loading
// kernel modules, rebooting, changing owners or reconfiguring the network.
func dropCapabilities() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return fmt.Errorf("clear ambient capabilities: %v", err)
	}
	for c := 0; c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err != nil {
			break // EINVAL: past the kernel's last capability
		}
		if in == 1 {
			// EPERM without CAP_SETPCAP; the empty permitted set and
			// no_new_privs still keep execve from granting c.
			_ = unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // all zero
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset (drop all capabilities): %v", err)
	}
	return nil
}

// installSeccomp loads filter on the calling thread (no TSYNC: the thread
// is about to execve, and the filter is inherited by the command).
func installSeccomp(filter []unix.SockFilter) error {
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("prctl(PR_SET_SECCOMP): %v", errno)
	}
	return nil
}
