package tools

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// This file holds replace's fallback for an old_text that does not occur
// exactly: models often retype text with curly quotes, other dashes, other
// Unicode forms or other whitespace than the file has. Both texts are
// normalised, the needle is searched in the normalised file, and each match
// is mapped back to a byte range of the original file, so that the edit
// changes that range and nothing else.

// span is a byte range [start, end) of the original text.
type span struct{ start, end int }

const (
	// misalignedBudget bounds the bytes searched again after matches that
	// are skipped because they begin or end inside a character the
	// normalisation rewrote (the "i" of "ﬁ"). Each skip restarts the search
	// one rune later, so a file full of them could otherwise make the
	// search quadratic.
	misalignedBudget = 16 << 20
	// maxGrowth bounds the normalised text to this many times the original
	// (plus a little): NFKC can expand one rune to many (U+FDFA becomes 18
	// runes), and a file made of such runes is not worth the memory.
	maxGrowth = 3
)

// looseFind returns the places where old occurs in content when both are
// compared loosely, leftmost first and not overlapping: after Unicode NFKC
// normalisation, with typographic quotes and dashes read as ASCII ones, any
// Unicode space as ' ', spaces at the end of a line ignored (so CRLF reads
// as LF), and each run of spaces and tabs read as one space. An invalid
// UTF-8 byte reads as U+FFFD, as read_file shows it.
//
// Each span is the exact range of content that matched; it starts and ends
// on rune boundaries and never splits a character the normalisation
// rewrote. looseFind returns nil if old is blank once normalised (a blank
// needle would match almost anywhere) or if content is larger than
// maxEditBytes. It normalises each text once and then runs a
// bytes.Index loop, so it takes time linear in the size of content.
func looseFind(content, old string) []span {
	if len(content) > maxEditBytes {
		return nil // the piece offsets are int32
	}
	needle, ok := normalize(old, false)
	if !ok || len(bytes.TrimSpace(needle.out)) == 0 {
		return nil
	}
	hay, ok := normalize(content, true)
	if !ok {
		return nil
	}
	var spans []span
	misaligned := 0
	for from := 0; ; {
		i := bytes.Index(hay.out[from:], needle.out)
		if i < 0 {
			return spans
		}
		ns, ne := from+i, from+i+len(needle.out)
		start, ok1 := hay.origStart(ns)
		end, ok2 := hay.origEnd(ne)
		if ok1 && ok2 {
			spans = append(spans, span{start, end})
			from = ne
			continue
		}
		if misaligned += len(needle.out); misaligned > misalignedBudget {
			return spans
		}
		_, size := utf8.DecodeRune(hay.out[ns:])
		from = ns + size
	}
}

// spliceSpans returns content with each span (sorted, not overlapping)
// replaced by repl.
func spliceSpans(content string, spans []span, repl string) string {
	var b strings.Builder
	b.Grow(len(content) + len(spans)*len(repl))
	last := 0
	for _, s := range spans {
		b.WriteString(content[last:s.start])
		b.WriteString(repl)
		last = s.end
	}
	b.WriteString(content[last:])
	return b.String()
}

// spanLines names the lines on which the first limit spans start, as
// "3, 10 and 14" (with ", ..." if there are more), so that an ambiguity
// error can tell the model where to look.
func spanLines(content string, spans []span, limit int) string {
	var nums []string
	line, last := 1, 0
	for _, s := range spans[:min(len(spans), limit)] {
		line += strings.Count(content[last:s.start], "\n")
		last = s.start
		nums = append(nums, fmt.Sprint(line))
	}
	switch {
	case len(spans) > limit:
		return strings.Join(nums, ", ") + ", ..."
	case len(nums) > 1:
		return strings.Join(nums[:len(nums)-1], ", ") + " and " + nums[len(nums)-1]
	}
	return strings.Join(nums, "")
}

// piece is a run of the normalised text and the range of the original it
// came from. The pieces are contiguous in the normalised text: a piece ends
// where the next begins. Original bytes that were dropped (spaces at the end
// of a line) belong to no piece.
type piece struct {
	norm          int32 // where the piece starts in the normalised text
	orig, origEnd int32 // the range of the original it came from
	// exact: the piece is a copy of the original, so every offset inside
	// it maps to one in the original. Otherwise the piece is one rewritten
	// unit (a run of spaces, a character NFKC changed) that a match must
	// take whole.
	exact bool
}

// normText is a normalised text, and the pieces that map it back to the
// original if they were asked for.
type normText struct {
	out    []byte
	pieces []piece
}

// normalizer builds the normalised form of src; see looseFind.
type normalizer struct {
	normText
	src   string
	track bool // record pieces, to map matches back to src
	// The pending run of horizontal white space, src[wsStart:wsEnd]
	// (wsStart < 0 if none): it becomes one space, or nothing if a newline
	// follows.
	wsStart, wsEnd   int
	scratch, pending []byte // reused buffers
}

// normalize returns the normalised form of s, with the pieces that map it
// back to s if track is set; ok is false if it would be too large.
func normalize(s string, track bool) (_ normText, ok bool) {
	// n stays on the stack: its fields change for every byte, and on the
	// heap each change would pay for a GC write barrier.
	n := normalizer{src: s, track: track, wsStart: -1}
	n.out = make([]byte, 0, len(s))
	limit := maxGrowth*len(s) + 1024
	var it norm.Iter
	it.InitString(norm.NFKC, s)
	for p := 0; p < len(s); {
		// Fast path: NFKC leaves ASCII alone, and an ASCII byte followed
		// by another (not by a combining mark) is a segment of its own.
		if c := s[p]; c < utf8.RuneSelf && (p+1 == len(s) || s[p+1] < utf8.RuneSelf) {
			n.ascii(c, p)
			p++
			continue
		}
		p = n.nextSegment(&it, p)
		if len(n.out) > limit {
			return normText{}, false
		}
	}
	n.flushSpace()
	return n.normText, true
}

// nextSegment adds the NFKC segment of src that begins at p and returns
// where it ends.
func (n *normalizer) nextSegment(it *norm.Iter, p int) int {
	if it.Pos() != p {
		it.Seek(int64(p), io.SeekStart) // p is a segment boundary: the fast path stopped there
	}
	seg := it.Next()
	// A rune whose decomposition spans several segments (U+FDFA) yields
	// them one by one before the input position moves: gather them.
	if it.Pos() == p {
		n.pending = append(n.pending[:0], seg...)
		for it.Pos() == p && !it.Done() {
			n.pending = append(n.pending, it.Next()...)
		}
		seg = n.pending
	}
	n.segment(seg, p, it.Pos())
	return it.Pos()
}

// ascii adds the ASCII byte c at src[p].
func (n *normalizer) ascii(c byte, p int) {
	switch c {
	case '\n':
		n.unit("\n", p, p+1)
	case ' ', '\t', '\r', '\v', '\f':
		n.unit(" ", p, p+1) // as fold does
	default:
		n.flushSpace()
		n.copied(p, p+1)
		n.out = append(n.out, c)
	}
}

// segment adds the NFKC form seg of the segment src[start:end].
func (n *normalizer) segment(seg []byte, start, end int) {
	if string(seg) == n.src[start:end] {
		// Unchanged by NFKC: fold rune by rune, so that matches can begin
		// and end between the runes of the segment.
		for p := start; p < end; {
			r, size := utf8.DecodeRuneInString(n.src[p:end])
			n.unit(n.foldRune(r, n.src[p:p+size]), p, p+size)
			p += size
		}
		return
	}
	// Changed by NFKC: the segment becomes one unit, since its parts no
	// longer map to parts of the original.
	buf := n.scratch[:0]
	for _, r := range string(seg) {
		buf = utf8.AppendRune(buf, fold(r))
	}
	n.scratch = buf
	n.unit(string(buf), start, end)
}

// foldRune returns the folded form of the rune r, whose bytes in src are
// raw, without allocating when it is unchanged.
func (n *normalizer) foldRune(r rune, raw string) string {
	f := fold(r)
	if f == r && (r != utf8.RuneError || len(raw) > 1) {
		return raw
	}
	// Changed, or an invalid byte, which reads as U+FFFD.
	n.scratch = utf8.AppendRune(n.scratch[:0], f)
	return string(n.scratch)
}

// fold maps a rune that models tend to retype differently to its ASCII
// form: typographic quotes and dashes, and white space other than a newline
// (tabs, CR, NBSP and the other Unicode spaces) to ' '.
func fold(r rune) rune {
	switch r {
	case '‘', '’', '‚', '‛':
		return '\''
	case '“', '”', '„', '‟':
		return '"'
	case '‐', '‑', '‒', '–', '—', '―', '−':
		return '-'
	case '\n':
		return r
	}
	if unicode.IsSpace(r) {
		return ' '
	}
	return r
}

// unit adds one unit of src[start:end], already folded to out: a newline,
// white space (which waits in the pending run), or anything else.
func (n *normalizer) unit(out string, start, end int) {
	switch {
	case out == "\n":
		n.wsStart = -1 // spaces at the end of a line do not count
		n.emit(out, start, end)
	case isBlank(out):
		if n.wsStart < 0 {
			n.wsStart = start
		}
		n.wsEnd = end
	case out != "":
		n.flushSpace()
		n.emit(out, start, end)
	}
}

// isBlank reports whether out, a folded unit, is white space other than a
// newline (fold has made all of it ' ').
func isBlank(out string) bool {
	for i := 0; i < len(out); i++ {
		if out[i] != ' ' {
			return false
		}
	}
	return out != ""
}

// flushSpace adds the pending run of white space as one space.
func (n *normalizer) flushSpace() {
	if n.wsStart >= 0 {
		n.emit(" ", n.wsStart, n.wsEnd)
		n.wsStart = -1
	}
}

// emit appends out, which stands for src[start:end], and records its piece.
func (n *normalizer) emit(out string, start, end int) {
	if out == n.src[start:end] {
		n.copied(start, end)
	} else if n.track {
		n.pieces = append(n.pieces, piece{norm: int32(len(n.out)), orig: int32(start), origEnd: int32(end)})
	}
	n.out = append(n.out, out...)
}

// copied records that src[start:end] is about to be appended unchanged.
func (n *normalizer) copied(start, end int) {
	if !n.track {
		return
	}
	if k := len(n.pieces) - 1; k >= 0 && n.pieces[k].exact && int(n.pieces[k].origEnd) == start {
		n.pieces[k].origEnd = int32(end) // extend the copied run
		return
	}
	n.pieces = append(n.pieces, piece{norm: int32(len(n.out)), orig: int32(start), origEnd: int32(end), exact: true})
}

// origStart maps offset i of the normalised text, where a match begins, to
// the original. ok is false if i falls inside a rewritten unit.
func (n *normText) origStart(i int) (orig int, ok bool) {
	k := sort.Search(len(n.pieces), func(k int) bool { return int(n.pieces[k].norm) > i }) - 1
	p := n.pieces[k]
	if p.exact {
		return int(p.orig) + i - int(p.norm), true
	}
	return int(p.orig), i == int(p.norm)
}

// origEnd maps offset i > 0 of the normalised text, where a match ends, to
// the original. ok is false if i falls inside a rewritten unit.
func (n *normText) origEnd(i int) (orig int, ok bool) {
	k := sort.Search(len(n.pieces), func(k int) bool { return int(n.pieces[k].norm) >= i }) - 1
	p := n.pieces[k] // the piece holding byte i-1
	if p.exact {
		return int(p.orig) + i - int(p.norm), true
	}
	next := len(n.out)
	if k+1 < len(n.pieces) {
		next = int(n.pieces[k+1].norm)
	}
	return int(p.origEnd), i == next
}
