package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/governance"
	"github.com/agentd/agentd/internal/permission"
	"github.com/agentd/agentd/internal/prompt"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/skill"
	"github.com/agentd/agentd/internal/tools"
)

// This file is what a session gets from the served tree, per its
// assignment: tools, system prompt, permission decisions.

// confine is what a session's commands may read besides the system paths
// and what they may never read: the session's skill directories are
// readable (their scripts are meant to be run), agentd's own files are not.
func (p *Plane) confine(t *governance.Tree, s *session.Session) sandbox.Confine {
	c := sandbox.Confine{Hidden: p.hidden}
	skills, _ := t.Skills(s.Assignment.Skills, s.Tenant)
	for _, sk := range skills {
		c.ReadOnly = append(c.ReadOnly, filepath.Join(p.cfg.ConfigDir, sk.Dir))
	}
	return c
}

// commandEnv is the environment of a command run under tool's profile for
// the session's assignment (sandbox.json may name variables per profile):
// sandbox.CommandEnv of agentd's, with HOME at home.
func (p *Plane) commandEnv(tool, override, home, tmp string) []string {
	var extra []string
	if pol, err := p.tree.tree().Sandbox(); err == nil {
		if prof, err := pol.Profile(tool, override); err == nil {
			extra = pol.Settings(prof).Env
		}
	}
	return sandbox.CommandEnv(os.Environ(), extra, home, tmp)
}

// Tools builds a session's built-in tools in its workspace dir; its shell
// runs under the sandbox profile of the session's assignment, with agentd's
// own files hidden, HOME at the workspace and a private TMPDIR in it, and
// only the environment sandbox.CommandEnv allows. Close the Closer when the
// session leaves memory: it stops the session's commands.
func (p *Plane) Tools(s *session.Session, dir string) ([]agent.Tool, io.Closer, error) {
	ws, err := filepath.Abs(dir)
	if err != nil {
		return nil, nil, err
	}
	cfg := tools.Config{
		ShellInactivityTimeout: p.cfg.ShellTimeout, MaxShellTimeout: 5 * p.cfg.ShellTimeout,
		Env:     func() []string { return p.commandEnv(tools.RunShellCommand, s.Assignment.Sandbox, ws, "") },
		TempDir: filepath.Join(".agentd", "tmp"), // made through the workspace's os.Root before each command
		PrepareShell: func(cmd *exec.Cmd) error {
			t := p.tree.tree()
			pol, err := t.Sandbox()
			if err != nil {
				return sandbox.Refuse(err)(cmd)
			}
			return pol.HookWith(p.cfg.Self, ws, tools.RunShellCommand, s.Assignment.Sandbox, p.confine(t, s))(cmd)
		},
	}
	if p.cfg.WebFetch {
		cfg.WebFetch = &tools.WebFetchConfig{AllowCIDRs: p.cfg.WebFetchAllow, Permit: func() error { return p.networkAllowed(s) }}
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
func (p *Plane) networkAllowed(s *session.Session) error {
	pol, err := p.tree.tree().Sandbox()
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

// TurnTools gives a session, for one turn, activate_skill over its skill
// set and its tenant's MCP tools (starting the tenant's servers at its
// first turn, waiting at most a few seconds for them).
func (p *Plane) TurnTools(ctx context.Context, s *session.Session, h *session.Handle) []agent.Tool {
	var out []agent.Tool
	if skills, err := p.tree.tree().Skills(s.Assignment.Skills, s.Tenant); err == nil && len(skills) > 0 {
		out = append(out, skill.NewActivateTool(skills, func(_ context.Context, sk *skill.Skill) (bool, error) {
			return h.ActivateSkill(sk.Name), nil
		}))
	}
	return append(out, p.mcp.tools(ctx, s.Tenant)...)
}

// SystemPrompt assembles a session's system prompt from its assignment.
func (p *Plane) SystemPrompt(s *session.Session, _ string) (string, error) {
	t := p.tree.tree()
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

// Permit applies the session's rule version to a call and logs the
// decision. A rule version that is gone denies.
func (p *Plane) Permit(s *session.Session, c agent.Call, spec agent.ToolSpec) session.Permit {
	rules, err := p.tree.tree().Rules(s.Assignment.Rules)
	if err != nil {
		p.tree.log.Error("the session's rule version is gone; denying", zap.String("session_id", string(s.ID)), zap.Error(err))
	}
	var args map[string]any
	_ = json.Unmarshal(c.Args, &args)
	d := rules.Check(permission.Call{Tool: c.Name, Args: args, ReadOnly: spec.ReadOnly, Confirm: spec.Confirm})
	p.tree.log.Info("permission decision", zap.String("session_id", string(s.ID)), zap.String("tenant", s.Tenant), zap.String("user", s.User),
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
