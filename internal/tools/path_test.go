package tools_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/tools"
)

// escapeFixture is a workspace next to an outside directory holding a
// secret, with symbolic links from the workspace to the outside.
type escapeFixture struct {
	s       *tools.Set
	ws      string
	outside string
}

func newEscapeFixture(t *testing.T) escapeFixture {
	t.Helper()
	s, ws := newSet(t, tools.Config{})
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"secret.txt": "SECRET\n", "sub/deep.txt": "SECRET\n"})
	writeFiles(t, ws, map[string]string{"sub/ok.txt": "fine\n"})
	relOut, err := filepath.Rel(ws, outside)
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{
		"abs-file": filepath.Join(outside, "secret.txt"),
		"abs-dir":  outside,
		"rel-file": filepath.Join(relOut, "secret.txt"),
		"rel-dir":  relOut,
		"sub/up":   "../..", // the parent of the workspace
		"chain":    "rel-dir",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	return escapeFixture{s: s, ws: ws, outside: outside}
}

func TestPathEscapesAreRefused(t *testing.T) {
	f := newEscapeFixture(t)
	outsideFile := filepath.Join(f.outside, "secret.txt")
	type call struct {
		tool string
		args map[string]any
	}
	var tests []struct {
		name string
		call call
	}
	add := func(name, tool string, args map[string]any) {
		tests = append(tests, struct {
			name string
			call call
		}{name, call{tool, args}})
	}
	for _, p := range []string{
		"../secret.txt", "sub/../../secret.txt", outsideFile, "abs-file", "rel-file",
		"abs-dir/secret.txt", "rel-dir/secret.txt", "chain/secret.txt", "sub/up/x.txt", "/etc/passwd",
	} {
		add("read_file "+p, tools.ReadFile, map[string]any{"file_path": p})
		add("write_file "+p, tools.WriteFile, map[string]any{"file_path": p, "content": "pwned"})
		add("write_file append "+p, tools.WriteFile, map[string]any{"file_path": p, "content": "pwned", "append": true})
		add("replace "+p, tools.Replace, map[string]any{"file_path": p, "old_text": "SECRET", "new_text": "pwned"})
	}
	for _, d := range []string{"..", f.outside, "abs-dir", "rel-dir", "chain", "abs-dir/sub", "sub/up", "/"} {
		add("list_directory "+d, tools.ListDirectory, map[string]any{"directory_path": d})
		add("list_directory recursive "+d, tools.ListDirectory, map[string]any{"directory_path": d, "recursive": true})
		add("glob "+d, tools.Glob, map[string]any{"pattern": "**/*", "directory": d})
		add("search_file_content "+d, tools.SearchFileContent, map[string]any{"pattern": "SECRET", "directory": d})
		add("run_shell_command "+d, tools.RunShellCommand, map[string]any{"command": "echo ran > ran.txt", "working_directory": d})
	}
	add("glob prefix through link", tools.Glob, map[string]any{"pattern": "abs-dir/*.txt"})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := run(t, f.s, tc.call.tool, tc.call.args)
			if err == nil {
				t.Fatalf("%s(%v) = %q, nil; want an outside-the-workspace error", tc.call.tool, tc.call.args, got)
			}
			if !strings.Contains(err.Error(), "is outside the workspace") {
				t.Errorf("%s(%v) error = %q; want it to say the path is outside the workspace", tc.call.tool, tc.call.args, err)
			}
			// The error may echo the path the model gave, nothing more.
			given := ""
			for _, v := range tc.call.args {
				if s, ok := v.(string); ok && strings.HasPrefix(s, "/") {
					given = s
				}
			}
			if msg := strings.ReplaceAll(err.Error(), given, ""); given == "" && strings.Contains(msg, f.outside) || strings.Contains(msg, "SECRET") {
				t.Errorf("%s(%v) error %q leaks the outside", tc.call.tool, tc.call.args, err)
			}
		})
	}
	// Nothing outside changed, and nothing ran.
	if got := readFile(t, outsideFile); got != "SECRET\n" {
		t.Errorf("outside secret.txt = %q after the calls; want it unchanged", got)
	}
	if ents, _ := os.ReadDir(f.outside); len(ents) != 2 {
		t.Errorf("outside dir has %d entries after the calls; want 2", len(ents))
	}
	for _, p := range []string{filepath.Join(f.outside, "ran.txt"), filepath.Join(filepath.Dir(f.ws), "x.txt"), filepath.Join(f.ws, "ran.txt")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: a refused call ran", p)
		}
	}
}

func TestWalksDoNotFollowLinksOutside(t *testing.T) {
	f := newEscapeFixture(t)
	got := mustRun(t, f.s, tools.SearchFileContent, map[string]any{"pattern": "SECRET"})
	if got != "No matches found for pattern: SECRET\n" {
		t.Errorf("search_file_content SECRET = %q; want no matches", got)
	}
	got = mustRun(t, f.s, tools.Glob, map[string]any{"pattern": "**/*"})
	if want := "Found 1 file(s)"; !strings.Contains(got, want) || !strings.Contains(got, "sub/ok.txt") {
		t.Errorf("glob **/* = %q; want %q with only sub/ok.txt", got, want)
	}
	got = mustRun(t, f.s, tools.ListDirectory, map[string]any{"recursive": true})
	for _, want := range []string{"abs-file (symlink, broken or outside the workspace)", "rel-dir (symlink, broken or outside the workspace)", "sub/ok.txt (5 bytes)"} {
		if !strings.Contains(got, want) {
			t.Errorf("list_directory recursive = %q; want a line %q", got, want)
		}
	}
	if strings.Contains(got, "secret.txt") || strings.Contains(got, "deep.txt") {
		t.Errorf("list_directory recursive = %q; it lists the outside", got)
	}
}

func TestLinksInsideTheWorkspace(t *testing.T) {
	s, ws := newSet(t, tools.Config{})
	writeFiles(t, ws, map[string]string{"real/a.txt": "alpha\n", "real/b.txt": "beta\n"})
	for name, target := range map[string]string{
		"rel-link":     "real/a.txt",
		"abs-link":     filepath.Join(ws, "real", "b.txt"),
		"dir-link":     "real",
		"abs-dir-link": filepath.Join(ws, "real"),
		"real/up":      "..",
	} {
		if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	reads := []struct{ path, want string }{
		{"rel-link", "alpha"},
		{"abs-link", "beta"},
		{"dir-link/a.txt", "alpha"},
		{"abs-dir-link/b.txt", "beta"},
		{"real/up/real/a.txt", "alpha"},
		{filepath.Join(ws, "real", "a.txt"), "alpha"}, // an absolute path inside
	}
	for _, tc := range reads {
		if got := mustRun(t, s, tools.ReadFile, map[string]any{"file_path": tc.path}); !strings.Contains(got, "1\t"+tc.want) {
			t.Errorf("read_file %s = %q; want line 1 %q", tc.path, got, tc.want)
		}
	}

	// Writing through a link updates its target and keeps the link.
	mustRun(t, s, tools.WriteFile, map[string]any{"file_path": "rel-link", "content": "ALPHA\n"})
	mustRun(t, s, tools.Replace, map[string]any{"file_path": "abs-link", "old_text": "beta", "new_text": "BETA"})
	if got := readFile(t, filepath.Join(ws, "real", "a.txt")); got != "ALPHA\n" {
		t.Errorf("real/a.txt = %q after write_file through rel-link; want %q", got, "ALPHA\n")
	}
	if got := readFile(t, filepath.Join(ws, "real", "b.txt")); got != "BETA\n" {
		t.Errorf("real/b.txt = %q after replace through abs-link; want %q", got, "BETA\n")
	}
	for _, l := range []string{"rel-link", "abs-link"} {
		if fi, err := os.Lstat(filepath.Join(ws, l)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symlink (%v, %v)", l, fi, err)
		}
	}

	got := mustRun(t, s, tools.ListDirectory, map[string]any{"directory_path": "dir-link"})
	if !strings.Contains(got, "a.txt (6 bytes)") {
		t.Errorf("list_directory dir-link = %q; want a.txt listed", got)
	}
	got = mustRun(t, s, tools.RunShellCommand, map[string]any{"command": "cat a.txt", "working_directory": "abs-dir-link"})
	if !strings.Contains(got, "ALPHA") {
		t.Errorf("run_shell_command in abs-dir-link = %q; want ALPHA", got)
	}
}

func TestMissingPathErrorsNameOnlyTheGivenPath(t *testing.T) {
	s, ws := newSet(t, tools.Config{})
	for _, tc := range []struct{ tool, arg string }{
		{tools.ReadFile, "file_path"},
		{tools.Replace, "file_path"},
		{tools.ListDirectory, "directory_path"},
		{tools.Glob, "directory"},
		{tools.RunShellCommand, "working_directory"},
	} {
		args := map[string]any{tc.arg: "no/such", "old_text": "a", "new_text": "b", "pattern": "*", "command": "true"}
		_, err := run(t, s, tc.tool, args)
		if err == nil || err.Error() != `"no/such" does not exist` {
			t.Errorf("%s(%s=no/such) error = %v; want %q", tc.tool, tc.arg, err, `"no/such" does not exist`)
		}
		if err != nil && strings.Contains(err.Error(), ws) {
			t.Errorf("%s error %q contains the host path", tc.tool, err)
		}
	}
}
