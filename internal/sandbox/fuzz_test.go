package sandbox_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agentd/agentd/internal/sandbox"
)

// FuzzParse: any sandbox.json is a policy or an error with a message, never
// a panic; a policy's default profile and every rule's profile are known
// profiles, and the profile each tool gets is one of them.
func FuzzParse(f *testing.F) {
	shipped, err := os.ReadFile(filepath.Join("..", "..", ".agentao", "sandbox.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(shipped)
	for _, s := range []string{
		`{}`, `{"enabled": false}`, `{"enabled": true, "platform": null, "default_profile": null, "rules": null, "profiles": null}`,
		// docs/configuration.md's example.
		`{"enabled": true, "default_profile": "workspace-write-no-network",
		  "rules": [{"tool": "run_shell_command", "profile": "workspace-write"}],
		  "profiles": {"workspace-write": {"env": ["HTTPS_PROXY"], "read_only_paths": ["/opt/toolchain"]}}}`,
		`{"enabled": true, "platform": "darwin", "default_profile": "readonly", "profiles_dir": "p", "workspace_root": "/w"}`,
		// Near misses.
		`{"enabled": "yes"}`, `{"default_profile": "workspace-rw"}`, `{"rules": [{"tool": "run_shell_command"}]}`,
		`{"rules": [{"profile": "readonly"}, 1]}`, `{"profiles": {"readonly": {"env": ["A=B"], "read_only_paths": ["rel"]}}}`,
		`{"profiles": {"nope": {}}}`, `{"enabled": true, "enabled": false}`, `{"enable": true}`, `{} []`, `[`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := sandbox.Parse(data)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v; want exactly one of a policy and an error", p, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Parse error has an empty message")
			}
			return
		}
		if !p.Default().Valid() {
			t.Errorf("default profile %q is not a profile", p.Default())
		}
		for _, r := range p.Rules() {
			if !r.Profile.Valid() {
				t.Errorf("rule for %q has profile %q", r.Tool, r.Profile)
			}
			if pr, err := p.Profile(r.Tool, ""); err != nil || !pr.Valid() {
				t.Errorf("Profile(%q) = %q, %v", r.Tool, pr, err)
			}
		}
		for _, pr := range sandbox.Profiles() {
			_ = p.Settings(pr)
		}
		if p.String() == "" {
			t.Error("String() is empty")
		}
	})
}
