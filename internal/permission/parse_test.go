package permission_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/permission"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		wantMode  permission.Mode
		wantRules []permission.Rule // the version's own rules
	}{
		{"empty object", `{}`, permission.ModeWorkspaceWrite, nil},
		{"empty rules", `{"rules": []}`, permission.ModeWorkspaceWrite, nil},
		{"mode only", `{"mode": "plan"}`, permission.ModePlan, nil},
		{
			"all fields",
			`{"mode": "read-only", "rules": [
				{"tool": "run_shell_command", "args": {"command": "^git "}, "action": "allow"},
				{"tool": "web_fetch", "domain": {"url_arg": "link", "allowlist": [".Example.com"], "blocklist": ["10."]}, "action": "DENY"},
				{"tool": "mcp_.*"}
			]}`,
			permission.ModeReadOnly,
			[]permission.Rule{
				{Tool: "run_shell_command", Args: map[string]string{"command": "^git "}, Action: permission.Allow},
				{Tool: "web_fetch", Domain: &permission.Domain{URLArg: "link", Allowlist: []string{".Example.com"}, Blocklist: []string{"10."}}, Action: permission.Deny},
				{Tool: "mcp_.*", Action: permission.Ask},
			},
		},
		{"missing action is ask", `{"rules": [{"tool": "x"}]}`, permission.ModeWorkspaceWrite, []permission.Rule{{Tool: "x", Action: permission.Ask}}},
		{"action in any case", `{"rules": [{"tool": "x", "action": "Allow"}]}`, permission.ModeWorkspaceWrite, []permission.Rule{{Tool: "x", Action: permission.Allow}}},
		{"white space around", " \n{\"rules\": [{\"tool\": \"*\", \"action\": \"ask\"}]}\n\n", permission.ModeWorkspaceWrite, []permission.Rule{{Tool: "*", Action: permission.Ask}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := permission.Parse("v1", []byte(tc.data))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if r.Version() != "v1" || r.Mode() != tc.wantMode {
				t.Errorf("Version, Mode = %q, %q; want %q, %q", r.Version(), r.Mode(), "v1", tc.wantMode)
			}
			got := userRules(r.Snapshot())
			if len(got) != len(tc.wantRules) {
				t.Fatalf("rules = %v; want %v", got, tc.wantRules)
			}
			for i := range got {
				if got[i].String() != tc.wantRules[i].String() || !sameDomain(got[i].Domain, tc.wantRules[i].Domain) {
					t.Errorf("rules[%d] = %v %+v; want %v %+v", i, got[i], got[i].Domain, tc.wantRules[i], tc.wantRules[i].Domain)
				}
			}
		})
	}
}

// userRules picks the version's rules out of a snapshot: presets' rules
// are recognisable by their tools and patterns, so compare with a bare
// preset of the same mode.
func userRules(s permission.ActivePermissions) []permission.Rule {
	p, _ := permission.Preset(s.Mode)
	n := len(p.Snapshot().Rules)
	if s.Mode == permission.ModeFullAccess || s.Mode == permission.ModePlan {
		return s.Rules[n:]
	}
	return s.Rules[:len(s.Rules)-n]
}

func sameDomain(a, b *permission.Domain) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.URLArg == b.URLArg && strings.Join(a.Allowlist, ",") == strings.Join(b.Allowlist, ",") && strings.Join(a.Blocklist, ",") == strings.Join(b.Blocklist, ",")
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // each must appear in the error
	}{
		{"malformed JSON", `{"rules": [`, []string{"malformed file"}},
		{"syntax error", `{"rules": [}`, []string{"malformed file: invalid JSON at byte"}},
		{"empty input", ``, []string{"malformed file: unexpected end of JSON"}},
		{"not an object", `[]`, []string{"want an object, got an array"}},
		{"trailing data", `{} {}`, []string{"unexpected data after the JSON object"}},
		{"unknown top-level field", `{"rulez": []}`, []string{`"rulez": unknown field`}},
		{"duplicate top-level field", `{"mode": "plan", "mode": "full-access"}`, []string{`duplicate field "mode"`}},
		{"unknown mode", `{"mode": "yolo"}`, []string{`mode: unknown mode "yolo"`}},
		{"mode of wrong type", `{"mode": 1}`, []string{"mode: want a string, got a number"}},
		{"rules of wrong type", `{"rules": {}}`, []string{"rules: want an array of rules, got an object"}},
		{"rules null", `{"rules": null}`, []string{"rules: want an array of rules, got null"}},
		{"rule not an object", `{"rules": ["x"]}`, []string{"rules[0]: want an object, got a string"}},
		{"missing tool", `{"rules": [{"action": "allow"}]}`, []string{"rules[0].tool: missing"}},
		{"empty tool", `{"rules": [{"tool": ""}]}`, []string{"rules[0].tool: empty"}},
		{"tool of wrong type", `{"rules": [{"tool": 5}]}`, []string{"rules[0].tool: want a string, got a number"}},
		{"bad tool regex", `{"rules": [{"tool": "(", "action": "deny"}]}`, []string{`rules[0].tool: invalid regex "(": missing closing )`}},
		{"bad args regex", `{"rules": [{"tool": "x"}, {"tool": "x", "args": {"command": "^(?=git)"}}]}`, []string{`rules[1].args.command: invalid regex "^(?=git)": invalid or unsupported Perl syntax`}},
		{"args of wrong type", `{"rules": [{"tool": "x", "args": ["command"]}]}`, []string{"rules[0].args: want an object, got an array"}},
		{"args value of wrong type", `{"rules": [{"tool": "x", "args": {"timeout": 5}}]}`, []string{"rules[0].args.timeout: want a regex string, got a number"}},
		{"duplicate arg", `{"rules": [{"tool": "x", "args": {"a": "1", "a": "2"}}]}`, []string{`rules[0].args: duplicate field "a"`}},
		{"unknown rule field", `{"rules": [{"tool": "x", "pattern": "^git "}]}`, []string{"rules[0].pattern: unknown field"}},
		{"Agentao dialect field", `{"rules": [{"tool": "x", "dialect": "posix"}]}`, []string{"rules[0].dialect: unknown field"}},
		{"unknown action", `{"rules": [{"tool": "x", "action": "alow"}]}`, []string{`rules[0].action: unknown action "alow"`}},
		{"action of wrong type", `{"rules": [{"tool": "x", "action": true}]}`, []string{"rules[0].action: want a string, got a boolean"}},
		{"duplicate action", `{"rules": [{"tool": "x", "action": "deny", "action": "allow"}]}`, []string{`rules[0]: duplicate field "action"`}},
		{"domain not an object", `{"rules": [{"tool": "x", "domain": "github.com"}]}`, []string{"rules[0].domain: want an object, got a string"}},
		{"empty domain", `{"rules": [{"tool": "x", "domain": {}}]}`, []string{"rules[0].domain: needs a non-empty allowlist or blocklist"}},
		{"empty domain lists", `{"rules": [{"tool": "x", "domain": {"allowlist": [], "blocklist": []}}]}`, []string{"rules[0].domain: needs a non-empty allowlist or blocklist"}},
		{"unknown domain field", `{"rules": [{"tool": "x", "domain": {"allow": ["x"]}}]}`, []string{"rules[0].domain.allow: unknown field"}},
		{"list of wrong type", `{"rules": [{"tool": "x", "domain": {"allowlist": "github.com"}}]}`, []string{"rules[0].domain.allowlist: want an array of host names, got a string"}},
		{"entry of wrong type", `{"rules": [{"tool": "x", "domain": {"blocklist": ["a", 1]}}]}`, []string{"rules[0].domain.blocklist[1]: want a string, got a number"}},
		{"url_arg of wrong type", `{"rules": [{"tool": "x", "domain": {"url_arg": [], "allowlist": ["a"]}}]}`, []string{"rules[0].domain.url_arg: want a string, got an array"}},
		{"empty url_arg", `{"rules": [{"tool": "x", "domain": {"url_arg": "", "allowlist": ["a"]}}]}`, []string{"rules[0].domain.url_arg: empty"}},
		{"URL entry", `{"rules": [{"tool": "x", "domain": {"allowlist": ["https://github.com"]}}]}`, []string{`rules[0].domain.allowlist[0]: "https://github.com": want a host name, not a URL`}},
		{"wildcard entry", `{"rules": [{"tool": "x", "domain": {"blocklist": ["*.corp"]}}]}`, []string{"rules[0].domain.blocklist[0]", "wildcards are not supported"}},
		{"host with port", `{"rules": [{"tool": "x", "domain": {"blocklist": ["localhost:8080"]}}]}`, []string{"want a host name without a port"}},
		{"empty entry", `{"rules": [{"tool": "x", "domain": {"blocklist": [""]}}]}`, []string{"rules[0].domain.blocklist[0]: \"\": empty host"}},
		{
			"several problems",
			`{"mode": "yolo", "rules": [
				{"tool": "(", "action": "allow"},
				{"tool": "ok", "action": "deny"},
				{"tool": "x", "args": {"a": "[", "b": "("}},
				{"action": "maybe"},
				{"tool": "web_fetch", "domain": {"blocklist": ["http://x"]}}
			]}`,
			[]string{
				`mode: unknown mode "yolo"`,
				`rules[0].tool: invalid regex "("`,
				`rules[2].args.a: invalid regex "["`,
				`rules[2].args.b: invalid regex "("`,
				`rules[3].action: unknown action "maybe"`,
				"rules[3].tool: missing",
				`rules[4].domain.blocklist[0]: "http://x": want a host name, not a URL`,
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := permission.Parse("v7", []byte(tc.data))
			if err == nil {
				t.Fatalf("Parse = %v, nil; want an error", r.Snapshot())
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `permission version "v7": `) {
				t.Errorf("Parse error = %q; want it to start with the version", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("Parse error = %q; want it to contain %q", msg, w)
				}
			}
			// Each problem is its own joined error.
			var joined interface{ Unwrap() []error }
			if !errors.As(err, &joined) {
				t.Fatalf("Parse error %T does not wrap a joined error", err)
			}
			if got := len(joined.Unwrap()); got != len(tc.want) && tc.name != "wildcard entry" {
				t.Errorf("Parse reported %d problems: %q; want %d", got, msg, len(tc.want))
			}
		})
	}
}

func TestParseEmptyVersion(t *testing.T) {
	if _, err := permission.Parse("", []byte(`{}`)); err == nil {
		t.Error(`Parse("", {}) = nil error; want an error`)
	}
}

func TestUnknownMode(t *testing.T) {
	if _, err := permission.Preset("yolo"); err == nil {
		t.Error(`Preset("yolo") = nil error; want an error`)
	}
	r, _ := permission.Preset(permission.ModePlan)
	if _, err := r.WithMode("code"); err == nil {
		t.Error(`WithMode("code") = nil error; want an error`)
	}
}
