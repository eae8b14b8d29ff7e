package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

// lastToolResult is the content of the last tool message the fake LLM saw.
func lastToolResult(llm *llmtest.Server) string {
	reqs := llm.Requests()
	msgs := reqs[len(reqs)-1].Messages
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role == "tool" {
			return msgs[i].Content
		}
	}
	return ""
}

func lastSystem(llm *llmtest.Server) string {
	reqs := llm.Requests()
	if m := reqs[len(reqs)-1].Messages; len(m) > 0 && m[0].Role == "system" {
		return m[0].Content
	}
	return ""
}

func shellTurn(p *proc, id, command string) reply {
	p.t.Helper()
	args, _ := json.Marshal(map[string]string{"command": command})
	return p.turn(acmeKey, id, "[[tool run_shell_command "+string(args)+"]]")
}

// TestSandboxStopsWritesAndConnections: under workspace-write-no-network a
// shell command that writes outside the workspace or connects to a loopback
// listener is stopped by the kernel: the command attempted it and failed.
func TestSandboxStopsWritesAndConnections(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/sandbox.json", `{"default_profile": "workspace-write-no-network"}`)
	data := t.TempDir()
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	id := p.create(acmeKey)

	// /tmp is writable under the write profiles: write somewhere else.
	outsideDir, err := os.MkdirTemp("/var/tmp", "agentd-e2e-")
	if err != nil {
		t.Skipf("SKIPPED: no /var/tmp to write outside the workspace and /tmp: %v", err)
	}
	defer os.RemoveAll(outsideDir)
	outside := filepath.Join(outsideDir, "outside.txt")
	shellTurn(p, id, "echo inside > inside.txt && echo wrote-inside; echo pwned > "+outside+"; echo exit=$?")
	res := lastToolResult(llm)
	if !strings.Contains(res, "wrote-inside") || !strings.Contains(res, "Permission denied") || !strings.Contains(res, "exit=") || strings.Contains(res, "exit=0") {
		t.Errorf("shell result %q; want the inside write to work and the outside write attempted and denied", res)
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Errorf("the file outside the workspace exists: %v", err)
	}
	// Another session's workspace and the store are not even readable.
	other := p.create(globexKey)
	shellTurn(p, id, fmt.Sprintf("cat %s/agentd.db > /dev/null; echo db=$?; ls %s/workspaces/globex/%s; echo ls=$?", data, data, other))
	if res := lastToolResult(llm); !strings.Contains(res, "db=1") || !strings.Contains(res, "ls=2") {
		t.Errorf("reading the store and another tenant's workspace: %q; want both refused", res)
	}

	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED network half: node is not installed, and /bin/sh cannot open a TCP connection by itself")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf(`%s -e "require('net').connect(%d,'127.0.0.1').on('connect',()=>{console.log('connected');process.exit(0)}).on('error',e=>{console.log('connect failed: '+e.code);process.exit(3)})"; echo exit=$?`, node, port)
	shellTurn(p, id, script)
	res = lastToolResult(llm)
	if !strings.Contains(res, "connect failed") || !strings.Contains(res, "exit=3") || accepted.Load() != 0 {
		t.Errorf("connect under no-network: %q, listener saw %d connections; want the attempt refused and nothing accepted", res, accepted.Load())
	}
}

// TestMalformedSandboxRefusesTheShell: a broken sandbox.json makes the
// shell tool refuse every command, never run it unconfined.
func TestMalformedSandboxRefusesTheShell(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/sandbox.json", `{"default_profile": "wide-open"}`)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	id := p.create(acmeKey)
	shellTurn(p, id, "touch ran.txt")
	if res := lastToolResult(llm); !strings.Contains(res, "sandbox misconfigured") || !strings.Contains(res, "wide-open") {
		t.Errorf("shell result = %q; want a refusal naming the problem", res)
	}
	if _, err := os.Stat(filepath.Join(p.data, "workspaces", "acme", id, "ran.txt")); !os.IsNotExist(err) {
		t.Errorf("the command ran: %v", err)
	}
	if !p.logged("sandbox misconfigured") {
		t.Errorf("no log line tells the operator")
	}
}

// TestAskRoundTrip: a rule that asks goes to the client as an SSE event;
// the client allows once, rejects, or does not answer in time.
func TestAskRoundTrip(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/permissions/v1.json", `{"rules": [{"tool": "run_shell_command", "args": {"command": "^touch "}, "action": "ask"}]}`)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir, "AGENTD_APPROVAL_TIMEOUT=1s")
	id := p.create(acmeKey)
	ws := filepath.Join(p.data, "workspaces", "acme", id)
	for _, c := range []struct {
		decision, file, wantResult string
		created                    bool
	}{
		{"allow_once", "a.txt", "Exit code: 0", true},
		{"reject_once", "b.txt", "The user declined to execute run_shell_command", false},
		{"", "c.txt", "nobody approved run_shell_command within 1s", false},
	} {
		args, _ := json.Marshal(map[string]string{"content": `[[tool run_shell_command {"command":"touch ` + c.file + `"}]]`})
		req, _ := httpRequest("POST", p.url+"/v1/sessions/"+id+"/messages", string(args))
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		var done map[string]any
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "data: ") {
				continue
			}
			var ev map[string]any
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev)
			switch ev["type"] {
			case "tool_confirmation":
				d := ev["data"].(map[string]any)
				pending := p.do("GET", "/v1/sessions/"+id, acmeKey, "").Body["pending_approvals"].([]any)
				if len(pending) != 1 || pending[0].(map[string]any)["call_id"] != d["call_id"] {
					t.Errorf("pending approvals = %v; want the asked call", pending)
				}
				if want := "POST /v1/sessions/" + id + "/approvals/" + d["call_id"].(string); d["answer"] != want || d["tool"] != "run_shell_command" ||
					d["expires_at"] == nil || len(d["options"].([]any)) != 4 {
					t.Errorf("tool_confirmation data = %v; want the call, four options, expires_at and answer %q", d, want)
				}
				if c.decision != "" {
					r := p.do("POST", "/v1/sessions/"+id+"/approvals/"+d["call_id"].(string), acmeKey, `{"decision":"`+c.decision+`"}`)
					if r.Status != 200 {
						t.Errorf("approve = %d %s", r.Status, r.Raw)
					}
				}
			case "done":
				done = ev
			}
		}
		resp.Body.Close()
		if done == nil {
			t.Fatalf("%s: no done event", c.decision)
		}
		if res := lastToolResult(llm); !strings.Contains(res, c.wantResult) {
			t.Errorf("%q: tool result %q; want %q", c.decision, res, c.wantResult)
		}
		if _, err := os.Stat(filepath.Join(ws, c.file)); (err == nil) != c.created {
			t.Errorf("%q: %s created = %v; want %v", c.decision, c.file, err == nil, c.created)
		}
	}
	if r := p.do("POST", "/v1/sessions/"+id+"/approvals/call_nope", acmeKey, `{"decision":"allow_once"}`); r.Status != 404 {
		t.Errorf("approving a call nobody waits for = %d; want 404", r.Status)
	}
	if !p.logged(`"msg":"permission decision"`) || !p.logged(`"outcome":"ask"`) {
		t.Errorf("decisions are not logged")
	}
	m := p.do("GET", "/metrics", "", "").Raw
	for _, decision := range []string{"allow_once", "reject_once", "timeout"} {
		if !strings.Contains(m, `agentd_tool_confirmations_total{decision="`+decision+`"`) {
			t.Errorf("/metrics has no %s confirmation", decision)
		}
	}
	if !strings.Contains(m, `tool="run_shell_command"} 3`) {
		t.Errorf("/metrics does not count the 3 run_shell_command calls")
	}
}

// TestSkillsAndInstructions: the system prompt starts with the assigned
// instructions and lists the set's skills; activate_skill puts the whole
// SKILL.md in every later prompt, and the activation survives a restart.
func TestSkillsAndInstructions(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, `{"instructions": {"stable": "AGENTAO.md", "variants": [{"name": "v2", "value": "instructions/v2.md", "users": ["bob"]}]}}`)
	writeFile(t, dir, "AGENTAO.md", "# House rules\nAlways be kind.\n")
	writeFile(t, dir, "instructions/v2.md", "# House rules v2\nBe brief.\n")
	writeFile(t, dir, "skills/default/triage/SKILL.md", "---\nname: triage\ndescription: Sort incoming bugs.\n---\n# Triage\nStep one: reproduce.\n")
	data := t.TempDir()
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	alice := p.create(acmeKey)
	p.turn(acmeKey, alice, "hi")
	sys := lastSystem(llm)
	if !strings.HasPrefix(sys, "=== Project Instructions ===\n\n# House rules\nAlways be kind.") || !strings.Contains(sys, "triage") ||
		strings.Contains(sys, "Step one: reproduce") {
		t.Errorf("alice's system prompt:\n%s\nwant AGENTAO.md first and the skill listed, not active", sys)
	}
	bob, _ := p.createAs(acmeKey, "bob")
	p.turn(acmeKey, bob, "hi")
	if sys := lastSystem(llm); !strings.Contains(sys, "Be brief.") || strings.Contains(sys, "Always be kind.") {
		t.Errorf("bob's system prompt:\n%s\nwant the v2 instructions", sys)
	}
	p.turn(acmeKey, alice, `[[tool activate_skill {"skill_name":"triage","task_description":"sort bug 7"}]]`)
	if sys := lastSystem(llm); !strings.Contains(sys, "=== Active Skills ===") || !strings.Contains(sys, "Step one: reproduce.") {
		t.Errorf("after activation, the next call's prompt:\n%s\nwant the whole SKILL.md", sys)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(15 * time.Second)
	p = start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	p.turn(acmeKey, alice, "again")
	if sys := lastSystem(llm); !strings.Contains(sys, "Step one: reproduce.") {
		t.Errorf("after a restart the active skill is gone from the prompt:\n%s", sys)
	}
	if r := p.do("GET", "/v1/sessions/"+alice, acmeKey, ""); !strings.Contains(r.Raw, `"active_skills":["triage"]`) {
		t.Errorf("session = %s; want active_skills [triage]", r.Raw)
	}
}

// TestRulesCanary: a rules variant (deny the shell) applies to its users
// only.
func TestRulesCanary(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, `{"rules": {"stable": "v1", "variants": [{"name": "locked", "value": "locked", "users": ["bob"]}]}}`)
	writeFile(t, dir, ".agentao/permissions/locked.json", `{"rules": [{"tool": "run_shell_command", "action": "deny"}]}`)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	alice := p.create(acmeKey)
	bob, a := p.createAs(acmeKey, "bob")
	if a["rules"] != "locked" {
		t.Fatalf("bob's assignment = %v", a)
	}
	shellTurn(p, alice, "echo hello")
	if res := lastToolResult(llm); !strings.Contains(res, "hello") {
		t.Errorf("alice's shell = %q", res)
	}
	shellTurn(p, bob, "echo hello")
	if res := lastToolResult(llm); !strings.HasPrefix(res, "Tool execution denied: 'run_shell_command'") {
		t.Errorf("bob's shell = %q; want denied by the locked rules", res)
	}
}

// TestConfigReload: an edit to the tree becomes a new version with its
// hashes; an invalid edit keeps the old tree serving.
func TestConfigReload(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, "{}")
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	v0 := p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64)
	writeFile(t, dir, ".agentao/permissions/v1.json", `{"rules": [{"tool": "glob", "action": "deny"}, {"tool": ".*", "action": "allow"}]}`)
	waitFor(t, func() bool { return p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64) == v0+1 })
	v := p.do("GET", "/v1/admin/versions?limit=1", opsKey, "").Body["versions"].([]any)[0].(map[string]any)
	if v["kind"] != "tree" || !strings.Contains(fmt.Sprint(v["diff"]), "hash rules/v1") {
		t.Errorf("version after editing rules v1 = %v", v)
	}
	writeFile(t, dir, ".agentao/permissions/v1.json", `{"rules": [{"tool": "(", "action": "allow"}]}`)
	waitFor(t, func() bool { return strings.Contains(p.logs.String(), "the configuration tree on disk is invalid") })
	id := p.create(acmeKey)
	p.turn(acmeKey, id, `[[tool glob {"pattern":"*"}]]`)
	if res := lastToolResult(llm); !strings.HasPrefix(res, "Tool execution denied: 'glob'") {
		t.Errorf("glob = %q; the last valid rules (deny glob) must keep serving", res)
	}
}

func TestCheckCommand(t *testing.T) {
	out, err := exec.Command(binary, "check", "--config-dir", "../..").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok:") {
		t.Errorf("agentd check on the shipped tree: %v\n%s", err, out)
	}
	bad := configDir(t, `{"rules": {"stable": "v9"}}`) // and a malformed skill: both reported
	writeFile(t, bad, "skills/default/x/SKILL.md", "---\nname: Bad Name\n---\n")
	cmd := exec.Command(binary, "check", "--config-dir", bad)
	out, _ = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "skills/default/x/SKILL.md") || !strings.Contains(string(out), ".agentao/canary.json") {
		t.Errorf("agentd check on a bad tree: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
	if cmd := exec.Command(binary, "check", "--nope"); cmd.Run() == nil || cmd.ProcessState.ExitCode() != 2 {
		t.Errorf("agentd check --nope: exit %d; want 2", cmd.ProcessState.ExitCode())
	}
}

// TestWebFetch: web_fetch reaches a page only for a session whose sandbox
// profile has network (a sandbox canary puts bob on workspace-write), and
// only at an allowed address; the default no-network profile refuses it.
func TestWebFetch(t *testing.T) {
	page := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><head><title>Release notes</title><script>x()</script></head><body><p>Version 2 &amp; more</p></body></html>")
	})
	llm := llmtest.NewServer(t)
	dir := configDir(t, `{"sandbox": {"stable": "workspace-write-no-network", "variants": [{"name": "net", "value": "workspace-write", "users": ["bob"]}]}}`)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir, "AGENTD_WEB_FETCH_ALLOW_CIDRS=127.0.0.0/8")
	fetch := func(id, url string) string {
		args, _ := json.Marshal(map[string]string{"url": url})
		p.turn(acmeKey, id, "[[tool web_fetch "+string(args)+"]]")
		return lastToolResult(llm)
	}
	alice := p.create(acmeKey)
	if res := fetch(alice, page.URL); !strings.Contains(res, "allows no network access") {
		t.Errorf("alice (no network) web_fetch = %q; want refused", res)
	}
	bob, a := p.createAs(acmeKey, "bob")
	if a["sandbox"] != "workspace-write" {
		t.Fatalf("bob's assignment = %v", a)
	}
	res := fetch(bob, page.URL)
	for _, want := range []string{"URL: " + page.URL, "Release notes", "Version 2 & more"} {
		if !strings.Contains(res, want) {
			t.Errorf("bob's web_fetch = %q; want %q in it", res, want)
		}
	}
	if strings.Contains(res, "x()") {
		t.Errorf("the script reached the model: %q", res)
	}
	if res := fetch(bob, "http://10.0.0.1/"); !strings.Contains(res, "not a public address") {
		t.Errorf("web_fetch of a private address = %q; want refused", res)
	}
}

func httptestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// TestContextCompaction: with a small context window, a turn after one
// that read a long output starts by having the model summarise the earlier
// turns; the stored history is the summary and the new turn, valid, and
// survives a restart.
func TestContextCompaction(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	dir := configDir(t, "{}")
	// The summarising call gets the transcript, directives included: answer
	// it with a summary rather than obey them.
	llm.SetResponder(func(req llmtest.Request) llmtest.Reply {
		if len(req.Messages) > 0 && strings.HasPrefix(req.Messages[0].Content, "You compress a conversation") {
			return llmtest.Reply{Text: "SUMMARY: the user printed 12,000 x characters."}
		}
		return llmtest.DefaultResponder(req)
	})
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir, "AGENTD_CONTEXT_TOKENS=3000")
	id := p.create(acmeKey)
	shellTurn(p, id, "head -c 12000 /dev/zero | tr '\\0' x")
	if res := lastToolResult(llm); len(res) < 12000 {
		t.Fatalf("the shell output reached the model with %d characters", len(res))
	}
	r := p.turn(acmeKey, id, "and now?")
	if r.Status != 200 || r.Body["reply"] != "echo: and now?" {
		t.Fatalf("turn after the long output = %d %s", r.Status, r.Raw)
	}
	var summarised bool
	for _, req := range llm.Requests() {
		if len(req.Messages) > 0 && strings.HasPrefix(req.Messages[0].Content, "You compress a conversation") {
			summarised = true
		}
	}
	if !summarised || !p.logged(`"msg":"context compressed"`) {
		t.Fatalf("no summary was asked for")
	}
	msgs := p.messages(acmeKey, id)
	if len(msgs) != 4 || !strings.Contains(msgs[0].Content, "summarised to fit the context window") ||
		!strings.Contains(msgs[0].Content, "SUMMARY: the user printed") {
		t.Errorf("history after compaction = %+v", msgs)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(15 * time.Second)
	p = start(t, llm, data, "AGENTD_CONFIG_DIR="+dir, "AGENTD_CONTEXT_TOKENS=3000")
	if again := p.messages(acmeKey, id); len(again) != 4 || again[0].Content != msgs[0].Content {
		t.Errorf("after a restart the history is %d messages", len(again))
	}
}
