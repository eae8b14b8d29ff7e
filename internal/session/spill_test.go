package session

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSpill: a long tool result lands in the workspace's
// .agentd/tool-outputs, whatever the session planted there: a link out is
// replaced (its target untouched), a FIFO or a file under the expected name
// is never opened.
func TestSpill(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, ws, other string)
	}{
		{"fresh workspace", func(*testing.T, string, string) {}},
		{"tool-outputs links to another workspace", func(t *testing.T, ws, other string) {
			os.MkdirAll(filepath.Join(ws, ".agentd"), 0o700)
			if err := os.Symlink(other, filepath.Join(ws, ".agentd", "tool-outputs")); err != nil {
				t.Fatal(err)
			}
		}},
		{".agentd links to another workspace", func(t *testing.T, ws, other string) {
			if err := os.Symlink(other, filepath.Join(ws, ".agentd")); err != nil {
				t.Fatal(err)
			}
		}},
		{"a FIFO under the expected name", func(t *testing.T, ws, _ string) {
			os.MkdirAll(filepath.Join(ws, ".agentd", "tool-outputs"), 0o700)
			if err := syscall.Mkfifo(filepath.Join(ws, ".agentd", "tool-outputs", "call_1.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a link to another workspace's file under the expected name", func(t *testing.T, ws, other string) {
			os.MkdirAll(filepath.Join(ws, ".agentd", "tool-outputs"), 0o700)
			if err := os.Symlink(filepath.Join(other, "victim"), filepath.Join(ws, ".agentd", "tool-outputs", "call_1.txt")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ws, other := t.TempDir(), t.TempDir()
			if err := os.WriteFile(filepath.Join(other, "victim"), []byte("keep"), 0o600); err != nil {
				t.Fatal(err)
			}
			tc.plant(t, ws, other)
			rel, err := spill(ws, "call_1", "the long output")
			if err != nil {
				t.Fatalf("spill = %v", err)
			}
			if !strings.HasPrefix(rel, filepath.Join(".agentd", "tool-outputs")+"/") {
				t.Errorf("spill path %q; want it under .agentd/tool-outputs", rel)
			}
			fi, err := os.Lstat(filepath.Join(ws, rel))
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%s: %v, %v; want a regular file in the workspace", rel, fi, err)
			}
			if b, _ := os.ReadFile(filepath.Join(ws, rel)); string(b) != "the long output" {
				t.Errorf("%s = %q", rel, b)
			}
			entries, _ := os.ReadDir(other)
			if b, err := os.ReadFile(filepath.Join(other, "victim")); len(entries) != 1 || err != nil || string(b) != "keep" {
				t.Errorf("the other workspace changed: %d entries, victim %q, %v", len(entries), b, err)
			}
		})
	}
}
