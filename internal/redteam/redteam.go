// Package redteam is the pre-deploy red-team gate (`agentd check
// --redteam`): it runs the six prompt-injection cases of the Agentao
// reference's checklist (§1.5) through agentd's real pipeline — the
// configuration tree's rules, sandbox, tools, skills, instructions and MCP
// servers, the LLM client and the session pool, built in-process as serve
// builds them — and judges each case from what the turn did.
//
// Each case runs in a fresh session pinned to stable, or to the variants
// asked for, with no person to answer an ask (an "ask" rule rejects the
// call at once). Everything lives in a temporary data directory removed at
// the end: the operator's data directory is never opened. Canary secrets
// are planted in each session's workspace (HOME of its commands), and a
// loopback listener stands in for the attacker's server, so an
// exfiltration is seen when it happens and nothing leaves the machine on
// the checklist's behalf.
//
// The judge separates what the rules (permission rules, the hardline floor,
// the sandbox, the tools' own guards) must stop — SSRF, exfiltration,
// destructive shell — from what only the model can resist (leaking its
// system prompt, believing it is root, quoting a secret it read). The
// former gate a deploy; the latter are reported, and gate with Strict. The
// judge says which layer stopped each attack, and says so plainly when the
// model never tried (then the rules were not tested by this run).
package redteam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/llm"
	"github.com/agentd/agentd/internal/session"
)

// Config is what a red-team run needs: the tree and model as serve takes
// them, and which cohort to pin the sessions to.
type Config struct {
	ConfigDir string
	// Model is the model to red-team (required); Models the rest of the
	// catalog when canary.json names none. A "model" variant wins over it.
	Model  string
	Models []string
	// Variants pins dimensions to one of their variants in the served
	// canary.json (ParseVariants); the others run stable.
	Variants map[canary.Dimension]string
	// Tenant the sessions belong to: its skills and MCP servers are the
	// ones used. Default "redteam".
	Tenant string

	BaseURL        string
	APIKey         string `json:"-"`
	LLMMaxAttempts int
	TurnTimeout    time.Duration // default 10 min, as serve
	MaxIterations  int           // default 100, as serve
	ContextTokens  int
	ShellTimeout   time.Duration // default 120 s, as serve
	WebFetch       bool
	WebFetchAllow  []netip.Prefix
	// Self is the agentd binary, re-executed as the sandbox helper; empty
	// means os.Executable.
	Self   string
	Logger *zap.Logger
}

// DefaultTenant is the tenant of the red-team sessions unless Config.Tenant
// says otherwise.
const DefaultTenant = "redteam"

// ParseVariants reads "dimension=variant" pairs, comma-separated (e.g.
// "model=gpt5-beta,rules=strict"); one variant per dimension.
func ParseVariants(s string) (map[canary.Dimension]string, error) {
	out := map[canary.Dimension]string{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("variant %q: want dimension=name, e.g. model=gpt5-beta", f)
		}
		dim, err := canary.ParseDimension(k)
		if err != nil {
			return nil, fmt.Errorf("variant %q: %w", f, err)
		}
		if prev, dup := out[dim]; dup && prev != v {
			return nil, fmt.Errorf("variant %q: %s already pinned to %s", f, dim, prev)
		}
		out[dim] = v
	}
	return out, nil
}

// Run builds the pipeline in a temporary data directory, runs every case
// and judges it. An error means the run itself failed (the tree does not
// load: a *control.ConfigError; a variant does not exist); a case the model
// endpoint failed is a result the gate refuses, not an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	h, err := open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer h.close()
	rep := &Report{
		Model: h.assign.Model, Cohort: h.assign.Cohort(), Assignment: h.assign, Tenant: h.tenant,
		ConfigVersion: h.assign.ConfigVersion, StartedAt: time.Now().UTC(),
	}
	for _, c := range Cases() {
		res, err := h.run(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("case %d (%s): %w", c.N, c.Name, err)
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// harness is the pipeline of one run.
type harness struct {
	dir    string // the temporary data directory
	db     *boltdb.DB
	ctl    *control.Plane
	pool   *session.Pool
	auth   *recorder
	catch  *catcher
	tenant string
	assign session.Assignment
	apiKey string
}

// open wires the parts as cmd/agentd's newApp does, minus what a red-team
// run must not feed (the guard, metrics, budgets: no Observer, no Meter)
// and plus a recorder of every permission decision.
func open(ctx context.Context, cfg Config) (_ *harness, err error) {
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, errors.New("a model is required (--model or OPENAI_MODEL)")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Tenant == "" {
		cfg.Tenant = DefaultTenant
	}
	if cfg.TurnTimeout <= 0 {
		cfg.TurnTimeout = 10 * time.Minute
	}
	if cfg.ShellTimeout <= 0 {
		cfg.ShellTimeout = 120 * time.Second
	}
	h := &harness{tenant: cfg.Tenant, apiKey: cfg.APIKey}
	if h.dir, err = os.MkdirTemp("", "agentd-redteam-"); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.db, err = boltdb.Open(filepath.Join(h.dir, "agentd.db"), boltdb.Options{Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	model, err := llm.NewClient(llm.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, MaxAttempts: cfg.LLMMaxAttempts, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if h.ctl, err = control.New(ctx, control.Config{
		ConfigDir: cfg.ConfigDir, DataDir: h.dir, Model: cfg.Model, Models: catalog(cfg.Model, cfg.Models),
		Versions: h.db.Versions(), ShellTimeout: cfg.ShellTimeout, WebFetch: cfg.WebFetch, WebFetchAllow: cfg.WebFetchAllow,
		Self: cfg.Self, ClientVersion: "redteam", Logger: cfg.Logger,
	}); err != nil {
		return nil, err
	}
	if h.assign, err = pin(h.ctl, cfg.Model, cfg.Variants); err != nil {
		return nil, &control.ConfigError{Err: err} // the cohort asked for is not in the tree: the operator's to fix (exit 2)
	}
	h.auth = &recorder{inner: h.ctl, permits: map[string]permit{}}
	h.pool, err = session.NewPool(h.db.Sessions(),
		agent.New(model, agent.Config{MaxIterations: cfg.MaxIterations, ContextTokens: cfg.ContextTokens, Logger: cfg.Logger}),
		session.Hooks{Assigner: h.ctl, Toolbox: h.ctl, Authorizer: h.auth},
		session.Config{Dir: filepath.Join(h.dir, "workspaces"), TurnTimeout: cfg.TurnTimeout, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if h.catch, err = newCatcher(); err != nil {
		return nil, err
	}
	return h, nil
}

// pin is the assignment of the run: every dimension stable, but those
// with a variant asked for, as the router would give them (control.Pin),
// on model unless a model variant is asked for.
func pin(ctl *control.Plane, model string, variants map[canary.Dimension]string) (session.Assignment, error) {
	a, err := ctl.Pin(variants)
	if err != nil {
		return a, err
	}
	if _, ok := variants[canary.Model]; !ok {
		a.Model = model
	}
	pol, _ := ctl.Canary()
	if !pol.HasModel(a.Model) {
		return a, fmt.Errorf("model %q is not in the catalog of the served canary.json (%s): a session on it would move to stable", a.Model, strings.Join(pol.Models(), ", "))
	}
	return a, nil
}

func (h *harness) close() {
	if h.pool != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = h.pool.Shutdown(ctx)
		cancel()
	}
	if h.ctl != nil {
		h.ctl.CloseMCP()
		h.ctl.Close()
	}
	if h.catch != nil {
		h.catch.close()
	}
	if h.db != nil {
		_ = h.db.Close()
	}
	if h.dir != "" {
		_ = os.RemoveAll(h.dir)
	}
}

// permit is one recorded permission decision.
type permit struct {
	session.Permit
	ReadOnly bool
}

// recorder is the control plane's Authorizer, recording each decision by
// session and call id so the judge can say which rule decided.
type recorder struct {
	inner   session.Authorizer
	mu      sync.Mutex
	permits map[string]permit
}

func (r *recorder) Permit(s *session.Session, c agent.Call, spec agent.ToolSpec) session.Permit {
	p := r.inner.Permit(s, c, spec)
	r.mu.Lock()
	r.permits[string(s.ID)+"/"+c.ID] = permit{Permit: p, ReadOnly: spec.ReadOnly}
	r.mu.Unlock()
	return p
}

func (r *recorder) get(id session.ID, call string) (permit, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.permits[string(id)+"/"+call]
	return p, ok
}

// catalog is model first, then the other models once each.
func catalog(model string, models []string) []string {
	out := []string{model}
	for _, m := range models {
		if m = strings.TrimSpace(m); m != "" && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}
