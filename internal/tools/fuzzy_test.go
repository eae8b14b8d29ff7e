package tools

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestLooseFind(t *testing.T) {
	tests := []struct {
		name, content, old string
		want               []string // the original text of each match, in order
	}{
		{"curly quotes in old_text", "x := 1\nfmt.Println(\"hi\")\n", "fmt.Println(“hi”)", []string{`fmt.Println("hi")`}},
		{"curly quotes in the file", "s := ‘it’s’\n", "s := 'it's'", []string{"s := ‘it’s’"}},
		{"low and reversed quotes", "„a‟ ‚b‛", `"a" 'b'`, []string{"„a‟ ‚b‛"}},
		{"em dash", "x — y\n", "x - y", []string{"x — y"}},
		{"every dash", "a‐b‑c‒d–e—f―g−h", "a-b-c-d-e-f-g-h", []string{"a‐b‑c‒d–e—f―g−h"}},
		{"NBSP", "a\u00a0=\u00a0b\n", "a = b", []string{"a\u00a0=\u00a0b"}},
		{"other Unicode spaces", "a\u2003b\u3000c\u202fd", "a b c d", []string{"a\u2003b\u3000c\u202fd"}},
		{"tabs vs spaces", "func a() {\n\treturn 1\n}\n", "func a() {\n    return 1\n}", []string{"func a() {\n\treturn 1\n}"}},
		{"run of spaces inside a line", "x  :=\t\t1\n", "x := 1", []string{"x  :=\t\t1"}},
		{"trailing spaces in the file", "x := 1   \ny := 2\n", "x := 1\ny := 2", []string{"x := 1   \ny := 2"}},
		{"trailing spaces in old_text", "x := 1\ny := 2\n", "x := 1 \t\ny := 2", []string{"x := 1\ny := 2"}},
		{"spaces after the match stay", "x = 1\t \ny\n", "x  = 1", []string{"x = 1"}},
		{"CRLF file, LF old_text", "a\r\nb\r\nc\r\n", "a\nb\n", []string{"a\r\nb\r\n"}},
		{"LF file, CRLF old_text", "a\nb\n", "a\r\nb", []string{"a\nb"}},
		{"fullwidth letters in the file", "ＡＢＣ１ = 1", "ABC1 = 1", []string{"ＡＢＣ１ = 1"}},
		{"fullwidth letters in old_text", "ABC = 1", "ＡＢＣ = 1", []string{"ABC = 1"}},
		{"ligature", "a ﬁle", "file", []string{"ﬁle"}},
		{"decomposed accent", "cafe\u0301 au lait", "café au", []string{"cafe\u0301 au"}},
		{"multi-byte runes before the match", "// Grüße 日本語 ✓\nsay(“hi”)\n", `say("hi")`, []string{"say(“hi”)"}},
		{"invalid UTF-8 reads as U+FFFD", "ok \xff bad\n", "ok \uFFFD bad", []string{"ok \xff bad"}},
		{"multi-segment decomposition", "a \uFDFA b", "a " + norm.NFKC.String("\uFDFA") + " b", []string{"a \uFDFA b"}},
		{"ambiguous", "a – b\na — b\n", "a - b", []string{"a – b", "a — b"}},
		{"matches do not overlap", "‘x’‘x’‘x’", "'x''x'", []string{"‘x’‘x’"}},
		{"no match", "a = 1\n", "b = 1", nil},
		{"whitespace-only old_text", "a \t b\n\n", " \t\n ", nil},
		{"NBSP-only old_text", "a\u00a0b", "\u00a0\u3000", nil},
		{"empty old_text", "abc", "", nil},
		{"white space still separates words", "foobar", "foo bar", nil},
		{"a trailing space does not match a word's prefix", "foobar", "foo ", nil},
		{"half of a ligature", "a ﬁle", "ile", nil},
		{"base letter of a composed character", "café", "cafe", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []span
			from := 0
			for _, w := range tc.want {
				i := strings.Index(tc.content[from:], w)
				if i < 0 {
					t.Fatalf("bad test: %q is not in %q", w, tc.content[from:])
				}
				want = append(want, span{from + i, from + i + len(w)})
				from += i + len(w)
			}
			got := looseFind(tc.content, tc.old)
			if !slices.Equal(got, want) {
				t.Fatalf("looseFind(%q, %q) = %v (%q); want %v (%q)", tc.content, tc.old, got, texts(tc.content, got), want, tc.want)
			}
			for _, s := range got {
				if !onRuneBoundary(tc.content, s.start) || !onRuneBoundary(tc.content, s.end) {
					t.Errorf("span %v of %q splits a rune", s, tc.content)
				}
			}
		})
	}
}

// onRuneBoundary reports whether i is where a rune of s begins or ends,
// counting each invalid byte as a rune.
func onRuneBoundary(s string, i int) bool {
	p := 0
	for p < i {
		_, size := utf8.DecodeRuneInString(s[p:])
		p += size
	}
	return p == i
}

func texts(content string, spans []span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, content[s.start:s.end])
	}
	return out
}

// TestLooseFindOffsets spells out the byte offsets once, so that they do not
// depend on strings.Index as in TestLooseFind.
func TestLooseFindOffsets(t *testing.T) {
	// é is 2 bytes, 日 and the curly quotes 3 each.
	got := looseFind("é日“x”\n", `"x"`)
	if want := []span{{5, 12}}; !slices.Equal(got, want) {
		t.Errorf("looseFind = %v; want %v", got, want)
	}
}

func TestSpliceSpans(t *testing.T) {
	content := "Grüße — “a”\r\n日本 ‘a’  \r\nend\xff"
	spans := looseFind(content, `"a"`)
	spans = append(spans, looseFind(content, "'a'\n")...)
	got := spliceSpans(content, spans, "B")
	if want := "Grüße — B\r\n日本 Bend\xff"; got != want {
		t.Errorf("spliceSpans = %q; want %q", got, want)
	}
	if got := spliceSpans("abc", nil, "x"); got != "abc" {
		t.Errorf("spliceSpans with no spans = %q; want the content", got)
	}
}

func TestSpanLines(t *testing.T) {
	content := strings.Repeat("x\n", 20)
	at := func(lines ...int) []span {
		var s []span
		for _, l := range lines {
			s = append(s, span{2 * (l - 1), 2*(l-1) + 1})
		}
		return s
	}
	for _, tc := range []struct {
		spans []span
		want  string
	}{
		{at(2), "2"},
		{at(3, 10), "3 and 10"},
		{at(3, 10, 14), "3, 10 and 14"},
		{at(1, 2, 3, 4, 5, 6), "1, 2, 3, 4, 5, ..."},
	} {
		if got := spanLines(content, tc.spans, 5); got != tc.want {
			t.Errorf("spanLines(%v) = %q; want %q", tc.spans, got, tc.want)
		}
	}
}

// TestLooseFindMisalignedIsBounded feeds a file where every match of the
// needle starts inside a ligature, so each is skipped: the search must give
// up rather than take quadratic time.
func TestLooseFindMisalignedIsBounded(t *testing.T) {
	content := strings.Repeat("ﬁ", 1<<20)
	old := "i" + strings.Repeat("fi", 4096) + "f"
	if got := looseFind(content, old); got != nil {
		t.Errorf("looseFind found %d matches inside ligatures; want none", len(got))
	}
}

// TestLooseFindLarge checks that a file at the size limit is searched, with
// the match at its end.
func TestLooseFindLarge(t *testing.T) {
	const line, tail = "\tfmt.Println(\"some text\", x-1)   \r\n", "\tsay(“done” — 1)\r\n"
	head := strings.Repeat(line, (maxEditBytes-len(tail))/len(line))
	content := head + strings.Repeat("\n", maxEditBytes-len(head)-len(tail)) + tail
	got := looseFind(content, `say("done" - 1)`)
	if want := []span{{len(content) - len(tail) + 1, len(content) - 2}}; !slices.Equal(got, want) {
		t.Errorf("looseFind = %v; want %v", got, want)
	}
	if got := looseFind(content+"x", "x"); got != nil {
		t.Errorf("looseFind on a file above maxEditBytes found %d matches; want none", len(got))
	}
}

func BenchmarkLooseFind(b *testing.B) {
	content := strings.Repeat("\tfmt.Println(\"some text\", x-1)   \n", 1<<15) // 1 MiB
	for b.Loop() {
		looseFind(content, "fmt.Println(“some text”, x—1)")
	}
}

// FuzzLooseFind checks what replace relies on: the spans are in order, do
// not overlap, lie on rune boundaries, and each, normalised alone, reads
// the same as old_text. old_text is a piece of the content, retyped the way
// models do if loosen is set, so that there are matches to check.
func FuzzLooseFind(f *testing.F) {
	f.Add("say(\"hi\")\r\n\tx - y  \n", uint16(0), uint16(20), true)
	f.Add("a ﬁle\u00a0ＡＢＣ -- ", uint16(2), uint16(12), false)
	f.Add("cafe\u0301 \uFDFA \xff", uint16(0), uint16(9), true)
	retype := strings.NewReplacer(`"`, "“", "'", "’", "-", "—", " ", "\u00a0", "\t", "    ", "\r\n", "\n")
	f.Fuzz(func(t *testing.T, content string, from, to uint16, loosen bool) {
		i, j := min(int(from), len(content)), min(int(to), len(content))
		old := content[min(i, j):j]
		if loosen {
			old = retype.Replace(old)
		}
		needle, _ := normalize(old, false)
		last := 0
		for _, s := range looseFind(content, old) {
			if s.start < last || s.end <= s.start || s.end > len(content) {
				t.Fatalf("bad span %v after %d in %q", s, last, content)
			}
			if !onRuneBoundary(content, s.start) || !onRuneBoundary(content, s.end) {
				t.Fatalf("span %v of %q splits a rune", s, content)
			}
			if got, _ := normalize(content[s.start:s.end], false); string(got.out) != string(needle.out) {
				t.Fatalf("span %q of %q normalises to %q; old_text %q to %q", content[s.start:s.end], content, got.out, old, needle.out)
			}
			last = s.end
		}
	})
}
