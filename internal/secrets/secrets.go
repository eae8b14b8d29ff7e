// Package secrets finds credential-shaped strings in text and redacts them,
// with Agentao's patterns (security/secret_scan.py).
//
// Use it on what agentd writes down for people — logs, audit records,
// configuration checks such as "AGENTAO.md contains no secret" — never on
// what goes back to the model or into a stored history: patterns cannot
// tell a live credential from a test fixture, and mangling a file the
// agent is editing breaks its work. Pattern matching is a backstop, not a
// seal.
//
// # Patterns
//
// Kinds, in Agentao's order, which is also the order of precedence when
// two matches overlap (a JWT inside "Bearer …" is reported as jwt):
//
//	private_key_block  -----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY-----
//	anthropic_api_key  sk-ant- and at least 40 of [A-Za-z0-9_-]
//	openai_api_key     sk- or sk-proj- and at least 20 of [A-Za-z0-9_-]
//	google_api_key     AIza and 35 of [0-9A-Za-z_-]
//	aws_access_key     AKIA or ASIA and 16 of [0-9A-Z]
//	github_token       gh[pousr]_ and at least 36 alphanumerics, or github_pat_ and at least 22
//	slack_token        xox[baprs]- and at least 10 of [0-9A-Za-z-]
//	jwt                eyJ….eyJ….… (three base64url parts of at least 8)
//	bearer             "Bearer <token>", or an "Authorization" header or field with a token of at least 20
//	kv_secret          api_key, apikey, token, secret, secret_key, password, passwd… then ":" or "=", then a value
//
// Departures from Agentao, each to cut false positives or close a gap:
// private_key_block requires PRIVATE KEY (a public key is no secret) and
// also matches an unterminated block (a key cut off by head or a log
// line limit) up to the end of its base64 lines; github_token also covers
// fine-grained github_pat_ tokens; the Authorization form also accepts
// "Basic" and "Token" schemes; kv_secret accepts a quoted key ("password":
// "…", as in JSON), secret_key and secret_access_key, and a key after an
// underscore, as in environment dumps (DB_PASSWORD=…, access_token=…).
//
// # The kv_secret rule
//
// The key is one of api_key, api-key, apikey, token, secret, secret_key,
// secret_access_key, password, passwd (any case), not preceded by a
// letter or digit ("xapi_key=" and "mytoken=" do not match), and followed
// by an optional quote, then ":" or "=" (blanks around it, but no line
// break: Agentao's \s* let "password:" take the next line's text). The
// value is the run of characters after the separator and an optional
// quote, up to white space or a quote. It is a secret when it is at least 8
// characters long and is not:
//
//   - a reference or placeholder: it starts with "$", "%", "<", "{{" or
//     "[REDACTED:" (so Redact is idempotent), or is one character
//     repeated ("********", "xxxxxxxx");
//   - code: a function call (an identifier followed by "(", as in
//     token = getToken(request)) or a dotted identifier (APIKey:
//     cfg.OpenAIKey, token = process.env.TOKEN);
//   - the next assignment of a line ("API_KEY= MODEL=gpt-4o": the key is
//     empty);
//   - a word of prose: only letters, followed on the same line by a space
//     and another word ("the token: authentication happens in the proxy").
//
// So "password: see the vault" does not match (the value "see" is too
// short), nor "token: ${GITHUB_TOKEN}", nor "password: ************"; a
// value of 8 or more characters with a digit or a symbol does, and so does
// a long single word at the end of a line.
//
// # Positions and redaction
//
// Text shorter than 20 characters is not scanned (as Agentao). A
// [Finding] gives the kind and the 1-based line and column (in bytes) of
// the secret, never the secret itself. For bearer and kv_secret, the
// secret is the token or value: the key and scheme stay readable after
// [Redact] ("password=[REDACTED:kv_secret]"); for the other kinds, it is
// the whole match.
//
// The package has no state; its functions are safe for concurrent use.
package secrets

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Finding is one credential-shaped string found by [Scan].
type Finding struct {
	Kind   string // one of the kinds listed in the package documentation
	Line   int    // 1-based
	Column int    // 1-based, in bytes
}

// MinLength is the length, in characters, under which text is not
// scanned: no pattern can match a shorter string with a useful value.
const MinLength = 20

type pattern struct {
	kind string
	re   *regexp.Regexp
	// group is the submatch holding the secret; 0 is the whole match.
	group int
	// accept, if set, decides whether the secret text[start:end] counts.
	accept func(text string, start, end int) bool
}

// patterns are Agentao's, in its order, in RE2 syntax.
var patterns = []pattern{
	{kind: "private_key_block", re: regexp.MustCompile(
		`-----BEGIN [A-Z ]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----|(?:[ \t]*\r?\n[A-Za-z0-9+/=]+)*)`)},
	{kind: "anthropic_api_key", re: regexp.MustCompile(`\bsk-ant-[A-Za-z0-9_\-]{40,}`)},
	{kind: "openai_api_key", re: regexp.MustCompile(`\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}`)},
	{kind: "google_api_key", re: regexp.MustCompile(`\bAIza[0-9A-Za-z_\-]{35}\b`)},
	{kind: "aws_access_key", re: regexp.MustCompile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`)},
	{kind: "github_token", re: regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b`)},
	{kind: "slack_token", re: regexp.MustCompile(`\bxox[baprs]-[0-9A-Za-z\-]{10,}\b`)},
	{kind: "jwt", re: regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\b`)},
	{kind: "bearer", group: 1, re: regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9_\-.=+/]{20,})`)},
	{kind: "bearer", group: 1, re: regexp.MustCompile(
		`(?i)\bauthorization["']?\s*[:=]\s*["']?(?:(?:bearer|basic|token)\s+)?([A-Za-z0-9_\-.=+/]{20,})`)},
	{kind: "kv_secret", group: 1, accept: secretValue, re: regexp.MustCompile(
		`(?i)(?:^|[^A-Za-z0-9])(?:api[_-]?key|token|secret(?:[_-]?(?:access[_-]?)?key)?|password|passwd)["']?[ \t]*[:=][ \t]*["']?([^\s"']{8,})`)},
}

type span struct {
	kind       string
	start, end int
}

// Scan returns the credential-shaped strings in text, in order of
// position. It returns nil for text shorter than [MinLength] characters.
func Scan(text string) []Finding {
	spans := scan(text)
	if len(spans) == 0 {
		return nil
	}
	findings := make([]Finding, len(spans))
	line, lineStart, pos := 1, 0, 0
	for i, s := range spans {
		for ; pos < s.start; pos++ {
			if text[pos] == '\n' {
				line, lineStart = line+1, pos+1
			}
		}
		findings[i] = Finding{Kind: s.kind, Line: line, Column: s.start - lineStart + 1}
	}
	return findings
}

// Redact returns text with every finding of [Scan] replaced by
// "[REDACTED:<kind>]".
func Redact(text string) string {
	spans := scan(text)
	if len(spans) == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	last := 0
	for _, s := range spans {
		b.WriteString(text[last:s.start])
		b.WriteString("[REDACTED:" + s.kind + "]")
		last = s.end
	}
	b.WriteString(text[last:])
	return b.String()
}

// scan returns the secrets' spans, sorted and disjoint: a match that
// overlaps one of an earlier pattern (or an earlier match) is dropped.
func scan(text string) []span {
	if utf8.RuneCountInString(text) < MinLength {
		return nil
	}
	var spans []span
	for _, p := range patterns {
		for _, m := range p.re.FindAllStringSubmatchIndex(text, -1) {
			start, end := m[2*p.group], m[2*p.group+1]
			if start < 0 || p.accept != nil && !p.accept(text, start, end) {
				continue
			}
			if !slices.ContainsFunc(spans, func(s span) bool { return start < s.end && s.start < end }) {
				spans = append(spans, span{kind: p.kind, start: start, end: end})
			}
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	return spans
}

// Code shapes that are not secrets.
var (
	call     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*\(`)
	selector = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+[,;)]*$`)
	assign   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=[^=]`)
)

// secretValue is the kv_secret rule of the package documentation.
func secretValue(text string, start, end int) bool {
	v := text[start:end]
	switch {
	case strings.HasPrefix(v, "$"), strings.HasPrefix(v, "%"), strings.HasPrefix(v, "<"), strings.HasPrefix(v, "{{"),
		strings.HasPrefix(v, "[REDACTED:"):
		return false // a reference or a placeholder, or already redacted
	case strings.Count(v, v[:1]) == len(v):
		return false // "********"
	case call.MatchString(v), selector.MatchString(v):
		return false // code: token = getToken(r), APIKey: cfg.APIKey
	case assign.MatchString(v):
		return false // the next assignment: "API_KEY= MODEL=gpt-4o"
	}
	if strings.IndexFunc(v, func(r rune) bool { return !isLetter(r) }) >= 0 {
		return true
	}
	// Only letters: prose when another word follows on the same line.
	rest := text[end:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	after, found := strings.CutPrefix(rest, " ")
	return !found || after == "" || !isLetter(rune(after[0]))
}

func isLetter(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' }
