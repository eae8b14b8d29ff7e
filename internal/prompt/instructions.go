package prompt

import (
	"bytes"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/agentd/agentd/internal/skill"
)

// RootInstructions is the default instructions file, at the configuration
// root.
const RootInstructions = "AGENTAO.md"

// instructionsDir holds the other instruction versions.
const instructionsDir = "instructions"

var version = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// InstructionsPath maps an instructions name to its file in the
// configuration tree: "AGENTAO.md" is the root file; a version "v2",
// "v2.md" or "instructions/v2.md" is instructions/v2.md. A version is a
// letter or digit followed by letters, digits, '.', '_' or '-' (at most
// 64), so no name can leave instructions/.
func InstructionsPath(name string) (string, error) {
	if name == RootInstructions {
		return name, nil
	}
	v := strings.TrimSuffix(strings.TrimPrefix(name, instructionsDir+"/"), ".md")
	if !version.MatchString(v) {
		return "", fmt.Errorf("instructions %q: want %q, a version such as \"v2\", or \"instructions/v2.md\"", name, RootInstructions)
	}
	return instructionsDir + "/" + v + ".md", nil
}

// LoadInstructions reads the instructions name (see [InstructionsPath])
// from the configuration tree fsys and returns its text without leading
// YAML frontmatter and surrounding blank space. Errors name the file; a
// missing file wraps [fs.ErrNotExist], an unclosed frontmatter
// [skill.ErrUnclosedFrontmatter].
func LoadInstructions(fsys fs.FS, name string) (string, error) {
	p, err := InstructionsPath(name)
	if err != nil {
		return "", err
	}
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return "", fmt.Errorf("load instructions: %w", err)
	}
	if !utf8.Valid(data) {
		return "", fmt.Errorf("%s:%d: invalid UTF-8", p, firstInvalidLine(data))
	}
	_, body, _, err := skill.SplitFrontmatter(data)
	if err != nil {
		return "", fmt.Errorf("%s:1: %w", p, err)
	}
	return string(bytes.TrimSpace(body)), nil
}

func firstInvalidLine(b []byte) int {
	line := 1
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		b = b[n:]
	}
	return line
}
