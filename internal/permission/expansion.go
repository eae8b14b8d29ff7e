package permission

import (
	"errors"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// This file resolves shell words the way the shell would, with
// mvdan.cc/sh/v3/expand: parameter expansion in all its forms, tilde,
// brace, arithmetic and command substitution, quote removal, field splitting
// and globbing. The expand.Config it uses runs nothing and reads no file: its
// environment is the analysis' variables (state.go), a command substitution
// is resolved only when the floor knows what it prints (echo, printf,
// mktemp, pwd…), and a glob is kept as a pattern, which paths.go matches
// against the protected paths it knows. What cannot be resolved becomes
// markUnknown, which the floor denies wherever the value matters.

// Marks stand, in expanded values, for what the floor cannot spell out. The
// command's own bytes that would read as marks are replaced by markFree
// before it is parsed (clean), and so are those that escapes decode to
// ($'\x01', printf '\1'). Marks survive into text that is parsed again (the
// body of bash -c "rm -rf $HOME"), where they keep their meaning. A forged
// mark could only make the floor see a weird relative file name as a home
// directory, an unknown value (both denied) or an environment value (the
// real value is then the forged byte: a harmless relative name).
const (
	markHome    = '\x01' // at the start of a value: the home directory (~, ~user, $HOME)
	markUnknown = '\x02' // a value the floor cannot know: a command's output, a transformed or read value
	markOpaque  = '\x03' // the value of a variable from agentd's environment, set by the operator and not by the command
	markGlob    = '\x04' // the value is a glob pattern whose matches are not known (for f in /*)
	marks       = "\x01\x02\x03\x04"
	markFree    = 0x7f // what a command's bytes that read as marks become
)

// Further bounds of the analysis.
const (
	maxValueLen = MaxCommandLen // longest value a variable may hold; a longer one is unknown
	patternWork = 1 << 22       // value length times pattern length for ${x%pat} and ${x/pat/s}
)

// clean replaces the bytes of s that would read as marks (and NUL) with
// markFree.
func clean(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 7 {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = cleanByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

func cleanByte(c byte) byte {
	if c < 7 {
		return markFree
	}
	return c
}

// word is one field after expansion.
type word struct {
	s    string         // the value; marks stand for what is not known
	glob bool           // s is a pattern: it has an unquoted *, ?, [ or extended glob
	sub  []*syntax.Stmt // the raw word was one process substitution <(…): its script
}

// isUnknown reports whether the value of w is, in part, unknown.
func (w word) isUnknown() bool { return strings.IndexByte(w.s, markUnknown) >= 0 }

// show renders a word for a reason.
func show(w word) string {
	r := strings.NewReplacer(string(markHome), "~", string(markUnknown), "<unknown>", string(markOpaque), "<env>", string(markGlob), "")
	s := r.Replace(w.s)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// shellEnv is the expand.Environ of one expansion: the analysis' variables,
// with those in world fixed to one candidate each, and what the expansion
// itself assigns (${x:=v}, $((i++))). A tracking env (parent set) notes
// whether any value it hands out holds a mark.
type shellEnv struct {
	a      *analyzer
	st     *state
	world  map[string]expand.Variable
	sets   map[string]expand.Variable
	anySet bool // an assignment to a name that is not known
	parent *shellEnv
	taint  bool
	ignore map[string]int // reads not to count as taint, by name
}

var _ expand.WriteEnviron = (*shellEnv)(nil)

func (e *shellEnv) Get(name string) expand.Variable {
	v := e.get(name)
	if e.a.charge(varLen(v)) {
		return unknownVar
	}
	if e.parent != nil && name != "IFS" && varHasMark(v) {
		if e.ignore[name] > 0 {
			e.ignore[name]--
		} else {
			e.taint = true
		}
	}
	return v
}

func (e *shellEnv) get(name string) expand.Variable {
	if v, ok := e.sets[name]; ok {
		return v
	}
	if e.parent != nil {
		return e.parent.get(name)
	}
	if v, ok := e.world[name]; ok {
		return v
	}
	if user, ok := strings.CutPrefix(name, "HOME "); ok {
		// ~user: expand looks the home directory up here, never in the
		// system's user database.
		var dirs []word
		switch user {
		case "+":
			dirs = e.st.cwds()
		case "-":
			dirs = e.st.oldpwds()
		default:
			return homeVar
		}
		if v := dirValues(dirs); len(v) == 1 {
			return v[0]
		}
		return unknownVar
	}
	if c := e.st.cands(name); len(c) == 1 {
		return c[0]
	}
	return unknownVar
}

func (e *shellEnv) Set(name string, vr expand.Variable) error {
	if !syntax.ValidName(name) {
		e.anySet = true
		return nil
	}
	if e.sets == nil {
		e.sets = make(map[string]expand.Variable)
	}
	e.sets[name] = vr
	return nil
}

// Each lists no variable: the floor does not know which the environment
// holds, and ${!prefix*} is unknown (see param).
func (e *shellEnv) Each(func(string, expand.Variable) bool) {}

func varHasMark(v expand.Variable) bool {
	if strings.ContainsAny(v.Str, marks) {
		return true
	}
	for _, s := range v.List {
		if strings.ContainsAny(s, marks) {
			return true
		}
	}
	return false
}

// charge adds n bytes to the work of the analysis and reports whether it is
// over its bound (and so denied).
func (a *analyzer) charge(n int) bool {
	a.work += n
	if a.work > maxWork {
		a.deny("command expands to too much text to analyse")
		return true
	}
	return false
}

// expansion expands words with one shellEnv.
type expansion struct {
	a       *analyzer
	env     *shellEnv
	depth   int
	cfg     expand.Config
	aborted bool // ${x?} failed: the shell exits before running the command
}

func (a *analyzer) newExpansion(env *shellEnv, depth int) *expansion {
	e := &expansion{a: a, env: env, depth: depth}
	e.cfg = expand.Config{
		Env:       env,
		CmdSubst:  e.cmdSubst,
		ProcSubst: func(*syntax.ProcSubst) (string, error) { return "/dev/fd/63", nil },
		// No ReadDir2: expand globs nothing, and fields keep their
		// patterns, which fields recognises (globSource, isPattern) and
		// paths.go matches against the paths the floor knows. ExtGlob
		// keeps @(…) as text instead of failing.
		ExtGlob: true,
	}
	return e
}

// tracker returns an expansion of the same values whose env notes any mark
// it hands out, and where assignments go nowhere.
func (e *expansion) tracker() *expansion {
	return e.a.newExpansion(&shellEnv{a: e.a, st: e.env.st, parent: e.env}, e.depth)
}

// nested returns an expansion with the same env, for a command
// substitution's words (expand's Config is not reentrant).
func (e *expansion) nested() *expansion {
	return e.a.newExpansion(e.env, e.depth+1)
}

// dimension is a variable the words use that has several candidate values.
type dimension struct {
	name  string
	cands []expand.Variable
}

// eachWorld calls fn with an expansion for each combination of the
// candidate values of the variables nodes refer to (at most maxValues
// combinations; the variables beyond are unknown).
func (a *analyzer) eachWorld(st *state, depth int, nodes []syntax.Node, fn func(e *expansion)) {
	dims := a.dimensions(st, nodes)
	idx := make([]int, len(dims))
	for {
		if a.reason != "" {
			return
		}
		var world map[string]expand.Variable
		if len(dims) > 0 {
			world = make(map[string]expand.Variable, len(dims))
			for i, d := range dims {
				world[d.name] = d.cands[idx[i]]
			}
		}
		fn(a.newExpansion(&shellEnv{a: a, st: st, world: world}, depth))
		i := 0
		for ; i < len(dims); i++ {
			idx[i]++
			if idx[i] < len(dims[i].cands) {
				break
			}
			idx[i] = 0
		}
		if i == len(dims) {
			return
		}
	}
}

// dimensions finds the variables nodes refer to that have several
// candidate values. A variable from the environment that an expansion tests
// for being set (${x:-/}) may also be unset.
func (a *analyzer) dimensions(st *state, nodes []syntax.Node) []dimension {
	var dims []dimension
	seen := map[string]bool{}
	product := 1
	add := func(name string, tested bool) {
		key := name
		if tested {
			key += "?"
		}
		if seen[key] || name == "" {
			return
		}
		seen[key] = true
		cands := st.cands(name)
		if tested && len(cands) == 1 && cands[0].Set && strings.ContainsAny(cands[0].Str, marks) {
			cands = []expand.Variable{cands[0], unsetVar}
		}
		if i := slices.IndexFunc(dims, func(d dimension) bool { return d.name == name }); i >= 0 {
			if len(cands) > len(dims[i].cands) && product/len(dims[i].cands)*len(cands) <= maxValues {
				product = product / len(dims[i].cands) * len(cands)
				dims[i].cands = cands
			}
			return
		}
		if len(cands) < 2 || product*len(cands) > maxValues {
			return
		}
		product *= len(cands)
		dims = append(dims, dimension{name, cands})
	}
	var arith func(n syntax.Node)
	visit := func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.ParamExp:
			if n.Param != nil {
				add(n.Param.Value, n.Exp != nil && isDefaultOp(n.Exp.Op))
			}
			if n.Index != nil {
				arith(n.Index)
			}
			if n.Slice != nil {
				arith(n.Slice.Offset)
				arith(n.Slice.Length)
			}
		case *syntax.ArithmExp:
			arith(n.X)
			return false
		}
		return true
	}
	arith = func(n syntax.Node) {
		if n == nil {
			return
		}
		syntax.Walk(n, func(n syntax.Node) bool {
			if w, ok := n.(*syntax.Word); ok {
				if lit := w.Lit(); syntax.ValidName(lit) {
					add(lit, false)
				}
			}
			return visit(n)
		})
	}
	for _, n := range nodes {
		if n != nil {
			syntax.Walk(n, visit)
		}
	}
	return dims
}

// isDefaultOp reports whether op only tests whether the variable is set:
// ${x-v} ${x:-v} ${x+v} ${x:+v} ${x=v} ${x:=v} ${x?m} ${x:?m}.
func isDefaultOp(op syntax.ParExpOperator) bool {
	switch op {
	case syntax.AlternateUnset, syntax.AlternateUnsetOrNull, syntax.DefaultUnset, syntax.DefaultUnsetOrNull,
		syntax.ErrorUnset, syntax.ErrorUnsetOrNull, syntax.AssignUnset, syntax.AssignUnsetOrNull:
		return true
	}
	return false
}

// words expands command words into fields, as the shell does for a
// command's arguments.
func (e *expansion) words(ws []*syntax.Word) []word {
	out := make([]word, 0, len(ws))
	for _, w := range ws {
		out = e.word(w, out)
	}
	return out
}

// plainLit returns the value of a word that expansion leaves as it is but
// for quote removal: literal text without special characters, and quotes
// around such text. Most words are such, and skip expand.
func plainLit(w *syntax.Word) (string, bool) {
	if len(w.Parts) == 1 {
		if l, ok := w.Parts[0].(*syntax.Lit); ok { // the common case, without copying
			return l.Value, plainText(l.Value, true)
		}
	}
	var b strings.Builder
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.Lit:
			if !plainText(p.Value, true) {
				return "", false
			}
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			if p.Dollar {
				return "", false
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok || !plainText(l.Value, false) {
					return "", false
				}
				b.WriteString(l.Value)
			}
		default:
			return "", false
		}
	}
	return b.String(), true
}

// plainText reports whether literal text needs no expansion: no escape, and
// unquoted, no tilde, brace or glob character. A glob mark in it makes a
// pattern.
func plainText(s string, unquoted bool) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', markGlob:
			return false
		case '~', '*', '?', '[', '{':
			if unquoted {
				return false
			}
		}
	}
	return true
}

// word appends the fields of w to out.
func (e *expansion) word(w *syntax.Word, out []word) []word {
	a := e.a
	if a.reason != "" {
		return out
	}
	if s, ok := plainLit(w); ok {
		a.steps++
		return append(out, word{s: s})
	}
	if e.depth > maxDepth {
		a.deny("command nests expansions too deeply to analyse")
		return out
	}
	var sub []*syntax.Stmt
	if len(w.Parts) == 1 {
		if p, ok := w.Parts[0].(*syntax.ProcSubst); ok {
			sub = p.Stmts
		}
	}
	if varHasMark(e.env.get("IFS")) && splits(w.Parts) {
		// IFS is unknown: so is how the unquoted expansions split.
		return append(out, word{s: string(markUnknown)})
	}
	rw := e.rewrite(w, 0)
	ext := globSource(rw.Parts)
	bw := *rw
	if has, folded := braced(&bw); has {
		n := braceWords(bw.Parts)
		if n > maxBraceWords {
			a.deny("brace expansion of more than " + strconv.Itoa(maxBraceWords) + " words, too large to analyse")
			return out
		}
		for bw, err := range expand.BracesSeq(&e.cfg, &bw) {
			if err != nil {
				a.deny("brace expansion too large to analyse")
				return out
			}
			out = e.fields(bw, ext, sub, out)
		}
		return out
	} else if folded {
		rw = &bw
	}
	return e.fields(rw, ext, sub, out)
}

// globSource reports whether parts have what can make a field a pattern:
// an unquoted, unescaped *, ? or [, an extended glob, or an unquoted
// expansion (whose value is matched as a pattern).
func globSource(parts []syntax.WordPart) bool {
	for _, p := range parts {
		switch p := p.(type) {
		case *syntax.Lit:
			for i := 0; i < len(p.Value); i++ {
				switch p.Value[i] {
				case '\\':
					i++
				case '*', '?', '[':
					return true
				}
			}
		case *syntax.ExtGlob, *syntax.ParamExp, *syntax.CmdSubst, *syntax.ArithmExp:
			return true
		}
	}
	return false
}

// isPattern reports whether a field from a word with a glob source is a
// pattern: it has a *, ? or [, or an extended glob. It may take a quoted
// character for one, which matches more.
func isPattern(s string) bool {
	return strings.ContainsAny(s, "*?[") || strings.Contains(s, "(") && strings.ContainsAny(s, "@!+")
}

// fields appends the fields of w, a word without brace expansions, to out.
// src is whether w has a glob source.
func (e *expansion) fields(w *syntax.Word, src bool, sub []*syntax.Stmt, out []word) (res []word) {
	res = out
	defer func() {
		if r := recover(); r != nil { // a bug in expand: the value is unknown
			res = append(res, word{s: string(markUnknown), sub: sub})
		}
	}()
	for s, err := range expand.FieldsSeq(&e.cfg, w) {
		if err != nil {
			if errors.As(err, new(expand.UnsetParameterError)) {
				e.aborted = true
			} else {
				res = append(res, word{s: string(markUnknown), sub: sub})
			}
			break
		}
		f := word{s: s, glob: src && isPattern(s), sub: sub}
		if strings.IndexByte(s, markGlob) >= 0 {
			f.s, f.glob = strings.ReplaceAll(s, string(markGlob), ""), true
		}
		e.a.steps++
		if e.a.charge(len(f.s)) {
			return res
		}
		res = append(res, f)
	}
	return res
}

// literal expands w as the value of an assignment: one field, no splitting
// or globbing.
func (e *expansion) literal(w *syntax.Word) (s string) {
	if w == nil {
		return ""
	}
	if s, ok := plainLit(w); ok {
		return s
	}
	defer func() {
		if r := recover(); r != nil {
			s = string(markUnknown)
		}
	}()
	s, err := expand.Literal(&e.cfg, e.rewrite(w, 0))
	if err != nil {
		if errors.As(err, new(expand.UnsetParameterError)) {
			e.aborted = true
		}
		return string(markUnknown)
	}
	if e.a.charge(len(s)) {
		return string(markUnknown)
	}
	return s
}

// document expands a here-document body.
func (e *expansion) document(w *syntax.Word) (s string) {
	defer func() {
		if r := recover(); r != nil {
			s = string(markUnknown)
		}
	}()
	s, err := expand.Document(&e.cfg, e.rewrite(w, 0))
	if err != nil {
		return string(markUnknown)
	}
	return s
}

// splits reports whether parts have an unquoted expansion, whose value is
// split into fields.
func splits(parts []syntax.WordPart) bool {
	for _, p := range parts {
		switch p.(type) {
		case *syntax.ParamExp, *syntax.CmdSubst, *syntax.ProcSubst:
			return true
		}
	}
	return false
}

// rewrite returns w with each expansion whose value cannot be worked out
// from known values replaced by markUnknown. w is not changed.
func (e *expansion) rewrite(w *syntax.Word, depth int) *syntax.Word {
	if parts, ok := e.rewriteParts(w.Parts, depth); ok {
		return &syntax.Word{Parts: parts}
	}
	return w
}

var unknownLit = &syntax.Lit{Value: string(markUnknown)}

func (e *expansion) rewriteParts(parts []syntax.WordPart, depth int) ([]syntax.WordPart, bool) {
	var out []syntax.WordPart
	for i, p := range parts {
		np := p
		switch p := p.(type) {
		case *syntax.DblQuoted:
			if qp, ok := e.rewriteParts(p.Parts, depth); ok {
				q := *p
				q.Parts = qp
				np = &q
			}
		case *syntax.ParamExp:
			np = e.param(p, depth)
		case *syntax.ArithmExp:
			if !e.arithKnown(p.X) {
				np = unknownLit
			}
		}
		if np != p && out == nil {
			out = slices.Clone(parts[:i])
		}
		if out != nil {
			out = append(out, np)
		}
	}
	return out, out != nil
}

// param returns pe, or markUnknown when its value is not known.
//
// A plain reference ($x, "${a[@]}", $1) and the operators that only test
// whether it is set (${x:-w}, ${x:=w}…) pass values through, marks
// included: the floor sees what they may be. Any other operator transforms
// the value (${x%%pat}, ${x/a/b}, ${x:1:2}, ${#x}, ${!x}, ${x^^}, ${x@E}):
// expand computes it when every value involved is known, and otherwise it is
// unknown. ${HOME%/*} is unknown, for example, not "~".
func (e *expansion) param(pe *syntax.ParamExp, depth int) syntax.WordPart {
	if depth > maxDepth || pe.Param == nil || pe.Flags != nil || pe.NestedParam != nil || pe.Width || pe.IsSet ||
		pe.Names != 0 || len(pe.Modifiers) > 0 || pe.Split != 0 || pe.GlobSubst != 0 || pe.RcExpand != 0 {
		return unknownLit
	}
	q := *pe
	changed := false
	if pe.Exp != nil && pe.Exp.Word != nil {
		if w := e.rewrite(pe.Exp.Word, depth+1); w != pe.Exp.Word {
			x := *pe.Exp
			x.Word = w
			q.Exp, changed = &x, true
		}
	}
	if pe.Repl != nil {
		r := *pe.Repl
		if r.Orig != nil {
			r.Orig = e.rewrite(r.Orig, depth+1)
		}
		if r.With != nil {
			r.With = e.rewrite(r.With, depth+1)
		}
		if r.Orig != pe.Repl.Orig || r.With != pe.Repl.With {
			q.Repl, changed = &r, true
		}
	}
	simpleIndex := pe.Index == nil
	if w, ok := pe.Index.(*syntax.Word); ok {
		lit := w.Lit()
		simpleIndex = lit == "@" || lit == "*" || isDigits(lit)
	}
	if simpleIndex && !pe.Excl && !pe.Length && pe.Slice == nil && pe.Repl == nil && (pe.Exp == nil || isDefaultOp(pe.Exp.Op)) {
		if changed {
			return &q
		}
		return pe
	}
	if !e.transformable(&q) {
		return unknownLit
	}
	if changed {
		return &q
	}
	return pe
}

// transformable reports whether expand can compute the transforming
// expansion pe from known values, within the bounds.
func (e *expansion) transformable(pe *syntax.ParamExp) (ok bool) {
	if !plainArith(pe.Index) || pe.Slice != nil && (!plainArith(pe.Slice.Offset) || !plainArith(pe.Slice.Length)) {
		return false
	}
	if pe.Exp != nil && pe.Exp.Op == syntax.OtherParamOps {
		switch pe.Exp.Word.Lit() {
		case "Q", "U", "u", "L", "a", "A", "K", "k":
		default: // E and P decode escapes and prompts; the rest is not bash
			return false
		}
	} else if pe.Exp != nil && !isPatternOp(pe.Exp.Op) {
		return false
	}
	n := varLen(e.env.get(pe.Param.Value))
	if pe.Excl {
		n = maxValueLen
	}
	switch {
	case pe.Repl != nil:
		orig, with := e.measure(pe.Repl.Orig), e.measure(pe.Repl.With)
		if n*(orig+1) > patternWork || n*(with+1) > maxValueLen {
			return false
		}
	case pe.Exp != nil && pe.Exp.Op != syntax.OtherParamOps:
		if n*(e.measure(pe.Exp.Word)+1) > patternWork {
			return false
		}
	}
	if litHasMark(pe) {
		return false
	}
	t := e.tracker()
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	s, err := expand.Literal(&t.cfg, &syntax.Word{Parts: []syntax.WordPart{pe}})
	return err == nil && !t.env.taint && !strings.ContainsAny(s, marks)
}

func isPatternOp(op syntax.ParExpOperator) bool {
	switch op {
	case syntax.RemSmallSuffix, syntax.RemLargeSuffix, syntax.RemSmallPrefix, syntax.RemLargePrefix,
		syntax.UpperFirst, syntax.UpperAll, syntax.LowerFirst, syntax.LowerAll:
		return true
	}
	return false
}

// measure returns the length of w's value (an operand of a transforming
// expansion), or a length over every bound if it cannot be computed.
func (e *expansion) measure(w *syntax.Word) (n int) {
	if w == nil {
		return 0
	}
	defer func() {
		if recover() != nil {
			n = patternWork
		}
	}()
	s, err := expand.Literal(&e.tracker().cfg, w)
	if err != nil {
		return patternWork
	}
	return len(s)
}

// plainArith reports whether an arithmetic expression (an index, an
// offset) refers to variables only plainly, so that evaluating it costs
// little.
func plainArith(x syntax.ArithmExpr) bool {
	if x == nil {
		return true
	}
	ok := true
	syntax.Walk(x, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.ParamExp:
			ok = ok && n.Param != nil && !n.Excl && !n.Length && !n.Width && n.Index == nil && n.Slice == nil &&
				n.Repl == nil && n.Exp == nil && n.Names == 0
		case *syntax.CmdSubst, *syntax.ProcSubst:
			ok = false
		}
		return ok
	})
	return ok
}

// litHasMark reports whether the literal text of n holds a mark (text
// parsed again, with values in it).
func litHasMark(n syntax.Node) bool {
	found := false
	syntax.Walk(n, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.Lit:
			found = found || strings.ContainsAny(n.Value, marks)
		case *syntax.SglQuoted:
			found = found || strings.ContainsAny(n.Value, marks)
		}
		return !found
	})
	return found
}

// arithKnown reports whether expand can evaluate the arithmetic expression
// from known values. A name or value it cannot know (bash reads a value that
// is not a number as a name, recursively) makes it unknown.
func (e *expansion) arithKnown(x syntax.ArithmExpr) (ok bool) {
	if x == nil {
		return true
	}
	ok = true
	syntax.Walk(x, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.ParamExp:
			ok = ok && plainArith(&syntax.Word{Parts: []syntax.WordPart{n}})
		case *syntax.Lit:
			ok = ok && !strings.ContainsAny(n.Value, marks)
		}
		return ok
	})
	if !ok {
		return false
	}
	t := e.tracker()
	// x = v reads x before assigning it: that value does not matter.
	syntax.Walk(x, func(n syntax.Node) bool {
		if b, ok := n.(*syntax.BinaryArithm); ok && b.Op == syntax.Assgn {
			if w, ok := b.X.(*syntax.Word); ok {
				if t.env.ignore == nil {
					t.env.ignore = map[string]int{}
				}
				t.env.ignore[w.Lit()]++
			}
		}
		return true
	})
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := expand.Arithm(&t.cfg, x)
	return err == nil && !t.env.taint && !t.env.anySet
}

// braced splits the brace expansions of w (in place) and reports whether
// it has any, and whether it folded a sequence. It also expands {c..d} for
// characters that are not both letters, which bash leaves alone but zsh
// (whose scripts the floor reads as bash's) expands; and a numeric sequence
// of more than maxValues numbers is folded into one unknown number, so that
// for i in {1..5000} is not a brace bomb.
func braced(w *syntax.Word) (has, folded bool) {
	cloned := false
	for i, p := range w.Parts {
		if l, ok := p.(*syntax.Lit); ok && strings.Contains(l.Value, "..") {
			if v := charRanges(l.Value); v != l.Value {
				if !cloned {
					w.Parts, cloned = slices.Clone(w.Parts), true
				}
				w.Parts[i] = &syntax.Lit{Value: v}
			}
		}
	}
	if !syntax.SplitBraces(w) {
		return false, false
	}
	w.Parts, folded = foldSequences(w.Parts)
	has = slices.ContainsFunc(w.Parts, func(p syntax.WordPart) bool { _, ok := p.(*syntax.BraceExp); return ok })
	return has, folded
}

// charRanges rewrites each {c..d} of single characters that are not both
// letters or both digits as the list {c,…,d}.
func charRanges(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i+6 <= len(s); i++ {
		if s[i] != '{' || s[i+2] != '.' || s[i+3] != '.' || s[i+5] != '}' || (i > 0 && s[i-1] == '\\') {
			continue
		}
		c, d := s[i+1], s[i+4]
		if c == '\\' || d == '\\' || c < ' ' || d < ' ' || c > '~' || d > '~' ||
			isLetter(c) && isLetter(d) || isDigit(c) && isDigit(d) {
			continue
		}
		b.WriteString(s[last:i])
		b.WriteByte('{')
		step := 1
		if c > d {
			step = -1
		}
		for x := int(c); ; x += step {
			if x != int(c) {
				b.WriteByte(',')
			}
			if !isLetter(byte(x)) && !isDigit(byte(x)) {
				b.WriteByte('\\')
			}
			b.WriteByte(byte(x))
			if x == int(d) {
				break
			}
		}
		b.WriteByte('}')
		last = i + 6
		i += 5
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }

// foldSequences replaces each numeric sequence of more than maxValues
// numbers, or with endpoints too large to count, by an unknown number.
func foldSequences(parts []syntax.WordPart) ([]syntax.WordPart, bool) {
	folded := false
	for i, p := range parts {
		br, ok := p.(*syntax.BraceExp)
		if !ok {
			continue
		}
		if br.Sequence {
			if n := seqLen(br); n < 0 || n > maxValues && isNumber(br.Elems[0].Lit()) {
				parts[i], folded = unknownLit, true
			}
			continue
		}
		for _, el := range br.Elems {
			var f bool
			el.Parts, f = foldSequences(el.Parts)
			folded = folded || f
		}
	}
	return parts, folded
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// seqLen returns how many words {x..y[..incr]} expands to, or -1 if its
// endpoints are too large to count safely.
func seqLen(br *syntax.BraceExp) int {
	from, to := br.Elems[0].Lit(), br.Elems[1].Lit()
	var x, y int64
	if isNumber(from) && isNumber(to) {
		x, _ = strconv.ParseInt(from, 10, 64)
		y, _ = strconv.ParseInt(to, 10, 64)
	} else {
		x, y = int64(from[0]), int64(to[0])
	}
	const big = 1 << 50
	if x > big || x < -big || y > big || y < -big {
		return -1
	}
	incr := int64(1)
	if len(br.Elems) > 2 {
		if n, _ := strconv.ParseInt(br.Elems[2].Lit(), 10, 64); n != 0 {
			incr = max(n, -n)
		}
	}
	if incr < 0 { // the minimum int64
		return -1
	}
	return int((max(x, y)-min(x, y))/incr) + 1
}

// braceWords returns how many words split brace expansions produce,
// stopping past maxBraceWords.
func braceWords(parts []syntax.WordPart) int {
	n := 1
	for _, p := range parts {
		br, ok := p.(*syntax.BraceExp)
		if !ok {
			continue
		}
		k := 0
		if br.Sequence {
			k = seqLen(br)
		} else {
			for _, el := range br.Elems {
				k += braceWords(el.Parts)
				if k > maxBraceWords {
					break
				}
			}
		}
		if k < 0 || k > maxBraceWords {
			return maxBraceWords + 1
		}
		n *= max(k, 1)
		if n > maxBraceWords {
			return n
		}
	}
	return n
}

// cmdSubst writes what a command substitution prints, when the floor knows
// it (see substOutput), and markUnknown otherwise. It runs nothing.
func (e *expansion) cmdSubst(w io.Writer, cs *syntax.CmdSubst) error {
	out, ok := e.substOutput(cs.Stmts)
	if !ok {
		out = string(markUnknown)
	}
	if e.env.parent != nil && strings.ContainsAny(out, marks) {
		e.env.taint = true
	}
	_, err := io.WriteString(w, out)
	return err
}

// substOutput returns what a command substitution's script prints, when it
// is a single command the floor knows the output of: echo and printf of
// known words, mktemp (a new path, named by the operator's temporary
// directory), pwd, which and command -v (a path to the program named),
// dirname and basename of known paths, true and false.
func (e *expansion) substOutput(stmts []*syntax.Stmt) (string, bool) {
	if len(stmts) == 0 {
		return "", true
	}
	if len(stmts) != 1 || e.depth >= maxDepth {
		return "", false
	}
	s := stmts[0]
	c, ok := s.Cmd.(*syntax.CallExpr)
	if !ok || s.Negated || s.Background || len(s.Redirs) > 0 {
		return "", false
	}
	if len(c.Args) == 0 {
		return "", true
	}
	n := e.nested()
	ws := n.words(c.Args)
	if n.aborted || len(ws) == 0 || ws[0].glob || strings.ContainsAny(ws[0].s, marks) {
		return "", false
	}
	args := ws[1:]
	known := func(ws []word) bool {
		return !slices.ContainsFunc(ws, func(w word) bool { return w.glob || w.isUnknown() })
	}
	switch name := lower(path.Base(ws[0].s)); name {
	case "echo":
		if !known(args) {
			return "", false
		}
		for len(args) > 0 && isEchoFlag(args[0].s) {
			args = args[1:]
		}
		return decodeEcho(joinWords(args)), true
	case "printf":
		if len(args) == 0 || !known(args) {
			return "", false
		}
		return printf(args[0].s, args[1:])
	case "mktemp":
		return string(markOpaque), true
	case "pwd":
		if v := dirValues(e.env.st.cwds()); len(v) == 1 {
			return v[0].Str, true
		}
	case "which", "command", "type":
		// which NAME, command -v NAME, type -P NAME: where NAME is.
		if len(args) > 0 && (name == "which" || strings.HasPrefix(args[0].s, "-")) {
			last := args[len(args)-1]
			if known([]word{last}) && !strings.HasPrefix(last.s, "-") {
				if strings.IndexByte(last.s, '/') >= 0 {
					return last.s, true
				}
				return string(markOpaque) + "/" + last.s, true
			}
		}
	case "dirname", "basename":
		if len(args) == 1 && known(args) && !strings.ContainsAny(args[0].s, marks) {
			if name == "dirname" {
				return path.Dir(args[0].s), true
			}
			return path.Base(args[0].s), true
		}
	case "true", "false", ":":
		return "", true
	}
	return "", false
}

func isEchoFlag(s string) bool {
	if len(s) < 2 || s[0] != '-' {
		return false
	}
	return strings.Trim(s[1:], "neE") == ""
}

// printf returns what printf FORMAT ARGS prints. The escapes of the format
// are decoded by decodeEcho, so that they cannot forge marks; the values of
// the arguments keep theirs.
func printf(format string, args []word) (string, bool) {
	for i := 0; i < len(format); i++ { // a huge width or precision: %999999999d
		if format[i] == '%' {
			j := i + 1
			for j < len(format) && strings.IndexByte("0123456789.-+ #", format[j]) >= 0 {
				j++
			}
			if j-i > 5 {
				return "", false
			}
		}
	}
	f := strings.ReplaceAll(decodeEcho(format), `\`, `\\`)
	vals := make([]string, len(args))
	for i, w := range args {
		vals[i] = w.s
	}
	var b strings.Builder
	cfg := &expand.Config{}
	for {
		out, n, err := expand.Format(cfg, f, vals)
		if err != nil {
			return "", false
		}
		b.WriteString(out)
		if n == 0 || n >= len(vals) || b.Len() > maxValueLen {
			break
		}
		vals = vals[n:]
	}
	out, _, _ := strings.Cut(b.String(), "\x00")
	return out, true
}

// decodeEcho decodes the backslash escapes of echo -e and printf; a byte
// that would read as a mark is cleaned.
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

// unescape decodes the backslash escape at s[i] (as in echo -e and printf),
// appends it to b and returns the index after it. expand.Format decodes the
// same escapes, but into any byte, marks included.
func unescape(b []byte, s string, i int) ([]byte, int) {
	e := s[i+1]
	i += 2
	switch e {
	case 'a':
		b = append(b, '\a')
	case 'b':
		b = append(b, '\b')
	case 'e', 'E':
		b = append(b, 0x1b)
	case 'f':
		b = append(b, '\f')
	case 'n':
		b = append(b, '\n')
	case 'r':
		b = append(b, '\r')
	case 't':
		b = append(b, '\t')
	case 'v':
		b = append(b, '\v')
	case '\\', '\'', '"', '?':
		b = append(b, e)
	case 'c':
		if i < len(s) {
			b = append(b, cleanByte(s[i]&0x1f))
			i++
		}
	case 'x', 'u', 'U':
		limit := 2
		if e == 'u' {
			limit = 4
		} else if e == 'U' {
			limit = 8
		}
		v, n := 0, 0
		for n < limit && i < len(s) && hexVal(s[i]) >= 0 {
			v = v*16 + hexVal(s[i])
			i++
			n++
		}
		switch {
		case n == 0:
			b = append(b, '\\', e)
		case e == 'x' || v < 0x80:
			b = append(b, cleanByte(byte(v)))
		default:
			b = append(b, string(rune(v))...)
		}
	default:
		if '0' <= e && e <= '7' {
			v := int(e - '0')
			for n := 1; n < 3 && i < len(s) && '0' <= s[i] && s[i] <= '7'; n++ {
				v = v*8 + int(s[i]-'0')
				i++
			}
			b = append(b, cleanByte(byte(v)))
		} else {
			b = append(b, '\\', e)
		}
	}
	return b, i
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// decodeQuotes replaces each $'…' of f with the plain '…' of its decoded,
// cleaned text, so that expand never decodes an escape into a mark.
func decodeQuotes(f *syntax.File) {
	syntax.Walk(f, func(n syntax.Node) bool {
		if q, ok := n.(*syntax.SglQuoted); ok && q.Dollar {
			v, _, err := expand.Format(&expand.Config{}, q.Value, nil)
			if err != nil {
				v = q.Value
			}
			v, _, _ = strings.Cut(v, "\x00")
			q.Value, q.Dollar = clean(v), false
		}
		return true
	})
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
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
