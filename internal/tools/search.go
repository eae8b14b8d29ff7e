package tools

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/agent"
)

const (
	maxListEntries     = 1000
	maxGlobResults     = 1000
	maxSearchMatches   = 500
	maxSearchFileBytes = 10 << 20 // search_file_content skips larger files
	maxMatchLineChars  = 500      // a matching line is cut after this many characters
	recentWindow       = 24 * time.Hour
)

// skipSet returns the names of the directories that list_directory
// (recursive), glob and search_file_content do not descend into: .git,
// node_modules, .venv, venv and __pycache__, minus any that one of the given
// patterns or paths names as a component (a model asking for
// node_modules/lodash/**/*.js wants those files).
func skipSet(named ...string) map[string]bool {
	skip := map[string]bool{".git": true, "node_modules": true, ".venv": true, "venv": true, "__pycache__": true}
	for _, n := range named {
		for _, part := range strings.Split(n, "/") {
			delete(skip, part)
		}
	}
	return skip
}

// dirArg resolves a directory argument and checks that it is a directory.
func (s *Set) dirArg(a args, name string) (p, rel string, err error) {
	p, err = a.str(name, ".")
	if err != nil {
		return "", "", err
	}
	if p == "" {
		p = "."
	}
	if rel, err = s.resolve(p); err != nil {
		return "", "", err
	}
	fi, err := s.root.Stat(rel)
	if err != nil {
		return "", "", s.fsError(p, err)
	}
	if !fi.IsDir() {
		return "", "", fmt.Errorf("%q is not a directory", p)
	}
	return p, rel, nil
}

// under returns the walked path pth relative to the walk's start dir.
func under(dir, pth string) string {
	if dir == "." {
		return pth
	}
	return strings.TrimPrefix(pth, dir+"/")
}

// statEntry returns what a walked entry is, following a symbolic link only
// when it stays inside the workspace. ok is false for a broken or escaping
// link.
func (s *Set) statEntry(pth string, d fs.DirEntry) (fi fs.FileInfo, ok bool) {
	if d.Type()&fs.ModeSymlink == 0 {
		fi, err := d.Info()
		return fi, err == nil
	}
	target, err := s.followLinks(pth, pth)
	if err != nil {
		return nil, false
	}
	fi, err = s.root.Stat(target)
	return fi, err == nil
}

func (s *Set) listDirectory(ctx context.Context, _ agent.Call, a args) (string, error) {
	recursive, err := a.boolean("recursive", false)
	if err != nil {
		return "", err
	}
	p, rel, err := s.dirArg(a, "directory_path")
	if err != nil {
		return "", err
	}
	describe := func(pth string, d fs.DirEntry) string {
		name := under(rel, pth)
		if d.IsDir() {
			return name + "/"
		}
		fi, ok := s.statEntry(pth, d)
		switch {
		case d.Type()&fs.ModeSymlink != 0 && !ok:
			return name + " (symlink, broken or outside the workspace)"
		case d.Type()&fs.ModeSymlink != 0 && fi.IsDir():
			return name + "/ (symlink)"
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Sprintf("%s (symlink, %d bytes)", name, fi.Size())
		case ok && fi.Mode().IsRegular():
			return fmt.Sprintf("%s (%d bytes)", name, fi.Size())
		}
		return name + " (special file)"
	}

	var lines []string
	more := 0 // entries not shown; -1: some, uncounted
	if !recursive {
		ents, err := fs.ReadDir(s.root.FS(), rel)
		if err != nil {
			return "", s.fsError(p, err)
		}
		for i, e := range ents {
			if i == maxListEntries {
				more = len(ents) - i
				break
			}
			lines = append(lines, describe(path.Join(rel, e.Name()), e))
		}
	} else {
		skip := skipSet(p)
		err := fs.WalkDir(s.root.FS(), rel, func(pth string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pth == rel {
				return err
			}
			if len(lines) == maxListEntries {
				more = -1
				return fs.SkipAll
			}
			if err != nil { // a subdirectory that cannot be read
				lines = append(lines, under(rel, pth)+"/ (cannot be read)")
				return nil
			}
			line := describe(pth, d)
			if d.IsDir() && skip[d.Name()] {
				lines = append(lines, line+" (not descended into)")
				return fs.SkipDir
			}
			lines = append(lines, line)
			return nil
		})
		if ctx.Err() != nil {
			return "", cancelled(ctx)
		}
		if err != nil {
			return "", s.fsError(p, err)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "Directory: %s\n\n", p)
	if len(lines) == 0 {
		b.WriteString("(empty)\n")
	}
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	switch {
	case more > 0:
		fmt.Fprintf(&b, "\n[Listing capped at %d entries; %d more not shown. Use glob to narrow it down.]\n", maxListEntries, more)
	case more < 0:
		fmt.Fprintf(&b, "\n[Listing capped at %d entries; more not shown. List a subdirectory or use glob to narrow it down.]\n", maxListEntries)
	}
	return b.String(), nil
}

// globPattern is a parsed glob: path segments matched one by one, where a
// "**" segment matches any number of segments.
type globPattern []string

func parseGlob(pattern string) (globPattern, error) {
	if strings.HasPrefix(pattern, "/") {
		return nil, fmt.Errorf("pattern %q must be relative to the directory searched", pattern)
	}
	var g globPattern
	for _, seg := range strings.Split(pattern, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("pattern %q must not contain \"..\"; set directory instead", pattern)
		case "**":
			if len(g) > 0 && g[len(g)-1] == "**" {
				continue
			}
		default:
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("invalid glob pattern %q", pattern)
			}
		}
		g = append(g, seg)
	}
	if len(g) == 0 {
		return nil, fmt.Errorf("invalid glob pattern %q", pattern)
	}
	return g, nil
}

// match reports whether the slash-separated path name matches g.
func (g globPattern) match(name string) bool {
	return matchSegments(g, strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// literalPrefix splits g into its leading segments without wildcards (a
// directory to start walking from) and the rest, which keeps at least one
// segment.
func (g globPattern) literalPrefix() (prefix []string, rest globPattern) {
	i := 0
	for i < len(g)-1 && !strings.ContainsAny(g[i], `*?[\`) {
		i++
	}
	return g[:i], g[i:]
}

// depth is how many segments a match of g has, or -1 if g has "**".
func (g globPattern) depth() int {
	if slices.Contains(g, "**") {
		return -1
	}
	return len(g)
}

func (s *Set) glob(ctx context.Context, _ agent.Call, a args) (string, error) {
	pattern, err := a.required("pattern")
	if err != nil {
		return "", err
	}
	g, err := parseGlob(pattern)
	if err != nil {
		return "", err
	}
	p, rel, err := s.dirArg(a, "directory")
	if err != nil {
		return "", err
	}
	prefix, rest := g.literalPrefix()
	start := rel
	if len(prefix) > 0 {
		if start, err = s.resolve(path.Join(append([]string{rel}, prefix...)...)); err != nil {
			return "", err
		}
		if fi, err := s.root.Stat(start); err != nil || !fi.IsDir() {
			return fmt.Sprintf("No files found matching pattern: %s\n", pattern), nil
		}
	}
	skip := skipSet(pattern, p)
	maxDepth := rest.depth()

	type hit struct {
		path  string
		mtime time.Time
	}
	var hits []hit
	err = fs.WalkDir(s.root.FS(), start, func(pth string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if pth == start {
			return err
		}
		if err != nil {
			return nil // an unreadable subdirectory: skip it
		}
		name := under(start, pth)
		if d.IsDir() {
			if skip[d.Name()] || maxDepth >= 0 && strings.Count(name, "/")+1 >= maxDepth {
				return fs.SkipDir
			}
			return nil
		}
		if !rest.match(name) {
			return nil
		}
		if fi, ok := s.statEntry(pth, d); ok && fi.Mode().IsRegular() {
			hits = append(hits, hit{pth, fi.ModTime()})
		}
		return nil
	})
	if ctx.Err() != nil {
		return "", cancelled(ctx)
	}
	if err != nil {
		return "", s.fsError(p, err)
	}
	if len(hits) == 0 {
		return fmt.Sprintf("No files found matching pattern: %s\n", pattern), nil
	}

	now := time.Now()
	recent := func(h hit) bool { return now.Sub(h.mtime) < recentWindow }
	slices.SortFunc(hits, func(x, y hit) int {
		rx, ry := recent(x), recent(y)
		switch {
		case rx && !ry:
			return -1
		case ry && !rx:
			return 1
		case rx && ry && !x.mtime.Equal(y.mtime):
			return y.mtime.Compare(x.mtime) // newest first
		}
		return cmp.Compare(x.path, y.path)
	})

	var b strings.Builder
	fmt.Fprintf(&b, "Found %d file(s) matching %q (recently modified first):\n\n", len(hits), pattern)
	for i, h := range hits {
		if i == maxGlobResults {
			fmt.Fprintf(&b, "\n[Showing the first %d of %d files; narrow the pattern or directory.]\n", maxGlobResults, len(hits))
			break
		}
		b.WriteString(h.path)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func (s *Set) search(ctx context.Context, _ agent.Call, a args) (string, error) {
	pattern, err := a.required("pattern")
	if err != nil {
		return "", err
	}
	filePattern, err := a.str("file_pattern", "**/*")
	if err != nil {
		return "", err
	}
	if filePattern == "" {
		filePattern = "**/*"
	}
	caseSensitive, err := a.boolean("case_sensitive", true)
	if err != nil {
		return "", err
	}
	isRegex, err := a.boolean("regex", false)
	if err != nil {
		return "", err
	}
	expr := pattern
	if !isRegex {
		expr = regexp.QuoteMeta(pattern)
	}
	if !caseSensitive {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return "", fmt.Errorf("invalid regular expression %q (RE2 syntax): %v", pattern, leaf(err))
	}
	g, err := parseGlob(filePattern)
	if err != nil {
		return "", err
	}
	byName := !strings.Contains(filePattern, "/")
	p, rel, err := s.dirArg(a, "directory")
	if err != nil {
		return "", err
	}
	skip := skipSet(filePattern, p)

	var (
		matches            []string
		capped             bool
		large, unreadables int
	)
	err = fs.WalkDir(s.root.FS(), rel, func(pth string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if pth == rel {
			return err
		}
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if skip[d.Name()] {
				return fs.SkipDir
			}
			return nil
		}
		name := under(rel, pth)
		if byName {
			if ok, _ := path.Match(filePattern, d.Name()); !ok {
				return nil
			}
		} else if !g.match(name) {
			return nil
		}
		if fi, ok := s.statEntry(pth, d); !ok || !fi.Mode().IsRegular() {
			return nil // a broken or escaping link, or not a file
		}
		data, err := s.readForSearch(pth, d)
		switch {
		case errors.Is(err, errTooLarge):
			large++
			return nil
		case err != nil:
			unreadables++
			return nil
		case isBinary(data):
			return nil
		}
		for n := 1; len(data) > 0; n++ {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if !re.Match(line) {
				continue
			}
			if len(matches) == maxSearchMatches {
				capped = true
				return fs.SkipAll
			}
			matches = append(matches, fmt.Sprintf("%s:%d: %s", pth, n, clip(bytes.TrimSuffix(line, []byte("\r")))))
		}
		return nil
	})
	if ctx.Err() != nil {
		return "", cancelled(ctx)
	}
	if err != nil {
		return "", s.fsError(p, err)
	}

	var b strings.Builder
	if len(matches) == 0 {
		fmt.Fprintf(&b, "No matches found for pattern: %s\n", pattern)
	} else {
		fmt.Fprintf(&b, "Found %d match(es) for %q:\n\n", len(matches), pattern)
		for _, m := range matches {
			b.WriteString(m)
			b.WriteByte('\n')
		}
	}
	if capped {
		fmt.Fprintf(&b, "\n[Stopped after %d matches; there are more. Narrow the pattern, file_pattern or directory.]\n", maxSearchMatches)
	}
	if large > 0 {
		fmt.Fprintf(&b, "[Skipped %d file(s) larger than %d MiB.]\n", large, maxSearchFileBytes>>20)
	}
	if unreadables > 0 {
		fmt.Fprintf(&b, "[Skipped %d file(s) that could not be read.]\n", unreadables)
	}
	return b.String(), nil
}

var errTooLarge = errors.New("file too large")

// readForSearch reads a walked regular file (or a link to one inside the
// workspace) whole, unless it is larger than maxSearchFileBytes.
func (s *Set) readForSearch(pth string, d fs.DirEntry) ([]byte, error) {
	target := pth
	if d.Type()&fs.ModeSymlink != 0 {
		var err error
		if target, err = s.followLinks(pth, pth); err != nil {
			return nil, err
		}
	}
	f, fi, err := s.openRegular(pth, target)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > maxSearchFileBytes {
		return nil, errTooLarge
	}
	return io.ReadAll(io.LimitReader(f, maxSearchFileBytes))
}

// clip returns line as valid UTF-8, cut after maxMatchLineChars characters.
func clip(line []byte) string {
	text := strings.ToValidUTF8(string(line), "\uFFFD")
	n := utf8.RuneCountInString(text)
	if n <= maxMatchLineChars {
		return text
	}
	i := 0
	for range maxMatchLineChars {
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	return fmt.Sprintf("%s[+%d chars]", text[:i], n-maxMatchLineChars)
}
