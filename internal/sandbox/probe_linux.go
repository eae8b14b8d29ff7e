package sandbox

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The probe is what Preflight runs inside the sandbox to prove it holds:
//
//	<self> __sandbox-exec <spec> -- <self> __sandbox-exec --probe <probe spec>
//
// The helper starts the inner one (the agentd binary, made readable for the
// probe's run only) confined, as it would any command; the probe tries each
// operation and prints one JSON object mapping each check to "ok" or the
// errno name it failed with (e.g. "EACCES"), and leaves a setsid daemon
// behind whose PID it reports. It judges nothing: Preflight compares the
// results with what the profile promises. The probe only touches the paths
// it is given, so running it unconfined is harmless.

func probeMain(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		return helperFail(stderr, exitSetup, "usage: agentd %s %s <probe spec>", ExecArg, probeArg)
	}
	var ps probeSpec
	raw, err := base64.RawURLEncoding.DecodeString(args[0])
	if err == nil {
		err = json.Unmarshal(raw, &ps)
	}
	if err != nil {
		return helperFail(stderr, exitSetup, "bad probe spec: %v", err)
	}
	res := map[string]string{
		checkWriteWorkspace:   result(writeFile(filepath.Join(ps.Workspace, ".agentd-sandbox-probe"), true)),
		checkWriteTmp:         result(writeTemp("/tmp")),
		checkReadTmp:          result(listDir("/tmp")),
		checkWriteOutside:     result(writeFile(filepath.Join(ps.Outside, "probe"), true)),
		checkTruncateOutside:  result(unix.Truncate(filepath.Join(ps.Outside, probeExisting), 0)),
		checkReadOutside:      result(readFile(filepath.Join(ps.Outside, probeExisting))),
		checkReadSystem:       result(readFile("/etc/passwd")),
		checkReadProc:         result(readFile(fmt.Sprintf("/proc/%d/cmdline", ps.Parent))),
		checkWriteDevNull:     result(writeFile("/dev/null", false)),
		checkSignalParent:     result(unix.Kill(ps.Parent, 0)),
		checkSignalHelper:     result(unix.Kill(unix.Getppid(), 0)),
		checkAbstractUnix:     result(connectUnix("@" + ps.Abstract)),
		checkPathUnix:         result(connectUnix(ps.UnixPath)),
		checkSocketInet:       result(trySocket(unix.AF_INET, unix.SOCK_STREAM)),
		checkSocketInet6Dgram: result(trySocket(unix.AF_INET6, unix.SOCK_DGRAM)),
		checkSocketPacket:     result(trySocket(unix.AF_PACKET, unix.SOCK_RAW)),
		checkTCPConnect:       result(connectFD(probeFD, ps.Connect)),
		checkCapabilities:     result(noCapabilities()),
	}
	if pid, err := startDaemon(); err != nil {
		res[checkDaemon] = result(err)
	} else {
		res[checkDaemon] = "ok " + strconv.Itoa(pid)
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return helperFail(stderr, exitSetup, "probe: %v", err)
	}
	return 0
}

// result is "ok" or the name of the errno err carries (else its text).
func result(err error) string {
	if err == nil {
		return "ok"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
	}
	return err.Error()
}

// writeFile opens path for writing (creating it if create) and writes to it;
// a file it created is removed again.
func writeFile(path string, create bool) error {
	flags := unix.O_WRONLY | unix.O_TRUNC | unix.O_CLOEXEC
	if create {
		flags |= unix.O_CREAT | unix.O_EXCL
	}
	fd, err := unix.Open(path, flags, 0o600)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, []byte("x"))
	unix.Close(fd)
	if create {
		unix.Unlink(path)
	}
	return err
}

func writeTemp(dir string) error {
	f, err := os.CreateTemp(dir, "agentd-sandbox-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func trySocket(family, typ int) error {
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
	}
	return err
}

func connectFD(fd int, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return fmt.Errorf("bad address %q", addr)
	}
	return unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
}

// noCapabilities checks with capget(2) that the permitted, effective and
// inheritable sets are empty.
func noCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	for _, d := range data {
		if d.Permitted != 0 || d.Effective != 0 || d.Inheritable != 0 {
			return fmt.Errorf("capabilities left: %+v", data)
		}
	}
	return nil
}

func readFile(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Read(fd, make([]byte, 16))
	return err
}

func listDir(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_, err = unix.Getdents(fd, make([]byte, 4096))
	return err
}

// connectUnix connects to a UNIX socket: abstract when name starts with @.
func connectUnix(name string) error {
	if name == "" || name == "@" {
		return errors.New("no socket to try")
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: name})
}

// startDaemon starts a long sleep in a session of its own, as a model
// would leave a daemon behind, and returns its PID without waiting.
func startDaemon() (int, error) {
	path, err := exec.LookPath("sleep")
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(path, "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	return cmd.Process.Pid, nil
}

// probeSocket returns an unconnected AF_INET stream socket for the probe's
// fd 3: made outside the sandbox, so that a connect on it is stopped by
// Landlock alone, not by the seccomp filter on socket(2).
func probeSocket() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %v", err)
	}
	return os.NewFile(uintptr(fd), "probe-socket"), nil
}
