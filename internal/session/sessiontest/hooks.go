// Package sessiontest has a fake of the session pool's hooks for tests.
package sessiontest

import (
	"context"
	"io"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// Hooks implements every interface of session.Hooks with func fields; a
// nil field does the simplest thing, as its comment says.
type Hooks struct {
	AssignFn       func(tenant, user string) (session.Assignment, error)                         // nil: Model "m"
	RebindFn       func(s *session.Session) []string                                             // nil: no change
	CheckModelFn   func(model string) error                                                      // nil: any model
	ToolsFn        func(s *session.Session, dir string) ([]agent.Tool, io.Closer, error)         // nil: no tools
	TurnToolsFn    func(ctx context.Context, s *session.Session, h *session.Handle) []agent.Tool // nil: none
	SystemPromptFn func(s *session.Session, dir string) (string, error)                          // nil: ""
	PermitFn       func(s *session.Session, c agent.Call, spec agent.ToolSpec) session.Permit    // nil: allow
	ObserveFn      func(s session.Summary, rec session.TurnRecord)                               // nil: nothing
	ApprovedFn     func(s session.Summary, tool, decision string)                                // nil: nothing
}

// Pool returns h as the pool's hooks, every one of them h. (A pool built
// without an Authorizer denies every tool call; this fake allows them
// unless PermitFn says otherwise.)
func (h *Hooks) Pool() session.Hooks {
	return session.Hooks{Assigner: h, Toolbox: h, Authorizer: h, Observer: h}
}

func (h *Hooks) Assign(tenant, user string) (session.Assignment, error) {
	if h.AssignFn == nil {
		return session.Assignment{Model: "m"}, nil
	}
	return h.AssignFn(tenant, user)
}

func (h *Hooks) Rebind(s *session.Session) []string {
	if h.RebindFn == nil {
		return nil
	}
	return h.RebindFn(s)
}

func (h *Hooks) CheckModel(model string) error {
	if h.CheckModelFn == nil {
		return nil
	}
	return h.CheckModelFn(model)
}

func (h *Hooks) Tools(s *session.Session, dir string) ([]agent.Tool, io.Closer, error) {
	if h.ToolsFn == nil {
		return nil, nil, nil
	}
	return h.ToolsFn(s, dir)
}

func (h *Hooks) TurnTools(ctx context.Context, s *session.Session, hd *session.Handle) []agent.Tool {
	if h.TurnToolsFn == nil {
		return nil
	}
	return h.TurnToolsFn(ctx, s, hd)
}

func (h *Hooks) SystemPrompt(s *session.Session, dir string) (string, error) {
	if h.SystemPromptFn == nil {
		return "", nil
	}
	return h.SystemPromptFn(s, dir)
}

func (h *Hooks) Permit(s *session.Session, c agent.Call, spec agent.ToolSpec) session.Permit {
	if h.PermitFn == nil {
		return session.Permit{Action: session.ActionAllow}
	}
	return h.PermitFn(s, c, spec)
}

func (h *Hooks) Observe(s session.Summary, rec session.TurnRecord) {
	if h.ObserveFn != nil {
		h.ObserveFn(s, rec)
	}
}

func (h *Hooks) Approved(s session.Summary, tool, decision string) {
	if h.ApprovedFn != nil {
		h.ApprovedFn(s, tool, decision)
	}
}
