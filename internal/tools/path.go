package tools

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSymlinks bounds how many symbolic links one path may go through, as
// Linux's ELOOP limit does.
const maxSymlinks = 40

// outsideError is the tool error for a path that leaves the workspace.
type outsideError struct{ path string }

func (e *outsideError) Error() string {
	return fmt.Sprintf("path %q is outside the workspace", e.path)
}

// resolve maps a path the model gave (relative to the workspace, or absolute
// inside it) to a clean path relative to the workspace root, with every
// symbolic link along it replaced by its target: "." is the root itself.
// A path that leaves the workspace, lexically or through a link, is an
// *outsideError. The result is only a name: every use of it still goes
// through s.root, which refuses escapes even if the tree changes meanwhile.
func (s *Set) resolve(p string) (string, error) {
	rel, err := s.lexical(p)
	if err != nil {
		return "", err
	}
	return s.followLinks(p, rel)
}

// lexical cleans p and makes it relative to the workspace, without touching
// the file system.
func (s *Set) lexical(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("path %q contains a NUL byte", p)
	}
	c := filepath.Clean(p)
	if filepath.IsAbs(c) {
		for _, base := range [...]string{s.dir, s.realDir} {
			if r, ok := within(base, c); ok {
				return r, nil
			}
		}
		return "", &outsideError{p}
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", &outsideError{p}
	}
	return c, nil
}

// within returns p relative to base if p is base or below it.
func within(base, p string) (string, bool) {
	r, err := filepath.Rel(base, p)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", false
	}
	return r, true
}

// followLinks walks rel component by component inside the root, replacing
// symbolic links by their targets (absolute targets must lie inside the
// workspace). Components that do not exist yet are kept as written.
func (s *Set) followLinks(p, rel string) (string, error) {
	todo := strings.Split(rel, "/")
	var done []string
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", &outsideError{p}
			}
			done = done[:len(done)-1]
			continue
		}
		cur := strings.Join(append(done[:len(done):len(done)], name), "/")
		fi, err := s.root.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			done = append(done, name)
			continue
		}
		if err != nil {
			return "", s.fsError(p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, name)
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("path %q: too many levels of symbolic links", p)
		}
		target, err := s.root.Readlink(cur)
		if err != nil {
			return "", s.fsError(p, err)
		}
		if filepath.IsAbs(target) {
			r, err := s.lexical(target)
			if err != nil {
				return "", &outsideError{p}
			}
			done, target = nil, r
		}
		todo = append(strings.Split(filepath.ToSlash(target), "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return strings.Join(done, "/"), nil
}

// fsError turns an error from s.root into a tool error that names only p,
// the path the model gave.
func (s *Set) fsError(p string, err error) error {
	var oe *outsideError
	switch {
	case errors.As(err, &oe):
		return err
	case errors.Is(err, os.ErrClosed):
		return ErrClosed
	case escapes(err):
		return &outsideError{p}
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%q does not exist", p)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%q: permission denied", p)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%q: a component of the path is not a directory", p)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%q is a directory", p)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("path %q: too many levels of symbolic links", p)
	}
	return fmt.Errorf("%q: %v", p, leaf(err))
}

// escapes reports whether err is os.Root refusing a path that leaves it. The
// os package does not export that error, only its text.
func escapes(err error) bool {
	return leaf(err).Error() == "path escapes from parent"
}

// leaf returns the innermost error of a chain: the errno of a PathError,
// without the path it carries.
func leaf(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
