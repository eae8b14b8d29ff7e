package main_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/probe"
)

// probeCanary has a model variant on 10 % of users; probeCanaryMoved
// points the same variant at another model.
const (
	probeCanary = `{
  "models": ["stable-model", "canary-model", "canary-model-2"],
  "model": {"stable": "stable-model", "variants": [{"name": "beta", "value": "canary-model", "percent": 10}]}
}`
	probeCanaryMoved = `{
  "models": ["stable-model", "canary-model", "canary-model-2"],
  "model": {"stable": "stable-model", "variants": [{"name": "beta", "value": "canary-model-2", "percent": 10}]}
}`
)

type probesReply struct {
	Config probe.Config `json:"config"`
	Leader bool         `json:"leader"`
	Runs   []probe.Run  `json:"runs"`
}

func (p *proc) probeRun() probe.Run {
	p.t.Helper()
	r := p.do("POST", "/v1/admin/probes/run", opsKey, "")
	if r.Status != 200 {
		p.t.Fatalf("POST /v1/admin/probes/run = %d %s", r.Status, r.Raw)
	}
	var run probe.Run
	if err := json.Unmarshal([]byte(r.Raw), &run); err != nil {
		p.t.Fatal(err)
	}
	return run
}

func (p *proc) probes(query string) probesReply {
	p.t.Helper()
	r := p.do("GET", "/v1/admin/probes"+query, opsKey, "")
	if r.Status != 200 {
		p.t.Fatalf("GET /v1/admin/probes = %d %s", r.Status, r.Raw)
	}
	var out probesReply
	if err := json.Unmarshal([]byte(r.Raw), &out); err != nil {
		p.t.Fatal(err)
	}
	return out
}

func findResult(t *testing.T, run probe.Run, cohort string) probe.Result {
	t.Helper()
	for _, r := range run.Results {
		if r.Cohort() == cohort {
			return r
		}
	}
	t.Fatalf("run %d has no %s result: %+v", run.ID, cohort, run.Results)
	return probe.Result{}
}

// TestProbeEndToEnd runs the canary probe in the real binary: a manual
// run goes through stable and the live variant, the variant's output is
// diffed against stable's, a canary.json edit that points the variant at
// another model shows as a changed output against the previous run (a
// warn line), probe turns reach neither /metrics nor any tenant, and the
// runs survive a restart.
func TestProbeEndToEnd(t *testing.T) {
	llm := llmtest.NewServer(t)
	llm.SetResponder(func(r llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Text: "The capital of France is Paris.\n-- " + r.Model}
	})
	dir := configDir(t, probeCanary)
	writeFile(t, dir, ".agentao/probes.json", `{"every": "1h", "timeout": "1m", "prompts": [{"name": "capital", "content": "What is the capital of France?"}]}`)
	data := t.TempDir()
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir, "OPENAI_MODEL=stable-model", "AGENTD_MODELS=canary-model,canary-model-2")

	// Admin only.
	for _, key := range []string{acmeKey, ""} {
		if r := p.do("POST", "/v1/admin/probes/run", key, ""); r.Status != 403 && r.Status != 401 {
			t.Errorf("POST /v1/admin/probes/run with key %q = %d; want 401/403", key, r.Status)
		}
		if r := p.do("GET", "/v1/admin/probes", key, ""); r.Status != 403 && r.Status != 401 {
			t.Errorf("GET /v1/admin/probes with key %q = %d; want 401/403", key, r.Status)
		}
	}
	// The schedule: nothing ran yet (the first run is an hour away).
	if got := p.probes(""); len(got.Runs) != 0 || !got.Leader || len(got.Config.Prompts) != 1 || got.Config.Every.D() != time.Hour {
		t.Fatalf("GET /v1/admin/probes at start = %+v", got)
	}
	// A tenant's turn is counted (so the comparison below means something).
	id := p.create(acmeKey)
	if r := p.turn(acmeKey, id, "hello"); r.Status != 200 {
		t.Fatalf("acme's turn = %d %s", r.Status, r.Raw)
	}
	metricsBefore := p.do("GET", "/metrics", "", "").Raw
	if !strings.Contains(turnLines(metricsBefore), `status="ok"} 1`) {
		t.Fatalf("acme's turn is not in /metrics:\n%s", turnLines(metricsBefore))
	}

	r1 := p.probeRun()
	if r1.ID != 1 || len(r1.Results) != 2 || r1.Changed != 1 {
		t.Fatalf("run 1 = %+v; want id 1, 2 results, 1 changed", r1)
	}
	stable, beta := findResult(t, r1, "stable"), findResult(t, r1, "model/beta")
	if stable.Output != "The capital of France is Paris.\n-- stable-model" || stable.Outcome.Status != agent.StatusOK || stable.Model != "stable-model" {
		t.Errorf("stable = %+v", stable)
	}
	if beta.Model != "canary-model" || beta.VsStable == nil || !beta.VsStable.Changed ||
		!strings.Contains(beta.VsStable.Text, "--- capital stable\n+++ capital model/beta\n") ||
		!strings.Contains(beta.VsStable.Text, "-- stable-model\n+-- canary-model\n") {
		t.Errorf("beta = %+v, vs stable %+v", beta, beta.VsStable)
	}

	// Probe turns are not counted: /metrics' turn series are as before,
	// and no tenant sees a probe session.
	metricsAfter := p.do("GET", "/metrics", "", "").Raw
	if turnLines(metricsAfter) != turnLines(metricsBefore) {
		t.Errorf("agentd_turns_total changed with probe turns:\nbefore:\n%s\nafter:\n%s", turnLines(metricsBefore), turnLines(metricsAfter))
	}
	if r := p.do("GET", "/v1/sessions", acmeKey, ""); r.Status != 200 || strings.Count(r.Raw, `"id":"sess_`) != 1 || strings.Contains(r.Raw, "probe") {
		t.Errorf("acme's sessions = %d %s; want its one", r.Status, r.Raw)
	}

	// The variant now points at another model: its output changes against
	// the previous run; stable's does not.
	before := p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64)
	writeCanary(t, dir, probeCanaryMoved)
	waitFor(t, func() bool { return p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64) > before })
	r2 := p.probeRun()
	if s := findResult(t, r2, "stable"); s.VsPrevious == nil || s.VsPrevious.Changed {
		t.Errorf("run 2 stable vs previous = %+v; want unchanged", s.VsPrevious)
	}
	b := findResult(t, r2, "model/beta")
	if b.VsPrevious == nil || !b.VsPrevious.Changed || b.VsPrevious.Against != 1 || !strings.Contains(b.VsPrevious.Text, "--- canary-model\n+-- canary-model-2\n") {
		t.Errorf("run 2 beta vs previous = %+v; want changed against run 1", b.VsPrevious)
	}
	if r2.ConfigVersion <= r1.ConfigVersion {
		t.Errorf("run 2 probed version %d; want after run 1's %d", r2.ConfigVersion, r1.ConfigVersion)
	}
	if !p.logged(`"msg":"probe output changed; see GET /v1/admin/probes"`) || !p.logged(`"cohort":"model/beta"`) {
		t.Errorf("no warn line for the changed output")
	}

	// The runs survive a restart.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("agentd exited %d", code)
	}
	p = start(t, llm, data, "AGENTD_CONFIG_DIR="+dir, "OPENAI_MODEL=stable-model", "AGENTD_MODELS=canary-model,canary-model-2")
	got := p.probes("?runs=10")
	if len(got.Runs) != 2 || got.Runs[0].ID != 2 || got.Runs[1].ID != 1 {
		t.Fatalf("after a restart GET ?runs=10 has %d runs; want 2 then 1", len(got.Runs))
	}
	if r3 := p.probeRun(); r3.ID != 3 || findResult(t, r3, "model/beta").VsPrevious.Against != 2 || r3.Changed != 1 {
		t.Errorf("run 3 after the restart = %+v; want id 3 compared with run 2, only beta vs stable changed", r3)
	}

	// An invalid probes.json edit is refused and shows as a refused part;
	// the last good one keeps serving.
	writeFile(t, dir, ".agentao/probes.json", `{"every": "5s", "prompts": [{"name": "capital", "content": "x"}]}`)
	waitFor(t, func() bool {
		refused, _ := p.do("GET", "/v1/admin/canary", opsKey, "").Body["refused"].(map[string]any)
		why, _ := refused["probes.json"].(string)
		return strings.Contains(why, "every: 5s is too often")
	})
	if got := p.probes(""); got.Config.Every.D() != time.Hour || got.Config.Prompts[0].Content != "What is the capital of France?" {
		t.Errorf("after an invalid edit the served config is %+v; want the last good one", got.Config)
	}
}

// TestProbesJSONInvalidAtStart: agentd refuses to start on an invalid
// probes.json, naming the problem (exit 2, as for any invalid tree).
func TestProbesJSONInvalidAtStart(t *testing.T) {
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/probes.json", `{"prompts": [{"name": "Bad Name", "content": "x"}], "evry": "1h"}`)
	cmd := exec.Command(binary, "serve")
	cmd.Env = []string{
		"AGENTD_ADDR=127.0.0.1:0", "AGENTD_DATA=" + t.TempDir(), "OPENAI_MODEL=m", "OPENAI_BASE_URL=http://127.0.0.1:1/v1",
		"AGENTD_API_KEYS=" + acmeKey + "=acme", "AGENTD_CONFIG_DIR=" + dir,
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("agentd kept running with an invalid probes.json")
	}
	if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(stderr.String(), "probes.json") || !strings.Contains(stderr.String(), "evry") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming probes.json and the unknown field", code, stderr.String())
	}
}

// turnLines is /metrics' agentd_turns_total lines.
func turnLines(metrics string) string {
	var out []string
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "agentd_turns_total") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSIGTERMDuringAProbeRun: a run cut short by a shutdown answers 503,
// is not stored (it would read as a change), leaves no probe session
// behind, and agentd exits cleanly.
func TestSIGTERMDuringAProbeRun(t *testing.T) {
	llm := llmtest.NewServer(t)
	llm.SetResponder(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Text: "Paris", HangAfterChunks: 1} })
	dir := configDir(t, "{}")
	writeFile(t, dir, ".agentao/probes.json", `{"prompts": [{"name": "capital", "content": "What is the capital of France?"}]}`)
	data := t.TempDir()
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	answered := make(chan reply, 1)
	go func() {
		req, _ := httpRequest("POST", p.url+"/v1/admin/probes/run", "")
		req.Header.Set("Authorization", "Bearer "+opsKey)
		answered <- p.send(req)
	}()
	waitFor(t, func() bool { return llm.Calls() > 0 })
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("agentd exited %d during a probe run", code)
	}
	if r := <-answered; r.Status != 503 || r.Body["error"].(map[string]any)["code"] != "shutting_down" {
		t.Errorf("the cut-short run answered %d %s; want 503 shutting_down", r.Status, r.Raw)
	}
	if !p.logged(`"msg":"probe run cut short by shutdown: not stored"`) {
		t.Error("no log line for the run cut short")
	}
	llm.SetResponder(nil)
	p = start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	if got := p.probes(""); len(got.Runs) != 0 {
		t.Errorf("a run cut short was stored: %+v", got.Runs)
	}
	entries, _ := os.ReadDir(filepath.Join(data, "workspaces", "_probe"))
	if len(entries) != 0 {
		t.Errorf("probe workspaces left: %v", entries)
	}
}

// TestFleetOnlyTheLeaderProbes: in a fleet, the leader runs the schedule
// and the followers say they do not.
func TestFleetOnlyTheLeaderProbes(t *testing.T) {
	llm := llmtest.NewServer(t)
	ms := startFleet(t, llm, 3, "{}", nil)
	for _, m := range ms {
		writeFile(t, m.dir, ".agentao/probes.json", `{"prompts": [{"name": "capital", "content": "What is the capital of France?"}]}`)
	}
	lead, others := leader(t, ms)
	waitLong(t, "probes.json served everywhere", func() bool {
		for _, m := range ms {
			if len(m.p.probes("").Config.Prompts) != 1 {
				return false
			}
		}
		return true
	})
	if got := lead.p.probes(""); !got.Leader {
		t.Errorf("the leader %s says it does not run the schedule", lead.name)
	}
	for _, m := range others {
		r := m.p.do("GET", "/v1/admin/probes", opsKey, "")
		if r.Status != 200 || r.Body["leader"] != false || r.Body["next_run"] != nil {
			t.Errorf("follower %s: GET /v1/admin/probes = %d %s; want leader false, no next run", m.name, r.Status, r.Raw)
		}
	}
}
