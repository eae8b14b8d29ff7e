package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agentd/agentd/internal/acp"
	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/fleet"
	"github.com/agentd/agentd/internal/handoff"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/metrics"
	"github.com/agentd/agentd/internal/operate"
	"github.com/agentd/agentd/internal/secrets"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
)

// app is agentd wired together: the store, the control plane, the pool,
// ACP and the HTTP API.
type app struct {
	cfg  Config
	log  *zap.Logger
	db   *boltdb.DB
	ctl  *control.Plane
	node *fleet.Node // nil: a single replica
	pool *session.Pool
	op   *operate.Operate // budgets, alerts, the canary probe
	acp  *acp.Server
	api  *httpapi.Server
	hup  chan os.Signal // SIGHUP, for the watcher (startApp)

	closeOnce sync.Once
	closeErr  error
}

// newApp opens the store and wires every part for cfg. Close it with close.
func newApp(ctx context.Context, cfg Config, keys *tenant.Keys, log *zap.Logger) (*app, error) {
	db, err := boltdb.Open(filepath.Join(cfg.DataDir, "agentd.db"), boltdb.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	model, err := llm.NewClient(llm.Config{
		BaseURL: cfg.OpenAIBaseURL, APIKey: cfg.OpenAIKey, MaxAttempts: cfg.LLMMaxAttempts, Logger: log,
	})
	if err != nil {
		db.Close()
		return nil, usageError{err}
	}
	a := &app{cfg: cfg, log: log, db: db}
	ccfg := control.Config{
		ConfigDir: cfg.ConfigDir, DataDir: cfg.DataDir, KeysFile: cfg.APIKeysFile, Model: cfg.Model, Models: cfg.Models,
		Versions: db.Versions(), ShellTimeout: cfg.ShellTimeout, WebFetch: cfg.WebFetch, WebFetchAllow: cfg.WebFetchAllow,
		ClientVersion: version, Logger: log,
	}
	if cfg.Peers != "" { // a fleet: the control plane is replicated
		fc := cfg.fleet(db.Directory())
		fc.Logger = log
		if a.node, err = fleet.New(ctx, fc); err != nil {
			db.Close()
			return nil, err
		}
		ccfg.Fleet = a.node
	}
	ctl, err := control.New(ctx, ccfg)
	if err != nil { // a *control.ConfigError is a usage error (exitCode)
		a.closeNode()
		db.Close()
		return nil, err
	}
	met := metrics.New()
	ocfg := operate.Config{Plane: ctl, DB: db, Metrics: met, Zone: cfg.UsageZone, Node: cfg.Node,
		Webhook: cfg.AlertWebhook, AlertInterval: cfg.AlertInterval, Logger: log}
	if a.node != nil { // a fleet: budgets count every replica, only the leader probes
		ocfg.Fleet, ocfg.ClusterKey, ocfg.IsLeader = a.node, cfg.ClusterKey, a.node.IsLeader
	}
	op, err := operate.New(ctx, ocfg)
	if err != nil { // an invalid budgets/alerts/probes.json is a *control.ConfigError (exit 2)
		ctl.Close()
		a.closeNode()
		db.Close()
		return nil, err
	}
	pool, err := session.NewPool(db.Sessions(), agent.New(model, agent.Config{MaxIterations: cfg.MaxIterations, ContextTokens: cfg.ContextTokens, Logger: log}),
		session.Hooks{Assigner: ctl, Toolbox: ctl, Authorizer: ctl, Observer: turnObserver{ctl, met, op}, Meter: op.Meter()},
		session.Config{
			Dir: filepath.Join(cfg.DataDir, "workspaces"), TTL: cfg.SessionTTL, MaxLive: cfg.MaxLiveSessions,
			TurnTimeout: cfg.TurnTimeout, ApprovalTimeout: cfg.ApprovalTimeout, Logger: log, Node: cfg.Node, // "" without peers
		})
	if err == nil {
		if err = op.Attach(ctx, pool); err != nil {
			_ = pool.Close()
		}
	}
	if err != nil {
		_ = op.Close()
		ctl.Close()
		a.closeNode()
		db.Close()
		return nil, err
	}
	acfg := acp.Config{Models: ctl.Models, Version: version, Logger: log,
		WriteTimeout: cfg.HTTP.Write, Heartbeat: cfg.WSPingInterval, PongTimeout: cfg.WSPongTimeout}
	if a.node != nil { // never a nil *fleet.Node in the interface
		acfg.Fleet = a.node
	}
	acpSrv := acp.New(pool, acfg)
	hcfg := httpapi.Config{
		MaxBodyBytes: cfg.MaxBodyBytes, Timeouts: cfg.HTTP, Logger: log,
		Control:   ctl,
		ACP:       acpSrv.Handler(keys),
		Metrics:   met.Handler(sources(ctl, pool, op)),
		OnRequest: met.Request,
		Usage:     op.Usage(), Alerts: op.Alerts(), Probes: op.Prober(),
	}
	if a.node != nil {
		mover := handoff.New(handoff.Config{Pool: pool, Fleet: a.node, Key: cfg.ClusterKey, Logger: log})
		a.node.Handle(handoff.Prefix, mover.Handler())
		hcfg.Cluster, hcfg.Fleet, hcfg.Handoff, hcfg.RemoveMember = a.node.Handler(), a.node, mover, a.node.Remove
		hcfg.FleetStatus = func(ctx context.Context) any { return a.node.Status(ctx) }
	}
	a.ctl, a.pool, a.op, a.acp, a.api = ctl, pool, op, acpSrv, httpapi.New(pool, keys, hcfg)
	return a, nil
}

// closeNode leaves the fleet, if the replica is in one.
func (a *app) closeNode() error {
	if a.node == nil {
		return nil
	}
	return a.node.Close()
}

// turnObserver sends each finished turn to the guard (the control plane)
// and to /metrics, and each answered ask to /metrics.
type turnObserver struct {
	ctl *control.Plane
	met *metrics.Metrics
	op  *operate.Operate
}

func (o turnObserver) Observe(sum session.Summary, rec session.TurnRecord) {
	o.ctl.Observe(sum, rec)
	o.met.SessionTurn(sum, rec)
	o.op.Observe(sum, rec) // the usage counters: the turn's tool calls
}

func (o turnObserver) Approved(sum session.Summary, _, decision string) {
	o.met.SessionConfirmation(sum, decision)
}

// sources are what /metrics reads at each scrape.
func sources(ctl *control.Plane, pool *session.Pool, op *operate.Operate) metrics.Sources {
	src := metrics.Sources{
		Sessions: pool.Live, Canary: func() (int, []metrics.Variant) { return canaryVariants(ctl) }, MCPChildren: ctl.MCPChildren,
		Refused: func() map[string]bool {
			refused, out := ctl.Refused(), map[string]bool{}
			for _, part := range ctl.Parts() {
				out[part] = refused[part] != ""
			}
			return out
		},
		GuardReported: ctl.GuardReported,
	}
	op.Sources(&src)
	return src
}

// canaryVariants is the served configuration's variants for /metrics.
func canaryVariants(ctl *control.Plane) (int, []metrics.Variant) {
	n, vs := ctl.Variants()
	out := make([]metrics.Variant, 0, len(vs))
	for _, v := range vs {
		out = append(out, metrics.Variant{Dimension: v.Dimension.String(), Name: v.Name, Percent: v.Percent, Halted: v.Halted})
	}
	return n, out
}

// shutdown drains the API, cancels and saves every running turn, then lets
// their responses finish, all within the shutdown timeout. It waits on no
// client that is not sending (httpapi.Server.Shutdown).
func (a *app) shutdown(ctx context.Context) error {
	a.api.Drain()
	_ = a.op.StopProbe() // a probe run in progress is cut short, its sessions deleted, before the pool stops
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	err := a.pool.Shutdown(sctx) // cancel running turns, wait for their saves
	a.ctl.CloseMCP()             // every MCP server process ended and reaped
	// ACP WebSockets are hijacked connections srv.Shutdown does not wait
	// for: answer their prompts ("cancelled") and close them.
	err = errors.Join(err, a.acp.Shutdown(sctx))
	return errors.Join(err, a.api.Shutdown(sctx)) // then let their responses finish
}

// startApp is newApp with the control plane's watcher running (SIGHUP
// reloads the configuration at once).
func startApp(ctx context.Context, cfg Config, keys *tenant.Keys, log *zap.Logger) (*app, error) {
	a, err := newApp(ctx, cfg, keys, log)
	if err != nil {
		return nil, err
	}
	a.hup = make(chan os.Signal, 1)
	signal.Notify(a.hup, syscall.SIGHUP)
	a.ctl.Watch(cfg.ConfigPoll, a.hup)
	a.op.Start(ctx)
	return a, nil
}

// close stops the control and releases the store; call it after shutdown.
// Later calls do nothing.
func (a *app) close() error {
	a.closeOnce.Do(func() {
		if a.hup != nil {
			signal.Stop(a.hup)
		}
		opErr := a.op.Close()                                        // the webhook's last events and the meter's last counts
		a.ctl.Close()                                                // the guard's last halts may still go through the fleet
		a.closeErr = errors.Join(opErr, a.closeNode(), a.db.Close()) // the log's applies write to the store
	})
	return a.closeErr
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseServe(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel, stderr)
	defer log.Sync()

	keys, err := tenant.Load(cfg.APIKeys, cfg.APIKeysFile)
	if err != nil {
		return usageError{err}
	}
	a, err := startApp(ctx, cfg, keys, log)
	if err != nil {
		return err
	}
	defer a.close() // last: after every turn has saved

	ln, err := net.Listen("tcp", cfg.Addr) // a port clash fails here, not later
	if err != nil {
		_ = a.pool.Close()
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- a.api.HTTPServer().Serve(ln) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", version),
		zap.String("model", cfg.Model), zap.Strings("models", cfg.Models), zap.String("llm_base_url", cfg.OpenAIBaseURL),
		zap.String("data", cfg.DataDir), zap.Int("api_keys", keys.Len()), zap.String("node", cfg.Node), zap.Bool("fleet", cfg.Peers != ""))

	select {
	case err := <-errc:
		_ = a.pool.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	began := time.Now()
	log.Info("signal received: draining", zap.String("shutdown_timeout", cfg.ShutdownTimeout.String()))
	err = a.shutdown(ctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		log.Error("shutdown incomplete", zap.Error(err), zap.String("took", time.Since(began).String()))
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped: every session saved", zap.String("took", time.Since(began).String()))
	return nil
}

func newLogger(level string, w io.Writer) *zap.Logger {
	lvl, _ := zapcore.ParseLevel(level)
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(secrets.Core(core)) // no credential-shaped string reaches a log line
}
