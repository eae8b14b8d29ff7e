package session

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
)

// Permission actions a Permit carries.
const (
	ActionAllow = "allow"
	ActionDeny  = "deny"
	ActionAsk   = "ask"
)

// Permit is the permission rules' answer for one planned tool call.
type Permit struct {
	Action string // ActionAllow, ActionDeny or ActionAsk
	// Why is a short explanation for events and logs (the matched rule).
	Why string
}

// Approval decisions a client may send (Agentao's four options).
const (
	AllowOnce    = "allow_once"
	AllowAlways  = "allow_always"
	RejectOnce   = "reject_once"
	RejectAlways = "reject_always"
)

// Decisions lists the valid approval decisions.
var Decisions = []string{AllowOnce, AllowAlways, RejectOnce, RejectAlways}

// EventToolConfirmation asks the client to approve a call (answered with
// Pool.Approve); EventToolConfirmationResolved says how it was decided.
const (
	EventToolConfirmation         = "tool_confirmation"
	EventToolConfirmationResolved = "tool_confirmation_resolved"
)

// ToolConfirmation is the data of EventToolConfirmation: a call waiting
// for the client's decision, one of Options, until ExpiresAt.
type ToolConfirmation struct {
	CallID    string          `json:"call_id"`
	Tool      string          `json:"tool"`
	Args      json.RawMessage `json:"args"`
	Why       string          `json:"why"`
	Options   []string        `json:"options"`
	ExpiresAt time.Time       `json:"expires_at"`
}

// ToolConfirmationResolved is the data of EventToolConfirmationResolved:
// allow_once, allow_always, reject_once, reject_always, timeout or
// cancelled.
type ToolConfirmationResolved struct {
	CallID   string `json:"call_id"`
	Tool     string `json:"tool"`
	Decision string `json:"decision"`
}

func (ToolConfirmation) EventType() string         { return EventToolConfirmation }
func (ToolConfirmationResolved) EventType() string { return EventToolConfirmationResolved }

// PendingApproval is a tool call waiting for a person.
type PendingApproval struct {
	CallID      string          `json:"call_id"`
	Tool        string          `json:"tool"`
	Args        json.RawMessage `json:"args"`
	Why         string          `json:"why,omitempty"`
	RequestedAt time.Time       `json:"requested_at"`
	ExpiresAt   time.Time       `json:"expires_at"`
}

type approval struct {
	PendingApproval
	answer chan string
}

// Texts the model sees for calls that did not run (Agentao's wording).
func deniedText(tool string) string {
	return fmt.Sprintf("Tool execution denied: '%s' is not permitted by the current permission rules. Do not retry this call; choose another approach, or tell the user what you would need.", tool)
}

func rejectedText(tool string) string {
	return fmt.Sprintf("Tool execution cancelled by user. The user declined to execute %s. Do not retry it unless the user asks; continue without it or ask how to proceed.", tool)
}

func timedOutText(tool string, d time.Duration) string {
	return fmt.Sprintf("Tool execution cancelled: nobody approved %s within %s, so it did not run. Do not retry it unless the user asks; continue without it or ask how to proceed.", tool, d)
}

// authorize is the agent's Authorize for one session: the rules decide;
// "ask" waits for the client's decision (or the session's always-answer
// for that tool) until the approval timeout, then rejects.
func (p *Pool) authorize(e *entry, s *Session, unattended bool) func(ctx context.Context, c agent.Call, spec agent.ToolSpec, emit func(agent.Event)) agent.Verdict {
	return func(ctx context.Context, c agent.Call, spec agent.ToolSpec, emit func(agent.Event)) agent.Verdict {
		// Without an authorizer nothing runs: the safe answer.
		permit := Permit{Action: ActionDeny, Why: "no permission rules are configured"}
		if p.hooks.Authorizer != nil {
			permit = p.hooks.Authorizer.Permit(s, c, spec)
		}
		switch permit.Action {
		case ActionAllow:
			return agent.Verdict{Allow: true}
		case ActionAsk:
			if unattended { // nobody is there to answer: the safe answer at once
				return agent.Verdict{Result: rejectedText(c.Name)}
			}
			return p.ask(ctx, e, s, c, permit, emit)
		default: // deny, and anything unknown: the safe answer
			return agent.Verdict{Result: deniedText(c.Name), Denied: true}
		}
	}
}

func (p *Pool) ask(ctx context.Context, e *entry, s *Session, c agent.Call, permit Permit, emit func(agent.Event)) agent.Verdict {
	now := p.cfg.Now().UTC()
	e.mu.Lock()
	if allow, ok := e.always[c.Name]; ok {
		e.mu.Unlock()
		if allow {
			return agent.Verdict{Allow: true}
		}
		return agent.Verdict{Result: rejectedText(c.Name)}
	}
	a := &approval{
		PendingApproval: PendingApproval{CallID: c.ID, Tool: c.Name, Args: c.Args, Why: permit.Why, RequestedAt: now, ExpiresAt: now.Add(p.cfg.ApprovalTimeout)},
		answer:          make(chan string, 1),
	}
	if e.pending == nil {
		e.pending = map[string]*approval{}
	}
	e.pending[c.ID] = a
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.pending, c.ID)
		e.mu.Unlock()
	}()
	emit(agent.NewEvent(ToolConfirmation{CallID: c.ID, Tool: c.Name, Args: c.Args, Why: permit.Why, Options: Decisions, ExpiresAt: a.ExpiresAt}, now))
	timer := time.NewTimer(p.cfg.ApprovalTimeout)
	defer timer.Stop()
	var decision string
	var v agent.Verdict
	select {
	case decision = <-a.answer:
		switch decision {
		case AllowOnce, AllowAlways:
			v = agent.Verdict{Allow: true}
		default:
			v = agent.Verdict{Result: rejectedText(c.Name)}
		}
		if decision == AllowAlways || decision == RejectAlways {
			e.mu.Lock()
			if e.always == nil {
				e.always = map[string]bool{}
			}
			e.always[c.Name] = decision == AllowAlways
			e.mu.Unlock()
		}
	case <-timer.C:
		decision = "timeout"
		v = agent.Verdict{Result: timedOutText(c.Name, p.cfg.ApprovalTimeout)}
	case <-ctx.Done():
		reason, _ := agent.CancelReason(ctx)
		decision = "cancelled"
		v = agent.Verdict{Result: "[Operation Cancelled] " + reason}
	}
	emit(agent.NewEvent(ToolConfirmationResolved{CallID: c.ID, Tool: c.Name, Decision: decision}, p.cfg.Now().UTC()))
	if p.hooks.Observer != nil {
		p.hooks.Observer.Approved(s.Summary(), c.Name, decision)
	}
	p.log.Info("approval", zap.String("session_id", string(s.ID)), zap.String("tenant", s.Tenant), zap.String("user", s.User),
		zap.String("tool", c.Name), zap.String("call_id", c.ID), zap.String("decision", decision),
		zap.Duration("waited", p.cfg.Now().Sub(now)))
	return v
}

// Approve answers a pending approval of the session's running turn.
func (p *Pool) Approve(ctx context.Context, tenant string, id ID, callID, decision string) error {
	if !slices.Contains(Decisions, decision) {
		return fmt.Errorf("%w: decision %q; want one of %v", ErrInvalid, decision, Decisions)
	}
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return err
	}
	defer p.release(e)
	e.mu.Lock()
	a, ok := e.pending[callID]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no tool call %q is waiting for approval in this session", ErrNotFound, callID)
	}
	select {
	case a.answer <- decision:
		return nil
	default:
		return fmt.Errorf("%w: tool call %q was already answered", ErrBusy, callID)
	}
}

// Pending returns the approvals the session's running turn waits for.
func (p *Pool) Pending(ctx context.Context, tenant string, id ID) ([]PendingApproval, error) {
	e, err := p.acquire(ctx, tenant, id)
	if err != nil {
		return nil, err
	}
	defer p.release(e)
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]PendingApproval, 0, len(e.pending))
	for _, a := range e.pending {
		out = append(out, a.PendingApproval)
	}
	slices.SortFunc(out, func(a, b PendingApproval) int { return a.RequestedAt.Compare(b.RequestedAt) })
	return out, nil
}
