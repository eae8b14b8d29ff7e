package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/session"
)

// The OpenTelemetry GenAI client metrics (semantic conventions,
// gen-ai-metrics), exported under the names OpenTelemetry's Prometheus
// exporter gives them: dots become underscores, and the duration's unit "s"
// becomes the suffix "_seconds" (the token unit "{token}" is an annotation
// and adds none). A dashboard built for any OTel-instrumented GenAI client
// reads them as is. The cohort is in feature_flag_<dimension> labels (the
// variant name or "stable"), OTel's feature_flag namespace; tenants, users
// and sessions are never labels.
const (
	// GenAIOperation is gen_ai.operation.name: agentd's calls are all chat
	// completions (compaction summaries included).
	GenAIOperation = "chat"
	// GenAIProvider is gen_ai.provider.name: agentd speaks the OpenAI API
	// (to OpenAI or a compatible server: the wire decides the name).
	GenAIProvider = "openai"
)

// OpenTelemetry's advised bucket boundaries for the two histograms.
var (
	// gen_ai.client.token.usage: powers of 4 from 1 to 4^13.
	tokenBuckets = prometheus.ExponentialBuckets(1, 4, 14) // 1, 4, 16, … 67108864
	// gen_ai.client.operation.duration: doublings from 10 ms to 81.92 s.
	durationBuckets = prometheus.ExponentialBuckets(0.01, 2, 14) // 0.01, 0.02, … 81.92
)

// featureFlagLabels are the cohort labels of the GenAI series, one per
// canary dimension: feature_flag_model, feature_flag_skills, ...
func featureFlagLabels(extra ...string) []string {
	var l []string
	l = append(l, extra...)
	for _, d := range canary.Dimensions() {
		l = append(l, "feature_flag_"+d.String())
	}
	return l
}

type genAI struct {
	tokens   *prometheus.HistogramVec
	duration *prometheus.HistogramVec
}

func newGenAI(reg *prometheus.Registry) genAI {
	g := genAI{
		tokens: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_token_usage",
			Help:    "Tokens used per LLM call (OpenTelemetry gen_ai.client.token.usage), by token type (input, output), request model and cohort (feature_flag_<dimension>: variant or stable).",
			Buckets: tokenBuckets,
		}, featureFlagLabels("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_token_type")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gen_ai_client_operation_duration_seconds",
			Help:    "Duration of an LLM call, retries included (OpenTelemetry gen_ai.client.operation.duration), by request model, error_type (absent on success; else the HTTP status, timeout, cancelled or _OTHER) and cohort.",
			Buckets: durationBuckets,
		}, featureFlagLabels("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "error_type")),
	}
	reg.MustRegister(g.tokens, g.duration)
	return g
}

// SessionCall records one LLM call of a session's turn (agent.Turn.Called,
// through the pool's Meter hook): its duration always, its tokens when the
// call succeeded. Calls of the probe's synthetic tenant are not counted
// (the pool does not report them; this is a second guard).
func (m *Metrics) SessionCall(sum session.Summary, c agent.LLMCall) {
	if sum.Tenant == session.ProbeTenant {
		return
	}
	model := c.Model
	if model == "" {
		model = sum.Model
	}
	ff := sum.Assignment.CohortByDimension()
	labels := func(last string) []string {
		l := make([]string, 0, 4+len(ff))
		l = append(l, GenAIOperation, GenAIProvider, model, last)
		for _, v := range ff {
			if v == "" {
				v = Stable
			}
			l = append(l, v)
		}
		return l
	}
	m.genAI.duration.WithLabelValues(labels(c.ErrorType)...).Observe(c.Duration.Seconds())
	// A failed call reports no usage (its Usage is zero): OTel records
	// token usage only when the provider reported it. A successful call
	// with no usage at all (a server that does not send it) is left out
	// too, rather than counted as a call of 0 tokens.
	if c.ErrorType != "" || (c.Usage.PromptTokens == 0 && c.Usage.CompletionTokens == 0) {
		return
	}
	m.genAI.tokens.WithLabelValues(labels("input")...).Observe(float64(c.Usage.PromptTokens))
	m.genAI.tokens.WithLabelValues(labels("output")...).Observe(float64(c.Usage.CompletionTokens))
}

// Meter returns a session.Meter that reports every LLM call to SessionCall
// and otherwise is next (the token meter: budgets, usage); next may be nil
// (admits everything). The pool reports LLM calls only to its Meter, so
// this is how the GenAI series get them: Hooks.Meter = met.Meter(usage).
func (m *Metrics) Meter(next session.Meter) session.Meter { return callMeter{m, next} }

type callMeter struct {
	m    *Metrics
	next session.Meter
}

func (c callMeter) Admit(s session.Summary) error {
	if c.next == nil {
		return nil
	}
	return c.next.Admit(s)
}

func (c callMeter) Called(s session.Summary, call agent.LLMCall) {
	c.m.SessionCall(s, call)
	if c.next != nil {
		c.next.Called(s, call)
	}
}
