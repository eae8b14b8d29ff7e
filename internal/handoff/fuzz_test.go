package handoff

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzUnpack: whatever archive a peer sends, unpacking never writes outside
// the staging directory (names with "..", absolute names, links, a file
// written through a link) and never panics.
func FuzzUnpack(f *testing.F) {
	add := func(entries ...tar.Header) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			body := []byte("x")
			if h.Typeflag != tar.TypeReg {
				body = nil
			}
			h.Size = int64(len(body))
			_ = tw.WriteHeader(&h)
			_, _ = tw.Write(body)
		}
		_ = tw.Close()
		f.Add(buf.Bytes())
	}
	add(tar.Header{Name: "workspace/a/", Typeflag: tar.TypeDir, Mode: 0o755}, tar.Header{Name: "workspace/a/b", Typeflag: tar.TypeReg, Mode: 0o644})
	add(tar.Header{Name: "workspace/l", Typeflag: tar.TypeSymlink, Linkname: "../../outside"}, tar.Header{Name: "workspace/l/x", Typeflag: tar.TypeReg})
	add(tar.Header{Name: "workspace/../x", Typeflag: tar.TypeReg})
	add(tar.Header{Name: "/abs", Typeflag: tar.TypeReg})
	add(tar.Header{Name: "workspace/h", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"})
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, archive []byte) {
		// A directory per input under one base (t.TempDir per input would
		// cost more than the unpacking).
		parent, err := os.MkdirTemp(base, "in")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		staged := filepath.Join(parent, "staged")
		if err := os.Mkdir(staged, 0o700); err != nil {
			t.Fatal(err)
		}
		_ = unpack(tar.NewReader(bytes.NewReader(archive)), staged)
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "staged" {
			t.Fatalf("unpacking wrote beside the staging directory: %v", entries)
		}
	})
}
