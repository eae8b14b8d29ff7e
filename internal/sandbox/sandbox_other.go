//go:build !linux

package sandbox

import (
	"errors"
	"io"
	"os"
	"runtime"
	"syscall"
)

var errNotLinux = errors.New("the sandbox needs Linux (Landlock and seccomp); this is " + runtime.GOOS)

// ExecMain is the sandbox helper (see the Linux version). On other systems
// it refuses to run anything and returns 125.
func ExecMain(args []string, stderr io.Writer) int {
	return helperFail(stderr, exitSetup, "refusing to run the command: %v", errNotLinux)
}

func landlockABI() (int, error) { return 0, errNotLinux }

func probeSocket() (*os.File, error) { return nil, errNotLinux }

func setParentDeathSignal(*syscall.SysProcAttr) {}

func commandCgroupParent() (string, error) { return "", errNotLinux }

// SweepCgroups does nothing outside Linux.
func SweepCgroups() {}

// ReleaseCgroups does nothing outside Linux.
func ReleaseCgroups() {}
