// Package operate builds what operators watch and limit, beside the
// sessions: the token meter and its budgets (internal/usage,
// .agentao/budgets.json), the built-in alerts (internal/alerts,
// .agentao/alerts.json) and the continuous canary probe (internal/probe,
// .agentao/probes.json). Each gets its file of the configuration tree
// (control.AddFile), its bbolt store, its /metrics sources and its routes;
// cmd/agentd only hands them over.
package operate

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/probe"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/usage"
)

// Files of the configuration tree that operate serves.
const (
	BudgetsFile = ".agentao/budgets.json"
	AlertsFile  = ".agentao/alerts.json"
	ProbesFile  = probe.File
)

// Config is what Operate is built from.
type Config struct {
	Plane   *control.Plane
	DB      *boltdb.DB
	Metrics *metrics.Metrics
	// Zone is where a day begins and ends for budgets and the daily-token
	// alert (AGENTD_USAGE_ZONE). Default UTC.
	Zone *time.Location
	// Node is this replica's name in a fleet ("" for a single process); a
	// fleet's alerts carry it.
	Node string
	// IsLeader, in a fleet, says whether this replica leads: only the
	// leader runs the probe's schedule. Nil: a single replica, which leads.
	IsLeader func() bool
	// Webhook, if set, gets every alert's firing and resolving
	// (AGENTD_ALERT_WEBHOOK).
	Webhook string
	// AlertInterval is the time between evaluations of the alerts; 0 is
	// alerts.DefaultInterval.
	AlertInterval time.Duration
	// Fleet, in a fleet, is this replica's membership: budgets and the
	// usage routes then count the tenant's use on every replica
	// (share.go). ClusterKey authenticates the exchange; ShareInterval is
	// its period (0: DefaultShareInterval).
	Fleet         Fleet
	ClusterKey    string
	ShareInterval time.Duration
	Logger        *zap.Logger
}

// Operate is the meter, the alerts and the probe of one replica.
type Operate struct {
	cfg    Config
	probes *control.File[probe.Config]
	meter  *usage.Meter
	alerts *alerts.Alerts
	prober *probe.Prober // set by Attach

	stop     chan struct{} // ends the usage exchange
	stopOnce sync.Once
	done     sync.WaitGroup
}

// New reads budgets.json, alerts.json and probes.json (an invalid one is a
// *control.ConfigError) and opens the meter and the alerts on their stores.
func New(ctx context.Context, cfg Config) (*Operate, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	o := &Operate{cfg: cfg, stop: make(chan struct{})}
	budgets, err := control.AddFile(cfg.Plane, BudgetsFile, usage.Parse)
	if err != nil {
		return nil, err
	}
	rules, err := control.AddFile(cfg.Plane, AlertsFile, alerts.Parse)
	if err != nil {
		return nil, err
	}
	if o.probes, err = control.AddFile(cfg.Plane, ProbesFile, probe.Parse); err != nil {
		return nil, err
	}
	o.meter, err = usage.New(usage.Config{Store: cfg.DB.Usage(), Zone: cfg.Zone, Budgets: budgets.Get,
		OnRefuse: cfg.Metrics.BudgetRefused, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	o.alerts, err = alerts.New(ctx, alerts.Config{Source: o.meter, Store: cfg.DB.Alerts(), Rules: rules.Get,
		Zone: cfg.Zone, Node: cfg.Node, Webhook: cfg.Webhook, Interval: cfg.AlertInterval, Logger: cfg.Logger})
	if err != nil {
		return nil, errors.Join(err, o.meter.Close())
	}
	if cfg.Fleet != nil {
		cfg.Fleet.Handle(SharePath, o.shareHandler())
	}
	return o, nil
}

// Meter is the pool's meter: budgets, and every LLM call to the usage
// counters and the OpenTelemetry GenAI series.
func (o *Operate) Meter() session.Meter { return o.cfg.Metrics.Meter(o.meter) }

// Observe counts a finished turn's tool calls (its LLM calls were counted
// one by one through Meter).
func (o *Operate) Observe(sum session.Summary, rec session.TurnRecord) { o.meter.Turn(sum, rec) }

// Attach builds the probe over the pool its sessions run in.
func (o *Operate) Attach(ctx context.Context, pool *session.Pool) error {
	p, err := probe.New(ctx, probe.Options{Pool: pool, Store: o.cfg.DB.Probes(), Config: o.probes.Get,
		Cohorts: o.cfg.Plane.ProbeCohorts, IsLeader: o.cfg.IsLeader, Logger: o.cfg.Logger})
	if err != nil {
		return err
	}
	o.prober = p
	return nil
}

// Usage, Alerts and Prober serve the HTTP routes (httpapi.Config).
func (o *Operate) Usage() *usage.Meter    { return o.meter }
func (o *Operate) Alerts() *alerts.Alerts { return o.alerts }
func (o *Operate) Prober() *probe.Prober  { return o.prober }

// Sources adds operate's scrape-time series to src.
func (o *Operate) Sources(src *metrics.Sources) {
	src.SessionTokensMax = func() int64 { return o.meter.SessionTokensMax(time.Now().Add(-time.Hour)) }
	src.Alerts = func() []metrics.AlertCount {
		cs := o.alerts.Counts()
		out := make([]metrics.AlertCount, len(cs))
		for i, c := range cs {
			out[i] = metrics.AlertCount{Name: c.Name, Severity: c.Severity, Firing: c.Firing}
		}
		return out
	}
	src.Probes = func() []metrics.ProbeState {
		if o.prober == nil {
			return nil
		}
		ss := o.prober.States()
		out := make([]metrics.ProbeState, len(ss))
		for i, s := range ss {
			out[i] = metrics.ProbeState{Probe: s.Probe, Dimension: s.Dimension, Variant: s.Variant,
				ChangedVsPrevious: s.ChangedVsPrevious, ChangedVsStable: s.ChangedVsStable, LastRun: s.LastRun}
		}
		return out
	}
}

// Start runs the alerts' evaluations (until ctx ends or Close), the
// probe's schedule and, in a fleet, the usage exchange.
func (o *Operate) Start(ctx context.Context) {
	go o.alerts.Run(ctx)
	if o.cfg.Fleet != nil {
		o.done.Go(func() { o.exchange(o.stop) })
	}
	if o.prober != nil {
		o.prober.Start()
	}
}

// StopProbe ends a probe run in progress, storing nothing of it: the first
// step of a shutdown, before the pool's turns are cancelled.
func (o *Operate) StopProbe() error {
	if o.prober == nil {
		return nil
	}
	return o.prober.Close()
}

// Close stops the probe and the alerts (sending what the webhook still
// holds, within its drain time) and writes the meter's last counts. Call it
// before the store closes.
func (o *Operate) Close() error {
	o.stopOnce.Do(func() { close(o.stop) })
	o.done.Wait()
	return errors.Join(o.StopProbe(), o.alerts.Close(), o.meter.Close())
}
