// Package usage counts what tenants spend — tokens per day, LLM calls and
// their 5xx, tool calls and their failures — in bbolt, so that budgets
// (budgets.json) and the built-in alerts (internal/alerts) survive
// restarts, and enforces the token budgets before every LLM call.
package usage

import (
	"strings"
	"time"
)

// Scope names what a counter counts: everything, one tenant, one end user
// of a tenant, or one canary variant of a dimension.
type Scope string

// Scopes.
func Total() Scope                         { return "total" }
func Tenant(tenant string) Scope           { return Scope("tenant:" + tenant) }
func User(tenant, user string) Scope       { return Scope("user:" + tenant + "/" + user) }
func Variant(dimension, name string) Scope { return Scope("variant:" + dimension + "/" + name) }

// Kind is "total", "tenant", "user" or "variant"; Name is what follows
// the kind ("acme", "acme/alice", "model/canary-b"; "" for total).
func (s Scope) Kind() string { k, _, _ := strings.Cut(string(s), ":"); return k }
func (s Scope) Name() string { _, n, _ := strings.Cut(string(s), ":"); return n }

// Counts are what a scope spent in a period.
type Counts struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	LLMCalls     int64 `json:"llm_calls"`
	LLM5xx       int64 `json:"llm_5xx"`
	ToolCalls    int64 `json:"tool_calls"`
	ToolFailures int64 `json:"tool_failures"`
}

// Tokens is input plus output tokens: what budgets and the token alerts count.
func (c Counts) Tokens() int64 { return c.InputTokens + c.OutputTokens }

// Add returns c + o.
func (c Counts) Add(o Counts) Counts {
	return Counts{c.InputTokens + o.InputTokens, c.OutputTokens + o.OutputTokens, c.LLMCalls + o.LLMCalls,
		c.LLM5xx + o.LLM5xx, c.ToolCalls + o.ToolCalls, c.ToolFailures + o.ToolFailures}
}

// SessionUse is one session's tokens since it began.
type SessionUse struct {
	Tenant  string    `json:"tenant"`
	Session string    `json:"session"`
	Tokens  int64     `json:"tokens"`
	Last    time.Time `json:"last"` // its last LLM call
}
