package tools

import (
	"strconv"
	"strings"
	"testing"
)

func TestStripANSI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"\x1b[31mred\x1b[0m", "red"},
		{"\x1b[1;32;40mbold\x1b[m", "bold"},
		{"\x1b[2K\x1b[1Gline", "line"},
		{"\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"},
		{"\x1b]0;title\x07text", "text"},
		{"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "link"},
		{"\x1b(Bcharset", "charset"},
		{"\x1b=keypad\x1b>", "keypad"},
		{"trailing\x1b", "trailing"},
		{"unterminated \x1b[12", "unterminated "},
	} {
		if got := stripANSI(tc.in); got != tc.want {
			t.Errorf("stripANSI(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestCollapseCR(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"no returns\n", "no returns\n"},
		{"10%\r50%\r100%\ndone\n", "100%\ndone\n"},
		{"windows\r\nlines\r\n", "windows\nlines\n"},
		{"a\nwiped\r\rb\n", "a\nb\n"},
		{"overwritten then nothing\r\nkept", "overwritten then nothing\nkept"},
		{"x\rgone entirely\r", ""},
	} {
		if got := collapseCR(tc.in); got != tc.want {
			t.Errorf("collapseCR(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"fits", 10, []string{"abc", "def"}, "abcdef"},
		{"exact", 3, []string{"abc"}, "abc"},
		{"cut", 3, []string{"abcdef"}, "[... 3 earlier characters omitted; showing the last 3 ...]\ndef"},
		{"counts characters not bytes", 2, []string{"ééé"}, "[... 1 earlier characters omitted; showing the last 2 ...]\néé"},
		{"cleaned before cutting", 4, []string{"\x1b[31mabcd\x1b[0m"}, "abcd"},
		{"binary", 10, []string{"a\x00b"}, "[binary output: 3 bytes not shown]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := newTail(tc.max)
			for _, w := range tc.writes {
				tl.Write([]byte(w))
			}
			if got := tl.String(); got != tc.want {
				t.Errorf("tail(%d) of %q = %q; want %q", tc.max, tc.writes, got, tc.want)
			}
		})
	}
}

func TestTailDropsFrontOfHugeOutput(t *testing.T) {
	tl := newTail(10)
	line := strings.Repeat("x", 99) + "\n"
	n := 0
	for range 5000 {
		tl.Write([]byte(line))
		n += len(line)
	}
	tl.Write([]byte("the end\n"))
	n += len("the end\n")
	if len(tl.buf) > 2*tl.keep {
		t.Errorf("tail holds %d bytes; want at most %d", len(tl.buf), 2*tl.keep)
	}
	want := "[... " + strconv.Itoa(n-10) + " earlier characters omitted; showing the last 10 ...]\nx\nthe end\n"
	if got := tl.String(); got != want {
		t.Errorf("tail = %q; want %q", got, want)
	}
}

func TestUTF8Stream(t *testing.T) {
	var got []string
	u := utf8Stream{emit: func(s string) { got = append(got, s) }}
	for _, chunk := range [][]byte{[]byte("a\xc3"), []byte("\xa9b\xe2\x82"), []byte("\xac"), []byte("bin\x00ary"), []byte("end\xff"), []byte("\xe2")} {
		u.write(chunk)
	}
	u.flush()
	want := []string{"a", "éb", "€", "end\uFFFD", "\uFFFD"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("streamed %q; want %q", got, want)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/c/main.go", true},
		{"src/**/*.ts", "src/x.ts", true},
		{"src/**/*.ts", "src/a/b/x.ts", true},
		{"src/**/*.ts", "lib/src/x.ts", false},
		{"**", "any/thing", true},
		{"a/**/b/**/c", "a/x/b/y/z/c", true},
		{"a/**/b/**/c", "a/c", false},
		{"?.txt", "ab.txt", false},
		{"[ab].txt", "b.txt", true},
		{"./x/*.go", "x/y.go", true},
	} {
		g, err := parseGlob(tc.pattern)
		if err != nil {
			t.Fatalf("parseGlob(%q): %v", tc.pattern, err)
		}
		if got := g.match(tc.name); got != tc.want {
			t.Errorf("glob %q match %q = %v; want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}
