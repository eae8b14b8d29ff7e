package metrics_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/session"
)

// samples parses a text exposition into "name{labels}" → value. Label
// pairs come sorted by name, as client_golang writes them.
func samples(t *testing.T, out string) map[string]string {
	t.Helper()
	s := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad exposition line %q", line)
		}
		s[line[:i]] = line[i+1:]
	}
	return s
}

// genAISeries are the sample lines of the gen_ai_* families, for failures.
func genAISeries(s map[string]string) string {
	var l []string
	for k, v := range s {
		if strings.HasPrefix(k, "gen_ai_") {
			l = append(l, k+" "+v)
		}
	}
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// ff is the feature_flag_* labels of a cohort, in exposition order
// (instructions, model, rules, sandbox, skills).
func ff(model string) string {
	return fmt.Sprintf(`feature_flag_instructions="stable",feature_flag_model=%q,feature_flag_rules="stable",feature_flag_sandbox="stable",feature_flag_skills="stable"`, model)
}

// TestSessionCallBuckets feeds SessionCall directly: exact counts, sums and
// bucket placement on OpenTelemetry's advised boundaries, the labels, and
// no tenant, user or session anywhere.
func TestSessionCallBuckets(t *testing.T) {
	m := metrics.New()
	h := m.Handler(metrics.Sources{})
	stable := session.Summary{ID: "s-1", Tenant: "acme", User: "alice", Model: "gpt-5"}
	beta := session.Summary{ID: "s-2", Tenant: "acme", User: "bob", Model: "gpt-5",
		Assignment: session.Assignment{Variants: map[string]string{"model": "beta"}}}
	probe := session.Summary{ID: "s-3", Tenant: session.ProbeTenant, User: "probe", Model: "gpt-5"}

	m.SessionCall(stable, agent.LLMCall{Model: "gpt-5", Duration: 5 * time.Millisecond, Usage: agent.Usage{PromptTokens: 3, CompletionTokens: 1}})
	m.SessionCall(stable, agent.LLMCall{Model: "gpt-5", Duration: 1500 * time.Millisecond, Usage: agent.Usage{PromptTokens: 70000, CompletionTokens: 17}})
	m.SessionCall(stable, agent.LLMCall{Model: "gpt-5", Duration: 100 * time.Second, ErrorType: "timeout"})
	m.SessionCall(beta, agent.LLMCall{Model: "gpt-5", Duration: 30 * time.Millisecond, ErrorType: "500", Status: 500})
	// A success without reported usage: a duration, no tokens.
	m.SessionCall(beta, agent.LLMCall{Model: "gpt-5", Duration: 10 * time.Millisecond})
	// The probe's tenant is never counted.
	m.SessionCall(probe, agent.LLMCall{Model: "gpt-5", Duration: time.Second, Usage: agent.Usage{PromptTokens: 9, CompletionTokens: 9}})

	out := scrape(t, h)
	s := samples(t, out)
	op := `gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-5"`
	tok := func(model, typ, suffix string) string {
		return "gen_ai_client_token_usage" + suffix + "{" + ff(model) + "," + op + `,gen_ai_token_type="` + typ + `"`
	}
	dur := func(model, errType, suffix string) string {
		return "gen_ai_client_operation_duration_seconds" + suffix + `{error_type="` + errType + `",` + ff(model) + "," + op
	}
	for _, c := range []struct{ series, want string }{
		// input: 3 and 70000 tokens.
		{tok("stable", "input", "_count") + "}", "2"},
		{tok("stable", "input", "_sum") + "}", "70003"},
		{tok("stable", "input", "_bucket") + `,le="1"}`, "0"},
		{tok("stable", "input", "_bucket") + `,le="4"}`, "1"},
		{tok("stable", "input", "_bucket") + `,le="65536"}`, "1"},
		{tok("stable", "input", "_bucket") + `,le="262144"}`, "2"},
		{tok("stable", "input", "_bucket") + `,le="6.7108864e+07"}`, "2"},
		{tok("stable", "input", "_bucket") + `,le="+Inf"}`, "2"},
		// output: 1 and 17 tokens.
		{tok("stable", "output", "_count") + "}", "2"},
		{tok("stable", "output", "_sum") + "}", "18"},
		{tok("stable", "output", "_bucket") + `,le="1"}`, "1"},
		{tok("stable", "output", "_bucket") + `,le="16"}`, "1"},
		{tok("stable", "output", "_bucket") + `,le="64"}`, "2"},
		// durations: 5 ms and 1.5 s succeeded, 100 s timed out.
		{dur("stable", "", "_count") + "}", "2"},
		{dur("stable", "", "_sum") + "}", "1.505"},
		{dur("stable", "", "_bucket") + `,le="0.01"}`, "1"},
		{dur("stable", "", "_bucket") + `,le="1.28"}`, "1"},
		{dur("stable", "", "_bucket") + `,le="2.56"}`, "2"},
		{dur("stable", "timeout", "_count") + "}", "1"},
		{dur("stable", "timeout", "_bucket") + `,le="81.92"}`, "0"},
		{dur("stable", "timeout", "_bucket") + `,le="+Inf"}`, "1"},
		// the variant: a 500 and a success without usage.
		{dur("beta", "500", "_count") + "}", "1"},
		{dur("beta", "500", "_bucket") + `,le="0.02"}`, "0"},
		{dur("beta", "500", "_bucket") + `,le="0.04"}`, "1"},
		{dur("beta", "", "_count") + "}", "1"},
	} {
		if got, ok := s[c.series]; !ok || got != c.want {
			t.Errorf("%s = %q (present %v); want %s\n%s", c.series, got, ok, c.want, genAISeries(s))
		}
	}
	// Neither a failed call nor one without usage has token samples: the
	// variant has none, and the stable cohort counted only its 2 successes.
	for k := range s {
		if strings.HasPrefix(k, "gen_ai_client_token_usage") && strings.Contains(k, `feature_flag_model="beta"`) {
			t.Errorf("token usage recorded for a call without usage: %s", k)
		}
	}
	for _, leak := range []string{"acme", "alice", "bob", "s-1", "s-2", session.ProbeTenant} {
		if strings.Contains(genAISeries(s), leak) {
			t.Errorf("%q in the gen_ai series:\n%s", leak, genAISeries(s))
		}
	}
	// OTel's advised boundaries, every one of them.
	var les []string
	for k := range s {
		if strings.HasPrefix(k, tok("stable", "input", "_bucket")) {
			les = append(les, k[strings.Index(k, `le="`)+4:len(k)-2])
		}
	}
	if len(les) != 15 { // 14 boundaries and +Inf
		t.Errorf("token usage buckets: %v; want 1, 4, 16, … 67108864 and +Inf", les)
	}
}

// TestGenAIAfterTurns runs real turns of the agent against the fake LLM
// over HTTP (the real OpenAI client, no retries), reports every call to
// SessionCall as the pool does, and finds the exact OTel series on /metrics:
// a turn with a tool call (two calls), a plain turn, and a turn on a canary
// variant whose provider answers 500.
func TestGenAIAfterTurns(t *testing.T) {
	fake := llmtest.NewServer(t)
	client, err := llm.NewClient(llm.Config{BaseURL: fake.URL(), APIKey: "sk-test", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	ag := agent.New(client, agent.Config{})
	m := metrics.New()
	h := m.Handler(metrics.Sources{})
	stable := session.Summary{ID: "s-1", Tenant: "acme", User: "alice", Model: "gpt-5"}
	canary := session.Summary{ID: "s-2", Tenant: "acme", User: "bob", Model: "gpt-5",
		Assignment: session.Assignment{Variants: map[string]string{"model": "beta", "rules": "strict"}}}
	turn := func(sum session.Summary, input string, tools ...agent.Tool) agent.Result {
		t.Helper()
		return ag.Run(context.Background(), agent.Turn{
			Model: sum.Model, Input: input, Tools: tools, Authorize: agent.AllowAll,
			Called: func(c agent.LLMCall) { m.SessionCall(sum, c) },
		})
	}

	fake.Enqueue(
		llmtest.Reply{ToolCalls: []llmtest.ToolCall{{ID: "c1", Name: "clock", Arguments: "{}"}}, Usage: &llmtest.Usage{PromptTokens: 120, CompletionTokens: 12}},
		llmtest.Reply{Text: "it is noon", Usage: &llmtest.Usage{PromptTokens: 150, CompletionTokens: 5}},
	)
	if r := turn(stable, "what time is it?", clockTool{}); r.Outcome.Status != agent.StatusOK || r.Stats.LLMCalls != 2 {
		t.Fatalf("turn 1: %+v, %d calls", r.Outcome, r.Stats.LLMCalls)
	}
	fake.Enqueue(llmtest.Reply{Text: "hello", Usage: &llmtest.Usage{PromptTokens: 5000, CompletionTokens: 300}})
	if r := turn(stable, "hi"); r.Outcome.Status != agent.StatusOK {
		t.Fatalf("turn 2: %+v", r.Outcome)
	}
	fake.Enqueue(llmtest.Reply{Status: 500, ErrorMessage: "upstream down"})
	if r := turn(canary, "hi"); r.Outcome.IncompleteReason != "llm_error" {
		t.Fatalf("turn 3 (500): %+v", r.Outcome)
	}

	s := samples(t, scrape(t, h))
	op := `gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-5"`
	stableFF := ff("stable")
	canaryFF := `feature_flag_instructions="stable",feature_flag_model="beta",feature_flag_rules="strict",feature_flag_sandbox="stable",feature_flag_skills="stable"`
	for _, c := range []struct{ series, want string }{
		{"gen_ai_client_token_usage_count{" + stableFF + "," + op + `,gen_ai_token_type="input"}`, "3"},
		{"gen_ai_client_token_usage_sum{" + stableFF + "," + op + `,gen_ai_token_type="input"}`, "5270"},
		{"gen_ai_client_token_usage_bucket{" + stableFF + "," + op + `,gen_ai_token_type="input",le="256"}`, "2"},
		{"gen_ai_client_token_usage_bucket{" + stableFF + "," + op + `,gen_ai_token_type="input",le="4096"}`, "2"},
		{"gen_ai_client_token_usage_bucket{" + stableFF + "," + op + `,gen_ai_token_type="input",le="16384"}`, "3"},
		{"gen_ai_client_token_usage_count{" + stableFF + "," + op + `,gen_ai_token_type="output"}`, "3"},
		{"gen_ai_client_token_usage_sum{" + stableFF + "," + op + `,gen_ai_token_type="output"}`, "317"},
		{"gen_ai_client_token_usage_bucket{" + stableFF + "," + op + `,gen_ai_token_type="output",le="4"}`, "0"},
		{"gen_ai_client_token_usage_bucket{" + stableFF + "," + op + `,gen_ai_token_type="output",le="16"}`, "2"},
		{"gen_ai_client_token_usage_bucket{" + stableFF + "," + op + `,gen_ai_token_type="output",le="256"}`, "2"},
		{"gen_ai_client_token_usage_bucket{" + stableFF + "," + op + `,gen_ai_token_type="output",le="1024"}`, "3"},
		{`gen_ai_client_operation_duration_seconds_count{error_type="",` + stableFF + "," + op + "}", "3"},
		{`gen_ai_client_operation_duration_seconds_bucket{error_type="",` + stableFF + "," + op + `,le="+Inf"}`, "3"},
		{`gen_ai_client_operation_duration_seconds_count{error_type="500",` + canaryFF + "," + op + "}", "1"},
	} {
		if got, ok := s[c.series]; !ok || got != c.want {
			t.Errorf("%s = %q (present %v); want %s\n%s", c.series, got, ok, c.want, genAISeries(s))
		}
	}
	// The failed call has a duration but no tokens; a success has no
	// error_type but a duration.
	for k := range s {
		if strings.HasPrefix(k, "gen_ai_client_token_usage") && strings.Contains(k, canaryFF) {
			t.Errorf("token usage of the failed call: %s", k)
		}
		if strings.HasPrefix(k, "gen_ai_client_operation_duration_seconds") && strings.Contains(k, canaryFF) && !strings.Contains(k, `error_type="500"`) {
			t.Errorf("the 500 recorded without its error_type: %s", k)
		}
	}
}

// clockTool is a tool that always answers "noon".
type clockTool struct{}

func (clockTool) Spec() agent.ToolSpec {
	return agent.ToolSpec{Name: "clock", Description: "the time", Parameters: []byte(`{"type":"object","properties":{}}`)}
}

func (clockTool) Run(context.Context, agent.Call) (string, error) { return "noon", nil }

// TestMeter: the pool's Meter hook feeds SessionCall and passes Admit and
// Called on to the token meter.
func TestMeter(t *testing.T) {
	m := metrics.New()
	h := m.Handler(metrics.Sources{})
	next := &fakeMeter{refuse: session.ErrOverBudget}
	meter := m.Meter(next)
	sum := session.Summary{Tenant: "acme", Model: "gpt-5"}
	if err := meter.Admit(sum); err != session.ErrOverBudget {
		t.Errorf("Admit = %v; want the next meter's refusal", err)
	}
	meter.Called(sum, agent.LLMCall{Model: "gpt-5", Duration: time.Second, Usage: agent.Usage{PromptTokens: 10, CompletionTokens: 2}})
	if next.called != 1 {
		t.Errorf("the next meter saw %d calls; want 1", next.called)
	}
	s := samples(t, scrape(t, h))
	if got := s[`gen_ai_client_operation_duration_seconds_count{error_type="",`+ff("stable")+`,gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-5"}`]; got != "1" {
		t.Errorf("duration count = %q; want 1\n%s", got, genAISeries(s))
	}
	if err := m.Meter(nil).Admit(sum); err != nil {
		t.Errorf("Admit without a next meter = %v; want nil", err)
	}
	m.Meter(nil).Called(sum, agent.LLMCall{Model: "gpt-5"}) // no panic
}

type fakeMeter struct {
	refuse error
	called int
}

func (f *fakeMeter) Admit(session.Summary) error           { return f.refuse }
func (f *fakeMeter) Called(session.Summary, agent.LLMCall) { f.called++ }
