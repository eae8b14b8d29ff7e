package governance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/governance"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func good() map[string]string {
	return map[string]string{
		"AGENTAO.md":                       "# Rules\nBe careful.\n",
		"instructions/v2.md":               "---\nversion: 2\n---\n# Rules v2\n",
		"skills/default/review/SKILL.md":   "---\nname: review\ndescription: Review code.\n---\n# Review\n",
		"skills/beta/review/SKILL.md":      "---\nname: review\ndescription: Review code, beta.\n---\n# Review beta\n",
		".agentao/permissions/v1.json":     `{"rules": [{"tool": "run_shell_command", "args": {"command": "^ls"}, "action": "allow"}]}`,
		".agentao/permissions/strict.json": `{"mode": "read-only", "rules": []}`,
		".agentao/sandbox.json":            `{"default_profile": "workspace-write"}`,
		".agentao/canary.json":             `{"rules": {"stable": "v1", "variants": [{"name": "tight", "value": "strict", "percent": 5}]}}`,
	}
}

func with(files map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(files, kv[i])
		} else {
			files[kv[i]] = kv[i+1]
		}
	}
	return files
}

func TestTree(t *testing.T) {
	tr, err := governance.Load(writeTree(t, good()))
	if err != nil {
		t.Fatal(err)
	}
	k := tr.Known("gpt-4o", nil)
	if got := k.Defaults; got != [5]string{"gpt-4o", "default", "v1", "workspace-write", "AGENTAO.md"} {
		t.Errorf("defaults = %v", got)
	}
	for _, c := range []struct {
		dim canary.Dimension
		v   string
		ok  bool
	}{
		{canary.Skills, "beta", true}, {canary.Skills, "none", true}, {canary.Skills, "tenants", false}, {canary.Skills, "gamma", false},
		{canary.Rules, "strict", true}, {canary.Rules, "plan", true}, {canary.Rules, "v9", false},
		{canary.Sandbox, "readonly", true}, {canary.Sandbox, "open", false},
		{canary.Instructions, "instructions/v2.md", true}, {canary.Instructions, "v2", true}, {canary.Instructions, "v3", false},
		{canary.Instructions, "../etc/passwd", false},
	} {
		if err := k.Exists(c.dim, c.v); (err == nil) != c.ok {
			t.Errorf("Exists(%s, %q) = %v; want ok %v", c.dim, c.v, err, c.ok)
		}
	}
	if text, err := tr.Instructions("v2"); err != nil || text != "# Rules v2" {
		t.Errorf("Instructions(v2) = %q, %v; want the text without frontmatter", text, err)
	}
	if r, err := tr.Rules("strict"); err != nil || r.Mode() != "read-only" {
		t.Errorf("Rules(strict) = %v, %v", r, err)
	}
	skills, err := tr.Skills("beta", "acme")
	if err != nil || len(skills) != 1 || skills[0].Description != "Review code, beta." {
		t.Errorf("Skills(beta) = %v, %v", skills, err)
	}
	p, err := canary.Parse([]byte(good()[".agentao/canary.json"]), k)
	if err != nil {
		t.Fatal(err)
	}
	h := tr.Hashes(p)
	for _, key := range []string{"rules/v1", "rules/strict", "skills/default", "instructions/AGENTAO.md", "sandbox.json"} {
		if !strings.HasPrefix(h[key], "sha256:") {
			t.Errorf("hashes lack %s: %v", key, h)
		}
	}
}

func TestMissingPartsDefaultToNothing(t *testing.T) {
	tr, err := governance.Load(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Known("m", nil).Defaults; got != [5]string{"m", "none", "workspace-write", "workspace-write-no-network", "none"} {
		t.Errorf("defaults of an empty tree = %v", got)
	}
	if _, err := tr.Sandbox(); err != nil {
		t.Errorf("a missing sandbox.json means the default policy, got %v", err)
	}
}

func TestCheck(t *testing.T) {
	secret := "sk-" + strings.Repeat("Ab3", 10) + "xyz"
	tests := []struct {
		name  string
		files map[string]string
		max   int
		want  []string // each must appear in some problem; none: clean
	}{
		{"clean", good(), 0, nil},
		{"malformed skill", with(good(), "skills/beta/review/SKILL.md", "---\nname: [unclosed\n---\n"), 0, []string{"skills/beta/review/SKILL.md:3: invalid YAML frontmatter"}},
		{"bad rule regex", with(good(), ".agentao/permissions/v1.json", `{"rules": [{"tool": "(", "action": "allow"}]}`), 0,
			[]string{".agentao/permissions/v1.json", "rules[0].tool"}},
		{"unknown sandbox profile", with(good(), ".agentao/sandbox.json", `{"default_profile": "open"}`), 0, []string{".agentao/sandbox.json", `"open"`}},
		{"canary points at nothing", with(good(), ".agentao/canary.json", `{"rules": {"stable": "v9"}, "skills": {"stable": "gamma"}}`), 0,
			[]string{".agentao/canary.json: rules.stable", ".agentao/canary.json: skills.stable"}},
		{"secret in AGENTAO.md", with(good(), "AGENTAO.md", "# Rules\nUse the key "+secret+" for the API.\n"), 0, []string{"AGENTAO.md:2: looks like a secret (openai_api_key"}},
		{"secret in a skill resource", with(good(), "skills/default/review/references/notes.md", "token: "+secret+"\n"), 0,
			[]string{"skills/default/review/references/notes.md:1: looks like a secret"}},
		{"prompt too long", good(), 100, []string{"skills/default with AGENTAO.md: the system prompt is", "over the limit of 100"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := governance.Check(writeTree(t, tc.files), governance.CheckOptions{Model: "gpt-4o", MaxPromptChars: tc.max})
			all := strings.Join(r.Problems, "\n")
			if len(tc.want) == 0 && len(r.Problems) > 0 {
				t.Fatalf("problems in a clean tree:\n%s", all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems do not mention %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestShippedTree: the configuration tree in this repository passes the
// check agentd's CI runs.
func TestShippedTree(t *testing.T) {
	r := governance.Check("../..", governance.CheckOptions{})
	if len(r.Problems) > 0 {
		t.Errorf("the shipped tree has problems:\n%s", strings.Join(r.Problems, "\n"))
	}
}
