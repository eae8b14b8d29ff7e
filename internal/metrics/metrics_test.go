package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/rollback"
)

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestMetrics(t *testing.T) {
	live, running := 7, 2
	m := metrics.New()
	h := m.Handler(metrics.Sources{
		Sessions: func() (int, int) { return live, running },
		Canary: func() (int, []metrics.Variant) {
			return 12, []metrics.Variant{
				{Dimension: "model", Name: "beta", Percent: 5},
				{Dimension: "rules", Name: "strict", Percent: 0.5, Halted: true},
			}
		},
		GuardReported: func() []rollback.Reported {
			return []rollback.Reported{{Dimension: "model", Variant: "beta", Signal: rollback.SignalLLM5xx, VariantRate: 0.5, ControlRate: 0.4, Ceiling: 0.05}}
		},
	})
	m.Turn(metrics.Turn{Model: "gpt-5", Variants: canary.ByDimension{"beta"}, Status: "ok", Duration: 300 * time.Millisecond,
		LLMCalls: 3, LLM5xx: 1, PromptTokens: 1000, Completion: 50, Cached: 600,
		Tools: []metrics.Tool{{Name: "read_file", Calls: 3, Duration: 30 * time.Millisecond}, {Name: "run_shell_command", Calls: 1, Failures: 1, Duration: 2 * time.Second}}})
	m.Turn(metrics.Turn{Model: "gpt-5", Variants: canary.ByDimension{"beta"}, Status: "ok", LLMCalls: 1,
		Tools: []metrics.Tool{{Name: "read_file", Calls: 1, Duration: 20 * time.Millisecond}}})
	m.Turn(metrics.Turn{Model: "gpt-4o", Status: "cancelled", IncompleteReason: "", LLMCalls: 1})
	m.Confirmation("gpt-5", canary.ByDimension{"beta"}, "timeout")
	m.Request("POST", "/v1/sessions/{id}/messages", 200, 20*time.Millisecond)
	m.Request("GET", "", 404, time.Millisecond)

	out := scrape(t, h)
	beta := `model="gpt-5",model_variant="beta",rules_variant="stable",sandbox_variant="stable",skills_variant="stable"`
	stable := `model="gpt-4o",model_variant="stable",rules_variant="stable",sandbox_variant="stable",skills_variant="stable"`
	for _, want := range []string{
		`agentd_turns_total{incomplete_reason="",instructions_variant="stable",` + beta + `,status="ok"} 2`,
		`agentd_turns_total{incomplete_reason="",instructions_variant="stable",` + stable + `,status="cancelled"} 1`,
		`agentd_llm_calls_total{instructions_variant="stable",` + beta + `} 4`,
		`agentd_llm_calls_total{instructions_variant="stable",` + stable + `} 1`,
		`agentd_llm_5xx_total{instructions_variant="stable",` + beta + `} 1`,
		// A cohort without failures still has its series, at 0, so that a
		// rate over it is 0 rather than missing.
		`agentd_llm_5xx_total{instructions_variant="stable",` + stable + `} 0`,
		`agentd_tool_calls_total{instructions_variant="stable",` + beta + `,tool="read_file"} 4`,
		`agentd_tool_calls_total{instructions_variant="stable",` + beta + `,tool="run_shell_command"} 1`,
		`agentd_tool_failures_total{instructions_variant="stable",` + beta + `,tool="run_shell_command"} 1`,
		`agentd_tool_failures_total{instructions_variant="stable",` + beta + `,tool="read_file"} 0`,
		`agentd_tool_seconds_total{instructions_variant="stable",` + beta + `,tool="read_file"} 0.05`,
		`agentd_tokens_total{instructions_variant="stable",kind="prompt",` + beta + `} 1000`,
		`agentd_tokens_total{instructions_variant="stable",kind="completion",` + beta + `} 50`,
		`agentd_tokens_total{instructions_variant="stable",kind="cached",` + beta + `} 600`,
		`agentd_tool_confirmations_total{decision="timeout",instructions_variant="stable",` + beta + `} 1`,
		`agentd_turn_duration_seconds_bucket{model="gpt-5",status="ok",le="0.5"} 2`,
		`agentd_turn_duration_seconds_bucket{model="gpt-5",status="ok",le="0.25"} 1`,
		`agentd_turn_duration_seconds_bucket{model="gpt-5",status="ok",le="0.1"} 1`,
		`agentd_http_requests_total{code="200",method="POST",route="/v1/sessions/{id}/messages"} 1`,
		`agentd_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`agentd_sessions_live 7`,
		`agentd_turns_running 2`,
		`agentd_config_version 12`,
		`agentd_canary_variant_percent{dimension="model",variant="beta"} 5`,
		`agentd_canary_variant_halted{dimension="model",variant="beta"} 0`,
		`agentd_canary_variant_halted{dimension="rules",variant="strict"} 1`,
		`agentd_guard_control_breach{dimension="model",signal="llm_5xx_rate"} 1`,
		// Every dimension and signal has its series, at 0 when clear.
		`agentd_guard_control_breach{dimension="model",signal="tool_failure_rate"} 0`,
		`agentd_guard_control_breach{dimension="instructions",signal="llm_5xx_rate"} 0`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %s in\n%s", want, grep(out, "agentd_"))
		}
	}
	// Scrape-time values are read at each scrape.
	live = 9
	if out := scrape(t, h); !strings.Contains(out, "agentd_sessions_live 9") {
		t.Errorf("sessions_live did not follow the source")
	}
}

func TestMetricsWithoutSources(t *testing.T) {
	out := scrape(t, metrics.New().Handler(metrics.Sources{}))
	if strings.Contains(out, "agentd_sessions_live") || !strings.Contains(out, "go_goroutines") {
		t.Errorf("without sources: %s", grep(out, "agentd_"))
	}
}

func grep(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
