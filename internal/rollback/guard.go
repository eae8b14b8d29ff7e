package rollback

import (
	"cmp"
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
// and halts a variant by itself when it breaches, each only once the
// variant has min_samples turns in its window:
//
//   - tool failure rate and LLM 5xx rate against the control: the variant's
//     rate over its window is more than a ratio times stable's over the
//     same stretch of turns and more than a minimum above it (the control
//     needs min_samples turns in that stretch too, or only the ceiling
//     applies);
//   - the same rates against an absolute ceiling, unless stable is over the
//     ceiling too over the same stretch: then a shared dependency (the LLM
//     provider, a tool's backend) is failing, not the variant, and the
//     guard reports the condition (Reported, a log line when it starts and
//     when it ends) instead of halting, until the variant is back under
//     the ceiling;
//   - tokens per turn against the control's window (min_samples each).
//
// "The same stretch" is exact, not a second window of the same size: each
// turn in a variant's window remembers the control's running sums when it
// was observed, so the control's numbers are those of the turns it served
// since the oldest turn in the variant's window. A busy stable and a 1 %
// variant are then compared over the same time, and a past outage weighs on
// both alike. When stable served fewer than min_samples turns in that
// stretch (a young variant on half the traffic), its last min_samples turns
// stand in: they cover the stretch and reach a little before it.
//
// Observe is cheap and never blocks on I/O: a breach is handed to the
// guard's own goroutine, which records the halt as a new version (actor
// "auto", the numbers in the reason) and serves it. Close stops it.
type Guard struct {
	h   *History
	log *zap.Logger
	now func() time.Time

	mu       sync.Mutex
	cfg      canary.Guard
	windows  map[gkey]*window
	values   map[gkey]string // the value each variant's window measured
	pending  map[gkey]bool   // halts requested, not yet applied
	reported map[rkey]Reported

	halts chan halt
	done  chan struct{}
}

type gkey struct {
	dim     canary.Dimension
	variant string // "" = the dimension's control
}

// rkey names a reported condition: a variant and a signal.
type rkey struct {
	gkey
	signal string
}

type halt struct {
	key     gkey
	reason  string
	details map[string]any
	at      time.Time // when the breaching turn was observed
}

// The signals the guard rates against a ceiling and against the control
// (the "signal" of a Reported, and the "breach" of a halt's details).
const (
	SignalToolFailures = "tool_failure_rate"
	SignalLLM5xx       = "llm_5xx_rate"
)

// Signals returns the signals a control breach can be reported for.
func Signals() []string { return []string{SignalToolFailures, SignalLLM5xx} }

// counts are the sums of some turns.
type counts struct{ turns, tools, fails, llm, e5, tok int }

func countsOf(s Sample) counts {
	return counts{1, s.ToolCalls, s.ToolFailures, s.LLMCalls, s.LLM5xx, s.Tokens}
}

func (c counts) plus(o counts) counts {
	return counts{c.turns + o.turns, c.tools + o.tools, c.fails + o.fails, c.llm + o.llm, c.e5 + o.e5, c.tok + o.tok}
}

func (c counts) minus(o counts) counts {
	return counts{c.turns - o.turns, c.tools - o.tools, c.fails - o.fails, c.llm - o.llm, c.e5 - o.e5, c.tok - o.tok}
}

// window is a ring of the last turns of one key with their sum, and the
// sum of all the key's turns since the window was made.
type window struct {
	ring []counts
	// ctl holds, for each turn in the ring, the control's all just before
	// it: the control's all now minus that is what the control did over
	// the same stretch. Unused in the control's own window.
	ctl     []counts
	next, n int
	sum     counts
	all     counts
}

func newWindow(size int) *window {
	return &window{ring: make([]counts, size), ctl: make([]counts, size)}
}

func (w *window) push(c, ctlAll counts) {
	if w.n == len(w.ring) {
		w.sum = w.sum.minus(w.ring[w.next])
	} else {
		w.n++
	}
	w.ring[w.next], w.ctl[w.next] = c, ctlAll
	w.next = (w.next + 1) % len(w.ring)
	w.sum = w.sum.plus(c)
	w.all = w.all.plus(c)
}

// last returns the sum of the last n turns in the ring (n <= w.n).
func (w *window) last(n int) counts {
	var c counts
	for i := 1; i <= n; i++ {
		c = c.plus(w.ring[(w.next-i+len(w.ring))%len(w.ring)])
	}
	return c
}

// ctlAtOldest is the control's all just before the oldest turn in the ring.
func (w *window) ctlAtOldest() counts {
	return w.ctl[(w.next-w.n+len(w.ring))%len(w.ring)]
}

// NewGuard returns a guard that halts through h. It reads its thresholds
// from the served policy; call Configure when the policy changes.
func NewGuard(h *History, logger *zap.Logger) *Guard {
	if logger == nil {
		logger = zap.NewNop()
	}
	g := &Guard{
		h: h, log: logger.Named("guard"), now: time.Now,
		windows: map[gkey]*window{}, values: map[gkey]string{}, pending: map[gkey]bool{}, reported: map[rkey]Reported{},
		halts: make(chan halt, 64), done: make(chan struct{}),
	}
	p, _ := h.Current()
	g.Configure(p)
	go g.run()
	return g
}

// Configure adopts a policy's thresholds and forgets the windows of
// variants that are gone, halted or now point at another value (their past
// no longer describes them), and what was reported about them.
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
			g.reportLocked(k, nil, "the variant is halted, removed or changed, or the guard's window changed")
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
	c := countsOf(s)
	for d, variant := range s.Variants {
		k := gkey{canary.Dimension(d), variant}
		w := g.windows[k]
		if w == nil || (variant != "" && g.values[k] != values[d]) {
			w = newWindow(g.cfg.Window)
			g.windows[k] = w
			g.values[k] = values[d]
			delete(g.pending, k)
		}
		var ctlAll counts
		if ctl := g.windows[gkey{k.dim, ""}]; ctl != nil && variant != "" {
			ctlAll = ctl.all
		}
		w.push(c, ctlAll)
	}
	for d, variant := range s.Variants {
		if variant == "" {
			continue
		}
		k := gkey{canary.Dimension(d), variant}
		if g.pending[k] {
			continue
		}
		v := g.judgeLocked(k, at)
		g.reportLocked(k, v.reported, "the variant is no longer over the ceiling, or stable no longer is")
		if v.reason == "" {
			continue
		}
		if g.cfg.Disabled {
			g.log.Warn("guard threshold breached; automatic halting is disabled", zap.String("dimension", k.dim.String()),
				zap.String("variant", k.variant), zap.String("breach", v.reason))
			continue
		}
		g.pending[k] = true
		select {
		case g.halts <- halt{key: k, reason: v.reason, details: v.details, at: at}:
		default:
			delete(g.pending, k) // the halter is backed up; the next turn retries
		}
	}
}

// verdict is what the guard concludes about a variant after a turn.
type verdict struct {
	reason   string // why the variant must be halted; "" if it need not be
	details  map[string]any
	reported []Reported // ceiling breaches the control excuses
}

// signal is a rate judged against a ceiling and against the control.
type signal struct {
	name, label, unit string // SignalToolFailures, "tool failure rate", "tool calls"
	bad, of           func(counts) int
	ceiling           float64
	ratio, minDelta   float64
}

func (g *Guard) signalsLocked() []signal {
	cfg := g.cfg
	return []signal{
		{SignalToolFailures, "tool failure rate", "tool calls", func(c counts) int { return c.fails }, func(c counts) int { return c.tools },
			cfg.ToolFailureRate, cfg.ToolFailureRatio, cfg.ToolFailureMinDelta},
		{SignalLLM5xx, "LLM 5xx rate", "calls", func(c counts) int { return c.e5 }, func(c counts) int { return c.llm },
			cfg.LLM5xxRate, cfg.LLM5xxRatio, cfg.LLM5xxMinDelta},
	}
}

// judgeLocked tells whether k breaches and what to report about it.
func (g *Guard) judgeLocked(k gkey, at time.Time) verdict {
	w := g.windows[k]
	c := g.windows[gkey{k.dim, ""}]
	cfg := g.cfg
	if w == nil || w.sum.turns < cfg.MinSamples {
		return verdict{}
	}
	// span is what stable did over the variant's window (see Guard).
	var span counts
	if c != nil {
		span = c.all.minus(w.ctlAtOldest())
		if span.turns < cfg.MinSamples && c.n >= cfg.MinSamples {
			span = c.last(cfg.MinSamples)
		}
	}
	compare := span.turns >= cfg.MinSamples
	details := map[string]any{
		"dimension": k.dim.String(), "variant": k.variant, "window_turns": w.sum.turns,
		"tool_calls": w.sum.tools, "tool_failures": w.sum.fails, "llm_calls": w.sum.llm, "llm_5xx": w.sum.e5,
		"tokens_per_turn": float64(w.sum.tok) / float64(w.sum.turns),
		"control_turns":   span.turns, "control_tool_calls": span.tools, "control_tool_failures": span.fails,
		"control_llm_calls": span.llm, "control_llm_5xx": span.e5,
	}
	var v verdict
	for _, s := range g.signalsLocked() {
		n, of := s.bad(w.sum), s.of(w.sum)
		if of == 0 {
			continue
		}
		r := float64(n) / float64(of)
		cn, cof := s.bad(span), s.of(span)
		haveCtl := compare && cof > 0
		var cr float64
		var ctl string
		switch {
		case haveCtl:
			cr = float64(cn) / float64(cof)
			ctl = fmt.Sprintf("stable %.1f%% (%d of %d) over the same stretch (%d turns)", 100*cr, cn, cof, span.turns)
		case compare:
			ctl = fmt.Sprintf("stable made no %s over the same stretch (%d turns): only the ceiling applies", s.unit, span.turns)
		default:
			ctl = fmt.Sprintf("stable has %d turns over the same stretch, fewer than min_samples %d: only the ceiling applies", span.turns, cfg.MinSamples)
		}
		breach := func(rule, reason string) verdict {
			details["breach"], details["rule"], details["rate"], details["ceiling"] = s.name, rule, r, s.ceiling
			details["ratio"], details["min_delta"] = s.ratio, s.minDelta
			if haveCtl {
				details["control_rate"] = cr
			}
			v.reason, v.details = reason, details
			return v
		}
		if r > s.ceiling {
			// Once reported, a condition holds until the variant itself is
			// back under the ceiling: at the end of an outage both rates
			// fall together, and which crosses the ceiling first is noise.
			// A variant that stays bad after stable recovers is halted by
			// the comparison below.
			_, excused := g.reported[rkey{k, s.name}]
			if !haveCtl || cr <= s.ceiling && !excused {
				return breach("ceiling", fmt.Sprintf("%s %.1f%% (%d of %d %s) over the variant's last %d turns exceeds the ceiling %.1f%%; %s",
					s.label, 100*r, n, of, s.unit, w.sum.turns, 100*s.ceiling, ctl))
			}
			v.reported = append(v.reported, Reported{Dimension: k.dim.String(), Variant: k.variant, Signal: s.name,
				VariantRate: r, ControlRate: cr, Ceiling: s.ceiling, VariantTurns: w.sum.turns, ControlTurns: span.turns, Since: at})
		}
		// The comparison holds during an outage too: a variant much worse
		// than a failing stable is worse for its own reasons.
		if haveCtl && r > s.ratio*cr && r-cr > s.minDelta {
			return breach("control", fmt.Sprintf("%s %.1f%% vs stable %.1f%% (margin ×%.3g, min +%.3g pts) over the variant's last %d turns (%d of %d %s) and stable's %d turns of the same stretch (%d of %d)",
				s.label, 100*r, 100*cr, s.ratio, 100*s.minDelta, w.sum.turns, n, of, s.unit, span.turns, cn, cof))
		}
	}
	if c != nil && c.sum.turns >= cfg.MinSamples && c.sum.tok > 0 {
		vt, ct := float64(w.sum.tok)/float64(w.sum.turns), float64(c.sum.tok)/float64(c.sum.turns)
		if vt > cfg.TokenRatio*ct {
			details["breach"] = "token_ratio"
			details["control_window_turns"], details["control_tokens_per_turn"] = c.sum.turns, ct
			v.reason, v.details = fmt.Sprintf("%.0f tokens per turn over the variant's last %d turns is %.2f× the stable control's %.0f (last %d turns), above %.2f×",
				vt, w.sum.turns, vt/ct, ct, c.sum.turns, cfg.TokenRatio), details
		}
	}
	return v
}

// reportLocked makes now the conditions reported for k, logging each one
// that starts and each one that ends (why says why it ended), once: the
// numbers of a continuing one are updated quietly.
func (g *Guard) reportLocked(k gkey, now []Reported, why string) {
	for _, r := range now {
		rk := rkey{k, r.Signal}
		if old, ok := g.reported[rk]; ok {
			r.Since = old.Since
		} else {
			g.log.Warn("stable is over the guard's ceiling too: the variant is not halted; is a shared dependency (the LLM provider, a tool's backend) failing?",
				zap.String("dimension", r.Dimension), zap.String("variant", r.Variant), zap.String("signal", r.Signal),
				zap.Float64("variant_rate", r.VariantRate), zap.Float64("control_rate", r.ControlRate), zap.Float64("ceiling", r.Ceiling),
				zap.Int("variant_turns", r.VariantTurns), zap.Int("control_turns", r.ControlTurns))
		}
		g.reported[rk] = r
	}
	for _, sig := range Signals() {
		rk := rkey{k, sig}
		if _, ok := g.reported[rk]; ok && !slices.ContainsFunc(now, func(r Reported) bool { return r.Signal == sig }) {
			delete(g.reported, rk)
			g.log.Info("the control breach reported for a variant is over", zap.String("dimension", k.dim.String()),
				zap.String("variant", k.variant), zap.String("signal", sig), zap.String("why", why))
		}
	}
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
			out = append(out, Stats{Dimension: dim.String(), Variant: name, Turns: w.n, ToolCalls: w.sum.tools, ToolFailures: w.sum.fails,
				LLMCalls: w.sum.llm, LLM5xx: w.sum.e5, TokensPerTurn: float64(w.sum.tok) / float64(w.n)})
		}
	}
	return out
}

// Reported is a ceiling breach the guard did not halt a variant for,
// because its stable control is over the same ceiling over the same
// stretch of turns: a dependency both share is failing, not the variant.
type Reported struct {
	Dimension   string  `json:"dimension"`
	Variant     string  `json:"variant"`
	Signal      string  `json:"signal"` // tool_failure_rate or llm_5xx_rate
	VariantRate float64 `json:"variant_rate"`
	ControlRate float64 `json:"control_rate"`
	Ceiling     float64 `json:"ceiling"`
	// VariantTurns is the variant's window; ControlTurns are stable's turns
	// over the same stretch.
	VariantTurns int       `json:"variant_turns"`
	ControlTurns int       `json:"control_turns"`
	Since        time.Time `json:"since"` // the turn that started the condition
}

// Reported returns the conditions reported now, by dimension, variant and
// signal.
func (g *Guard) Reported() []Reported {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Reported, 0, len(g.reported))
	for _, r := range g.reported {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Reported) int {
		return cmp.Or(cmp.Compare(dimIndex(a.Dimension), dimIndex(b.Dimension)), strings.Compare(a.Variant, b.Variant), strings.Compare(a.Signal, b.Signal))
	})
	return out
}

func dimIndex(name string) int {
	d, _ := canary.ParseDimension(name)
	return int(d)
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
