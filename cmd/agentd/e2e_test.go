package main_test

// End-to-end tests: they build the real agentd binary, start it as a child
// process against the in-process fake LLM, and talk to it over HTTP.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/sandbox"
)

// binary is agentd and fakemcp a small MCP server (cmd/fakemcp), both
// built once by TestMain.
var binary, fakemcp string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == attackArg { // a client the sandboxed commands of attack_e2e_test.go run
		os.Exit(attackClient(os.Args[2:]))
	}
	// Inside the image (scripts/ci-docker.sh) there is no Go to build with:
	// the image's own agentd is named instead.
	if binary = os.Getenv("AGENTD_E2E_BINARY"); binary != "" {
		fakemcp = os.Getenv("AGENTD_E2E_FAKEMCP")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "agentd-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "agentd")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agentd:", err)
		os.Exit(1)
	}
	fakemcp = filepath.Join(dir, "fakemcp")
	build = exec.Command("go", "build", "-o", fakemcp, "../fakemcp")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build fakemcp:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	sandbox.SweepCgroups() // the command cgroups of the agentds the tests killed
	os.Exit(code)
}

const (
	acmeKey   = "acme-key-0123456789"
	globexKey = "globex-key-012345678"
	opsKey    = "ops-admin-key-0123456"
)

// proc is a running agentd.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	data string
	logs *syncBuffer
	done chan struct{}
	err  error // valid after done
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// reapOnCleanup kills the process at the end of the test if it still runs
// (done closes when it has exited) and shows its logs if the test failed.
func reapOnCleanup(t *testing.T, cmd *exec.Cmd, done <-chan struct{}, logs *syncBuffer, name string) {
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, logs.String())
		}
	})
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs agentd serve on dataDir against llm, with extra environment.
func start(t *testing.T, llm *llmtest.Server, dataDir string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"AGENTD_ADDR=127.0.0.1:0",
		"AGENTD_DATA=" + dataDir,
		"AGENTD_CONFIG_DIR=" + configDir(t, "{}"),
		"OPENAI_BASE_URL=" + llm.URL(),
		"OPENAI_API_KEY=sk-test-not-a-real-key",
		"OPENAI_MODEL=stable-model",
		"AGENTD_MODELS=canary-model",
		"AGENTD_API_KEYS=" + acmeKey + "=acme," + globexKey + "=globex," + opsKey + "=ops:admin",
		"AGENTD_CONFIG_POLL=100ms",
		"AGENTD_LLM_MAX_ATTEMPTS=1",
	}, env...)
	pr, pw := io.Pipe()
	p := &proc{t: t, cmd: cmd, data: dataDir, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = io.MultiWriter(p.logs, pw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	reapOnCleanup(t, cmd, p.done, p.logs, "agentd")
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var line struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("agentd exited before listening: %v\n%s", p.err, p.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("agentd did not listen within 30s:\n%s", p.logs.String())
	}
	return p
}

// wait waits for the process to exit and returns its exit code (-1 when
// killed by a signal).
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("agentd did not exit within %v:\n%s", d, p.logs.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

type reply struct {
	Status int
	Body   map[string]any
	Raw    string
}

func (p *proc) do(method, path, key, body string) reply {
	p.t.Helper()
	req, err := httpRequest(method, p.url+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("X-Agentd-User", "alice")
	return p.send(req)
}

func httpRequest(method, url, body string) (*http.Request, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err == nil && body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, err
}

func (p *proc) send(req *http.Request) reply {
	p.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Raw: string(data)}
	_ = json.Unmarshal(data, &r.Body)
	return r
}

func (p *proc) create(key string) string {
	p.t.Helper()
	r := p.do("POST", "/v1/sessions", key, "")
	if r.Status != 201 {
		p.t.Fatalf("create session = %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string)
}

func (p *proc) turn(key, id, content string) reply {
	p.t.Helper()
	body, _ := json.Marshal(map[string]string{"content": content})
	return p.do("POST", "/v1/sessions/"+id+"/messages", key, string(body))
}

// messages fetches a session's history as agent messages.
func (p *proc) messages(key, id string) []agent.Message {
	p.t.Helper()
	r := p.do("GET", "/v1/sessions/"+id, key, "")
	if r.Status != 200 {
		p.t.Fatalf("get session = %d %s", r.Status, r.Raw)
	}
	var s struct{ Messages []agent.Message }
	if err := json.Unmarshal([]byte(r.Raw), &s); err != nil {
		p.t.Fatal(err)
	}
	return s.Messages
}

func outcome(r reply) map[string]any {
	o, _ := r.Body["outcome"].(map[string]any)
	return o
}

func TestTurnWithToolCall(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir())
	id := p.create(acmeKey)
	r := p.turn(acmeKey, id, `write it [[tool write_file {"file_path":"notes/a.txt","content":"hello from the model"}]]`)
	if r.Status != 200 || !strings.HasPrefix(r.Body["reply"].(string), "tool said: ") || outcome(r)["status"] != "ok" {
		t.Fatalf("turn = %d %s", r.Status, r.Raw)
	}
	r = p.turn(acmeKey, id, `[[tool read_file {"file_path":"notes/a.txt"}]]`)
	if !strings.Contains(r.Body["reply"].(string), "hello from the model") {
		t.Errorf("read back = %s; want the written content", r.Raw)
	}
	msgs := p.messages(acmeKey, id)
	if err := agent.Validate(msgs); err != nil || len(msgs) != 8 {
		t.Errorf("history of %d messages, valid: %v; want 8 valid messages", len(msgs), err)
	}
	reqs := llm.Requests()
	last := reqs[len(reqs)-1]
	if last.Model != "stable-model" || last.Messages[0].Role != "system" || len(last.Tools) < 7 {
		t.Errorf("last LLM request: model %q, first role %q, %d tools; want the stable model, a system prompt and the built-in tools",
			last.Model, last.Messages[0].Role, len(last.Tools))
	}
	if last.Authorization != "Bearer sk-test-not-a-real-key" {
		t.Errorf("Authorization sent to the LLM = %q", last.Authorization)
	}
	if strings.Contains(p.logs.String(), "sk-test-not-a-real-key") {
		t.Errorf("the provider key appears in the logs")
	}
	var turnLine map[string]any
	for _, line := range strings.Split(p.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"turn"`) {
			_ = json.Unmarshal([]byte(line), &turnLine)
		}
	}
	for _, k := range []string{"session_id", "tenant", "user", "model", "status"} {
		if turnLine[k] == nil || turnLine[k] == "" {
			t.Errorf("turn log line %v lacks %s", turnLine, k)
		}
	}
}

func TestPathEscapeRefused(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	outside := filepath.Join(t.TempDir(), "outside.txt")
	p := start(t, llm, data)
	id := p.create(acmeKey)
	for _, args := range []string{
		`{"file_path":"../../../agentd.db"}`,
		fmt.Sprintf(`{"file_path":%q,"content":"pwned"}`, outside),
	} {
		tool := "read_file"
		if strings.Contains(args, "content") {
			tool = "write_file"
		}
		r := p.turn(acmeKey, id, "[["+"tool "+tool+" "+args+"]]")
		if !strings.Contains(r.Body["reply"].(string), "outside the workspace") {
			t.Errorf("%s %s: reply %q; want a refusal", tool, args, r.Body["reply"])
		}
	}
	if _, err := os.Stat(outside); !os.IsNotExist(err) {
		t.Errorf("a file outside the workspace was written: %v", err)
	}
}

func TestCancelledTurn(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir())
	id := p.create(acmeKey)
	got := make(chan reply)
	go func() { got <- p.turn(acmeKey, id, "[[hang]]") }()
	waitFor(t, func() bool { return llm.Calls() == 1 })
	if r := p.turn(acmeKey, id, "second"); r.Status != 409 || r.Body["error"].(map[string]any)["code"] != "session_busy" {
		t.Errorf("concurrent turn = %d %s; want 409 session_busy", r.Status, r.Raw)
	}
	if r := p.do("POST", "/v1/sessions/"+id+"/cancel", acmeKey, ""); r.Body["cancelled"] != true {
		t.Errorf("cancel = %s", r.Raw)
	}
	r := <-got
	if r.Body["reply"] != "[Cancelled: user-cancel]" || outcome(r)["status"] != "cancelled" {
		t.Errorf("cancelled turn = %s", r.Raw)
	}
	if r := p.turn(acmeKey, id, "are you there?"); r.Body["reply"] != "echo: are you there?" {
		t.Errorf("turn after cancel = %s; want the session usable", r.Raw)
	}
	if err := agent.Validate(p.messages(acmeKey, id)); err != nil {
		t.Errorf("history after cancel invalid: %v", err)
	}
}

// TestModelEndpointFailures: a model endpoint that answers 500 or garbage
// gives a turn with incomplete_reason llm_error and a clear error, and the
// session stays valid and usable.
func TestModelEndpointFailures(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir(), "AGENTD_LLM_MAX_ATTEMPTS=2")
	id := p.create(acmeKey)
	for _, c := range []struct {
		reply    llmtest.Reply
		attempts int // a 500 is retried (AGENTD_LLM_MAX_ATTEMPTS=2), garbage is not
		want     string
	}{
		{llmtest.Reply{Status: 500, ErrorMessage: "upstream exploded"}, 2, "HTTP 500 after 2 attempt(s)"},
		{llmtest.Reply{RawBody: "<html>not json</html>"}, 1, "not an event stream"},
	} {
		for range c.attempts {
			llm.Enqueue(c.reply)
		}
		r := p.turn(acmeKey, id, "hello?")
		o := outcome(r)
		if r.Status != 200 || o["incomplete_reason"] != "llm_error" || !strings.Contains(o["error"].(string), c.want) {
			t.Errorf("turn against %+v = %d %s; want llm_error mentioning %q", c.reply, r.Status, r.Raw, c.want)
		}
	}
	if r := p.turn(acmeKey, id, "better now?"); r.Body["reply"] != "echo: better now?" {
		t.Errorf("turn after failures = %s", r.Raw)
	}
	if err := agent.Validate(p.messages(acmeKey, id)); err != nil {
		t.Errorf("history invalid: %v", err)
	}
}

func TestCappedTurn(t *testing.T) {
	llm := llmtest.NewServer(t)
	n := 0
	var mu sync.Mutex
	llm.SetResponder(func(llmtest.Request) llmtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		n++
		return llmtest.Reply{ToolCalls: []llmtest.ToolCall{{Name: "list_directory", Arguments: fmt.Sprintf(`{"directory_path":".","recursive":%v}`, n%2 == 0)}}, Text: fmt.Sprintf("step %d", n)}
	})
	p := start(t, llm, t.TempDir(), "AGENTD_MAX_ITERATIONS=3")
	id := p.create(acmeKey)
	r := p.turn(acmeKey, id, "loop forever")
	if o := outcome(r); o["status"] != "ok" || o["incomplete_reason"] != "max_iterations" {
		t.Errorf("outcome = %v; want ok with incomplete_reason max_iterations", o)
	}
	if llm.Calls() != 3 {
		t.Errorf("LLM calls = %d; want the cap of 3", llm.Calls())
	}
}

func TestTenantIsolation(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir())
	id := p.create(acmeKey)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/sessions/" + id, ""},
		{"POST", "/v1/sessions/" + id + "/messages", `{"content":"hi"}`},
		{"DELETE", "/v1/sessions/" + id, ""},
	} {
		if r := p.do(c.method, c.path, globexKey, c.body); r.Status != 404 {
			t.Errorf("globex %s %s = %d; want 404", c.method, c.path, r.Status)
		}
	}
	if r := p.do("GET", "/v1/sessions", "", ""); r.Status != 401 {
		t.Errorf("no key = %d; want 401", r.Status)
	}
	if r := p.do("GET", "/v1/sessions", globexKey, ""); len(r.Body["sessions"].([]any)) != 0 {
		t.Errorf("globex sees %s", r.Raw)
	}
	if r := p.do("GET", "/v1/sessions/"+id, acmeKey, ""); r.Status != 200 {
		t.Errorf("acme's own session = %d", r.Status)
	}
}

// TestSIGTERMMidStream stops agentd in the middle of a streaming turn: the
// client gets a done event with a cancelled outcome, agentd exits 0, and a
// restarted agentd on the same data dir has the session with a valid
// history, usable for a new turn.
func TestSIGTERMMidStream(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	p := start(t, llm, data)
	id := p.create(acmeKey)
	if r := p.turn(acmeKey, id, "first"); r.Body["reply"] != "echo: first" {
		t.Fatalf("first turn = %s", r.Raw)
	}
	req, _ := http.NewRequest("POST", p.url+"/v1/sessions/"+id+"/messages",
		strings.NewReader(`{"content":"look [[tool list_directory {}]]"}`))
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	req.Header.Set("Accept", "text/event-stream")
	llm.SetResponder(func(r llmtest.Request) llmtest.Reply {
		if last := r.Messages[len(r.Messages)-1]; last.Role == "tool" {
			return llmtest.Reply{Text: "almost done", HangAfterChunks: 2}
		}
		return llmtest.DefaultResponder(r)
	})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				events <- strings.TrimPrefix(line, "data: ")
			}
		}
		close(events)
	}()
	var last string
	for ev := range events {
		last = ev
		if strings.Contains(ev, `"type":"llm_text"`) && strings.Contains(ev, "almo") {
			break // the second LLM call is streaming
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		last = ev
	}
	var done struct {
		Type    string
		Reply   string
		Outcome agent.Outcome
	}
	if err := json.Unmarshal([]byte(last), &done); err != nil || done.Type != "done" {
		t.Fatalf("last event = %s; want done", last)
	}
	if done.Outcome.Status != agent.StatusCancelled || done.Outcome.CancelReason != agent.ReasonShutdown {
		t.Errorf("outcome = %+v; want cancelled by shutdown", done.Outcome)
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code = %d; want 0\n%s", code, p.logs.String())
	}
	if !strings.Contains(p.logs.String(), "every session saved") {
		t.Errorf("no clean-shutdown log line")
	}

	llm.SetResponder(nil)
	p2 := start(t, llm, data)
	msgs := p2.messages(acmeKey, id)
	if err := agent.Validate(msgs); err != nil {
		t.Fatalf("history after restart invalid: %v\n%+v", err, msgs)
	}
	if msgs[len(msgs)-1].Content != "[Cancelled: shutdown]" {
		t.Errorf("last message = %q; want the shutdown sentinel", msgs[len(msgs)-1].Content)
	}
	if r := p2.turn(acmeKey, id, "back?"); r.Body["reply"] != "echo: back?" {
		t.Errorf("turn after restart = %s", r.Raw)
	}
}

// TestKill9AfterAcknowledgedTurn: a turn the API answered is on disk even
// if the process is killed at once.
func TestKill9AfterAcknowledgedTurn(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	p := start(t, llm, data)
	id := p.create(acmeKey)
	if r := p.turn(acmeKey, id, "remember this"); r.Status != 200 {
		t.Fatalf("turn = %d %s", r.Status, r.Raw)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(10 * time.Second)
	p2 := start(t, llm, data)
	msgs := p2.messages(acmeKey, id)
	if len(msgs) != 2 || msgs[1].Content != "echo: remember this" {
		t.Errorf("after kill -9: %+v; want the acknowledged turn", msgs)
	}
}

// TestKill9InFirstLLMCall: a turn killed while its first model call streams
// is on record after the restart: the user's message kept, the turn an
// error with reason interrupted, the history valid and usable.
func TestKill9InFirstLLMCall(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	p := start(t, llm, data)
	id := p.create(acmeKey)
	llm.SetResponder(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "never finished", HangAfterChunks: 1} })
	go func() {
		req, _ := httpRequest("POST", p.url+"/v1/sessions/"+id+"/messages", `{"content":"keep my words"}`)
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	waitFor(t, func() bool { return llm.Calls() >= 1 })
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(10 * time.Second)

	llm.SetResponder(nil)
	p2 := start(t, llm, data)
	r := p2.do("GET", "/v1/sessions/"+id, acmeKey, "")
	var s struct {
		Messages []agent.Message
		Turns    []struct{ Outcome agent.Outcome }
	}
	if err := json.Unmarshal([]byte(r.Raw), &s); err != nil || r.Status != 200 {
		t.Fatalf("get session = %d %s", r.Status, r.Raw)
	}
	if len(s.Messages) != 1 || !strings.HasSuffix(s.Messages[0].Content, "keep my words") || agent.Validate(s.Messages) != nil {
		t.Errorf("messages after kill -9 = %+v; want the user's message alone", s.Messages)
	}
	if len(s.Turns) != 1 || s.Turns[0].Outcome.Status != agent.StatusError || s.Turns[0].Outcome.IncompleteReason != agent.IncompleteInterrupted {
		t.Errorf("turns after kill -9 = %+v; want one error turn, reason interrupted", s.Turns)
	}
	if r := p2.turn(acmeKey, id, "again"); r.Body["reply"] != "echo: again" {
		t.Errorf("turn after restart = %s", r.Raw)
	}
}

// TestDeleteRacingTurnsIsFinal: DELETE and turns from parallel clients. A
// delete that answered 204 is final: the session never comes back (not
// after a racing turn, not after a restart), and its workspace is gone.
func TestDeleteRacingTurnsIsFinal(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	p := start(t, llm, data)
	const rounds = 60
	var deleted []string
	for range rounds {
		id := p.create(acmeKey)
		p.turn(acmeKey, id, "history to resurrect")
		var wg sync.WaitGroup
		begin := make(chan struct{})
		var del reply
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-begin
				if i == 0 {
					req, _ := httpRequest("DELETE", p.url+"/v1/sessions/"+id, "")
					req.Header.Set("Authorization", "Bearer "+acmeKey)
					del = p.send(req)
					return
				}
				req, _ := httpRequest("POST", p.url+"/v1/sessions/"+id+"/messages", `{"content":"racing"}`)
				req.Header.Set("Authorization", "Bearer "+acmeKey)
				p.send(req)
			}()
		}
		close(begin)
		wg.Wait()
		if del.Status != http.StatusNoContent {
			continue // lost to a turn (409): nothing to check
		}
		deleted = append(deleted, id)
		if r := p.do("GET", "/v1/sessions/"+id, acmeKey, ""); r.Status != 404 {
			t.Fatalf("GET after DELETE 204 = %d %s; want 404", r.Status, r.Raw)
		}
	}
	if len(deleted) == 0 {
		t.Fatal("no delete won a race; the test checked nothing")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(15 * time.Second)
	p2 := start(t, llm, data)
	for _, id := range deleted {
		if r := p2.do("GET", "/v1/sessions/"+id, acmeKey, ""); r.Status != 404 {
			t.Errorf("%s after a restart = %d; want 404", id, r.Status)
		}
		if _, err := os.Stat(filepath.Join(data, "workspaces", "acme", id)); !os.IsNotExist(err) {
			t.Errorf("%s: workspace still there: %v", id, err)
		}
	}
	t.Logf("%d of %d deletes won their race", len(deleted), rounds)
}

// TestSecondSignalExitsAtOnce: while a shutdown waits on a shell command
// that ignores SIGTERM, a second signal ends the process immediately.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir(), "AGENTD_SHUTDOWN_TIMEOUT=60s")
	id := p.create(acmeKey)
	body, _ := json.Marshal(map[string]string{"content": `[[tool run_shell_command {"command":"trap '' TERM; echo $$ > started; while :; do sleep 1; done"}]]`})
	go func() { // the process dies under this request: ignore how it ends
		req, _ := http.NewRequest("POST", p.url+"/v1/sessions/"+id+"/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+acmeKey)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	started := filepath.Join(p.data, "workspaces", "acme", id, "started")
	waitFor(t, func() bool { b, err := os.ReadFile(started); return err == nil && len(b) > 0 })
	t.Cleanup(func() { // agentd dies before it can kill the command: do it here
		if b, err := os.ReadFile(started); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 0 {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, func() bool { return strings.Contains(p.logs.String(), "draining") })
	// The shutdown now waits for the command, which ignores SIGTERM (it is
	// killed after the tools' grace period): meanwhile the server drains.
	if r := p.do("GET", "/readyz", "", ""); r.Status != 503 {
		t.Errorf("readyz while draining = %d %s; want 503", r.Status, r.Raw)
	}
	if r := p.do("POST", "/v1/sessions", acmeKey, ""); r.Status != 503 || r.Body["error"].(map[string]any)["code"] != "shutting_down" {
		t.Errorf("new session while draining = %d %s; want 503 shutting_down", r.Status, r.Raw)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(10 * time.Second)
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("exit status %v; want killed by the second SIGTERM", p.cmd.ProcessState)
	}
}

func TestConfigFailsFast(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		code     int
		wantText string
	}{
		{"bad duration", []string{"AGENTD_SHUTDOWN_TIMEOUT=soon"}, 2, "AGENTD_SHUTDOWN_TIMEOUT"},
		{"bad attempts", []string{"AGENTD_LLM_MAX_ATTEMPTS=0"}, 2, "AGENTD_LLM_MAX_ATTEMPTS"},
		{"bad key spec", []string{"AGENTD_API_KEYS=short=acme"}, 2, "shorter than 16"},
		{"unwritable data dir", []string{"AGENTD_DATA=/proc/agentd-cannot-write-here"}, 1, "data dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, "serve")
			cmd.Env = append([]string{
				"AGENTD_ADDR=127.0.0.1:0", "AGENTD_DATA=" + t.TempDir(), "OPENAI_MODEL=m", "OPENAI_BASE_URL=http://127.0.0.1:1/v1",
				"AGENTD_API_KEYS=" + acmeKey + "=acme", "AGENTD_CONFIG_DIR=" + t.TempDir(),
			}, tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				t.Fatalf("agentd kept running with a bad config")
			}
			if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(stderr.String(), tc.wantText) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr.String(), tc.code, tc.wantText)
			}
		})
	}
}

func TestHelpListsEveryEnvironmentVariable(t *testing.T) {
	out, err := exec.Command(binary, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("serve --help: %v\n%s", err, out)
	}
	for _, env := range []string{"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "AGENTD_ADDR", "AGENTD_DATA", "AGENTD_CONFIG_DIR",
		"AGENTD_API_KEYS", "AGENTD_API_KEYS_FILE", "AGENTD_LLM_MAX_ATTEMPTS", "AGENTD_SHUTDOWN_TIMEOUT",
		"AGENTD_READ_HEADER_TIMEOUT", "AGENTD_READ_TIMEOUT", "AGENTD_WRITE_TIMEOUT", "AGENTD_IDLE_TIMEOUT", "AGENTD_WS_PING_INTERVAL", "AGENTD_WS_PONG_TIMEOUT"} {
		if !bytes.Contains(out, []byte(env)) {
			t.Errorf("serve --help does not mention %s", env)
		}
	}
	if !bytes.Contains(out, []byte("default 8s")) {
		t.Errorf("serve --help does not show defaults:\n%s", out)
	}
}

// logged reports whether agentd has written want to its log. The child's
// stderr reaches the buffer through a pipe copied by another goroutine, so a
// line written before an HTTP reply may arrive after it: wait a while before
// answering no.
func (p *proc) logged(want string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.logs.String(), want) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
