package permission_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/agentd/agentd/internal/permission"
)

// The tools' attributes, as agentd's built-in tools declare them.
func call(tool string, args map[string]any) permission.Call {
	c := permission.Call{Tool: tool, Args: args}
	switch tool {
	case "read_file", "list_directory", "glob", "search_file_content", "ask_user":
		c.ReadOnly = true
	case "web_fetch", "web_search":
		c.ReadOnly, c.Confirm = true, true
	case "write_file", "replace", "run_shell_command":
		c.Confirm = true
	case "save_memory", "activate_skill", "todo_write", "plan_save", "plan_finalize":
	default: // MCP tools and anything unknown: confirm
		c.Confirm = true
	}
	return c
}

func shell(command string) permission.Call {
	return call(permission.ShellTool, map[string]any{"command": command})
}

func fetch(url string) permission.Call { return call("web_fetch", map[string]any{"url": url}) }

func mustParse(t *testing.T, data string) *permission.Rules {
	t.Helper()
	r, err := permission.Parse("v1", []byte(data))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

type want struct {
	action permission.Action
	source string
	rule   int
}

func (w want) check(t *testing.T, c permission.Call, d permission.Decision) {
	t.Helper()
	if d.Action != w.action || d.Source != w.source || d.Rule != w.rule {
		t.Errorf("Check(%s %v) = %v by %s rule %d (%s); want %v by %s rule %d",
			c.Tool, c.Args, d.Action, d.Source, d.Rule, d.Reason, w.action, w.source, w.rule)
	}
}

// TestGotchas are the reference's guide-versus-code traps (§0 facts 7-8, §8).
func TestGotchas(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		call  permission.Call
		want
	}{
		{
			"mcp_github_* does not match mcp_github_get_issue",
			`{"rules": [{"tool": "mcp_github_*", "action": "deny"}]}`,
			call("mcp_github_get_issue", nil),
			want{permission.Ask, permission.SourceDefault, -1},
		},
		{
			"mcp_github_* matches mcp_github (zero underscores)",
			`{"rules": [{"tool": "mcp_github_*", "action": "deny"}]}`,
			call("mcp_github", nil),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"mcp_github_.* matches mcp_github_get_issue",
			`{"rules": [{"tool": "mcp_github_.*", "action": "deny"}]}`,
			call("mcp_github_get_issue", nil),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"tool is matched whole, not searched",
			`{"rules": [{"tool": "file", "action": "deny"}]}`,
			call("read_file", nil),
			want{permission.Allow, permission.SourceDefault, -1},
		},
		{
			"* matches every tool",
			`{"rules": [{"tool": "*", "action": "deny"}]}`,
			call("anything_at_all", nil),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"args.path never matches write_file",
			`{"rules": [{"tool": "write_file", "args": {"path": "^/etc/"}, "action": "deny"}]}`,
			call("write_file", map[string]any{"file_path": "/etc/passwd", "content": "x"}),
			want{permission.Allow, permission.SourceModePreset, 0},
		},
		{
			"args.file_path does",
			`{"rules": [{"tool": "write_file", "args": {"file_path": "^/etc/"}, "action": "deny"}]}`,
			call("write_file", map[string]any{"file_path": "/etc/passwd", "content": "x"}),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"missing action means ask",
			`{"rules": [{"tool": "run_shell_command", "args": {"command": "^make"}}]}`,
			shell("make test"),
			want{permission.Ask, permission.SourceUserRule, 0},
		},
		{
			"first match wins",
			`{"rules": [
				{"tool": "run_shell_command", "args": {"command": "^git "}, "action": "allow"},
				{"tool": "run_shell_command", "args": {"command": "push"}, "action": "deny"}
			]}`,
			shell("git push --force"),
			want{permission.Allow, permission.SourceUserRule, 0},
		},
		{
			"args are searched, not anchored",
			`{"rules": [{"tool": "run_shell_command", "args": {"command": "push"}, "action": "deny"}]}`,
			shell("git push"),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"all args must match",
			`{"rules": [{"tool": "replace", "args": {"file_path": "\\.go$", "old_text": "TODO"}, "action": "deny"}]}`,
			call("replace", map[string]any{"file_path": "main.go", "old_text": "x", "new_text": "y"}),
			want{permission.Allow, permission.SourceModePreset, 1},
		},
		{
			"user rules come before the preset in workspace-write",
			`{"mode": "workspace-write", "rules": [{"tool": "write_file", "action": "deny"}]}`,
			call("write_file", nil),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"user rules come before the preset in read-only",
			`{"mode": "read-only", "rules": [{"tool": "read_file", "action": "deny"}]}`,
			call("read_file", nil),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"user rules come after the preset in full-access",
			`{"mode": "full-access", "rules": [{"tool": "write_file", "action": "deny"}]}`,
			call("write_file", nil),
			want{permission.Allow, permission.SourceModePreset, 0},
		},
		{
			"user rules come after the preset in plan",
			`{"mode": "plan", "rules": [{"tool": "write_file", "action": "allow"}]}`,
			call("write_file", nil),
			want{permission.Deny, permission.SourceModePreset, 2},
		},
		{
			"user rules still apply in plan where the preset is silent",
			`{"mode": "plan", "rules": [{"tool": "read_file", "action": "deny"}]}`,
			call("read_file", nil),
			want{permission.Deny, permission.SourceUserRule, 0},
		},
		{
			"ask on a tool that needs no confirmation becomes allow",
			`{"rules": [{"tool": "todo_write", "action": "ask"}]}`,
			call("todo_write", nil),
			want{permission.Allow, permission.SourceUserRule, 0},
		},
		{
			"ask on a tool that needs confirmation stays ask",
			`{"rules": [{"tool": "mcp_db_query", "action": "ask"}]}`,
			call("mcp_db_query", nil),
			want{permission.Ask, permission.SourceUserRule, 0},
		},
		{
			"no match: a confirming tool asks",
			`{}`,
			call("mcp_db_query", nil),
			want{permission.Ask, permission.SourceDefault, -1},
		},
		{
			"no match: another tool runs",
			`{}`,
			call("activate_skill", nil),
			want{permission.Allow, permission.SourceDefault, -1},
		},
		{
			"read-only denies write tools",
			`{"mode": "read-only"}`,
			call("write_file", nil),
			want{permission.Deny, permission.SourceModePreset, -1},
		},
		{
			"read-only denies the shell",
			`{"mode": "read-only"}`,
			shell("ls"),
			want{permission.Deny, permission.SourceModePreset, -1},
		},
		{
			"read-only denies even a user allow",
			`{"mode": "read-only", "rules": [{"tool": "*", "action": "allow"}]}`,
			call("todo_write", nil),
			want{permission.Deny, permission.SourceModePreset, -1},
		},
		{
			"read-only allows read_file",
			`{"mode": "read-only"}`,
			call("read_file", map[string]any{"file_path": "a.go"}),
			want{permission.Allow, permission.SourceDefault, -1},
		},
		{
			"read-only allows glob",
			`{"mode": "read-only"}`,
			call("glob", map[string]any{"pattern": "**/*.go"}),
			want{permission.Allow, permission.SourceDefault, -1},
		},
		{
			"the hardline comes before read-only",
			`{"mode": "read-only"}`,
			shell("rm -rf /"),
			want{permission.Deny, permission.SourceHardline, -1},
		},
		{
			"no rule overrides the hardline",
			`{"mode": "full-access", "rules": [{"tool": "run_shell_command", "action": "allow"}]}`,
			shell("sudo reboot"),
			want{permission.Deny, permission.SourceHardline, -1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.check(t, tc.call, mustParse(t, tc.rules).Check(tc.call))
		})
	}
}

func TestReasons(t *testing.T) {
	r := mustParse(t, `{"rules": [
		{"tool": "todo_write", "action": "ask"},
		{"tool": "run_shell_command", "args": {"command": "^git "}, "action": "allow"}
	]}`)
	tests := []struct {
		name                    string
		call                    permission.Call
		wantMatched, wantReason string
	}{
		{"user rule", shell("git status"), "run_shell_command {command: ^git } allow",
			"user-rule: rules[1] of version v1 matched: run_shell_command {command: ^git } allow"},
		{"ask becomes allow", call("todo_write", nil), "todo_write ask",
			"user-rule: rules[0] of version v1 matched: todo_write ask; ask becomes allow because the tool needs no confirmation"},
		{"preset", call("write_file", nil), "write_file allow",
			"mode-preset: workspace-write preset rule 0 matched: write_file allow"},
		{"hardline", shell("rm -rf /"), "", "hardline: recursive delete of /"},
		{"default", call("mcp_x_y", nil), "", "default: no rule matched and the tool requires confirmation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := r.Check(tc.call)
			if d.Matched != tc.wantMatched || d.Reason != tc.wantReason {
				t.Errorf("Check(%s) Matched, Reason = %q, %q; want %q, %q", tc.call.Tool, d.Matched, d.Reason, tc.wantMatched, tc.wantReason)
			}
			if d.Version != "v1" || d.Mode != permission.ModeWorkspaceWrite {
				t.Errorf("Check(%s) Version, Mode = %q, %q; want v1, workspace-write", tc.call.Tool, d.Version, d.Mode)
			}
		})
	}
}

func TestDomainRules(t *testing.T) {
	rules := mustParse(t, `{"rules": [
		{"tool": "web_fetch", "domain": {"allowlist": [".github.com", "r.jina.ai"]}, "action": "allow"},
		{"tool": "web_fetch", "domain": {"blocklist": ["10.", "192.168.", "::1", "Metadata.Google.Internal"]}, "action": "deny"},
		{"tool": "mcp_http_get", "domain": {"url_arg": "endpoint", "blocklist": [".corp.example"]}, "action": "deny"},
		{"tool": "web_fetch", "args": {"extract_text": "false"}, "domain": {"allowlist": [".example.org"]}, "action": "deny"}
	]}`)
	tests := []struct {
		name string
		call permission.Call
		want
	}{
		{"bare suffix domain", fetch("https://github.com/x"), want{permission.Allow, permission.SourceUserRule, 0}},
		{"subdomain", fetch("https://api.github.com/repos"), want{permission.Allow, permission.SourceUserRule, 0}},
		{"deeper subdomain", fetch("https://a.b.github.com/"), want{permission.Allow, permission.SourceUserRule, 0}},
		{"look-alike domain", fetch("https://evilgithub.com/"), want{permission.Ask, permission.SourceModePreset, 8}},
		{"suffix trick", fetch("https://github.com.evil.net/"), want{permission.Ask, permission.SourceModePreset, 8}},
		{"user information", fetch("https://github.com@evil.net/"), want{permission.Ask, permission.SourceModePreset, 8}},
		{"exact host", fetch("https://r.jina.ai/https://x"), want{permission.Allow, permission.SourceUserRule, 0}},
		{"exact host excludes subdomains", fetch("https://x.r.jina.ai/"), want{permission.Ask, permission.SourceModePreset, 8}},
		{"no scheme", fetch("github.com/golang/go"), want{permission.Allow, permission.SourceUserRule, 0}},
		{"case and port", fetch("HTTPS://API.GITHUB.COM:443/x"), want{permission.Allow, permission.SourceUserRule, 0}},
		{"ipv4 prefix", fetch("http://10.0.0.5/admin"), want{permission.Deny, permission.SourceUserRule, 1}},
		{"ipv4 prefix with port", fetch("http://192.168.1.1:8080/"), want{permission.Deny, permission.SourceUserRule, 1}},
		{"ipv4 prefix is not a number prefix", fetch("http://100.0.0.1/"), want{permission.Ask, permission.SourceModePreset, 8}},
		{"ipv4 prefix is not a name prefix", fetch("http://10.example.com/"), want{permission.Ask, permission.SourceModePreset, 8}},
		{"ipv6 literal", fetch("http://[::1]:8080/"), want{permission.Deny, permission.SourceUserRule, 1}},
		{"entries are lower-cased", fetch("http://metadata.google.internal/"), want{permission.Deny, permission.SourceUserRule, 1}},
		{"trailing dot", fetch("http://localhost./"), want{permission.Deny, permission.SourceModePreset, 7}},
		{"unparseable URL never matches", fetch("http://[::1"), want{permission.Ask, permission.SourceModePreset, 8}},
		{"missing URL never matches", call("web_fetch", nil), want{permission.Ask, permission.SourceModePreset, 8}},
		{"url_arg", call("mcp_http_get", map[string]any{"endpoint": "https://wiki.corp.example/x"}), want{permission.Deny, permission.SourceUserRule, 2}},
		{"url_arg other argument ignored", call("mcp_http_get", map[string]any{"url": "https://wiki.corp.example/x"}), want{permission.Ask, permission.SourceDefault, -1}},
		{"args and domain both match", call("web_fetch", map[string]any{"url": "https://example.org", "extract_text": false}), want{permission.Deny, permission.SourceUserRule, 3}},
		{"args and domain: args differ", call("web_fetch", map[string]any{"url": "https://example.org", "extract_text": true}), want{permission.Ask, permission.SourceModePreset, 8}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.check(t, tc.call, rules.Check(tc.call))
		})
	}
}

// TestArgRendering: how non-string arguments look to args regexes.
func TestArgRendering(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		value   any
		match   bool
	}{
		{"string", "^a b$", "a b", true},
		{"integer float", "^120$", float64(120), true},
		{"fraction", `^0\.5$`, 0.5, true},
		{"int", "^7$", 7, true},
		{"json.Number", "^1e3$", json.Number("1e3"), true},
		{"true", "^true$", true, true},
		{"not Python's True", "^True$", true, false},
		{"null", "^null$", nil, true},
		{"object", `^\{"a":1\}$`, map[string]any{"a": 1}, true},
		{"array", `^\["x","y"\]$`, []any{"x", "y"}, true},
		{"missing is empty", "^$", missing{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := mustParse(t, `{"rules": [{"tool": "t", "args": {"v": `+jsonString(tc.pattern)+`}, "action": "deny"}]}`)
			args := map[string]any{"v": tc.value}
			if _, ok := tc.value.(missing); ok {
				args = nil
			}
			got := r.Check(permission.Call{Tool: "t", Args: args}).Action == permission.Deny
			if got != tc.match {
				t.Errorf("rule {v: %s} on %#v matched = %v; want %v", tc.pattern, tc.value, got, tc.match)
			}
		})
	}
}

type missing struct{}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestSnapshot(t *testing.T) {
	r := mustParse(t, `{"mode": "plan", "rules": [{"tool": "x", "args": {"a": "b"}, "action": "deny"}]}`)
	s := r.Snapshot()
	if s.Mode != permission.ModePlan {
		t.Errorf("Snapshot().Mode = %q; want plan", s.Mode)
	}
	if got, want := strings.Join(s.LoadedSources, ","), "preset:plan,user:v1"; got != want {
		t.Errorf("Snapshot().LoadedSources = %q; want %q", got, want)
	}
	// plan: the preset's 13 rules first, then the version's.
	if len(s.Rules) != 14 || s.Rules[0].Tool != "plan_save" || s.Rules[13].Tool != "x" {
		t.Fatalf("Snapshot().Rules = %v; want 13 plan rules then x", s.Rules)
	}
	ww, err := r.WithMode(permission.ModeWorkspaceWrite)
	if err != nil {
		t.Fatal(err)
	}
	if s := ww.Snapshot(); s.Rules[0].Tool != "x" || s.Rules[1].Tool != "write_file" || s.LoadedSources[0] != "preset:workspace-write" {
		t.Errorf("WithMode(workspace-write).Snapshot() = %v; want x first, then the preset", s)
	}
	if r.Mode() != permission.ModePlan {
		t.Errorf("WithMode changed the original's mode to %q", r.Mode())
	}

	// The snapshot is a copy.
	s.Rules[13].Args["a"] = "changed"
	s.Rules[12].Domain = nil
	if d := r.Check(permission.Call{Tool: "x", Args: map[string]any{"a": "b"}}); d.Action != permission.Deny {
		t.Errorf("after changing a snapshot, Check = %v; want deny", d.Action)
	}
	if s2 := r.Snapshot(); s2.Rules[13].Args["a"] != "b" {
		t.Errorf("a snapshot change leaked into the rules: %v", s2.Rules[13])
	}

	// The JSON shape of Agentao's active_permissions.
	p, _ := permission.Preset(permission.ModeFullAccess)
	b, err := json.Marshal(p.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"mode":"full-access","rules":[{"tool":"*","action":"allow"}],"loaded_sources":["preset:full-access"]}`; got != want {
		t.Errorf("json(Snapshot()) = %s; want %s", got, want)
	}
}

func TestAction(t *testing.T) {
	for _, tc := range []struct {
		a    permission.Action
		text string
	}{{permission.Deny, "deny"}, {permission.Allow, "allow"}, {permission.Ask, "ask"}} {
		if got := tc.a.String(); got != tc.text {
			t.Errorf("%d.String() = %q; want %q", tc.a, got, tc.text)
		}
		var back permission.Action
		if err := back.UnmarshalText([]byte(strings.ToUpper(tc.text))); err != nil || back != tc.a {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", strings.ToUpper(tc.text), back, err, tc.a)
		}
	}
	var zero permission.Action
	if zero != permission.Deny {
		t.Errorf("zero Action = %v; want deny", zero)
	}
	if err := zero.UnmarshalText([]byte("yes")); err == nil {
		t.Error(`UnmarshalText("yes") = nil; want an error`)
	}
	if _, err := permission.Action(9).MarshalText(); err == nil {
		t.Error("Action(9).MarshalText() = nil error; want an error")
	}
	if got := permission.Action(9).String(); got != "Action(9)" {
		t.Errorf("Action(9).String() = %q; want Action(9)", got)
	}
}

func TestNilRulesDeny(t *testing.T) {
	var r *permission.Rules
	if d := r.Check(call("read_file", nil)); d.Action != permission.Deny {
		t.Errorf("nil Rules Check = %v; want deny", d.Action)
	}
}

// TestConcurrentCheck is for the race detector: one Rules, many callers.
func TestConcurrentCheck(t *testing.T) {
	r := mustParse(t, `{"rules": [
		{"tool": "run_shell_command", "args": {"command": "^git "}, "action": "allow"},
		{"tool": "web_fetch", "domain": {"blocklist": [".corp"]}, "action": "deny"}
	]}`)
	calls := []permission.Call{shell("git status"), shell("rm -rf /"), shell(`f(){ rm -rf "$1"; }; f /etc`), fetch("https://x.corp/"), call("write_file", nil)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				c := calls[(g+i)%len(calls)]
				if d := r.Check(c); d.Action == permission.Allow && c.Tool == permission.ShellTool && c.Args["command"] != "git status" {
					t.Errorf("Check(%v) = allow", c.Args)
				}
				_ = r.Snapshot()
			}
		}()
	}
	wg.Wait()
}
