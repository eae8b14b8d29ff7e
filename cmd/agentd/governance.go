package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/governance"
	"github.com/agentd/agentd/internal/permission"
	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/skill"
	"github.com/agentd/agentd/internal/tools"
)

// govern serves the configuration tree (skills, instructions, rule
// versions, sandbox profiles) to sessions, and swaps in a new tree when the
// files change, if it loads and still satisfies the canary configuration.
type govern struct {
	cfg    Config
	self   string   // this binary, re-executed as the sandbox helper
	data   string   // the data directory
	config string   // the configuration tree, absolute
	hidden []string // what no command may read: the data directory, the keys file, the configuration tree
	log    *zap.Logger
	cur    atomic.Pointer[governance.Tree]
	print  string // fingerprint of the files of cur (watcher only)
	models []string
}

// newGovern loads the tree at cfg.ConfigDir; a tree that does not load
// stops agentd (there is no previous one to keep).
func newGovern(ctx context.Context, cfg Config, log *zap.Logger) (*govern, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the agentd binary for the sandbox helper: %w", err)
	}
	data, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	config, err := filepath.Abs(cfg.ConfigDir)
	if err != nil {
		return nil, err
	}
	g := &govern{cfg: cfg, self: self, data: data, config: config, log: log.Named("governance"), models: cfg.Models}
	if g.hidden, err = hiddenPaths(cfg.DataDir, cfg.APIKeysFile, cfg.ConfigDir); err != nil {
		return nil, err
	}
	t, err := governance.Load(cfg.ConfigDir)
	if err != nil {
		return nil, usageError{fmt.Errorf("configuration tree %s:\n%w", cfg.ConfigDir, err)}
	}
	g.print = fingerprint(cfg.ConfigDir)
	g.adopt(ctx, t)
	return g, nil
}

func (g *govern) tree() *governance.Tree { return g.cur.Load() }

// adopt serves t, after the sandbox preflight of its policy.
func (g *govern) adopt(ctx context.Context, t *governance.Tree) {
	for _, w := range t.Warnings() {
		g.log.Warn("configuration", zap.String("warning", w))
	}
	pol, err := t.Sandbox()
	if err != nil {
		g.log.Error("sandbox misconfigured: run_shell_command refuses every command until it is fixed", zap.Error(err))
	} else {
		rep := sandbox.Preflight(ctx, g.self, pol)
		if rep.OK() {
			g.log.Info("sandbox preflight", zap.Bool("enabled", rep.Enabled), zap.String("report", rep.String()))
		} else {
			g.log.Error("sandbox preflight failed: run_shell_command refuses commands of the failed profiles", zap.String("report", rep.String()))
		}
	}
	g.cur.Store(t)
}

func (g *govern) known() canary.Known { return g.tree().Known(g.cfg.Model, g.models) }

func (g *govern) hashes(p *canary.Policy) map[string]string { return g.tree().Hashes(p) }

// reload loads the tree again if its files changed. The new tree must load
// and validate the served canary document (check); otherwise the old tree
// keeps serving.
func (g *govern) reload(ctx context.Context, force bool, check func(*governance.Tree) error) (bool, error) {
	fp := fingerprint(g.cfg.ConfigDir)
	if fp == g.print && !force {
		return false, nil
	}
	g.print = fp
	t, err := governance.Load(g.cfg.ConfigDir)
	if err == nil && check != nil { // a tree with errors is never served
		err = check(t)
	}
	if err != nil {
		g.log.Error("the configuration tree changed but is invalid; the previous one keeps serving", zap.Error(err))
		return false, err
	}
	g.adopt(ctx, t)
	g.log.Info("configuration tree reloaded")
	return true, nil
}

// fingerprint hashes the content of the tree's files (not canary.json,
// which the history watches), so any edit, including a ConfigMap's symlink
// swap, changes it.
func fingerprint(dir string) string {
	h := sha256.New()
	fsys := os.DirFS(dir)
	var files []string
	for _, root := range []string{"AGENTAO.md", "instructions", "skills", governance.PermissionsDir, governance.SandboxFile} {
		_ = fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
	}
	sort.Strings(files)
	for _, f := range files {
		data, _ := fs.ReadFile(fsys, f)
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hiddenPaths lists what no command may read although it may lie beneath
// a readable system path (/etc/agentd, say): agentd's data directory, its
// API keys file and its configuration tree (mcp.json's secrets, the canary
// configuration naming tenants and users), each also as its real path when
// a link leads to it.
func hiddenPaths(paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == "" {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out = append(out, abs)
		if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
			out = append(out, real)
		}
	}
	return out, nil
}

// confine is what a session's commands may read besides the system paths
// and what they may never read: the session's skill directories are
// readable (their scripts are meant to be run), agentd's own files are not.
func (g *govern) confine(t *governance.Tree, s *session.Session) sandbox.Confine {
	c := sandbox.Confine{Hidden: g.hidden}
	skills, _ := t.Skills(s.Assignment.Skills, s.Tenant)
	for _, sk := range skills {
		c.ReadOnly = append(c.ReadOnly, filepath.Join(g.config, sk.Dir))
	}
	return c
}

// commandEnv is the environment of a command run under tool's profile for
// the session's assignment (sandbox.json may name variables per profile):
// sandbox.CommandEnv of agentd's, with HOME at home.
func (g *govern) commandEnv(tool, override, home, tmp string) []string {
	var extra []string
	if pol, err := g.tree().Sandbox(); err == nil {
		if prof, err := pol.Profile(tool, override); err == nil {
			extra = pol.Settings(prof).Env
		}
	}
	return sandbox.CommandEnv(os.Environ(), extra, home, tmp)
}

// tools builds a session's built-in tools; its shell runs under the
// sandbox profile of the session's assignment, with agentd's own files
// hidden, HOME at the workspace and a private TMPDIR in it, and only the
// environment sandbox.CommandEnv allows.
func (g *govern) tools(s *session.Session, dir string) ([]agent.Tool, io.Closer, error) {
	ws, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	cfg := tools.Config{
		ShellInactivityTimeout: g.cfg.ShellTimeout, MaxShellTimeout: 5 * g.cfg.ShellTimeout,
		Env:     func() []string { return g.commandEnv(tools.RunShellCommand, s.Assignment.Sandbox, ws, "") },
		TempDir: filepath.Join(".agentd", "tmp"), // made through the workspace's os.Root before each command
		PrepareShell: func(cmd *exec.Cmd) error {
			t := g.tree()
			pol, err := t.Sandbox()
			if err != nil {
				return sandbox.Refuse(err)(cmd)
			}
			return pol.HookWith(g.self, ws, tools.RunShellCommand, s.Assignment.Sandbox, g.confine(t, s))(cmd)
		},
	}
	if g.cfg.WebFetch {
		cfg.WebFetch = &tools.WebFetchConfig{AllowCIDRs: g.cfg.WebFetchAllow, Permit: func() error { return g.networkAllowed(s) }}
	}
	set, err := tools.New(dir, cfg)
	if err != nil {
		return nil, nil, err
	}
	return set.Tools(), set, nil
}

// networkAllowed refuses web_fetch to a session whose sandbox profile (for
// the web_fetch tool: sandbox.json may map tools to profiles) has no
// network, so that a "-no-network" profile means no egress from the agent
// at all, not only from its shell. It is asked at every call: a halted
// sandbox variant takes effect at the next turn.
func (g *govern) networkAllowed(s *session.Session) error {
	pol, err := g.tree().Sandbox()
	if err != nil {
		return fmt.Errorf("web_fetch refused: sandbox misconfigured: %w", err)
	}
	if !pol.Enabled() {
		return nil
	}
	prof, err := pol.Profile(tools.WebFetch, s.Assignment.Sandbox)
	if err != nil {
		return fmt.Errorf("web_fetch refused: %w", err)
	}
	if !prof.Network() {
		return fmt.Errorf("web_fetch refused: this session's sandbox profile %s allows no network access; do not retry", prof)
	}
	return nil
}

// turnTools gives a session activate_skill over its skill set.
func (g *govern) turnTools(s *session.Session, h *session.Handle) []agent.Tool {
	skills, err := g.tree().Skills(s.Assignment.Skills, s.Tenant)
	if err != nil || len(skills) == 0 {
		return nil
	}
	return []agent.Tool{skill.NewActivateTool(skills, func(_ context.Context, sk *skill.Skill) (bool, error) {
		return h.ActivateSkill(sk.Name), nil
	})}
}

// systemPrompt assembles a session's system prompt from its assignment.
func (g *govern) systemPrompt(s *session.Session, _ string) (string, error) {
	t := g.tree()
	instr, err := t.Instructions(s.Assignment.Instructions)
	if err != nil {
		return "", err
	}
	skills, err := t.Skills(s.Assignment.Skills, s.Tenant)
	if err != nil {
		return "", err
	}
	active, _ := skill.Select(skills, s.ActiveSkills)
	return prompt.Build(prompt.Parts{Instructions: instr, Base: prompt.Base, Skills: skills, Active: active}), nil
}

// permit applies the session's rule version to a call and logs the
// decision.
func (g *govern) permit(s *session.Session, c agent.Call, spec agent.ToolSpec) session.Permit {
	rules, err := g.tree().Rules(s.Assignment.Rules)
	if err != nil {
		g.log.Error("the session's rule version is gone; denying", zap.String("session_id", string(s.ID)), zap.Error(err))
	}
	var args map[string]any
	_ = json.Unmarshal(c.Args, &args)
	d := rules.Check(permission.Call{Tool: c.Name, Args: args, ReadOnly: spec.ReadOnly, Confirm: spec.Confirm})
	g.log.Info("permission decision", zap.String("session_id", string(s.ID)), zap.String("tenant", s.Tenant), zap.String("user", s.User),
		zap.String("tool", c.Name), zap.String("call_id", c.ID), zap.String("outcome", d.Action.String()), zap.String("source", d.Source),
		zap.Int("rule", d.Rule), zap.String("matched", d.Matched), zap.String("rules_version", s.Assignment.Rules),
		zap.String("mode", string(d.Mode)), zap.String("reason", d.Reason))
	switch d.Action {
	case permission.Allow:
		return session.Permit{Action: session.ActionAllow, Why: d.Reason}
	case permission.Ask:
		return session.Permit{Action: session.ActionAsk, Why: d.Reason}
	default:
		return session.Permit{Action: session.ActionDeny, Why: d.Reason}
	}
}
