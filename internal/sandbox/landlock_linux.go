package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/landlock-lsm/go-landlock/landlock"
	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// This file plans the Landlock ruleset of one command; go-landlock builds
// it (landlock.Config.NewRulesetFD), and the helper enforces it on the one
// thread that then starts the command (see exec_linux.go): never on the
// server, and never on the helper's other threads.

// Landlock access rights, by the ABI version that introduced them.
const (
	fsV1 = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSReadDir |
		ll.AccessFSRemoveDir | ll.AccessFSRemoveFile | ll.AccessFSMakeChar | ll.AccessFSMakeDir |
		ll.AccessFSMakeReg | ll.AccessFSMakeSock | ll.AccessFSMakeFifo | ll.AccessFSMakeBlock | ll.AccessFSMakeSym
	fsV2 = ll.AccessFSRefer       // rename/link across directories
	fsV3 = ll.AccessFSTruncate    // truncate(2), O_TRUNC
	fsV5 = ll.AccessFSIoctlDev    // ioctl(2) on device files
	fsV9 = ll.AccessFSResolveUnix // connect(2) to pathname UNIX sockets

	netV4  = ll.AccessNetBindTCP | ll.AccessNetConnectTCP
	netV10 = ll.AccessNetBindUDP | ll.AccessNetConnectSendUDP

	// scopeV6: a command cannot signal, nor connect to an abstract UNIX
	// socket of, any process outside its own sandbox: not agentd, not its
	// own helper, not another command.
	scopeV6 = ll.ScopeAbstractUnixSocket | ll.ScopeSignal

	// Rights granted on readable paths: read and execute.
	fsRead = ll.AccessFSExecute | ll.AccessFSReadFile | ll.AccessFSReadDir
	// Rights on the writable character devices (file rules: file rights only).
	fsDevWrite = ll.AccessFSReadFile | ll.AccessFSWriteFile | ll.AccessFSTruncate
	// Rights never granted, even in writable directories: creating device
	// nodes (as root, mknod + open would reach raw disks) and device ioctls.
	fsNeverGranted = ll.AccessFSMakeChar | ll.AccessFSMakeBlock | ll.AccessFSIoctlDev
)

// fileRights are the rights that apply to files (not directories).
const fileRights = ll.AccessFSExecute | ll.AccessFSWriteFile | ll.AccessFSReadFile | ll.AccessFSTruncate | ll.AccessFSIoctlDev

// pathRule grants access beneath one path.
type pathRule struct {
	path     string
	access   uint64
	optional bool // skip it if the path does not exist
}

// landlockPlan is the confinement of one command.
type landlockPlan struct {
	fs, net, scoped uint64
	rules           []pathRule
	// denyUnixSockets: a no-network profile on a kernel whose Landlock
	// cannot restrict connect(2) to pathname UNIX sockets (ABI < 9): the
	// seccomp filter refuses AF_UNIX sockets instead.
	denyUnixSockets bool
}

// planLandlock builds the ruleset for s on a kernel with the given ABI,
// or fails if that ABI cannot enforce the profile. Every filesystem right
// the ABI knows is handled (denied unless a rule grants it), not only those
// the profile needs, so newer kernels confine more.
func planLandlock(abi int, s spec) (landlockPlan, error) {
	if abi < s.Profile.minABI() {
		return landlockPlan{}, fmt.Errorf("the kernel's Landlock ABI %d cannot enforce profile %s, which needs ABI %d "+
			"(Linux 6.12: the signal and abstract UNIX socket scopes)", abi, s.Profile, s.Profile.minABI())
	}
	p := landlockPlan{fs: fsV1 | fsV2 | fsV3, scoped: scopeV6}
	if abi >= 5 {
		p.fs |= fsV5
	}
	if abi >= 9 {
		p.fs |= fsV9
	}
	if !s.Profile.Network() {
		p.net = netV4 // no rule grants a port: all denied
		if abi >= 10 {
			p.net |= netV10
		}
		p.denyUnixSockets = abi < 9
	}
	// grant adds access beneath root, except beneath the hidden paths.
	grant := func(root string, access uint64, optional bool) error {
		if !slices.ContainsFunc(s.Hidden, func(h string) bool { return within(h, root) }) {
			p.rules = append(p.rules, pathRule{path: root, access: access, optional: optional})
			return nil
		}
		if slices.ContainsFunc(s.Hidden, func(h string) bool { return within(root, h) }) {
			return nil // root itself is hidden
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
	for _, r := range systemReadPaths {
		if err := grant(r, fsRead, true); err != nil {
			return landlockPlan{}, err
		}
	}
	for _, r := range s.ReadOnly {
		if err := grant(r, fsRead, false); err != nil {
			return landlockPlan{}, err
		}
	}
	// The workspace is the command's own, even beneath a hidden path.
	var ws uint64 = fsRead
	if s.Profile.Writes() {
		ws = p.fs &^ fsNeverGranted
		for _, w := range s.Writable {
			if err := grant(w, ws, false); err != nil {
				return landlockPlan{}, err
			}
		}
	}
	p.rules = append(p.rules, pathRule{path: s.Workspace, access: ws})
	for _, d := range devRead {
		access := uint64(ll.AccessFSReadFile)
		if slices.Contains(devAlways, d) || s.Profile.Writes() && slices.Contains(devWriteOnly, d) {
			access = fsDevWrite
		}
		p.rules = append(p.rules, pathRule{path: d, access: access, optional: true})
	}
	return p, nil
}

// rulesetFD creates the Landlock ruleset of the plan with go-landlock. The
// caller enforces it (ll.LandlockRestrictSelf) and closes it.
func (p landlockPlan) rulesetFD() (int, uint32, error) {
	cfg := landlock.Config{
		HandledAccessFS:  landlock.AccessFSSet(p.fs),
		HandledAccessNet: landlock.AccessNetSet(p.net),
		Scoped:           landlock.ScopedSet(p.scoped),
	}
	rules := make([]landlock.Rule, 0, len(p.rules))
	for _, r := range p.rules {
		access := r.access
		fi, err := os.Stat(r.path)
		if err != nil {
			if r.optional {
				continue
			}
			return -1, 0, fmt.Errorf("landlock rule for %s: %w", r.path, err)
		}
		if !fi.IsDir() {
			access &= fileRights // a rule on a file takes file rights only
		}
		if access != 0 {
			rules = append(rules, landlock.PathAccess(landlock.AccessFSSet(access), r.path))
		}
	}
	fd, flags, err := cfg.NewRulesetFD(rules...)
	if err != nil {
		return -1, 0, fmt.Errorf("landlock ruleset: %w", err)
	}
	if fd < 0 {
		return -1, 0, errors.New("landlock ruleset: go-landlock made none")
	}
	return fd, flags, nil
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
		case slices.ContainsFunc(hidden, func(h string) bool { return within(full, h) }):
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
