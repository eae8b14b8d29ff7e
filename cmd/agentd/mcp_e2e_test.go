package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/mcptools/mcptest"
)

// TestMCPServers: a stdio MCP server of mcp.json serves its tools to the
// model as mcp_<server>_<tool>, one process per tenant, started at the
// tenant's first turn under the sandbox (the data directory hidden, no
// writes outside its directory) and without the provider key; SIGTERM ends
// every one of them.
func TestMCPServers(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/mcp.json", fmt.Sprintf(`{"mcpServers": {"fake": {"command": %q, "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}}}`, fakemcp))
	// The server's binary is not beneath a system path: the operator names
	// it for the profile MCP servers run under.
	writeFile(t, dir, ".agentao/sandbox.json", fmt.Sprintf(`{"profiles": {"workspace-write-no-network": {"read_only_paths": [%q]}}}`, filepath.Dir(fakemcp)))
	data := t.TempDir()
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir, "GITHUB_TOKEN=ghp-for-the-github-server", "AWS_SECRET_ACCESS_KEY=operator-secret")

	call := func(key, id, tool string, args map[string]string) string {
		b, _ := json.Marshal(args)
		p.turn(key, id, "[[tool "+tool+" "+string(b)+"]]")
		return lastToolResult(llm)
	}
	acme := p.create(acmeKey)
	if res := call(acmeKey, acme, "mcp_fake_echo", map[string]string{"text": "hi"}); res != "echo: hi" {
		t.Fatalf("mcp_fake_echo = %q; want echo: hi", res)
	}
	reqs := llm.Requests()
	var names []string
	for _, tl := range reqs[len(reqs)-1].Tools {
		names = append(names, tl.Name)
	}
	if !strings.Contains(strings.Join(names, " "), "mcp_fake_echo mcp_fake_probe") {
		t.Errorf("tools offered to the model: %v", names)
	}

	// The data directory is hidden from the server, its own directory
	// inside it excepted.
	outside := filepath.Join(data, "workspaces", "written-by-mcp")
	var probe mcptest.Probe
	res := call(acmeKey, acme, "mcp_fake_probe", map[string]string{"write": outside, "read": filepath.Join(data, "agentd.db")})
	if err := json.Unmarshal([]byte(res), &probe); err != nil {
		t.Fatalf("probe = %q: %v", res, err)
	}
	if probe.Dir != filepath.Join(data, "mcp", "acme") {
		t.Errorf("the server runs in %s; want the tenant's directory", probe.Dir)
	}
	if probe.OpenAIKey {
		t.Errorf("OPENAI_API_KEY reached the MCP server")
	}
	// Its environment: the base list, its own directories and what its
	// mcp.json entry names; nothing else of agentd's.
	for _, want := range []string{"GITHUB_TOKEN", "HOME", "PATH", "PWD", "TMPDIR"} {
		if !slices.Contains(probe.Env, want) {
			t.Errorf("the MCP server's environment %v lacks %s", probe.Env, want)
		}
	}
	for _, name := range probe.Env {
		if name == "AWS_SECRET_ACCESS_KEY" || strings.HasPrefix(name, "AGENTD_") || strings.HasPrefix(name, "OPENAI_") {
			t.Errorf("%s reached the MCP server (environment %v)", name, probe.Env)
		}
	}
	if probe.Write == "ok" || probe.Read == "ok" {
		t.Errorf("the server wrote outside its directory (%s) or read agentd.db (%s)", probe.Write, probe.Read)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("%s exists", outside)
	}

	// Another tenant gets its own process.
	globex := p.create(globexKey)
	var other mcptest.Probe
	_ = json.Unmarshal([]byte(call(globexKey, globex, "mcp_fake_probe", map[string]string{})), &other)
	if other.PID == 0 || other.PID == probe.PID || other.Dir != filepath.Join(data, "mcp", "globex") {
		t.Errorf("globex's server = %+v; acme's = %+v; want two processes", other, probe)
	}
	if m := p.do("GET", "/metrics", "", "").Raw; !strings.Contains(m, "agentd_mcp_children 2") {
		t.Errorf("/metrics does not count 2 MCP children")
	}

	// An invalid mcp.json is refused and the servers keep running; a valid
	// change restarts them under the new configuration.
	writeFile(t, dir, ".agentao/mcp.json", `{"mcpServers": {"fake": {"command": 3}}}`)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	if !p.logged("mcp.json changed but is invalid") {
		t.Fatalf("no log line refusing the invalid mcp.json")
	}
	if res := call(acmeKey, acme, "mcp_fake_echo", map[string]string{"text": "still"}); res != "echo: still" {
		t.Errorf("after an invalid mcp.json, mcp_fake_echo = %q", res)
	}
	writeFile(t, dir, ".agentao/mcp.json", fmt.Sprintf(`{"mcpServers": {"renamed": {"command": %q}}}`, fakemcp))
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	if !p.logged("mcp.json changed: MCP servers restart") {
		t.Fatalf("no log line for the changed mcp.json")
	}
	if res := call(acmeKey, acme, "mcp_renamed_echo", map[string]string{"text": "new"}); res != "echo: new" {
		t.Errorf("after the change, mcp_renamed_echo = %q", res)
	}
	waitFor(t, func() bool { return syscall.Kill(probe.PID, 0) != nil })
	var renamed mcptest.Probe
	_ = json.Unmarshal([]byte(call(acmeKey, acme, "mcp_renamed_probe", map[string]string{})), &renamed)
	probe.PID = renamed.PID // the process SIGTERM must end now

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit = %d", code)
	}
	for _, pid := range []int{probe.PID, other.PID} {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("MCP server %d still runs after agentd exited", pid)
		}
	}
}

// TestMCPConfigErrors: a malformed mcp.json stops agentd at start with
// the problem, and agentd check reports it with its line.
func TestMCPConfigErrors(t *testing.T) {
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/mcp.json", `{"mcpServers": {"bad": {"comand": "x"}}}`)
	out, err := exec.Command(binary, "check", "--config-dir", dir).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), ".agentao/mcp.json:1: mcpServers.bad") {
		t.Errorf("agentd check = exit %d\n%s", exitCode(err), out)
	}
	cmd := exec.Command(binary, "serve")
	cmd.Env = []string{"OPENAI_MODEL=m", "OPENAI_BASE_URL=http://127.0.0.1:1/v1", "AGENTD_API_KEYS=" + acmeKey + "=acme", "AGENTD_DATA=" + t.TempDir(), "AGENTD_CONFIG_DIR=" + dir, "AGENTD_ADDR=127.0.0.1:0"}
	out, err = cmd.CombinedOutput()
	if exitCode(err) != 2 || !strings.Contains(string(out), "comand") {
		t.Errorf("agentd serve with a bad mcp.json = exit %d\n%s", exitCode(err), out)
	}
}
