package permission_test

import (
	"testing"

	"github.com/agentd/agentd/internal/permission"
)

// tenRules is a plausible version: ten user rules in front of workspace-write.
const tenRules = `{"mode": "workspace-write", "rules": [
	{"tool": "run_shell_command", "args": {"command": "^(make|go|npm) (test|build|vet)\\b"}, "action": "allow"},
	{"tool": "run_shell_command", "args": {"command": "curl .*\\|\\s*(ba)?sh"}, "action": "deny"},
	{"tool": "run_shell_command", "args": {"command": "\\bgit push\\b"}, "action": "ask"},
	{"tool": "write_file", "args": {"file_path": "^/data/tenant-acme/"}, "action": "allow"},
	{"tool": "write_file", "action": "deny"},
	{"tool": "mcp_github_.*", "action": "ask"},
	{"tool": "mcp_database_query", "args": {"sql": "^SELECT "}, "action": "allow"},
	{"tool": "mcp_database_.*", "action": "deny"},
	{"tool": "web_fetch", "domain": {"blocklist": ["10.", "172.16.", "192.168.", ".corp.example.com"]}, "action": "deny"},
	{"tool": "save_memory", "args": {"scope": "^user$"}, "action": "deny"}
]}`

func BenchmarkCheck(b *testing.B) {
	r, err := permission.Parse("bench", []byte(tenRules))
	if err != nil {
		b.Fatal(err)
	}
	c := permission.Call{Tool: permission.ShellTool, Args: map[string]any{"command": "git status --short"}, Confirm: true}
	if d := r.Check(c); d.Action != permission.Allow || d.Source != permission.SourceModePreset {
		b.Fatalf("Check = %+v; want allow by the preset's allowlist", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Check(c)
	}
}

func BenchmarkCheckCalls(b *testing.B) {
	r, err := permission.Parse("bench", []byte(tenRules))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		call permission.Call
	}{
		{"read_file", permission.Call{Tool: "read_file", Args: map[string]any{"file_path": "main.go"}, ReadOnly: true}},
		{"web_fetch", permission.Call{Tool: "web_fetch", Args: map[string]any{"url": "https://github.com/golang/go"}, ReadOnly: true, Confirm: true}},
		{"shell pipeline", permission.Call{Tool: permission.ShellTool, Args: map[string]any{"command": `find . -name '*.go' | xargs grep -n "TODO" | sort | head -50`}, Confirm: true}},
		{"shell script", permission.Call{Tool: permission.ShellTool, Args: map[string]any{"command": "set -e\ncd /tmp/build\nfor f in *.o; do\n  rm -f \"$f\"\ndone\nmake -j8 CC=clang 2>&1 | tee build.log\n"}, Confirm: true}},
		{"shell hardline", permission.Call{Tool: permission.ShellTool, Args: map[string]any{"command": "sudo bash -c 'rm -rf /'"}, Confirm: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Check(bc.call)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := permission.Parse("bench", []byte(tenRules)); err != nil {
			b.Fatal(err)
		}
	}
}
