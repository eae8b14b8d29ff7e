package skill_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/agentd/agentd/internal/skill"
)

// FuzzSkillFile: any SKILL.md, in a set or as a tenant's fork, loads as a
// skill or fails with *Problems that each have a message, never a panic.
// A loaded skill has a valid name and keeps the file's text. The
// frontmatter split puts the pieces back together: front and body are the
// file around the two fences, and bodyLine is where the body starts.
func FuzzSkillFile(f *testing.F) {
	shipped, err := filepath.Glob(filepath.Join("..", "..", "skills", "*", "*", "SKILL.md"))
	if err != nil || len(shipped) == 0 {
		f.Fatalf("no shipped SKILL.md found: %v", err)
	}
	for _, p := range shipped {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
	}
	for _, s := range []string{
		"---\nname: a\ndescription: skill a\n---\n# A\n",
		"\ufeff---\r\nname: review\r\ndescription: \"Reviews: diffs\"\r\nwhen-to-use: |\r\n  on a PR\r\n--- \r\n# Review\r\nbody\r\n",
		"---\ndescription: >\n  folded\n  text\n---\n", "# No frontmatter\n\ntext", "",
		// Near misses.
		"---\nname: a\n", "---\nname: Not_Kebab\n---\n", "---\nname: \n---\n", "---\nname: [a, b]\n---\n",
		"---\nwhen_to_use: x\ntitle: y\n---\n", "---\nname: a\nname: b\n---\n", "---\n: :\n\t- x\n---\n", "---\n&a [*a]\n---\n",
		"---\nname: a\n---\n# A\n\xff\xfe", "---\n---\n", "---",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fork bool) {
		front, body, bodyLine, err := skill.SplitFrontmatter(data)
		trimmed := bytes.TrimPrefix(data, []byte("\ufeff"))
		switch {
		case err != nil:
			if !errors.Is(err, skill.ErrUnclosedFrontmatter) {
				t.Fatalf("SplitFrontmatter error %v", err)
			}
		case front == nil:
			if !bytes.Equal(body, trimmed) || bodyLine != 1 {
				t.Fatalf("without frontmatter: body %q, line %d; want the file, 1", body, bodyLine)
			}
		default:
			head := trimmed[:len(trimmed)-len(body)]
			line := bytes.Count(head, []byte("\n")) + 1
			if !bytes.HasSuffix(head, []byte("\n")) {
				line++ // the file ends on the closing fence: the (empty) body is on the next line
			}
			if !bytes.HasSuffix(trimmed, body) || !bytes.Contains(head, front) || line != bodyLine {
				t.Fatalf("SplitFrontmatter(%q) = %q, %q, line %d: the pieces do not fit", data, front, body, bodyLine)
			}
		}

		path := "skills/default/my-skill/SKILL.md"
		if fork {
			path = "skills/tenants/acme/my-skill/SKILL.md"
		}
		cat, err := skill.Load(fstest.MapFS{path: {Data: data}})
		if err != nil {
			var p *skill.Problem
			if !errors.As(err, &p) {
				t.Fatalf("Load error %v is not a *Problem", err)
			}
			for _, e := range unjoin(err) {
				if !errors.As(e, &p) || p.Message == "" || p.Path == "" {
					t.Errorf("problem %#v has no message or path", e)
				}
			}
			return
		}
		if fork {
			return
		}
		list, err := cat.Skills("default", "acme")
		if err != nil || len(list) != 1 {
			t.Fatalf("Skills = %v, %v; want the one skill", list, err)
		}
		s := list[0]
		if !skill.ValidName(s.Name) || s.Content != string(trimmed) || s.Title == "" || s.Path != path {
			t.Errorf("loaded skill %+v from %q", s, data)
		}
	})
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
