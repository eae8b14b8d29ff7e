package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm/llmtest"
)

// configDir makes a config tree whose .agentao/canary.json is doc and
// whose rules v1 allow everything but the hardline floor (the tests of the
// ask flow bring their own).
func configDir(t *testing.T, doc string) string {
	t.Helper()
	dir := t.TempDir()
	writeCanary(t, dir, doc)
	writeFile(t, dir, ".agentao/permissions/v1.json", `{"mode": "full-access", "rules": []}`)
	return dir
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeCanary(t *testing.T, dir, doc string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, ".agentao"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".agentao", "canary.json"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// createAs creates a session for an end user.
func (p *proc) createAs(key, user string) (id string, assignment map[string]any) {
	p.t.Helper()
	r := p.doAs("POST", "/v1/sessions", key, "", user)
	if r.Status != 201 {
		p.t.Fatalf("create session = %d %s", r.Status, r.Raw)
	}
	return r.Body["id"].(string), r.Body["assignment"].(map[string]any)
}

func (p *proc) doAs(method, path, key, body, user string) reply {
	p.t.Helper()
	req, _ := httpRequest(method, p.url+path, body)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Agentd-User", user)
	return p.send(req)
}

// cli runs an agentd client command against p with the admin key.
func (p *proc) cli(args ...string) (string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{"AGENTD_SERVER=" + p.url, "AGENTD_ADMIN_KEY=" + opsKey}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lastModel is the model of the fake LLM's last request.
func lastModel(llm *llmtest.Server) string {
	reqs := llm.Requests()
	return reqs[len(reqs)-1].Model
}

const betaConfig = `{
  "models": ["stable-model", "canary-model"],
  "model": {"stable": "stable-model", "variants": [
    {"name": "beta", "value": "canary-model", "users": ["alice"], "tenants": ["acme"]}]}
}`

func TestCanaryRoutesUsersAndExplains(t *testing.T) {
	llm := llmtest.NewServer(t)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+configDir(t, betaConfig))
	aliceID, a := p.createAs(acmeKey, "alice")
	if a["model"] != "canary-model" || a["variants"].(map[string]any)["model"] != "beta" {
		t.Errorf("alice's assignment = %v; want the beta variant's model", a)
	}
	bobID, b := p.createAs(acmeKey, "bob")
	if b["model"] != "stable-model" || b["variants"] != nil {
		t.Errorf("bob's assignment = %v; want stable", b)
	}
	p.turn(acmeKey, aliceID, "hi")
	if m := lastModel(llm); m != "canary-model" {
		t.Errorf("alice's turn went to %q; want canary-model", m)
	}
	p.turn(acmeKey, bobID, "hi")
	if m := lastModel(llm); m != "stable-model" {
		t.Errorf("bob's turn went to %q; want stable-model", m)
	}
	for _, want := range []string{`"cohort":"model=beta skills=stable rules=stable sandbox=stable instructions=stable"`,
		`"cohort":"model=stable skills=stable rules=stable sandbox=stable instructions=stable"`} {
		if !p.logged(want) {
			t.Errorf("no turn log line with %s", want)
		}
	}
	// /metrics (no key) compares the variant with its stable control.
	m := p.do("GET", "/metrics", "", "")
	for _, want := range []string{
		`agentd_turns_total{incomplete_reason="",instructions_variant="stable",model="canary-model",model_variant="beta",rules_variant="stable",sandbox_variant="stable",skills_variant="stable",status="ok"} 1`,
		`agentd_turns_total{incomplete_reason="",instructions_variant="stable",model="stable-model",model_variant="stable",rules_variant="stable",sandbox_variant="stable",skills_variant="stable",status="ok"} 1`,
		`agentd_canary_variant_halted{dimension="model",variant="beta"} 0`,
		`agentd_config_version 1`,
		`agentd_http_requests_total{code="201",method="POST",route="/v1/sessions"} 2`,
	} {
		if m.Status != 200 || !strings.Contains(m.Raw, want) {
			t.Errorf("GET /metrics = %d; no %s", m.Status, want)
		}
	}
	// Explain, over HTTP and through the CLI.
	r := p.do("GET", "/v1/admin/canary/assignment?tenant=acme&user=alice", opsKey, "")
	if r.Status != 200 || !strings.Contains(r.Raw, "allowlist: beta lists user alice") {
		t.Errorf("explain = %d %s", r.Status, r.Raw)
	}
	if r := p.do("GET", "/v1/admin/canary/assignment?tenant=acme&user=alice", acmeKey, ""); r.Status != 403 {
		t.Errorf("explain with a user key = %d; want 403", r.Status)
	}
	out, err := p.cli("canary", "explain", "--tenant", "globex", "--user", "alice")
	if err != nil || !strings.Contains(out, "tenant filter: globex is not in beta's tenants [acme]") || !strings.Contains(out, "stable-model") {
		t.Errorf("agentd canary explain: %v\n%s", err, out)
	}
	out, err = p.cli("canary", "status")
	if err != nil || !strings.Contains(out, "model/beta") || !strings.Contains(out, "live") {
		t.Errorf("agentd canary status: %v\n%s", err, out)
	}
}

func TestCanaryPutIsValidatedAndVersioned(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, betaConfig)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	cur := p.do("GET", "/v1/admin/canary", opsKey, "")
	version := cur.Body["version"].(float64)
	put := func(doc, ifMatch, why string) reply {
		req, _ := httpRequest("PUT", p.url+"/v1/admin/canary", doc)
		req.Header.Set("Authorization", "Bearer "+opsKey)
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		if why != "" {
			req.Header.Set("X-Agentd-Reason", why)
		}
		return p.send(req)
	}
	match := fmt.Sprintf(`"%v"`, version)
	for _, c := range []struct {
		name, doc, ifMatch, why string
		status                  int
		code                    string
	}{
		{"unknown model", strings.Replace(betaConfig, `"value": "canary-model"`, `"value": "gpt-9"`, 1), match, "try", 400, "invalid_config"},
		{"unknown dimension", `{"temperature": {"stable": "1"}}`, match, "try", 400, "invalid_config"},
		{"percent over 100", strings.Replace(betaConfig, `"users": ["alice"]`, `"percent": 101`, 1), match, "try", 400, "invalid_config"},
		{"stale If-Match", betaConfig, `"999"`, "try", 412, "precondition_failed"},
		{"no If-Match", betaConfig, "", "try", 428, "precondition_required"},
		{"no reason", betaConfig, match, "", 400, "reason_required"},
	} {
		r := put(c.doc, c.ifMatch, c.why)
		if r.Status != c.status || r.Body["error"].(map[string]any)["code"] != c.code {
			t.Errorf("%s: PUT = %d %s; want %d %s", c.name, r.Status, r.Raw, c.status, c.code)
		}
	}
	after := p.do("GET", "/v1/admin/canary", opsKey, "")
	if after.Body["version"] != version || after.Body["differs_from_file"] != false {
		t.Fatalf("rejected PUTs changed the configuration: %s", after.Raw)
	}
	if _, a := p.createAs(acmeKey, "alice"); a["model"] != "canary-model" {
		t.Errorf("after rejected PUTs alice gets %v", a)
	}
	// A good PUT becomes a version, served at once.
	good := strings.Replace(betaConfig, `"users": ["alice"]`, `"users": ["bob"]`, 1)
	r := put(good, match, "move the beta to bob")
	if r.Status != 200 || r.Body["version"].(float64) != version+1 || r.Body["actor"] != "ops" {
		t.Fatalf("good PUT = %d %s", r.Status, r.Raw)
	}
	if _, a := p.createAs(acmeKey, "bob"); a["model"] != "canary-model" {
		t.Errorf("after the PUT bob gets %v", a)
	}
	st := p.do("GET", "/v1/admin/canary", opsKey, "")
	if st.Body["differs_from_file"] != true {
		t.Errorf("status after an API change = %s; want differs_from_file", st.Raw)
	}
	// A file change becomes a new version as usual (the watcher polls).
	writeCanary(t, dir, strings.Replace(betaConfig, `"users": ["alice"]`, `"users": ["carol"]`, 1))
	waitFor(t, func() bool { return p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64) == version+2 })
	// An invalid file is reported and changes nothing.
	writeCanary(t, dir, `{"model": {"stable": "nope"}}`)
	waitFor(t, func() bool { return p.do("GET", "/v1/admin/canary", opsKey, "").Body["file_error"] != nil })
	if _, a := p.createAs(acmeKey, "carol"); a["model"] != "canary-model" {
		t.Errorf("after an invalid file carol gets %v; the last good configuration must keep serving", a)
	}
	vs := p.do("GET", "/v1/admin/versions", opsKey, "")
	list := vs.Body["versions"].([]any)
	if len(list) != int(version)+2 || list[0].(map[string]any)["kind"] != "file" || list[1].(map[string]any)["reason"] != "move the beta to bob" {
		t.Errorf("versions = %s", vs.Raw)
	}
	if r := p.do("GET", "/v1/admin/versions/1", opsKey, ""); r.Status != 200 || r.Body["version"] != 1.0 {
		t.Errorf("version 1 = %d %s", r.Status, r.Raw)
	}
	if r := p.do("GET", "/v1/admin/versions/99", opsKey, ""); r.Status != 404 {
		t.Errorf("version 99 = %d; want 404", r.Status)
	}
}

// TestManualRollback halts a variant with the CLI: new sessions of its
// users get stable, and a session pinned to it moves to stable at its next
// turn with its history kept. The halt survives a restart; returning to an
// earlier version brings the variant back.
func TestManualRollback(t *testing.T) {
	llm := llmtest.NewServer(t)
	data := t.TempDir()
	dir := configDir(t, betaConfig)
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	id, _ := p.createAs(acmeKey, "alice")
	p.turn(acmeKey, id, "first")
	before := p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64)
	if out, err := p.cli("rollback", "--dimension", "model", "--variant", "beta"); err == nil || !strings.Contains(out, "reason") {
		t.Errorf("rollback without a reason: %v\n%s", err, out)
	}
	began := time.Now()
	out, err := p.cli("rollback", "--dimension", "model", "--variant", "beta", "--reason", "beta answers regressed")
	if err != nil || !strings.Contains(out, "is now served") {
		t.Fatalf("agentd rollback: %v\n%s", err, out)
	}
	r := p.turn(acmeKey, id, "second")
	t.Logf("manual rollback to the first turn on stable: %v", time.Since(began))
	if m := lastModel(llm); m != "stable-model" || r.Body["model"] != "stable-model" {
		t.Errorf("the pinned session's next turn went to %q; want stable-model", m)
	}
	if msgs := p.messages(acmeKey, id); len(msgs) != 4 {
		t.Errorf("history after the move has %d messages; want 4 (kept)", len(msgs))
	}
	if _, a := p.createAs(acmeKey, "alice"); a["model"] != "stable-model" {
		t.Errorf("a new session of alice after the halt = %v; want stable", a)
	}
	// The halt survives a restart.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(15 * time.Second)
	p = start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	if _, a := p.createAs(acmeKey, "alice"); a["model"] != "stable-model" {
		t.Errorf("after a restart alice gets %v; the halt must stay", a)
	}
	out, err = p.cli("rollback", "--to", fmt.Sprint(before), "--reason", "fixed upstream")
	if err != nil {
		t.Fatalf("rollback --to: %v\n%s", err, out)
	}
	if _, a := p.createAs(acmeKey, "alice"); a["model"] != "canary-model" {
		t.Errorf("after returning to version %v alice gets %v", before, a)
	}
	if r := p.doAs("POST", "/v1/admin/rollback", acmeKey, `{"dimension":"model","variant":"beta","reason":"x"}`, "u"); r.Status != 403 {
		t.Errorf("rollback with a user key = %d; want 403", r.Status)
	}
	if r := p.do("POST", "/v1/admin/rollback", opsKey, `{"dimension":"model","variant":"nope","reason":"x"}`); r.Status != 404 {
		t.Errorf("rollback of an unknown variant = %d %s; want 404", r.Status, r.Raw)
	}
	for _, body := range []string{`{"dimension":"model","variant":"beta"}`, `{"to_version":1,"reason":"  "}`} {
		if r := p.do("POST", "/v1/admin/rollback", opsKey, body); r.Status != 400 || r.Body["error"].(map[string]any)["code"] != "reason_required" {
			t.Errorf("rollback %s = %d %s; want 400 reason_required", body, r.Status, r.Raw)
		}
	}
	if r := p.do("POST", "/v1/admin/rollback", opsKey, `{"dimension":"model","variant":"beta","to_version":1,"reason":"x"}`); r.Status != 400 {
		t.Errorf("rollback with both forms = %d; want 400", r.Status)
	}
}

// TestSIGHUPReloads: with a long poll interval, SIGHUP applies a changed
// canary.json at once.
func TestSIGHUPReloads(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, betaConfig)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir, "AGENTD_CONFIG_POLL=1h")
	writeCanary(t, dir, strings.Replace(betaConfig, `"users": ["alice"]`, `"users": ["zoe"]`, 1))
	if _, a := p.createAs(acmeKey, "zoe"); a["model"] != "stable-model" {
		t.Fatalf("before SIGHUP zoe = %v; the hour-long poll cannot have run", a)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, a := p.createAs(acmeKey, "zoe"); return a["model"] == "canary-model" })
	v := p.do("GET", "/v1/admin/versions?limit=1", opsKey, "").Body["versions"].([]any)[0].(map[string]any)
	if v["reason"] != "SIGHUP" || v["actor"] != "file" {
		t.Errorf("version after SIGHUP = %v", v)
	}
}

// TestGuardHaltsAFailingVariant: a canary variant on a model the fake LLM
// answers with HTTP 500 is halted by the guard after min_samples turns; its
// pinned sessions' next turns use the stable model; the history shows the
// automatic version with its numbers.
func TestGuardHaltsAFailingVariant(t *testing.T) {
	llm := llmtest.NewServer(t)
	llm.SetResponder(func(r llmtest.Request) llmtest.Reply {
		if r.Model == "canary-model" {
			return llmtest.Reply{Status: 500, ErrorMessage: "canary model is broken"}
		}
		return llmtest.DefaultResponder(r)
	})
	cfg := `{"models": ["stable-model", "canary-model"],
	  "model": {"stable": "stable-model", "variants": [{"name": "broken", "value": "canary-model", "percent": 50}]},
	  "guard": {"min_samples": 8, "window": 20}}`
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+configDir(t, cfg))
	var canaryIDs, stableIDs []string
	for i := 0; len(canaryIDs) < 10 || len(stableIDs) < 10; i++ {
		id, a := p.createAs(acmeKey, fmt.Sprint("user-", i))
		if a["model"] == "canary-model" {
			canaryIDs = append(canaryIDs, id)
		} else {
			stableIDs = append(stableIDs, id)
		}
	}
	for _, id := range stableIDs {
		if r := p.turn(acmeKey, id, "ok?"); outcome(r)["incomplete_reason"] != nil {
			t.Fatalf("stable turn failed: %s", r.Raw)
		}
	}
	halted := func() bool {
		for _, v := range p.do("GET", "/v1/admin/canary", opsKey, "").Body["variants"].([]any) {
			if v.(map[string]any)["halted"] == true {
				return true
			}
		}
		return false
	}
	for i, id := range canaryIDs[:8] {
		r := p.turn(acmeKey, id, "hello")
		if outcome(r)["incomplete_reason"] != "llm_error" {
			t.Fatalf("canary turn %d = %s; want llm_error", i, r.Raw)
		}
		if i < 7 && halted() {
			t.Fatalf("halted after %d turns; min_samples is 8", i+1)
		}
	}
	waitFor(t, halted)
	vs := p.do("GET", "/v1/admin/versions?limit=1", opsKey, "").Body["versions"].([]any)
	v := vs[0].(map[string]any)
	if v["actor"] != "auto" || v["kind"] != "halt" || !strings.Contains(v["reason"].(string), "LLM 5xx rate 100.0% (8 of 8 calls)") {
		t.Errorf("automatic version = %v", v)
	}
	if d := v["details"].(map[string]any); d["llm_5xx"] != 8.0 || d["window_turns"] != 8.0 {
		t.Errorf("details = %v; want the numbers", d)
	}
	// A pinned session's next turn runs on stable, its history kept.
	r := p.turn(acmeKey, canaryIDs[0], "again?")
	if r.Body["model"] != "stable-model" || r.Body["reply"] != "echo: again?" {
		t.Errorf("pinned session after the halt = %s", r.Raw)
	}
	if msgs := p.messages(acmeKey, canaryIDs[0]); agent.Validate(msgs) != nil || len(msgs) != 4 {
		t.Errorf("history after the move: %d messages", len(msgs))
	}
	if !p.logged("guard halted a canary variant") {
		t.Errorf("no error log line for the automatic halt")
	}
	if m := p.do("GET", "/metrics", "", "").Raw; !strings.Contains(m, `agentd_canary_variant_halted{dimension="model",variant="broken"} 1`) {
		t.Errorf("/metrics does not show the halt:\n%s", m)
	}
}

// guardSessions creates sessions until there are n on the canary model and
// n on stable (the variant has 50 %).
func guardSessions(p *proc, n int) (canaryIDs, stableIDs []string) {
	for i := 0; len(canaryIDs) < n || len(stableIDs) < n; i++ {
		id, a := p.createAs(acmeKey, fmt.Sprint("user-", i))
		if a["model"] == "canary-model" {
			canaryIDs = append(canaryIDs, id)
		} else {
			stableIDs = append(stableIDs, id)
		}
	}
	return canaryIDs[:n], stableIDs[:n]
}

// TestGuardReportsAProviderOutage: the LLM answers 500 to every model, so
// stable fails as much as the canary variant. The guard halts nothing (not
// even after a restart drained its pending work) and reports the condition
// in the admin status, on /metrics and in one log line.
func TestGuardReportsAProviderOutage(t *testing.T) {
	llm := llmtest.NewServer(t)
	llm.SetResponder(func(r llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Status: 503, ErrorMessage: "provider outage"}
	})
	cfg := `{"models": ["stable-model", "canary-model"],
	  "model": {"stable": "stable-model", "variants": [{"name": "good", "value": "canary-model", "percent": 50}]},
	  "guard": {"min_samples": 8, "window": 20}}`
	dir, data := configDir(t, cfg), t.TempDir()
	p := start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	canaryIDs, stableIDs := guardSessions(p, 12)
	for i := range canaryIDs {
		for _, id := range []string{stableIDs[i], canaryIDs[i]} {
			if r := p.turn(acmeKey, id, "hello"); outcome(r)["incomplete_reason"] != "llm_error" {
				t.Fatalf("turn %d = %s; want llm_error", i, r.Raw)
			}
		}
	}
	st := p.do("GET", "/v1/admin/canary", opsKey, "")
	var status struct {
		Variants      []struct{ Halted bool }
		GuardReported []struct {
			Dimension    string  `json:"dimension"`
			Variant      string  `json:"variant"`
			Signal       string  `json:"signal"`
			VariantRate  float64 `json:"variant_rate"`
			ControlRate  float64 `json:"control_rate"`
			Ceiling      float64 `json:"ceiling"`
			VariantTurns int     `json:"variant_turns"`
			ControlTurns int     `json:"control_turns"`
		} `json:"guard_reported"`
	}
	if err := json.Unmarshal([]byte(st.Raw), &status); err != nil {
		t.Fatal(err)
	}
	if len(status.Variants) != 1 || status.Variants[0].Halted {
		t.Errorf("variants = %+v; want good, not halted", status.Variants)
	}
	if r := status.GuardReported; len(r) != 1 || r[0].Dimension != "model" || r[0].Variant != "good" || r[0].Signal != "llm_5xx_rate" ||
		r[0].VariantRate != 1 || r[0].ControlRate != 1 || r[0].Ceiling != 0.05 || r[0].VariantTurns != 12 || r[0].ControlTurns < 8 {
		t.Errorf("guard_reported = %+v; want model/good llm_5xx_rate, both at 100%% over the ceiling 5%%", r)
	}
	if m := p.do("GET", "/metrics", "", "").Raw; !strings.Contains(m, `agentd_guard_control_breach{dimension="model",signal="llm_5xx_rate"} 1`) {
		t.Errorf("/metrics does not show the control breach:\n%s", m)
	}
	if !p.logged("stable is over the guard's ceiling too") {
		t.Errorf("no log line for the reported outage")
	} else if n := strings.Count(p.logs.String(), "stable is over the guard's ceiling too"); n != 1 {
		t.Errorf("the outage was logged %d times over 12 turns; want once", n)
	}
	// A halt the guard asked for is served before it stops: after a
	// restart, the history is still the initial version alone.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(15 * time.Second)
	p = start(t, llm, data, "AGENTD_CONFIG_DIR="+dir)
	vs := p.do("GET", "/v1/admin/versions", opsKey, "").Body["versions"].([]any)
	if len(vs) != 1 {
		t.Errorf("%d versions after the outage; want the initial one alone: %v", len(vs), vs)
	}
}

// TestGuardHaltsAVariantWorseThanStable: the canary model fails one call
// in two, stable none. That is under the ceiling canary.json sets (90 %),
// so only the comparison with stable can halt it, and it does, citing both
// rates and the margin.
func TestGuardHaltsAVariantWorseThanStable(t *testing.T) {
	llm := llmtest.NewServer(t)
	var canaryCalls atomic.Int64
	llm.SetResponder(func(r llmtest.Request) llmtest.Reply {
		if r.Model == "canary-model" && canaryCalls.Add(1)%2 == 0 {
			return llmtest.Reply{Status: 500, ErrorMessage: "canary model is flaky"}
		}
		return llmtest.DefaultResponder(r)
	})
	cfg := `{"models": ["stable-model", "canary-model"],
	  "model": {"stable": "stable-model", "variants": [{"name": "flaky", "value": "canary-model", "percent": 50}]},
	  "guard": {"min_samples": 8, "window": 20, "llm_5xx_rate": 0.9}}`
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+configDir(t, cfg))
	canaryIDs, stableIDs := guardSessions(p, 8)
	for i := range canaryIDs {
		p.turn(acmeKey, stableIDs[i], "hello")
		p.turn(acmeKey, canaryIDs[i], "hello")
	}
	var v map[string]any
	waitFor(t, func() bool {
		v = p.do("GET", "/v1/admin/versions?limit=1", opsKey, "").Body["versions"].([]any)[0].(map[string]any)
		return v["kind"] == "halt"
	})
	want := "LLM 5xx rate 50.0% vs stable 0.0% (margin ×2, min +2 pts) over the variant's last 8 turns (4 of 8 calls)"
	if v["actor"] != "auto" || !strings.Contains(v["reason"].(string), want) {
		t.Errorf("automatic version = %v; want a halt citing %q", v, want)
	}
	if d := v["details"].(map[string]any); d["rule"] != "control" || d["rate"] != 0.5 || d["control_rate"] != 0.0 {
		t.Errorf("details = %v; want rule control, rate 0.5, control_rate 0", d)
	}
}

// TestHealthyVariantIsNeverHalted runs 1,000 healthy canary turns (and
// stable ones) and checks the guard never halts.
func TestHealthyVariantIsNeverHalted(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 turns")
	}
	llm := llmtest.NewServer(t)
	cfg := `{"models": ["stable-model", "canary-model"],
	  "model": {"stable": "stable-model", "variants": [{"name": "good", "value": "canary-model", "percent": 50}]},
	  "guard": {"min_samples": 20, "window": 100}}`
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+configDir(t, cfg))
	var ids []string
	for i := range 20 {
		id, _ := p.createAs(acmeKey, fmt.Sprint("user-", i))
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	for w, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				content := "hello"
				if i%4 == 0 {
					content = `look [[tool list_directory {}]]`
				}
				r := p.turn(acmeKey, id, content)
				if outcome(r)["status"] != "ok" {
					t.Errorf("worker %d turn %d = %s", w, i, r.Raw)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := p.do("GET", "/v1/admin/canary", opsKey, "")
	var turns float64
	for _, w := range st.Body["guard_windows"].([]any) {
		m := w.(map[string]any)
		if m["variant"] == "good" {
			turns = m["turns"].(float64)
		}
	}
	if strings.Contains(st.Raw, `"halted":true`) || turns == 0 {
		t.Errorf("after 2,000 healthy turns: %s", st.Raw)
	}
	var vs struct{ Versions []json.RawMessage }
	_ = json.Unmarshal([]byte(p.do("GET", "/v1/admin/versions", opsKey, "").Raw), &vs)
	if len(vs.Versions) != 1 {
		t.Errorf("%d versions; want only the initial one", len(vs.Versions))
	}
}

// TestRollbackEveryReplica: each replica keeps its own configuration, so
// the CLI halts a variant on every replica --server names, and fails if one
// of them could not be reached.
func TestRollbackEveryReplica(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, betaConfig)
	a := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	b := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	halted := func(p *proc) bool {
		variants, _ := p.do("GET", "/v1/admin/canary", opsKey, "").Body["variants"].([]any)
		for _, v := range variants {
			if m := v.(map[string]any); m["name"] == "beta" {
				return m["halted"] == true
			}
		}
		t.Fatal("no beta variant in the status")
		return false
	}
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = []string{"AGENTD_ADMIN_KEY=" + opsKey}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	both := a.url + "," + b.url
	out, err := cli("rollback", "--server", both, "--to", "1", "--reason", "x")
	if code := exitCode(err); code != 2 || !strings.Contains(out, "version numbers are per replica") {
		t.Errorf("rollback --to on two replicas = exit %d\n%s; want 2 and why", code, out)
	}
	out, err = cli("rollback", "--server", both, "--dimension", "model", "--variant", "beta", "--reason", "regressed")
	if err != nil || strings.Count(out, "is now served") != 2 || !strings.Contains(out, "== "+b.url) {
		t.Fatalf("rollback on two replicas: %v\n%s", err, out)
	}
	if !halted(a) || !halted(b) {
		t.Errorf("halted: %v, %v; want both", halted(a), halted(b))
	}
	out, err = cli("canary", "status", "--server", both)
	if err != nil || strings.Count(out, "HALTED") != 2 {
		t.Errorf("canary status on two replicas: %v\n%s", err, out)
	}
	// A replica that cannot be reached makes the command fail, after the
	// others were done.
	dead := "http://127.0.0.1:1"
	out, err = cli("rollback", "--server", both+","+dead, "--dimension", "model", "--variant", "beta", "--reason", "again")
	if err == nil || !strings.Contains(out, "1 of 3 replicas failed: "+dead) || strings.Count(out, "nothing to do") != 2 {
		t.Errorf("rollback with an unreachable replica: %v\n%s", err, out)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestRevertReachesLiveSessions is the seed's main rollback case: a rule
// version that mis-blocks is rolled out, the users it blocks are the live
// ones, and a revert to the last good version must unblock them at their
// next turn, with their history and a line saying what moved. Then a
// session pinned to an instructions file that was removed moves to stable
// instead of failing every turn.
func TestRevertReachesLiveSessions(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, `{"rules": {"stable": "v1"}}`)
	writeFile(t, dir, ".agentao/permissions/locked.json", `{"rules": [{"tool": "run_shell_command", "action": "deny"}]}`)
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	good := p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64)
	put := func(doc, reason string) {
		t.Helper()
		cur := p.do("GET", "/v1/admin/canary", opsKey, "").Body["version"].(float64)
		req, _ := httpRequest("PUT", p.url+"/v1/admin/canary", doc)
		req.Header.Set("Authorization", "Bearer "+opsKey)
		req.Header.Set("If-Match", fmt.Sprintf(`"%v"`, cur))
		req.Header.Set("X-Agentd-Reason", reason)
		if r := p.send(req); r.Status != 200 {
			t.Fatalf("PUT canary = %d %s", r.Status, r.Raw)
		}
	}
	put(`{"rules": {"stable": "locked"}}`, "stricter shell rules")
	bob, a := p.createAs(acmeKey, "bob")
	if a["rules"] != "locked" {
		t.Fatalf("bob under the bad version = %v", a)
	}
	shellTurn(p, bob, "echo blocked")
	if res := lastToolResult(llm); !strings.HasPrefix(res, "Tool execution denied") {
		t.Fatalf("bob's shell under the bad rules = %q; want denied", res)
	}

	out, err := p.cli("rollback", "--to", fmt.Sprint(good), "--reason", "rules mis-block")
	if err != nil {
		t.Fatalf("agentd rollback --to: %v\n%s", err, out)
	}
	shellTurn(p, bob, "echo unblocked")
	if res := lastToolResult(llm); !strings.Contains(res, "unblocked") {
		t.Errorf("bob's shell after the revert = %q; want it run under the restored v1", res)
	}
	r := p.do("GET", "/v1/sessions/"+bob, acmeKey, "")
	var s struct {
		Assignment map[string]any
		Messages   []agent.Message
		Turns      []struct{ Moved []string }
	}
	if err := json.Unmarshal([]byte(r.Raw), &s); err != nil {
		t.Fatal(err)
	}
	if s.Assignment["rules"] != "v1" || len(s.Messages) != 8 || len(s.Turns) != 2 || len(s.Turns[1].Moved) != 1 ||
		!strings.Contains(s.Turns[1].Moved[0], "rules: version") {
		t.Errorf("bob after the revert: assignment %v, %d messages, turns %+v; want rules v1, the history kept, one line", s.Assignment, len(s.Messages), s.Turns)
	}
	if !p.logged("session moved by a rollback") {
		t.Error("no log line for the move")
	}

	// A value whose file is removed: the session moves to stable.
	reloads := func() int { return strings.Count(p.logs.String(), "configuration tree reloaded") }
	writeFile(t, dir, "instructions/v2.md", "# v2\n")
	waitFor(t, func() bool { return reloads() == 1 })
	put(`{"instructions": {"stable": "none", "variants": [{"name": "v2", "value": "instructions/v2.md", "users": ["carol"]}]}}`, "try v2")
	carol, a := p.createAs(acmeKey, "carol")
	if a["instructions"] != "instructions/v2.md" {
		t.Fatalf("carol = %v", a)
	}
	put(`{}`, "v2 is over")
	if err := os.Remove(filepath.Join(dir, "instructions", "v2.md")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return reloads() == 2 })
	if r := p.turn(acmeKey, carol, "still there?"); r.Status != 200 || r.Body["reply"] != "echo: still there?" {
		t.Errorf("carol's turn after her instructions file was removed = %d %s; want it served on stable", r.Status, r.Raw)
	}
}

// TestRefusedTreeIsRetried: a tree edit that removes a rule version the
// served configuration needs is refused, shown as a metric and in the
// status, logged once; once an API change stops needing it, the next poll
// serves the tree, with the rest of the same edit.
func TestRefusedTreeIsRetried(t *testing.T) {
	llm := llmtest.NewServer(t)
	dir := configDir(t, `{"rules": {"stable": "v1", "variants": [{"name": "strict", "value": "v2", "percent": 100}]}}`)
	writeFile(t, dir, ".agentao/permissions/v2.json", `{"rules": [{"tool": "run_shell_command", "action": "deny"}]}`)
	writeFile(t, dir, "AGENTAO.md", "# house rules one\n")
	p := start(t, llm, t.TempDir(), "AGENTD_CONFIG_DIR="+dir)
	refused := func(v int) bool {
		return strings.Contains(p.do("GET", "/metrics", "", "").Raw, fmt.Sprintf(`agentd_config_refused{part="tree"} %d`, v))
	}
	if !refused(0) {
		t.Fatalf("/metrics has no agentd_config_refused{part=\"tree\"} 0:\n%s", p.do("GET", "/metrics", "", "").Raw)
	}
	if err := os.Remove(filepath.Join(dir, ".agentao/permissions/v2.json")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "AGENTAO.md", "# house rules two\n")
	waitFor(t, func() bool { return refused(1) })
	st := p.do("GET", "/v1/admin/canary", opsKey, "")
	if why, _ := st.Body["refused"].(map[string]any)["tree"].(string); !strings.Contains(why, `"v2"`) {
		t.Errorf("GET /v1/admin/canary refused = %v; want the tree and why", st.Body["refused"])
	}
	if out, _ := p.cli("canary", "status"); !strings.Contains(out, "REFUSED tree") {
		t.Errorf("agentd canary status does not say the tree is refused:\n%s", out)
	}
	req, _ := httpRequest("PUT", p.url+"/v1/admin/canary", `{"rules": {"stable": "v1"}}`)
	req.Header.Set("Authorization", "Bearer "+opsKey)
	req.Header.Set("If-Match", fmt.Sprintf(`"%v"`, st.Body["version"]))
	req.Header.Set("X-Agentd-Reason", "v2 is gone")
	if r := p.send(req); r.Status != 200 {
		t.Fatalf("PUT canary = %d %s", r.Status, r.Raw)
	}
	waitFor(t, func() bool { return refused(0) })
	if n := strings.Count(p.logs.String(), "configuration tree on disk is invalid"); n != 1 {
		t.Errorf("the refusal was logged %d times; want once (it was retried at every poll)", n)
	}
	id := p.create(acmeKey)
	if r := p.turn(acmeKey, id, "hi"); r.Status != 200 {
		t.Fatalf("turn = %d %s", r.Status, r.Raw)
	}
	reqs := llm.Requests()
	if sys := reqs[len(reqs)-1].Messages[0].Content; !strings.Contains(sys, "house rules two") {
		t.Errorf("the system prompt after the retry = %.120q; want the AGENTAO.md of the refused edit", sys)
	}
}
