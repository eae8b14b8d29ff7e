package permission

import (
	"strconv"
	"strings"
)

// Bounds of the hardline analysis. Every command is analysed in time linear
// in its length times these constants; a command that would need more is
// denied, with a reason that says so.
const (
	// MaxCommandLen is the longest shell command the floor analyses; a longer
	// one is denied.
	MaxCommandLen = 64 << 10
	maxDepth      = 16      // nesting of substitutions, shell -c bodies and function calls
	maxWork       = 1 << 20 // bytes parsed, over all nested scripts
	maxSteps      = 1 << 20 // words of simple commands analysed, wrapper branches included
	maxBraceWords = 1024    // words one brace expansion may produce
	maxValues     = 64      // candidate values of one word (a for loop's list, say)
)

// analyzer holds the state of one hardline check.
type analyzer struct {
	reason string // the first reason to deny; "" while none
	work   int
	steps  int
	active map[*funcDef]bool // functions being analysed, against recursion
}

func (a *analyzer) deny(reason string) {
	if a.reason == "" {
		a.reason = reason
	}
}

// hardline returns why the floor denies the shell command, or "" if it does
// not.
func hardline(command string) string {
	if len(command) > MaxCommandLen {
		return "command is longer than " + strconv.Itoa(MaxCommandLen) + " bytes, too long to analyse"
	}
	var a analyzer
	a.script(a.parseText(clean(command), 0), &state{}, 0)
	return a.reason
}

// state is what the analysis knows while it walks a script: the working
// directory ("" if unknown; absolute, or markHome followed by a path below
// the home directory), the shell variables and the functions defined so far.
// Nested scripts get a child state: they see the parent's, the parent does
// not see their changes.
type state struct {
	cwd    string
	vars   map[string][]string // candidate values; a missing name is unknown
	funcs  map[string]*funcDef
	parent *state
}

func (st *state) child() *state {
	return &state{cwd: st.cwd, parent: st}
}

// lookup returns the candidate values of a variable, or nil if unknown.
func (st *state) lookup(name string) []string {
	for s := st; s != nil; s = s.parent {
		if v, ok := s.vars[name]; ok {
			return v
		}
	}
	return nil
}

func (st *state) set(name string, vals []string) {
	if st.vars == nil {
		st.vars = make(map[string][]string)
	}
	st.vars[name] = vals
}

func (st *state) function(name string) *funcDef {
	for s := st; s != nil; s = s.parent {
		if f, ok := s.funcs[name]; ok {
			return f
		}
	}
	return nil
}

// funcDef is a shell function: its body is cmds[from:to] of its script.
type funcDef struct {
	name     string
	sc       *script
	from, to int
	skip     int // leading words of cmds[from] that are "function NAME"
}

// parseText parses a script that is not part of the source being parsed (a
// shell -c body, an eval argument, a backquoted command), charging its length
// to the work budget.
func (a *analyzer) parseText(s string, depth int) *script {
	a.work += len(s)
	if a.work > maxWork {
		a.deny("command holds too much nested shell text to analyse")
		return &script{}
	}
	return a.parse(s, depth)
}

// text analyses s as a script run by a new shell in state st.
func (a *analyzer) text(s string, st *state, depth int) {
	if a.reason != "" || s == "" {
		return
	}
	if depth > maxDepth {
		a.deny("command nests shells too deeply to analyse")
		return
	}
	a.script(a.parseText(s, depth), st.child(), depth)
}

// cmdCtx is where a simple command sits: its script and index (for pipes and
// redirections), the analysis state, and how the command is run.
type cmdCtx struct {
	sc    *script
	i     int
	st    *state
	depth int
	xargs bool // the words are an xargs command template
}

// script analyses the commands of sc in order, in state st.
func (a *analyzer) script(sc *script, st *state, depth int) {
	if a.reason != "" {
		return
	}
	for _, f := range funcDefs(sc) {
		if st.funcs == nil {
			st.funcs = make(map[string]*funcDef)
		}
		st.funcs[f.name] = f
		a.forkBomb(f)
	}
	for i := range sc.cmds {
		if a.reason != "" {
			return
		}
		c := &sc.cmds[i]
		for _, s := range c.subs {
			a.script(s, st.child(), depth+1)
		}
		for _, r := range c.redirs {
			if !isWriteRedir(r) {
				continue
			}
			for _, t := range a.resolve(r.target, st, false, nil) {
				if dev := rawDevice(t, st.cwd); dev != "" {
					a.deny("write to raw block device " + dev + " (redirection " + r.op + ")")
					return
				}
				if isSysrq(t, st.cwd) {
					a.deny("write to /proc/sysrq-trigger (can reboot or halt the system)")
					return
				}
			}
		}
		if c.op == "(" && len(c.words) == 1 {
			continue // "name ( )": a function definition's name
		}
		words := make([]word, 0, len(c.words))
		for _, w := range c.words {
			words = a.resolve(w, st, true, words)
		}
		if hasBrace(words) {
			words = a.expandBraces(words)
		}
		// Assignments take effect before the command runs, for its children
		// (X=/ bash -c 'rm -rf $X'); the command's own words were expanded above.
		a.record(c.words, st)
		a.simple(words, &cmdCtx{sc: sc, i: i, st: st, depth: depth})
	}
}

func isWriteRedir(r redir) bool {
	switch r.op {
	case ">", ">>", ">|", "&>", "&>>", "<>":
		return true
	case ">&": // ">&2" duplicates a descriptor; ">&file" writes a file
		return r.target.s != "-" && !isDigits(r.target.s)
	}
	return false
}

// resolve expands the variable references of w with their known values,
// appending the resulting words to out. With split, unquoted expansions are
// split into words on IFS characters (and "$@" on its arguments), and empty
// unquoted expansions vanish, as in bash. An unknown variable becomes
// markUnknown. A word that is exactly $(echo …) or `printf …` of literal
// text is replaced by that text, split.
func (a *analyzer) resolve(w word, st *state, split bool, out []word) []word {
	if !w.dyn {
		return append(out, w)
	}
	if w.sub != nil && !w.proc && w.s == string(markUnknown) {
		if text, ok := echoed(w.sub); ok {
			if !split || w.quoted { // "$(echo …)" is one word
				return append(out, word{s: text, quoted: true})
			}
			for _, f := range strings.Fields(text) {
				out = append(out, word{s: f, quoted: true})
			}
			return out
		}
	}
	if !strings.ContainsAny(w.s, "\x03\x05") {
		return append(out, w)
	}
	ifs := " \t\n"
	if v := st.lookup("IFS"); len(v) == 1 && !strings.ContainsAny(v[0], marks) {
		ifs += v[0]
	}
	glob := w.glob
	values := []string{""}
	s := w.s
	for s != "" {
		i := strings.IndexAny(s, "\x03\x05")
		if i < 0 {
			for k := range values {
				values[k] += s
			}
			break
		}
		for k := range values {
			values[k] += s[:i]
		}
		quoted := s[i] == markVarQ
		end := strings.IndexByte(s[i:], markEnd)
		if end < 0 { // cannot happen: the lexer always closes a reference
			end = len(s) - i - 1
		}
		name := s[i+1 : i+end]
		s = s[i+end+1:]
		cands := st.lookup(name)
		if cands == nil || len(values)*len(cands) > maxValues {
			cands = []string{string(markUnknown)}
		}
		next := make([]string, 0, len(values)*len(cands))
		for _, v := range values {
			for _, c := range cands {
				if !quoted {
					if strings.ContainsAny(c, "*?[") {
						glob = true
					}
					if split {
						c = splitIFS(c, ifs)
					}
				}
				next = append(next, v+c)
			}
		}
		values = next
	}
	for _, v := range values {
		fields := []string{v}
		if split {
			fields = strings.Split(v, string(markSplit))
		} else {
			v = strings.ReplaceAll(v, string(markSplit), " ")
			fields = []string{v}
		}
		for _, f := range fields {
			if f == "" && split && !w.quoted {
				continue
			}
			nw := w
			nw.s, nw.glob, nw.sub = f, glob, nil
			nw.dyn = strings.ContainsAny(f, marks)
			out = append(out, nw)
		}
	}
	return out
}

// splitIFS marks the IFS characters of an unquoted expansion's value as
// word boundaries.
func splitIFS(v, ifs string) string {
	if !strings.ContainsAny(v, ifs) {
		return v
	}
	b := []byte(v)
	for i, c := range b {
		if strings.IndexByte(ifs, c) >= 0 {
			b[i] = markSplit
		}
	}
	return string(b)
}

// echoed returns what a substitution's script prints, when it is one echo
// or printf of literal words.
func echoed(sc *script) (string, bool) {
	if len(sc.cmds) != 1 || len(sc.cmds[0].redirs) > 0 {
		return "", false
	}
	ws := stripPrefix(sc.cmds[0].words)
	if len(ws) == 0 || ws[0].dyn || ws[0].glob || (ws[0].s != "echo" && ws[0].s != "printf") {
		return "", false
	}
	var b strings.Builder
	for i, w := range ws[1:] {
		if w.dyn {
			return "", false
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(decodeEcho(w.s))
	}
	return b.String(), true
}

// record notes the variables a command sets, from its raw words: leading
// assignments (also those that only prefix a command, conservatively),
// export/declare/local/readonly/typeset, for/select loops, read and unset.
func (a *analyzer) record(raw []word, st *state) {
	ws := raw
	for len(ws) > 0 && !ws[0].quoted && !ws[0].dyn && isKeyword(ws[0].s) {
		ws = ws[1:]
	}
	for len(ws) > 0 && isAssignment(ws[0].s) {
		a.assign(ws[0], st)
		ws = ws[1:]
	}
	if len(ws) == 0 || ws[0].quoted || ws[0].dyn {
		return
	}
	args := ws[1:]
	switch ws[0].s {
	case "export", "declare", "typeset", "local", "readonly":
		for _, w := range args {
			if isAssignment(w.s) {
				a.assign(w, st)
			}
		}
	case "printf":
		// printf -v NAME FORMAT: a literal format is the value.
		if len(args) >= 3 && args[0].s == "-v" && isName(args[1].s) {
			v := decodeEcho(args[2].s)
			if args[2].dyn || strings.Contains(v, "%") {
				v = string(markUnknown)
			}
			st.set(args[1].s, []string{v})
		}
	case "read", "unset":
		val := []string{string(markUnknown)}
		if ws[0].s == "unset" {
			val = []string{""}
		}
		for _, w := range args {
			if !strings.HasPrefix(w.s, "-") && isName(w.s) {
				st.set(w.s, val)
			}
		}
	case "for", "select":
		if len(args) >= 3 && isName(args[0].s) && args[1].s == "in" {
			var vals []string
			for _, w := range args[2:] {
				for _, r := range a.resolve(w, st, true, nil) {
					vals = append(vals, r.s)
				}
			}
			if len(vals) == 0 || len(vals) > maxValues {
				vals = []string{string(markUnknown)}
			}
			st.set(args[0].s, vals)
		} else if len(args) >= 1 && isName(args[0].s) {
			st.set(args[0].s, []string{string(markUnknown)})
		}
	}
}

// assign records NAME=VALUE or NAME+=VALUE.
func (a *analyzer) assign(w word, st *state) {
	eq := strings.IndexByte(w.s, '=')
	name, appending := w.s[:eq], false
	if strings.HasSuffix(name, "+") {
		name, appending = name[:len(name)-1], true
	}
	value := w
	value.s = w.s[eq+1:]
	if value.s != string(markUnknown) {
		value.sub = nil // the lexer keeps the script of NAME=$(…) only
	}
	var vals []string
	for _, r := range a.resolve(value, st, false, nil) {
		vals = append(vals, r.s)
	}
	if appending {
		old := st.lookup(name)
		if old == nil {
			old = []string{string(markUnknown)}
		}
		var joined []string
		for _, o := range old {
			for _, v := range vals {
				joined = append(joined, o+v)
			}
		}
		vals = joined
	}
	if len(vals) == 0 || len(vals) > maxValues {
		vals = []string{string(markUnknown)}
	}
	st.set(name, vals)
}

func isName(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isKeyword(s string) bool {
	switch s {
	case "!", "{", "}", "then", "do", "else", "elif", "if", "while", "until", "fi", "done", "esac", "time", "coproc", "in":
		return true
	}
	return false
}

// stripPrefix drops what precedes a command name: reserved words,
// assignments, and "function NAME".
func stripPrefix(ws []word) []word {
	for len(ws) > 0 {
		w := ws[0]
		if isAssignment(w.s) {
			ws = ws[1:]
			continue
		}
		if w.quoted || w.dyn {
			return ws
		}
		switch {
		case isKeyword(w.s):
			ws = ws[1:]
		case w.s == "function":
			ws = ws[min(2, len(ws)):]
		case w.s == "for" || w.s == "select" || w.s == "case" || w.s == "[[" || w.s == "]]":
			return nil // not a command; substitutions in it were analysed
		default:
			return ws
		}
	}
	return ws
}

// isAssignment reports whether s is NAME=… or NAME+=….
func isAssignment(s string) bool {
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == 0 || '0' <= s[0] && s[0] <= '9' || i >= len(s) {
		return false
	}
	return s[i] == '=' || s[i] == '+' && i+1 < len(s) && s[i+1] == '='
}

// funcDefs finds the function definitions of a script and their bodies:
// "NAME ( ) BODY", "function NAME ( ) BODY" and "function NAME BODY",
// where BODY runs to the matching "}" (or ")").
func funcDefs(sc *script) []*funcDef {
	var defs []*funcDef
	cmds := sc.cmds
	for i := range cmds {
		ws := cmds[i].words
		parens := cmds[i].op == "(" && i+1 < len(cmds) && len(cmds[i+1].words) == 0 && cmds[i+1].op == ")"
		var f *funcDef
		switch {
		case len(ws) == 1 && parens:
			f = &funcDef{sc: sc, name: ws[0].s, from: i + 2}
		case len(ws) == 2 && parens && !ws[0].quoted && ws[0].s == "function":
			f = &funcDef{sc: sc, name: ws[1].s, from: i + 2}
		case len(ws) >= 2 && !ws[0].quoted && ws[0].s == "function":
			f = &funcDef{sc: sc, name: ws[1].s, from: i, skip: 2}
		default:
			continue
		}
		depth, started := 0, false
		f.to = len(cmds)
		for j := f.from; j < len(cmds); j++ {
			body := cmds[j].words
			if j == f.from {
				body = body[min(f.skip, len(body)):]
			}
			for _, w := range body {
				if !w.quoted && w.s == "{" {
					depth++
					started = true
				} else if !w.quoted && w.s == "}" {
					depth--
				}
			}
			if cmds[j].op == "(" {
				depth++
				started = true
			} else if cmds[j].op == ")" {
				depth--
			}
			if started && depth <= 0 {
				f.to = j + 1
				break
			}
		}
		defs = append(defs, f)
	}
	return defs
}

// forkBomb denies a function that runs itself in a pipeline or in the
// background: ":(){ :|:& };:", "f(){ f|f& };f", "function f { f & f; }".
func (a *analyzer) forkBomb(f *funcDef) {
	cmds := f.sc.cmds
	for j := f.from; j < f.to; j++ {
		c := &cmds[j]
		ws := c.words
		if j == f.from {
			ws = ws[min(f.skip, len(ws)):]
		}
		call := stripPrefix(ws)
		if len(call) == 0 || call[0].s != f.name {
			continue
		}
		if c.op == "|" || c.op == "|&" || c.op == "&" || j > f.from && (cmds[j-1].op == "|" || cmds[j-1].op == "|&") {
			a.deny("fork bomb (function " + f.name + " runs itself in a pipeline or in the background)")
			return
		}
	}
}

// call analyses a function's body with its arguments as $1…$9, $@ and $*.
// A function already being analysed (recursion) is not analysed again.
func (a *analyzer) call(f *funcDef, args []word, x *cmdCtx) {
	if a.active[f] {
		return
	}
	if x.depth+1 > maxDepth {
		a.deny("command nests function calls too deeply to analyse")
		return
	}
	if a.active == nil {
		a.active = make(map[*funcDef]bool)
	}
	a.active[f] = true
	defer delete(a.active, f)
	st := x.st.child()
	all := make([]string, len(args))
	for i, w := range args {
		all[i] = w.s
		if i < 9 {
			st.set(strconv.Itoa(i+1), []string{w.s})
		}
	}
	for i := len(args); i < 9; i++ {
		st.set(strconv.Itoa(i+1), []string{""})
	}
	st.set("@", []string{strings.Join(all, string(markSplit))})
	st.set("*", []string{strings.Join(all, " ")})
	body := &script{cmds: f.sc.cmds[f.from:f.to]}
	if f.skip > 0 && len(body.cmds) > 0 { // drop "function NAME" from the first command
		first := body.cmds[0]
		first.words = first.words[min(f.skip, len(first.words)):]
		body.cmds = append([]command{first}, body.cmds[1:]...)
	}
	a.script(body, st, x.depth+1)
}
