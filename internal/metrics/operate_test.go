package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/metrics"
)

// TestOperateSources: the alerts, the probe, the session maximum and the
// budget refusals on /metrics, read at every scrape.
func TestOperateSources(t *testing.T) {
	maxTokens := int64(61000)
	run := time.Date(2026, 12, 2, 10, 0, 0, 500e6, time.UTC)
	alerts := []metrics.AlertCount{
		{Name: "daily_tokens_ratio", Severity: "P2"},
		{Name: "session_tokens", Severity: "P3", Firing: 2},
		{Name: "tool_failure_rate", Severity: "P2"},
		{Name: "llm_5xx_rate", Severity: "P1", Firing: 1},
	}
	m := metrics.New()
	h := m.Handler(metrics.Sources{
		SessionTokensMax: func() int64 { return maxTokens },
		Alerts:           func() []metrics.AlertCount { return alerts },
		Probes: func() []metrics.ProbeState {
			return []metrics.ProbeState{
				{Probe: "capital", Dimension: "stable", Variant: "stable", LastRun: run},
				{Probe: "capital", Dimension: "model", Variant: "beta", ChangedVsStable: true, LastRun: run},
				{Probe: "capital", Dimension: "rules", Variant: "strict", ChangedVsPrevious: true, LastRun: run},
			}
		},
	})
	m.BudgetRefused("tenant")
	m.BudgetRefused("tenant")
	m.BudgetRefused("user")
	m.BudgetRefused("acme") // not a scope: counted as other, never a new label value per tenant
	s := samples(t, scrape(t, h))
	for _, c := range []struct{ series, want string }{
		{`agentd_session_tokens_max`, "61000"},
		{`agentd_alerts_firing{name="daily_tokens_ratio",severity="P2"}`, "0"},
		{`agentd_alerts_firing{name="session_tokens",severity="P3"}`, "2"},
		{`agentd_alerts_firing{name="tool_failure_rate",severity="P2"}`, "0"},
		{`agentd_alerts_firing{name="llm_5xx_rate",severity="P1"}`, "1"},
		{`agentd_probe_changed{against="previous",dimension="stable",probe="capital",variant="stable"}`, "0"},
		{`agentd_probe_changed{against="stable",dimension="model",probe="capital",variant="beta"}`, "1"},
		{`agentd_probe_changed{against="previous",dimension="model",probe="capital",variant="beta"}`, "0"},
		{`agentd_probe_changed{against="previous",dimension="rules",probe="capital",variant="strict"}`, "1"},
		{`agentd_probe_changed{against="stable",dimension="rules",probe="capital",variant="strict"}`, "0"},
		{`agentd_probe_last_run_timestamp_seconds{dimension="model",probe="capital",variant="beta"}`, "1.7962056005e+09"},
		{`agentd_budget_refusals_total{scope="tenant"}`, "2"},
		{`agentd_budget_refusals_total{scope="user"}`, "1"},
		{`agentd_budget_refusals_total{scope="other"}`, "1"},
	} {
		if got, ok := s[c.series]; !ok || got != c.want {
			t.Errorf("%s = %q (present %v); want %s", c.series, got, ok, c.want)
		}
	}
	// Read at each scrape.
	maxTokens, alerts[3].Firing = 12, 0
	s = samples(t, scrape(t, h))
	if got := s[`agentd_session_tokens_max`]; got != "12" {
		t.Errorf("agentd_session_tokens_max = %s after the source changed; want 12", got)
	}
	if got := s[`agentd_alerts_firing{name="llm_5xx_rate",severity="P1"}`]; got != "0" {
		t.Errorf("llm_5xx_rate firing = %s after it resolved; want 0", got)
	}
}

// TestOperateSourcesAbsent: without the sources, no series (not a 0 that
// would look like a measurement), and the refusal counters exist at 0.
func TestOperateSourcesAbsent(t *testing.T) {
	out := scrape(t, metrics.New().Handler(metrics.Sources{}))
	for _, absent := range []string{"agentd_session_tokens_max ", "agentd_alerts_firing{", "agentd_probe_changed{"} {
		if strings.Contains(out, absent) {
			t.Errorf("%s without its source", absent)
		}
	}
	s := samples(t, out)
	for _, scope := range []string{"tenant", "user"} {
		if got := s[`agentd_budget_refusals_total{scope="`+scope+`"}`]; got != "0" {
			t.Errorf("agentd_budget_refusals_total{scope=%q} = %q before any refusal; want 0", scope, got)
		}
	}
}

// TestOperateSourcesDuplicates: a source that repeats a label set would
// otherwise fail the whole scrape; repeats are merged.
func TestOperateSourcesDuplicates(t *testing.T) {
	early, late := time.Unix(1000, 0), time.Unix(2000, 0)
	h := metrics.New().Handler(metrics.Sources{
		Alerts: func() []metrics.AlertCount {
			return []metrics.AlertCount{{Name: "session_tokens", Severity: "P3", Firing: 1}, {Name: "session_tokens", Severity: "P3", Firing: 2}}
		},
		Probes: func() []metrics.ProbeState {
			return []metrics.ProbeState{
				{Probe: "p", Dimension: "model", Variant: "beta", ChangedVsPrevious: true, LastRun: late},
				{Probe: "p", Dimension: "model", Variant: "beta", ChangedVsStable: true, LastRun: early},
			}
		},
	})
	s := samples(t, scrape(t, h)) // scrape fails the test on a 500
	for _, c := range []struct{ series, want string }{
		{`agentd_alerts_firing{name="session_tokens",severity="P3"}`, "3"},
		{`agentd_probe_changed{against="previous",dimension="model",probe="p",variant="beta"}`, "1"},
		{`agentd_probe_changed{against="stable",dimension="model",probe="p",variant="beta"}`, "1"},
		{`agentd_probe_last_run_timestamp_seconds{dimension="model",probe="p",variant="beta"}`, "2000"},
	} {
		if got := s[c.series]; got != c.want {
			t.Errorf("%s = %q; want %s", c.series, got, c.want)
		}
	}
}
