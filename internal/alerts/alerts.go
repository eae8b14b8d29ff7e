// Package alerts evaluates agentd's built-in alerts over the usage counters
// (internal/usage), so that the single binary needs no Prometheus to be
// safe: cost creep (AgentdDailyTokensHigh, P2), a possibly stuck session
// (AgentdSessionTokensHigh, P3), tool failures (AgentdToolFailureRateHigh,
// P2) and a provider's 5xx (AgentdLLM5xxRateHigh, P1), with the thresholds
// of .agentao/alerts.json (Parse).
//
// One goroutine (Run) evaluates every Interval; nothing here is on a turn's
// path. An alert is identified by its name and scope: it fires when its
// condition first holds, keeps its "since" while it holds, and resolves at
// the first evaluation where it does not. Firing and resolving are each a
// log line, a change of Counts (agentd_alerts_firing) and, with a webhook,
// a JSON POST sent from a bounded queue by a goroutine of its own: a slow,
// failing or hanging webhook delays neither turns nor evaluations; when
// its queue is full the oldest event is dropped (and logged).
//
// The state (firing alerts, and resolved ones for Rules.KeepResolved) is
// kept in the store, so an alert firing before a restart is still firing
// after it, with its first "since", and is not announced again.
//
// Each replica of a fleet evaluates the counters of the sessions it owns:
// its alerts are about its share of the traffic.
package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/usage"
)

// Names of the alerts: the same as those of deploy/prometheus/agentd-rules.yml.
const (
	DailyTokensHigh     = "AgentdDailyTokensHigh"
	SessionTokensHigh   = "AgentdSessionTokensHigh"
	ToolFailureRateHigh = "AgentdToolFailureRateHigh"
	LLM5xxRateHigh      = "AgentdLLM5xxRateHigh"
)

// Severities.
const (
	P1 = "P1" // page: the service is failing its users now
	P2 = "P2" // today: cost or correctness is drifting
	P3 = "P3" // look when you can
)

// names lists every alert, most severe first.
var names = []string{LLM5xxRateHigh, DailyTokensHigh, ToolFailureRateHigh, SessionTokensHigh}

// Severity returns the severity of the alert named name ("" if unknown).
func Severity(name string) string {
	switch name {
	case LLM5xxRateHigh:
		return P1
	case DailyTokensHigh, ToolFailureRateHigh:
		return P2
	case SessionTokensHigh:
		return P3
	}
	return ""
}

// Source is what the alerts read: the usage counters (usage.Meter).
type Source interface {
	Day(scope usage.Scope, t time.Time) usage.Counts
	Window(scope usage.Scope, since time.Time) usage.Counts
	Active(since time.Time) []usage.Scope
	Sessions(since time.Time) []usage.SessionUse
}

// Store keeps the alerts' state (boltdb.AlertStore).
type Store interface {
	Load(ctx context.Context) (map[string][]byte, error)
	Save(ctx context.Context, put map[string][]byte, del []string) error
}

// Scope is what an alert is about: everything (all fields empty), a tenant,
// one session of a tenant, or a canary variant ("model/canary-b").
type Scope struct {
	Tenant  string `json:"tenant,omitempty"`
	Session string `json:"session,omitempty"`
	Variant string `json:"variant,omitempty"`
}

func (s Scope) String() string {
	switch {
	case s.Session != "":
		return "session " + s.Session + " of tenant " + s.Tenant
	case s.Tenant != "":
		return "tenant " + s.Tenant
	case s.Variant != "":
		return "variant " + s.Variant
	}
	return "all tenants"
}

// Alert is one alert, firing (ResolvedAt nil) or resolved.
type Alert struct {
	Name     string `json:"name"`
	Severity string `json:"severity"`
	Scope    Scope  `json:"scope"`
	// Value is what was measured at the last evaluation while firing: the
	// ratio to the 7-day mean, a session's tokens, or a rate (0.25 = 25 %).
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Summary says it in words, with the figures behind Value.
	Summary    string     `json:"summary"`
	Node       string     `json:"node,omitempty"` // the replica, in a fleet
	Since      time.Time  `json:"since"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
}

// Count is how many alerts of a name fire (agentd_alerts_firing).
type Count struct {
	Name     string
	Severity string
	Firing   int
}

// Config configures New.
type Config struct {
	Source Source // required
	Store  Store  // required
	// Rules returns the thresholds in force (the served alerts.json); it is
	// asked at every evaluation. Nil: DefaultRules.
	Rules func() Rules
	// Zone is where days begin and end (AGENTD_USAGE_ZONE). Default UTC.
	Zone *time.Location
	Now  func() time.Time // default time.Now
	// Interval is the time between evaluations of Run. Default 15 s.
	Interval time.Duration
	// Node names this replica in alerts (a fleet's AGENTD_NODE); may be "".
	Node string

	// Webhook, if set, is an http(s) URL that gets a JSON POST
	// {"status": "firing"|"resolved", "alert": {...}} per event
	// (AGENTD_ALERT_WEBHOOK). The URL may hold a token: only its host is
	// ever logged.
	Webhook string
	// WebhookAttempts is how many times an event is tried. Default 5.
	WebhookAttempts int
	// WebhookTimeout bounds each attempt. Default 10 s.
	WebhookTimeout time.Duration
	// WebhookBackoff is the wait before the second attempt; it doubles at
	// each further one, up to 30 s. Default 1 s.
	WebhookBackoff time.Duration
	// QueueSize bounds the events waiting for the webhook. Default 256.
	QueueSize int
	// DrainTimeout bounds how long Close keeps sending queued events (it
	// comes after the shutdown's own drain: keep the sum under the grace
	// period). Default 2 s.
	DrainTimeout time.Duration

	Logger *zap.Logger
}

// Defaults of Config.
const (
	DefaultInterval        = 15 * time.Second
	DefaultWebhookAttempts = 5
	DefaultWebhookTimeout  = 10 * time.Second
	DefaultWebhookBackoff  = time.Second
	DefaultQueueSize       = 256
	DefaultDrainTimeout    = 2 * time.Second
	// maxResolved bounds the resolved alerts kept (a flapping alert
	// resolves up to every Interval).
	maxResolved = 1000
)

// Alerts evaluates the built-in alerts and keeps their state.
type Alerts struct {
	cfg  Config
	log  *zap.Logger
	hook *webhook // nil without Config.Webhook

	evalMu sync.Mutex // one evaluation at a time

	mu       sync.Mutex
	firing   map[string]*Alert // by ident
	resolved []*Alert          // oldest first
	dirty    map[string]*Alert // by record key: to write
	gone     map[string]bool   // record keys: to delete

	runMu   sync.Mutex
	closed  bool
	stop    chan struct{}
	running sync.WaitGroup
}

// New loads the alerts' state from cfg.Store. Call Run to evaluate, and
// Close to stop.
func New(ctx context.Context, cfg Config) (*Alerts, error) {
	if cfg.Source == nil || cfg.Store == nil {
		return nil, errors.New("alerts: a Source and a Store are required")
	}
	if cfg.Rules == nil {
		cfg.Rules = DefaultRules
	}
	if cfg.Zone == nil {
		cfg.Zone = time.UTC
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.WebhookAttempts <= 0 {
		cfg.WebhookAttempts = DefaultWebhookAttempts
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = DefaultWebhookTimeout
	}
	if cfg.WebhookBackoff <= 0 {
		cfg.WebhookBackoff = DefaultWebhookBackoff
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	a := &Alerts{
		cfg: cfg, log: cfg.Logger.Named("alerts"),
		firing: map[string]*Alert{}, dirty: map[string]*Alert{}, gone: map[string]bool{},
		stop: make(chan struct{}),
	}
	if cfg.Webhook != "" {
		if err := CheckWebhook(cfg.Webhook); err != nil {
			return nil, err
		}
		u, _ := url.Parse(cfg.Webhook)
		a.hook = newWebhook(cfg, u.Host, a.log)
	}
	if err := a.load(ctx); err != nil {
		if a.hook != nil {
			a.hook.close(0)
		}
		return nil, err
	}
	return a, nil
}

// CheckWebhook says whether raw can be Config.Webhook: an absolute http or
// https URL. The error does not repeat the URL (it may hold a token).
func CheckWebhook(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("alert webhook: want an absolute http:// or https:// URL")
	}
	return nil
}

// load reads the stored state. A record that does not decode is dropped
// with a warning rather than keeping agentd from starting.
func (a *Alerts) load(ctx context.Context) error {
	stored, err := a.cfg.Store.Load(ctx)
	if err != nil {
		return fmt.Errorf("load alerts: %w", err)
	}
	for k, v := range stored {
		var al Alert
		if err := json.Unmarshal(v, &al); err != nil || Severity(al.Name) == "" {
			a.log.Warn("a stored alert is unreadable; dropped", zap.String("key", strconv.Quote(k)), zap.Error(err))
			a.gone[k] = true
			continue
		}
		if rk := recordKey(&al); rk != k { // written by another layout: rewrite
			a.gone[k] = true
			a.dirty[rk] = &al
		}
		if al.ResolvedAt != nil {
			a.resolved = append(a.resolved, &al)
			continue
		}
		id := ident(al.Name, al.Scope)
		if cur, ok := a.firing[id]; ok { // cannot happen unless edited: keep the first
			if cur.Since.Before(al.Since) {
				a.gone[recordKey(&al)] = true
				continue
			}
			a.gone[recordKey(cur)] = true
		}
		a.firing[id] = &al
	}
	for k := range a.gone {
		delete(a.dirty, k)
	}
	slices.SortFunc(a.resolved, func(x, y *Alert) int { return x.ResolvedAt.Compare(*y.ResolvedAt) })
	return nil
}

// ident identifies an alert: its name and scope.
func ident(name string, s Scope) string {
	return name + "\x00" + s.Tenant + "\x00" + s.Session + "\x00" + s.Variant
}

// recordKey identifies one firing of an alert in the store.
func recordKey(al *Alert) string {
	return ident(al.Name, al.Scope) + "\x00" + fmt.Sprintf("%020d", al.Since.UnixNano())
}

// Run evaluates at once and then every Interval, until ctx ends or Close
// is called. An evaluation that fails (the store) is logged and retried at
// the next one.
func (a *Alerts) Run(ctx context.Context) {
	a.runMu.Lock()
	if a.closed {
		a.runMu.Unlock()
		return
	}
	a.running.Add(1)
	a.runMu.Unlock()
	defer a.running.Done()
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		if err := a.Evaluate(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("alert evaluation failed; retried at the next one", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

// Close stops Run (waiting for it), then sends what the webhook queue
// holds for at most DrainTimeout. Events still queued then are dropped
// with a log line.
func (a *Alerts) Close() error {
	a.runMu.Lock()
	if a.closed {
		a.runMu.Unlock()
		return nil
	}
	a.closed = true
	close(a.stop)
	a.runMu.Unlock()
	a.running.Wait()
	if a.hook != nil {
		a.hook.close(a.cfg.DrainTimeout)
	}
	return nil
}

// List returns the firing alerts (most severe first, then newest), then
// those resolved within KeepResolved (newest first).
func (a *Alerts) List() []Alert {
	keep := a.cfg.Rules().KeepResolved
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Alert, 0, len(a.firing)+len(a.resolved))
	for _, al := range a.firing {
		out = append(out, *al)
	}
	for i := len(a.resolved) - 1; i >= 0; i-- {
		al := a.resolved[i]
		if now.Sub(*al.ResolvedAt) > keep {
			break
		}
		out = append(out, *al)
	}
	Order(out)
	return out
}

// Order sorts alerts as List returns them: the firing ones first, most
// severe first, then newest, then by name, scope and node; then the
// resolved ones, newest first. A fleet's merged list (each replica's)
// is ordered the same way.
func Order(list []Alert) {
	slices.SortStableFunc(list, func(x, y Alert) int {
		switch {
		case x.ResolvedAt == nil && y.ResolvedAt != nil:
			return -1
		case x.ResolvedAt != nil && y.ResolvedAt == nil:
			return 1
		case x.ResolvedAt != nil:
			return y.ResolvedAt.Compare(*x.ResolvedAt)
		}
		if c := strings.Compare(x.Severity, y.Severity); c != 0 {
			return c
		}
		if c := y.Since.Compare(x.Since); c != 0 {
			return c
		}
		if c := strings.Compare(ident(x.Name, x.Scope), ident(y.Name, y.Scope)); c != 0 {
			return c
		}
		return strings.Compare(x.Node, y.Node)
	})
}

// Counts returns how many alerts of each name fire, every name included.
func (a *Alerts) Counts() []Count {
	a.mu.Lock()
	n := map[string]int{}
	for _, al := range a.firing {
		n[al.Name]++
	}
	a.mu.Unlock()
	out := make([]Count, 0, len(names))
	for _, name := range names {
		out = append(out, Count{Name: name, Severity: Severity(name), Firing: n[name]})
	}
	return out
}

// Evaluate runs one evaluation now: it fires what newly holds, updates
// what still does, resolves what no longer does, forgets what was
// resolved before KeepResolved, and saves the changes. Run calls it; tests
// call it to step a fake clock.
func (a *Alerts) Evaluate(ctx context.Context) error {
	a.evalMu.Lock()
	defer a.evalMu.Unlock()
	now := a.cfg.Now().Round(0).UTC()
	rules := a.cfg.Rules()
	holds := a.conditions(now, rules)

	var events []event
	a.mu.Lock()
	for id, c := range holds {
		cur, ok := a.firing[id]
		if !ok {
			al := c
			al.Since = now
			a.firing[id] = &al
			a.dirty[recordKey(&al)] = &al
			events = append(events, event{Status: "firing", Alert: al})
			continue
		}
		if cur.Value != c.Value || cur.Threshold != c.Threshold || cur.Summary != c.Summary || cur.Node != c.Node {
			cur.Value, cur.Threshold, cur.Summary, cur.Node = c.Value, c.Threshold, c.Summary, c.Node
			a.dirty[recordKey(cur)] = cur
		}
	}
	for id, cur := range a.firing {
		if _, ok := holds[id]; ok {
			continue
		}
		delete(a.firing, id)
		at := now
		cur.ResolvedAt = &at
		a.resolved = append(a.resolved, cur)
		a.dirty[recordKey(cur)] = cur
		events = append(events, event{Status: "resolved", Alert: *cur})
	}
	drop := 0
	for drop < len(a.resolved) && (now.Sub(*a.resolved[drop].ResolvedAt) > rules.KeepResolved || len(a.resolved)-drop > maxResolved) {
		k := recordKey(a.resolved[drop])
		delete(a.dirty, k)
		a.gone[k] = true
		drop++
	}
	a.resolved = slices.Delete(a.resolved, 0, drop)
	put := make(map[string][]byte, len(a.dirty))
	for k, al := range a.dirty {
		data, err := json.Marshal(al)
		if err != nil {
			a.mu.Unlock()
			return fmt.Errorf("encode alert: %w", err)
		}
		put[k] = data
	}
	del := make([]string, 0, len(a.gone))
	for k := range a.gone {
		del = append(del, k)
	}
	a.mu.Unlock()

	err := a.cfg.Store.Save(ctx, put, del)
	if err == nil {
		a.mu.Lock()
		for k := range put { // only this evaluation changes them (evalMu)
			delete(a.dirty, k)
		}
		for _, k := range del {
			delete(a.gone, k)
		}
		a.mu.Unlock()
	} else {
		err = fmt.Errorf("save alerts: %w", err)
	}
	for _, ev := range events {
		a.announce(ev)
	}
	return err
}

// announce logs an event and queues it for the webhook.
func (a *Alerts) announce(ev event) {
	al := ev.Alert
	fields := []zap.Field{
		zap.String("alert", al.Name), zap.String("severity", al.Severity),
		zap.Float64("value", al.Value), zap.Float64("threshold", al.Threshold),
		zap.Time("since", al.Since), zap.String("summary", al.Summary),
	}
	for _, f := range []struct{ k, v string }{{"tenant", al.Scope.Tenant}, {"session_id", al.Scope.Session}, {"variant", al.Scope.Variant}, {"node", al.Node}} {
		if f.v != "" {
			fields = append(fields, zap.String(f.k, f.v))
		}
	}
	if ev.Status == "firing" {
		a.log.Warn("alert firing: "+al.Name+" ("+al.Severity+") for "+al.Scope.String(), fields...)
	} else {
		fields = append(fields, zap.Time("resolved_at", *al.ResolvedAt))
		a.log.Info("alert resolved: "+al.Name+" for "+al.Scope.String(), fields...)
	}
	if a.hook != nil {
		a.hook.enqueue(ev)
	}
}
