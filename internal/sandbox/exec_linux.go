package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
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
// args are "<spec> -- <argv...>" (see the package doc). The helper starts
// the command confined (no_new_privs, no capabilities, Landlock, and
// seccomp for the no-network profiles) and stays, unconfined and out of the
// command's reach, as the parent and child subreaper of everything the
// command starts: when the command's first process exits, or the helper
// gets SIGTERM (agentd died: the parent-death signal; or an operator), it
// kills whatever the command left, setsid daemons included, reaps it all,
// and exits as the command did (the same exit code, or the same signal).
//
// It returns only on failure, after writing a message prefixed "agentd
// sandbox:" to stderr: 125 when the arguments are bad or the sandbox cannot
// be applied (the command never runs unconfined), 126 or 127 when the
// command cannot be executed.
func ExecMain(args []string, stderr io.Writer) int {
	// First: a SIGTERM from now on ends the command instead of the helper
	// (whose death would orphan the command's processes).
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM)
	// Terminal signals reach the helper when agentd runs in a terminal's
	// process group (which the helper joins, below): agentd decides what
	// happens to commands, so they are caught and dropped. Caught, not
	// ignored: an ignored signal would stay ignored in the command.
	signal.Notify(make(chan os.Signal, 1), unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU)

	if len(args) > 0 && args[0] == probeArg {
		return probeMain(args[1:], os.Stdout, stderr)
	}
	s, argv, err := parseExecArgs(args)
	if err != nil {
		return helperFail(stderr, exitSetup, "refusing to run the command: %v", err)
	}
	return supervise(s, argv, term, stderr)
}

// setParentDeathSignal makes the kernel send the helper SIGTERM when agentd
// dies. The parent is the thread that started the helper; agentd's threads
// live as long as agentd (it never locks a goroutine to a thread and lets
// it exit), so this fires when agentd exits, kill -9 included.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }

// confinement is what the thread that starts the command applies to itself.
type confinement struct {
	rulesetFD int
	flags     uint32
	filter    filterOptions // the thread's ID is added by apply
}

// prepareConfinement checks s and builds its Landlock ruleset and seccomp
// filter, applying nothing yet.
func prepareConfinement(s spec) (confinement, error) {
	for _, d := range append([]string{s.Workspace}, s.Writable...) {
		fi, err := os.Stat(d)
		if err != nil {
			return confinement{}, err
		}
		if !fi.IsDir() {
			return confinement{}, fmt.Errorf("%s is not a directory", d)
		}
	}
	abi, err := landlockABI()
	if err != nil {
		return confinement{}, err
	}
	plan, err := planLandlock(abi, s)
	if err != nil {
		return confinement{}, err
	}
	c := confinement{rulesetFD: -1, filter: filterOptions{noNetwork: !s.Profile.Network(), denyUnix: plan.denyUnixSockets}}
	if _, err := commandFilter(runtime.GOARCH, c.filter); err != nil { // fail before anything is applied
		return confinement{}, err
	}
	if c.rulesetFD, c.flags, err = plan.rulesetFD(); err != nil {
		return confinement{}, err
	}
	return c, nil
}

// apply confines the calling thread, which must be locked and never be
// unlocked again. With no_new_privs set, execve cannot give capabilities
// back, even to root: Landlock does not stop a privileged process from
// loading kernel modules, rebooting, changing owners or reconfiguring the
// network.
func (c confinement) apply() error {
	c.filter.thread = uint32(unix.Gettid())
	filter, err := commandFilter(runtime.GOARCH, c.filter)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %v", err)
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	if err := ll.LandlockRestrictSelf(c.rulesetFD, c.flags); err != nil {
		return fmt.Errorf("landlock_restrict_self: %v", err)
	}
	return installSeccomp(filter)
}

// supervise runs argv under s and waits for it and everything it starts.
func supervise(s spec, argv []string, term <-chan os.Signal, stderr io.Writer) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return helperFail(stderr, exitSetup, "cannot become the command's subreaper, so it was not run: %v", err)
	}
	c, err := prepareConfinement(s)
	if err != nil {
		return helperFail(stderr, exitSetup, "cannot confine the command with profile %s, so it was not run: %v", s.Profile, err)
	}
	self := unix.Getpid()
	leader := unix.Getpgrp() == self
	files := make([]uintptr, 3+s.ExtraFiles)
	for i := range files {
		files[i] = uintptr(i)
	}
	attr := &syscall.ProcAttr{Env: os.Environ(), Files: files,
		// In the helper's group, which the helper then leaves: agentd's
		// signals to the group reach the command and never the helper.
		Sys: &syscall.SysProcAttr{Setpgid: leader, Pgid: self}}
	cgroup := ""
	if s.Cgroup != "" {
		cgroup = filepath.Join(s.Cgroup, cgroupCommandPrefix+strconv.Itoa(self))
		fd, err := makeCgroup(cgroup)
		if err != nil {
			unix.Close(c.rulesetFD)
			return helperFail(stderr, exitSetup, "cannot give the command its cgroup, so it was not run: %v", err)
		}
		// Removed before the helper exits, or dies of the command's signal
		// (raise runs no deferred call): by then every process in it is gone.
		defer removeCgroup(cgroup)
		defer unix.Close(fd)
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
	}
	var (
		pid               int
		setupErr, execErr error
	)
	if err := onOtherThread(func() {
		// This thread is confined for good and dies when this function
		// returns: the helper's other threads stay outside the sandbox, so
		// the command can neither signal nor trace them.
		if setupErr = c.apply(); setupErr == nil {
			pid, execErr = syscall.ForkExec(s.Path, argv, attr)
		}
	}); err != nil {
		setupErr = err
	}
	unix.Close(c.rulesetFD)
	if setupErr != nil {
		return helperFail(stderr, exitSetup, "cannot confine the command with profile %s, so it was not run: %v", s.Profile, setupErr)
	}
	if execErr != nil {
		code := exitCannotExec
		if errors.Is(execErr, syscall.ENOENT) {
			code = exitNotFound
		}
		return helperFail(stderr, code, "exec %s: %v", s.Path, execErr)
	}
	if leader {
		if pg, err := unix.Getpgid(unix.Getppid()); err == nil && pg != self {
			_ = unix.Setpgid(0, pg) // EPERM (another session): agentd's group signals then reach the helper too
		}
	}
	ws := waitAll(pid, term, cgroup)
	if ws.Signaled() {
		if cgroup != "" {
			removeCgroup(cgroup)
		}
		raise(ws.Signal())
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// onOtherThread runs fn on a locked OS thread that is not the process's
// main thread (a signal sent to the helper's PID is checked against the
// main thread's sandbox, which must stay none), and lets that thread exit
// with fn, never to be reused.
func onOtherThread(fn func()) error {
	for range 8 {
		done := make(chan bool)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
			if unix.Gettid() == unix.Getpid() {
				done <- false
				select {} // keep the main thread busy, so the next try lands elsewhere
			}
			fn()
			done <- true
		}()
		if <-done {
			return nil
		}
	}
	return errors.New("no thread other than the main thread to confine")
}

// waitResult is one reaped child.
type waitResult struct {
	pid int
	ws  unix.WaitStatus
}

// waitAll reaps every child of the helper (the command and whatever was
// orphaned to it) until there are none, killing them all once the
// command's first process (pid) has exited or term fired (with
// cgroup.kill too when the command has a cgroup), and returns that
// process's status.
func waitAll(pid int, term <-chan os.Signal, cgroup string) unix.WaitStatus {
	exits := make(chan waitResult, 16)
	go func() {
		defer close(exits)
		for {
			var ws unix.WaitStatus
			p, err := unix.Wait4(-1, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil { // ECHILD: no child left, so no descendant either
				return
			}
			exits <- waitResult{p, ws}
		}
	}()
	var (
		main   unix.WaitStatus
		ticker *time.Ticker
		tick   <-chan time.Time
	)
	end := func() {
		if ticker == nil {
			ticker = time.NewTicker(20 * time.Millisecond)
			tick = ticker.C
		}
		if cgroup != "" {
			_ = killCgroup(cgroup)
		}
		killDescendants()
	}
	for {
		select {
		case r, ok := <-exits:
			if !ok {
				if ticker != nil {
					ticker.Stop()
				}
				return main
			}
			if r.pid == pid {
				main = r.ws
				end()
			}
		case <-term:
			term = nil
			end()
		case <-tick:
			// Processes forked while the last round ran are found now,
			// orphaned to the helper.
			killDescendants()
		}
	}
}

// killDescendants sends SIGKILL to every process below the helper. It reads
// /proc for their parents (the kernel's children lists need
// CONFIG_PROC_CHILDREN, which not every kernel has); a process forked in
// the meantime is orphaned to the helper when its parent dies and found by
// the next round.
func killDescendants() {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	children := make(map[int][]int)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold anything, so split
		// after its last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(string(f[1])); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	queue := append([]int(nil), children[self]...)
	for len(queue) > 0 {
		p := queue[0]
		queue = append(queue[1:], children[p]...)
		_ = unix.Kill(p, unix.SIGKILL)
	}
}

// raise makes the helper die of sig, as the command did, so that agentd
// sees the same wait status. The Go runtime's handler is replaced by the
// default action first (a core dump is suppressed). It returns if sig does
// not terminate a process.
func raise(sig unix.Signal) {
	runtime.LockOSThread()
	_ = unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{})
	// struct kernel_sigaction {handler, flags, restorer, mask}, the same on
	// amd64 and arm64; all zero is SIG_DFL.
	var sa [4]uint64
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&sa)), 0, 8, 0, 0)
	var set unix.Sigset_t
	set.Val[(sig-1)/64] = 1 << ((uint(sig) - 1) % 64)
	_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
	_ = unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	time.Sleep(100 * time.Millisecond) // delivery is asynchronous only in theory
}

// dropCapabilities empties the calling thread's ambient, inheritable,
// permitted and effective capability sets and, when it may (CAP_SETPCAP),
// its bounding set.
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

// installSeccomp loads filter on the calling thread (no TSYNC: the
// thread is about to start the command, which inherits the filter).
func installSeccomp(filter []unix.SockFilter) error {
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("prctl(PR_SET_SECCOMP): %v", errno)
	}
	return nil
}

// landlockABI returns the kernel's Landlock ABI version, or an error saying
// why Landlock is unavailable.
func landlockABI() (int, error) {
	v, err := ll.LandlockGetABIVersion()
	switch {
	case err == nil:
		return v, nil
	case errors.Is(err, unix.ENOSYS):
		return 0, errors.New("the kernel is built without Landlock (CONFIG_SECURITY_LANDLOCK)")
	case errors.Is(err, unix.EOPNOTSUPP):
		return 0, errors.New("Landlock is disabled at boot (add landlock to the lsm= kernel parameter)")
	}
	return 0, fmt.Errorf("landlock_create_ruleset(VERSION): %v", err)
}
