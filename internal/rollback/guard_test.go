package rollback_test

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
)

// counts is one turn's numbers: tool calls, tool failures, LLM calls, LLM
// 5xx, tokens.
type counts [5]int

func (c counts) sample(variant string) (rollback.Sample, [5]string) {
	return turn(variant, c[0], c[1], c[2], c[3], c[4])
}

// judged runs rounds of a stable turn then a variant turn (each while it
// has turns left) through a new guard, then closes it: every halt it asked
// for has then been served, so what is halted is final without waiting.
func judged(t *testing.T, guard string, stable counts, stableTurns int, variant counts, variantTurns int) (*env, *rollback.Guard, *observer.ObservedLogs) {
	t.Helper()
	e := newEnv(t, `{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"canary","value":"gpt-5","percent":10}]},"guard":`+guard+`}`)
	core, logs := observer.New(zapcore.InfoLevel)
	g := rollback.NewGuard(e.h, zap.New(core))
	for i := range max(stableTurns, variantTurns) {
		if i < stableTurns {
			g.Observe(stable.sample(""))
		}
		if i < variantTurns {
			g.Observe(variant.sample("canary"))
		}
	}
	g.Close()
	return e, g, logs
}

// TestGuardComparesWithControl: tool failures and LLM 5xx are judged
// against stable over the same stretch of turns (by a ratio and a minimum
// difference) and against a ceiling that an outage on stable too excuses.
// min_samples is 20 and the ceilings are the defaults (10 % tool
// failures, 5 % LLM 5xx); the margins are the defaults (×2 and +5 points
// for tool failures, ×2 and +2 points for LLM 5xx).
func TestGuardComparesWithControl(t *testing.T) {
	tests := []struct {
		name                      string
		guard                     string
		stable                    counts
		stableTurns               int
		variant                   counts
		variantTurns              int
		wantHalt                  []string // in the reason; nil: not halted
		wantReported              []string // signals
		wantRule                  string   // details["rule"] of the halt
		wantControlTurnsInDetails int
	}{
		{name: "LLM outage on both: reported, not halted",
			stable: counts{0, 0, 2, 1, 1000}, stableTurns: 40, variant: counts{0, 0, 2, 1, 1000}, variantTurns: 40,
			wantReported: []string{rollback.SignalLLM5xx}},
		{name: "tool backend down for both: reported, not halted",
			stable: counts{4, 2, 2, 0, 1000}, stableTurns: 40, variant: counts{4, 3, 2, 0, 1000}, variantTurns: 40,
			wantReported: []string{rollback.SignalToolFailures}},
		{name: "tool failures 3x stable's, under the ceiling: halted",
			stable: counts{100, 3, 2, 0, 1000}, stableTurns: 40, variant: counts{100, 9, 2, 0, 1000}, variantTurns: 40,
			wantHalt: []string{"tool failure rate 9.0% vs stable 3.0% (margin ×2, min +5 pts) over the variant's last 20 turns (180 of 2000 tool calls)",
				"stable's 20 turns of the same stretch (60 of 2000)"},
			wantRule: "control", wantControlTurnsInDetails: 20},
		{name: "LLM 5xx 4x stable's, under the ceiling: halted",
			stable: counts{0, 0, 100, 1, 1000}, stableTurns: 40, variant: counts{0, 0, 100, 4, 1000}, variantTurns: 40,
			wantHalt: []string{"LLM 5xx rate 4.0% vs stable 1.0% (margin ×2, min +2 pts)"}, wantRule: "control", wantControlTurnsInDetails: 20},
		{name: "slightly worse, within the ratio: not halted",
			stable: counts{100, 3, 100, 1, 1000}, stableTurns: 40, variant: counts{100, 5, 100, 2, 1000}, variantTurns: 40},
		{name: "4x worse but within the minimum difference: not halted",
			stable: counts{200, 1, 200, 0, 1000}, stableTurns: 40, variant: counts{200, 4, 200, 3, 1000}, variantTurns: 40},
		{name: "margins from canary.json",
			guard:  `{"min_samples":20,"window":50,"tool_failure_ratio":1.2,"tool_failure_min_delta":0.01}`,
			stable: counts{100, 3, 2, 0, 1000}, stableTurns: 40, variant: counts{100, 5, 2, 0, 1000}, variantTurns: 40,
			wantHalt: []string{"tool failure rate 5.0% vs stable 3.0% (margin ×1.2, min +1 pts)"}, wantRule: "control", wantControlTurnsInDetails: 20},
		{name: "control with too few turns: no comparison",
			stable: counts{100, 0, 2, 0, 1000}, stableTurns: 5, variant: counts{100, 9, 2, 0, 1000}, variantTurns: 40},
		{name: "control with too few turns: the ceiling alone halts",
			stable: counts{0, 0, 2, 1, 1000}, stableTurns: 5, variant: counts{0, 0, 2, 1, 1000}, variantTurns: 40,
			wantHalt: []string{"LLM 5xx rate 50.0% (20 of 40 calls) over the variant's last 20 turns exceeds the ceiling 5.0%",
				"stable has 4 turns over the same stretch, fewer than min_samples 20: only the ceiling applies"},
			wantRule: "ceiling", wantControlTurnsInDetails: 4},
		{name: "over the ceiling, stable is not: halted",
			stable: counts{0, 0, 2, 0, 1000}, stableTurns: 40, variant: counts{0, 0, 2, 1, 1000}, variantTurns: 40,
			wantHalt: []string{"LLM 5xx rate 50.0% (20 of 40 calls) over the variant's last 20 turns exceeds the ceiling 5.0%; stable 0.0% (0 of 40) over the same stretch (20 turns)"},
			wantRule: "ceiling", wantControlTurnsInDetails: 20},
		{name: "outage on both, the variant far worse: halted by the comparison",
			stable: counts{0, 0, 10, 1, 1000}, stableTurns: 40, variant: counts{0, 0, 10, 6, 1000}, variantTurns: 40,
			wantHalt: []string{"LLM 5xx rate 60.0% vs stable 10.0%"}, wantRule: "control", wantControlTurnsInDetails: 20,
			// Reported too until the halted variant's window is forgotten
			// (Configure, which this test does not call).
			wantReported: []string{rollback.SignalLLM5xx}},
		{name: "tokens are still judged against the control's window",
			stable: counts{1, 0, 2, 0, 1000}, stableTurns: 40, variant: counts{1, 0, 2, 0, 2000}, variantTurns: 40,
			wantHalt: []string{"2000 tokens per turn over the variant's last 20 turns is 2.00× the stable control's 1000 (last 20 turns)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			guard := tc.guard
			if guard == "" {
				guard = `{"min_samples":20,"window":50}`
			}
			e, g, _ := judged(t, guard, tc.stable, tc.stableTurns, tc.variant, tc.variantTurns)
			p, v := e.h.Current()
			switch {
			case tc.wantHalt == nil && p.Halted(canary.Model, "canary"):
				t.Fatalf("halted: %s", v.Reason)
			case tc.wantHalt != nil && !p.Halted(canary.Model, "canary"):
				t.Fatalf("not halted (reported %+v); want a halt citing %q", g.Reported(), tc.wantHalt)
			case tc.wantHalt != nil:
				for _, w := range tc.wantHalt {
					if !strings.Contains(v.Reason, w) {
						t.Errorf("reason = %q; want %q", v.Reason, w)
					}
				}
				if tc.wantRule != "" && (v.Details["rule"] != tc.wantRule || fmt.Sprint(v.Details["control_turns"]) != fmt.Sprint(tc.wantControlTurnsInDetails)) {
					t.Errorf("details = %v; want rule %q, control_turns %d", v.Details, tc.wantRule, tc.wantControlTurnsInDetails)
				}
			}
			var got []string
			for _, r := range g.Reported() {
				if r.Dimension != "model" || r.Variant != "canary" || r.ControlRate <= r.Ceiling || r.VariantRate <= r.Ceiling || r.VariantTurns < 20 || r.ControlTurns < 20 {
					t.Errorf("reported %+v; want model/canary with both rates over the ceiling", r)
				}
				got = append(got, r.Signal)
			}
			if strings.Join(got, ",") != strings.Join(tc.wantReported, ",") {
				t.Errorf("reported %q; want %q", got, tc.wantReported)
			}
		})
	}
}

// TestGuardReportsAnOutageOnce: an outage on stable and the variant is
// logged once when it starts and once when it ends, not at every turn; the
// variant is not halted while both recover, whichever crosses back under the
// ceiling first; a second outage is a second report.
func TestGuardReportsAnOutageOnce(t *testing.T) {
	e := newEnv(t, `{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"canary","value":"gpt-5","percent":10}]},"guard":{"min_samples":20,"window":50}}`)
	core, logs := observer.New(zapcore.InfoLevel)
	g := rollback.NewGuard(e.h, zap.New(core))
	closed := false
	t.Cleanup(func() {
		if !closed {
			g.Close()
		}
	})
	outage, healthy := counts{0, 0, 2, 1, 1000}, counts{0, 0, 2, 0, 1000}
	rounds := func(n, lead int, c counts) {
		for range lead { // stable, busier, sees the change first
			g.Observe(c.sample(""))
		}
		for range n {
			g.Observe(c.sample(""))
			g.Observe(c.sample("canary"))
		}
	}
	started := func() int { return logs.FilterMessageSnippet("stable is over the guard's ceiling too").Len() }
	ended := func() int { return logs.FilterMessageSnippet("control breach reported for a variant is over").Len() }
	steps := []struct {
		name           string
		rounds, lead   int
		turn           counts
		reported       int
		started, ended int
	}{
		{"outage", 40, 0, outage, 1, 1, 0},
		{"recovery", 100, 5, healthy, 0, 1, 1},
		{"second outage", 40, 0, outage, 1, 2, 1},
	}
	for _, st := range steps {
		rounds(st.rounds, st.lead, st.turn)
		if r := g.Reported(); len(r) != st.reported {
			t.Errorf("after the %s: reported %+v; want %d", st.name, r, st.reported)
		}
		if started() != st.started || ended() != st.ended {
			t.Errorf("after the %s: %d start and %d end log lines; want %d and %d", st.name, started(), ended(), st.started, st.ended)
		}
	}
	g.Close()
	closed = true
	if p, v := e.h.Current(); p.Halted(canary.Model, "canary") {
		t.Errorf("an outage on both halted the variant: %s", v.Reason)
	}
}
