package rollback

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/canary"
)

// Sample is one finished turn as the guard sees it.
type Sample struct {
	// Variants names, per dimension, the variant the turn ran on ("" for
	// the stable value: the control).
	Variants     canary.ByDimension
	ToolCalls    int
	ToolFailures int
	LLMCalls     int
	LLM5xx       int
	Tokens       int
}

// Guard watches every live variant against its dimension's stable control
// over a sliding window of turns, and halts a variant by itself when it
// breaches a threshold: tool failure rate, LLM 5xx rate (absolute), or
// tokens per turn (relative to the control), each only once the variant has
// min_samples turns in its window (and, for tokens, the control too).
//
// Observe is cheap and never blocks on I/O: a breach is handed to the
// guard's own goroutine, which records the halt as a new version (actor
// "auto", the numbers in the reason) and serves it. Close stops it.
type Guard struct {
	h   *History
	log *zap.Logger
	now func() time.Time

	mu      sync.Mutex
	cfg     canary.Guard
	windows map[gkey]*window
	values  map[gkey]string // the value each variant's window measured
	pending map[gkey]bool   // halts requested, not yet applied

	halts chan halt
	done  chan struct{}
}

type gkey struct {
	dim     canary.Dimension
	variant string // "" = the dimension's control
}

type halt struct {
	key     gkey
	reason  string
	details map[string]any
	at      time.Time // when the breaching turn was observed
}

// window is a ring of the last n samples of one key, with running sums.
type window struct {
	ring                       []Sample
	next, n                    int
	tools, fails, llm, e5, tok int
}

func (w *window) push(s Sample) {
	if w.n == len(w.ring) {
		old := w.ring[w.next]
		w.tools -= old.ToolCalls
		w.fails -= old.ToolFailures
		w.llm -= old.LLMCalls
		w.e5 -= old.LLM5xx
		w.tok -= old.Tokens
	} else {
		w.n++
	}
	w.ring[w.next] = s
	w.next = (w.next + 1) % len(w.ring)
	w.tools += s.ToolCalls
	w.fails += s.ToolFailures
	w.llm += s.LLMCalls
	w.e5 += s.LLM5xx
	w.tok += s.Tokens
}

// NewGuard returns a guard that halts through h. It reads its thresholds
// from the served policy; call Configure when the policy changes.
func NewGuard(h *History, logger *zap.Logger) *Guard {
	if logger == nil {
		logger = zap.NewNop()
	}
	g := &Guard{
		h: h, log: logger.Named("guard"), now: time.Now,
		windows: map[gkey]*window{}, values: map[gkey]string{}, pending: map[gkey]bool{},
		halts: make(chan halt, 64), done: make(chan struct{}),
	}
	p, _ := h.Current()
	g.Configure(p)
	go g.run()
	return g
}

// Configure adopts a policy's thresholds and forgets the windows of
// variants that are gone, halted or now point at another value (their past
// no longer describes them).
func (g *Guard) Configure(p *canary.Policy) {
	g.mu.Lock()
	defer g.mu.Unlock()
	cfg := p.Guard()
	resize := cfg.Window != g.cfg.Window
	g.cfg = cfg
	for k := range g.windows {
		gone := false
		if k.variant != "" {
			v, ok := p.Variant(k.dim, k.variant)
			gone = !ok || p.Halted(k.dim, k.variant) || v.Value != g.values[k]
		}
		if resize || gone {
			delete(g.windows, k)
			delete(g.pending, k)
			delete(g.values, k)
		}
	}
}

// Observe records a finished turn and checks the variants it ran on.
// values are the turn's values per dimension (a variant's window is reset
// when the variant is pointed at another value).
func (g *Guard) Observe(s Sample, values canary.ByDimension) {
	at := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for d, variant := range s.Variants {
		k := gkey{canary.Dimension(d), variant}
		w := g.windows[k]
		if w == nil || (variant != "" && g.values[k] != values[d]) {
			w = &window{ring: make([]Sample, g.cfg.Window)}
			g.windows[k] = w
			g.values[k] = values[d]
			delete(g.pending, k)
		}
		w.push(s)
	}
	for d, variant := range s.Variants {
		if variant == "" {
			continue
		}
		k := gkey{canary.Dimension(d), variant}
		if g.pending[k] {
			continue
		}
		reason, details := g.breachLocked(k)
		if reason == "" {
			continue
		}
		if g.cfg.Disabled {
			g.log.Warn("guard threshold breached; automatic halting is disabled", zap.String("dimension", k.dim.String()),
				zap.String("variant", k.variant), zap.String("breach", reason))
			continue
		}
		g.pending[k] = true
		select {
		case g.halts <- halt{key: k, reason: reason, details: details, at: at}:
		default:
			delete(g.pending, k) // the halter is backed up; the next turn retries
		}
	}
}

// breachLocked returns why k breaches, or "".
func (g *Guard) breachLocked(k gkey) (string, map[string]any) {
	w := g.windows[k]
	c := g.windows[gkey{k.dim, ""}]
	cfg := g.cfg
	if w == nil || w.n < cfg.MinSamples {
		return "", nil
	}
	details := map[string]any{
		"dimension": k.dim.String(), "variant": k.variant, "window_turns": w.n,
		"tool_calls": w.tools, "tool_failures": w.fails, "llm_calls": w.llm, "llm_5xx": w.e5,
		"tokens_per_turn": float64(w.tok) / float64(w.n),
	}
	var ctl string
	if c != nil && c.n > 0 {
		details["control_turns"] = c.n
		details["control_tokens_per_turn"] = float64(c.tok) / float64(c.n)
		ctl = fmt.Sprintf("; stable control over its last %d turns: tool failures %s, LLM 5xx %s", c.n, rate(c.fails, c.tools), rate(c.e5, c.llm))
	}
	if w.tools > 0 {
		if r := float64(w.fails) / float64(w.tools); r > cfg.ToolFailureRate {
			details["breach"] = "tool_failure_rate"
			return fmt.Sprintf("tool failure rate %.1f%% (%d of %d tool calls) over the variant's last %d turns exceeds %.1f%%%s",
				100*r, w.fails, w.tools, w.n, 100*cfg.ToolFailureRate, ctl), details
		}
	}
	if w.llm > 0 {
		if r := float64(w.e5) / float64(w.llm); r > cfg.LLM5xxRate {
			details["breach"] = "llm_5xx_rate"
			return fmt.Sprintf("LLM 5xx rate %.1f%% (%d of %d calls) over the variant's last %d turns exceeds %.1f%%%s",
				100*r, w.e5, w.llm, w.n, 100*cfg.LLM5xxRate, ctl), details
		}
	}
	if c != nil && c.n >= cfg.MinSamples && c.tok > 0 {
		vt, ct := float64(w.tok)/float64(w.n), float64(c.tok)/float64(c.n)
		if vt > cfg.TokenRatio*ct {
			details["breach"] = "token_ratio"
			return fmt.Sprintf("%.0f tokens per turn over the variant's last %d turns is %.2f× the stable control's %.0f (last %d turns), above %.2f×",
				vt, w.n, vt/ct, ct, c.n, cfg.TokenRatio), details
		}
	}
	return "", nil
}

func rate(n, of int) string {
	if of == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func (g *Guard) run() {
	defer close(g.done)
	for h := range g.halts {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		v, changed, err := g.h.Halt(ctx, h.key.dim, h.key.variant, ActorAuto, "guard: "+h.reason, h.details)
		cancel()
		took := g.now().Sub(h.at)
		switch {
		case err != nil:
			g.log.Error("guard could not halt a variant", zap.String("dimension", h.key.dim.String()), zap.String("variant", h.key.variant), zap.Error(err))
			g.mu.Lock()
			delete(g.pending, h.key)
			g.mu.Unlock()
		case changed:
			g.log.Error("guard halted a canary variant", zap.String("dimension", h.key.dim.String()), zap.String("variant", h.key.variant),
				zap.Int("version", v.N), zap.String("reason", h.reason), zap.Duration("breach_to_halt", took))
		}
	}
}

// Close stops the guard after the halts already requested.
func (g *Guard) Close() {
	close(g.halts)
	<-g.done
}

// Stats is a window's view for status pages.
type Stats struct {
	Dimension     string  `json:"dimension"`
	Variant       string  `json:"variant"` // "stable" for the control
	Turns         int     `json:"turns"`
	ToolCalls     int     `json:"tool_calls"`
	ToolFailures  int     `json:"tool_failures"`
	LLMCalls      int     `json:"llm_calls"`
	LLM5xx        int     `json:"llm_5xx"`
	TokensPerTurn float64 `json:"tokens_per_turn"`
}

// Stats returns every window's sums.
func (g *Guard) Stats() []Stats {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []Stats
	for _, dim := range canary.Dimensions() {
		for _, k := range sortedKeys(g.windows) {
			w := g.windows[k]
			if k.dim != dim || w.n == 0 {
				continue
			}
			name := k.variant
			if name == "" {
				name = "stable"
			}
			out = append(out, Stats{Dimension: dim.String(), Variant: name, Turns: w.n, ToolCalls: w.tools, ToolFailures: w.fails,
				LLMCalls: w.llm, LLM5xx: w.e5, TokensPerTurn: float64(w.tok) / float64(w.n)})
		}
	}
	return out
}

func sortedKeys(m map[gkey]*window) []gkey {
	keys := make([]gkey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b gkey) int {
		if a.dim != b.dim {
			return int(a.dim) - int(b.dim)
		}
		return strings.Compare(a.variant, b.variant)
	})
	return keys
}
