package sandbox_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/sandbox"
)

func TestParseGood(t *testing.T) {
	shell := "run_shell_command"
	tests := []struct {
		name     string
		doc      string
		enabled  bool
		platform string
		def      sandbox.Profile
		rules    []sandbox.Rule
	}{
		{"empty object: the defaults", `{}`, true, "", sandbox.WorkspaceWriteNoNetwork, nil},
		{"Agentao's example", `{"enabled": false, "platform": "darwin", "default_profile": "workspace-write-no-network",
			"rules": [{"tool": "run_shell_command", "profile": "workspace-write"}],
			"profiles_dir": null, "workspace_root": null}`,
			false, "darwin", sandbox.WorkspaceWriteNoNetwork, []sandbox.Rule{{Tool: shell, Profile: sandbox.WorkspaceWrite}}},
		{"explicit nulls", `{"platform": null, "default_profile": null, "rules": null}`, true, "", sandbox.WorkspaceWriteNoNetwork, nil},
		{"readonly default", `{"enabled": true, "platform": "linux", "default_profile": "readonly", "rules": []}`,
			true, "linux", sandbox.Readonly, nil},
		{"profile settings", `{"profiles": {"workspace-write": {"env": ["HTTPS_PROXY"], "read_only_paths": ["/opt/tools"]}, "readonly": {}}}`,
			true, "", sandbox.WorkspaceWriteNoNetwork, nil},
		{"several rules", `{"rules": [{"profile": "readonly", "tool": "a"}, {"tool": "b", "profile": "workspace-write"}]}`,
			true, "", sandbox.WorkspaceWriteNoNetwork,
			[]sandbox.Rule{{Tool: "a", Profile: sandbox.Readonly}, {Tool: "b", Profile: sandbox.WorkspaceWrite}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := sandbox.Parse([]byte(tc.doc))
			if err != nil {
				t.Fatalf("Parse = %v; want no error", err)
			}
			if p.Enabled() != tc.enabled || p.Platform() != tc.platform || p.Default() != tc.def || !slices.Equal(p.Rules(), tc.rules) {
				t.Errorf("Parse = enabled %v, platform %q, default %s, rules %v; want %v, %q, %s, %v",
					p.Enabled(), p.Platform(), p.Default(), p.Rules(), tc.enabled, tc.platform, tc.def, tc.rules)
			}
		})
	}
}

func TestParseBad(t *testing.T) {
	known := "known: readonly, workspace-write, workspace-write-no-network"
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{"empty", ``, "invalid JSON: the document is empty"},
		{"malformed", "{\n  \"enabled\": true,\n}", "invalid JSON at line 3, column 1"},
		{"truncated", `{"enabled": true`, "invalid JSON"},
		{"trailing data", `{} {}`, "invalid JSON"},
		{"not an object", `["enabled"]`, "must be a JSON object, not array"},
		{"null document", `null`, "must be a JSON object, not null"},
		{"unknown field", `{"enable": true}`, "enable: unknown field; known: enabled, platform, default_profile, rules, profiles_dir, workspace_root, profiles"},
		{"profiles not an object", `{"profiles": []}`, "profiles: must be a JSON object, not array"},
		{"profiles unknown profile", `{"profiles": {"wide-open": {}}}`, `profiles.wide-open: unknown profile "wide-open"`},
		{"profiles unknown field", `{"profiles": {"readonly": {"network": true}}}`, "profiles.readonly.network: unknown field; known: env, read_only_paths"},
		{"profiles env not a list", `{"profiles": {"readonly": {"env": "HOME"}}}`, "profiles.readonly.env: must be an array of strings, not string"},
		{"profiles env number", `{"profiles": {"readonly": {"env": [1]}}}`, "profiles.readonly.env[0]: must be a string, not number"},
		{"profiles env agentd's", `{"profiles": {"readonly": {"env": ["AGENTD_API_KEYS"]}}}`, "profiles.readonly.env[0]: AGENTD_API_KEYS: agentd's own settings"},
		{"profiles env provider key", `{"profiles": {"readonly": {"env": ["OPENAI_API_KEY"]}}}`, "never passed to commands"},
		{"profiles env twice", `{"profiles": {"readonly": {"env": ["A", "A"]}}}`, `profiles.readonly.env[1]: "A" is listed twice`},
		{"profiles relative path", `{"profiles": {"readonly": {"read_only_paths": ["opt"]}}}`, `profiles.readonly.read_only_paths[0]: "opt" is not an absolute path`},
		{"profiles unclean path", `{"profiles": {"readonly": {"read_only_paths": ["/opt/../etc"]}}}`, `is not a clean path; write "/etc"`},
		{"profiles root path", `{"profiles": {"readonly": {"read_only_paths": ["/"]}}}`, `"/" would make every file readable`},
		{"Appendix B nested shape", `{"shell": {"allow_network": false}}`, "shell: unknown field"},
		{"duplicate field", `{"enabled": true, "enabled": false}`, "enabled: duplicate field"},
		{"duplicate field in a rule", `{"rules": [{"tool": "a", "profile": "readonly", "tool": "b"}]}`, "rules[0].tool: duplicate field"},
		{"enabled string", `{"enabled": "true"}`, "enabled: must be true or false, not string"},
		{"enabled null", `{"enabled": null}`, "enabled: must be true or false, not null"},
		{"enabled number", `{"enabled": 1}`, "enabled: must be true or false, not number"},
		{"platform number", `{"platform": 7}`, "platform: must be a string or null, not number"},
		{"default_profile unknown", `{"default_profile": "workspace-rw"}`, `default_profile: unknown profile "workspace-rw"; ` + known},
		{"default_profile empty", `{"default_profile": ""}`, `default_profile: unknown profile ""`},
		{"default_profile wrong case", `{"default_profile": "ReadOnly"}`, `default_profile: unknown profile "ReadOnly"`},
		{"default_profile array", `{"default_profile": ["readonly"]}`, "default_profile: must be a profile name (a string), not array"},
		{"rules object", `{"rules": {"tool": "a", "profile": "readonly"}}`, "rules: must be an array or null, not object"},
		{"rule string", `{"rules": ["run_shell_command"]}`, "rules[0]: must be an object"},
		{"rule unknown profile", `{"rules": [{"tool": "a", "profile": "readonly"}, {"tool": "run_shell_command", "profile": "workspace-rw"}]}`,
			`rules[1].profile: unknown profile "workspace-rw"; ` + known},
		{"rule profile number", `{"rules": [{"tool": "a", "profile": 1}]}`, "rules[0].profile: must be a profile name (a string), not number"},
		{"rule without profile", `{"rules": [{"tool": "a"}]}`, "rules[0].profile: missing"},
		{"rule without tool", `{"rules": [{"profile": "readonly"}]}`, "rules[0].tool: missing"},
		{"rule empty tool", `{"rules": [{"tool": "", "profile": "readonly"}]}`, "rules[0].tool: must not be empty"},
		{"rule tool null", `{"rules": [{"tool": null, "profile": "readonly"}]}`, "rules[0].tool: must be a tool name (a string), not null"},
		{"rule unknown field", `{"rules": [{"tool": "a", "profile": "readonly", "network": true}]}`, "rules[0].network: unknown field; known: tool, profile"},
		{"two rules for a tool", `{"rules": [{"tool": "a", "profile": "readonly"}, {"tool": "a", "profile": "workspace-write"}]}`,
			`rules[1].tool: a second rule for "a" (rules[0] is the first)`},
		{"profiles_dir set", `{"profiles_dir": "/etc/agentd/profiles"}`, "profiles_dir: custom profiles are not supported on Linux yet"},
		{"profiles_dir empty", `{"profiles_dir": ""}`, "profiles_dir: custom profiles are not supported on Linux yet"},
		{"profiles_dir wrong type", `{"profiles_dir": false}`, "profiles_dir: must be a string or null, not boolean"},
		{"workspace_root set", `{"workspace_root": "/srv"}`, "workspace_root: not supported by agentd"},
		{"workspace_root wrong type", `{"workspace_root": 3}`, "workspace_root: must be a string or null, not number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := sandbox.Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%s) = %v, %v; want an error containing %q", tc.doc, p, err, tc.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("missing file: defaults", func(t *testing.T) {
		p, err := sandbox.Load(filepath.Join(dir, "nope.json"))
		if err != nil || !p.Enabled() || p.Default() != sandbox.WorkspaceWriteNoNetwork || len(p.Rules()) != 0 {
			t.Fatalf("Load(missing) = %v, %v; want the defaults", p, err)
		}
		if !strings.Contains(p.Source(), "missing") {
			t.Errorf("Source() = %q; want it to say the file is missing", p.Source())
		}
	})
	t.Run("file", func(t *testing.T) {
		path := write("good.json", `{"default_profile": "readonly"}`)
		p, err := sandbox.Load(path)
		if err != nil || p.Default() != sandbox.Readonly || p.Source() != path {
			t.Fatalf("Load = %v, %v; want default readonly from %s", p, err, path)
		}
	})
	t.Run("bad file: error names the file and field", func(t *testing.T) {
		path := write("bad.json", `{"rules": [{"tool": "run_shell_command", "profile": "workspace-rw"}]}`)
		p, err := sandbox.Load(path)
		if want := path + `: rules[0].profile: unknown profile "workspace-rw"`; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Load = %v, %v; want an error starting %q", p, err, want)
		}
	})
	t.Run("unreadable: an error, not the defaults", func(t *testing.T) {
		p, err := sandbox.Load(dir) // a directory
		if err == nil {
			t.Errorf("Load(directory) = %v, nil; want an error", p)
		}
	})
	t.Run("the repository's .agentao/sandbox.json", func(t *testing.T) {
		p, err := sandbox.Load("../../.agentao/sandbox.json")
		if err != nil {
			t.Fatalf("Load = %v", err)
		}
		if got, _ := p.Profile("run_shell_command", ""); !p.Enabled() || got != sandbox.WorkspaceWriteNoNetwork {
			t.Errorf("Load = %v: run_shell_command uses %s; want enabled, workspace-write-no-network", p, got)
		}
	})
}

func TestProfile(t *testing.T) {
	p, err := sandbox.Parse([]byte(`{"default_profile": "readonly",
		"rules": [{"tool": "run_shell_command", "profile": "workspace-write"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tool, override string
		want           sandbox.Profile
		wantErr        string
	}{
		{"run_shell_command", "", sandbox.WorkspaceWrite, ""},
		{"other_tool", "", sandbox.Readonly, ""},
		{"run_shell_command", "workspace-write-no-network", sandbox.WorkspaceWriteNoNetwork, ""},
		{"other_tool", "workspace-write", sandbox.WorkspaceWrite, ""},
		{"run_shell_command", "workspace-rw", "", `profile override: unknown profile "workspace-rw"; known: readonly, workspace-write, workspace-write-no-network`},
	}
	for _, tc := range tests {
		got, err := p.Profile(tc.tool, tc.override)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("Profile(%q, %q) = %q, %v; want error %q", tc.tool, tc.override, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Profile(%q, %q) = %q, %v; want %q", tc.tool, tc.override, got, err, tc.want)
		}
	}
}

func TestParseProfile(t *testing.T) {
	for _, p := range sandbox.Profiles() {
		if got, err := sandbox.ParseProfile(string(p)); got != p || err != nil {
			t.Errorf("ParseProfile(%q) = %q, %v; want %q", p, got, err, p)
		}
	}
	if got, err := sandbox.ParseProfile("workspace_write"); err == nil {
		t.Errorf("ParseProfile(workspace_write) = %q; want an error", got)
	}
}

func TestSettings(t *testing.T) {
	p, err := sandbox.Parse([]byte(`{"profiles": {"workspace-write": {"env": ["HTTPS_PROXY", "NO_PROXY"], "read_only_paths": ["/opt/tools"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Settings(sandbox.WorkspaceWrite)
	if !slices.Equal(got.Env, []string{"HTTPS_PROXY", "NO_PROXY"}) || !slices.Equal(got.ReadOnlyPaths, []string{"/opt/tools"}) {
		t.Errorf("Settings(workspace-write) = %+v; want the named env and path", got)
	}
	if got := p.Settings(sandbox.Readonly); got.Env != nil || got.ReadOnlyPaths != nil {
		t.Errorf("Settings(readonly) = %+v; want none", got)
	}
	got.Env[0] = "CHANGED"
	if p.Settings(sandbox.WorkspaceWrite).Env[0] != "HTTPS_PROXY" {
		t.Errorf("Settings returned the policy's own slice; want a copy")
	}
}
