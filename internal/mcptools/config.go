package mcptools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Transport is how agentd reaches an MCP server.
type Transport string

// The transports of mcp.json's "type" field.
const (
	TransportStdio Transport = "stdio" // a child process speaking JSON-RPC on stdin/stdout
	TransportHTTP  Transport = "http"  // Streamable HTTP
	TransportSSE   Transport = "sse"   // the older HTTP+SSE transport
)

// Defaults of a server entry.
const (
	DefaultStartupTimeout = 60 * time.Second
	// MaxTimeout bounds both timeouts: a larger number is almost surely a
	// unit mistake (milliseconds for seconds).
	MaxTimeout = 24 * time.Hour
	// MaxServerNameLen bounds the sanitised server name, so that the tool
	// prefix mcp_<server>_ leaves room for tool names in 64 characters.
	MaxServerNameLen = 40
)

// Config is a parsed .agentao/mcp.json.
type Config struct {
	// Servers by name, as written in mcpServers.
	Servers map[string]ServerConfig
}

// Names returns the server names in byte order.
func (c Config) Names() []string {
	names := make([]string, 0, len(c.Servers))
	for n := range c.Servers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// ServerConfig is one entry of mcpServers, with variables expanded.
type ServerConfig struct {
	Name      string
	Transport Transport

	// stdio
	Command string
	Args    []string
	Env     map[string]string // applied after the scrub of the base environment
	Cwd     string            // relative to the Manager's Dir; empty: Dir

	// http, sse
	URL     string
	Headers map[string]string

	// Trust lets the server's annotations decide confirmation and
	// read-only: readOnlyHint and destructiveHint count only when true.
	Trust bool
	// StartupTimeout bounds connecting, the handshake and the first
	// tools/list. Zero means DefaultStartupTimeout.
	StartupTimeout time.Duration
	// RequestTimeout bounds each tools/call. Zero: only the turn's context.
	RequestTimeout time.Duration

	// UnsetVars names the $VAR / ${VAR} references that expanded to ""
	// because lookup did not know them, sorted. agentd check may warn.
	UnsetVars []string
}

// Problem is one thing wrong in mcp.json.
type Problem struct {
	Line    int    // 1-based line of the offending key; 0 when unknown
	Field   string // JSON path such as mcpServers.github.timeout; "" for the whole file
	Message string
}

func (p Problem) Error() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ConfigError lists every problem Parse found, in file order. Its Error is
// one problem per line.
type ConfigError struct {
	Problems []Problem
}

func (e *ConfigError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// serverFields are the keys a server entry may have.
var serverFields = []string{"type", "command", "args", "env", "cwd", "url", "headers", "trust", "timeout"}

// Parse reads mcp.json in Agentao's format:
//
//	{"mcpServers": {"name": {"command": "npx", "args": [...], "env": {...}, "cwd": "...",
//	                         "url": "https://...", "headers": {...}, "type": "stdio|http|sse",
//	                         "trust": false, "timeout": 60 | {"startup": 30, "request": 120}}}}
//
// $VAR and ${VAR} in command, args, env values, cwd, url and header values
// are replaced with lookup's value, or "" when lookup does not know them (a
// nil lookup is os.LookupEnv). Validation fails closed: every problem is
// reported, as a *ConfigError, and a Config is returned only when there is
// none.
func Parse(data []byte, lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	p := &parser{data: data, lookup: lookup}
	cfg := p.parse()
	if len(p.problems) > 0 {
		return Config{}, &ConfigError{Problems: p.problems}
	}
	return cfg, nil
}

type parser struct {
	data     []byte
	lookup   func(string) (string, bool)
	problems []Problem
}

func (p *parser) add(offset int64, field, format string, args ...any) {
	p.problems = append(p.problems, Problem{Line: p.line(offset), Field: field, Message: fmt.Sprintf(format, args...)})
}

// line is the 1-based line of byte offset; 0 for a negative offset.
func (p *parser) line(offset int64) int {
	if offset < 0 {
		return 0
	}
	if offset > int64(len(p.data)) {
		offset = int64(len(p.data))
	}
	return bytes.Count(p.data[:offset], []byte("\n")) + 1
}

// member is one key of a JSON object, in file order.
type member struct {
	key    string
	value  json.RawMessage
	offset int64 // of the key, in the whole file
}

// object decodes raw (found at base in the file) as a JSON object, keeping
// key order and reporting duplicate keys under field.
func (p *parser) object(raw json.RawMessage, base int64, field string) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	seen := map[string]bool{}
	for dec.More() {
		keyStart := base + dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return out, false
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out, false
		}
		// InputOffset is after the separator; point at the key's line.
		off := keyStart + int64(bytes.IndexByte(raw[keyStart-base:], '"'))
		if seen[key] {
			p.add(off, join(field, key), "duplicate key")
			continue
		}
		seen[key] = true
		out = append(out, member{key: key, value: v, offset: off})
	}
	return out, true
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func isNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func (p *parser) parse() Config {
	cfg := Config{Servers: map[string]ServerConfig{}}
	trimmed := bytes.TrimSpace(p.data)
	if len(trimmed) == 0 {
		p.add(-1, "", "empty file: want {\"mcpServers\": {...}}")
		return cfg
	}
	if err := checkSyntax(p.data); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			p.add(se.Offset, "", "invalid JSON: %v", se)
		} else {
			p.add(-1, "", "invalid JSON: %v", err)
		}
		return cfg
	}
	top, ok := p.object(p.data, 0, "")
	if !ok {
		p.add(-1, "", "want a JSON object {\"mcpServers\": {...}}")
		return cfg
	}
	var servers *member
	for i := range top {
		switch top[i].key {
		case "mcpServers":
			servers = &top[i]
		case "$schema":
		default:
			p.add(top[i].offset, top[i].key, "unknown key (want mcpServers)")
		}
	}
	if servers == nil || isNull(servers.value) {
		return cfg
	}
	base := servers.offset + int64(bytes.Index(p.data[servers.offset:], servers.value))
	entries, ok := p.object(servers.value, base, "mcpServers")
	if !ok {
		p.add(servers.offset, "mcpServers", "must be an object of server entries")
		return cfg
	}
	prefixes := map[string]string{} // sanitised name -> first server name
	for _, e := range entries {
		field := "mcpServers." + e.key
		if ok := p.checkName(e, field, prefixes); !ok {
			continue
		}
		ebase := e.offset + int64(bytes.Index(p.data[e.offset:], e.value))
		if sc, ok := p.server(e, ebase, field); ok {
			cfg.Servers[e.key] = sc
		}
	}
	return cfg
}

// checkSyntax reports the first JSON syntax error of data, and trailing data.
func checkSyntax(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("data after the top-level value")
	}
	return nil
}

func (p *parser) checkName(e member, field string, prefixes map[string]string) bool {
	if strings.TrimSpace(e.key) == "" {
		p.add(e.offset, "mcpServers", "a server name is empty")
		return false
	}
	s := Sanitize(e.key)
	if strings.Trim(s, "_") == "" {
		p.add(e.offset, field, "server name %q gives an empty tool prefix: it needs a letter or digit", e.key)
		return false
	}
	if len(s) > MaxServerNameLen {
		p.add(e.offset, field, "server name is %d characters; at most %d, so that mcp_<server>_<tool> fits in 64", len(s), MaxServerNameLen)
		return false
	}
	if other, dup := prefixes[s]; dup {
		p.add(e.offset, field, "servers %q and %q give the same tool prefix mcp_%s_", other, e.key, s)
		return false
	}
	prefixes[s] = e.key
	return true
}

func (p *parser) server(e member, base int64, field string) (ServerConfig, bool) {
	sc := ServerConfig{Name: e.key}
	if isNull(e.value) {
		p.add(e.offset, field, "must be an object, not null")
		return sc, false
	}
	members, ok := p.object(e.value, base, field)
	if !ok {
		p.add(e.offset, field, "must be an object")
		return sc, false
	}
	before := len(p.problems)
	has := map[string]member{}
	for _, m := range members {
		if !slices.Contains(serverFields, m.key) {
			p.add(m.offset, join(field, m.key), "unknown field (allowed: %s)", strings.Join(serverFields, ", "))
			continue
		}
		if isNull(m.value) {
			continue // null is the same as absent
		}
		has[m.key] = m
	}
	unset := map[string]bool{}
	expand := func(s string) string { return expandVars(s, p.lookup, unset) }
	str := func(key string) (string, bool) {
		m, ok := has[key]
		if !ok {
			return "", false
		}
		var s string
		if err := json.Unmarshal(m.value, &s); err != nil {
			p.add(m.offset, join(field, key), "must be a string")
			return "", false
		}
		return s, true
	}
	strMap := func(key string) map[string]string {
		m, ok := has[key]
		if !ok {
			return nil
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(m.value, &raw); err != nil {
			p.add(m.offset, join(field, key), "must be an object of strings")
			return nil
		}
		out := make(map[string]string, len(raw))
		for _, k := range sortedKeys(raw) {
			var s string
			if err := json.Unmarshal(raw[k], &s); err != nil {
				p.add(m.offset, join(field, key)+"."+k, "must be a string (quote numbers and booleans)")
				continue
			}
			out[k] = expand(s)
		}
		return out
	}

	// type
	explicit := Transport("")
	if t, ok := str("type"); ok {
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "stdio":
			explicit = TransportStdio
		case "http", "streamable-http", "streamable_http", "streamablehttp":
			explicit = TransportHTTP
		case "sse":
			explicit = TransportSSE
		default:
			p.add(has["type"].offset, field+".type", "unknown type %q (want stdio, http or sse; streamable-http is http)", t)
		}
	}
	command, hasCommand := str("command")
	rawURL, hasURL := str("url")
	_, typeGiven := has["type"]
	switch {
	case explicit != "":
		sc.Transport = explicit
	case typeGiven:
		// unknown type, already reported
	case hasCommand && hasURL:
		p.add(has["command"].offset, field, "has both command and url: set command for a stdio server or url for an HTTP one")
	case hasCommand:
		sc.Transport = TransportStdio
	case hasURL:
		sc.Transport = TransportHTTP // a bare url is Streamable HTTP; SSE must say "type": "sse"
	default:
		if _, bad := has["command"]; !bad {
			if _, bad := has["url"]; !bad {
				p.add(e.offset, field, "missing command (stdio) or url (http, sse)")
			}
		}
	}

	stdioOnly := []string{"command", "args", "env", "cwd"}
	urlOnly := []string{"url", "headers"}
	switch sc.Transport {
	case TransportStdio:
		for _, k := range urlOnly {
			if m, ok := has[k]; ok {
				p.add(m.offset, join(field, k), "is only for http and sse servers, this one is stdio")
			}
		}
		if _, ok := has["command"]; !ok {
			p.add(e.offset, field, "missing command: a stdio server needs one")
		} else if hasCommand {
			sc.Command = expand(command)
			if strings.TrimSpace(sc.Command) == "" {
				p.add(has["command"].offset, field+".command", "is empty (after expanding variables)")
			}
		}
		if m, ok := has["args"]; ok {
			var args []json.RawMessage
			if err := json.Unmarshal(m.value, &args); err != nil {
				p.add(m.offset, field+".args", "must be an array of strings")
			} else {
				sc.Args = make([]string, 0, len(args))
				for i, a := range args {
					var s string
					if err := json.Unmarshal(a, &s); err != nil {
						p.add(m.offset, fmt.Sprintf("%s.args[%d]", field, i), "must be a string")
						continue
					}
					sc.Args = append(sc.Args, expand(s))
				}
			}
		}
		sc.Env = strMap("env")
		for k := range sc.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				p.add(has["env"].offset, field+".env", "variable name %q is not valid", k)
			}
		}
		if cwd, ok := str("cwd"); ok {
			sc.Cwd = expand(cwd)
		}
	case TransportHTTP, TransportSSE:
		for _, k := range stdioOnly {
			if m, ok := has[k]; ok {
				p.add(m.offset, join(field, k), "is only for stdio servers, this one is %s", sc.Transport)
			}
		}
		if _, ok := has["url"]; !ok {
			p.add(e.offset, field, "missing url: a %s server needs one", sc.Transport)
		} else if hasURL {
			sc.URL = expand(rawURL)
			if msg := checkURL(sc.URL); msg != "" {
				p.add(has["url"].offset, field+".url", "%s", msg)
			}
		}
		sc.Headers = strMap("headers")
		for _, k := range sortedKeys(sc.Headers) {
			if !validHeaderName(k) {
				p.add(has["headers"].offset, field+".headers", "header name %q is not valid", k)
			}
			if strings.ContainsAny(sc.Headers[k], "\r\n\x00") {
				p.add(has["headers"].offset, field+".headers."+k, "value contains a line break or NUL (after expanding variables)")
			}
		}
	}

	if m, ok := has["trust"]; ok {
		if err := json.Unmarshal(m.value, &sc.Trust); err != nil {
			p.add(m.offset, field+".trust", "must be true or false")
		}
	}
	sc.StartupTimeout = DefaultStartupTimeout
	if m, ok := has["timeout"]; ok {
		p.timeout(m, field+".timeout", &sc)
	}
	for v := range unset {
		sc.UnsetVars = append(sc.UnsetVars, v)
	}
	slices.Sort(sc.UnsetVars)
	return sc, len(p.problems) == before
}

// timeout parses a number (startup seconds) or {"startup": N, "request": N}.
func (p *parser) timeout(m member, field string, sc *ServerConfig) {
	const want = `must be a positive number of seconds (the startup timeout) or {"startup": N, "request": N}`
	var n float64
	if err := json.Unmarshal(m.value, &n); err == nil {
		d, msg := seconds(n)
		if msg != "" {
			p.add(m.offset, field, "%s", msg)
			return
		}
		sc.StartupTimeout = d
		return
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(m.value, &obj); err != nil {
		p.add(m.offset, field, "%s", want)
		return
	}
	for _, k := range sortedKeys(obj) {
		if k != "startup" && k != "request" {
			p.add(m.offset, field+"."+k, "unknown field (allowed: startup, request)")
			continue
		}
		if isNull(obj[k]) {
			continue
		}
		var n float64
		if err := json.Unmarshal(obj[k], &n); err != nil {
			p.add(m.offset, field+"."+k, "must be a number of seconds")
			continue
		}
		d, msg := seconds(n)
		if msg != "" {
			p.add(m.offset, field+"."+k, "%s", msg)
			continue
		}
		if k == "startup" {
			sc.StartupTimeout = d
		} else {
			sc.RequestTimeout = d
		}
	}
}

func seconds(n float64) (time.Duration, string) {
	if math.IsNaN(n) || n <= 0 {
		return 0, fmt.Sprintf("must be a positive number of seconds, not %v", n)
	}
	d := time.Duration(n * float64(time.Second))
	if d > MaxTimeout || n > MaxTimeout.Seconds() {
		return 0, fmt.Sprintf("%v seconds is more than %v (seconds, not milliseconds)", n, MaxTimeout)
	}
	if d < time.Millisecond {
		return 0, fmt.Sprintf("%v seconds is less than a millisecond", n)
	}
	return d, ""
}

func checkURL(s string) string {
	if strings.TrimSpace(s) == "" {
		return "is empty (after expanding variables)"
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("is not a valid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Sprintf("must be an http:// or https:// URL, not %q", s)
	}
	if u.Host == "" {
		return fmt.Sprintf("has no host: %q", s)
	}
	return ""
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// expandVars replaces $NAME and ${NAME} (NAME = [A-Za-z_][A-Za-z0-9_]*)
// with lookup's value; an unknown name becomes "" and is added to unset.
// Any other "$" is kept as written.
func expandVars(s string, lookup func(string) (string, bool), unset map[string]bool) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		name, width := "", 0
		if i+1 < len(s) && s[i+1] == '{' {
			if end := strings.IndexByte(s[i+2:], '}'); end >= 0 && isName(s[i+2:i+2+end]) {
				name, width = s[i+2:i+2+end], end+3
			}
		} else {
			j := i + 1
			for j < len(s) && (isNameByte(s[j]) && (j > i+1 || !isDigit(s[j]))) {
				j++
			}
			if j > i+1 {
				name, width = s[i+1:j], j-i
			}
		}
		if width == 0 {
			b.WriteByte('$')
			i++
			continue
		}
		if v, ok := lookup(name); ok {
			b.WriteString(v)
		} else {
			unset[name] = true
		}
		i += width
	}
	return b.String()
}

func isName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

func isNameByte(c byte) bool {
	return c == '_' || isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
