package operate_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/probe"
	"github.com/agentd/agentd/internal/usage"
)

// FuzzFiles feeds arbitrary documents to the parsers of budgets.json,
// alerts.json and probes.json: none panics, and a document one accepts
// gives values within the documented ranges.
func FuzzFiles(f *testing.F) {
	for _, seed := range []string{
		`{}`, ``, `{"default": {"daily_tokens": 1000}, "tenants": {"acme": {"daily_tokens": 5}}, "users": {"acme/alice": {}}}`,
		`{"daily_tokens_ratio": 1.5, "session_tokens": 50000, "tool_failure_rate": 0.1, "llm_5xx_rate": 0.05, "min_calls": 20, "window": "15m", "keep_resolved": "24h"}`,
		`{"every": "1h", "timeout": "2m", "prompts": [{"name": "capital", "content": "What is the capital of France?"}]}`,
		`{"window": "1ns"}`, `{"every": "-1h"}`, `{"tenants": {"../x": {"daily_tokens": -1}}}`, `{"prompts": [{"name": "A B"}]}`, `[`, `null`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if b, err := usage.Parse(data); err == nil {
			for name, tb := range b.Tenants {
				if tb.DailyTokens < 0 {
					t.Fatalf("budgets: tenant %q accepted with %d", name, tb.DailyTokens)
				}
			}
		}
		if r, err := alerts.Parse(data); err == nil {
			if r.ToolFailureRate < 0 || r.ToolFailureRate >= 1 || r.LLM5xxRate < 0 || r.LLM5xxRate >= 1 || r.Window <= 0 {
				raw, _ := json.Marshal(r)
				t.Fatalf("alerts: accepted out of range: %s", raw)
			}
		}
		if c, err := probe.Parse(data); err == nil && len(c.Prompts) > 0 && (c.Every.D() < time.Minute || c.Timeout.D() <= 0) {
			t.Fatalf("probes: accepted every %v, timeout %v", c.Every, c.Timeout)
		}
	})
}
