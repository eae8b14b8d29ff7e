package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Where agentd may make cgroups (cgroup v2, delegated to its user: root on
// a host, or a systemd unit with Delegate=yes), each command also runs in a
// cgroup of its own, <agentd's cgroup>/agentd-<agentd pid>/cmd-<helper pid>:
// the helper ends the command with cgroup.kill, which no fork race can
// outrun, and a helper killed outright (the OOM killer, an operator) leaves
// a cgroup that agentd's sweep (SweepCgroups) kills and removes. In a
// container the cgroup file system is read-only: there the supervisor
// alone ends what a command started (see exec_linux.go).

const (
	cgroupParentPrefix  = "agentd-" // agentd-<agentd pid>
	cgroupCommandPrefix = "cmd-"    // cmd-<helper pid>
)

// ownCgroup returns the directory of the calling process's cgroup on the
// cgroup v2 hierarchy.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	rel, found := "", false
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel, found = p, true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2 hierarchy (only cgroup v1)")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		root, mount := fields[3], fields[4]
		switch {
		case root == "/":
			return filepath.Join(mount, rel), nil
		case rel == root || strings.HasPrefix(rel, root+"/"):
			return filepath.Join(mount, strings.TrimPrefix(rel, root)), nil
		}
	}
	return "", errors.New("the cgroup v2 file system is not mounted where agentd can see its own cgroup")
}

// commandCgroupParent makes (or finds) agentd-<pid> below agentd's own
// cgroup and proves that a process can be started in a cgroup below it and
// killed with cgroup.kill. It returns the directory, or why commands get no
// cgroup.
func commandCgroupParent() (string, error) {
	own, err := ownCgroup()
	if err != nil {
		return "", err
	}
	parent := filepath.Join(own, cgroupParentPrefix+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(parent, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("no delegated cgroup v2: %v", err)
	}
	if err := proveCgroup(parent); err != nil {
		_ = os.Remove(parent)
		return "", err
	}
	return parent, nil
}

// proveCgroup starts a sleep in a new cgroup below parent and ends it with
// cgroup.kill.
func proveCgroup(parent string) error {
	cg := filepath.Join(parent, "preflight")
	_ = killCgroup(cg)
	fd, err := makeCgroup(cg)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	defer removeCgroup(cg)
	cmd := exec.Command("/bin/sh", "-c", "exec sleep 60")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start a process in cgroup %s: %v", cg, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if err := killCgroup(cg); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("cgroup.kill in %s: %v", cg, err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(2 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("cgroup.kill in %s did not end its process", cg)
	}
}

// makeCgroup makes the cgroup directory cg (a stale one is killed and
// reused) and returns a descriptor of it for clone3's CLONE_INTO_CGROUP.
func makeCgroup(cg string) (int, error) {
	if err := os.Mkdir(cg, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return -1, fmt.Errorf("make cgroup %s: %v", cg, err)
	}
	if _, err := os.Stat(filepath.Join(cg, "cgroup.kill")); err != nil {
		return -1, fmt.Errorf("cgroup %s has no cgroup.kill (Linux 5.14): %v", cg, err)
	}
	fd, err := unix.Open(cg, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup %s: %v", cg, err)
	}
	return fd, nil
}

// killCgroup kills every process in cg, atomically (cgroup.kill).
func killCgroup(cg string) error {
	return os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0)
}

// removeCgroup removes cg once its last process is gone (rmdir fails while
// one is still being torn down).
func removeCgroup(cg string) {
	for range 50 {
		if err := os.Remove(cg); err == nil || errors.Is(err, fs.ErrNotExist) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SweepCgroups kills and removes what commands left in their cgroups when
// their helper is gone (a helper killed outright, or an agentd that died
// with its helpers), and removes the empty parents of agentds that are
// gone. It does nothing where commands get no cgroup. agentd calls it at
// start and then now and then; it is cheap.
func SweepCgroups() {
	own, err := ownCgroup()
	if err != nil {
		return
	}
	parents, _ := os.ReadDir(own)
	for _, p := range parents {
		agentdPID, ok := pidSuffix(p.Name(), cgroupParentPrefix)
		if !ok || !p.IsDir() {
			continue
		}
		dir := filepath.Join(own, p.Name())
		cmds, _ := os.ReadDir(dir)
		live := 0
		for _, c := range cmds {
			helper, ok := pidSuffix(c.Name(), cgroupCommandPrefix)
			if !ok || !c.IsDir() {
				continue
			}
			if unix.Kill(helper, 0) == nil { // its helper runs (or the PID was reused: the next sweep)
				live++
				continue
			}
			cg := filepath.Join(dir, c.Name())
			_ = killCgroup(cg)
			removeCgroup(cg)
		}
		if live == 0 && agentdPID != os.Getpid() && unix.Kill(agentdPID, 0) != nil {
			_ = os.Remove(filepath.Join(dir, "preflight"))
			_ = os.Remove(dir)
		}
	}
}

func pidSuffix(name, prefix string) (int, bool) {
	s, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(s)
	return pid, err == nil && pid > 0
}

// ReleaseCgroups removes this process's own parent of command cgroups
// (agentd-<pid>), once the commands in it have ended; agentd calls it when
// it exits. A cgroup still in use stays, for a later sweep.
func ReleaseCgroups() {
	own, err := ownCgroup()
	if err != nil {
		return
	}
	dir := filepath.Join(own, cgroupParentPrefix+strconv.Itoa(os.Getpid()))
	_ = os.Remove(filepath.Join(dir, "preflight"))
	_ = os.Remove(dir)
}
