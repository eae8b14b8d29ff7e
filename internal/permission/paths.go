package permission

import (
	"path"
	"strings"
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

// protectedPath returns how to name the protected tree w designates (for a
// recursive delete run in cwd), or "" if it designates none or cannot be
// known (an expansion other than the home directory, or a relative path with
// an unknown working directory).
func protectedPath(w word, cwd string) string {
	s := w.s
	if s == "" || strings.IndexByte(s, markUnknown) >= 0 || strings.IndexByte(s[1:], markHome) >= 0 {
		return ""
	}
	if s[0] != '/' && s[0] != markHome {
		if cwd == "" {
			return ""
		}
		s = cwd + "/" + s // cleaned below
	}
	if s[0] == markHome {
		p := path.Clean("/" + s[1:]) // relative to the home directory
		switch {
		case p == "/":
			return "the home directory"
		case w.glob && (globMatch(p, "/x") || globMatch(p, "/.x")):
			return "the home directory (~" + p + ")"
		}
		return ""
	}
	p := path.Clean(s)
	if !w.glob {
		if isProtected(p) {
			return p
		}
		return ""
	}
	for _, t := range protectedGlobTargets {
		if globMatch(p, t) {
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

// rawDevice returns the raw block device w names (relative to cwd), or "".
func rawDevice(w word, cwd string) string {
	s := w.s
	if s == "" || strings.IndexByte(s, markUnknown) >= 0 || strings.IndexByte(s, markHome) >= 0 {
		return ""
	}
	if s[0] != '/' {
		if cwd == "" || cwd[0] != '/' {
			return ""
		}
		s = cwd + "/" + s
	}
	p := path.Clean(s)
	if !w.glob {
		if isRawDevice(p) {
			return p
		}
		return ""
	}
	for _, t := range rawDeviceSamples {
		if globMatch(p, t) {
			return p
		}
	}
	return ""
}

// isSysrq reports whether w is /proc/sysrq-trigger, where one letter
// reboots (b) or powers off (o) the machine at once.
func isSysrq(w word, cwd string) bool {
	s := w.s
	if s == "" || strings.ContainsAny(s, marks) {
		return false
	}
	if s[0] != '/' {
		if cwd == "" || cwd[0] != '/' {
			return false
		}
		s = cwd + "/" + s
	}
	p := path.Clean(s)
	if w.glob {
		return globMatch(p, "/proc/sysrq-trigger")
	}
	return p == "/proc/sysrq-trigger"
}

// rawOperand returns the first non-option argument that is a raw block
// device, or "".
func rawOperand(args []word, cwd string) string {
	for _, w := range args {
		if strings.HasPrefix(w.s, "-") {
			if i := strings.IndexByte(w.s, '='); i > 0 { // --device=/dev/sda
				w.s = w.s[i+1:]
			} else {
				continue
			}
		}
		if dev := rawDevice(w, cwd); dev != "" {
			return dev
		}
	}
	return ""
}

// globMatch reports whether the shell glob pat matches name. Bash's bracket
// syntax ([!…], a leading ], [:class:]) is translated to path.Match's; an
// unknown [:class:] matches any character. A pattern that is still
// malformed (an unclosed "[", as in the command "[ -d x ]") is literal text,
// as it is to bash.
func globMatch(pat, name string) bool {
	if ok, err := path.Match(goGlob(pat), name); err == nil {
		return ok
	}
	return pat == name
}

func goGlob(p string) string {
	if strings.IndexByte(p, '[') < 0 {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '[' {
			b.WriteByte(p[i])
			continue
		}
		b.WriteByte('[')
		i++
		if i < len(p) && (p[i] == '!' || p[i] == '^') {
			b.WriteByte('^')
			i++
		}
		if i < len(p) && p[i] == ']' {
			b.WriteString(`\]`)
			i++
		}
		for ; i < len(p) && p[i] != ']'; i++ {
			if p[i] == '[' && i+1 < len(p) && p[i+1] == ':' {
				if end := strings.Index(p[i+2:], ":]"); end >= 0 {
					b.WriteString(posixClass(p[i+2 : i+2+end]))
					i += 2 + end + 1
					continue
				}
			}
			if p[i] == '\\' {
				b.WriteString(`\\`)
				continue
			}
			b.WriteByte(p[i])
		}
		if i < len(p) {
			b.WriteByte(']')
		}
	}
	return b.String()
}

func posixClass(name string) string {
	switch name {
	case "alpha":
		return "a-zA-Z"
	case "digit":
		return "0-9"
	case "alnum":
		return "a-zA-Z0-9"
	case "upper":
		return "A-Z"
	case "lower":
		return "a-z"
	case "xdigit":
		return "0-9a-fA-F"
	case "word":
		return "a-zA-Z0-9_"
	}
	return "\x00-\U0010FFFF" // anything: errs towards matching
}

func hasBrace(ws []word) bool {
	for _, w := range ws {
		if w.brace {
			return true
		}
	}
	return false
}

// expandBraces performs bash brace expansion ({a,b}, {x..y} for single
// characters) on the words that have unquoted braces.
func (a *analyzer) expandBraces(ws []word) []word {
	out := make([]word, 0, len(ws)+4)
	budget := maxBraceWords
	bytes := maxWork / 4
	for _, w := range ws {
		if !w.brace {
			out = append(out, w)
			continue
		}
		vals, ok := braceExpand(w.s, &budget, &bytes)
		if !ok {
			a.deny("brace expansion too large to analyse")
			return out
		}
		for _, v := range vals {
			nw := w
			nw.s = v
			out = append(out, nw)
		}
	}
	return out
}

// braceExpand expands the brace groups of s. It fails when the expansion
// would produce more than *budget words or *bytes bytes.
func braceExpand(s string, budget, bytes *int) ([]string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		depth, end := 0, -1
		var commas []int
		for j := i; j < len(s) && end < 0; j++ {
			switch s[j] {
			case '{':
				depth++
			case '}':
				depth--
				if depth == 0 {
					end = j
				}
			case ',':
				if depth == 1 {
					commas = append(commas, j)
				}
			}
		}
		if end < 0 {
			return []string{s}, true
		}
		var alts []string
		if len(commas) > 0 {
			from := i + 1
			for _, c := range commas {
				alts = append(alts, s[from:c])
				from = c + 1
			}
			alts = append(alts, s[from:end])
		} else if alts = charSequence(s[i+1 : end]); alts == nil {
			continue // not an expansion: "{}", "{x}", "{1..9}"
		}
		suffixes, ok := braceExpand(s[end+1:], budget, bytes)
		if !ok {
			return nil, false
		}
		var out []string
		for _, alt := range alts {
			mids, ok := braceExpand(alt, budget, bytes)
			if !ok {
				return nil, false
			}
			for _, m := range mids {
				for _, suf := range suffixes {
					v := s[:i] + m + suf
					*budget--
					*bytes -= len(v)
					if *budget < 0 || *bytes < 0 {
						return nil, false
					}
					out = append(out, v)
				}
			}
		}
		return out, true
	}
	return []string{s}, true
}

// charSequence expands "a..e" (single characters, bash's {a..e}) or returns
// nil. Numeric sequences are not expanded: they only produce numbers.
func charSequence(s string) []string {
	if len(s) != 4 || s[1] != '.' || s[2] != '.' {
		return nil
	}
	lo, hi := s[0], s[3]
	if '0' <= lo && lo <= '9' && '0' <= hi && hi <= '9' {
		return nil
	}
	step := 1
	if lo > hi {
		step = -1
	}
	var out []string
	for c := int(lo); ; c += step {
		out = append(out, string(rune(c)))
		if c == int(hi) {
			break
		}
	}
	return out
}
