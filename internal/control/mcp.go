package control

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/governance"
	"github.com/agentd/agentd/internal/mcptools"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/secrets"
)

// mcpFile is where the MCP servers of the configuration tree are listed.
const mcpFile = governance.MCPFile

// mcpSandboxTool is the tool name sandbox.json rules use for MCP stdio
// servers: {"tool": "mcp", "profile": "workspace-write"} gives them network.
const mcpSandboxTool = "mcp"

// mcpFirstWait bounds how long the first turn of a tenant waits for its
// MCP servers to start (holding its session's lock); servers that take
// longer join a later turn.
const mcpFirstWait = 5 * time.Second

// loadMCP reads and validates mcp.json in dir; no file is no servers.
func loadMCP(dir string) (mcptools.Config, [32]byte, error) {
	data, err := os.ReadFile(filepath.Join(dir, mcpFile))
	if errors.Is(err, fs.ErrNotExist) {
		return mcptools.Config{}, [32]byte{}, nil
	}
	if err != nil {
		return mcptools.Config{}, [32]byte{}, err
	}
	cfg, err := mcptools.Parse(data, nil)
	if err != nil {
		return mcptools.Config{}, [32]byte{}, fmt.Errorf("%s:\n%w", mcpFile, err)
	}
	return cfg, sha256.Sum256(data), nil
}

// mcpHub runs the MCP servers of mcp.json for every tenant: one
// mcptools.Manager per tenant, made at the tenant's first turn, never
// shared (a stdio server's process, environment and directory belong to
// one tenant). A changed mcp.json replaces the managers: the old ones are
// closed, the new ones start at each tenant's next turn.
type mcpHub struct {
	p   *Plane
	dir string // <data>/mcp: a directory per tenant
	log *zap.Logger

	mu       sync.Mutex
	cfg      mcptools.Config
	hash     [32]byte
	tenants  map[string]*tenantMCP
	retired  sync.WaitGroup // managers being closed after a reload
	isClosed bool
	refused  string // why mcp.json on disk is not served ("" when it is)
}

type tenantMCP struct {
	m     *mcptools.Manager
	ready chan struct{} // closed when the first Start returned
}

func newMCPHub(p *Plane, log *zap.Logger) (*mcpHub, error) {
	mc, hash, err := loadMCP(p.cfg.ConfigDir)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("configuration tree %s: %w", p.cfg.ConfigDir, err)}
	}
	h := &mcpHub{
		p: p, dir: filepath.Join(p.cfg.DataDir, "mcp"), log: log.Named("mcp"),
		cfg: mc, hash: hash, tenants: map[string]*tenantMCP{},
	}
	if n := len(mc.Servers); n > 0 {
		h.log.Info("MCP servers configured; each tenant's start at its first turn", zap.Strings("servers", mc.Names()))
	}
	return h, nil
}

// reload re-reads mcp.json; an invalid file keeps the servers running.
// refusal says why mcp.json on disk is not served, or "".
func (h *mcpHub) refusal() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused
}

func (h *mcpHub) reload() {
	mc, hash, err := loadMCP(h.p.cfg.ConfigDir)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isClosed {
		return
	}
	if err == nil && hash == h.hash {
		h.refused = "" // back to what is served
		return
	}
	if err != nil {
		if err.Error() != h.refused { // retried at every poll: say it once per reason
			h.log.Error("mcp.json changed but is invalid; the running MCP servers stay", zap.Error(err))
		}
		h.refused = err.Error()
		return
	}
	h.refused = ""
	old := h.tenants
	h.cfg, h.hash, h.tenants = mc, hash, map[string]*tenantMCP{}
	h.log.Info("mcp.json changed: MCP servers restart at each tenant's next turn", zap.Strings("servers", mc.Names()), zap.Int("tenants_closed", len(old)))
	for _, t := range old {
		h.retired.Add(1)
		go func() {
			defer h.retired.Done()
			_ = t.m.Close()
		}()
	}
}

// tools returns the MCP tools of tenant, starting its servers at its first
// turn (waiting at most mcpFirstWait for them).
func (h *mcpHub) tools(ctx context.Context, tenant string) []agent.Tool {
	h.mu.Lock()
	if h.isClosed || len(h.cfg.Servers) == 0 {
		h.mu.Unlock()
		return nil
	}
	t, ok := h.tenants[tenant]
	if !ok {
		t = &tenantMCP{m: h.manager(tenant), ready: make(chan struct{})}
		h.tenants[tenant] = t
		go func() {
			defer close(t.ready)
			_ = t.m.Start(context.Background())
			for _, s := range t.m.Health() {
				if s.State != mcptools.StateConnected {
					h.log.Warn("MCP server did not start; retried at later turns", zap.String("tenant", tenant),
						zap.String("server", s.Name), zap.String("error", s.LastError))
				}
			}
		}()
	}
	h.mu.Unlock()
	select {
	case <-t.ready: // the usual case: started long ago
	default:
		wait := time.NewTimer(mcpFirstWait)
		select {
		case <-t.ready:
		case <-ctx.Done():
		case <-wait.C:
		}
		wait.Stop()
	}
	return t.m.Tools()
}

// manager makes tenant's Manager; its stdio servers work in
// <data>/mcp/<tenant> under the sandbox profile sandbox.json gives "mcp",
// with HOME there, a TMPDIR below it, and only sandbox.CommandEnv's base
// list plus what each server's mcp.json entry sets.
func (h *mcpHub) manager(tenant string) *mcptools.Manager {
	dir := filepath.Join(h.dir, tenant)
	tmp := filepath.Join(dir, "tmp")
	return mcptools.New(h.cfg, mcptools.Options{
		Dir:    dir,
		Env:    func() []string { return sandbox.CommandEnv(os.Environ(), nil, dir, tmp) },
		Logger: h.log.With(zap.String("tenant", tenant)),
		PrepareCommand: func(cmd *exec.Cmd) error {
			// The server owns dir: make its TMPDIR through an os.Root, so
			// that a link it planted cannot carry agentd's mkdir elsewhere.
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return err
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				return err
			}
			err = root.MkdirAll("tmp", 0o700)
			root.Close()
			if err != nil {
				return fmt.Errorf("make the server's TMPDIR: %w", err)
			}
			pol, err := h.p.tree.tree().Sandbox()
			if err != nil {
				return fmt.Errorf("sandbox misconfigured: %w", err)
			}
			return pol.HookWith(h.p.cfg.Self, dir, mcpSandboxTool, "", sandbox.Confine{Hidden: h.p.hidden})(cmd)
		},
		ClientVersion: h.p.cfg.ClientVersion,
	})
}

// children counts the running stdio server processes.
func (h *mcpHub) children() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, t := range h.tenants {
		n += t.m.Children()
	}
	return n
}

// close ends every server and waits until each child is reaped.
func (h *mcpHub) close() {
	h.mu.Lock()
	h.isClosed = true
	all := h.tenants
	h.tenants = map[string]*tenantMCP{}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, t := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = t.m.Close()
		}()
	}
	wg.Wait()
	h.retired.Wait()
}

// CheckMCP validates the tree's mcp.json for agentd check: its format,
// the variables it expects from the environment, and no literal
// credentials (they belong in ${VAR}). No file is no problem.
func CheckMCP(dir string) (warnings, problems []string) {
	data, err := os.ReadFile(filepath.Join(dir, mcpFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []string{fmt.Sprintf("%s: %v", mcpFile, err)}
	}
	for _, fd := range secrets.Scan(string(data)) {
		problems = append(problems, fmt.Sprintf("%s:%d: looks like a secret (%s, column %d); write ${VAR} and set it in agentd's environment", mcpFile, fd.Line, fd.Kind, fd.Column))
	}
	cfg, err := mcptools.Parse(data, nil)
	var ce *mcptools.ConfigError
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", mcpFile, p.Line, p.Field, p.Message))
		}
		return warnings, problems
	case err != nil:
		return warnings, append(problems, fmt.Sprintf("%s: %v", mcpFile, err))
	}
	for _, name := range cfg.Names() {
		for _, v := range cfg.Servers[name].UnsetVars {
			warnings = append(warnings, fmt.Sprintf("%s: server %s uses $%s, which is not set here (it expands to \"\")", mcpFile, name, v))
		}
	}
	return warnings, problems
}

// Check validates the configuration tree at dir for agentd check: the tree
// (governance.Check), mcp.json and, with proveSandbox, its sandbox.json on
// this kernel (the preflight serve runs at start; its report is returned):
// a profile the tree uses that cannot be enforced is a problem.
func Check(ctx context.Context, dir string, o governance.CheckOptions, proveSandbox bool) (governance.Report, *sandbox.Report, error) {
	r := governance.Check(dir, o)
	mw, mp := CheckMCP(dir)
	r.Warnings, r.Problems = append(r.Warnings, mw...), append(r.Problems, mp...)
	if !proveSandbox || r.Tree == nil {
		return r, nil, nil
	}
	pol, err := r.Tree.Sandbox()
	if err != nil {
		return r, nil, nil // a problem of the tree already
	}
	self, err := os.Executable()
	if err != nil {
		return r, nil, fmt.Errorf("find the agentd binary for the sandbox helper: %w", err)
	}
	rep := sandbox.Preflight(ctx, self, pol)
	sandbox.ReleaseCgroups()
	for _, p := range rep.Profiles {
		if p.InUse && !p.OK {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: profile %s cannot be enforced on this kernel: %s", governance.SandboxFile, p.Profile, p.Problem))
		}
	}
	return r, &rep, nil
}
