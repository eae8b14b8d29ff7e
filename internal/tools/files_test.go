package tools_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/agentd/agentd/internal/tools"
)

func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

func TestReadFile(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{
		"small.txt":  "alpha\nbeta\ngamma\n",
		"nonl.txt":   "one\ntwo",
		"big.txt":    numbered(1, 2500),
		"long.txt":   "short\n" + strings.Repeat("é", 2500) + "\n",
		"crlf.txt":   "a\r\nb\r\n",
		"empty.txt":  "",
		"bin.dat":    "PNG\x00\x01\x02 text after",
		"dir/x.txt":  "x",
		"utf8.txt":   "ok \xff bad byte\n",
		"late0.txt":  strings.Repeat("a", 9000) + "\x00",
		"sub/in.txt": "nested\n",
	})
	tests := []struct {
		name    string
		args    map[string]any
		want    []string // substrings of the result, or of the error if wantErr
		notWant []string
		wantErr bool
	}{
		{"whole file", map[string]any{"file_path": "small.txt"},
			[]string{"File: small.txt (3 lines)\nShowing lines 1-3\n     1\talpha\n     2\tbeta\n     3\tgamma\n"}, []string{"More lines remain"}, false},
		{"no final newline", map[string]any{"file_path": "nonl.txt"}, []string{"(2 lines)", "     2\ttwo\n"}, nil, false},
		{"offset and limit", map[string]any{"file_path": "small.txt", "offset": 2, "limit": 1},
			[]string{"Showing lines 2-2\n     2\tbeta\n", "Use offset=3 to continue"}, []string{"alpha", "gamma"}, false},
		{"default cap", map[string]any{"file_path": "big.txt"},
			[]string{"(2500 lines)", "Showing lines 1-2000", "  2000\tline 2000\n", "showing lines 1-2000 of 2500. Use offset=2001 to continue reading."},
			[]string{"line 2001"}, false},
		{"continue after cap", map[string]any{"file_path": "big.txt", "offset": 2001},
			[]string{"Showing lines 2001-2500", "  2500\tline 2500\n"}, []string{"More lines remain", "line 2000\n"}, false},
		{"explicit limit above cap", map[string]any{"file_path": "big.txt", "limit": 3000},
			[]string{"Showing lines 1-2500"}, []string{"More lines remain"}, false},
		{"long line cut", map[string]any{"file_path": "long.txt"},
			[]string{"     2\t" + strings.Repeat("é", 2000) + "[+500 chars]\n", "[1 line(s) truncated to 2000 chars]"}, nil, false},
		{"crlf", map[string]any{"file_path": "crlf.txt"}, []string{"(2 lines, CRLF line endings)", "     1\ta\n"}, []string{"\r"}, false},
		{"empty", map[string]any{"file_path": "empty.txt"}, []string{"(0 lines)", "(empty file)"}, nil, false},
		{"invalid utf-8 replaced", map[string]any{"file_path": "utf8.txt"}, []string{"ok \uFFFD bad byte"}, nil, false},
		{"NUL after the sniffed bytes is text", map[string]any{"file_path": "late0.txt"}, []string{"(1 lines)"}, nil, false},
		{"nested", map[string]any{"file_path": "sub/in.txt"}, []string{"     1\tnested"}, nil, false},
		{"binary", map[string]any{"file_path": "bin.dat"}, []string{`"bin.dat" is a binary file (17 bytes)`}, nil, true},
		{"missing", map[string]any{"file_path": "nope.txt"}, []string{`"nope.txt" does not exist`}, nil, true},
		{"directory", map[string]any{"file_path": "dir"}, []string{`"dir" is a directory`}, nil, true},
		{"offset past end", map[string]any{"file_path": "small.txt", "offset": 10}, []string{"offset 10 is past the end", "3 lines"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, s, tools.ReadFile, tc.args)
			text := got
			if tc.wantErr {
				if err == nil {
					t.Fatalf("read_file(%v) = %q, nil; want an error", tc.args, got)
				}
				text = err.Error()
			} else if err != nil {
				t.Fatalf("read_file(%v) error: %v", tc.args, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("read_file(%v) = %q; want it to contain %q", tc.args, text, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(text, w) {
					t.Errorf("read_file(%v) = %q; want it not to contain %q", tc.args, text, w)
				}
			}
		})
	}
}

func TestReadFileRefusesFIFO(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	if err := mkfifo(filepath.Join(dir, "pipe")); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := run(t, s, tools.ReadFile, map[string]any{"file_path": "pipe"})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("read_file(pipe) error = %v; want not a regular file", err)
	}
}

// tempLeftovers lists files that look like write_file's temporary files.
func tempLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".agentd-tmp-") {
			left = append(left, p)
		}
		return nil
	})
	return left
}

func TestWriteFile(t *testing.T) {
	tests := []struct {
		name     string
		existing map[string]string
		args     map[string]any
		want     string // the result
		file     string // path checked afterwards
		content  string // its content
	}{
		{"create", nil, map[string]any{"file_path": "new.txt", "content": "hello\n"},
			"Wrote 6 bytes to new.txt", "new.txt", "hello\n"},
		{"create parents", nil, map[string]any{"file_path": "a/b/c.txt", "content": "deep"},
			"Wrote 4 bytes to a/b/c.txt", "a/b/c.txt", "deep"},
		{"overwrite", map[string]string{"f.txt": "old content that is longer"}, map[string]any{"file_path": "f.txt", "content": "new"},
			"Wrote 3 bytes to f.txt", "f.txt", "new"},
		{"empty content", map[string]string{"f.txt": "old"}, map[string]any{"file_path": "f.txt", "content": ""},
			"Wrote 0 bytes to f.txt", "f.txt", ""},
		{"append", map[string]string{"f.txt": "one\n"}, map[string]any{"file_path": "f.txt", "content": "two\n", "append": true},
			"Appended 4 bytes to f.txt", "f.txt", "one\ntwo\n"},
		{"append creates", nil, map[string]any{"file_path": "d/log.txt", "content": "x", "append": true},
			"Appended 1 bytes to d/log.txt", "d/log.txt", "x"},
		{"clean path", nil, map[string]any{"file_path": "./a/../b.txt", "content": "b"},
			"Wrote 1 bytes to ./a/../b.txt", "b.txt", "b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newSet(t, tools.Config{})
			writeFiles(t, dir, tc.existing)
			got := mustRun(t, s, tools.WriteFile, tc.args)
			if got != tc.want {
				t.Errorf("write_file(%v) = %q; want %q", tc.args, got, tc.want)
			}
			if c := readFile(t, filepath.Join(dir, tc.file)); c != tc.content {
				t.Errorf("%s = %q; want %q", tc.file, c, tc.content)
			}
			if left := tempLeftovers(t, dir); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestWriteFileErrors(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{"d/x.txt": "x", "plain": "p"})
	for _, tc := range []struct {
		name string
		args map[string]any
		want string
	}{
		{"directory", map[string]any{"file_path": "d", "content": "x"}, `"d" is a directory`},
		{"workspace itself", map[string]any{"file_path": ".", "content": "x"}, "is the workspace directory"},
		{"parent is a file", map[string]any{"file_path": "plain/x.txt", "content": "x"}, `"plain/x.txt"`},
		{"no content", map[string]any{"file_path": "new.txt"}, `argument "content" is required`},
		{"content not a string", map[string]any{"file_path": "new.txt", "content": 3}, `argument "content" must be a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, s, tools.WriteFile, tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("write_file(%v) = %q, %v; want error containing %q", tc.args, got, err, tc.want)
			}
		})
	}
	if left := tempLeftovers(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestWriteFileIsAtomicAndKeepsMode(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	p := filepath.Join(dir, "script.sh")
	writeFiles(t, dir, map[string]string{"script.sh": "#!/bin/sh\necho old\n"})
	if err := os.Chmod(p, 0o750); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, s, tools.WriteFile, map[string]any{"file_path": "script.sh", "content": "#!/bin/sh\necho new\n"})
	after, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if os.SameFile(before, after) {
		t.Error("write_file rewrote the file in place; want a new file renamed over it")
	}
	if got := after.Mode().Perm(); got != 0o750 {
		t.Errorf("mode after write_file = %v; want %v", got, os.FileMode(0o750))
	}
	if left := tempLeftovers(t, dir); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestReplace(t *testing.T) {
	const orig = "func a() {\n\treturn 1\n}\n\nfunc b() {\n\treturn 1\n}\n"
	// uni (u.txt, for the cases that name it) has what models retype
	// differently: CRLF, curly quotes, an em dash, trailing spaces, NBSP and
	// a fullwidth digit, after multi-byte runes.
	const uni = "// Grüße 日本 ✓\r\nsay(“hi”, ‘x’)   \r\nd := a — b\r\nn :=\u00a0１\r\n"
	const loose = " (matched after normalising quotes, dashes, Unicode and whitespace; check the result)"
	tests := []struct {
		name    string
		args    map[string]any
		want    string // the result, or a substring of the error
		wantErr bool
		content string // the file afterwards
	}{
		{"unique", map[string]any{"old_text": "func a() {\n\treturn 1", "new_text": "func a() {\n\treturn 2"},
			"Replaced 1 occurrence(s) in f.go", false, strings.Replace(orig, "return 1", "return 2", 1)},
		{"replace all", map[string]any{"old_text": "return 1", "new_text": "return 0", "replace_all": true},
			"Replaced 2 occurrence(s) in f.go", false, strings.ReplaceAll(orig, "return 1", "return 0")},
		{"delete", map[string]any{"old_text": "\nfunc b() {\n\treturn 1\n}\n", "new_text": ""},
			"Replaced 1 occurrence(s) in f.go", false, "func a() {\n\treturn 1\n}\n"},
		{"ambiguous", map[string]any{"old_text": "return 1", "new_text": "return 2"},
			"old_text occurs 2 times", true, orig},
		{"not found", map[string]any{"old_text": "return 3", "new_text": "return 2"},
			"old_text was not found", true, orig},
		{"loose: spaces for a tab", map[string]any{"old_text": "func a() {\n    return 1\n}", "new_text": "func a() {\n\treturn 2\n}"},
			"Replaced 1 occurrence(s) in f.go" + loose, false, strings.Replace(orig, "return 1", "return 2", 1)},
		{"loose: ambiguous", map[string]any{"old_text": "    return 1", "new_text": "x"},
			"matches only loosely (ignoring differences in quotes, dashes, Unicode forms and whitespace) 2 times, at lines 2 and 6", true, orig},
		{"loose: replace all", map[string]any{"old_text": "    return 1", "new_text": "\treturn 0", "replace_all": true},
			"Replaced 2 occurrence(s) in f.go" + loose, false, strings.ReplaceAll(orig, "\treturn 1", "\treturn 0")},
		{"loose: blank old_text is not matched", map[string]any{"old_text": "\u00a0\u00a0", "new_text": "x"},
			"old_text was not found", true, orig},
		{"loose: quotes, dash and trailing spaces in a CRLF file", map[string]any{"file_path": "u.txt", "old_text": "say(\"hi\", 'x')\nd := a - b", "new_text": "say(\"bye\")\nd := a + b"},
			"Replaced 1 occurrence(s) in u.txt" + loose, false, "// Grüße 日本 ✓\r\nsay(\"bye\")\nd := a + b\r\nn :=\u00a0１\r\n"},
		{"loose: NBSP and fullwidth digit", map[string]any{"file_path": "u.txt", "old_text": "n := 1", "new_text": "n := 2"},
			"Replaced 1 occurrence(s) in u.txt" + loose, false, "// Grüße 日本 ✓\r\nsay(“hi”, ‘x’)   \r\nd := a — b\r\nn := 2\r\n"},
		{"loose: no match either", map[string]any{"file_path": "u.txt", "old_text": "say('bye')", "new_text": "x"},
			"old_text was not found in \"u.txt\"", true, uni},
		{"empty old_text", map[string]any{"old_text": "", "new_text": "x"},
			"old_text is empty", true, orig},
		{"missing new_text", map[string]any{"old_text": "return 1"},
			`"new_text" is required`, true, orig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newSet(t, tools.Config{})
			files := map[string]string{"f.go": orig, "u.txt": uni}
			writeFiles(t, dir, files)
			if _, ok := tc.args["file_path"]; !ok {
				tc.args["file_path"] = "f.go"
			}
			edited := tc.args["file_path"].(string)
			got, err := run(t, s, tools.Replace, tc.args)
			switch {
			case tc.wantErr && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("replace(%v) = %q, %v; want error containing %q", tc.args, got, err, tc.want)
			case !tc.wantErr && (err != nil || got != tc.want):
				t.Errorf("replace(%v) = %q, %v; want %q", tc.args, got, err, tc.want)
			}
			files[edited] = tc.content
			for name, want := range files {
				if c := readFile(t, filepath.Join(dir, name)); c != want {
					t.Errorf("%s = %q; want %q", name, c, want)
				}
			}
			if left := tempLeftovers(t, dir); len(left) > 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

func TestReplaceErrors(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{"bin": "a\x00b", "d/x": "x"})
	for _, tc := range []struct{ path, want string }{
		{"missing.txt", `"missing.txt" does not exist`},
		{"bin", `"bin" is a binary file`},
		{"d", `"d" is a directory`},
	} {
		_, err := run(t, s, tools.Replace, map[string]any{"file_path": tc.path, "old_text": "a", "new_text": "b"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("replace(%s) error = %v; want %q", tc.path, err, tc.want)
		}
	}
}

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o600) }
