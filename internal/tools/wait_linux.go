package tools

import "golang.org/x/sys/unix"

// waitExited blocks until process pid has exited, leaving it a zombie:
// waitid(WNOWAIT) does not reap, so the PID, and the PGID of the group it
// leads, cannot be reused until the caller reaps it. Killing the group
// after that is race-free.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}
