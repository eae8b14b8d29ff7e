package skill_test

import (
	"errors"
	"testing"

	"github.com/agentd/agentd/internal/skill"
)

func TestSplitFrontmatter(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantFront string
		wantNil   bool // no frontmatter
		wantBody  string
		wantLine  int
		wantErr   error
	}{
		{name: "none", in: "# Title\nbody\n", wantNil: true, wantBody: "# Title\nbody\n", wantLine: 1},
		{name: "empty document", in: "", wantNil: true, wantBody: "", wantLine: 1},
		{name: "simple", in: "---\nname: a\n---\n# T\n", wantFront: "name: a\n", wantBody: "# T\n", wantLine: 4},
		{name: "empty frontmatter", in: "---\n---\nbody", wantFront: "", wantBody: "body", wantLine: 3},
		{name: "CRLF and trailing blanks", in: "--- \r\nname: a\r\n---\t\r\nbody\r\n", wantFront: "name: a\r\n", wantBody: "body\r\n", wantLine: 4},
		{name: "byte order mark", in: "\ufeff---\nname: a\n---\n", wantFront: "name: a\n", wantBody: "", wantLine: 4},
		{name: "closing fence at end without newline", in: "---\na: b\n---", wantFront: "a: b\n", wantBody: "", wantLine: 4},
		{name: "four dashes is not a fence", in: "----\nbody\n", wantNil: true, wantBody: "----\nbody\n", wantLine: 1},
		{name: "fence not on the first line", in: "\n---\na: b\n---\n", wantNil: true, wantBody: "\n---\na: b\n---\n", wantLine: 1},
		{name: "unclosed", in: "---\nname: a\n# T\n", wantErr: skill.ErrUnclosedFrontmatter},
		{name: "only an opening fence", in: "---", wantErr: skill.ErrUnclosedFrontmatter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			front, body, line, err := skill.SplitFrontmatter([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("SplitFrontmatter(%q) error = %v; want %v", tc.in, err, tc.wantErr)
			}
			if tc.wantErr != nil {
				return
			}
			if (front == nil) != tc.wantNil || string(front) != tc.wantFront {
				t.Errorf("SplitFrontmatter(%q) front = %q (nil: %t); want %q (nil: %t)", tc.in, front, front == nil, tc.wantFront, tc.wantNil)
			}
			if string(body) != tc.wantBody || line != tc.wantLine {
				t.Errorf("SplitFrontmatter(%q) body = %q at line %d; want %q at line %d", tc.in, body, line, tc.wantBody, tc.wantLine)
			}
		})
	}
}
