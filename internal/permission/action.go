package permission

import "fmt"

// Action is what a decision tells the caller to do with a tool call.
//
// The values are logged and persisted: do not reorder or remove them; new
// actions must be added only at the end. The zero value is Deny, the safe one.
type Action int

const (
	Deny  Action = iota // do not run the tool
	Allow               // run the tool without asking
	Ask                 // ask the user first
)

// String returns "deny", "allow" or "ask" (or "Action(n)" for an invalid value).
func (a Action) String() string {
	switch a {
	case Deny:
		return "deny"
	case Allow:
		return "allow"
	case Ask:
		return "ask"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// MarshalText renders a as "deny", "allow" or "ask"; an invalid value is an error.
func (a Action) MarshalText() ([]byte, error) {
	switch a {
	case Deny, Allow, Ask:
		return []byte(a.String()), nil
	}
	return nil, fmt.Errorf("permission: invalid action %d", int(a))
}

// UnmarshalText accepts "allow", "deny" and "ask" in any letter case, as
// Agentao does. Any other text is an error: Agentao's engine silently read an
// unknown action as "ask", which turns a misspelt "deny" into an allow for
// every tool that needs no confirmation (Agentao's own rule validator now
// rejects it too). An absent action is not an error: see [Parse].
func (a *Action) UnmarshalText(text []byte) error {
	switch string(text) {
	case "allow":
		*a = Allow
		return nil
	case "deny":
		*a = Deny
		return nil
	case "ask":
		*a = Ask
		return nil
	}
	// Slow path for other letter cases; rare, so the allocation does not matter.
	switch s := lower(string(text)); s {
	case "allow", "deny", "ask":
		return a.UnmarshalText([]byte(s))
	}
	return fmt.Errorf("unknown action %q (want allow, deny or ask)", text)
}

// Mode is a permission preset, Agentao's permission mode.
type Mode string

// The four presets. Their rules are listed in the package documentation.
const (
	ModeReadOnly       Mode = "read-only"
	ModeWorkspaceWrite Mode = "workspace-write" // the default
	ModeFullAccess     Mode = "full-access"
	ModePlan           Mode = "plan"
)

// DefaultMode is the mode of a rule version that names none.
const DefaultMode = ModeWorkspaceWrite

// Valid reports whether m is one of the four presets.
func (m Mode) Valid() bool {
	switch m {
	case ModeReadOnly, ModeWorkspaceWrite, ModeFullAccess, ModePlan:
		return true
	}
	return false
}

// presetFirst reports whether the preset's rules are evaluated before the
// version's own rules (full-access and plan) rather than after them.
func (m Mode) presetFirst() bool { return m == ModeFullAccess || m == ModePlan }

// lower is strings.ToLower for ASCII, allocation-free when s is already lower case.
func lower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
