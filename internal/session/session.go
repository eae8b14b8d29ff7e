package session

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/canary"
)

// ID names a session: "sess_" then 32 hex digits, the first 12 of which are
// the creation time in Unix milliseconds, so ids sort by creation; in a
// fleet, "_" and the name of the node that created it follow
// ("sess_<32 hex>_<node>"), so any replica knows where the session lives.
type ID string

// nodePattern is the shape of a node name: a DNS label (lower case), dots
// allowed, so a pod name or a host name fits.
const nodePattern = `[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?`

var (
	idPattern   = regexp.MustCompile(`^sess_[0-9a-f]{32}(?:_` + nodePattern + `)?$`)
	nodeNameRE  = regexp.MustCompile(`^` + nodePattern + `$`)
	idNodeStart = len("sess_") + 32 + 1
)

// NewID returns a fresh session id created at now on node; node "" gives
// the single-process form without a node. node must pass ValidNode.
func NewID(now time.Time, node string) ID {
	var b [10]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("sess_%012x%s", now.UnixMilli()&0xffffffffffff, hex.EncodeToString(b[:]))
	if node != "" {
		id += "_" + node
	}
	return ID(id)
}

// Valid reports whether id has the shape of a session id, with or without a
// node. Anything else is never looked up, so an id can be used in keys and
// paths safely.
func (id ID) Valid() bool { return idPattern.MatchString(string(id)) }

// Node returns the node named in a valid id, "" for an id without one (or
// an invalid id).
func (id ID) Node() string {
	if len(id) <= idNodeStart || !id.Valid() {
		return ""
	}
	return string(id[idNodeStart:])
}

// ValidNode checks a node name: 1 to 63 characters of a-z, 0-9, '.' and
// '-', starting and ending with a letter or digit. It is the one check of a
// node name, wherever one comes from (flags, peers, ids).
func ValidNode(name string) error {
	if !nodeNameRE.MatchString(name) {
		return fmt.Errorf("%w: node name %q: want 1-63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// Assignment is what a session runs with along each canary dimension. It is
// fixed when the session is created (sticky): later configuration changes do
// not move a live conversation.
type Assignment struct {
	Model        string `json:"model"`
	Skills       string `json:"skills"`
	Rules        string `json:"rules"`
	Sandbox      string `json:"sandbox"`
	Instructions string `json:"instructions"`
	// Variants names, per dimension, the canary variant that produced the
	// value; a dimension on its stable value is absent.
	Variants map[string]string `json:"variants,omitempty"`
	// ConfigVersion is the router configuration version that assigned it.
	ConfigVersion int `json:"config_version,omitempty"`
}

// Value returns the assignment's value of dim.
func (a *Assignment) Value(dim canary.Dimension) string { return *a.field(dim) }

// SetValue sets the assignment's value of dim.
func (a *Assignment) SetValue(dim canary.Dimension, v string) { *a.field(dim) = v }

func (a *Assignment) field(dim canary.Dimension) *string {
	return [canary.NumDimensions]*string{&a.Model, &a.Skills, &a.Rules, &a.Sandbox, &a.Instructions}[dim]
}

// VariantOf returns the variant the assignment runs on dim, "" for stable.
func (a Assignment) VariantOf(dim canary.Dimension) string { return a.Variants[dim.String()] }

// CohortByDimension returns the variant per dimension, "" for stable.
func (a Assignment) CohortByDimension() canary.ByDimension {
	var out canary.ByDimension
	for _, dim := range canary.Dimensions() {
		out[dim] = a.VariantOf(dim)
	}
	return out
}

// Cohort labels the assignment for logs and metrics, every dimension
// named with its variant or "stable": "model=gpt5-beta skills=stable ...".
func (a Assignment) Cohort() string {
	var b strings.Builder
	for i, dim := range canary.Dimensions() {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := a.VariantOf(dim)
		if v == "" {
			v = "stable"
		}
		b.WriteString(dim.String() + "=" + v)
	}
	return b.String()
}

// TurnRecord is the outcome of one turn, kept with the session.
type TurnRecord struct {
	N         int           `json:"n"`
	StartedAt time.Time     `json:"started_at"`
	EndedAt   time.Time     `json:"ended_at,omitzero"`
	Model     string        `json:"model"`
	Outcome   agent.Outcome `json:"outcome"`
	Stats     agent.Stats   `json:"stats"`
	// Moved says what a rollback changed in the session's assignment at
	// this turn's start, one line per dimension (Assigner.Rebind).
	Moved []string `json:"moved,omitempty"`
}

// Session is one conversation: its identity, assignment, model, and history
// in OpenAI chat format. The system prompt is never part of it.
//
// Messages and Turns are stored apart from the rest (see Store.Save); the
// JSON tags serve the API and stores that keep a session in one record.
type Session struct {
	ID           ID              `json:"id"`
	Tenant       string          `json:"tenant"`
	User         string          `json:"user"`
	Title        string          `json:"title,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	Model        string          `json:"model"`
	Assignment   Assignment      `json:"assignment"`
	Messages     []agent.Message `json:"messages"`
	ActiveSkills []string        `json:"active_skills,omitempty"`
	Turns        []TurnRecord    `json:"turns,omitempty"`
	// InFlight is set while a turn runs, so a session saved mid-turn and
	// reloaded after a crash records that turn as interrupted.
	InFlight *TurnRecord `json:"in_flight,omitempty"`
}

// Summary is a session without its history, for listings.
type Summary struct {
	ID          ID            `json:"id"`
	Tenant      string        `json:"tenant"`
	User        string        `json:"user"`
	Title       string        `json:"title,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	UpdatedAt   time.Time     `json:"updated_at"`
	Model       string        `json:"model"`
	Assignment  Assignment    `json:"assignment"`
	TurnCount   int           `json:"turn_count"`
	LastOutcome agent.Outcome `json:"last_outcome,omitzero"`
	Running     bool          `json:"running,omitempty"`
}

// Summary returns the session's summary.
func (s *Session) Summary() Summary {
	sum := Summary{
		ID: s.ID, Tenant: s.Tenant, User: s.User, Title: s.Title, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
		Model: s.Model, Assignment: s.Assignment, TurnCount: len(s.Turns), Running: s.InFlight != nil,
	}
	if n := len(s.Turns); n > 0 {
		sum.LastOutcome = s.Turns[n-1].Outcome
	}
	return sum
}

// clone copies what a turn mutates, so readers never see a torn session.
func (s *Session) clone() *Session {
	c := *s
	c.Messages = append([]agent.Message(nil), s.Messages...)
	c.Turns = append([]TurnRecord(nil), s.Turns...)
	c.ActiveSkills = append([]string(nil), s.ActiveSkills...)
	if s.InFlight != nil {
		f := *s.InFlight
		c.InFlight = &f
	}
	return &c
}

// title is the first user message without reminders, cut at 60 runes.
func title(input string) string {
	t := []rune(agent.StripReminders(input))
	if len(t) > 60 {
		return string(t[:60]) + "…"
	}
	return string(t)
}

// recoverInterrupted records a turn that was running when the process died:
// an error turn with reason interrupted, its history as last checkpointed
// (at least the user's message: the turn is saved before its first LLM
// call).
func (s *Session) recoverInterrupted(now time.Time) bool {
	if s.InFlight == nil {
		return false
	}
	rec := *s.InFlight
	rec.EndedAt = now
	rec.Outcome = agent.Outcome{Status: agent.StatusError, IncompleteReason: agent.IncompleteInterrupted,
		Error: "agentd stopped before turn " + strconv.Itoa(rec.N) + " ended; kept: the user's message and the turn's steps up to its last checkpoint (tool calls it had not answered carry a placeholder result)"}
	s.Turns = append(s.Turns, rec)
	s.InFlight = nil
	s.Messages = agent.Backfill(s.Messages)
	return true
}
