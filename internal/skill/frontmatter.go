package skill

import (
	"bytes"
	"errors"
)

// ErrUnclosedFrontmatter is returned by [SplitFrontmatter] when the opening
// "---" (always line 1) has no closing "---".
var ErrUnclosedFrontmatter = errors.New("frontmatter opened by --- on line 1 is not closed")

var bom = []byte("\ufeff")

// SplitFrontmatter splits a Markdown document (SKILL.md, AGENTAO.md, an
// instructions file) into its leading YAML frontmatter and its body.
//
// Frontmatter is present when the first line, after an optional UTF-8 byte
// order mark, is "---"; it ends at the next line that is "---". Trailing
// blanks and a CR are ignored on both fence lines. front is the text
// between the fences (nil without frontmatter); its first line is line 2 of
// data. body is the rest after the closing fence, starting at the 1-based
// line bodyLine of data. Without frontmatter, body is data and bodyLine 1.
func SplitFrontmatter(data []byte) (front, body []byte, bodyLine int, err error) {
	data = bytes.TrimPrefix(data, bom)
	lines := bytes.SplitAfter(data, []byte("\n"))
	if !isFence(lines[0]) {
		return nil, data, 1, nil
	}
	off := len(lines[0])
	for i := 1; i < len(lines); i++ {
		if isFence(lines[i]) {
			return data[len(lines[0]):off], data[off+len(lines[i]):], i + 2, nil
		}
		off += len(lines[i])
	}
	return nil, nil, 0, ErrUnclosedFrontmatter
}

func isFence(line []byte) bool {
	return string(bytes.TrimRight(line, " \t\r\n")) == "---"
}
