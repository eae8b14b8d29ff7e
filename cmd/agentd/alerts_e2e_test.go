package main_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

// alertOf is one alert of GET /v1/admin/alerts.
type alertOf struct {
	Name     string `json:"name"`
	Severity string `json:"severity"`
	Scope    struct {
		Tenant, Session, Variant string
	} `json:"scope"`
	Value      float64    `json:"value"`
	Threshold  float64    `json:"threshold"`
	Node       string     `json:"node"`
	Since      time.Time  `json:"since"`
	ResolvedAt *time.Time `json:"resolved_at"`
}

func (p *proc) alerts() []alertOf {
	p.t.Helper()
	r := p.do("GET", "/v1/admin/alerts", opsKey, "")
	if r.Status != http.StatusOK {
		p.t.Fatalf("GET /v1/admin/alerts = %d %s", r.Status, r.Raw)
	}
	var body struct{ Alerts []alertOf }
	if err := json.Unmarshal([]byte(r.Raw), &body); err != nil {
		p.t.Fatal(err)
	}
	return body.Alerts
}

// hook is a webhook receiver that fails its first answer.
type hook struct {
	mu       sync.Mutex
	attempts int
	events   []struct {
		Status string  `json:"status"`
		Alert  alertOf `json:"alert"`
	}
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts++
	if h.attempts == 1 { // the first attempt fails: the event is retried
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev struct {
		Status string  `json:"status"`
		Alert  alertOf `json:"alert"`
	}
	if json.Unmarshal(body, &ev) == nil {
		h.events = append(h.events, ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hook) has(status, name, tenant string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range h.events {
		if ev.Status == status && ev.Alert.Name == name && ev.Alert.Scope.Tenant == tenant {
			return true
		}
	}
	return false
}

// TestAlertsEndToEnd: on the real binary, LLM 5xx through the real meter
// fire the built-in P1 alert for the service and the tenant: listed by
// GET /v1/admin/alerts (admin only), counted by agentd_alerts_firing, sent
// to the webhook (after a failed attempt), still firing with the same
// since after a restart; switching the alert off in alerts.json resolves it
// everywhere.
func TestAlertsEndToEnd(t *testing.T) {
	llm := llmtest.NewServer(t)
	llm.SetResponder(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Status: http.StatusBadGateway, ErrorMessage: "upstream down"}
	})
	h := &hook{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg := configDir(t, "{}")
	writeFile(t, cfg, ".agentao/alerts.json", `{"min_calls": 3, "window": "5m"}`)
	data := t.TempDir()
	env := []string{"AGENTD_CONFIG_DIR=" + cfg, "AGENTD_ALERT_INTERVAL=100ms", "AGENTD_ALERT_WEBHOOK=" + srv.URL + "/hook/s3cr3t-token"}
	p := start(t, llm, data, env...)

	id := p.create(acmeKey)
	for range 3 {
		r := p.turn(acmeKey, id, "hello")
		if r.Status != http.StatusOK || outcome(r)["incomplete_reason"] != "llm_error" {
			t.Fatalf("turn = %d %s; want an llm_error turn", r.Status, r.Raw)
		}
	}
	var firing map[string]alertOf // by tenant ("" the total)
	waitFor(t, func() bool {
		firing = map[string]alertOf{}
		for _, a := range p.alerts() {
			if a.Name == "AgentdLLM5xxRateHigh" && a.ResolvedAt == nil {
				firing[a.Scope.Tenant] = a
			}
		}
		return len(firing) == 2
	})
	for _, tenant := range []string{"", "acme"} {
		a, ok := firing[tenant]
		if !ok || a.Severity != "P1" || a.Value != 1 || a.Threshold != 0.05 || a.Scope.Variant != "" {
			t.Errorf("alert for tenant %q = %+v; want P1, value 1, threshold 0.05", tenant, a)
		}
	}
	if r := p.do("GET", "/v1/admin/alerts", acmeKey, ""); r.Status != http.StatusForbidden {
		t.Errorf("a user key: %d %s; want 403", r.Status, r.Raw)
	}
	if m := p.do("GET", "/metrics", "", ""); !strings.Contains(m.Raw, `agentd_alerts_firing{name="AgentdLLM5xxRateHigh",severity="P1"} 2`) {
		t.Errorf("/metrics has no agentd_alerts_firing of 2 for the P1 alert")
	}
	waitFor(t, func() bool {
		return h.has("firing", "AgentdLLM5xxRateHigh", "acme") && h.has("firing", "AgentdLLM5xxRateHigh", "")
	})
	if strings.Contains(p.logs.String(), "s3cr3t-token") {
		t.Error("the webhook URL's token is in the log")
	}

	// A restart: still firing, since kept, not announced again.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.logs.String())
	}
	p = start(t, llm, data, env...)
	time.Sleep(300 * time.Millisecond) // a few evaluations
	for _, a := range p.alerts() {
		if was, ok := firing[a.Scope.Tenant]; ok && a.Name == was.Name && (a.ResolvedAt != nil || !a.Since.Equal(was.Since)) {
			t.Errorf("after a restart: %+v; want still firing since %v", a, was.Since)
		}
	}
	if strings.Contains(p.logs.String(), "alert firing") {
		t.Errorf("a firing alert was announced again after the restart:\n%s", p.logs.String())
	}

	// Switched off in alerts.json: resolved, in the list, the metric and the webhook.
	writeFile(t, cfg, ".agentao/alerts.json", `{"min_calls": 3, "window": "5m", "llm_5xx_rate": 0}`)
	waitFor(t, func() bool {
		n := 0
		for _, a := range p.alerts() {
			if a.Name == "AgentdLLM5xxRateHigh" && a.ResolvedAt != nil {
				n++
			}
		}
		return n == 2
	})
	if m := p.do("GET", "/metrics", "", ""); !strings.Contains(m.Raw, `agentd_alerts_firing{name="AgentdLLM5xxRateHigh",severity="P1"} 0`) {
		t.Errorf("/metrics still counts the resolved alert")
	}
	waitFor(t, func() bool { return h.has("resolved", "AgentdLLM5xxRateHigh", "acme") })
}

// TestFleetAlerts: in a fleet of three real replicas each replica alerts on
// the sessions it serves, and GET /v1/admin/alerts on any replica lists
// every replica's alerts, each with its node.
func TestFleetAlerts(t *testing.T) {
	llm := llmtest.NewServer(t)
	llm.SetResponder(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Status: http.StatusBadGateway, ErrorMessage: "upstream down"}
	})
	ms := startFleet(t, llm, 3, "{}", nil)
	for _, m := range ms {
		writeFile(t, m.dir, ".agentao/alerts.json", `{"min_calls": 3, "window": "5m"}`)
	}
	time.Sleep(300 * time.Millisecond) // alerts.json served (polled every 100 ms)
	for _, m := range ms[:2] {
		id := m.p.create(acmeKey)
		for range 3 {
			if r := m.p.turn(acmeKey, id, "hello"); r.Status != http.StatusOK {
				t.Fatalf("turn on %s = %d %s", m.name, r.Status, r.Raw)
			}
		}
	}
	waitLong(t, "both replicas' alerts listed on "+ms[2].name, func() bool {
		nodes := map[string]bool{}
		for _, a := range ms[2].p.alerts() {
			if a.Name == "AgentdLLM5xxRateHigh" && a.Scope.Tenant == "acme" && a.ResolvedAt == nil {
				nodes[a.Node] = true
			}
		}
		return nodes[ms[0].name] && nodes[ms[1].name] && !nodes[ms[2].name]
	})
	// A forwarded request (or a client saying it is one) gets the replica's own.
	req, _ := httpRequest("GET", ms[2].p.url+"/v1/admin/alerts", "")
	req.Header.Set("Authorization", "Bearer "+opsKey)
	req.Header.Set("X-Agentd-Forwarded-By", ms[0].name)
	if r := ms[2].p.send(req); r.Status != http.StatusOK || strings.Contains(r.Raw, "AgentdLLM5xxRateHigh") {
		t.Errorf("with X-Agentd-Forwarded-By: %d %s; want %s's own alerts only (none)", r.Status, r.Raw, ms[2].name)
	}
}
