// Package permission decides, for each planned tool call, whether to allow
// it, deny it or ask the user: Agentao's permission rules (reference §4.4),
// versioned, above a hard floor of unrecoverable shell commands. The rule
// format, the decision order, the presets and what the floor denies are in
// docs/permissions.md.
//
// # Use
//
// A rule version is compiled once by [Parse] (or a bare preset by [Preset])
// into an immutable [Rules], safe for concurrent use. [Rules.Check] decides
// one [Call] and returns a [Decision] that says what matched and why, for the
// audit log; it never fails and does no I/O. [Rules.Snapshot] is Agentao's
// active_permissions record, to log at session start. [Rules.WithMode]
// switches the preset of a version. A nil *Rules denies every call, and the
// zero [Action] is Deny.
//
// Parse reports every problem of a version file, each naming the rule index
// and field, joined with errors.Join.
//
// # The floor
//
// For run_shell_command the floor runs first, in every mode: it parses the
// command as bash with mvdan.cc/sh/v3 and resolves its words with
// mvdan.cc/sh/v3/expand, running nothing and reading no file, and denies
// unrecoverable commands (a recursive rm of / or a system or home
// directory, mkfs and dd onto disks, fork bombs, kill -1, shutdown, ...).
// A word it cannot resolve (a command's output, a transformed variable)
// denies where it could destroy something; a command that does not parse
// is denied. Its analysis is bounded: a command too long or too deep to
// analyse is denied, with a reason that says so.
package permission
