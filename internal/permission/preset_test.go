package permission_test

import (
	"testing"

	"github.com/agentd/agentd/internal/permission"
)

type presetRow struct {
	name string
	call permission.Call
	want
}

func runPreset(t *testing.T, mode permission.Mode, rows []presetRow) {
	t.Helper()
	r, err := permission.Preset(mode)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			d := r.Check(tc.call)
			tc.want.check(t, tc.call, d)
			if d.Mode != mode || d.Version != "" {
				t.Errorf("Mode, Version = %q, %q; want %q, \"\"", d.Mode, d.Version, mode)
			}
		})
	}
}

const (
	preset = permission.SourceModePreset
	deflt  = permission.SourceDefault
	floor  = permission.SourceHardline
)

func TestPresetWorkspaceWrite(t *testing.T) {
	runPreset(t, permission.ModeWorkspaceWrite, []presetRow{
		{"write_file", call("write_file", map[string]any{"file_path": "a.go"}), want{permission.Allow, preset, 0}},
		{"replace", call("replace", map[string]any{"file_path": "a.go"}), want{permission.Allow, preset, 1}},
		{"git status", shell("git status"), want{permission.Allow, preset, 2}},
		{"ls -la", shell("ls -la"), want{permission.Allow, preset, 2}},
		{"grep", shell("grep -rn TODO ."), want{permission.Allow, preset, 2}},
		{"cat a credential file", shell("cat ~/.bashrc"), want{permission.Allow, preset, 2}},
		{"git config --get", shell("git config --get user.email"), want{permission.Allow, preset, 2}},
		{"chained allowlisted commands", shell("ls; pwd"), want{permission.Ask, preset, 5}},
		{"substitution in an allowlisted command", shell("echo $(whoami)"), want{permission.Ask, preset, 5}},
		{"sudo", shell("sudo apt-get install -y jq"), want{permission.Deny, preset, 3}},
		{"rm -rf a build dir", shell("rm -rf build"), want{permission.Deny, preset, 3}},
		{"dd", shell("dd if=/dev/zero of=big bs=1M count=10"), want{permission.Deny, preset, 3}},
		{"mkfs in a string", shell("grep -c mkfs notes.txt | wc -l"), want{permission.Deny, preset, 3}},
		{"append to .bashrc", shell("echo 'export X=1' >> ~/.bashrc"), want{permission.Ask, preset, 4}},
		{"sed -i .profile", shell("sed -i 's/a/b/' $HOME/.profile"), want{permission.Ask, preset, 4}},
		{"cp to .netrc", shell("cp netrc ~/.netrc"), want{permission.Ask, preset, 4}},
		{"make", shell("make test"), want{permission.Ask, preset, 5}},
		{"git push", shell("git push origin main"), want{permission.Ask, preset, 5}},
		{"rm -rf / is the floor's", shell("rm -rf /"), want{permission.Deny, floor, -1}},
		{"fetch github", fetch("https://github.com/golang/go"), want{permission.Allow, preset, 6}},
		{"fetch pypi without scheme", fetch("pypi.org/project/requests"), want{permission.Allow, preset, 6}},
		{"fetch docs.python.org", fetch("https://docs.python.org/3/"), want{permission.Allow, preset, 6}},
		{"fetch metadata", fetch("http://169.254.169.254/latest/meta-data/"), want{permission.Deny, preset, 7}},
		{"fetch localhost", fetch("http://localhost:8080/admin"), want{permission.Deny, preset, 7}},
		{"fetch .internal", fetch("http://db.internal/"), want{permission.Deny, preset, 7}},
		{"fetch ::1", fetch("http://[::1]/"), want{permission.Deny, preset, 7}},
		{"fetch elsewhere", fetch("https://example.com/"), want{permission.Ask, preset, 8}},
		{"web_search", call("web_search", map[string]any{"query": "go"}), want{permission.Ask, preset, 9}},
		{"read_file", call("read_file", map[string]any{"file_path": "a.go"}), want{permission.Allow, deflt, -1}},
		{"save_memory", call("save_memory", map[string]any{"key": "k", "value": "v"}), want{permission.Allow, deflt, -1}},
		{"todo_write", call("todo_write", nil), want{permission.Allow, deflt, -1}},
		{"an MCP tool", call("mcp_github_create_issue", nil), want{permission.Ask, deflt, -1}},
	})
}

func TestPresetPlan(t *testing.T) {
	runPreset(t, permission.ModePlan, []presetRow{
		{"plan_save", call("plan_save", map[string]any{"content": "x"}), want{permission.Allow, preset, 0}},
		{"plan_finalize", call("plan_finalize", map[string]any{"draft_id": "1"}), want{permission.Allow, preset, 1}},
		{"write_file", call("write_file", nil), want{permission.Deny, preset, 2}},
		{"replace", call("replace", nil), want{permission.Deny, preset, 3}},
		{"save_memory", call("save_memory", nil), want{permission.Deny, preset, 4}},
		{"todo_write", call("todo_write", nil), want{permission.Deny, preset, 5}},
		{"git diff", shell("git diff HEAD~1"), want{permission.Allow, preset, 6}},
		{"ls", shell("ls -R src"), want{permission.Allow, preset, 6}},
		{"rm -rf", shell("rm -rf build"), want{permission.Deny, preset, 7}},
		{"sudo", shell("sudo ls"), want{permission.Deny, preset, 7}},
		{"make", shell("make"), want{permission.Deny, preset, 8}},
		{"redirect", shell("ls > files.txt"), want{permission.Deny, preset, 8}},
		{"git commit", shell("git commit -am wip"), want{permission.Deny, preset, 8}},
		{"fetch github", fetch("https://api.github.com/repos/x/y"), want{permission.Allow, preset, 9}},
		{"fetch localhost", fetch("http://127.0.0.1/"), want{permission.Deny, preset, 10}},
		{"fetch elsewhere", fetch("https://example.com/"), want{permission.Ask, preset, 11}},
		{"web_search", call("web_search", nil), want{permission.Ask, preset, 12}},
		{"read_file", call("read_file", nil), want{permission.Allow, deflt, -1}},
		{"glob", call("glob", nil), want{permission.Allow, deflt, -1}},
		{"activate_skill", call("activate_skill", nil), want{permission.Allow, deflt, -1}},
		{"an MCP tool", call("mcp_db_query", nil), want{permission.Ask, deflt, -1}},
	})
}

func TestPresetFullAccess(t *testing.T) {
	runPreset(t, permission.ModeFullAccess, []presetRow{
		{"write_file", call("write_file", nil), want{permission.Allow, preset, 0}},
		{"make", shell("make install"), want{permission.Allow, preset, 0}},
		{"rm -rf a build dir", shell("rm -rf build"), want{permission.Allow, preset, 0}},
		{"fetch localhost", fetch("http://localhost/"), want{permission.Allow, preset, 0}},
		{"an MCP tool", call("mcp_db_drop", nil), want{permission.Allow, preset, 0}},
		{"the floor still holds", shell("mkfs.ext4 /dev/sda1"), want{permission.Deny, floor, -1}},
	})
}

func TestPresetReadOnly(t *testing.T) {
	runPreset(t, permission.ModeReadOnly, []presetRow{
		{"read_file", call("read_file", nil), want{permission.Allow, deflt, -1}},
		{"list_directory", call("list_directory", nil), want{permission.Allow, deflt, -1}},
		{"glob", call("glob", nil), want{permission.Allow, deflt, -1}},
		{"search_file_content", call("search_file_content", nil), want{permission.Allow, deflt, -1}},
		{"web_fetch asks", fetch("https://github.com/"), want{permission.Ask, deflt, -1}},
		{"write_file", call("write_file", nil), want{permission.Deny, preset, -1}},
		{"replace", call("replace", nil), want{permission.Deny, preset, -1}},
		{"shell", shell("git status"), want{permission.Deny, preset, -1}},
		{"save_memory", call("save_memory", nil), want{permission.Deny, preset, -1}},
		{"todo_write", call("todo_write", nil), want{permission.Deny, preset, -1}},
		{"an MCP tool", call("mcp_x_y", nil), want{permission.Deny, preset, -1}},
	})
}
