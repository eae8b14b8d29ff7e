package tools_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/tools"
)

func TestListDirectory(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{
		"b.txt":                "bb",
		"a.txt":                "a",
		"src/main.go":          "package main\n",
		"src/util/u.go":        "package util\n",
		".git/HEAD":            "ref",
		"node_modules/x/y.js":  "y",
		"node_modules/x/z.js":  "z",
		"empty/.keep":          "",
		"src/node_modules/q.j": "q",
	})
	if err := os.Mkdir(filepath.Join(dir, "void"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    map[string]any
		want    string
		wantErr string
	}{
		{"top level", map[string]any{},
			"Directory: .\n\n.git/\na.txt (1 bytes)\nb.txt (2 bytes)\nempty/\nnode_modules/\nsrc/\nvoid/\n", ""},
		{"subdirectory", map[string]any{"directory_path": "src"},
			"Directory: src\n\nmain.go (13 bytes)\nnode_modules/\nutil/\n", ""},
		{"recursive", map[string]any{"recursive": true},
			"Directory: .\n\n.git/ (not descended into)\na.txt (1 bytes)\nb.txt (2 bytes)\nempty/\nempty/.keep (0 bytes)\n" +
				"node_modules/ (not descended into)\nsrc/\nsrc/main.go (13 bytes)\nsrc/node_modules/ (not descended into)\n" +
				"src/util/\nsrc/util/u.go (13 bytes)\nvoid/\n", ""},
		{"recursive into a named skipped dir", map[string]any{"directory_path": "node_modules", "recursive": true},
			"Directory: node_modules\n\nx/\nx/y.js (1 bytes)\nx/z.js (1 bytes)\n", ""},
		{"empty directory", map[string]any{"directory_path": "src/util/../../void"}, "Directory: src/util/../../void\n\n(empty)\n", ""},
		{"not a directory", map[string]any{"directory_path": "a.txt"}, "", `"a.txt" is not a directory`},
		{"missing", map[string]any{"directory_path": "nope"}, "", `"nope" does not exist`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, s, tools.ListDirectory, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("list_directory(%v) = %q, %v; want error containing %q", tc.args, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("list_directory(%v) error: %v", tc.args, err)
			}
			if tc.want != "" && got != tc.want {
				t.Errorf("list_directory(%v) =\n%s\nwant\n%s", tc.args, got, tc.want)
			}
		})
	}
}

func TestListDirectoryIsCapped(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	files := map[string]string{}
	for i := range 1005 {
		files[fmt.Sprintf("f%04d", i)] = ""
	}
	writeFiles(t, dir, files)
	for _, recursive := range []bool{false, true} {
		got := mustRun(t, s, tools.ListDirectory, map[string]any{"recursive": recursive})
		if n := strings.Count(got, " bytes)\n"); n != 1000 {
			t.Errorf("list_directory(recursive=%v) shows %d entries; want 1000", recursive, n)
		}
		if !strings.Contains(got, "[Listing capped at 1000 entries;") || strings.Contains(got, "f1000") {
			t.Errorf("list_directory(recursive=%v) tail = %q; want the cap note and no f1000", recursive, got[len(got)-200:])
		}
	}
}

func TestGlob(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{
		"main.go":               "",
		"README.md":             "",
		"cmd/app/app.go":        "",
		"cmd/app/app_test.go":   "",
		"internal/x/x.go":       "",
		"node_modules/m/m.go":   "",
		"vendor/.git/hooks.go":  "",
		"venv/lib/site.py":      "",
		"src/a.py":              "",
		"src/deep/er/b.py":      "",
		"src/__pycache__/a.pyc": "",
	})
	old := time.Now().Add(-72 * time.Hour)
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			os.Chtimes(p, old, old)
		}
		return nil
	})
	tests := []struct {
		name    string
		args    map[string]any
		want    []string // paths in order
		wantErr string
	}{
		{"top level only", map[string]any{"pattern": "*.go"}, []string{"main.go"}, ""},
		{"any depth", map[string]any{"pattern": "**/*.go"},
			[]string{"cmd/app/app.go", "cmd/app/app_test.go", "internal/x/x.go", "main.go"}, ""},
		{"prefix", map[string]any{"pattern": "cmd/**/*_test.go"}, []string{"cmd/app/app_test.go"}, ""},
		{"in a directory", map[string]any{"pattern": "**/*.py", "directory": "src"}, []string{"src/a.py", "src/deep/er/b.py"}, ""},
		{"fixed depth", map[string]any{"pattern": "*/*.py", "directory": "src"}, nil, ""},
		{"character class", map[string]any{"pattern": "[RM]*"}, []string{"README.md"}, ""},
		{"named skipped dir", map[string]any{"pattern": "node_modules/**/*.go"}, []string{"node_modules/m/m.go"}, ""},
		{"named pycache", map[string]any{"pattern": "**/__pycache__/*"}, []string{"src/__pycache__/a.pyc"}, ""},
		{"missing prefix dir", map[string]any{"pattern": "nope/**/*.go"}, nil, ""},
		{"bad pattern", map[string]any{"pattern": "[a-"}, nil, "invalid glob pattern"},
		{"absolute pattern", map[string]any{"pattern": "/etc/*"}, nil, "must be relative"},
		{"dotdot pattern", map[string]any{"pattern": "../*"}, nil, `must not contain ".."`},
		{"missing pattern", map[string]any{}, nil, `"pattern" is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, s, tools.Glob, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("glob(%v) = %q, %v; want error containing %q", tc.args, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("glob(%v) error: %v", tc.args, err)
			}
			if gotPaths := globPaths(got); strings.Join(gotPaths, ",") != strings.Join(tc.want, ",") {
				t.Errorf("glob(%v) = %v; want %v\n%s", tc.args, gotPaths, tc.want, got)
			}
		})
	}
}

// globPaths returns the paths listed by a glob result.
func globPaths(out string) []string {
	if strings.HasPrefix(out, "No files found") {
		return nil
	}
	_, list, _ := strings.Cut(out, "\n\n")
	var paths []string
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		if l != "" && !strings.HasPrefix(l, "[") {
			paths = append(paths, l)
		}
	}
	return paths
}

func TestGlobRecentFirst(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	now := time.Now()
	mtimes := map[string]time.Time{
		"old-b.txt":    now.Add(-48 * time.Hour),
		"old-a.txt":    now.Add(-30 * 24 * time.Hour),
		"new-1h.txt":   now.Add(-time.Hour),
		"sub/new.txt":  now.Add(-time.Minute),
		"new-10h.txt":  now.Add(-10 * time.Hour),
		"sub/old.txt":  now.Add(-25 * time.Hour),
		"zz-fresh.txt": now,
	}
	for name, mt := range mtimes {
		writeFiles(t, dir, map[string]string{name: "x"})
		if err := os.Chtimes(filepath.Join(dir, name), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	got := globPaths(mustRun(t, s, tools.Glob, map[string]any{"pattern": "**/*.txt"}))
	want := []string{"zz-fresh.txt", "sub/new.txt", "new-1h.txt", "new-10h.txt", "old-a.txt", "old-b.txt", "sub/old.txt"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("glob **/*.txt = %v; want %v", got, want)
	}
}

func TestSearchFileContent(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{
		"a.go":                "package a\n// TODO: fix a.b\nfunc A() {}\n",
		"sub/b.go":            "package b\n// todo lower\n",
		"sub/c.py":            "# TODO python\n",
		"docs/readme.md":      "TODO docs\r\n",
		"bin.dat":             "TODO\x00binary",
		"node_modules/m.js":   "TODO dep\n",
		".git/config":         "TODO git\n",
		"long.txt":            strings.Repeat("x", 600) + "NEEDLE\n",
		"special/regex.txt":   "a+b (c)\naab\n",
		"venv/site/pkg.py":    "TODO venv\n",
		"sub/deeper/more.txt": "TODO deep\n",
	})
	tests := []struct {
		name    string
		args    map[string]any
		want    []string // match lines in order
		wantErr string
	}{
		{"plain text", map[string]any{"pattern": "TODO"},
			[]string{"a.go:2: // TODO: fix a.b", "docs/readme.md:1: TODO docs", "sub/c.py:1: # TODO python", "sub/deeper/more.txt:1: TODO deep"}, ""},
		{"case-insensitive", map[string]any{"pattern": "todo", "case_sensitive": false, "file_pattern": "*.go"},
			[]string{"a.go:2: // TODO: fix a.b", "sub/b.go:2: // todo lower"}, ""},
		{"plain text is literal", map[string]any{"pattern": "a+b (c)"}, []string{"special/regex.txt:1: a+b (c)"}, ""},
		{"regex", map[string]any{"pattern": `^a+b$`, "regex": true}, []string{"special/regex.txt:2: aab"}, ""},
		{"regex func", map[string]any{"pattern": `func [A-Z]\(`, "regex": true}, []string{"a.go:3: func A() {}"}, ""},
		{"file pattern by name", map[string]any{"pattern": "TODO", "file_pattern": "*.py"}, []string{"sub/c.py:1: # TODO python"}, ""},
		{"file pattern by path", map[string]any{"pattern": "TODO", "file_pattern": "sub/**/*.txt"}, []string{"sub/deeper/more.txt:1: TODO deep"}, ""},
		{"directory", map[string]any{"pattern": "TODO", "directory": "sub", "file_pattern": "*/*"}, []string{"sub/deeper/more.txt:1: TODO deep"}, ""},
		{"named skipped dir", map[string]any{"pattern": "TODO", "directory": "node_modules"}, []string{"node_modules/m.js:1: TODO dep"}, ""},
		{"long line clipped", map[string]any{"pattern": "NEEDLE"}, []string{"long.txt:1: " + strings.Repeat("x", 500) + "[+106 chars]"}, ""},
		{"no match", map[string]any{"pattern": "nothing like this"}, nil, ""},
		{"invalid regex", map[string]any{"pattern": "(unclosed", "regex": true}, nil, `invalid regular expression "(unclosed"`},
		{"bad file pattern", map[string]any{"pattern": "x", "file_pattern": "[z-"}, nil, "invalid glob pattern"},
		{"missing pattern", map[string]any{}, nil, `"pattern" is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, s, tools.SearchFileContent, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("search_file_content(%v) = %q, %v; want error containing %q", tc.args, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("search_file_content(%v) error: %v", tc.args, err)
			}
			if gotLines := globPaths(strings.Replace(got, "No matches found", "No files found", 1)); strings.Join(gotLines, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("search_file_content(%v) =\n%s\nwant matches\n%s", tc.args, strings.Join(gotLines, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestSearchFileContentIsCapped(t *testing.T) {
	s, dir := newSet(t, tools.Config{})
	writeFiles(t, dir, map[string]string{"many.txt": strings.Repeat("hit\n", 600)})
	got := mustRun(t, s, tools.SearchFileContent, map[string]any{"pattern": "hit"})
	if n := strings.Count(got, ": hit\n"); n != 500 {
		t.Errorf("search_file_content shows %d matches; want 500", n)
	}
	if !strings.Contains(got, "many.txt:500: hit\n") || !strings.Contains(got, "[Stopped after 500 matches; there are more.") {
		t.Errorf("search_file_content tail = %q; want match 500 and the cap note", got[len(got)-200:])
	}
}
