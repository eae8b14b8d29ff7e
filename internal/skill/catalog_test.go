package skill_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/agentd/agentd/internal/skill"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// described is a minimal valid SKILL.md.
func described(name, desc string) *fstest.MapFile {
	return file(fmt.Sprintf("---\nname: %s\ndescription: %s\n---\n# %s\n", name, desc, name))
}

func mustLoad(t *testing.T, fsys fs.FS) *skill.Catalog {
	t.Helper()
	c, err := skill.Load(fsys)
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	return c
}

func names(list []*skill.Skill) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = s.Name
	}
	return out
}

func problems(ps []*skill.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Error()
	}
	return out
}

const reviewMD = "---\nname: code-review\ndescription: Review a diff for bugs.\nwhen-to-use: Before merging.\n---\n" +
	"```sh\n# not the title: inside a code fence\n```\n# Code review\n\nRead the whole change.\n"

func TestLoadGoodSet(t *testing.T) {
	fsys := fstest.MapFS{
		"skills/README.md":                                             file("not a set"),
		"skills/default/code-review/SKILL.md":                          file(reviewMD),
		"skills/default/code-review/references/style.md":               file("x"),
		"skills/default/code-review/references/deep/api.md":            file("x"),
		"skills/default/code-review/references/notes.txt":              file("not *.md"),
		"skills/default/code-review/references/.hidden.md":             file("hidden"),
		"skills/default/code-review/references/__pycache__/x.md":       file("cache"),
		"skills/default/code-review/assets/template.md":                file("x"),
		"skills/default/code-review/scripts/check.sh":                  file("x"),
		"skills/default/code-review/scripts/lib/util.py":               file("x"),
		"skills/default/code-review/scripts/__pycache__/util.pyc":      file("x"),
		"skills/default/code-review/scripts/.env":                      file("x"),
		"skills/default/debugging/SKILL.md":                            file("Intro.\n\n#NoSpace\n# Debugging\n"),
		"skills/default/.draft/SKILL.md":                               file("---\nbroken: [\n"),
		"skills/default/__pycache__/SKILL.md":                          file("---\nbroken: [\n"),
		"skills/default/notes.md":                                      file("a file in a set is ignored"),
		"skills/v2/git-flow/SKILL.md":                                  described("git-flow", "Branching."),
		"skills/.git/config":                                           file("hidden"),
		"skills/default/code-review/references/deep/.cache/skip.md":    file("hidden dir"),
		"skills/default/code-review/assets/img/diagram.md":             file("x"),
		"skills/default/code-review/assets/img/diagram.png":            file("not *.md"),
		"skills/default/code-review/scripts/lib/__pycache__/u.cpython": file("x"),
	}
	c := mustLoad(t, fsys)

	if got, want := c.Sets(), []string{"default", "v2"}; !slices.Equal(got, want) {
		t.Errorf("Sets() = %q; want %q", got, want)
	}
	got, err := c.Skills("default", "")
	if err != nil {
		t.Fatalf("Skills(default) error = %v", err)
	}
	want := []*skill.Skill{
		{
			Name:        "code-review",
			Description: "Review a diff for bugs.",
			WhenToUse:   "Before merging.",
			Title:       "Code review",
			Body:        "```sh\n# not the title: inside a code fence\n```\n# Code review\n\nRead the whole change.\n",
			Content:     reviewMD,
			Path:        "skills/default/code-review/SKILL.md",
			Dir:         "skills/default/code-review",
			Resources: []skill.ResourceDir{
				{Name: "references", Files: []string{"references/deep/api.md", "references/style.md"}},
				{Name: "assets", Files: []string{"assets/img/diagram.md", "assets/template.md"}},
				{Name: "scripts", Files: []string{"scripts/check.sh", "scripts/lib/util.py"}},
			},
			Hash: sha(reviewMD),
		},
		{
			Name:    "debugging",
			Title:   "Debugging",
			Body:    "Intro.\n\n#NoSpace\n# Debugging\n",
			Content: "Intro.\n\n#NoSpace\n# Debugging\n",
			Path:    "skills/default/debugging/SKILL.md",
			Dir:     "skills/default/debugging",
			Hash:    sha("Intro.\n\n#NoSpace\n# Debugging\n"),
		},
	}
	if !reflect.DeepEqual(got, want) {
		for i := range max(len(got), len(want)) {
			var g, w *skill.Skill
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("Skills(default)[%d] =\n%+v\nwant\n%+v", i, g, w)
			}
		}
	}
	wantWarn := []string{"skills/default/debugging/SKILL.md:1: no description: the skill is hidden from the skills catalog"}
	if got := problems(c.Warnings()); !slices.Equal(got, wantWarn) {
		t.Errorf("Warnings() = %q; want %q", got, wantWarn)
	}
	if got, _ := c.Skills("v2", ""); !slices.Equal(names(got), []string{"git-flow"}) {
		t.Errorf("Skills(v2) = %q; want [git-flow]", names(got))
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name      string
		md        string
		wantName  string
		wantDesc  string
		wantWhen  string
		wantTitle string
	}{
		{"name defaults to the directory", "---\ndescription: d\n---\n", "dir-name", "d", "", "dir-name"},
		{"number and bool coerced as written", "---\ndescription: 42\nwhen-to-use: yes\n---\n", "dir-name", "42", "yes", "dir-name"},
		{"null is empty", "---\ndescription: ~\n---\n", "dir-name", "", "", "dir-name"},
		{"quoted name", "---\nname: \"other-name\"\ndescription: d\n---\n", "other-name", "d", "", "other-name"},
		{"folded block", "---\ndescription: >\n  two\n  lines\n---\n", "dir-name", "two lines", "", "dir-name"},
		{"alias", "---\nx: &a shared text\ndescription: *a\n---\n", "dir-name", "shared text", "", "dir-name"},
		{"comments only", "---\n# nothing\n---\n# T\n", "dir-name", "", "", "T"},
		{"title with tab and spaces", "#\t  Spaced title  \n", "dir-name", "", "", "Spaced title"},
		{"tilde fence hides a heading", "~~~\n# no\n~~~\n# yes\n", "dir-name", "", "", "yes"},
		{"CRLF", "---\r\nname: crlf\r\ndescription: d\r\n---\r\n# Title\r\n", "crlf", "d", "", "Title"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, fstest.MapFS{"skills/s/dir-name/SKILL.md": file(tc.md)})
			list, _ := c.Skills("s", "")
			if len(list) != 1 {
				t.Fatalf("Skills(s) = %q; want one skill", names(list))
			}
			s := list[0]
			got := [4]string{s.Name, s.Description, s.WhenToUse, s.Title}
			want := [4]string{tc.wantName, tc.wantDesc, tc.wantWhen, tc.wantTitle}
			if got != want {
				t.Errorf("name, description, when-to-use, title = %q; want %q", got, want)
			}
		})
	}
}

func TestLoadWarnings(t *testing.T) {
	fsys := fstest.MapFS{
		"skills/s/a/SKILL.md":      file("---\nname: a\ndescription: d\nlicense: MIT\nwhen_to_use: typo\n---\n"),
		"skills/s/b/SKILL.md":      file("---\nname: b\ndescription:\n---\n"),
		"skills/s/empty/README.md": file("no SKILL.md here"),
		"skills/s/big/SKILL.md":    file("---\ndescription: d\n---\n" + strings.Repeat("x", skill.SizeHint)),
	}
	c := mustLoad(t, fsys)
	want := []string{
		"skills/s/a/SKILL.md:4: unknown key \"license\" ignored",
		"skills/s/a/SKILL.md:5: unknown key \"when_to_use\" ignored (did you mean when-to-use?)",
		"skills/s/b/SKILL.md:3: no description: the skill is hidden from the skills catalog",
		fmt.Sprintf("skills/s/big/SKILL.md: SKILL.md is %d bytes; keep it under %d: an active skill is in the system prompt every turn", skill.SizeHint+23, skill.SizeHint),
		"skills/s/empty: no SKILL.md: not a skill",
	}
	if got := problems(c.Warnings()); !slices.Equal(got, want) {
		t.Errorf("Warnings() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		fsys  fstest.MapFS
		wants []string // errors.Join order
	}{
		{
			name:  "bad YAML in a flow sequence (parser error)",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: a\ndescription: [unclosed\n---\n")},
			wants: []string{"skills/s/a/SKILL.md:3: invalid YAML frontmatter: did not find expected ',' or ']'"},
		},
		{
			name:  "bad YAML indentation (scanner error)",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: a\ndescription: d\n  oops: x\n---\n")},
			wants: []string{"skills/s/a/SKILL.md:4: invalid YAML frontmatter: mapping values are not allowed in this context"},
		},
		{
			name:  "bad YAML: tab on the first line",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\n\tname: a\n---\n")},
			wants: []string{"skills/s/a/SKILL.md:2: invalid YAML frontmatter: found character that cannot start any token"},
		},
		{
			name:  "bad YAML: unknown anchor",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: a\n\ndescription: *nope\n---\n")},
			wants: []string{"skills/s/a/SKILL.md:4: invalid YAML frontmatter: unknown anchor 'nope' referenced"},
		},
		{
			name:  "no closing fence",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: a\ndescription: d\n# Title\n")},
			wants: []string{"skills/s/a/SKILL.md:1: frontmatter opened by --- on line 1 is not closed"},
		},
		{
			name:  "name not kebab-case",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\ndescription: d\nname: Code_Review\n---\n")},
			wants: []string{`skills/s/a/SKILL.md:3: name "Code_Review" is not a valid skill name: use kebab-case (lowercase letters, digits, single hyphens), at most 64 characters`},
		},
		{
			name:  "name too long",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: " + strings.Repeat("a", 65) + "\n---\n")},
			wants: []string{`skills/s/a/SKILL.md:2: name "` + strings.Repeat("a", 65) + `" is not a valid skill name: use kebab-case (lowercase letters, digits, single hyphens), at most 64 characters`},
		},
		{
			name:  "empty name",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: \"\"\n---\n")},
			wants: []string{"skills/s/a/SKILL.md:2: name is empty"},
		},
		{
			name:  "directory name not kebab-case and no name",
			fsys:  fstest.MapFS{"skills/s/My Skill/SKILL.md": file("---\ndescription: d\n---\n")},
			wants: []string{`skills/s/My Skill/SKILL.md:1: directory name "My Skill" is not a valid skill name: rename the directory or set a kebab-case name: in the frontmatter`},
		},
		{
			name: "name clash inside a set",
			fsys: fstest.MapFS{
				"skills/s/a/SKILL.md": described("x", "first"),
				"skills/s/b/SKILL.md": file("---\ndescription: second\nname: x\n---\n"),
			},
			wants: []string{`skills/s/b/SKILL.md:3: skill name "x" is already used by skills/s/a/SKILL.md`},
		},
		{
			name: "name clash with a directory name",
			fsys: fstest.MapFS{
				"skills/s/a/SKILL.md": described("b", "first"),
				"skills/s/b/SKILL.md": file("# b\n"),
			},
			wants: []string{`skills/s/b/SKILL.md:1: skill name "b" is already used by skills/s/a/SKILL.md`},
		},
		{
			name: "name clash inside a tenant's forks",
			fsys: fstest.MapFS{
				"skills/s/a/SKILL.md":              described("a", "d"),
				"skills/tenants/acme/a/SKILL.md":   described("a", "fork"),
				"skills/tenants/acme/a-2/SKILL.md": described("a", "fork again"),
			},
			wants: []string{`skills/tenants/acme/a-2/SKILL.md:2: skill name "a" is already used by skills/tenants/acme/a/SKILL.md`},
		},
		{
			name:  "invalid UTF-8",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: a\n---\n# T\nbad \xff byte\n")},
			wants: []string{"skills/s/a/SKILL.md:5: invalid UTF-8"},
		},
		{
			name:  "description is a list",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: a\ndescription:\n  - one\n  - two\n---\n")},
			wants: []string{"skills/s/a/SKILL.md:3: description must be a string, not a list"},
		},
		{
			name:  "duplicate key",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\nname: a\ndescription: d\ndescription: e\n---\n")},
			wants: []string{`skills/s/a/SKILL.md:4: duplicate key "description" (first on line 3)`},
		},
		{
			name:  "frontmatter is not a mapping",
			fsys:  fstest.MapFS{"skills/s/a/SKILL.md": file("---\n- name\n- description\n---\n")},
			wants: []string{"skills/s/a/SKILL.md:2: frontmatter must be a YAML mapping of keys to values, not a list"},
		},
		{
			name:  "invalid set name",
			fsys:  fstest.MapFS{"skills/my set/a/SKILL.md": described("a", "d")},
			wants: []string{`skills/my set: "my set" is not a valid skill set name (letters, digits, '.', '_', '-'; at most 64)`},
		},
		{
			name:  "invalid tenant name",
			fsys:  fstest.MapFS{"skills/tenants/-acme/a/SKILL.md": described("a", "d")},
			wants: []string{`skills/tenants/-acme: "-acme" is not a valid tenant name (letters, digits, '.', '_', '-'; at most 64)`},
		},
		{
			name: "all problems at once",
			fsys: fstest.MapFS{
				"skills/s/a/SKILL.md":            file("---\nname: A\n---\n"),
				"skills/s/b/SKILL.md":            file("---\nname: b\n"),
				"skills/s/ok/SKILL.md":           described("ok", "fine"),
				"skills/t/c/SKILL.md":            file("---\ndescription: [\n---\n"),
				"skills/tenants/acme/d/SKILL.md": file("\xfe"),
			},
			wants: []string{
				`skills/s/a/SKILL.md:2: name "A" is not a valid skill name: use kebab-case (lowercase letters, digits, single hyphens), at most 64 characters`,
				"skills/s/b/SKILL.md:1: frontmatter opened by --- on line 1 is not closed",
				// yaml reports where it ran out of input: the closing fence.
				"skills/t/c/SKILL.md:3: invalid YAML frontmatter: did not find expected node content",
				"skills/tenants/acme/d/SKILL.md:1: invalid UTF-8",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := skill.Load(tc.fsys)
			if err == nil {
				t.Fatalf("Load() = %v, nil; want errors %q", c, tc.wants)
			}
			if c != nil {
				t.Errorf("Load() catalog = %v; want nil with an error", c)
			}
			if got, want := err.Error(), strings.Join(tc.wants, "\n"); got != want {
				t.Errorf("Load() error =\n%s\nwant\n%s", got, want)
			}
			if p, ok := errors.AsType[*skill.Problem](err); !ok || p.Path == "" {
				t.Errorf("errors.AsType[*skill.Problem](%v) = %v, %t; want a problem with a path", err, p, ok)
			}
		})
	}
}

func TestLoadNoSkillsDirectory(t *testing.T) {
	_, err := skill.Load(fstest.MapFS{"AGENTAO.md": file("x")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load() error = %v; want one wrapping fs.ErrNotExist", err)
	}
}

func TestTenantForks(t *testing.T) {
	fsys := fstest.MapFS{
		"skills/default/review/SKILL.md":           described("review", "Set review."),
		"skills/default/debug/SKILL.md":            described("debug", "Set debug."),
		"skills/v2/review/SKILL.md":                described("review", "v2 review."),
		"skills/tenants/acme/review-fork/SKILL.md": file("---\nname: review\ndescription: Acme review.\n---\n# Acme review\n"),
		"skills/tenants/acme/billing/SKILL.md":     described("billing", "Acme only."),
		"skills/tenants/globex/debug/SKILL.md":     described("debug", "Globex debug."),
		"skills/tenants/README.md":                 file("ignored"),
	}
	c := mustLoad(t, fsys)
	if got, want := c.Sets(), []string{"default", "v2"}; !slices.Equal(got, want) {
		t.Errorf("Sets() = %q; want %q (tenants is not a set)", got, want)
	}
	if got, want := c.Tenants(), []string{"acme", "globex"}; !slices.Equal(got, want) {
		t.Errorf("Tenants() = %q; want %q", got, want)
	}
	tests := []struct {
		set, tenant string
		want        []string // name=description@path
	}{
		{"default", "", []string{
			"debug=Set debug.@skills/default/debug/SKILL.md",
			"review=Set review.@skills/default/review/SKILL.md",
		}},
		{"default", "acme", []string{
			"billing=Acme only.@skills/tenants/acme/billing/SKILL.md",
			"debug=Set debug.@skills/default/debug/SKILL.md",
			"review=Acme review.@skills/tenants/acme/review-fork/SKILL.md",
		}},
		{"default", "globex", []string{
			"debug=Globex debug.@skills/tenants/globex/debug/SKILL.md",
			"review=Set review.@skills/default/review/SKILL.md",
		}},
		{"default", "initech", []string{
			"debug=Set debug.@skills/default/debug/SKILL.md",
			"review=Set review.@skills/default/review/SKILL.md",
		}},
		{"v2", "acme", []string{
			"billing=Acme only.@skills/tenants/acme/billing/SKILL.md",
			"review=Acme review.@skills/tenants/acme/review-fork/SKILL.md",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.set+"/"+tc.tenant, func(t *testing.T) {
			list, err := c.Skills(tc.set, tc.tenant)
			if err != nil {
				t.Fatalf("Skills(%q, %q) error = %v", tc.set, tc.tenant, err)
			}
			var got []string
			for _, s := range list {
				got = append(got, s.Name+"="+s.Description+"@"+s.Path)
				if wantTenant := strings.HasPrefix(s.Path, "skills/tenants/"); (s.Tenant != "") != wantTenant {
					t.Errorf("%s: Tenant = %q", s.Path, s.Tenant)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Skills(%q, %q) =\n%s\nwant\n%s", tc.set, tc.tenant, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
	list, _ := c.Skills("default", "acme")
	if got := list[2]; got.Tenant != "acme" || got.Title != "Acme review" || got.Dir != "skills/tenants/acme/review-fork" {
		t.Errorf("acme's review fork = %+v; want Tenant acme, Title \"Acme review\", Dir skills/tenants/acme/review-fork", got)
	}
}

func TestUnknownSet(t *testing.T) {
	c := mustLoad(t, fstest.MapFS{
		"skills/default/a/SKILL.md":      described("a", "d"),
		"skills/v2/a/SKILL.md":           described("a", "d"),
		"skills/tenants/acme/a/SKILL.md": described("a", "d"),
	})
	for _, set := range []string{"nope", "tenants", ""} {
		t.Run(set, func(t *testing.T) {
			list, err := c.Skills(set, "acme")
			if !errors.Is(err, skill.ErrUnknownSet) || list != nil {
				t.Errorf("Skills(%q) = %v, %v; want nil, ErrUnknownSet", set, list, err)
			}
			if want := fmt.Sprintf("unknown skill set %q (sets: default, v2)", set); err.Error() != want {
				t.Errorf("Skills(%q) error = %q; want %q", set, err, want)
			}
			if h, err := c.Hash(set); !errors.Is(err, skill.ErrUnknownSet) || h != "" {
				t.Errorf("Hash(%q) = %q, %v; want \"\", ErrUnknownSet", set, h, err)
			}
		})
	}
}

func TestHash(t *testing.T) {
	base := fstest.MapFS{
		"skills/default/a/SKILL.md":             described("a", "d"),
		"skills/default/a/references/r.md":      file("ref"),
		"skills/v2/a/SKILL.md":                  described("a", "d"),
		"skills/tenants/acme/a/SKILL.md":        described("a", "fork"),
		"skills/tenants/acme/a/scripts/run.sh":  file("echo"),
		"skills/tenants/acme/a/.DS_Store":       file("junk"),
		"skills/tenants/acme/a/__pycache__/x.c": file("junk"),
	}
	hashes := func(t *testing.T, fsys fstest.MapFS) (def, v2 string) {
		t.Helper()
		c := mustLoad(t, fsys)
		def, _ = c.Hash("default")
		v2, _ = c.Hash("v2")
		return def, v2
	}
	def0, v20 := hashes(t, base)
	if len(def0) != 64 || def0 == v20 {
		t.Fatalf("Hash(default), Hash(v2) = %q, %q; want two different hex SHA-256", def0, v20)
	}
	if def, v2 := hashes(t, maps.Clone(base)); def != def0 || v2 != v20 {
		t.Errorf("Hash of an identical tree = %q, %q; want %q, %q", def, v2, def0, v20)
	}
	tests := []struct {
		name                   string
		change                 func(fstest.MapFS)
		wantDefault, wantV2Chg bool
	}{
		{"fork SKILL.md changes", func(f fstest.MapFS) { f["skills/tenants/acme/a/SKILL.md"] = described("a", "fork 2") }, true, true},
		{"fork added", func(f fstest.MapFS) { f["skills/tenants/globex/b/SKILL.md"] = described("b", "new") }, true, true},
		{"fork resource changes", func(f fstest.MapFS) { f["skills/tenants/acme/a/scripts/run.sh"] = file("echo 2") }, true, true},
		{"set SKILL.md changes", func(f fstest.MapFS) { f["skills/default/a/SKILL.md"] = described("a", "d2") }, true, false},
		{"set resource changes", func(f fstest.MapFS) { f["skills/default/a/references/r.md"] = file("ref 2") }, true, false},
		{"set resource renamed", func(f fstest.MapFS) {
			f["skills/default/a/references/s.md"] = f["skills/default/a/references/r.md"]
			delete(f, "skills/default/a/references/r.md")
		}, true, false},
		{"hidden file changes", func(f fstest.MapFS) { f["skills/tenants/acme/a/.DS_Store"] = file("other junk") }, false, false},
		{"__pycache__ changes", func(f fstest.MapFS) { f["skills/tenants/acme/a/__pycache__/x.c"] = file("other") }, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := maps.Clone(base)
			tc.change(fsys)
			def, v2 := hashes(t, fsys)
			if got := def != def0; got != tc.wantDefault {
				t.Errorf("Hash(default) changed = %t; want %t", got, tc.wantDefault)
			}
			if got := v2 != v20; got != tc.wantV2Chg {
				t.Errorf("Hash(v2) changed = %t; want %t", got, tc.wantV2Chg)
			}
		})
	}
}

func TestResourceCap(t *testing.T) {
	fsys := fstest.MapFS{"skills/s/a/SKILL.md": described("a", "d")}
	for i := range skill.MaxResources + 5 {
		fsys[fmt.Sprintf("skills/s/a/scripts/s%03d.sh", i)] = file("x")
	}
	c := mustLoad(t, fsys)
	list, _ := c.Skills("s", "")
	r := list[0].Resources
	if len(r) != 1 || r[0].Name != "scripts" || len(r[0].Files) != skill.MaxResources || r[0].Omitted != 5 {
		t.Fatalf("Resources = %d dirs; want scripts with %d files and 5 omitted (got %+v)", len(r), skill.MaxResources, r)
	}
	if got, want := r[0].Files[skill.MaxResources-1], "scripts/s049.sh"; got != want {
		t.Errorf("last listed file = %q; want %q", got, want)
	}
}

func TestSelect(t *testing.T) {
	c := mustLoad(t, fstest.MapFS{
		"skills/s/a/SKILL.md": described("a", "d"),
		"skills/s/b/SKILL.md": described("b", "d"),
	})
	list, _ := c.Skills("s", "")
	found, missing := skill.Select(list, []string{"b", "gone", "a"})
	if got := names(found); !slices.Equal(got, []string{"b", "a"}) || !slices.Equal(missing, []string{"gone"}) {
		t.Errorf("Select(b, gone, a) = %q, %q; want [b a], [gone]", got, missing)
	}
}

// TestRepositorySkills is CI's skill format check: the skills in this
// repository load without errors or warnings.
func TestRepositorySkills(t *testing.T) {
	c := mustLoad(t, os.DirFS("../.."))
	if w := c.Warnings(); len(w) > 0 {
		t.Errorf("Warnings() = %q; want none", problems(w))
	}
	list, err := c.Skills("default", "")
	if err != nil || len(list) == 0 {
		t.Fatalf("Skills(default) = %d skills, %v; want some", len(list), err)
	}
	for _, s := range list {
		if s.Description == "" {
			t.Errorf("%s: no description", s.Path)
		}
	}
}
