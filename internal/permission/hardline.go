package permission

import (
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// Bounds of the hardline analysis. Every command is analysed in time linear
// in its length times these constants; a command that would need more is
// denied, with a reason that says so.
const (
	// MaxCommandLen is the longest shell command the floor analyses; a longer
	// one is denied.
	MaxCommandLen = 64 << 10
	maxDepth      = 16      // nesting of substitutions, shell -c bodies, expansions and function calls
	maxWork       = 1 << 20 // bytes parsed and expanded, over all nested scripts
	maxSteps      = 1 << 20 // words of simple commands analysed, wrapper branches and loop passes included
	maxBraceWords = 1024    // words one brace expansion may produce
	maxValues     = 64      // candidate values of one variable, and combinations of them a command is analysed with
)

// analyzer holds the state of one hardline check.
type analyzer struct {
	reason string // the first reason to deny; "" while none
	work   int
	steps  int
	active map[*syntax.FuncDecl]bool // functions being analysed, against recursion
	parser *syntax.Parser
}

func (a *analyzer) deny(reason string) {
	if a.reason == "" {
		a.reason = reason
	}
}

// parsers are bash parsers, reused: building one costs more than parsing a
// short command.
var parsers = sync.Pool{New: func() any {
	return syntax.NewParser(syntax.Variant(syntax.LangBash), syntax.KeepComments(false))
}}

// hardline returns why the floor denies the shell command, or "" if it does
// not. A failure of the analysis itself (a panic) denies: the floor fails
// closed.
func hardline(command string) (reason string) {
	defer func() {
		if r := recover(); r != nil {
			reason = "command could not be analysed (internal error), so it is denied"
		}
	}()
	return analyse(command)
}

// analyse is hardline without the recovery, for the fuzz tests.
func analyse(command string) string {
	if len(command) > MaxCommandLen {
		return "command is longer than " + strconv.Itoa(MaxCommandLen) + " bytes, too long to analyse"
	}
	a := analyzer{parser: parsers.Get().(*syntax.Parser)}
	defer parsers.Put(a.parser)
	if stmts, ok := a.parse(clean(command), "command"); ok {
		a.stmts(stmts, newRoot(), 0)
	}
	return a.reason
}

// parse parses src as a bash script, charging its length to the work
// budget. A script that does not parse is denied: the shell would run the
// commands before the error, and the floor would not know them. what names
// the script for the reason.
func (a *analyzer) parse(src, what string) ([]*syntax.Stmt, bool) {
	if a.charge(len(src)) {
		return nil, false
	}
	var r io.Reader = strings.NewReader(src)
	if len(src) > parseCheckLen {
		r = newDepthReader(src)
	}
	f, err := a.parser.Parse(r, "")
	if errors.Is(err, errTooDeep) {
		a.deny("command nests too deeply to analyse")
		return nil, false
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > 80 {
			msg = msg[:77] + "..."
		}
		a.deny(what + " does not parse as shell (" + msg + "), so it cannot be analysed")
		return nil, false
	}
	if strings.Contains(src, "$'") {
		decodeQuotes(f)
	}
	return f.Stmts, true
}

// The parser recurses once per level of nesting (parentheses,
// substitutions, quotes, compound commands) without a limit, and its time
// grows faster than the depth: thousands of levels in 64 KiB take seconds.
// The floor denies nesting deeper than maxDepth anyway, so the reader that
// feeds a long script to the parser measures the parser's stack as it goes
// and stops it past maxParseFrames frames. A short script cannot nest deep
// enough to matter, and is read directly.
const (
	parseCheckLen  = 4 << 10 // longest script parsed without the depth check
	maxParseFrames = 10000   // stack frames the parser may use (a few hundred levels of nesting)
)

var errTooDeep = errors.New("nesting too deep")

// depthReader hands the parser its script 1 KiB at a time, and stops it
// with errTooDeep once its stack is deeper than maxParseFrames (counted
// from where the reader was made).
type depthReader struct {
	s    string
	base int
	pcs  []uintptr
}

func newDepthReader(s string) *depthReader {
	r := &depthReader{s: s, pcs: make([]uintptr, 64)}
	for {
		r.base = runtime.Callers(0, r.pcs)
		if r.base < len(r.pcs) {
			break
		}
		r.pcs = make([]uintptr, 2*len(r.pcs))
	}
	r.pcs = make([]uintptr, r.base+maxParseFrames+1)
	return r
}

func (r *depthReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	if runtime.Callers(0, r.pcs) > r.base+maxParseFrames {
		return 0, errTooDeep
	}
	n := copy(p[:min(len(p), 1<<10)], r.s)
	r.s = r.s[n:]
	return n, nil
}

// text analyses s as a script run in state st: a shell's -c body, eval's
// arguments, a here-document fed to a shell…
func (a *analyzer) text(s string, st *state, depth int) {
	if a.reason != "" || strings.TrimSpace(s) == "" {
		return
	}
	if depth > maxDepth {
		a.deny("command nests shells too deeply to analyse")
		return
	}
	if stmts, ok := a.parse(s, "a script the command runs"); ok {
		a.stmts(stmts, st, depth)
	}
}

// cmdCtx is where a simple command runs: its state, its statement (whose
// redirections feed its standard input) and the statement before it in a
// pipeline.
type cmdCtx struct {
	st      *state
	depth   int
	stmt    *syntax.Stmt
	prev    *syntax.Stmt
	xargs   bool // the words are an xargs command template
	scratch bool // st is a state of its own, for a process the command started
}

func (a *analyzer) stmts(list []*syntax.Stmt, st *state, depth int) {
	for _, s := range list {
		if a.reason != "" {
			return
		}
		a.stmt(s, st, depth, nil)
	}
}

// step counts n steps and reports whether the analysis is over its bound
// (and so denied).
func (a *analyzer) step(n int) bool {
	a.steps += n
	if a.steps > maxSteps {
		a.deny("command is too complex to analyse")
	}
	return a.reason != ""
}

// stmt analyses one statement in state st; prev is the statement whose
// output it reads in a pipeline.
func (a *analyzer) stmt(s *syntax.Stmt, st *state, depth int, prev *syntax.Stmt) {
	if a.step(1) {
		return
	}
	if depth > maxDepth {
		a.deny("command nests too deeply to analyse")
		return
	}
	if s.Background || s.Coprocess || s.Disown {
		st = st.child()
	}
	a.redirects(s, st, depth)
	x := &cmdCtx{st: st, depth: depth, stmt: s, prev: prev}
	switch c := s.Cmd.(type) {
	case *syntax.CallExpr:
		a.call(c, x)
	case *syntax.Block:
		a.stmts(c.Stmts, st, depth)
	case *syntax.Subshell:
		a.stmts(c.Stmts, st.child(), depth)
	case *syntax.IfClause:
		a.ifClause(c, st, depth)
	case *syntax.WhileClause:
		a.loop(st, func(b *state) {
			a.stmts(c.Cond, b, depth)
			a.stmts(c.Do, b, depth)
		})
	case *syntax.ForClause:
		a.forClause(c, st, depth)
	case *syntax.CaseClause:
		a.subs(c.Word, st, depth)
		var branches []*state
		for _, item := range c.Items {
			for _, p := range item.Patterns {
				a.subs(p, st, depth)
			}
			b := st.child()
			a.stmts(item.Stmts, b, depth)
			branches = append(branches, b)
		}
		st.merge(true, branches...)
	case *syntax.BinaryCmd:
		a.binary(c, st, depth, prev)
	case *syntax.FuncDecl:
		a.funcDecl(c, st, depth)
	case *syntax.ArithmCmd:
		a.arith(st, depth, c.X)
	case *syntax.LetClause:
		for _, e := range c.Exprs {
			a.arith(st, depth, e)
		}
	case *syntax.TestClause:
		a.subs(c.X, st, depth)
	case *syntax.DeclClause:
		a.declare(c, st, depth)
	case *syntax.TimeClause:
		if c.Stmt != nil {
			a.stmt(c.Stmt, st, depth, prev)
		}
	case *syntax.CoprocClause:
		a.stmt(c.Stmt, st.child(), depth, nil)
	case *syntax.TestDecl:
		a.stmt(c.Body, st.child(), depth, nil)
	}
}

// subs analyses the command and process substitutions in n, each in a
// subshell of st.
func (a *analyzer) subs(n syntax.Node, st *state, depth int) {
	if n == nil || a.reason != "" {
		return
	}
	syntax.Walk(n, func(n syntax.Node) bool {
		if a.reason != "" {
			return false
		}
		var stmts []*syntax.Stmt
		switch n := n.(type) {
		case *syntax.CmdSubst:
			stmts = n.Stmts
		case *syntax.ProcSubst:
			stmts = n.Stmts
		default:
			return true
		}
		if depth+1 > maxDepth {
			a.deny("command nests substitutions too deeply to analyse")
			return false
		}
		a.stmts(stmts, st.child(), depth+1)
		return false
	})
}

// redirects analyses a statement's redirections: substitutions in them
// (also in here-documents that are not quoted) and writes to raw block
// devices or to /proc/sysrq-trigger.
func (a *analyzer) redirects(s *syntax.Stmt, st *state, depth int) {
	for _, r := range s.Redirs {
		a.subs(r, st, depth)
		if a.reason != "" || !isWriteRedir(r.Op) || r.Word == nil {
			continue
		}
		a.eachWorld(st, depth, []syntax.Node{r.Word}, func(e *expansion) {
			for _, t := range e.words([]*syntax.Word{r.Word}) {
				if r.Op == syntax.DplOut && (t.s == "-" || isDigits(t.s)) {
					continue // >&2 duplicates a descriptor
				}
				if dev, unknown := rawDevice(t, st.cwds()); dev != "" {
					if unknown {
						a.deny("write to " + dev + " (redirection " + r.Op.String() + "), treated as unknown and denied")
					} else {
						a.deny("write to raw block device " + dev + " (redirection " + r.Op.String() + ")")
					}
					return
				}
				if isSysrq(t, st.cwds()) {
					a.deny("write to /proc/sysrq-trigger (can reboot or halt the system)")
					return
				}
			}
		})
	}
}

func isWriteRedir(op syntax.RedirOperator) bool {
	switch op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrClob, syntax.AppClob, syntax.RdrAll, syntax.RdrAllClob,
		syntax.AppAll, syntax.AppAllClob, syntax.RdrInOut, syntax.DplOut:
		return true
	}
	return false
}

func (a *analyzer) ifClause(c *syntax.IfClause, st *state, depth int) {
	a.stmts(c.Cond, st, depth)
	then := st.child()
	a.stmts(c.Then, then, depth)
	var els *state
	if c.Else != nil {
		els = st.child()
		a.ifClause(c.Else, els, depth)
	}
	st.merge(els == nil, then, els)
}

// loop analyses a loop's body, which may run any number of times: once,
// and once more if the first pass changed what the next would see.
func (a *analyzer) loop(st *state, body func(b *state)) {
	for range 2 {
		b := st.child()
		body(b)
		if a.reason != "" || !st.merge(true, b) {
			return
		}
	}
}

func (a *analyzer) forClause(c *syntax.ForClause, st *state, depth int) {
	switch l := c.Loop.(type) {
	case *syntax.WordIter:
		var vals []expand.Variable
		if l.InPos.IsValid() {
			a.subs(&syntax.CallExpr{Args: l.Items}, st, depth)
			a.eachWorld(st, depth, wordNodes(l.Items), func(e *expansion) {
				for _, w := range e.words(l.Items) {
					vals = appendVars(vals, []expand.Variable{stringVar(valueOf(w))})
				}
			})
			if c.Select {
				vals = appendVars(vals, []expand.Variable{stringVar("")})
			}
		} else { // for x; do: the positional parameters
			p := st.positional("@")
			for _, s := range p.List {
				vals = appendVars(vals, []expand.Variable{stringVar(s)})
			}
		}
		a.loop(st, func(b *state) {
			if len(vals) > 0 {
				b.set(l.Name.Value, vals, false)
			}
			a.stmts(c.Do, b, depth)
		})
	case *syntax.CStyleLoop:
		a.arith(st, depth, l.Init)
		a.loop(st, func(b *state) {
			a.arith(b, depth, l.Cond)
			a.stmts(c.Do, b, depth)
			a.arith(b, depth, l.Post)
		})
	}
}

// stringVar is a string variable's value.
func stringVar(s string) expand.Variable {
	return expand.Variable{Set: true, Kind: expand.String, Str: s}
}

// valueOf is the value a field leaves in a variable: a glob that the shell
// expanded keeps its pattern, marked.
func valueOf(w word) string {
	if w.glob {
		return string(markGlob) + w.s
	}
	return w.s
}

func wordNodes(ws []*syntax.Word) []syntax.Node {
	nodes := make([]syntax.Node, len(ws))
	for i, w := range ws {
		nodes[i] = w
	}
	return nodes
}

// binary analyses && and || lists and pipelines.
func (a *analyzer) binary(c *syntax.BinaryCmd, st *state, depth int, prev *syntax.Stmt) {
	items := flatten(c, c.Op)
	switch c.Op {
	case syntax.AndStmt, syntax.OrStmt:
		// Each item after the first runs only if the ones before it ran (and
		// succeeded, or failed): analysing the rest of the list in a
		// branch at each step covers every place the list may stop.
		a.stmt(items[0], st, depth, prev)
		a.chain(items[1:], st, depth)
	default: // | and |&: each side runs in a subshell
		for i, s := range items {
			var p *syntax.Stmt
			if i > 0 {
				p = last(items[i-1])
			}
			a.stmt(s, st.child(), depth, p)
		}
	}
}

func (a *analyzer) chain(items []*syntax.Stmt, st *state, depth int) {
	if len(items) == 0 || a.reason != "" {
		return
	}
	b := st.child()
	a.stmt(items[0], b, depth, nil)
	a.chain(items[1:], b, depth)
	st.merge(true, b)
}

// flatten returns the statements of a left-nested list of one operator.
func flatten(c *syntax.BinaryCmd, op syntax.BinCmdOperator) []*syntax.Stmt {
	var items []*syntax.Stmt
	for {
		items = append(items, c.Y)
		x, ok := c.X.Cmd.(*syntax.BinaryCmd)
		if !ok || x.Op != op && !(isPipe(op) && isPipe(x.Op)) || c.X.Negated || c.X.Background || len(c.X.Redirs) > 0 {
			items = append(items, c.X)
			break
		}
		c = x
	}
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	return items
}

func isPipe(op syntax.BinCmdOperator) bool { return op == syntax.Pipe || op == syntax.PipeAll }

// last returns the statement that writes a pipeline stage's output.
func last(s *syntax.Stmt) *syntax.Stmt {
	for {
		b, ok := s.Cmd.(*syntax.BinaryCmd)
		if !ok {
			return s
		}
		s = b.Y
	}
}

// arith evaluates an arithmetic command for its substitutions and
// assignments.
func (a *analyzer) arith(st *state, depth int, x syntax.ArithmExpr) {
	if x == nil {
		return
	}
	a.subs(x, st, depth)
	var sets []map[string]expand.Variable
	any := false
	a.eachWorld(st, depth, []syntax.Node{&syntax.ArithmExp{X: x}}, func(e *expansion) {
		if e.arithKnown(x) {
			func() {
				defer func() { _ = recover() }()
				_, _ = expand.Arithm(&e.cfg, x)
			}()
		} else {
			// Unknown: so are the variables it assigns.
			syntax.Walk(x, func(n syntax.Node) bool {
				if b, ok := n.(*syntax.BinaryArithm); ok && isArithAssign(b.Op) {
					if w, ok := b.X.(*syntax.Word); ok {
						_ = e.env.Set(w.Lit(), unknownVar)
					}
				}
				if u, ok := n.(*syntax.UnaryArithm); ok && (u.Op == syntax.Inc || u.Op == syntax.Dec) {
					if w, ok := u.X.(*syntax.Word); ok {
						_ = e.env.Set(w.Lit(), unknownVar)
					}
				}
				return true
			})
		}
		sets = append(sets, e.env.sets)
		any = any || e.env.anySet
	})
	a.record(st, sets, any)
}

func isArithAssign(op syntax.BinAritOperator) bool {
	switch op {
	case syntax.Assgn, syntax.AddAssgn, syntax.SubAssgn, syntax.MulAssgn, syntax.QuoAssgn, syntax.RemAssgn,
		syntax.AndAssgn, syntax.OrAssgn, syntax.XorAssgn, syntax.ShlAssgn, syntax.ShrAssgn:
		return true
	}
	return false
}

// record sets in st the variables that expansions assigned, one map per
// combination of values: each may hold what any combination left, or what
// it held if some combination did not assign it.
func (a *analyzer) record(st *state, sets []map[string]expand.Variable, any bool) {
	if any {
		st.taintAll()
	}
	names := map[string]bool{}
	for _, m := range sets {
		for name := range m {
			names[name] = true
		}
	}
	for name := range names {
		var vals []expand.Variable
		for _, m := range sets {
			if v, ok := m[name]; ok {
				vals = appendVars(vals, []expand.Variable{v})
			} else {
				vals = appendVars(vals, st.cands(name))
			}
		}
		st.set(name, vals, false)
	}
}

// call analyses a simple command: its substitutions, its assignments, and
// the command it runs, once for each combination of the values of the
// variables it uses.
func (a *analyzer) call(c *syntax.CallExpr, x *cmdCtx) {
	if len(c.Assigns) == 0 {
		if ws, ok := plainWords(c.Args); ok { // nothing to expand
			a.simple(ws, x)
			return
		}
	}
	a.subs(c, x.st, x.depth)
	if a.reason != "" {
		return
	}
	var sets []map[string]expand.Variable
	any := false
	a.eachWorld(x.st, x.depth, []syntax.Node{c}, func(e *expansion) {
		words := e.words(c.Args)
		prefix := a.assigns(e, c.Assigns)
		if e.aborted || a.reason != "" {
			return
		}
		if len(words) == 0 { // assignments only: they stay
			sets = append(sets, e.env.sets)
			any = any || e.env.anySet
			return
		}
		// Assignments before a command are its environment only (its own
		// words were expanded before them, as bash does).
		y := *x
		if len(prefix) > 0 {
			frame := &state{parent: x.st, frame: true, vars: map[string]*variable{}}
			for _, name := range prefix {
				frame.vars[name] = &variable{cands: []expand.Variable{e.env.sets[name]}, exported: true}
				delete(e.env.sets, name)
			}
			y.st = frame
		}
		sets = append(sets, e.env.sets)
		any = any || e.env.anySet
		a.simple(words, &y)
	})
	a.record(x.st, sets, any)
}

// plainWords returns the fields of words that expansion leaves as they are.
func plainWords(args []*syntax.Word) ([]word, bool) {
	ws := make([]word, len(args))
	for i, w := range args {
		s, ok := plainLit(w)
		if !ok {
			return nil, false
		}
		ws[i] = word{s: s}
	}
	return ws, true
}

// assigns expands assignments into e's env, in order, and returns the names
// assigned.
func (a *analyzer) assigns(e *expansion, list []*syntax.Assign) []string {
	var names []string
	for _, as := range list {
		if as.Name == nil {
			continue
		}
		name := as.Name.Value
		v := a.assignValue(e, as)
		if err := e.env.Set(name, v); err == nil {
			names = append(names, name)
		}
	}
	return names
}

// assignValue returns the value an assignment gives its variable.
func (a *analyzer) assignValue(e *expansion, as *syntax.Assign) expand.Variable {
	old := e.env.get(as.Name.Value)
	switch {
	case as.Array != nil:
		var list []string
		for _, el := range as.Array.Elems {
			if el.Value == nil {
				continue
			}
			for _, w := range e.words([]*syntax.Word{el.Value}) {
				list = append(list, valueOf(w))
			}
		}
		if as.Append && old.Kind == expand.Indexed {
			list = append(append([]string(nil), old.List...), list...)
		}
		return expand.Variable{Set: true, Kind: expand.Indexed, List: list}
	case as.Index != nil:
		// One element of an array: the array keeps what the floor can say.
		if old.Kind != expand.Indexed {
			return unknownVar
		}
		return expand.Variable{Set: true, Kind: expand.Indexed, List: append(append([]string(nil), old.List...), e.literal(as.Value))}
	}
	v := e.literal(as.Value)
	if as.Append {
		if !old.Set {
			old.Str = ""
		} else if old.Kind != expand.String {
			return unknownVar
		}
		v = old.Str + v
	}
	return stringVar(v)
}

// declare analyses export, declare, local, readonly, typeset and nameref.
func (a *analyzer) declare(c *syntax.DeclClause, st *state, depth int) {
	a.subs(c, st, depth)
	variant := c.Variant.Value
	var sets []map[string]expand.Variable
	var locals []string
	exported := variant == "export"
	any := false
	a.eachWorld(st, depth, []syntax.Node{c}, func(e *expansion) {
		nameref := false
		for _, as := range c.Args {
			switch {
			case as.Name == nil && as.Value != nil: // an option, or a word that expands to NAME=VALUE
				for _, w := range e.words([]*syntax.Word{as.Value}) {
					switch {
					case strings.HasPrefix(w.s, "-") || strings.HasPrefix(w.s, "+"):
						nameref = nameref || strings.IndexByte(w.s, 'n') > 0 && w.s[0] == '-'
						exported = exported || strings.IndexByte(w.s, 'x') > 0 && w.s[0] == '-'
						if strings.ContainsAny(w.s, "fF") {
							return // functions
						}
					case isAssignment(w.s):
						name, value, _ := strings.Cut(w.s, "=")
						_ = e.env.Set(strings.TrimSuffix(name, "+"), stringVar(value))
					case !syntax.ValidName(w.s):
						e.env.anySet = true
					}
				}
			case as.Name != nil && !as.Naked:
				v := a.assignValue(e, as)
				if nameref && v.Kind == expand.String {
					v.Kind = expand.NameRef
				}
				_ = e.env.Set(as.Name.Value, v)
				if variant == "local" {
					locals = append(locals, as.Name.Value)
				}
			case as.Name != nil && variant == "local":
				locals = append(locals, as.Name.Value)
			}
		}
		sets = append(sets, e.env.sets)
		any = any || e.env.anySet
	})
	for _, name := range locals {
		st.local(name, nil)
	}
	a.record(st, sets, any)
	if exported {
		for _, as := range c.Args {
			if as.Name != nil {
				st.set(as.Name.Value, st.cands(as.Name.Value), true)
			}
		}
	}
}

// funcDecl defines a function, checks it for a fork bomb, and analyses its
// body once with unknown arguments (calls analyse it again with theirs).
func (a *analyzer) funcDecl(f *syntax.FuncDecl, st *state, depth int) {
	if f.Name == nil || f.Body == nil {
		return
	}
	st.defineFunc(f.Name.Value, f)
	a.forkBomb(f)
	if a.reason != "" || a.active[f] {
		return
	}
	frame := &state{parent: st.child(), frame: true, args: &positional{zero: st.positional("0").Str, opaque: true}}
	a.enter(f, func() { a.stmt(f.Body, frame, depth+1, nil) })
}

// enter runs fn with f marked as being analysed.
func (a *analyzer) enter(f *syntax.FuncDecl, fn func()) {
	if a.active == nil {
		a.active = make(map[*syntax.FuncDecl]bool)
	}
	a.active[f] = true
	defer delete(a.active, f)
	fn()
}

// callFunc analyses a function's body with its arguments as $1…, $@ and
// $*. A function already being analysed (recursion) is not analysed again.
func (a *analyzer) callFunc(f *syntax.FuncDecl, args []word, x *cmdCtx) {
	if a.active[f] {
		return
	}
	if x.depth+1 > maxDepth {
		a.deny("command nests function calls too deeply to analyse")
		return
	}
	list := make([]string, len(args))
	for i, w := range args {
		list[i] = valueOf(w)
	}
	frame := &state{parent: x.st, frame: true, args: &positional{zero: x.st.positional("0").Str, list: list}}
	a.enter(f, func() { a.stmt(f.Body, frame, x.depth+1, nil) })
}

// forkBomb denies a function that runs itself in a pipeline or in the
// background: ":(){ :|:& };:", "f(){ f|f& };f", "function f { f & f; }".
func (a *analyzer) forkBomb(f *syntax.FuncDecl) {
	name := f.Name.Value
	var visit func(s *syntax.Stmt, spawned bool) bool
	visitAll := func(list []*syntax.Stmt, spawned bool) bool {
		for _, s := range list {
			if visit(s, spawned) {
				return true
			}
		}
		return false
	}
	visit = func(s *syntax.Stmt, spawned bool) bool {
		if s == nil {
			return false
		}
		spawned = spawned || s.Background || s.Coprocess
		switch c := s.Cmd.(type) {
		case *syntax.CallExpr:
			return spawned && len(c.Args) > 0 && c.Args[0].Lit() == name
		case *syntax.BinaryCmd:
			p := spawned || isPipe(c.Op)
			return visit(c.X, p) || visit(c.Y, p)
		case *syntax.Block:
			return visitAll(c.Stmts, spawned)
		case *syntax.Subshell:
			return visitAll(c.Stmts, spawned)
		case *syntax.IfClause:
			for ; c != nil; c = c.Else {
				if visitAll(c.Cond, spawned) || visitAll(c.Then, spawned) {
					return true
				}
			}
		case *syntax.WhileClause:
			return visitAll(c.Cond, spawned) || visitAll(c.Do, spawned)
		case *syntax.ForClause:
			return visitAll(c.Do, spawned)
		case *syntax.CaseClause:
			for _, item := range c.Items {
				if visitAll(item.Stmts, spawned) {
					return true
				}
			}
		case *syntax.TimeClause:
			return visit(c.Stmt, spawned)
		case *syntax.CoprocClause:
			return visit(c.Stmt, true)
		}
		return false
	}
	if visit(f.Body, false) {
		a.deny("fork bomb (function " + name + " runs itself in a pipeline or in the background)")
	}
}

// isAssignment reports whether s is NAME=… or NAME+=….
func isAssignment(s string) bool {
	i := 0
	for i < len(s) && isNameByte(s[i]) {
		i++
	}
	if i == 0 || isDigit(s[0]) || i >= len(s) {
		return false
	}
	return s[i] == '=' || s[i] == '+' && i+1 < len(s) && s[i+1] == '='
}

func isNameByte(c byte) bool {
	return c == '_' || isLetter(c) || isDigit(c)
}
