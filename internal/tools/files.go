package tools

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/agent"
)

const (
	maxReadLines   = 2000     // read_file's default line cap
	maxLineChars   = 2000     // read_file truncates longer lines
	binarySniff    = 8 << 10  // bytes checked for a NUL to call a file binary
	maxEditBytes   = 16 << 20 // replace refuses larger files
	defaultNewPerm = 0o644    // mode of files write_file creates
)

// openRegular opens the file at the resolved path rel for reading and checks
// that it is a regular file. p is the model's path, for errors.
func (s *Set) openRegular(p, rel string) (*os.File, fs.FileInfo, error) {
	// O_NONBLOCK so that a FIFO planted in the workspace cannot hang the
	// open; it is refused just below.
	f, err := s.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, s.fsError(p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, s.fsError(p, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%q is a directory, not a file (use list_directory)", p)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%q is not a regular file", p)
	}
	return f, fi, nil
}

func isBinary(b []byte) bool {
	return bytes.IndexByte(b[:min(len(b), binarySniff)], 0) >= 0
}

func (s *Set) readFile(ctx context.Context, _ agent.Call, a args) (string, error) {
	p, err := a.required("file_path")
	if err != nil {
		return "", err
	}
	offset, err := a.integer("offset", 1)
	if err != nil {
		return "", err
	}
	limit, err := a.integer("limit", 0)
	if err != nil {
		return "", err
	}
	offset = min(max(offset, 1), 1<<30)
	if limit <= 0 {
		limit = maxReadLines
	}
	limit = min(limit, 1<<30)
	rel, err := s.resolve(p)
	if err != nil {
		return "", err
	}
	f, fi, err := s.openRegular(p, rel)
	if err != nil {
		return "", err
	}
	defer f.Close()

	head := make([]byte, binarySniff)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return "", s.fsError(p, err)
	}
	head = head[:n]
	if isBinary(head) {
		return "", fmt.Errorf("%q is a binary file (%d bytes); read_file only reads text", p, fi.Size())
	}

	lr := lineReader{r: bufio.NewReaderSize(io.MultiReader(bytes.NewReader(head), f), 64<<10)}
	var (
		body      strings.Builder
		total     int // lines in the file
		last      int // last line shown
		longLines int
		crlf      bool
	)
	for {
		if total%10000 == 0 && ctx.Err() != nil {
			return "", cancelled(ctx)
		}
		show := total+1 >= offset && total+1 < offset+limit
		line, cut, ok, err := lr.next(show)
		if err != nil {
			return "", s.fsError(p, err)
		}
		if !ok {
			break
		}
		total++
		crlf = crlf || lr.crlf
		if !show {
			continue
		}
		last = total
		if cut > 0 {
			longLines++
			line += fmt.Sprintf("[+%d chars]", cut)
		}
		fmt.Fprintf(&body, "%6d\t%s\n", total, line)
	}

	var out strings.Builder
	fmt.Fprintf(&out, "File: %s (%d lines", p, total)
	if crlf {
		out.WriteString(", CRLF line endings")
	}
	out.WriteString(")\n")
	switch {
	case total == 0:
		out.WriteString("(empty file)\n")
		return out.String(), nil
	case offset > total:
		return "", fmt.Errorf("offset %d is past the end of %q, which has %d lines", offset, p, total)
	}
	fmt.Fprintf(&out, "Showing lines %d-%d\n", offset, last)
	out.WriteString(body.String())
	if last < total {
		fmt.Fprintf(&out, "\n[More lines remain: showing lines %d-%d of %d. Use offset=%d to continue reading.]\n",
			offset, last, total, last+1)
	}
	if longLines > 0 {
		fmt.Fprintf(&out, "[%d line(s) truncated to %d chars]\n", longLines, maxLineChars)
	}
	return out.String(), nil
}

// lineReader reads lines of any length while keeping at most maxLineChars
// characters of each.
type lineReader struct {
	r    *bufio.Reader
	crlf bool // the last kept line ended in \r\n
}

// next returns the next line without its terminator, cut to maxLineChars
// characters, and how many characters were cut. With keep false it only
// skips the line. ok is false at the end of the input.
func (lr *lineReader) next(keep bool) (line string, cut int, ok bool, err error) {
	const keepBytes = maxLineChars * utf8.UTFMax // enough for maxLineChars characters
	var buf []byte
	seen := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		if len(chunk) > 0 {
			seen = true
			if keep {
				take := min(len(chunk), keepBytes-len(buf))
				buf = append(buf, chunk[:take]...)
				if rest := chunk[take:]; len(rest) > 0 {
					// Beyond what is kept: count the characters, not the terminator.
					cut += utf8.RuneCount(bytes.TrimRight(rest, "\r\n"))
				}
			}
		}
		switch {
		case err == nil, err == io.EOF && seen:
		case err == io.EOF:
			return "", 0, false, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", 0, false, err
		}
		break
	}
	if !keep {
		return "", 0, true, nil
	}
	lr.crlf = bytes.HasSuffix(buf, []byte("\r\n"))
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	text := strings.ToValidUTF8(string(buf), "\uFFFD")
	if n := utf8.RuneCountInString(text); n > maxLineChars {
		i := 0
		for range maxLineChars {
			_, size := utf8.DecodeRuneInString(text[i:])
			i += size
		}
		cut += n - maxLineChars
		text = text[:i]
	}
	return text, cut, true, nil
}

func (s *Set) writeFile(_ context.Context, _ agent.Call, a args) (string, error) {
	p, err := a.required("file_path")
	if err != nil {
		return "", err
	}
	text, err := a.present("content")
	if err != nil {
		return "", err
	}
	appendMode, err := a.boolean("append", false)
	if err != nil {
		return "", err
	}
	rel, err := s.resolve(p)
	if err != nil {
		return "", err
	}
	if rel == "." {
		return "", fmt.Errorf("%q is the workspace directory, not a file", p)
	}
	if appendMode {
		if err := s.appendFile(p, rel, []byte(text)); err != nil {
			return "", err
		}
		return fmt.Sprintf("Appended %d bytes to %s", len(text), p), nil
	}
	if err := s.writeAtomic(p, rel, []byte(text)); err != nil {
		return "", err
	}
	return fmt.Sprintf("Wrote %d bytes to %s", len(text), p), nil
}

// mkdirParent creates the parent directories of rel inside the root.
func (s *Set) mkdirParent(p, rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return s.fsError(p, err)
	}
	return nil
}

func (s *Set) appendFile(p, rel string, data []byte) error {
	if err := s.mkdirParent(p, rel); err != nil {
		return err
	}
	f, err := s.root.OpenFile(rel, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, defaultNewPerm)
	if err != nil {
		return s.fsError(p, err)
	}
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("%q is not a regular file", p)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.fsError(p, err)
	}
	return nil
}

// writeAtomic replaces the file at rel (a resolved path) with data: it
// writes a temporary file in the same directory and renames it over the
// target, so readers see the old content or the new, never a mix. An
// existing file keeps its permission bits.
func (s *Set) writeAtomic(p, rel string, data []byte) (err error) {
	if err := s.mkdirParent(p, rel); err != nil {
		return err
	}
	perm := fs.FileMode(defaultNewPerm)
	keepPerm := false
	switch fi, err := s.root.Lstat(rel); {
	case err == nil && fi.IsDir():
		return fmt.Errorf("%q is a directory", p)
	case err == nil && !fi.Mode().IsRegular():
		return fmt.Errorf("%q is not a regular file", p)
	case err == nil:
		perm, keepPerm = fi.Mode().Perm(), true
	case !errors.Is(err, fs.ErrNotExist):
		return s.fsError(p, err)
	}

	tmp := path.Join(path.Dir(rel), "."+path.Base(rel)+".agentd-tmp-"+randomHex(8))
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return s.fsError(p, err)
	}
	defer func() {
		if err != nil {
			s.root.Remove(tmp)
		}
	}()
	_, err = f.Write(data)
	if err == nil && keepPerm {
		err = f.Chmod(perm) // the umask may have cleared bits of perm
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return s.fsError(p, err)
	}
	if err = s.root.Rename(tmp, rel); err != nil {
		return s.fsError(p, err)
	}
	return nil
}

// randomHex returns n random bytes in hex, for names that must not collide.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

func (s *Set) replace(_ context.Context, _ agent.Call, a args) (string, error) {
	p, err := a.required("file_path")
	if err != nil {
		return "", err
	}
	oldText, err := a.str("old_text", "")
	if err != nil {
		return "", err
	}
	if oldText == "" {
		return "", errors.New("old_text is empty: give the exact text to replace; to create or overwrite a file use write_file")
	}
	newText, err := a.present("new_text")
	if err != nil {
		return "", err
	}
	all, err := a.boolean("replace_all", false)
	if err != nil {
		return "", err
	}
	rel, err := s.resolve(p)
	if err != nil {
		return "", err
	}
	f, fi, err := s.openRegular(p, rel)
	if err != nil {
		return "", err
	}
	if fi.Size() > maxEditBytes {
		f.Close()
		return "", fmt.Errorf("%q is too large to edit (%d bytes; the limit is %d)", p, fi.Size(), maxEditBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxEditBytes+1))
	f.Close()
	if err != nil {
		return "", s.fsError(p, err)
	}
	if isBinary(data) {
		return "", fmt.Errorf("%q is a binary file; replace only edits text", p)
	}
	content := string(data)
	count := strings.Count(content, oldText)
	// Only when old_text is not in the file as given, try it loosely: the
	// model may have retyped quotes, dashes or whitespace differently.
	var loose []span
	if count == 0 {
		loose = looseFind(content, oldText)
		count = len(loose)
	}
	switch {
	case count == 0:
		return "", fmt.Errorf("old_text was not found in %q; it must match the file exactly, including whitespace and indentation (read the file again)", p)
	case count > 1 && !all && loose != nil:
		return "", fmt.Errorf("old_text does not occur exactly in %q, and matches only loosely (ignoring differences in quotes, dashes, Unicode forms and whitespace) %d times, at lines %s; include more surrounding text to make it unique, or set replace_all=true to replace all %d", p, count, spanLines(content, loose, 5), count)
	case count > 1 && !all:
		return "", fmt.Errorf("old_text occurs %d times in %q; include more surrounding text to make it unique, or set replace_all=true to replace all %d", count, p, count)
	}
	n := 1
	if all {
		n = -1
	}
	var edited string
	if loose != nil {
		edited = spliceSpans(content, loose, newText)
	} else {
		edited = strings.Replace(content, oldText, newText, n)
	}
	if err := s.writeAtomic(p, rel, []byte(edited)); err != nil {
		return "", err
	}
	if !all {
		count = 1
	}
	if loose != nil {
		return fmt.Sprintf("Replaced %d occurrence(s) in %s (matched after normalising quotes, dashes, Unicode and whitespace; check the result)", count, p), nil
	}
	return fmt.Sprintf("Replaced %d occurrence(s) in %s", count, p), nil
}
