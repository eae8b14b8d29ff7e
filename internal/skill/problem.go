package skill

import (
	"errors"
	"fmt"
)

// Problem is an error or a warning about one file or directory of the
// configuration tree.
type Problem struct {
	Path    string // slash-separated, relative to the configuration root
	Line    int    // 1-based line in Path; 0 when it concerns the whole entry
	Message string
}

// Error formats the problem as "path:line: message", or "path: message"
// when it has no line.
func (p *Problem) Error() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.Path, p.Line, p.Message)
	}
	return fmt.Sprintf("%s: %s", p.Path, p.Message)
}

// ErrUnknownSet is returned for a skill set that does not exist.
var ErrUnknownSet = errors.New("unknown skill set")

// problems collects errors and warnings during a load.
type problems struct {
	errs, warns []*Problem
}

func (ps *problems) errorf(path string, line int, format string, args ...any) {
	ps.errs = append(ps.errs, &Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (ps *problems) warnf(path string, line int, format string, args ...any) {
	ps.warns = append(ps.warns, &Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// err joins the errors, or returns nil.
func (ps *problems) err() error {
	if len(ps.errs) == 0 {
		return nil
	}
	errs := make([]error, len(ps.errs))
	for i, p := range ps.errs {
		errs[i] = p
	}
	return errors.Join(errs...)
}
