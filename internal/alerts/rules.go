package alerts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Rules are the thresholds of the built-in alerts, from
// .agentao/alerts.json. A threshold of 0 turns its alert off.
type Rules struct {
	// DailyTokensRatio fires AgentdDailyTokensHigh when today's tokens
	// exceed this many times the mean daily tokens of the 7 days before.
	DailyTokensRatio float64
	// SessionTokens fires AgentdSessionTokensHigh for a session over this
	// many tokens.
	SessionTokens int64
	// ToolFailureRate and LLM5xxRate fire AgentdToolFailureRateHigh and
	// AgentdLLM5xxRateHigh when failures/calls over Window exceed them.
	ToolFailureRate float64
	LLM5xxRate      float64
	// MinCalls is how many calls a window needs before a rate alert is
	// judged (fewer: no alert, and a firing one resolves).
	MinCalls int64
	// Window is the span of the rate alerts.
	Window time.Duration
	// KeepResolved is how long a resolved alert stays listed.
	KeepResolved time.Duration
}

// Defaults of Rules: what an absent field or an absent alerts.json means.
const (
	DefaultDailyTokensRatio = 1.5
	DefaultSessionTokens    = 50000
	DefaultToolFailureRate  = 0.10
	DefaultLLM5xxRate       = 0.05
	DefaultMinCalls         = 20
	DefaultWindow           = 15 * time.Minute
	DefaultKeepResolved     = 24 * time.Hour
)

// Bounds of the durations: the usage counters behind the rate alerts are
// kept in 5-minute slots for 24 hours.
const (
	minWindow       = 5 * time.Minute
	maxWindow       = 24 * time.Hour
	maxKeepResolved = 30 * 24 * time.Hour
)

// DefaultRules returns the rules of an absent or empty alerts.json.
func DefaultRules() Rules {
	return Rules{
		DailyTokensRatio: DefaultDailyTokensRatio,
		SessionTokens:    DefaultSessionTokens,
		ToolFailureRate:  DefaultToolFailureRate,
		LLM5xxRate:       DefaultLLM5xxRate,
		MinCalls:         DefaultMinCalls,
		Window:           DefaultWindow,
		KeepResolved:     DefaultKeepResolved,
	}
}

// document is alerts.json as written; pointers tell absent from 0.
type document struct {
	DailyTokensRatio *float64 `json:"daily_tokens_ratio"`
	SessionTokens    *int64   `json:"session_tokens"`
	ToolFailureRate  *float64 `json:"tool_failure_rate"`
	LLM5xxRate       *float64 `json:"llm_5xx_rate"`
	MinCalls         *int64   `json:"min_calls"`
	Window           *string  `json:"window"`
	KeepResolved     *string  `json:"keep_resolved"`
}

const fieldNames = "daily_tokens_ratio, session_tokens, tool_failure_rate, llm_5xx_rate, min_calls, window, keep_resolved"

// Parse reads alerts.json. nil or empty data (no file) is DefaultRules.
// Every field is optional; an unknown field, a negative threshold, a rate
// of 1 or more, or a window outside [5m, 24h] is an error naming the field.
func Parse(data []byte) (Rules, error) {
	r := DefaultRules()
	if len(bytes.TrimSpace(data)) == 0 {
		return r, nil
	}
	var doc document
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		if s, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return Rules{}, fmt.Errorf("unknown field %s (the fields are %s)", s, fieldNames)
		}
		return Rules{}, fmt.Errorf("not a valid alerts document: %w", err)
	}
	if dec.More() {
		return Rules{}, errors.New("data after the JSON object")
	}
	var errs []error
	if v := doc.DailyTokensRatio; v != nil {
		if *v < 0 {
			errs = append(errs, fmt.Errorf("daily_tokens_ratio %g: must be 0 (off) or more", *v))
		}
		r.DailyTokensRatio = *v
	}
	if v := doc.SessionTokens; v != nil {
		if *v < 0 {
			errs = append(errs, fmt.Errorf("session_tokens %d: must be 0 (off) or more", *v))
		}
		r.SessionTokens = *v
	}
	for _, f := range []struct {
		name string
		in   *float64
		out  *float64
	}{{"tool_failure_rate", doc.ToolFailureRate, &r.ToolFailureRate}, {"llm_5xx_rate", doc.LLM5xxRate, &r.LLM5xxRate}} {
		if f.in == nil {
			continue
		}
		if *f.in < 0 || *f.in >= 1 {
			errs = append(errs, fmt.Errorf("%s %g: must be a fraction from 0 (off) to below 1 (0.10 is 10 %%)", f.name, *f.in))
		}
		*f.out = *f.in
	}
	if v := doc.MinCalls; v != nil {
		if *v < 0 {
			errs = append(errs, fmt.Errorf("min_calls %d: must be 0 or more", *v))
		}
		r.MinCalls = *v
	}
	if v := doc.Window; v != nil {
		d, err := time.ParseDuration(*v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("window %q: not a duration (like \"15m\")", *v))
		case d < minWindow || d > maxWindow:
			errs = append(errs, fmt.Errorf("window %q: must be from 5m to 24h (the rate counters are kept in 5-minute slots for a day)", *v))
		}
		r.Window = d
	}
	if v := doc.KeepResolved; v != nil {
		d, err := time.ParseDuration(*v)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("keep_resolved %q: not a duration (like \"24h\")", *v))
		case d < 0 || d > maxKeepResolved:
			errs = append(errs, fmt.Errorf("keep_resolved %q: must be from 0 to 720h", *v))
		}
		r.KeepResolved = d
	}
	if err := errors.Join(errs...); err != nil {
		return Rules{}, err
	}
	return r, nil
}
