package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentd/agentd/internal/agent"
)

// Meter counts what turns spend and may refuse them: token budgets
// (internal/usage). Sessions of ProbeTenant are never metered.
type Meter interface {
	// Admit is asked before a turn starts and before each of its LLM calls.
	// An error wrapping ErrOverBudget refuses: before the turn, Turn
	// returns it and nothing is recorded; before a call, the turn ends
	// there with status error and incomplete reason "budget_exceeded".
	Admit(s Summary) error
	// Called sees every LLM call of a turn as it ends.
	Called(s Summary, c agent.LLMCall)
}

// ErrOverBudget: a token budget of the session's tenant or user is spent
// (a *BudgetError says which and until when).
var ErrOverBudget = errors.New("token budget exceeded")

// BudgetError is a spent budget.
type BudgetError struct {
	Scope string    // "tenant acme", "user acme/alice"
	Used  int64     // tokens used in the budget's day
	Limit int64     // the budget
	Reset time.Time // when the day ends and the budget is whole again
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("the daily token budget of %s is spent (%d of %d tokens); it resets at %s",
		e.Scope, e.Used, e.Limit, e.Reset.UTC().Format(time.RFC3339))
}

func (e *BudgetError) Unwrap() error { return ErrOverBudget }

// ProbeTenant is the synthetic tenant of the canary probe's sessions
// (internal/probe). No API key can name it (tenant names start with a
// letter or digit), and its turns are left out of the observer (the guard,
// the metrics) and the meter (budgets, alerts).
const ProbeTenant = "_probe"

// observed reports whether a session's turns reach the observer and meter.
func observed(tenant string) bool { return tenant != ProbeTenant }

// CreateAssigned starts a session with the assignment a, not the router's:
// the canary probe and the red-team check pin a session to stable or to
// one variant. tenant may be ProbeTenant.
func (p *Pool) CreateAssigned(ctx context.Context, tenant, user string, a Assignment) (*Session, error) {
	return p.create(ctx, tenant, user, "", &a)
}

// admit asks the meter, if any, before a turn of s.
func (p *Pool) admit(s Summary) error {
	if p.hooks.Meter == nil || !observed(s.Tenant) {
		return nil
	}
	return p.hooks.Meter.Admit(s)
}

// meterTurn sets the turn's Admit and Called to the meter's.
func (p *Pool) meterTurn(t *agent.Turn, s Summary) {
	if p.hooks.Meter == nil || !observed(s.Tenant) {
		return
	}
	m := p.hooks.Meter
	t.Admit = func() error {
		err := m.Admit(s)
		if errors.Is(err, ErrOverBudget) {
			return &agent.Stop{Reason: agent.IncompleteBudgetExceeded, Message: err.Error()}
		}
		return err
	}
	t.Called = func(c agent.LLMCall) { m.Called(s, c) }
}
