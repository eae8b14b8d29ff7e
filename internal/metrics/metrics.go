// Package metrics exposes agentd's Prometheus metrics on GET /metrics, and
// is the only importer of the Prometheus client library.
//
// Turn metrics carry the session's cohort: the model it talks to and, per
// canary dimension, the variant it is pinned to ("stable" for none). A
// variant and its stable control are then two label values of the same
// series, which is what an operator compares while a canary runs, the same
// way agentd's own guard does:
//
//	sum by (model_variant) (rate(agentd_llm_5xx_total[5m]))
//	  / sum by (model_variant) (rate(agentd_llm_calls_total[5m]))
//
// Tenants and users are not labels: there can be many of them.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/session"
)

// Stable is the variant label of a session on a dimension's stable value.
const Stable = "stable"

// Turn is what one finished turn reports.
type Turn struct {
	Model    string
	Variants canary.ByDimension // the variant per dimension; "" is stable
	Status   string             // ok, error, cancelled
	// IncompleteReason: max_iterations, timeout, ... ("" when complete).
	IncompleteReason string
	Duration         time.Duration

	LLMCalls, LLMErrors, LLM5xx      int
	PromptTokens, Completion, Cached int
	// Tools are the turn's tool calls by tool; tool names must come from
	// the tool set (the agent counts made-up names as one).
	Tools []Tool
}

// Tool is one tool's calls in a turn.
type Tool struct {
	Name            string
	Calls, Failures int
	Duration        time.Duration // summed over the calls
}

// Variant is one canary variant as configured now.
type Variant struct {
	Dimension, Name string
	Percent         float64
	Halted          bool
}

// Sources are read at every scrape.
type Sources struct {
	// Sessions returns the sessions in memory and how many run a turn.
	Sessions func() (live, running int)
	// Canary returns the configuration version served and its variants.
	Canary func() (version int, variants []Variant)
	// MCPChildren counts the running MCP server processes.
	MCPChildren func() int
	// Refused returns, for each part of the configuration that can be
	// refused (RefusedParts), whether the version on disk is refused.
	Refused func() map[string]bool
	// GuardReported returns the ceiling breaches the guard reports
	// instead of halting (stable is over the ceiling too).
	GuardReported func() []rollback.Reported

	// Alerts returns every built-in alert rule with how many of its alerts
	// fire now (internal/alerts; 0 when none).
	Alerts func() []AlertCount
	// Probes returns the canary probe's last result per prompt and cohort
	// (internal/probe).
	Probes func() []ProbeState
	// SessionTokensMax returns the most tokens any session active in the
	// last hour has used (internal/usage).
	SessionTokensMax func() int64
}

// Metrics records agentd's metrics in its own registry.
type Metrics struct {
	reg *prometheus.Registry

	turns        *prometheus.CounterVec
	turnSeconds  *prometheus.HistogramVec
	llmCalls     *prometheus.CounterVec
	llmErrors    *prometheus.CounterVec
	llm5xx       *prometheus.CounterVec
	toolCalls    *prometheus.CounterVec
	toolFailures *prometheus.CounterVec
	toolSeconds  *prometheus.CounterVec
	tokens       *prometheus.CounterVec
	confirms     *prometheus.CounterVec
	requests     *prometheus.CounterVec
	reqSeconds   *prometheus.HistogramVec
	refusals     *prometheus.CounterVec
	genAI        genAI
}

func cohortLabels(extra ...string) []string {
	l := []string{"model"}
	for _, d := range canary.Dimensions() {
		l = append(l, d.String()+"_variant")
	}
	return append(l, extra...)
}

// New returns Metrics with the Go runtime and process collectors; the
// scrape-time sources come with Handler.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "agentd", Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	m.turns = counter("turns_total", "Turns finished, by cohort, status (ok, error, cancelled) and incomplete reason.",
		cohortLabels("status", "incomplete_reason"))
	m.turnSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "agentd", Name: "turn_duration_seconds", Help: "Wall time of a turn, by model and status.",
		Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300},
	}, []string{"model", "status"})
	reg.MustRegister(m.turnSeconds)
	m.llmCalls = counter("llm_calls_total", "Model calls made by turns, by cohort.", cohortLabels())
	m.llmErrors = counter("llm_errors_total", "Model calls that failed after their retries, by cohort.", cohortLabels())
	m.llm5xx = counter("llm_5xx_total", "Model calls that ended in an HTTP 5xx, by cohort (the guard's LLM 5xx rate).", cohortLabels())
	m.toolCalls = counter("tool_calls_total", "Tool calls made by turns, by cohort and tool.", cohortLabels("tool"))
	m.toolFailures = counter("tool_failures_total", "Tool calls that failed, by cohort and tool (the guard's tool failure rate).", cohortLabels("tool"))
	m.toolSeconds = counter("tool_seconds_total", "Time tool calls ran, by cohort and tool (divide by tool_calls_total for the mean).", cohortLabels("tool"))
	m.tokens = counter("tokens_total", "Tokens the model reported, by cohort and kind (prompt, completion, cached: the part of prompt served from the provider's cache).", cohortLabels("kind"))
	m.confirms = counter("tool_confirmations_total", "Answers to permission asks, by cohort and decision (allow_once, allow_always, reject_once, reject_always, timeout, cancelled).", cohortLabels("decision"))
	m.requests = counter("http_requests_total", "HTTP requests answered, by method, route pattern and status code.",
		[]string{"method", "route", "code"})
	m.reqSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "agentd", Name: "http_request_duration_seconds",
		Help:    "Time to answer an HTTP request (a streamed turn: until its end), by method and route pattern.",
		Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 120, 600},
	}, []string{"method", "route"})
	reg.MustRegister(m.reqSeconds)
	m.refusals = counter("budget_refusals_total", "LLM calls and turns refused because a daily token budget is spent, by the budget's scope (tenant, user).", []string{"scope"})
	for _, scope := range budgetScopes {
		m.refusals.WithLabelValues(scope) // at 0 from the start: a rate over it is 0, not missing
	}
	m.genAI = newGenAI(reg)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it), with what src reads at each
// scrape (any source may be nil). The sources come here, not with New,
// because they are what is built with the Metrics: the session pool whose
// turns the Metrics count, say. Call it once.
func (m *Metrics) Handler(src Sources) http.Handler {
	m.reg.MustRegister(&scrape{src: src})
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true})
}

// cohort is the label values of a model and its variants.
func cohort(model string, variants canary.ByDimension, extra int) []string {
	l := make([]string, 0, 6+extra)
	l = append(l, model)
	for _, v := range variants {
		if v == "" {
			v = Stable
		}
		l = append(l, v)
	}
	return l
}

// Turn records a finished turn.
func (m *Metrics) Turn(t Turn) {
	c := cohort(t.Model, t.Variants, 2)
	m.turns.WithLabelValues(append(c, t.Status, t.IncompleteReason)...).Inc()
	m.turnSeconds.WithLabelValues(t.Model, t.Status).Observe(t.Duration.Seconds())
	// Series exist from a cohort's first turn, at 0, so that a rate over
	// them is 0 rather than missing.
	m.llmCalls.WithLabelValues(c...).Add(float64(t.LLMCalls))
	m.llmErrors.WithLabelValues(c...).Add(float64(t.LLMErrors))
	m.llm5xx.WithLabelValues(c...).Add(float64(t.LLM5xx))
	m.tokens.WithLabelValues(append(c, "prompt")...).Add(float64(t.PromptTokens))
	m.tokens.WithLabelValues(append(c, "completion")...).Add(float64(t.Completion))
	m.tokens.WithLabelValues(append(c, "cached")...).Add(float64(t.Cached))
	for _, tool := range t.Tools {
		l := append(c, tool.Name)
		m.toolCalls.WithLabelValues(l...).Add(float64(tool.Calls))
		m.toolFailures.WithLabelValues(l...).Add(float64(tool.Failures))
		m.toolSeconds.WithLabelValues(l...).Add(tool.Duration.Seconds())
	}
}

// budgetScopes are the label values of agentd_budget_refusals_total.
var budgetScopes = []string{"tenant", "user"}

// BudgetRefused counts a refusal by a spent daily token budget of kind
// "tenant" or "user" (usage.Config.OnRefuse). Any other kind counts as
// "other", so that a caller's mistake cannot grow the series.
func (m *Metrics) BudgetRefused(kind string) {
	if kind != "tenant" && kind != "user" {
		kind = "other"
	}
	m.refusals.WithLabelValues(kind).Inc()
}

// Confirmation records the answer to a permission ask.
func (m *Metrics) Confirmation(model string, variants canary.ByDimension, decision string) {
	m.confirms.WithLabelValues(append(cohort(model, variants, 1), decision)...).Inc()
}

// Request records an answered HTTP request. route is the pattern that
// matched ("/v1/sessions/{id}/messages"), never the raw path, which would
// make a series per session.
func (m *Metrics) Request(method, route string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(method, route, itoa(code)).Inc()
	m.reqSeconds.WithLabelValues(method, route).Observe(d.Seconds())
}

func itoa(code int) string {
	if code >= 100 && code <= 999 {
		return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
	}
	return "other"
}

// scrape reports what is read at scrape time: sessions and the canary.
type scrape struct{ src Sources }

var (
	liveDesc   = prometheus.NewDesc("agentd_sessions_live", "Sessions held in memory (the pool; others are on disk and reload on use).", nil, nil)
	runDesc    = prometheus.NewDesc("agentd_turns_running", "Turns running now.", nil, nil)
	verDesc    = prometheus.NewDesc("agentd_config_version", "The configuration version served (agentd canary status).", nil, nil)
	pctDesc    = prometheus.NewDesc("agentd_canary_variant_percent", "A canary variant's configured percent of users.", []string{"dimension", "variant"}, nil)
	haltDesc   = prometheus.NewDesc("agentd_canary_variant_halted", "1 if a canary variant is halted (its users are on stable), else 0.", []string{"dimension", "variant"}, nil)
	mcpDesc    = prometheus.NewDesc("agentd_mcp_children", "MCP server processes running (stdio servers, every tenant).", nil, nil)
	breachDesc = prometheus.NewDesc("agentd_guard_control_breach",
		"1 while a variant of the dimension is over the guard's ceiling for the signal (tool_failure_rate, llm_5xx_rate) but is not halted because stable is over it too: an outage both share. 0 otherwise.",
		[]string{"dimension", "signal"}, nil)
	refDesc = prometheus.NewDesc("agentd_config_refused", "1 while a part of the configuration on disk (tree, canary.json, mcp.json) is invalid and the one served before keeps serving; retried at every poll.", []string{"part"}, nil)
)

func (s *scrape) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{liveDesc, runDesc, verDesc, pctDesc, haltDesc, mcpDesc, breachDesc, refDesc} {
		ch <- d
	}
	describeOperate(ch)
}

func (s *scrape) Collect(ch chan<- prometheus.Metric) {
	if s.src.Sessions != nil {
		live, running := s.src.Sessions()
		ch <- prometheus.MustNewConstMetric(liveDesc, prometheus.GaugeValue, float64(live))
		ch <- prometheus.MustNewConstMetric(runDesc, prometheus.GaugeValue, float64(running))
	}
	if s.src.MCPChildren != nil {
		ch <- prometheus.MustNewConstMetric(mcpDesc, prometheus.GaugeValue, float64(s.src.MCPChildren()))
	}
	if s.src.Refused != nil {
		for part, refused := range s.src.Refused() {
			v := 0.0
			if refused {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(refDesc, prometheus.GaugeValue, v, part)
		}
	}
	if s.src.GuardReported != nil {
		// Every dimension and signal has a series, at 0 when nothing is
		// reported, so that an alert on it does not depend on absence.
		on := map[[2]string]bool{}
		for _, r := range s.src.GuardReported() {
			on[[2]string{r.Dimension, r.Signal}] = true
		}
		for _, dim := range canary.Dimensions() {
			for _, sig := range rollback.Signals() {
				v := 0.0
				if on[[2]string{dim.String(), sig}] {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(breachDesc, prometheus.GaugeValue, v, dim.String(), sig)
			}
		}
	}
	collectOperate(s.src, ch)
	if s.src.Canary != nil {
		version, variants := s.src.Canary()
		ch <- prometheus.MustNewConstMetric(verDesc, prometheus.GaugeValue, float64(version))
		for _, v := range variants {
			halted := 0.0
			if v.Halted {
				halted = 1
			}
			ch <- prometheus.MustNewConstMetric(pctDesc, prometheus.GaugeValue, v.Percent, v.Dimension, v.Name)
			ch <- prometheus.MustNewConstMetric(haltDesc, prometheus.GaugeValue, halted, v.Dimension, v.Name)
		}
	}
}

// SessionTurn records a session's finished turn, its cohort taken from the
// session's assignment.
func (m *Metrics) SessionTurn(sum session.Summary, rec session.TurnRecord) {
	t := Turn{
		Model: rec.Model, Variants: sum.Assignment.CohortByDimension(), Status: string(rec.Outcome.Status),
		IncompleteReason: rec.Outcome.IncompleteReason,
		LLMCalls:         rec.Stats.LLMCalls, LLMErrors: rec.Stats.LLMErrors, LLM5xx: rec.Stats.LLM5xx,
		PromptTokens: rec.Stats.Usage.PromptTokens, Completion: rec.Stats.Usage.CompletionTokens, Cached: rec.Stats.Usage.CachedTokens,
	}
	if !rec.EndedAt.IsZero() {
		t.Duration = rec.EndedAt.Sub(rec.StartedAt)
	}
	for _, ts := range rec.Stats.Tools {
		t.Tools = append(t.Tools, Tool{Name: ts.Name, Calls: ts.Calls, Failures: ts.Failures, Duration: time.Duration(ts.Millis) * time.Millisecond})
	}
	m.Turn(t)
}

// SessionConfirmation records the answer to an ask in a session.
func (m *Metrics) SessionConfirmation(sum session.Summary, decision string) {
	m.Confirmation(sum.Model, sum.Assignment.CohortByDimension(), decision)
}
