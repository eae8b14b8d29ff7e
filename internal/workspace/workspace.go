// Package workspace holds what agentd itself writes in a session's
// workspace, a directory whose content the session's commands control.
//
// agentd runs unconfined, so each of its writes there goes through an
// os.Root of the workspace: a link the session planted never carries the
// write out of it (into another session's workspace, say).
package workspace

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnsureDir makes the directory rel (slash-separated, relative) inside
// root, as os.Root.MkdirAll does, and repairs what a session may have put
// in its way: a link, a file or a FIFO at rel or one of its parents is
// removed (the link itself, never what it points to) and a directory made
// in its place. rel is agentd's own (".agentd/tmp"), so nothing of the
// session's is lost but what it planted there.
func EnsureDir(root *os.Root, rel string, perm fs.FileMode) error {
	err := root.MkdirAll(rel, perm)
	if err == nil {
		return nil
	}
	parts := strings.Split(filepath.ToSlash(filepath.Clean(rel)), "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		fi, lerr := root.Lstat(p)
		if errors.Is(lerr, fs.ErrNotExist) {
			break
		}
		if lerr != nil {
			return err
		}
		if !fi.IsDir() {
			if rerr := root.Remove(p); rerr != nil {
				return err
			}
			break
		}
	}
	return root.MkdirAll(rel, perm)
}
