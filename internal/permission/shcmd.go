package permission

import (
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// This file holds what the floor knows about individual commands: wrappers
// that run another command, shells, the builtins that change what the
// analysis knows, and the destructive commands.

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

// opaqueNames are the commands a command name from the operator's
// environment ($SHELL, $PYTHON) is analysed as: a shell, eval, and the
// commands whose arguments the floor checks. strace stands for every
// wrapper: any word of the arguments that is not an option may start the
// command it runs (sudo, nice, timeout…). Those that deny whatever the
// arguments, and the builtins that only change the shell's state, are left
// out.
var opaqueNames = []string{
	"sh", "eval", "source", "ssh", "strace", "rm", "find", "xargs", "rsync", "tar", "dd", "tee", "cp", "fdisk",
	"kill", "init", "systemctl", "cryptsetup", "diskutil",
}

// nameKind is what the floor knows of a command name.
type nameKind uint8

const (
	nameKnown   nameKind = iota
	nameOpaque           // from the operator's environment: any program the operator chose
	nameUnknown          // could be anything
)

// cmdNames returns the command names w may be: its base name, lower-cased
// (conservatively, for case-insensitive file systems), or every known name
// its glob matches.
func cmdNames(w word) ([]string, nameKind) {
	s := w.s
	base := s[strings.LastIndexByte(s, '/')+1:]
	switch {
	case strings.IndexByte(base, markUnknown) >= 0:
		return nil, nameUnknown
	case strings.ContainsAny(base, marks):
		return nil, nameOpaque
	case base == "":
		return nil, nameKnown
	case !w.glob:
		return []string{lower(base)}, nameKnown
	}
	var names []string
	match := globMatcher(base)
	for _, n := range knownNames {
		if match(n) {
			names = append(names, n)
		}
	}
	return names, nameKnown
}

// simple analyses one simple command given as words.
func (a *analyzer) simple(ws []word, x *cmdCtx) {
	if a.reason != "" || a.step(1+len(ws)) || len(ws) == 0 {
		return
	}
	if !ws[0].glob {
		if f := x.st.function(ws[0].s); f != nil {
			a.callFunc(f, ws[1:], x) // and, conservatively, as a command of that name too
		}
	}
	names, kind := cmdNames(ws[0])
	switch kind {
	case nameUnknown:
		a.deny("command name " + show(ws[0]) + " is unknown: treated as unknown and denied")
	case nameOpaque:
		y := x.process(nil)
		for _, n := range opaqueNames {
			a.named(n, ws[1:], y)
		}
	default:
		for _, n := range names {
			a.named(n, ws[1:], x)
		}
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

// sameShell are the wrappers that run their command in the shell itself;
// the others start a process, whose changes (cd, variables) do not stay.
var sameShell = map[string]bool{"builtin": true, "exec": true, "time": true}

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

// process returns a context for a command that x's command runs as a new
// process, with the NAME=VALUE words of assigns in its environment.
func (x *cmdCtx) process(assigns []word) *cmdCtx {
	if x.scratch && len(assigns) == 0 {
		return x // sudo nice timeout …: one process state is enough
	}
	y := *x
	y.st, y.scratch = x.st.child(), true
	for _, w := range assigns {
		if name, value, ok := strings.Cut(w.s, "="); ok && isAssignment(w.s) {
			y.st.set(strings.TrimSuffix(name, "+"), []expand.Variable{stringVar(value)}, true)
		}
	}
	return &y
}

// named analyses a command whose name is known.
func (a *analyzer) named(name string, args []word, x *cmdCtx) {
	if a.reason != "" || a.step(1+len(args)) {
		return
	}
	if o, ok := wrappers[name]; ok {
		switch name {
		case "runuser":
			if a.dashC(args, x) {
				return
			}
		case "watch":
			// watch runs its arguments joined by spaces with sh -c.
			for _, i := range o.starts(args, 0, nil) {
				a.text(joinWords(args[min(i, len(args)):]), x.st.process(&positional{zero: "sh"}), x.depth+1)
			}
		}
		var assigns []word // sudo NAME=VALUE command
		if o.assign {
			for _, w := range args {
				if isAssignment(w.s) {
					assigns = append(assigns, w)
				}
			}
		}
		for _, i := range o.starts(args, 0, nil) {
			if i >= len(args) {
				continue
			}
			y := x
			if !sameShell[name] {
				y = x.process(assigns)
			}
			if name == "xargs" {
				z := *y
				z.xargs = true
				y = &z
			}
			a.simple(args[i:], y)
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
		if name == "parallel" { // its command is a shell line
			a.text(joinWords(args), x.st.process(&positional{zero: "sh"}), x.depth+1)
		}
		y := x.process(nil)
		for i, w := range args {
			if strings.HasPrefix(w.s, ":::") {
				break // parallel's arguments, never its command
			}
			if !strings.HasPrefix(w.s, "-") {
				a.simple(args[i:], y)
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
			a.text(joinWords(args[i+1:]), newRoot(), x.depth+1)
		}
	case "at", "batch":
		a.stdin(x, x.st.process(&positional{zero: "sh"})) // the job is read from standard input
	case "source", ".":
		if len(args) > 0 {
			if isStdin(args[0].s) {
				a.stdin(x, x.st)
			}
			a.follow(args[0], x, x.st) // source <(echo …)
		}
	case "rsync":
		a.rsync(args, x)
	case "tar":
		if slices.ContainsFunc(args, func(w word) bool { return w.s == "--remove-files" }) {
			for _, op := range args {
				if strings.HasPrefix(op.s, "-") {
					continue
				}
				if p := protectedPath(op, x.st.cwds()); p != "" {
					a.deny("tar --remove-files of " + p)
					return
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
		a.text(joinWords(args), x.st, x.depth+1) // in the shell itself
		for _, w := range args {
			a.follow(w, x, x.st)
		}
	case "trap":
		rest := args
		if len(rest) > 0 && rest[0].s == "--" {
			rest = rest[1:]
		}
		if len(rest) > 0 && !strings.HasPrefix(rest[0].s, "-") {
			a.body(rest[0], x, x.st.child())
		}
	case "alias":
		for _, w := range args {
			if i := strings.IndexByte(w.s, '='); i > 0 {
				a.text(w.s[i+1:], x.st.child(), x.depth+1)
			}
		}
	case "su":
		a.dashC(args, x)
	case "cd", "pushd", "popd":
		a.cd(name, args, x.st)
	case "unset", "read", "mapfile", "readarray", "getopts", "printf", "set", "shift",
		"export", "declare", "local", "readonly", "typeset":
		a.builtin(name, args, x)
	case "rm":
		a.rm(args, x)
	case "find":
		a.find(args, x)
	case "dd":
		for _, w := range args {
			if strings.HasPrefix(w.s, "of=") {
				w.s = w.s[3:]
				if a.device(w, x, "dd of=") {
					return
				}
			}
		}
	case "tee", "shred", "wipefs", "blkdiscard", "mkswap":
		if dev, unknown := rawOperand(args, x.st.cwds()); dev != "" {
			a.denyDevice(name+" on", dev, unknown)
			return
		}
		if name == "tee" {
			for _, w := range args {
				if isSysrq(w, x.st.cwds()) {
					a.deny("write to /proc/sysrq-trigger (can reboot or halt the system)")
					return
				}
			}
		}
	case "cp":
		if len(args) > 0 {
			a.device(args[len(args)-1], x, "cp")
		}
	case "fdisk", "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted":
		if partitionReadOnly(name, args) {
			return
		}
		if dev, unknown := rawOperand(args, x.st.cwds()); dev != "" {
			a.denyDevice("partition table change ("+name+") on", dev, unknown)
		}
	case "mke2fs":
		a.deny("filesystem creation (mke2fs)")
	case "kill":
		a.kill(args)
	case "killall5":
		a.deny("killall5 (signals every process)")
	case "init", "telinit":
		for _, w := range args {
			if w.s == "0" || w.s == "6" || w.isUnknown() {
				a.deny(name + " " + show(w) + " (halts or reboots the system)" + unknownNote(w))
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
			if w.isUnknown() {
				a.deny("cryptsetup with an unknown argument (" + show(w) + "), treated as unknown and denied")
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
			if w.isUnknown() {
				a.deny("diskutil with an unknown argument (" + show(w) + "), treated as unknown and denied")
				return
			}
		}
	default:
		if strings.HasPrefix(name, "mkfs") {
			a.deny("filesystem creation (" + name + ")")
		}
	}
}

func unknownNote(w word) string {
	if w.isUnknown() {
		return ", treated as unknown and denied"
	}
	return ""
}

// device denies when w, a file a command writes to, is a raw block device
// (or unknown), and reports whether it did.
func (a *analyzer) device(w word, x *cmdCtx, what string) bool {
	dev, unknown := rawDevice(w, x.st.cwds())
	if dev == "" {
		return false
	}
	if unknown {
		a.deny("write to " + dev + " (" + what + "), treated as unknown and denied")
	} else {
		a.deny("write to raw block device " + dev + " (" + what + ")")
	}
	return true
}

func (a *analyzer) denyDevice(what, dev string, unknown bool) {
	if unknown {
		a.deny(what + " " + dev + ", treated as unknown and denied")
	} else {
		a.deny(what + " raw block device " + dev)
	}
}

// rsync --delete SRC… DEST empties DEST of what SRC lacks;
// --remove-source-files empties the sources.
func (a *analyzer) rsync(args []word, x *cmdCtx) {
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
			if p := protectedPath(w, x.st.cwds()); p != "" {
				a.deny("rsync deleting files of " + p)
				return
			}
		}
	}
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

// env: options, NAME=VALUE words (the command's environment), then the
// command. -S (--split-string) splits its value into words that come before
// the rest.
func (a *analyzer) env(args []word, x *cmdCtx) {
	y := x.process(nil)
	for i := 0; i < len(args); i++ {
		s := args[i].s
		switch {
		case s == "--":
			a.simple(args[i+1:], y)
			return
		case isAssignment(s):
			name, value, _ := strings.Cut(s, "=")
			y.st.set(strings.TrimSuffix(name, "+"), []expand.Variable{stringVar(value)}, true)
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
			stmts, ok := a.parse(value, "env -S's string")
			if !ok {
				return
			}
			var ws []word
			for _, st := range stmts {
				if c, ok := st.Cmd.(*syntax.CallExpr); ok {
					a.eachWorld(y.st, y.depth, wordNodes(c.Args), func(e *expansion) {
						if ws == nil {
							ws = e.words(c.Args)
						}
					})
				}
			}
			a.simple(append(ws, args[next:]...), y)
			return
		case s == "-C" || s == "--chdir" || strings.HasPrefix(s, "--chdir="):
			dir, ok := strings.CutPrefix(s, "--chdir=")
			d := word{s: dir}
			if !ok && i+1 < len(args) {
				d = args[i+1]
				i++
			}
			a.cd("cd", []word{d}, y.st)
		case s == "-u" || s == "--unset":
			if i+1 < len(args) {
				y.st.set(args[i+1].s, []expand.Variable{unsetVar}, false)
			}
			i++
		case strings.HasPrefix(s, "-"):
			continue
		default:
			a.simple(args[i:], y)
			return
		}
	}
}

// dashC analyses the -c (--command) script of su, runuser, flock, sg or
// script and reports whether there was one.
func (a *analyzer) dashC(args []word, x *cmdCtx) bool {
	st := x.st.process(&positional{zero: "sh"})
	for i, w := range args {
		s := w.s
		switch {
		case s == "--":
			return false
		case strings.HasPrefix(s, "--command=") || strings.HasPrefix(s, "--session-command="):
			a.text(s[strings.IndexByte(s, '=')+1:], st, x.depth+1)
			return true
		case s == "--command" || s == "--session-command" || len(s) > 1 && s[0] == '-' && s[1] != '-' && s[len(s)-1] == 'c':
			if i+1 < len(args) {
				a.body(args[i+1], x, st)
			}
			return true
		case len(s) > 2 && s[0] == '-' && s[1] != '-' && strings.IndexByte(s, 'c') > 0:
			a.text(s[strings.IndexByte(s, 'c')+1:], st, x.depth+1)
			return true
		}
	}
	return false
}

// shell analyses sh/bash/… : the -c script (with its $0, $1…), or the
// script read from standard input (a here-document, a here-string, or a
// pipe from echo or printf). A script file is opaque.
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
			p := &positional{zero: "sh"}
			for j, w := range args[i+1:] {
				if j == 0 {
					p.zero = valueOf(w)
				} else {
					p.list = append(p.list, valueOf(w))
				}
			}
			a.body(args[i], x, x.st.process(p))
		}
		return
	}
	st := x.st.process(&positional{zero: "sh"})
	if i < len(args) && !dashS && !isStdin(args[i].s) {
		a.follow(args[i], x, st) // a script file; bash <(echo …) is followed
		return
	}
	a.stdin(x, st)
}

// stdin analyses what the command at x reads on standard input, as a
// script run in st: its here-documents and here-strings, or what the
// command before it in a pipeline prints.
func (a *analyzer) stdin(x *cmdCtx, st *state) {
	if x.stmt != nil {
		a.stdinScripts(x.stmt, x, st)
	}
	if x.prev != nil {
		a.producer(x.prev, x, st)
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

// stdinScripts analyses the here-documents and here-strings of s as
// scripts run in st.
func (a *analyzer) stdinScripts(s *syntax.Stmt, x *cmdCtx, st *state) {
	for _, r := range s.Redirs {
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc:
			a.heredoc(r, x, st)
		case syntax.WordHdoc: // one word, not split
			a.eachWorld(x.st, x.depth, []syntax.Node{r.Word}, func(e *expansion) {
				a.text(e.literal(r.Word), st, x.depth+1)
			})
		case syntax.RdrIn:
			a.eachWorld(x.st, x.depth, []syntax.Node{r.Word}, func(e *expansion) {
				for _, t := range e.words([]*syntax.Word{r.Word}) {
					a.follow(t, x, st) // sh < <(echo …)
				}
			})
		}
	}
}

// heredoc analyses a here-document as a script run in st: as written if
// its delimiter is quoted, else expanded.
func (a *analyzer) heredoc(r *syntax.Redirect, x *cmdCtx, st *state) {
	if r.Hdoc == nil {
		return
	}
	quoted := r.Word == nil || slices.ContainsFunc(r.Word.Parts, func(p syntax.WordPart) bool {
		l, ok := p.(*syntax.Lit)
		return !ok || strings.IndexByte(l.Value, '\\') >= 0
	})
	if !quoted {
		a.eachWorld(x.st, x.depth, []syntax.Node{r.Hdoc}, func(e *expansion) {
			a.text(e.document(r.Hdoc), st, x.depth+1)
		})
		return
	}
	var b strings.Builder
	for _, p := range r.Hdoc.Parts {
		if l, ok := p.(*syntax.Lit); ok {
			b.WriteString(l.Value)
		}
	}
	a.text(b.String(), st, x.depth+1)
}

// body analyses a word that a shell runs as a script, in st.
func (a *analyzer) body(w word, x *cmdCtx, st *state) {
	a.text(w.s, st, x.depth+1)
	a.follow(w, x, st)
}

// follow analyses what a word that is one process substitution outputs,
// when that output is run as a script in st: bash <(echo rm -rf /).
func (a *analyzer) follow(w word, x *cmdCtx, st *state) {
	if w.sub == nil || x.depth+1 > maxDepth {
		return
	}
	y := *x
	y.depth++
	for _, s := range w.sub {
		a.producer(s, &y, st)
	}
}

// producer analyses what statement s writes to standard output, as a
// script run in st: the output of echo and printf, and any here-document or
// here-string it reads (cat <<EOF | sh). Other producers are opaque.
func (a *analyzer) producer(s *syntax.Stmt, x *cmdCtx, st *state) {
	if a.reason != "" {
		return
	}
	s = last(s)
	a.stdinScripts(s, x, st)
	c, ok := s.Cmd.(*syntax.CallExpr)
	if !ok || len(c.Args) == 0 {
		return
	}
	a.eachWorld(x.st, x.depth, []syntax.Node{c}, func(e *expansion) {
		ws := e.words(c.Args)
		if len(ws) == 0 {
			return
		}
		names, _ := cmdNames(ws[0])
		if len(names) != 1 {
			return
		}
		switch args := ws[1:]; names[0] {
		case "echo":
			for len(args) > 0 && isEchoFlag(args[0].s) {
				args = args[1:]
			}
			raw := joinWords(args)
			a.text(raw, st, x.depth+1)
			if dec := decodeEcho(raw); dec != raw {
				a.text(dec, st, x.depth+1)
			}
		case "printf":
			if len(args) == 0 {
				return
			}
			if out, ok := printf(args[0].s, args[1:]); ok {
				a.text(out, st, x.depth+1)
				return
			}
			for _, w := range args { // an invalid format: each argument
				a.text(decodeEcho(w.s), st, x.depth+1)
			}
		}
	})
}

// cd analyses cd, pushd and popd run in st.
func (a *analyzer) cd(name string, args []word, st *state) {
	ws := args
	for len(ws) > 0 && len(ws[0].s) > 1 && ws[0].s[0] == '-' && !isDigits(ws[0].s[1:]) {
		if ws[0].s == "--" {
			ws = ws[1:]
			break
		}
		ws = ws[1:]
	}
	t := st.shell()
	switch {
	case name == "popd":
		if len(ws) > 0 {
			return // popd +N removes a stack entry
		}
		if n := len(t.dirs); n > 0 {
			dirs := t.dirs[n-1]
			t.dirs = t.dirs[:n-1]
			st.chdir(dirs)
			return
		}
		st.chdir([]word{{s: string(markUnknown)}})
		return
	case name == "pushd":
		if len(ws) == 0 || strings.HasPrefix(ws[0].s, "+") || strings.HasPrefix(ws[0].s, "-") {
			st.chdir([]word{{s: string(markUnknown)}}) // a rotation of the stack
			return
		}
		t.dirs = append(t.dirs, st.cwds())
	}
	var dirs []word
	switch {
	case len(ws) == 0:
		dirs = []word{{s: string(markHome)}}
	case ws[0].s == "-":
		dirs = st.oldpwds()
	default:
		for _, cwd := range st.cwds() {
			dirs = append(dirs, chdir(ws[0], cwd))
		}
	}
	st.chdir(dirs)
}

// chdir returns the working directory after cd to w from cwd.
func chdir(w word, cwd word) word {
	if w.s == "" {
		return cwd
	}
	p, glob, v := resolvePath(w, cwd)
	switch v {
	case pathBenign:
		return word{}
	case pathUnknown:
		return word{s: string(markUnknown)}
	}
	return word{s: p, glob: glob}
}

// builtin analyses the builtins that change what the analysis knows of the
// shell's variables and positional parameters.
func (a *analyzer) builtin(name string, args []word, x *cmdCtx) {
	st := x.st
	unknown := []expand.Variable{unknownVar}
	setName := func(n string, vals []expand.Variable) {
		if syntax.ValidName(n) {
			st.set(n, vals, false)
		} else {
			st.taintAll() // a name the floor cannot know
		}
	}
	switch name {
	case "unset":
		funcs := false
		for _, w := range args {
			switch {
			case w.s == "-f":
				funcs = true
			case strings.HasPrefix(w.s, "-"):
			case funcs:
				st.defineFunc(w.s, nil)
			default:
				setName(w.s, []expand.Variable{unsetVar})
			}
		}
	case "read", "mapfile", "readarray", "getopts":
		// Every name they assign is unknown: read's operands (after options,
		// some with a value), mapfile's array (MAPFILE by default), getopts'
		// second operand. mapfile -C runs its callback.
		valued := map[string]string{"read": "adinNptu", "mapfile": "dnOsuCc", "readarray": "dnOsuCc", "getopts": ""}[name]
		var ops []word
		for i := 0; i < len(args); i++ {
			s := args[i].s
			if len(s) > 1 && s[0] == '-' && len(ops) == 0 {
				if j := strings.IndexAny(s[1:], valued); j >= 0 {
					if s[1+j] == 'a' && name == "read" && 2+j == len(s) && i+1 < len(args) {
						setName(args[i+1].s, unknown)
					}
					if s[1+j] == 'C' && 2+j == len(s) && i+1 < len(args) {
						a.text(args[i+1].s, st.child(), x.depth+1)
					}
					if 2+j == len(s) {
						i++
					}
				}
				continue
			}
			ops = append(ops, args[i])
		}
		switch {
		case name == "getopts" && len(ops) >= 2:
			setName(ops[1].s, unknown)
		case name != "getopts":
			for _, w := range ops {
				setName(w.s, unknown)
			}
		}
	case "printf":
		if len(args) >= 2 && args[0].s == "-v" {
			vals := unknown
			if len(args) >= 3 {
				if out, ok := printf(args[2].s, args[3:]); ok {
					vals = []expand.Variable{stringVar(out)}
				}
			}
			setName(args[1].s, vals)
		}
	case "set":
		// set -- ARGS, or set ARGS after options, sets the positional
		// parameters. -o and +o take an option name.
		for i := 0; i < len(args); i++ {
			s := args[i].s
			if s == "--" || s == "-" {
				a.setArgs(st, args[i+1:])
				return
			}
			if len(s) > 1 && (s[0] == '-' || s[0] == '+') {
				if s[len(s)-1] == 'o' {
					i++
				}
				continue
			}
			a.setArgs(st, args[i:])
			return
		}
	case "shift":
		n := 1
		if len(args) > 0 {
			if !isDigits(args[0].s) {
				st.setArgs(nil, true)
				return
			}
			n, _ = strconv.Atoi(args[0].s)
		}
		p := st.positional("@")
		if st.positional("#").Str == string(markOpaque) {
			return
		}
		list := p.List
		if n > len(list) {
			return // shift fails
		}
		st.setArgs(slices.Clone(list[n:]), false)
	default: // export, declare, local, readonly, typeset run as plain commands
		for _, w := range args {
			if isAssignment(w.s) {
				n, value, _ := strings.Cut(w.s, "=")
				setName(strings.TrimSuffix(n, "+"), []expand.Variable{stringVar(value)})
			} else if !strings.HasPrefix(w.s, "-") && !syntax.ValidName(w.s) {
				st.taintAll()
			}
		}
	}
}

func (a *analyzer) setArgs(st *state, args []word) {
	list := make([]string, len(args))
	for i, w := range args {
		list[i] = valueOf(w)
	}
	st.setArgs(list, false)
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
			recursive = recursive || strings.ContainsAny(s, "rR") || w.isUnknown()
			force = force || strings.IndexByte(s, 'f') >= 0 || w.isUnknown()
		}
	}
	if x.xargs && recursive && force {
		a.deny("xargs rm -rf (recursively deletes whatever arrives on standard input)")
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
		if !recursive && !w.isUnknown() {
			continue
		}
		if p := protectedPath(w, x.st.cwds()); p != "" {
			if recursive {
				a.deny("recursive delete of " + p)
			} else { // it may be -r and a path
				a.deny("rm with " + p)
			}
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
	for _, w := range args { // an unknown word may be (or split into) -delete
		if w.isUnknown() {
			action = "find with an unknown argument (" + show(w) + ", maybe -delete)"
		}
	}
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
				if n, _ := cmdNames(w); len(n) > 0 && (n[0] == "rm" || n[0] == "shred") {
					action = "find " + args[j].s + " " + n[0]
				}
			}
			a.simple(tmpl, x.process(nil))
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
		if p := protectedPath(w, x.st.cwds()); p != "" {
			a.deny(action + " on " + p)
			return
		}
	}
}

func isFindExpr(s string) bool {
	return strings.HasPrefix(s, "-") || s == "(" || s == "!" || s == ")" || s == ","
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
		if len(s) > 1 && s[0] == '-' {
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
		if w.isUnknown() {
			a.deny(name + " with an unknown argument (" + show(w) + "), treated as unknown and denied")
			return
		}
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
