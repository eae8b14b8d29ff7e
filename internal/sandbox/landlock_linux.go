package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file drives Landlock through its system calls with golang.org/x/sys.
// (go-landlock cannot be built in this module: its syscall package imports
// libcap/psx, which go.sum does not list.) The ruleset is enforced on the
// calling thread only, which then execve's the command; see ExecMain.

// Landlock access rights, by the ABI version that introduced them.
const (
	fsV1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
		unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
		unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
		unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
		unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	fsV2 = unix.LANDLOCK_ACCESS_FS_REFER        // rename/link across directories
	fsV3 = unix.LANDLOCK_ACCESS_FS_TRUNCATE     // truncate(2), O_TRUNC
	fsV5 = unix.LANDLOCK_ACCESS_FS_IOCTL_DEV    // ioctl(2) on device files
	fsV9 = unix.LANDLOCK_ACCESS_FS_RESOLVE_UNIX // connect(2) to pathname UNIX sockets

	netV4  = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
	netV10 = unix.LANDLOCK_ACCESS_NET_BIND_UDP | unix.LANDLOCK_ACCESS_NET_CONNECT_SEND_UDP

	scopeV6Abstract = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET

	// Rights granted everywhere: read and execute.
	fsReadExec = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	// Rights on the writable character devices (file rules: file rights only).
	fsDevWrite = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE
	// Rights never granted, even in writable directories: creating device
	// nodes (as root, mknod + open would reach raw disks) and device ioctls.
	fsNeverGranted = unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
)

// fileRights are the rights that apply to files (not directories).
const fileRights = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
	unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV

// Character devices writable by every profile, and by the write profiles.
var (
	devAlways = []string{"/dev/null"}
	devWrite  = []string{"/dev/null", "/dev/zero", "/dev/full"}
)

// rulesetAttr is struct landlock_ruleset_attr up to ABI 6+ (scoped); the
// kernel accepts a larger struct from older userspace if the extra fields
// it does not know are zero, and we only set them when the ABI has them.
type rulesetAttr struct {
	handledAccessFS  uint64
	handledAccessNet uint64
	scoped           uint64
}

// landlockABI returns the kernel's Landlock ABI version, or an error saying
// why Landlock is unavailable.
func landlockABI() (int, error) {
	v, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	switch errno {
	case 0:
		return int(v), nil
	case unix.ENOSYS:
		return 0, errors.New("the kernel is built without Landlock (CONFIG_SECURITY_LANDLOCK)")
	case unix.EOPNOTSUPP:
		return 0, errors.New("Landlock is disabled at boot (add landlock to the lsm= kernel parameter)")
	}
	return 0, fmt.Errorf("landlock_create_ruleset(VERSION): %v", errno)
}

// pathRule grants access beneath one path.
type pathRule struct {
	path     string
	access   uint64
	optional bool // skip it if the path does not exist
}

// landlockPlan is the ruleset for one command.
type landlockPlan struct {
	attr  rulesetAttr
	rules []pathRule
}

// planLandlock builds the ruleset for s on a kernel with the given ABI,
// or fails if that ABI cannot enforce the profile. Every access right the
// ABI knows is handled (denied unless a rule grants it), not only those the
// profile needs, so newer kernels confine more.
func planLandlock(abi int, s spec) (landlockPlan, error) {
	if abi < s.Profile.minABI() {
		return landlockPlan{}, fmt.Errorf("the kernel's Landlock ABI %d cannot enforce profile %s, which needs ABI %d "+
			"(ABI 3, Linux 6.2: truncation; ABI 4, Linux 6.7: TCP bind/connect)", abi, s.Profile, s.Profile.minABI())
	}
	var handled uint64 = fsV1 | fsV2 | fsV3
	if abi >= 5 {
		handled |= fsV5
	}
	if abi >= 9 {
		handled |= fsV9
	}
	p := landlockPlan{attr: rulesetAttr{handledAccessFS: handled}}
	if !s.Profile.Network() {
		p.attr.handledAccessNet = netV4 // no rule grants a port: all denied
		if abi >= 10 {
			p.attr.handledAccessNet |= netV10
		}
		if abi >= 6 {
			p.attr.scoped = scopeV6Abstract
		}
	}
	// grant adds access beneath root, except beneath the hidden paths.
	grant := func(root string, access uint64, optional bool) error {
		if !slices.ContainsFunc(s.Hidden, func(h string) bool { return h == root || strings.HasPrefix(h, strings.TrimSuffix(root, "/")+"/") }) {
			p.rules = append(p.rules, pathRule{path: root, access: access, optional: optional})
			return nil
		}
		if slices.Contains(s.Hidden, root) {
			return nil
		}
		subs, err := readRoots(root, s.Hidden)
		if err != nil {
			if optional && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, sub := range subs {
			p.rules = append(p.rules, pathRule{path: sub, access: access, optional: true})
		}
		return nil
	}
	if err := grant("/", fsReadExec, false); err != nil {
		return landlockPlan{}, err
	}
	if len(s.Hidden) > 0 {
		// The workspace may lie beneath a hidden path: it stays readable.
		p.rules = append(p.rules, pathRule{path: s.Workspace, access: fsReadExec})
	}
	devs := devAlways
	if s.Profile.Writes() {
		devs = devWrite
		rw := handled &^ fsNeverGranted
		p.rules = append(p.rules, pathRule{path: s.Workspace, access: rw})
		for _, w := range s.Writable {
			if err := grant(w, rw, false); err != nil {
				return landlockPlan{}, err
			}
		}
		if err := grant(tmpDir, rw, true); err != nil {
			return landlockPlan{}, err
		}
	}
	for _, d := range devs {
		p.rules = append(p.rules, pathRule{path: d, access: fsDevWrite & handled, optional: true})
	}
	return p, nil
}

// enforce creates the ruleset and restricts the calling thread with it. The
// caller must hold runtime.LockOSThread and have set no_new_privs.
func (p landlockPlan) enforce() error {
	fd, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET,
		uintptr(unsafe.Pointer(&p.attr)), unsafe.Sizeof(p.attr), 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %v", errno)
	}
	defer unix.Close(int(fd))
	for _, r := range p.rules {
		if err := addPathRule(int(fd), r); err != nil {
			return err
		}
	}
	if _, _, errno := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %v", errno)
	}
	return nil
}

// readRoots returns the paths that together cover everything beneath dir
// except the hidden paths: every entry of dir that is not hidden and holds
// no hidden path, and, for an entry that holds one, the same beneath it.
// The directories leading to a hidden path get no rule (they cannot be
// listed), but paths granted beneath them stay reachable.
func readRoots(dir string, hidden []string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s to hide %v: %w", dir, hidden, err)
	}
	var out []string
	for _, e := range entries {
		full := filepath.Join(dir, e.Name())
		switch {
		case slices.Contains(hidden, full):
		case slices.ContainsFunc(hidden, func(h string) bool { return strings.HasPrefix(h, full+"/") }):
			if e.Type()&fs.ModeSymlink != 0 { // a hidden path behind a link: hide the whole link
				continue
			}
			sub, err := readRoots(full, hidden)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		default:
			out = append(out, full)
		}
	}
	return out, nil
}

func addPathRule(rulesetFD int, r pathRule) error {
	fd, err := unix.Open(r.path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		if r.optional && (err == unix.ENOENT || err == unix.EACCES || err == unix.ELOOP || err == unix.ENXIO) {
			return nil
		}
		return fmt.Errorf("landlock rule for %s: %v", r.path, &os.PathError{Op: "open", Path: r.path, Err: err})
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		r.access &= fileRights // a rule on a file takes file rights only
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: r.access, Parent_fd: int32(fd)}
	_, _, errno := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rulesetFD),
		unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&attr)), 0, 0, 0)
	if errno == unix.EBADFD && r.optional {
		return nil // not a file system object (a pipe or socket behind /dev/stderr, say): nothing to grant
	}
	if errno != 0 {
		return fmt.Errorf("landlock rule for %s (access %#x): %v", r.path, r.access, errno)
	}
	return nil
}
