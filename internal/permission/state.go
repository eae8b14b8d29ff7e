package permission

import (
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// This file is what the hardline analysis knows while it walks a script:
// variables with their candidate values, the working directory, the
// functions defined so far and the positional parameters.

// state is one scope of the analysis. A child state sees its parent's
// variables, directory and functions; what it changes stays in it, so
// that subshells and pipelines can be dropped and the branches of if, case,
// && and loops merged back (see merge). A frame (a function call, or the
// assignments that prefix one command) holds only its own names: any other
// change goes through to its parent, as in the shell.
type state struct {
	parent  *state
	frame   bool // see above
	newProc bool // a new shell process: a variable it inherits may be unset there, unless exported
	vars    map[string]*variable
	funcs   map[string]*syntax.FuncDecl
	cwd     []word // candidate working directories; nil: the parent's
	oldpwd  []word
	dirs    [][]word    // the pushd stack
	args    *positional // nil: the parent's
	anyVar  bool        // a command set variables the analysis cannot name: those from the environment are unknown (see taintAll)
}

// variable is what the analysis knows of one shell variable: the values it
// may hold (an unset candidate has Set false).
type variable struct {
	cands    []expand.Variable
	exported bool
}

// positional are the positional parameters $0, $1, … of a shell or a
// function call.
type positional struct {
	zero   string
	list   []string
	opaque bool // not known here (a function body seen at its definition): any value
}

// Values of variables the command did not assign, and of those it cannot
// know. See the marks in expansion.go.
var (
	unknownVar = expand.Variable{Set: true, Kind: expand.String, Str: string(markUnknown)}
	opaqueVar  = expand.Variable{Set: true, Exported: true, Kind: expand.String, Str: string(markOpaque)}
	homeVar    = expand.Variable{Set: true, Exported: true, Kind: expand.String, Str: string(markHome)}
	unsetVar   = expand.Variable{}
)

// newRoot returns the state in which a command starts: sh -c with no
// arguments, in the workspace.
func newRoot() *state {
	return &state{cwd: []word{{}}, args: &positional{zero: "sh"}}
}

// child returns a state whose changes stay in it.
func (st *state) child() *state { return &state{parent: st} }

// process returns the state of a new shell process started from st, with
// positional parameters args.
func (st *state) process(args *positional) *state {
	return &state{parent: st, newProc: true, args: args}
}

// dynamicVars are the variables bash sets itself: their values depend on what
// ran before (BASH_REMATCH, DIRSTACK, REPLY…), so they are unknown.
var dynamicVars = map[string]bool{
	"?": true, "$": true, "!": true, "-": true, "_": true, "RANDOM": true, "SRANDOM": true, "SECONDS": true,
	"EPOCHSECONDS": true, "EPOCHREALTIME": true, "BASHPID": true, "BASH_COMMAND": true, "BASH_REMATCH": true,
	"BASH_ARGV": true, "BASH_ARGC": true, "BASH_SOURCE": true, "BASH_LINENO": true, "BASH_EXECUTION_STRING": true,
	"FUNCNAME": true, "PIPESTATUS": true, "DIRSTACK": true, "MAPFILE": true, "REPLY": true, "OPTARG": true,
	"OPTIND": true, "COMPREPLY": true, "READLINE_LINE": true, "READLINE_POINT": true, "HISTCMD": true,
	"BASH_SUBSHELL": true, "GROUPS": true, "COPROC": true, "BASH_ALIASES": true, "BASH_CMDS": true,
}

// envValue is the value of a variable the command has not assigned: it
// comes from agentd's environment (opaque: set by the operator, not by the
// command), except the home directory, the default IFS and bash's own.
func envValue(name string) expand.Variable {
	switch {
	case name == "HOME":
		return homeVar
	case name == "IFS":
		return unsetVar
	case dynamicVars[name]:
		return unknownVar
	}
	return opaqueVar
}

// cands returns the candidate values of a variable.
func (st *state) cands(name string) []expand.Variable {
	if isPositional(name) {
		return []expand.Variable{st.positional(name)}
	}
	crossed, any := false, false
	for s := st; s != nil; s = s.parent {
		if v := s.vars[name]; v != nil {
			if crossed && !v.exported && !slices.ContainsFunc(v.cands, func(c expand.Variable) bool { return !c.Set }) {
				// A new process sees only exported variables.
				return append(slices.Clip(v.cands), unsetVar)
			}
			return v.cands
		}
		any = any || s.anyVar
		crossed = crossed || s.newProc
	}
	if any {
		return []expand.Variable{unknownVar}
	}
	return []expand.Variable{envValue(name)}
}

// set makes vals the candidate values of a variable.
func (st *state) set(name string, vals []expand.Variable, exported bool) {
	if len(vals) == 0 || len(vals) > maxValues {
		vals = []expand.Variable{unknownVar}
	}
	for i, v := range vals {
		if n := varLen(v); n > maxValueLen {
			vals = slices.Clone(vals)
			vals[i] = unknownVar
		}
	}
	t := st
	for t.frame && t.vars[name] == nil && t.parent != nil {
		t = t.parent
	}
	if old := t.vars[name]; old != nil {
		exported = exported || old.exported
	}
	if t.vars == nil {
		t.vars = make(map[string]*variable)
	}
	t.vars[name] = &variable{cands: vals, exported: exported}
}

// taintAll records that a command may have set any variable (declare "$x",
// unset "$x"): every variable is unknown from here on, until assigned
// again.
func (st *state) taintAll() {
	seen := map[string]bool{}
	for s := st; s != nil; s = s.parent {
		for name := range s.vars {
			if !seen[name] {
				seen[name] = true
				st.set(name, []expand.Variable{unknownVar}, false)
			}
		}
	}
	st.anyVar = true
}

// local declares name in the nearest function frame.
func (st *state) local(name string, vals []expand.Variable) {
	t := st
	for t.parent != nil && !(t.frame && t.args != nil) {
		t = t.parent
	}
	if t.vars == nil {
		t.vars = make(map[string]*variable)
	}
	if len(vals) == 0 {
		vals = []expand.Variable{unsetVar}
	}
	t.vars[name] = &variable{cands: vals}
}

func varLen(v expand.Variable) int {
	n := len(v.Str)
	for _, s := range v.List {
		n += len(s)
	}
	return n
}

func isPositional(name string) bool {
	return name == "@" || name == "*" || name == "#" || isDigits(name)
}

// positional returns the value of $0, $1…, $@, $* or $#.
func (st *state) positional(name string) expand.Variable {
	var p *positional
	for s := st; s != nil && p == nil; s = s.parent {
		p = s.args
	}
	if p == nil {
		p = &positional{zero: "sh"}
	}
	if name == "0" {
		return expand.Variable{Set: true, Kind: expand.String, Str: p.zero}
	}
	if p.opaque {
		if name == "@" || name == "*" {
			return expand.Variable{Set: true, Kind: expand.Indexed, List: []string{string(markOpaque)}}
		}
		return opaqueVar
	}
	switch name {
	case "@", "*":
		return expand.Variable{Set: true, Kind: expand.Indexed, List: p.list}
	case "#":
		return expand.Variable{Set: true, Kind: expand.String, Str: strconv.Itoa(len(p.list))}
	}
	n, err := strconv.Atoi(name)
	if err != nil || n < 1 || n > len(p.list) {
		return unsetVar
	}
	return expand.Variable{Set: true, Kind: expand.String, Str: p.list[n-1]}
}

// setArgs replaces the positional parameters ($0 stays).
func (st *state) setArgs(list []string, opaque bool) {
	zero := st.positional("0").Str
	st.args = &positional{zero: zero, list: list, opaque: opaque}
}

func (st *state) function(name string) *syntax.FuncDecl {
	for s := st; s != nil; s = s.parent {
		if f, ok := s.funcs[name]; ok {
			return f
		}
	}
	return nil
}

// defineFunc defines (or, with a nil f, removes) a function in the shell,
// whatever frame it is run from.
func (st *state) defineFunc(name string, f *syntax.FuncDecl) {
	t := st
	for t.frame && t.parent != nil {
		t = t.parent
	}
	if t.funcs == nil {
		t.funcs = make(map[string]*syntax.FuncDecl)
	}
	t.funcs[name] = f
}

// cwds returns the candidate working directories. A directory is an
// absolute path (possibly a glob), markHome and a path below the home
// directory, "" for the workspace or a directory the operator's environment
// names (benign), or markUnknown.
func (st *state) cwds() []word {
	for s := st; s != nil; s = s.parent {
		if s.cwd != nil {
			return s.cwd
		}
	}
	return []word{{}}
}

func (st *state) oldpwds() []word {
	for s := st; s != nil; s = s.parent {
		if s.oldpwd != nil {
			return s.oldpwd
		}
	}
	return []word{{}}
}

func (st *state) shell() *state {
	t := st
	for t.frame && t.parent != nil {
		t = t.parent
	}
	return t
}

// chdir makes dirs the working directory, and PWD and OLDPWD follow.
func (st *state) chdir(dirs []word) {
	dirs = dedupeWords(dirs)
	if len(dirs) > maxValues {
		dirs = []word{{s: string(markUnknown)}}
	}
	t := st.shell()
	t.oldpwd = st.cwds()
	t.cwd = dirs
	st.set("OLDPWD", dirValues(t.oldpwd), true)
	st.set("PWD", dirValues(dirs), true)
}

// dirValues are the values of $PWD for candidate directories.
func dirValues(dirs []word) []expand.Variable {
	vals := make([]expand.Variable, 0, len(dirs))
	for _, d := range dirs {
		switch {
		case d.s == "":
			vals = append(vals, opaqueVar)
		case d.glob || strings.IndexByte(d.s, markUnknown) >= 0:
			vals = append(vals, unknownVar)
		default:
			vals = append(vals, expand.Variable{Set: true, Exported: true, Kind: expand.String, Str: d.s})
		}
	}
	return vals
}

func dedupeWords(ws []word) []word {
	out := ws[:0:0]
	for _, w := range ws {
		if !slices.ContainsFunc(out, func(o word) bool { return o.s == w.s && o.glob == w.glob }) {
			out = append(out, w)
		}
	}
	return out
}

// merge folds into st what the branches changed: each changed variable and
// the working directory may afterwards hold what a branch left, or, with
// keep (when no branch need run), what st held. It reports whether st
// changed.
func (st *state) merge(keep bool, branches ...*state) bool {
	changed := false
	seen := map[string]bool{}
	for _, b := range branches {
		if b == nil {
			continue
		}
		for name := range b.vars {
			if seen[name] {
				continue
			}
			seen[name] = true
			old := st.cands(name)
			var union []expand.Variable
			if keep {
				union = append(union, old...)
			}
			exported := false
			for _, o := range branches {
				if o == nil {
					continue
				}
				if v := o.vars[name]; v != nil {
					union = appendVars(union, v.cands)
					exported = exported || v.exported
				} else {
					union = appendVars(union, old)
				}
			}
			union = appendVars(nil, union)
			if !sameVars(union, old) {
				st.set(name, union, exported)
				changed = true
			}
		}
		for name, f := range b.funcs {
			st.defineFunc(name, f)
		}
		if b.args != nil {
			st.args = b.args
		}
		if b.anyVar && !st.anyVar {
			st.anyVar = true
			changed = true
		}
	}
	t := st.shell()
	if d, ok := mergeDirs(keep, branches, st.cwds(), func(s *state) []word { return s.cwd }); ok {
		changed = changed || len(d) != len(st.cwds())
		t.cwd = d
	}
	if d, ok := mergeDirs(keep, branches, st.oldpwds(), func(s *state) []word { return s.oldpwd }); ok {
		t.oldpwd = d
	}
	return changed
}

// mergeDirs merges candidate directories like merge merges variables; ok
// is false if no branch changed them.
func mergeDirs(keep bool, branches []*state, cur []word, own func(*state) []word) (dirs []word, ok bool) {
	for _, b := range branches {
		ok = ok || b != nil && own(b) != nil
	}
	if !ok {
		return nil, false
	}
	if keep {
		dirs = append(dirs, cur...)
	}
	for _, b := range branches {
		if b == nil {
			continue
		}
		if d := own(b); d != nil {
			dirs = append(dirs, d...)
		} else {
			dirs = append(dirs, cur...)
		}
	}
	dirs = dedupeWords(dirs)
	if len(dirs) > maxValues {
		dirs = []word{{s: string(markUnknown)}}
	}
	return dirs, true
}

// appendVars appends the values of add that vals lacks.
func appendVars(vals, add []expand.Variable) []expand.Variable {
	for _, v := range add {
		if !slices.ContainsFunc(vals, func(o expand.Variable) bool { return sameVar(o, v) }) {
			vals = append(vals, v)
		}
	}
	return vals
}

func sameVar(a, b expand.Variable) bool {
	return a.Set == b.Set && a.Kind == b.Kind && a.Str == b.Str && slices.Equal(a.List, b.List)
}

func sameVars(a, b []expand.Variable) bool {
	return len(a) == len(b) && len(appendVars(slices.Clip(a), b)) == len(a)
}
