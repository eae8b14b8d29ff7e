// Package control is agentd's control plane: what happens when the
// configuration changes, and what each session gets from it.
//
// A [Plane] owns the served configuration tree (skills, instructions, rule
// versions, sandbox profiles) and its atomic swap, the canary router, the
// version history with its audit, the guard that halts a bad variant by
// itself, the watcher (a poll and SIGHUP), and the per-tenant MCP servers
// of mcp.json. The session pool calls it for a new session's assignment,
// its tools, system prompt and permission decisions, and to re-bind a
// session whose variant was halted; the HTTP admin routes call it to read
// and change the canary configuration. [New] builds all of it; nothing is
// attached afterwards.
//
// A Plane is safe for concurrent use. Close stops the watcher and the
// guard and ends the MCP servers.
package control

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/governance"
	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/session"
)

// Config is what a Plane is built from.
type Config struct {
	// ConfigDir is the configuration tree (AGENTAO.md, skills/, .agentao/).
	ConfigDir string
	// DataDir is agentd's data directory: MCP servers work in DataDir/mcp,
	// and commands may not read it.
	DataDir string
	// KeysFile is the API keys file, if any: commands may not read it.
	KeysFile string
	// Model is the model new sessions use; Models the catalog (Model
	// first). canary.json may name its own catalog.
	Model  string
	Models []string
	// Versions stores the configuration history.
	Versions rollback.Store
	// ShellTimeout is run_shell_command's inactivity timeout (the model
	// may ask for up to five times as long).
	ShellTimeout time.Duration
	// WebFetch offers web_fetch, to public addresses and WebFetchAllow.
	WebFetch      bool
	WebFetchAllow []netip.Prefix
	// Self is the agentd binary, re-executed as the sandbox helper.
	// Empty means os.Executable.
	Self string
	// ClientVersion is what agentd tells MCP servers it is.
	ClientVersion string
	// Fleet, if set, replicates the version history across the fleet's
	// replicas (internal/fleet's *Node); nil: a single replica.
	Fleet  Fleet
	Logger *zap.Logger
}

// Fleet is the fleet a replica belongs to: the replicated log the
// history's versions go through, and the guard's channel to the leader.
// *fleet.Node implements it.
type Fleet interface {
	rollback.Replicator
	// Start begins replicating into h; observe is this replica's guard,
	// which the followers' samples reach while it leads.
	Start(h *rollback.History, observe func(rollback.Sample, canary.ByDimension)) error
	// IsLeader tells whether this replica leads the fleet now: only the
	// leader's guard judges.
	IsLeader() bool
	// Sample sends a finished turn to the leader's guard.
	Sample(s rollback.Sample, values canary.ByDimension)
}

// ConfigError is an invalid configuration tree or mcp.json at start: the
// operator's to fix (agentd exits 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Plane is the control plane. Build it with New.
type Plane struct {
	cfg     Config
	log     *zap.Logger
	tree    *served
	router  *canary.Router
	history *rollback.History
	guard   *rollback.Guard
	mcp     *mcpHub
	hidden  []string // what no command may read: the data directory, the keys file, the configuration tree

	filesMu sync.Mutex
	files   []watched // AddFile's

	watchOnce sync.Once
	stop      chan struct{}
	done      chan struct{} // closed when the watcher has stopped (at once if none started)
	closeOnce sync.Once
}

// New loads the configuration tree, proves its sandbox on this kernel,
// opens the version history (applying canary.json if it changed since the
// stored version), starts the guard, and reads mcp.json. A tree or mcp.json
// that does not load is a *ConfigError.
func New(ctx context.Context, cfg Config) (*Plane, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Self == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the agentd binary for the sandbox helper: %w", err)
		}
		cfg.Self = self
	}
	dir, err := filepath.Abs(cfg.ConfigDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, &ConfigError{fmt.Errorf("config dir %s (AGENTD_CONFIG_DIR) is not a readable directory", cfg.ConfigDir)}
	}
	data, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.ConfigDir, cfg.DataDir = dir, data
	hidden, err := hiddenPaths(cfg.DataDir, cfg.KeysFile, cfg.ConfigDir)
	if err != nil {
		return nil, err
	}
	p := &Plane{cfg: cfg, log: cfg.Logger.Named("canary"), hidden: hidden, stop: make(chan struct{}), done: make(chan struct{})}
	close(p.done) // no watcher yet
	if p.tree, err = newServed(ctx, cfg.ConfigDir, cfg.Self, cfg.Logger); err != nil {
		return nil, err
	}
	empty, err := canary.Compile(canary.Document{}, p.known())
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("the configuration tree cannot serve defaults: %w", err)}
	}
	p.router = canary.NewRouter(empty, 0)
	// The history serves a version before the guard exists (Open applies
	// the stored or file version); the guard reads the served one when it
	// starts, and every later version through OnApply.
	var guard *rollback.Guard
	var repl rollback.Replicator
	if cfg.Fleet != nil {
		repl = cfg.Fleet
	}
	p.history, err = rollback.Open(ctx, rollback.Config{
		Replicator: repl,
		Store:      cfg.Versions, Router: p.router, Known: p.known, Hashes: p.hashes,
		ReadFile: func() ([]byte, error) { return os.ReadFile(filepath.Join(cfg.ConfigDir, governance.CanaryFile)) },
		Logger:   cfg.Logger,
		OnApply: func(pol *canary.Policy, _ rollback.Version) {
			if guard != nil {
				guard.Configure(pol)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	guard = rollback.NewGuard(p.history, cfg.Logger)
	p.guard = guard
	if p.mcp, err = newMCPHub(p, cfg.Logger); err != nil {
		p.guard.Close()
		return nil, err
	}
	if cfg.Fleet != nil {
		if err := cfg.Fleet.Start(p.history, guard.Observe); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// known is what canary values may name: the tree's skill sets, rule
// versions, sandbox profiles and instruction files, and the model catalog.
func (p *Plane) known() canary.Known { return p.tree.tree().Known(p.cfg.Model, p.cfg.Models) }

// hashes are the content hashes of what a policy points at, recorded with
// each version.
func (p *Plane) hashes(pol *canary.Policy) map[string]string { return p.tree.tree().Hashes(pol) }

// Watch re-reads the configuration tree, canary.json and mcp.json every
// interval and when reload fires (SIGHUP), until Close; it also sweeps
// what killed sandbox helpers left (sandbox.SweepCgroups). Call it once.
func (p *Plane) Watch(every time.Duration, reload <-chan os.Signal) {
	p.watchOnce.Do(func() {
		p.done = make(chan struct{})
		go func() {
			defer close(p.done)
			t := time.NewTicker(every)
			defer t.Stop()
			sandbox.SweepCgroups() // what commands of an agentd that died with its helpers left
			for {
				why, force := "canary.json changed", false
				select {
				case <-p.stop:
					return
				case <-t.C:
				case <-reload:
					why, force = "SIGHUP", true
					p.log.Info("SIGHUP: reloading the configuration")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				p.Refresh(ctx, why, force)
				cancel()
				sandbox.SweepCgroups()
			}
		}()
	})
}

// Refresh reloads the tree (if its files changed, or force), keeping the
// old one if the new one is invalid or breaks the served canary
// configuration; records a version if what the configuration points at
// changed; reloads canary.json; and restarts the MCP servers if mcp.json
// changed (keeping them if it is invalid). why says what prompted it, for
// the history. Errors are logged where they happen.
func (p *Plane) Refresh(ctx context.Context, why string, force bool) {
	changed, _ := p.tree.reload(ctx, force, func(t *governance.Tree) error {
		_, v := p.history.Current()
		if _, err := canary.Parse(v.Canary, t.Known(p.cfg.Model, p.cfg.Models)); err != nil {
			return fmt.Errorf("the served canary configuration (version %d) needs what the new tree lacks: %w", v.N, err)
		}
		return nil
	})
	// In a fleet the leader compares the tree with the applied version at
	// every poll (a new leader's tree may differ from what was applied).
	if changed || p.cfg.Fleet != nil {
		treeWhy := "configuration tree changed"
		if force {
			treeWhy += " (SIGHUP)"
		}
		_, _, _ = p.history.Refresh(ctx, treeWhy)
	}
	_, _, _ = p.history.Reload(ctx, why) // logged by the history
	p.mcp.reload()
	p.reloadFiles()
}

// CloseMCP ends every MCP server and waits until each child is reaped
// (the first step of a shutdown, after the turns have ended).
func (p *Plane) CloseMCP() { p.mcp.close() }

// Close stops the watcher and the guard and ends the MCP servers. Later
// calls do nothing.
func (p *Plane) Close() {
	p.closeOnce.Do(func() {
		close(p.stop)
		<-p.done
		p.guard.Close()
		p.mcp.close()
		sandbox.ReleaseCgroups() // the preflight's parent of command cgroups, now empty
	})
}

// Models lists the model catalog of the served configuration: what
// sessions may switch to (the ACP "model" config option offers it).
func (p *Plane) Models() []string {
	pol, _ := p.router.Current()
	return pol.Models()
}

// CheckModel accepts the models of the served catalog.
func (p *Plane) CheckModel(m string) error {
	if models := p.Models(); !slices.Contains(models, m) {
		return fmt.Errorf("%w: model %q is not in the catalog: %s", session.ErrInvalid, m, strings.Join(models, ", "))
	}
	return nil
}

// Assign gives a new session its assignment.
func (p *Plane) Assign(tenant, user string) (session.Assignment, error) {
	a := p.router.Assign(tenant, user)
	var out session.Assignment
	for _, dim := range canary.Dimensions() {
		pick := a.Get(dim)
		out.SetValue(dim, pick.Value)
		if pick.Variant != "" {
			if out.Variants == nil {
				out.Variants = map[string]string{}
			}
			out.Variants[dim.String()] = pick.Variant
		}
	}
	out.ConfigVersion = a.Version
	return out, nil
}

// Rebind runs at a session's turn boundary and moves it, one dimension at a
// time, off what was rolled back since it was assigned; it says what it
// changed, one line per dimension. Nothing else moves a live session: a
// forward change of canary.json applies to new sessions only.
//
//   - A revert took the version that assigned the session out of service:
//     each dimension moves to what the reverting version gives its user,
//     unless canary.json says "on_rollback": "finish" for it.
//   - Its variant is halted: it moves to stable, unless "finish".
//   - Its value no longer exists (a rule version, skill set or instructions
//     file removed, a model out of the catalog): it moves to stable, even
//     under "finish", since the value cannot run.
//
// The history, the workspace and the session's explicit model choice (if
// still in the catalog) are kept.
func (p *Plane) Rebind(s *session.Session) []string {
	pol, cur := p.history.Current()
	a := &s.Assignment
	var changes []string
	move := func(dim canary.Dimension, why string, to canary.Pick) {
		old := a.Value(dim)
		if old == to.Value && a.VariantOf(dim) == to.Variant {
			return
		}
		changes = append(changes, fmt.Sprintf("%s: %s; %s → %s (version %d)", dim, why, label(old, a.VariantOf(dim)), label(to.Value, to.Variant), cur.N))
		a.SetValue(dim, to.Value)
		if to.Variant == "" {
			delete(a.Variants, dim.String())
		} else {
			if a.Variants == nil {
				a.Variants = map[string]string{}
			}
			a.Variants[dim.String()] = to.Variant
		}
		if dim == canary.Model && s.Model == old {
			s.Model = to.Value
		}
	}
	if by, restored := p.history.RevertedBy(a.ConfigVersion); restored != nil {
		picks := restored.Assign(s.Tenant, s.User)
		for _, dim := range canary.Dimensions() {
			if !pol.Finish(dim) {
				move(dim, fmt.Sprintf("version %d was reverted by version %d", a.ConfigVersion, by), picks.Get(dim))
			}
		}
		a.ConfigVersion = by
	}
	tree := p.tree.tree()
	for _, dim := range canary.Dimensions() {
		stable := canary.Pick{Value: pol.Stable(dim)}
		if v := a.VariantOf(dim); v != "" && pol.Halted(dim, v) && !pol.Finish(dim) {
			move(dim, fmt.Sprintf("variant %s is halted", v), stable)
		}
		gone := !pol.HasModel(a.Model)
		if dim != canary.Model {
			gone = tree.Exists(dim, a.Value(dim)) != nil
		}
		if gone {
			// The line reaches the tenant (turns[].moved): it names the
			// session's own values, never the tree's others, which the
			// error of Exists would list.
			move(dim, "its value no longer exists", stable)
		}
	}
	if s.Model != a.Model && !pol.HasModel(s.Model) {
		changes = append(changes, fmt.Sprintf("model: the session's chosen model %s is not in the catalog; now %s (version %d)", s.Model, a.Model, cur.N))
		s.Model = a.Model
	}
	if len(a.Variants) == 0 {
		a.Variants = nil
	}
	return changes
}

// label names a value for a change line: "stable X" or "variant N (X)".
func label(value, variant string) string {
	if variant == "" {
		return "stable " + value
	}
	return fmt.Sprintf("variant %s (%s)", variant, value)
}

// Observe feeds a finished turn to the guard.
func (p *Plane) Observe(sum session.Summary, rec session.TurnRecord) {
	var values canary.ByDimension
	for _, dim := range canary.Dimensions() {
		values[dim] = sum.Assignment.Value(dim)
	}
	s := rollback.Sample{
		Variants:  sum.Assignment.CohortByDimension(),
		ToolCalls: rec.Stats.ToolCalls, ToolFailures: rec.Stats.ToolFailures,
		LLMCalls: rec.Stats.LLMCalls, LLM5xx: rec.Stats.LLM5xx,
		Tokens: rec.Stats.Usage.PromptTokens + rec.Stats.Usage.CompletionTokens,
	}
	if p.cfg.Fleet != nil && !p.cfg.Fleet.IsLeader() { // only the leader's guard judges, on the whole fleet's turns
		p.cfg.Fleet.Sample(s, values)
		return
	}
	p.guard.Observe(s, values)
}

// Variant is one canary variant as configured now.
type Variant struct {
	Dimension canary.Dimension
	Name      string
	Percent   float64
	Halted    bool
}

// Variants returns the served configuration version and its variants.
func (p *Plane) Variants() (int, []Variant) {
	pol, v := p.history.Current()
	doc := pol.Document()
	var out []Variant
	for _, dim := range canary.Dimensions() {
		spec := doc.Spec(dim)
		if spec == nil {
			continue
		}
		for _, cv := range spec.Variants {
			out = append(out, Variant{Dimension: dim, Name: cv.Name, Percent: cv.Percent, Halted: pol.Halted(dim, cv.Name)})
		}
	}
	return v.N, out
}

// MCPChildren counts the running MCP server processes.
func (p *Plane) MCPChildren() int { return p.mcp.children() }
