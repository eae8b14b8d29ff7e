package permission

import (
	"path"
	"strconv"
	"strings"
)

// This file holds what the floor knows about individual commands: wrappers
// that run another command, shells, and the destructive commands.

// knownNames are the commands the analyser recognises; a glob in a command
// name ("/bin/r?") is tried against each.
var knownNames = []string{
	"rm", "find", "dd", "tee", "shred", "wipefs", "blkdiscard", "fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted",
	"cp", "mkfs", "mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mkfs.vfat", "mkfs.fat", "mkfs.ntfs",
	"mke2fs", "mkswap", "kill", "killall5", "init", "telinit", "shutdown", "reboot", "halt", "poweroff",
	"systemctl", "loginctl", "cryptsetup", "diskutil",
	"sudo", "doas", "env", "nice", "ionice", "chrt", "taskset", "timeout", "stdbuf", "exec", "command", "builtin",
	"nohup", "setsid", "busybox", "time", "pkexec", "chroot", "xargs", "eval", "trap", "alias", "su", "runuser", "watch",
	"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh", "fish", "rbash", "cd", "pushd",
	"strace", "ltrace", "unshare", "nsenter", "systemd-run", "numactl", "prlimit", "cgexec", "firejail", "flock",
	"sg", "script", "parallel", "ssh", "at", "batch", "source", ".", "rsync", "tar",
}

// cmdNames returns the command names w may be: its base name, lower-cased
// (conservatively, for case-insensitive file systems), or every known name
// its glob matches. It returns nothing for a name that is an expansion.
func cmdNames(w word) []string {
	s := w.s
	if strings.ContainsAny(s, marks) {
		return nil
	}
	base := s[strings.LastIndexByte(s, '/')+1:]
	if base == "" {
		return nil
	}
	if !w.glob {
		return []string{lower(base)}
	}
	var names []string
	for _, n := range knownNames {
		if globMatch(base, n) {
			names = append(names, n)
		}
	}
	return names
}

// simple analyses one simple command given as words.
func (a *analyzer) simple(ws []word, x *cmdCtx) {
	if a.reason != "" {
		return
	}
	a.steps += 1 + len(ws)
	if a.steps > maxSteps {
		a.deny("command is too complex to analyse")
		return
	}
	ws = stripPrefix(ws)
	if len(ws) == 0 {
		return
	}
	if f := x.st.function(ws[0].s); f != nil {
		a.call(f, ws[1:], x) // and, conservatively, as a command of that name too
	}
	if !ws[0].glob {
		if strings.ContainsAny(ws[0].s, marks) {
			return // the command name is an expansion: unknown
		}
		base := ws[0].s[strings.LastIndexByte(ws[0].s, '/')+1:]
		a.named(lower(base), ws[1:], x)
		return
	}
	for _, n := range cmdNames(ws[0]) {
		a.named(n, ws[1:], x)
	}
}

// opts describes a wrapper's command line: which options take a value, and
// how many operands come before the wrapped command.
type opts struct {
	short    string   // short options whose value may be the next word
	maybe    string   // short options that may or may not take the next word: both are tried
	long     []string // long options that take a value
	operands int      // operands before the command (timeout's duration)
	optional bool     // the operands may be absent: both are tried
	assign   bool     // NAME=VALUE words may precede the command
}

var wrappers = map[string]opts{
	"sudo":    {short: "ugCDprtUTR", maybe: "h", long: []string{"user", "group", "close-from", "chdir", "prompt", "role", "type", "other-user", "command-timeout", "chroot", "host"}, assign: true},
	"doas":    {short: "uC"},
	"nice":    {short: "n", long: []string{"adjustment"}},
	"ionice":  {short: "cnpPu", long: []string{"class", "classdata", "pid", "pgid", "uid"}},
	"chrt":    {short: "TPD", long: []string{"sched-runtime", "sched-period", "sched-deadline"}, operands: 1, optional: true},
	"taskset": {operands: 1, optional: true},
	"timeout": {short: "sk", long: []string{"signal", "kill-after"}, operands: 1},
	"stdbuf":  {short: "ioe", long: []string{"input", "output", "error"}},
	"exec":    {short: "a"},
	"builtin": {},
	"nohup":   {},
	"setsid":  {},
	"busybox": {},
	"time":    {short: "fo", long: []string{"format", "output"}},
	"pkexec":  {long: []string{"user"}},
	"chroot":  {long: []string{"userspec", "groups"}, operands: 1},
	"runuser": {short: "ugGsw", long: []string{"user", "group", "supp-group", "shell", "whitelist-environment"}},
	"xargs":   {short: "adEILnPs", long: []string{"arg-file", "delimiter", "eof", "replace", "max-lines", "max-args", "max-procs", "max-chars", "process-slot-var"}},
	"watch":   {short: "n", long: []string{"interval"}},
}

// anyStart are wrappers whose option grammar the floor does not model:
// every word of theirs that is not an option is tried as the start of the
// command they run.
var anyStart = map[string]bool{
	"strace": true, "ltrace": true, "unshare": true, "nsenter": true, "systemd-run": true, "numactl": true,
	"prlimit": true, "cgexec": true, "firejail": true, "flock": true, "sg": true, "script": true, "parallel": true,
}

var shells = map[string]bool{
	"sh": true, "bash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true, "ash": true,
	"yash": true, "posh": true, "fish": true, "rbash": true,
}

// named analyses a command whose name is known.
func (a *analyzer) named(name string, args []word, x *cmdCtx) {
	if o, ok := wrappers[name]; ok {
		switch name {
		case "runuser":
			if a.dashC(args, x) {
				return
			}
		case "xargs":
			y := *x
			y.xargs = true
			x = &y
		case "watch":
			// watch runs its arguments joined by spaces with sh -c.
			var b strings.Builder
			for _, i := range o.starts(args, 0, nil) {
				for j, w := range args[min(i, len(args)):] {
					if j > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(w.s)
				}
				a.text(b.String(), x.st, x.depth+1)
				b.Reset()
			}
		}
		for _, i := range o.starts(args, 0, nil) {
			if i < len(args) {
				a.simple(args[i:], x)
			}
		}
		return
	}
	if shells[name] {
		a.shell(args, x)
		return
	}
	if anyStart[name] {
		// Wrappers whose options are not modelled: any word that is not an
		// option may be where the command starts. flock, sg and script take
		// -c.
		if (name == "flock" || name == "sg" || name == "script") && a.dashC(args, x) {
			return
		}
		if name == "parallel" {
			a.text(joinWords(args), x.st, x.depth+1) // its command is a shell line
		}
		for i, w := range args {
			if strings.HasPrefix(w.s, ":::") {
				break // parallel's arguments, never its command
			}
			if !strings.HasPrefix(w.s, "-") {
				a.simple(args[i:], x)
			}
		}
		return
	}
	switch name {
	case "ssh":
		// ssh [options] host command…: the command is a shell line, run on a
		// host that may well be this one.
		i := 0
		for i < len(args) && strings.HasPrefix(args[i].s, "-") {
			if s := args[i].s; len(s) == 2 && strings.IndexByte("BbcDEeFIiJLlmOopQRSWw", s[1]) >= 0 {
				i++
			}
			i++
		}
		if i+1 < len(args) {
			a.text(joinWords(args[i+1:]), x.st, x.depth+1)
		}
	case "at", "batch":
		a.stdin(x) // the job is read from standard input
	case "source", ".":
		if len(args) > 0 {
			if isStdin(args[0].s) {
				a.stdin(x)
			}
			a.follow(args[0], x) // source <(echo …)
		}
	case "rsync":
		// rsync --delete SRC… DEST empties DEST of what SRC lacks;
		// --remove-source-files empties the sources.
		del, removeSrc := false, false
		var ops []word
		for _, w := range args {
			switch {
			case strings.HasPrefix(w.s, "--del"):
				del = true
			case w.s == "--remove-source-files":
				removeSrc = true
			case !strings.HasPrefix(w.s, "-"):
				ops = append(ops, w)
			}
		}
		for i, w := range ops {
			if last := i == len(ops)-1; last && del || !last && removeSrc {
				if p := protectedPath(w, x.st.cwd); p != "" {
					a.deny("rsync deleting files of " + p)
					return
				}
			}
		}
	case "tar":
		for _, w := range args {
			if w.s == "--remove-files" {
				for _, op := range args {
					if p := protectedPath(op, x.st.cwd); p != "" && !strings.HasPrefix(op.s, "-") {
						a.deny("tar --remove-files of " + p)
						return
					}
				}
			}
		}
	case "env":
		a.env(args, x)
	case "command":
		for _, w := range args {
			if len(w.s) < 2 || w.s[0] != '-' {
				break
			}
			if strings.ContainsAny(w.s, "vV") {
				return // command -v NAME only prints
			}
		}
		a.simple(skipFlags(args), x)
	case "eval":
		a.text(joinWords(args), x.st, x.depth+1)
		for _, w := range args {
			a.follow(w, x)
		}
	case "trap":
		rest := args
		if len(rest) > 0 && rest[0].s == "--" {
			rest = rest[1:]
		}
		if len(rest) > 0 && !strings.HasPrefix(rest[0].s, "-") {
			a.body(rest[0], x, nil)
		}
	case "alias":
		for _, w := range args {
			if i := strings.IndexByte(w.s, '='); i > 0 {
				a.text(w.s[i+1:], x.st, x.depth+1)
			}
		}
	case "su":
		a.dashC(args, x)
	case "cd", "pushd":
		x.st.cwd = chdir(args, x.st.cwd)
	case "rm":
		a.rm(args, x)
	case "find":
		a.find(args, x)
	case "dd":
		for _, w := range args {
			if strings.HasPrefix(w.s, "of=") {
				w.s = w.s[3:]
				if dev := rawDevice(w, x.st.cwd); dev != "" {
					a.deny("write to raw block device " + dev + " (dd of=)")
					return
				}
			}
		}
	case "tee", "shred", "wipefs", "blkdiscard", "mkswap":
		if dev := rawOperand(args, x.st.cwd); dev != "" {
			a.deny(name + " on raw block device " + dev)
			return
		}
		if name == "tee" {
			for _, w := range args {
				if isSysrq(w, x.st.cwd) {
					a.deny("write to /proc/sysrq-trigger (can reboot or halt the system)")
					return
				}
			}
		}
	case "cp":
		if len(args) > 0 {
			if dev := rawDevice(args[len(args)-1], x.st.cwd); dev != "" {
				a.deny("write to raw block device " + dev + " (cp)")
			}
		}
	case "fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted":
		if partitionReadOnly(name, args) {
			return
		}
		if dev := rawOperand(args, x.st.cwd); dev != "" {
			a.deny("partition table change on raw block device " + dev + " (" + name + ")")
		}
	case "mke2fs":
		a.deny("filesystem creation (mke2fs)")
	case "kill":
		a.kill(args)
	case "killall5":
		a.deny("killall5 (signals every process)")
	case "init", "telinit":
		for _, w := range args {
			if w.s == "0" || w.s == "6" {
				a.deny(name + " " + w.s + " (halts or reboots the system)")
				return
			}
		}
	case "shutdown", "reboot", "halt", "poweroff":
		a.deny(name + " (stops or restarts the system)")
	case "systemctl", "loginctl":
		a.powerVerb(name, args)
	case "cryptsetup":
		for _, w := range args {
			switch lower(w.s) {
			case "luksformat", "erase", "lukserase":
				a.deny("cryptsetup " + w.s + " (destroys the device's data or keys)")
				return
			}
		}
	case "diskutil":
		for _, w := range args {
			switch lower(w.s) {
			case "erasedisk", "secureerase", "zerodisk", "erasevolume", "reformat", "partitiondisk", "randomdisk":
				a.deny("diskutil " + w.s + " (erases a disk)")
				return
			}
		}
	default:
		if strings.HasPrefix(name, "mkfs") {
			a.deny("filesystem creation (" + name + ")")
		}
	}
}

// starts returns every index of args at which the wrapped command may
// start, given the wrapper's options. Options are skipped the way getopt
// does; where the grammar is ambiguous all readings are returned.
func (o opts) starts(args []word, i int, out []int) []int {
	for i < len(args) {
		w := args[i]
		s := w.s
		if s == "--" {
			i++
			break
		}
		if o.assign && isAssignment(s) {
			i++
			continue
		}
		if len(s) > 2 && s[0] == '-' && s[1] == '-' {
			name := s[2:]
			if strings.IndexByte(name, '=') >= 0 {
				i++
				continue
			}
			exact, prefix := false, false
			for _, l := range o.long {
				if l == name {
					exact = true
				} else if strings.HasPrefix(l, name) {
					prefix = true
				}
			}
			switch {
			case exact:
				i += 2
			case prefix: // an abbreviation, maybe of an option with a value
				out = o.starts(args, i+2, out)
				i++
			default:
				i++
			}
			continue
		}
		if len(s) > 1 && s[0] == '-' && !w.dyn {
			step := 1
			for j := 1; j < len(s); j++ {
				if strings.IndexByte(o.short, s[j]) >= 0 {
					if j == len(s)-1 {
						step = 2 // the value is the next word
					}
					break // the rest of the word is the value
				}
				if strings.IndexByte(o.maybe, s[j]) >= 0 {
					if j == len(s)-1 {
						out = o.starts(args, i+2, out)
					}
					break
				}
			}
			i += step
			continue
		}
		break
	}
	if o.operands > 0 {
		if o.optional {
			out = append(out, i)
		}
		i += o.operands
	}
	return append(out, i)
}

// skipFlags drops leading words that start with "-", and a "--".
func skipFlags(ws []word) []word {
	for len(ws) > 0 && len(ws[0].s) > 1 && ws[0].s[0] == '-' {
		if ws[0].s == "--" {
			return ws[1:]
		}
		ws = ws[1:]
	}
	return ws
}

func joinWords(ws []word) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.s)
	}
	return b.String()
}

// env: options, NAME=VALUE words, then the command. -S (--split-string)
// splits its value into words that come before the rest.
func (a *analyzer) env(args []word, x *cmdCtx) {
	for i := 0; i < len(args); i++ {
		s := args[i].s
		switch {
		case s == "--":
			a.simple(args[i+1:], x)
			return
		case isAssignment(s):
			continue
		case strings.HasPrefix(s, "--split-string") || strings.HasPrefix(s, "-") && !strings.HasPrefix(s, "--") && strings.IndexByte(s, 'S') > 0:
			var value string
			next := i + 1
			if k := strings.IndexByte(s, '='); strings.HasPrefix(s, "--") && k > 0 {
				value = s[k+1:]
			} else if k := strings.IndexByte(s, 'S'); !strings.HasPrefix(s, "--") && k < len(s)-1 {
				value = s[k+1:]
			} else if next < len(args) {
				value = args[next].s
				next++
			}
			split := a.parseText(value, x.depth+1)
			var ws []word
			for _, c := range split.cmds {
				for _, w := range c.words {
					ws = a.resolve(w, x.st, true, ws)
				}
			}
			a.simple(append(ws, args[next:]...), x)
			return
		case s == "-C" || s == "--chdir" || strings.HasPrefix(s, "--chdir="):
			dir := strings.TrimPrefix(s, "--chdir=")
			if !strings.HasPrefix(s, "--chdir=") && i+1 < len(args) {
				dir = args[i+1].s
				i++
			}
			y := *x
			y.st = x.st.child()
			y.st.cwd = chdir([]word{{s: dir}}, x.st.cwd)
			x = &y
		case s == "-u" || s == "--unset":
			i++
		case s == "-":
			continue
		case strings.HasPrefix(s, "-"):
			continue
		default:
			a.simple(args[i:], x)
			return
		}
	}
}

// dashC analyses the -c (--command) script of su or runuser and reports
// whether there was one.
func (a *analyzer) dashC(args []word, x *cmdCtx) bool {
	for i, w := range args {
		s := w.s
		switch {
		case s == "--":
			return false
		case strings.HasPrefix(s, "--command=") || strings.HasPrefix(s, "--session-command="):
			a.text(s[strings.IndexByte(s, '=')+1:], x.st, x.depth+1)
			return true
		case s == "--command" || s == "--session-command" || len(s) > 1 && s[0] == '-' && s[1] != '-' && s[len(s)-1] == 'c':
			if i+1 < len(args) {
				a.body(args[i+1], x, nil)
			}
			return true
		case len(s) > 2 && s[0] == '-' && s[1] != '-' && strings.IndexByte(s, 'c') > 0:
			a.text(s[strings.IndexByte(s, 'c')+1:], x.st, x.depth+1)
			return true
		}
	}
	return false
}

// shell analyses sh/bash/… : the -c script, or the script read from
// standard input (a here-document, a here-string, or a pipe from echo,
// printf or cat). A script file is opaque.
func (a *analyzer) shell(args []word, x *cmdCtx) {
	dashC, dashS := false, false
	i := 0
	for ; i < len(args); i++ {
		s := args[i].s
		if s == "--" || s == "-" {
			i++
			break
		}
		if len(s) < 2 || s[0] != '-' && s[0] != '+' {
			break
		}
		if s[0] == '-' && s[1] == '-' {
			if s == "--rcfile" || s == "--init-file" {
				i++
			}
			continue
		}
		for j := 1; j < len(s); j++ {
			switch s[j] {
			case 'c':
				dashC = dashC || s[0] == '-'
			case 's':
				dashS = true
			case 'o', 'O':
				if j == len(s)-1 {
					i++
				}
				j = len(s)
			}
		}
	}
	if dashC {
		if i < len(args) {
			a.body(args[i], x, args[i+1:])
		}
		return
	}
	if i < len(args) && !dashS && !isStdin(args[i].s) {
		a.follow(args[i], x) // a script file; bash <(echo …) is followed
		return
	}
	a.stdin(x)
}

// stdin analyses what the command at x reads on standard input, as a
// script: its here-documents and here-strings, or what the command before it
// in a pipeline prints.
func (a *analyzer) stdin(x *cmdCtx) {
	a.stdinScripts(&x.sc.cmds[x.i], x)
	if x.i > 0 {
		if prev := &x.sc.cmds[x.i-1]; prev.op == "|" || prev.op == "|&" {
			a.producer(prev, x)
		}
	}
}

// isStdin reports whether a file name is standard input.
func isStdin(s string) bool {
	switch s {
	case "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0", "-":
		return true
	}
	return false
}

// stdinScripts analyses the here-documents and here-strings of c as scripts.
func (a *analyzer) stdinScripts(c *command, x *cmdCtx) {
	for _, r := range c.redirs {
		switch r.op {
		case "<<", "<<-":
			a.text(r.body, x.st, x.depth+1)
		case "<<<":
			for _, t := range a.resolve(r.target, x.st, false, nil) {
				a.body(t, x, nil)
			}
		case "<":
			a.follow(r.target, x)
		}
	}
}

// body analyses a word that a shell runs as a script. pos, if any, are the
// script's $0, $1, … (bash -c 'rm -rf "$1"' sh /).
func (a *analyzer) body(w word, x *cmdCtx, pos []word) {
	st := x.st
	if len(pos) > 0 {
		st = x.st.child()
		st.set("0", []string{pos[0].s})
		all := make([]string, 0, len(pos)-1)
		for i, p := range pos[1:] {
			all = append(all, p.s)
			if i < 9 {
				st.set(strconv.Itoa(i+1), []string{p.s})
			}
		}
		st.set("@", []string{strings.Join(all, string(markSplit))})
		st.set("*", []string{strings.Join(all, " ")})
	}
	a.text(w.s, st, x.depth+1)
	a.follow(w, x)
}

// follow analyses what a word that is one substitution outputs, when that
// output is run as a script: bash -c "$(echo rm -rf /)".
func (a *analyzer) follow(w word, x *cmdCtx) {
	if w.sub == nil || w.s != string(markUnknown) || x.depth+1 > maxDepth {
		return
	}
	y := *x
	y.depth++
	for i := range w.sub.cmds {
		a.producer(&w.sub.cmds[i], &y)
	}
}

// producer analyses what command c writes to standard output, as a script:
// the arguments of echo and printf (each one, and all joined), and any
// here-document or here-string it reads. Other producers are opaque.
func (a *analyzer) producer(c *command, x *cmdCtx) {
	if a.reason != "" {
		return
	}
	a.stdinScripts(c, x)
	var ws []word
	for _, w := range c.words {
		ws = a.resolve(w, x.st, true, ws)
	}
	ws = stripPrefix(ws)
	if len(ws) == 0 {
		return
	}
	name := ""
	if n := cmdNames(ws[0]); len(n) == 1 {
		name = n[0]
	}
	if name != "echo" && name != "printf" {
		return
	}
	var all strings.Builder
	for _, w := range ws[1:] {
		t := decodeEcho(w.s)
		a.text(t, x.st, x.depth+1)
		a.follow(w, x)
		all.WriteString(t)
		all.WriteByte(' ')
	}
	a.text(all.String(), x.st, x.depth+1)
}

// decodeEcho decodes the backslash escapes of echo -e and printf.
func decodeEcho(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) {
			b, i = unescape(b, s, i)
			continue
		}
		b = append(b, s[i])
		i++
	}
	return string(b)
}

// chdir returns the working directory after "cd args" from cwd.
func chdir(args []word, cwd string) string {
	ws := args
	for len(ws) > 0 && len(ws[0].s) > 1 && ws[0].s[0] == '-' {
		if ws[0].s == "--" {
			ws = ws[1:]
			break
		}
		ws = ws[1:]
	}
	if len(ws) == 0 {
		return string(markHome)
	}
	s := ws[0].s
	switch {
	case s == "" || s == "-" || strings.IndexByte(s, markUnknown) >= 0 || ws[0].glob:
		return ""
	case s[0] == markHome:
		return string(markHome) + path.Clean("/"+s[1:])
	case s[0] == '/':
		return path.Clean(s)
	case cwd == "":
		return ""
	}
	return joinPath(cwd, s)
}

// joinPath joins a relative path to a directory that is absolute or starts
// with markHome.
func joinPath(dir, rel string) string {
	if dir[0] == markHome {
		return string(markHome) + path.Clean("/"+dir[1:]+"/"+rel)
	}
	return path.Clean(dir + "/" + rel)
}

func (a *analyzer) rm(args []word, x *cmdCtx) {
	recursive, force := false, false
	for _, w := range args {
		s := w.s
		if s == "--" {
			break
		}
		switch {
		case len(s) > 2 && s[0] == '-' && s[1] == '-':
			name := s[2:]
			if k := strings.IndexByte(name, '='); k >= 0 {
				name = name[:k]
			}
			recursive = recursive || name != "" && strings.HasPrefix("recursive", name)
			force = force || name != "" && strings.HasPrefix("force", name)
		case len(s) > 1 && s[0] == '-':
			recursive = recursive || strings.ContainsAny(s, "rR")
			force = force || strings.IndexByte(s, 'f') >= 0
		}
	}
	if x.xargs && recursive && force {
		a.deny("xargs rm -rf (recursively deletes whatever arrives on standard input)")
		return
	}
	if !recursive {
		return
	}
	options := true
	for _, w := range args {
		if options && w.s == "--" {
			options = false
			continue
		}
		if options && len(w.s) > 1 && w.s[0] == '-' {
			continue
		}
		if p := protectedPath(w, x.st.cwd); p != "" {
			a.deny("recursive delete of " + p)
			return
		}
	}
}

func (a *analyzer) find(args []word, x *cmdCtx) {
	i := 0
	for i < len(args) { // -H -L -P -D opts -Olevel
		s := args[i].s
		if s == "-H" || s == "-L" || s == "-P" || strings.HasPrefix(s, "-O") {
			i++
		} else if s == "-D" {
			i += 2
		} else {
			break
		}
	}
	start := min(i, len(args))
	for i < len(args) && !isFindExpr(args[i].s) {
		i++
	}
	paths := args[start:min(i, len(args))]
	action := ""
	for j := i; j < len(args); j++ {
		switch args[j].s {
		case "-delete":
			action = "find -delete"
		case "-exec", "-execdir", "-ok", "-okdir":
			k := j + 1
			for k < len(args) && args[k].s != ";" && args[k].s != "+" {
				k++
			}
			tmpl := args[j+1 : k]
			for _, w := range tmpl {
				if n := cmdNames(w); len(n) > 0 && (n[0] == "rm" || n[0] == "shred") {
					action = "find " + args[j].s + " " + n[0]
				}
			}
			a.simple(tmpl, x)
			j = k
		}
	}
	if action == "" || a.reason != "" {
		return
	}
	if len(paths) == 0 {
		paths = []word{{s: "."}}
	}
	for _, w := range paths {
		if p := protectedPath(w, x.st.cwd); p != "" {
			a.deny(action + " on " + p)
			return
		}
	}
}

func isFindExpr(s string) bool {
	return strings.HasPrefix(s, "-") || s == "(" || s == "!" || s == ")" || s == ","
}

// kill: a signal sent to pid -1 reaches every process the caller may
// signal. Only signal 0 (a probe) is let through.
func (a *analyzer) kill(args []word) {
	signal := ""
	operands := false
	for i := 0; i < len(args); i++ {
		s := args[i].s
		switch {
		case !operands && s == "--":
			operands = true
		case !operands && signal == "" && (s == "-s" || s == "-n" || s == "--signal"):
			if i+1 < len(args) {
				signal = args[i+1].s
				i++
			}
		case !operands && (s == "-l" || s == "-L" || s == "--list" || s == "--table"):
			return
		case !operands && signal == "" && len(s) > 1 && s[0] == '-':
			signal = s[1:]
			if strings.HasPrefix(s, "--signal=") {
				signal = s[len("--signal="):]
			}
		default:
			operands = true
			if s == "-1" {
				if sig := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(signal), "SIG")); sig == "0" {
					return
				}
				if signal == "" {
					signal = "TERM"
				}
				a.deny("kill -" + signal + " -1 (signals every process)")
				return
			}
		}
	}
}

// powerVerb: systemctl/loginctl poweroff, reboot, halt, kexec (also
// "systemctl start reboot.target").
func (a *analyzer) powerVerb(name string, args []word) {
	start := false
	for _, w := range args {
		s := lower(w.s)
		if strings.HasPrefix(s, "-") {
			continue
		}
		switch s {
		case "poweroff", "reboot", "halt", "kexec", "soft-reboot":
			a.deny(name + " " + s + " (stops or restarts the system)")
			return
		case "start", "restart", "isolate", "reload-or-restart", "try-restart", "try-reload-or-restart":
			start = true
		case "poweroff.target", "reboot.target", "halt.target", "kexec.target", "soft-reboot.target", "ctrl-alt-del.target":
			if start {
				a.deny(name + " starts " + s + " (stops or restarts the system)")
				return
			}
		}
	}
}

// partitionReadOnly reports whether a partitioning tool only lists.
func partitionReadOnly(name string, args []word) bool {
	var words []string
	for _, w := range args {
		switch w.s {
		case "-l", "--list", "-d", "--dump", "-J", "--json", "-s", "--show-size", "-V", "--verify", "-p", "--print", "-i", "--info", "-v", "--version", "-h", "--help":
			if name != "parted" || w.s == "-l" || w.s == "--list" || w.s == "-h" || w.s == "--help" || w.s == "-v" || w.s == "--version" {
				return true
			}
		}
		if !strings.HasPrefix(w.s, "-") && !strings.HasPrefix(w.s, "/dev/") {
			words = append(words, lower(w.s))
		}
	}
	if name == "parted" && len(words) > 0 {
		for _, s := range words {
			if s != "print" && s != "p" && s != "unit" && s != "s" && s != "b" && s != "mb" && s != "gb" && s != "%" && s != "cyl" && s != "chs" && s != "compact" {
				return false
			}
		}
		return true
	}
	return false
}
