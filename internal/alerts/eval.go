package alerts

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/usage"
)

// baselineDays is how many days before today the daily-token alert
// averages (days without use count 0).
const baselineDays = 7

// sessionQuiet is how long a session must have had no LLM call for its
// AgentdSessionTokensHigh to resolve.
const sessionQuiet = time.Hour

// conditions returns every alert whose condition holds at now, by ident,
// without Since.
func (a *Alerts) conditions(now time.Time, r Rules) map[string]Alert {
	out := map[string]Alert{}
	add := func(name string, s Scope, value, threshold float64, summary string) {
		out[ident(name, s)] = Alert{Name: name, Severity: Severity(name), Scope: s, Value: round(value),
			Threshold: threshold, Summary: summary, Node: a.cfg.Node}
	}
	src := a.cfg.Source

	if r.DailyTokensRatio > 0 {
		local := now.In(a.cfg.Zone)
		y, m, d := local.Date()
		today := time.Date(y, m, d, 0, 0, 0, 0, a.cfg.Zone)
		for _, sc := range scopes(src.Active(today), "tenant") {
			used := src.Day(sc, now).Tokens()
			if used == 0 {
				continue
			}
			var sum int64
			for i := 1; i <= baselineDays; i++ { // noon: a day of a DST change is still that day
				sum += src.Day(sc, time.Date(y, m, d-i, 12, 0, 0, 0, a.cfg.Zone)).Tokens()
			}
			mean := float64(sum) / baselineDays
			if mean == 0 { // no baseline: a new tenant's first day is not creep
				continue
			}
			if ratio := float64(used) / mean; ratio > r.DailyTokensRatio {
				s := scopeOf(sc)
				add(DailyTokensHigh, s, ratio, r.DailyTokensRatio, fmt.Sprintf(
					"%s used %d tokens today (%s), %.2f× the mean of the %d days before (%.0f a day); threshold %g×",
					s, used, today.Format("2006-01-02"), ratio, baselineDays, mean, r.DailyTokensRatio))
			}
		}
	}

	if r.SessionTokens > 0 {
		for _, su := range src.Sessions(now.Add(-sessionQuiet)) {
			if su.Tenant == session.ProbeTenant || su.Last.Before(now.Add(-sessionQuiet)) || su.Tokens <= r.SessionTokens {
				continue
			}
			s := Scope{Tenant: su.Tenant, Session: su.Session}
			add(SessionTokensHigh, s, float64(su.Tokens), float64(r.SessionTokens), fmt.Sprintf(
				"%s has used %d tokens (threshold %d): possibly stuck in a loop; its last LLM call was at %s",
				s, su.Tokens, r.SessionTokens, su.Last.UTC().Format(time.RFC3339)))
		}
	}

	if r.ToolFailureRate > 0 || r.LLM5xxRate > 0 {
		since := now.Add(-r.Window)
		minCalls := max(r.MinCalls, 1)
		for _, sc := range scopes(src.Active(since), "tenant", "variant") {
			c := src.Window(sc, since)
			s := scopeOf(sc)
			if r.ToolFailureRate > 0 && c.ToolCalls >= minCalls {
				if rate := float64(c.ToolFailures) / float64(c.ToolCalls); rate > r.ToolFailureRate {
					add(ToolFailureRateHigh, s, rate, r.ToolFailureRate, fmt.Sprintf(
						"%s: %d of %d tool calls failed in the last %s (%.1f %%; threshold %g %%)",
						s, c.ToolFailures, c.ToolCalls, short(r.Window), 100*rate, 100*r.ToolFailureRate))
				}
			}
			if r.LLM5xxRate > 0 && c.LLMCalls >= minCalls {
				if rate := float64(c.LLM5xx) / float64(c.LLMCalls); rate > r.LLM5xxRate {
					add(LLM5xxRateHigh, s, rate, r.LLM5xxRate, fmt.Sprintf(
						"%s: %d of %d LLM calls answered 5xx in the last %s (%.1f %%; threshold %g %%)",
						s, c.LLM5xx, c.LLMCalls, short(r.Window), 100*rate, 100*r.LLM5xxRate))
				}
			}
		}
	}
	return out
}

// scopes returns the total and the active scopes of the given kinds, each
// once, without the synthetic probe tenant and without the stable "variant"
// of each dimension: a dimension's stable cohort is most of the service,
// which the total already watches, and one outage would otherwise fire
// once per dimension (the Prometheus rules watch non-stable variants only
// too).
func scopes(active []usage.Scope, kinds ...string) []usage.Scope {
	out := []usage.Scope{usage.Total()}
	seen := map[usage.Scope]bool{usage.Total(): true}
	for _, sc := range active {
		if seen[sc] || (sc.Kind() == "tenant" && sc.Name() == session.ProbeTenant) ||
			(sc.Kind() == "variant" && strings.HasSuffix(sc.Name(), "/stable")) {
			continue
		}
		for _, k := range kinds {
			if sc.Kind() == k {
				seen[sc] = true
				out = append(out, sc)
			}
		}
	}
	return out
}

// scopeOf is the Scope of an alert on a usage scope.
func scopeOf(sc usage.Scope) Scope {
	switch sc.Kind() {
	case "tenant":
		return Scope{Tenant: sc.Name()}
	case "variant":
		return Scope{Variant: sc.Name()}
	}
	return Scope{}
}

// short writes d as people do: "15m", "1h30m".
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// round keeps 4 decimals: values are for people and webhooks.
func round(v float64) float64 { return math.Round(v*1e4) / 1e4 }
