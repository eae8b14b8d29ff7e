package workspace_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/agentd/agentd/internal/workspace"
)

func TestEnsureDir(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, ws, outside string)
	}{
		{"nothing there", func(*testing.T, string, string) {}},
		{"already a directory", func(t *testing.T, ws, _ string) { mkdir(t, filepath.Join(ws, ".agentd", "tmp")) }},
		{"a link out at the leaf", func(t *testing.T, ws, outside string) {
			mkdir(t, filepath.Join(ws, ".agentd"))
			symlink(t, outside, filepath.Join(ws, ".agentd", "tmp"))
		}},
		{"a link out at a parent", func(t *testing.T, ws, outside string) { symlink(t, outside, filepath.Join(ws, ".agentd")) }},
		{"a dangling link", func(t *testing.T, ws, outside string) {
			mkdir(t, filepath.Join(ws, ".agentd"))
			symlink(t, filepath.Join(outside, "nope"), filepath.Join(ws, ".agentd", "tmp"))
		}},
		{"a file at the leaf", func(t *testing.T, ws, _ string) {
			mkdir(t, filepath.Join(ws, ".agentd"))
			if err := os.WriteFile(filepath.Join(ws, ".agentd", "tmp"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a FIFO at the leaf", func(t *testing.T, ws, _ string) {
			mkdir(t, filepath.Join(ws, ".agentd"))
			if err := syscall.Mkfifo(filepath.Join(ws, ".agentd", "tmp"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, outside := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, ws, outside)
			root, err := os.OpenRoot(ws)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			if err := workspace.EnsureDir(root, ".agentd/tmp", 0o700); err != nil {
				t.Fatalf("EnsureDir = %v; want the directory made", err)
			}
			for _, p := range []string{filepath.Join(ws, ".agentd"), filepath.Join(ws, ".agentd", "tmp")} {
				if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
					t.Errorf("%s: %v, %v; want a real directory", p, fi, err)
				}
			}
			entries, _ := os.ReadDir(outside)
			if len(entries) != 1 {
				t.Errorf("outside holds %d entries; want only the victim file, untouched", len(entries))
			}
			if b, err := os.ReadFile(filepath.Join(outside, "victim")); err != nil || string(b) != "keep" {
				t.Errorf("victim = %q, %v; want it unchanged", b, err)
			}
		})
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o700); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
