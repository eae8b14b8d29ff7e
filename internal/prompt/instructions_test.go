package prompt_test

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/skill"
)

func TestLoadInstructions(t *testing.T) {
	fsys := fstest.MapFS{
		"AGENTAO.md":                 {Data: []byte("---\ntitle: root\n---\n\n# Rules\n\nBe careful.\n\n")},
		"instructions/v2.md":         {Data: []byte("Version two, no frontmatter.\n")},
		"instructions/2026-01.md":    {Data: []byte("\ufeff---\r\na: b\r\n---\r\nDated.\r\n")},
		"instructions/unclosed.md":   {Data: []byte("---\na: b\nno end\n")},
		"instructions/binary.md":     {Data: []byte("line 1\nline 2 \xff\n")},
		"instructions/horizontal.md": {Data: []byte("Text first.\n\n---\n\nA rule is not frontmatter.\n")},
		"secret.md":                  {Data: []byte("outside instructions/")},
	}
	tests := []struct {
		name    string
		want    string
		wantErr string
		wantIs  error
	}{
		{name: "AGENTAO.md", want: "# Rules\n\nBe careful."},
		{name: "v2", want: "Version two, no frontmatter."},
		{name: "v2.md", want: "Version two, no frontmatter."},
		{name: "instructions/v2.md", want: "Version two, no frontmatter."},
		{name: "instructions/v2", want: "Version two, no frontmatter."},
		{name: "2026-01", want: "Dated."},
		{name: "horizontal", want: "Text first.\n\n---\n\nA rule is not frontmatter."},
		{name: "v3", wantErr: "load instructions: open instructions/v3.md: file does not exist", wantIs: fs.ErrNotExist},
		{name: "unclosed", wantErr: "instructions/unclosed.md:1: frontmatter opened by --- on line 1 is not closed", wantIs: skill.ErrUnclosedFrontmatter},
		{name: "binary", wantErr: "instructions/binary.md:2: invalid UTF-8"},
		{name: "../secret", wantErr: `instructions "../secret": want "AGENTAO.md", a version such as "v2", or "instructions/v2.md"`},
		{name: "instructions/../secret.md", wantErr: `instructions "instructions/../secret.md": want "AGENTAO.md", a version such as "v2", or "instructions/v2.md"`},
		{name: "/etc/passwd", wantErr: `instructions "/etc/passwd": want "AGENTAO.md", a version such as "v2", or "instructions/v2.md"`},
		{name: "..", wantErr: `instructions "..": want "AGENTAO.md", a version such as "v2", or "instructions/v2.md"`},
		{name: "a/b", wantErr: `instructions "a/b": want "AGENTAO.md", a version such as "v2", or "instructions/v2.md"`},
		{name: "", wantErr: `instructions "": want "AGENTAO.md", a version such as "v2", or "instructions/v2.md"`},
		{name: "agentao.md", wantErr: "load instructions: open instructions/agentao.md: file does not exist", wantIs: fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := prompt.LoadInstructions(fsys, tc.name)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("LoadInstructions(%q) = %q, %v; want error %q", tc.name, got, err, tc.wantErr)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("LoadInstructions(%q) error %v; want one wrapping %v", tc.name, err, tc.wantIs)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("LoadInstructions(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		})
	}
}
