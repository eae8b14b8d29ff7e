package operate_test

import (
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/usage"
)

// BenchmarkPerLLMCall is what every LLM call of a turn now costs on its
// path: the budget check before it and, after it, the usage counters
// (total, tenant, user, five variant scopes, the session) and the two
// OpenTelemetry GenAI histograms ("genai" alone, then with the meter).
// Writes to bbolt happen on the meter's own goroutine once a second, off
// this path.
func BenchmarkPerLLMCall(b *testing.B) {
	db, err := boltdb.Open(filepath.Join(b.TempDir(), "agentd.db"), boltdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	budgets := usage.Budgets{}
	if budgets, err = usage.Parse([]byte(`{"default": {"daily_tokens": 1000000000000000}, "users": {"acme/alice": {"daily_tokens": 1000000000000000}}}`)); err != nil {
		b.Fatal(err)
	}
	meter, err := usage.New(usage.Config{Store: db.Usage(), Budgets: func() usage.Budgets { return budgets }, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { meter.Close() })
	met := metrics.New()
	sum := session.Summary{ID: "sess_0123456789abcdef0123456789abcdef", Tenant: "acme", User: "alice", Model: "m",
		Assignment: session.Assignment{Model: "m", Skills: "default", Rules: "v1", Sandbox: "ws", Instructions: "AGENTAO.md",
			Variants: map[string]string{"model": "canary"}}}
	call := agent.LLMCall{Model: "m", Duration: 800 * time.Millisecond, Usage: agent.Usage{PromptTokens: 1200, CompletionTokens: 80}}
	for _, bc := range []struct {
		name  string
		meter session.Meter
	}{{"genai", met.Meter(nil)}, {"meter+genai", met.Meter(meter)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.meter.Admit(sum); err != nil {
					b.Fatal(err)
				}
				bc.meter.Called(sum, call)
			}
		})
	}
}
