package permission

// The presets, rule for rule as in Agentao's agentao/permissions.py
// (_PRESET_RULES at the reference snapshot). The regular expressions are
// Python `re` patterns; Go's RE2 differs in four ways that matter here, and
// each pattern below is translated so that it matches exactly the strings the
// Python pattern matches (with re.search):
//
//  1. \s and \S: Python's are Unicode-aware (str.isspace: also \v, \x1c-\x1f,
//     \x85, \xa0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
//     U+3000); RE2's are ASCII [\t\n\f\r ]. They become pyS and pyNotS.
//  2. \b: Python's word characters are Unicode letters, digits and "_"; RE2's
//     are ASCII. A \b that precedes a word is rewritten as "start of text or a
//     non-word character" (consuming it, which does not change whether a
//     search matches); a \b that follows a word and is always followed by \s
//     is dropped (it always holds); "name\b" followed by a character class
//     becomes "name, then either the end or a non-word character of that class".
//  3. $ without re.MULTILINE: Python's matches at the end or before a final
//     "\n"; RE2's only at the end. It becomes \n?\z (or, inside a trailing
//     alternative, \z, where the "\n" is already accepted by \s).
//  4. Lookahead (?=...): RE2 has none. The only one is at the very end of
//     each alternative of the credential-file pattern, where consuming the
//     looked-at character instead does not change whether a search matches.
//
// Lazy quantifiers (*?) are kept: RE2 supports them and, with no
// backreferences, laziness cannot change whether a search matches.
// preset_test.go checks each translation against strings Python classifies.

const (
	// pyS is Python's \s for str patterns.
	pyS = `[\t-\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]`
	// pyNotS is Python's \S.
	pyNotS = `[^\t-\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]`
	// pyNotW is Python's \W (not a Unicode letter, digit or underscore).
	pyNotW = `[^\p{L}\p{N}_]`
)

// shellReadOnlyRE is the read-only shell allowlist. Python:
//
//	^(git (status|log|diff|show|stash list|shortlog|describe|blame|ls-files|ls-tree|rev-parse|config --get)
//	|ls\b|cat\b|echo\b|pwd\b|which\b|file\b|head\b|tail\b|wc\b|diff\b|grep\b|du\b|df\b|ps\b|env\b)(?:[^;&|`$<>\n\r])*$
//
// (one line in the original). The git arm has no \b and keeps its tail; the
// "name\b" arms are rule 2's third case; $ is rule 3.
const shellReadOnlyRE = `^(?:` +
	`git (?:status|log|diff|show|stash list|shortlog|describe|blame|ls-files|ls-tree|rev-parse|config --get)` + "[^;&|`$<>\\n\\r]*" +
	`|(?:ls|cat|echo|pwd|which|file|head|tail|wc|diff|grep|du|df|ps|env)` + "(?:[^\\p{L}\\p{N}_;&|`$<>\\n\\r][^;&|`$<>\\n\\r]*)?" +
	`)\n?\z`

// shellDangerRE is Python's `rm\s+-rf|sudo\s|mkfs|dd\s+if=` (rule 1 only).
const shellDangerRE = `rm` + pyS + `+-rf|sudo` + pyS + `|mkfs|dd` + pyS + `+if=`

// shellSensitiveFileRE is Python's _SHELL_SENSITIVE_FILE_RE:
//
//	(?:~|\$HOME|\$\{HOME\})/\.(?:bashrc|zshrc|profile|bash_profile|zprofile|netrc|pgpass|npmrc|pypirc)(?=\s|[;|&)>'\"<]|$)
//
// with the final lookahead consumed (rule 4; its $ is rule 3's \z).
const shellSensitiveFileRE = `(?:~|\$HOME|\$\{HOME\})/\.(?:bashrc|zshrc|profile|bash_profile|zprofile|netrc|pgpass|npmrc|pypirc)` +
	`(?:` + pyS + `|[;|&)>'"<]|\z)`

// shellSensitiveWriteRE is Python's _SHELL_SENSITIVE_WRITE_RE, the
// alternation of
//
//	>>?\s*FILE
//	\btee\b(?:\s+-\S+)*\s+FILE
//	\b(?:cp|mv)\b(?:\s+-\S+)*\s+\S+\s+FILE
//	\bsed\b(?:\s+\S+)*?\s+-i(?:\.\S+)?(?:\s+\S+)*?\s+FILE
//
// The leading \b of tee, cp/mv and sed is rule 2's first case; the trailing
// one is always followed by \s, so it is dropped (rule 2's second case).
const shellSensitiveWriteRE = `(?:` +
	`>>?` + pyS + `*` + shellSensitiveFileRE +
	`|(?:^|` + pyNotW + `)tee(?:` + pyS + `+-` + pyNotS + `+)*` + pyS + `+` + shellSensitiveFileRE +
	`|(?:^|` + pyNotW + `)(?:cp|mv)(?:` + pyS + `+-` + pyNotS + `+)*` + pyS + `+` + pyNotS + `+` + pyS + `+` + shellSensitiveFileRE +
	`|(?:^|` + pyNotW + `)sed(?:` + pyS + `+` + pyNotS + `+)*?` + pyS + `+-i(?:\.` + pyNotS + `+)?(?:` + pyS + `+` + pyNotS + `+)*?` + pyS + `+` + shellSensitiveFileRE +
	`)`

// prefilters lists, for the slow preset patterns, literals of which at
// least one must occur in any string the pattern matches. A string without
// any is rejected without running the regular expression (which is several
// microseconds for shellSensitiveWriteRE: unanchored, with Unicode classes).
var prefilters = map[string][]string{
	shellDangerRE:         {"rm", "sudo", "mkfs", "dd"},
	shellSensitiveWriteRE: {"~/.", "HOME/.", "HOME}/."},
}

// Default web_fetch host lists (reference §1.3).
var (
	webAllowlist = []string{".github.com", ".docs.python.org", ".wikipedia.org", "r.jina.ai", ".pypi.org", ".readthedocs.io"}
	webBlocklist = []string{"localhost", "127.0.0.1", "0.0.0.0", "169.254.169.254", ".internal", ".local", "::1"}
)

// presetRules returns the rules of a preset in evaluation order. The read-only
// preset has none: read-only mode is enforced by Check itself.
func presetRules(m Mode) []Rule {
	shell := func(pattern string, a Action) Rule {
		return Rule{Tool: ShellTool, Args: map[string]string{"command": pattern}, Action: a}
	}
	web := []Rule{
		{Tool: "web_fetch", Domain: &Domain{Allowlist: webAllowlist}, Action: Allow},
		{Tool: "web_fetch", Domain: &Domain{Blocklist: webBlocklist}, Action: Deny},
		{Tool: "web_fetch", Action: Ask},
		{Tool: "web_search", Action: Ask},
	}
	switch m {
	case ModeWorkspaceWrite:
		return append([]Rule{
			{Tool: "write_file", Action: Allow},
			{Tool: "replace", Action: Allow},
			shell(shellReadOnlyRE, Allow),
			shell(shellDangerRE, Deny),
			shell(shellSensitiveWriteRE, Ask),
			{Tool: ShellTool, Action: Ask},
		}, web...)
	case ModeFullAccess:
		return []Rule{{Tool: "*", Action: Allow}}
	case ModePlan:
		return append([]Rule{
			{Tool: "plan_save", Action: Allow},
			{Tool: "plan_finalize", Action: Allow},
			{Tool: "write_file", Action: Deny},
			{Tool: "replace", Action: Deny},
			{Tool: "save_memory", Action: Deny},
			{Tool: "todo_write", Action: Deny},
			shell(shellReadOnlyRE, Allow),
			shell(shellDangerRE, Deny),
			{Tool: ShellTool, Action: Deny},
		}, web...)
	}
	return nil
}
