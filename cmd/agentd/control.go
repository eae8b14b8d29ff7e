package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/governance"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/session"
)

// control is the canary router with its versioned history and guard: what
// decides, per user, the model, skills, rules, sandbox and instructions.
type control struct {
	router  *canary.Router
	history *rollback.History
	guard   *rollback.Guard
	gov     *govern
	mcp     *mcpHub // nil until set by newApp
	log     *zap.Logger

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// newControl loads the configuration history (applying canary.json if it
// changed) and starts the guard.
func newControl(ctx context.Context, cfg Config, db *boltdb.DB, gov *govern, log *zap.Logger) (*control, error) {
	c := &control{gov: gov, log: log.Named("canary"), stop: make(chan struct{}), done: make(chan struct{})}
	empty, err := canary.Compile(canary.Document{}, gov.known())
	if err != nil {
		return nil, fmt.Errorf("the configuration tree cannot serve defaults: %w", err)
	}
	c.router = canary.NewRouter(empty, 0)
	c.history, err = rollback.Open(ctx, rollback.Config{
		Store: db.Versions(), Router: c.router, Known: gov.known, Hashes: gov.hashes,
		ReadFile: func() ([]byte, error) { return os.ReadFile(filepath.Join(cfg.ConfigDir, ".agentao", "canary.json")) },
		Logger:   log,
		OnApply: func(p *canary.Policy, v rollback.Version) {
			if c.guard != nil {
				c.guard.Configure(p)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	c.guard = rollback.NewGuard(c.history, log)
	close(c.done) // no watcher yet
	return c, nil
}

// assign gives a new session its assignment.
func (c *control) assign(tenant, user string) (session.Assignment, error) {
	a := c.router.Assign(tenant, user)
	out := session.Assignment{
		Model: a.Get(canary.Model).Value, Skills: a.Get(canary.Skills).Value, Rules: a.Get(canary.Rules).Value,
		Sandbox: a.Get(canary.Sandbox).Value, Instructions: a.Get(canary.Instructions).Value, ConfigVersion: a.Version,
	}
	for _, dim := range canary.Dimensions() {
		if v := a.Get(dim).Variant; v != "" {
			if out.Variants == nil {
				out.Variants = map[string]string{}
			}
			out.Variants[dim.String()] = v
		}
	}
	return out, nil
}

func field(a *session.Assignment, dim canary.Dimension) *string {
	return [...]*string{&a.Model, &a.Skills, &a.Rules, &a.Sandbox, &a.Instructions}[dim]
}

// rebind moves a session off halted variants, to each dimension's stable
// value, at a turn boundary. Nothing else moves a live session.
func (c *control) rebind(s *session.Session) []string {
	if len(s.Assignment.Variants) == 0 {
		return nil
	}
	p, v := c.history.Current()
	var changes []string
	for _, dim := range canary.Dimensions() {
		variant, ok := s.Assignment.Variants[dim.String()]
		if !ok || !p.Halted(dim, variant) {
			continue
		}
		f := field(&s.Assignment, dim)
		old, stable := *f, p.Stable(dim)
		*f = stable
		delete(s.Assignment.Variants, dim.String())
		if dim == canary.Model && s.Model == old {
			s.Model = stable
		}
		changes = append(changes, fmt.Sprintf("%s: variant %s (%s) is halted; now stable %s (version %d)", dim, variant, old, stable, v.N))
	}
	if len(s.Assignment.Variants) == 0 {
		s.Assignment.Variants = nil
	}
	return changes
}

// observe feeds a finished turn to the guard.
func (c *control) observe(sum session.Summary, rec session.TurnRecord) {
	var sample rollback.Sample
	var values [5]string
	for _, dim := range canary.Dimensions() {
		sample.Variants[dim] = sum.Assignment.Variants[dim.String()]
		values[dim] = *field(&sum.Assignment, dim)
	}
	sample.ToolCalls, sample.ToolFailures = rec.Stats.ToolCalls, rec.Stats.ToolFailures
	sample.LLMCalls, sample.LLM5xx = rec.Stats.LLMCalls, rec.Stats.LLM5xx
	sample.Tokens = rec.Stats.Usage.PromptTokens + rec.Stats.Usage.CompletionTokens
	c.guard.Observe(sample, values)
}

// turnMetrics is what a finished turn reports to /metrics.
func turnMetrics(sum session.Summary, rec session.TurnRecord) metrics.Turn {
	t := metrics.Turn{
		Model: rec.Model, Variants: cohortOf(sum.Assignment), Status: string(rec.Outcome.Status),
		IncompleteReason: rec.Outcome.IncompleteReason,
		LLMCalls:         rec.Stats.LLMCalls, LLMErrors: rec.Stats.LLMErrors, LLM5xx: rec.Stats.LLM5xx,
		PromptTokens: rec.Stats.Usage.PromptTokens, Completion: rec.Stats.Usage.CompletionTokens, Cached: rec.Stats.Usage.CachedTokens,
	}
	if !rec.EndedAt.IsZero() {
		t.Duration = rec.EndedAt.Sub(rec.StartedAt)
	}
	for _, ts := range rec.Stats.Tools {
		t.Tools = append(t.Tools, metrics.Tool{Name: ts.Name, Calls: ts.Calls, Failures: ts.Failures, Duration: time.Duration(ts.Millis) * time.Millisecond})
	}
	return t
}

// cohortOf is an assignment's variant per dimension, "" for stable.
func cohortOf(a session.Assignment) [5]string {
	var out [5]string
	for _, dim := range canary.Dimensions() {
		out[dim] = a.Variants[dim.String()]
	}
	return out
}

// variants lists the served configuration's variants for /metrics.
func (c *control) variants() (int, []metrics.Variant) {
	p, v := c.history.Current()
	doc := p.Document()
	var out []metrics.Variant
	for _, dim := range canary.Dimensions() {
		spec := [...]*canary.Spec{doc.Model, doc.Skills, doc.Rules, doc.Sandbox, doc.Instructions}[dim]
		if spec == nil {
			continue
		}
		for _, cv := range spec.Variants {
			out = append(out, metrics.Variant{Dimension: dim.String(), Name: cv.Name, Percent: cv.Percent, Halted: p.Halted(dim, cv.Name)})
		}
	}
	return v.N, out
}

// checkModel accepts the models of the served catalog.
func (c *control) checkModel(m string) error {
	p, _ := c.router.Current()
	if models := p.Models(); !slices.Contains(models, m) {
		return fmt.Errorf("%w: model %q is not in the catalog: %s", session.ErrInvalid, m, strings.Join(models, ", "))
	}
	return nil
}

// watch re-reads the configuration tree and canary.json every interval
// and when reload fires (SIGHUP), until close.
func (c *control) watch(every time.Duration, reload <-chan os.Signal) {
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			why, force := "canary.json changed", false
			select {
			case <-c.stop:
				return
			case <-t.C:
			case <-reload:
				why, force = "SIGHUP", true
				c.log.Info("SIGHUP: reloading the configuration")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c.refresh(ctx, why, force)
			cancel()
			// What a helper killed outright left in its command's cgroup.
			sandbox.SweepCgroups()
		}
	}()
}

// refresh reloads the tree (keeping the old one if the new one is invalid
// or breaks the served canary configuration), records a version if what
// the configuration points at changed, then reloads canary.json. Errors
// are logged where they happen.
func (c *control) refresh(ctx context.Context, why string, force bool) {
	changed, _ := c.gov.reload(ctx, force, func(t *governance.Tree) error {
		_, v := c.history.Current()
		_, err := canary.Parse(v.Canary, t.Known(c.gov.cfg.Model, c.gov.models))
		if err != nil {
			return fmt.Errorf("the served canary configuration (version %d) needs what the new tree lacks: %w", v.N, err)
		}
		return nil
	})
	if changed {
		treeWhy := "configuration tree changed"
		if force {
			treeWhy += " (SIGHUP)"
		}
		_, _, _ = c.history.Refresh(ctx, treeWhy)
	}
	_, _, _ = c.history.Reload(ctx, why) // logged by the history
	if c.mcp != nil {
		c.mcp.reload()
	}
}

// close stops the watcher and the guard; it may be called more than once.
func (c *control) close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.done
		c.guard.Close()
	})
}
