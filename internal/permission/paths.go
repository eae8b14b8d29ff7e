package permission

import (
	"errors"
	"path"
	"regexp"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/pattern"
)

// systemDirs are the top-level directories whose recursive deletion the
// floor denies, besides "/" and the home directories.
var systemDirs = map[string]bool{
	"/bin": true, "/boot": true, "/dev": true, "/etc": true, "/lib": true, "/lib64": true, "/opt": true,
	"/proc": true, "/root": true, "/sbin": true, "/srv": true, "/sys": true, "/usr": true, "/var": true,
}

// isProtected reports whether deleting the tree at the clean absolute path
// p is unrecoverable: "/", a system directory, /home, a home directory
// (/home/NAME) or a directory directly under /usr (/usr/lib, /usr/local, …).
// Deeper paths (/etc/nginx, /var/tmp/x, /home/NAME/project) are not.
func isProtected(p string) bool {
	if p == "/" || p == "/home" || systemDirs[p] {
		return true
	}
	dir := path.Dir(p)
	return dir == "/home" || dir == "/usr"
}

// protectedGlobTargets are sample paths a glob is tried against: each
// protected tree, one entry inside it and one dot-entry inside it. A glob
// that matches one ("/*", "/e?c", "/etc/*", "/home/*/.*") covers a whole
// protected tree.
var protectedGlobTargets = func() []string {
	t := []string{"/", "/x", "/.x", "/home", "/home/x", "/home/.x", "/home/x/x", "/home/x/.x", "/usr/x/x", "/usr/x/.x"}
	for d := range systemDirs {
		t = append(t, d, d+"/x", d+"/.x")
	}
	return t
}()

// pathVerdict is what the floor can tell of a path.
type pathVerdict uint8

const (
	pathKnown   pathVerdict = iota // an absolute path or glob, or one below the home directory
	pathBenign                     // in the workspace, or rooted in a directory the operator's environment names
	pathUnknown                    // it depends on a value the floor cannot know
)

// resolvePath returns the path w designates from the working directory
// cwd: clean or not, absolute or markHome followed by a path below the
// home directory, and whether it is a glob.
//
// A path that starts with an environment value ("$BUILD_DIR/out") is the
// operator's business, unless it climbs out of it with "..". An environment
// value after a literal prefix ("/home/$USER", "/$X") could be any name
// there: it is read as "*". A path with an unknown part is unknown.
func resolvePath(w word, cwd word) (p string, glob bool, v pathVerdict) {
	s, glob := w.s, w.glob
	switch {
	case s == "":
		return "", false, pathBenign
	case strings.IndexByte(s, markUnknown) >= 0:
		return "", false, pathUnknown
	}
	if i := strings.IndexByte(s, markOpaque); i >= 0 {
		for _, seg := range strings.Split(s[i:], "/") {
			if seg == ".." {
				return "", false, pathUnknown
			}
		}
		if i == 0 {
			return "", false, pathBenign
		}
		s, glob = strings.ReplaceAll(s, string(markOpaque), "*"), true
	}
	if i := strings.IndexByte(s, markHome); i >= 0 {
		if strings.Trim(s[:i], "/") == "" { // "/$HOME" is the home directory too
			s = s[i:]
		}
		if s[0] == markHome && len(s) > 1 && s[1] != '/' {
			s = "/home/x" + s[1:] // "${HOME}2" is a sibling of the home directory
		}
		s = s[:1] + strings.ReplaceAll(s[1:], string(markHome), "/home/x")
	}
	if s[0] != '/' && s[0] != markHome {
		switch {
		case cwd.s == "":
			return "", false, pathBenign
		case strings.IndexByte(cwd.s, markUnknown) >= 0:
			return "", false, pathUnknown
		}
		s, glob = cwd.s+"/"+s, glob || cwd.glob
	}
	if s[0] == markHome {
		return string(markHome) + path.Clean("/"+s[1:]), glob, pathKnown
	}
	return path.Clean(s), glob, pathKnown
}

// protectedPath returns how to name the protected tree w designates (for a
// recursive delete run in one of the directories cwds), or "" if it
// designates none. A path the floor cannot know is named as unknown: the
// caller denies it.
func protectedPath(w word, cwds []word) string {
	for _, cwd := range cwds {
		p, glob, v := resolvePath(w, cwd)
		switch v {
		case pathBenign:
			continue
		case pathUnknown:
			where := ""
			if !w.isUnknown() {
				where = " in an unknown directory"
			}
			return "an unknown path (" + show(w) + where + "), treated as unknown and denied"
		}
		if p[0] == markHome {
			p = p[1:]
			switch {
			case p == "/":
				return "the home directory"
			case glob && globMatches(p, "/x", "/.x"):
				return "the home directory (~" + p + ")"
			}
			continue
		}
		// A glob that matches nothing is the literal name, hence both.
		if isProtected(p) || glob && globMatches(p, protectedGlobTargets...) {
			if strings.ContainsAny(w.s, marks) {
				return show(w) // "/home/<env>", "~2": the path resolved hides where they came from
			}
			return p
		}
	}
	return ""
}

// rawDevicePrefixes name raw block devices under /dev (whole disks and
// partitions): SCSI/SATA, NVMe, virtio, Xen, MMC, IDE, device-mapper, MD
// RAID, macOS disks, and the /dev/disk/…, /dev/mapper/… and /dev/block/…
// links to them.
var rawDevicePrefixes = []string{"sd", "nvme", "vd", "xvd", "mmcblk", "hd", "dm-", "md", "disk", "rdisk", "mapper/", "block/"}

var rawDeviceSamples = []string{
	"/dev/sda", "/dev/sda1", "/dev/nvme0n1", "/dev/nvme0n1p1", "/dev/vda", "/dev/xvda", "/dev/mmcblk0", "/dev/hda",
	"/dev/dm-0", "/dev/md0", "/dev/disk0", "/dev/rdisk0", "/dev/mapper/x", "/dev/disk/by-id/x", "/dev/block/x",
}

func isRawDevice(p string) bool {
	name, ok := strings.CutPrefix(p, "/dev/")
	if !ok {
		return false
	}
	for _, pre := range rawDevicePrefixes {
		if strings.HasPrefix(name, pre) {
			return true
		}
	}
	return false
}

// rawDevice returns the raw block device w names (relative to one of cwds)
// and false, or, when the file w names is unknown, a description of it and
// true. An unknown file whose name ends in a literal extension (out-$(date).log)
// is not a device: no block device name has a dot.
func rawDevice(w word, cwds []word) (string, bool) {
	for _, cwd := range cwds {
		p, glob, v := resolvePath(w, cwd)
		switch {
		case v == pathUnknown:
			if hasExtension(w.s) {
				continue
			}
			return "an unknown file (" + show(w) + ")", true
		case v == pathBenign || p[0] == markHome:
			continue
		case isRawDevice(p) || glob && globMatches(p, rawDeviceSamples...):
			return p, false
		}
	}
	return "", false
}

// hasExtension reports whether the last path element of s ends in literal
// text that has a dot.
func hasExtension(s string) bool {
	tail := s[strings.LastIndexAny(s, marks)+1:]
	return strings.IndexByte(tail[strings.LastIndexByte(tail, '/')+1:], '.') >= 0
}

// isSysrq reports whether w is /proc/sysrq-trigger, where one letter
// reboots (b) or powers off (o) the machine at once.
func isSysrq(w word, cwds []word) bool {
	for _, cwd := range cwds {
		p, glob, v := resolvePath(w, cwd)
		if v != pathKnown || p[0] == markHome {
			continue
		}
		if p == "/proc/sysrq-trigger" || glob && globMatches(p, "/proc/sysrq-trigger") {
			return true
		}
	}
	return false
}

// rawOperand returns the first non-option argument that is a raw block
// device (or an unknown file, with true), or "".
func rawOperand(args []word, cwds []word) (string, bool) {
	for _, w := range args {
		if strings.HasPrefix(w.s, "-") {
			if i := strings.IndexByte(w.s, '='); i > 0 { // --device=/dev/sda
				w.s = w.s[i+1:]
			} else {
				continue
			}
		}
		if dev, unknown := rawDevice(w, cwds); dev != "" {
			return dev, unknown
		}
	}
	return "", false
}

// globMode is how the floor matches a glob against the paths it knows:
// as bash's pathname expansion, with extended patterns and, to err towards
// matching, ignoring case.
const globMode = pattern.Filenames | pattern.EntireString | pattern.ExtendedOperators | pattern.NoGlobStar | pattern.NoGlobCase

// globMatches reports whether the shell glob pat matches any of names.
func globMatches(pat string, names ...string) bool {
	return slices.ContainsFunc(names, globMatcher(pat))
}

// globMatcher returns a function that reports whether the shell glob pat
// matches a name. A negated extended pattern !(…) is read as *, which
// matches more; a pattern that is still malformed is literal text, as it is
// to bash.
func globMatcher(pat string) func(string) bool {
	expr, err := pattern.Regexp(pat, globMode)
	if neg, ok := errors.AsType[*pattern.NegExtGlobError](err); ok {
		p := pat
		for i := len(neg.Groups) - 1; i >= 0; i-- {
			g := neg.Groups[i]
			p = p[:g.Start] + "*" + p[g.End:]
		}
		expr, err = pattern.Regexp(p, globMode)
	}
	var rx *regexp.Regexp
	if err == nil {
		rx, err = regexp.Compile(expr)
	}
	if err != nil {
		return func(name string) bool { return name == pat }
	}
	return rx.MatchString
}
