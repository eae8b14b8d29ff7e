package permission

import "strings"

// This file is the hardline floor's shell reader: a small tokenizer and
// parser for the POSIX/bash command language, enough to find every simple
// command a command line would run. It is not a full shell parser; it errs
// towards seeing more commands than bash would run, never fewer (see the
// package documentation for the known limits).

// Marks written into a word's value in place of an expansion. The command's
// own bytes with these values are replaced by markFree before it is parsed,
// and so are those that escapes decode to ($'\x01', printf '\1'), so text
// cannot forge a mark. Marks do survive into text that is parsed again (the
// body of bash -c "rm -rf $HOME"), where they keep their meaning.
const (
	markHome    = '\x01' // ~, ~user, $HOME or ${HOME…}: the home directory
	markUnknown = '\x02' // an expansion of unknown value: $(…), `…`, ${x…}, $?, ~+
	markVar     = '\x03' // markVar NAME markEnd: unquoted $NAME, ${NAME} or $0…$9, $@, $*
	markEnd     = '\x04'
	markVarQ    = '\x05' // markVarQ NAME markEnd: the same inside double quotes
	markSplit   = '\x06' // in a variable's value: a forced word boundary ("$@")
)

// marks are all the mark bytes, for strings.ContainsAny.
const marks = "\x01\x02\x03\x04\x05\x06"

// markFree replaces a byte of the input that would read as a mark. Such a
// byte is only a strange character to bash, and so is markFree.
const markFree = 0x7f

// clean replaces the mark bytes of s with markFree.
func clean(s string) string {
	if !strings.ContainsAny(s, marks) {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		b[i] = cleanByte(c)
	}
	return string(b)
}

func cleanByte(c byte) byte {
	if 1 <= c && c <= 6 {
		return markFree
	}
	return c
}

// word is one shell word after quote removal.
type word struct {
	s      string  // value; expansions appear as marks
	quoted bool    // some part was quoted or escaped
	glob   bool    // has an unquoted *, ? or [
	brace  bool    // has an unquoted {
	dyn    bool    // has an expansion (s contains marks)
	sub    *script // the word is exactly one $(…), `…` or <(…) (or NAME= and one): its script
	proc   bool    // sub is a process substitution <(…) or >(…)
}

// redir is a redirection: its operator and target. For a here-document the
// target is the delimiter and body the document.
type redir struct {
	op     string
	target word
	body   string
}

// command is one simple command (possibly with leading reserved words, which
// the analyser strips) and the operator that ended it.
type command struct {
	words  []word
	redirs []redir
	subs   []*script // command and process substitutions inside this command
	op     string    // ";", "&", "&&", "||", "|", "|&", "\n", "(", ")", ";;", "" …
}

// script is a parsed command list.
type script struct {
	cmds []command
}

// caseState tracks a case … esac statement, whose ")" ends a pattern
// rather than a subshell.
type caseState uint8

const (
	caseWaitIn  caseState = iota // after "case WORD", before "in"
	casePattern                  // reading a pattern list, up to ")"
	caseBody                     // reading commands, up to ";;"
)

type heredoc struct {
	cmd, redir int // indexes into parser.cmds and that command's redirs
	delim      string
	stripTabs  bool
	expand     bool // the delimiter was unquoted: the body is expanded
}

type parser struct {
	a       *analyzer
	src     string
	pos     int
	depth   int
	cmds    []command
	cur     command
	parens  int
	cases   []caseState
	pending []heredoc
	buf     []byte
}

// parse parses src as a script. depth is its nesting depth, for the
// analyser's bound.
func (a *analyzer) parse(src string, depth int) *script {
	p := &parser{a: a, src: src, depth: depth}
	p.run(0)
	return &script{cmds: p.cmds}
}

// sub parses a nested script that starts at p.pos in the same source and
// ends at an unmatched ")" (command and process substitution). It returns
// the script and leaves p.pos after the ")".
func (p *parser) sub() *script {
	q := &parser{a: p.a, src: p.src, pos: p.pos, depth: p.depth + 1}
	if q.depth > maxDepth {
		p.a.deny("command nests substitutions too deeply to analyse")
		p.pos = len(p.src)
		return &script{}
	}
	q.run(')')
	p.pos = q.pos
	return &script{cmds: q.cmds}
}

// run reads commands until the end of the source or, if term is ')', an
// unmatched ")".
func (p *parser) run(term byte) {
	src := p.src
	for p.pos < len(src) && p.a.reason == "" {
		c := src[p.pos]
		switch c {
		case ' ', '\t', '\r':
			p.pos++
		case '\n':
			p.pos++
			p.end("\n")
			p.readHeredocs()
		case '\\':
			if p.at(1) == '\n' {
				p.pos += 2
				continue
			}
			p.word()
		case '#':
			for p.pos < len(src) && src[p.pos] != '\n' {
				p.pos++
			}
		case ';':
			op := ";"
			if p.at(1) == ';' {
				op = ";;"
				if p.at(2) == '&' {
					op = ";;&"
				}
			} else if p.at(1) == '&' {
				op = ";&"
			}
			p.pos += len(op)
			p.end(op)
			if op != ";" && len(p.cases) > 0 && p.cases[len(p.cases)-1] == caseBody {
				p.cases[len(p.cases)-1] = casePattern
			}
		case '&':
			switch {
			case p.at(1) == '&':
				p.pos += 2
				p.end("&&")
			case p.at(1) == '>':
				p.redirect()
			default:
				p.pos++
				p.end("&")
			}
		case '|':
			if p.inPattern() { // alternatives of a case pattern
				p.pos++
				continue
			}
			switch p.at(1) {
			case '|':
				p.pos += 2
				p.end("||")
			case '&':
				p.pos += 2
				p.end("|&")
			default:
				p.pos++
				p.end("|")
			}
		case '(':
			p.pos++
			if p.inPattern() {
				continue
			}
			p.end("(")
			p.parens++
		case ')':
			p.pos++
			if p.inPattern() {
				// The pattern's words are not a command; keep its substitutions.
				p.cur.words = p.cur.words[:0]
				p.end(")")
				p.cases[len(p.cases)-1] = caseBody
				continue
			}
			if p.parens > 0 {
				p.parens--
				p.end(")")
				continue
			}
			if term == ')' {
				p.end("")
				return
			}
			p.end(")")
		case '<', '>':
			if p.at(1) == '(' {
				p.word() // process substitution
				continue
			}
			p.redirect()
		default:
			p.word()
		}
	}
	p.end("")
	if len(p.pending) > 0 {
		p.readHeredocs() // unterminated here-documents run to the end
	}
}

// at returns the byte i positions ahead, or 0 past the end.
func (p *parser) at(i int) byte {
	if p.pos+i < len(p.src) {
		return p.src[p.pos+i]
	}
	return 0
}

func (p *parser) inPattern() bool {
	return len(p.cases) > 0 && p.cases[len(p.cases)-1] == casePattern
}

// end finishes the current command with operator op. Empty commands are
// dropped unless op is a parenthesis, which the fork-bomb check needs.
func (p *parser) end(op string) {
	if len(p.cur.words) == 0 && len(p.cur.redirs) == 0 && len(p.cur.subs) == 0 && op != "(" && op != ")" {
		return
	}
	p.cur.op = op
	p.cmds = append(p.cmds, p.cur)
	p.cur = command{}
}

// word reads one word and adds it to the current command, handling the
// reserved words of case statements and file-descriptor prefixes.
func (p *parser) word() {
	w := p.lexWord()
	if p.a.reason != "" {
		return
	}
	// "2>file": a number right before a redirection is its descriptor.
	if c := p.at(0); (c == '<' || c == '>') && !w.quoted && isDigits(w.s) {
		return
	}
	if !w.quoted && len(p.cases) > 0 {
		top := &p.cases[len(p.cases)-1]
		switch {
		case *top == caseWaitIn && w.s == "in":
			p.cur.words = append(p.cur.words, w)
			p.end("in")
			*top = casePattern
			return
		case *top == casePattern && w.s == "esac", *top == caseBody && w.s == "esac" && len(p.cur.words) == 0:
			p.cases = p.cases[:len(p.cases)-1]
			p.cur.words = append(p.cur.words, w)
			p.end("esac")
			return
		}
	}
	if !w.quoted && w.s == "case" && len(p.cur.words) == 0 && !p.inPattern() {
		p.cases = append(p.cases, caseWaitIn)
	}
	if p.cur.words == nil {
		p.cur.words = make([]word, 0, 8)
	}
	p.cur.words = append(p.cur.words, w)
}

// redirect reads a redirection operator and its target.
func (p *parser) redirect() {
	op := ""
	for _, o := range [...]string{"&>>", "&>", "<<<", "<<-", "<<", "<>", "<&", ">>", ">|", ">&", "<", ">"} {
		if strings.HasPrefix(p.src[p.pos:], o) {
			op = o
			break
		}
	}
	p.pos += len(op)
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t') {
		p.pos++
	}
	var target word
	if p.pos < len(p.src) && !isMeta(p.src[p.pos]) {
		target = p.lexWord()
	}
	p.cur.redirs = append(p.cur.redirs, redir{op: op, target: target})
	if op == "<<" || op == "<<-" {
		p.pending = append(p.pending, heredoc{
			cmd:       len(p.cmds),
			redir:     len(p.cur.redirs) - 1,
			delim:     target.s,
			stripTabs: op == "<<-",
			expand:    !target.quoted,
		})
	}
}

// readHeredocs reads the bodies of the here-documents started on the line
// that just ended.
func (p *parser) readHeredocs() {
	pending := p.pending
	p.pending = nil
	for _, h := range pending {
		start := p.pos
		body := ""
		for {
			if p.pos >= len(p.src) {
				body = p.src[start:]
				break
			}
			eol := strings.IndexByte(p.src[p.pos:], '\n')
			line := p.src[p.pos:]
			next := len(p.src)
			if eol >= 0 {
				line = line[:eol]
				next = p.pos + eol + 1
			}
			cmp := line
			if h.stripTabs {
				cmp = strings.TrimLeft(cmp, "\t")
			}
			if cmp == h.delim {
				body = p.src[start:p.pos]
				p.pos = next
				break
			}
			p.pos = next
		}
		if h.cmd >= len(p.cmds) { // the command has not ended yet (no newline)
			continue
		}
		c := &p.cmds[h.cmd]
		c.redirs[h.redir].body = body
		if h.expand {
			// $(…) and `…` in an unquoted here-document run, whatever reads it.
			q := &parser{a: p.a, src: body, depth: p.depth}
			var w word
			q.lexQuoted(&w, 0)
			c.subs = append(c.subs, q.cur.subs...)
		}
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isMeta reports whether c ends an unquoted word.
func isMeta(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ';', '&', '|', '(', ')', '<', '>':
		return true
	}
	return false
}

// lexWord reads one word starting at p.pos.
func (p *parser) lexWord() word {
	var w word
	start := p.pos
	nsubs := len(p.cur.subs)
	p.buf = p.buf[:0]
	plain := true // no quoting or expansion so far: w.s is src[start:p.pos]
	flush := func() {
		if plain {
			p.buf = append(p.buf[:0], p.src[start:p.pos]...)
			plain = false
		}
	}
	src := p.src
	for p.pos < len(src) && p.a.reason == "" {
		c := src[p.pos]
		if isMeta(c) {
			if (c == '<' || c == '>') && p.pos == start && p.at(1) == '(' {
				// <(…) or >(…): process substitution, a file name to the command.
				flush()
				p.pos += 2
				p.cur.subs = append(p.cur.subs, p.sub())
				w.dyn = true
				w.proc = true
				p.buf = append(p.buf, markUnknown)
				continue
			}
			break
		}
		switch c {
		case '\\':
			flush()
			if p.at(1) == '\n' {
				p.pos += 2
				continue
			}
			w.quoted = true
			if p.pos+1 < len(src) {
				p.buf = append(p.buf, src[p.pos+1])
				p.pos += 2
			} else {
				p.pos++
			}
		case '\'':
			flush()
			w.quoted = true
			end := strings.IndexByte(src[p.pos+1:], '\'')
			if end < 0 {
				p.buf = append(p.buf, src[p.pos+1:]...)
				p.pos = len(src)
			} else {
				p.buf = append(p.buf, src[p.pos+1:p.pos+1+end]...)
				p.pos += end + 2
			}
		case '"':
			flush()
			w.quoted = true
			p.pos++
			p.lexQuoted(&w, '"')
		case '`', '$':
			flush()
			p.lexExpansion(&w, false)
		case '~':
			if p.pos != start {
				if !plain {
					p.buf = append(p.buf, c)
				}
				p.pos++
				continue
			}
			// Tilde prefix: ~, ~user, ~+ or ~- up to the first "/".
			j := p.pos + 1
			for j < len(src) && (isNameByte(src[j]) || src[j] == '.' || src[j] == '-' || src[j] == '+') {
				j++
			}
			if j < len(src) && !isMeta(src[j]) && src[j] != '/' {
				p.pos++ // "~x'y'": not a tilde prefix; ~ is literal
				continue
			}
			flush()
			w.dyn = true
			if prefix := src[p.pos+1 : j]; prefix == "+" || prefix == "-" {
				p.buf = append(p.buf, markUnknown)
			} else {
				p.buf = append(p.buf, markHome)
			}
			p.pos = j
		default:
			switch c {
			case '*', '?', '[':
				w.glob = true
			case '{':
				w.brace = true
			}
			if !plain {
				p.buf = append(p.buf, c)
			}
			p.pos++
		}
	}
	if plain {
		w.s = src[start:p.pos]
	} else {
		w.s = string(p.buf)
	}
	// A word that is exactly one substitution keeps its script, so that
	// bash -c "$(echo …)" can be followed.
	if len(p.cur.subs) == nsubs+1 && strings.IndexByte(w.s, markUnknown) == len(w.s)-1 &&
		(len(w.s) == 1 || isAssignment(w.s) && w.s[len(w.s)-2] == '=') {
		w.sub = p.cur.subs[nsubs] // also for NAME=$(…), whose value may be followed
	}
	return w
}

// lexQuoted reads the inside of a double-quoted string up to the closing
// quote (term '"'), a parameter expansion up to "}" (term '}'), or a
// here-document body to its end (term 0), appending to p.buf.
func (p *parser) lexQuoted(w *word, term byte) {
	src := p.src
	for p.pos < len(src) && p.a.reason == "" {
		c := src[p.pos]
		switch {
		case c == term:
			p.pos++
			return
		case c == '\\':
			next := p.at(1)
			switch {
			case next == '\n':
				p.pos += 2
			case next == '$' || next == '`' || next == '"' || next == '\\' || (term == '}' && next == '}'):
				p.buf = append(p.buf, next)
				p.pos += 2
			default:
				p.buf = append(p.buf, c)
				p.pos++
			}
		case c == '$' || c == '`':
			p.lexExpansion(w, true)
		case term == '}' && c == '\'':
			end := strings.IndexByte(src[p.pos+1:], '\'')
			if end < 0 {
				p.pos = len(src)
			} else {
				p.pos += end + 2
			}
		case term == '}' && c == '"':
			p.pos++
			p.lexQuoted(w, '"')
		default:
			p.buf = append(p.buf, c)
			p.pos++
		}
	}
}

// lexExpansion reads an expansion starting with "$" or "`" at p.pos and
// appends its mark (or, for ANSI-C and locale quoting, its text) to p.buf.
func (p *parser) lexExpansion(w *word, inDouble bool) {
	src := p.src
	if src[p.pos] == '`' {
		p.backquote(w)
		return
	}
	switch next := p.at(1); {
	case next == '\'' && !inDouble:
		// $'…': ANSI-C quoting.
		w.quoted = true
		p.pos += 2
		p.buf = decodeANSIC(p.buf, src, &p.pos)
	case next == '"' && !inDouble:
		// $"…": locale translation; the text is the same for our purpose.
		w.quoted = true
		p.pos += 2
		p.lexQuoted(w, '"')
	case next == '(':
		// $(…) and $((…)): both are parsed as a script; arithmetic parses as
		// harmless words, and any $(…) inside it is found.
		p.pos += 2
		p.cur.subs = append(p.cur.subs, p.sub())
		w.dyn = true
		p.buf = append(p.buf, markUnknown)
	case next == '{':
		p.pos += 2
		j := p.pos
		for j < len(src) && isNameByte(src[j]) {
			j++
		}
		if j == p.pos && j < len(src) && (src[j] == '@' || src[j] == '*') {
			j++
		}
		name := src[p.pos:j]
		if j < len(src) && src[j] == '}' && name != "" && name != "HOME" {
			// ${NAME}: a plain variable.
			w.dyn = true
			p.appendVar(name, inDouble)
			p.pos = j + 1
			return
		}
		if p.depth+1 > maxDepth {
			p.a.deny("command nests expansions too deeply to analyse")
			p.pos = len(src)
			return
		}
		// Read the rest for its substitutions; the value is unknown.
		mark := len(p.buf)
		p.depth++
		p.lexQuoted(w, '}')
		p.depth--
		p.buf = p.buf[:mark]
		w.dyn = true
		if name == "HOME" {
			p.buf = append(p.buf, markHome)
		} else {
			p.buf = append(p.buf, markUnknown)
		}
	case isNameByte(next) && !('0' <= next && next <= '9'):
		j := p.pos + 1
		for j < len(src) && isNameByte(src[j]) {
			j++
		}
		w.dyn = true
		if name := src[p.pos+1 : j]; name == "HOME" {
			p.buf = append(p.buf, markHome)
		} else {
			p.appendVar(name, inDouble)
		}
		p.pos = j
	case '0' <= next && next <= '9' || next == '@' || next == '*':
		w.dyn = true
		p.appendVar(string(next), inDouble)
		p.pos += 2
	case next != 0 && strings.IndexByte("#?$!-", next) >= 0:
		w.dyn = true
		p.buf = append(p.buf, markUnknown)
		p.pos += 2
	default:
		p.buf = append(p.buf, '$')
		p.pos++
	}
}

// appendVar appends a variable reference to p.buf.
func (p *parser) appendVar(name string, quoted bool) {
	if quoted {
		p.buf = append(p.buf, markVarQ)
	} else {
		p.buf = append(p.buf, markVar)
	}
	p.buf = append(p.buf, name...)
	p.buf = append(p.buf, markEnd)
}

// backquote reads `…` command substitution: the text up to the closing
// backquote, with \\, \` and \$ unescaped, is parsed as a script of its own.
func (p *parser) backquote(w *word) {
	src := p.src
	p.pos++
	var b strings.Builder
	for p.pos < len(src) {
		c := src[p.pos]
		if c == '`' {
			p.pos++
			break
		}
		if c == '\\' && p.pos+1 < len(src) {
			if n := src[p.pos+1]; n == '`' || n == '\\' || n == '$' {
				b.WriteByte(n)
				p.pos += 2
				continue
			}
		}
		b.WriteByte(c)
		p.pos++
	}
	w.dyn = true
	p.buf = append(p.buf, markUnknown)
	if p.depth+1 > maxDepth {
		p.a.deny("command nests substitutions too deeply to analyse")
		return
	}
	p.cur.subs = append(p.cur.subs, p.a.parseText(b.String(), p.depth+1))
}

func isNameByte(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// decodeANSIC decodes the body of $'…' starting at *pos (after the opening
// quote), appends it to b and leaves *pos after the closing quote.
func decodeANSIC(b []byte, src string, pos *int) []byte {
	i := *pos
	for i < len(src) {
		c := src[i]
		if c == '\'' {
			i++
			break
		}
		if c != '\\' || i+1 >= len(src) {
			b = append(b, c)
			i++
			continue
		}
		b, i = unescape(b, src, i)
	}
	*pos = i
	return b
}

// unescape decodes the backslash escape at src[i] (as in $'…', echo -e and
// printf), appends it to b and returns the index after it.
func unescape(b []byte, src string, i int) ([]byte, int) {
	e := src[i+1]
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
		if i < len(src) {
			b = append(b, cleanByte(src[i]&0x1f))
			i++
		}
	case 'x', 'u', 'U':
		max := 2
		if e == 'u' {
			max = 4
		} else if e == 'U' {
			max = 8
		}
		v, n := 0, 0
		for n < max && i < len(src) && hexVal(src[i]) >= 0 {
			v = v*16 + hexVal(src[i])
			i++
			n++
		}
		switch {
		case n == 0:
			b = append(b, '\\', e)
		case e == 'x':
			b = append(b, cleanByte(byte(v)))
		case v <= 6:
			b = append(b, cleanByte(byte(v)))
		default:
			b = append(b, string(rune(v))...)
		}
	default:
		if '0' <= e && e <= '7' {
			v := int(e - '0')
			for n := 1; n < 3 && i < len(src) && '0' <= src[i] && src[i] <= '7'; n++ {
				v = v*8 + int(src[i]-'0')
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
