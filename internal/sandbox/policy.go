package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
)

// Profile names a built-in sandbox profile, as spelled in sandbox.json.
type Profile string

// The built-in profiles. Their names are Agentao's, so sandbox.json files
// port over unchanged.
const (
	// Readonly allows no writes at all except to /dev/null, and no network.
	Readonly Profile = "readonly"
	// WorkspaceWrite allows writes in the workspace, the extra writable
	// directories, /tmp and /dev/{null,zero,full}; network is allowed.
	WorkspaceWrite Profile = "workspace-write"
	// WorkspaceWriteNoNetwork is WorkspaceWrite without network. It is the
	// default profile.
	WorkspaceWriteNoNetwork Profile = "workspace-write-no-network"
)

// DefaultProfile is the profile used when sandbox.json names none.
const DefaultProfile = WorkspaceWriteNoNetwork

// Profiles returns the built-in profiles in a stable order.
func Profiles() []Profile {
	return []Profile{Readonly, WorkspaceWrite, WorkspaceWriteNoNetwork}
}

// Valid reports whether p is a built-in profile.
func (p Profile) Valid() bool {
	switch p {
	case Readonly, WorkspaceWrite, WorkspaceWriteNoNetwork:
		return true
	}
	return false
}

// Writes reports whether p allows writes in the workspace.
func (p Profile) Writes() bool { return p == WorkspaceWrite || p == WorkspaceWriteNoNetwork }

// Network reports whether p allows network access.
func (p Profile) Network() bool { return p == WorkspaceWrite }

// minABI is the lowest Landlock ABI that enforces everything a profile
// promises: ABI 3 handles truncation (without it, truncate(2) outside the
// workspace would be allowed), ABI 4 TCP bind and connect, ABI 6 the
// signal and abstract UNIX socket scopes (without them a command could
// signal agentd or talk to any abstract socket). Every profile needs all of
// them.
func (p Profile) minABI() int { return 6 }

// ParseProfile returns the profile named s, or an error listing the known
// names.
func ParseProfile(s string) (Profile, error) {
	if p := Profile(s); p.Valid() {
		return p, nil
	}
	return "", fmt.Errorf("unknown profile %q; known: %s", s, knownProfiles())
}

func knownProfiles() string {
	var names []string
	for _, p := range Profiles() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

// Rule selects a profile for one tool by its name, as in sandbox.json.
type Rule struct {
	Tool    string
	Profile Profile
}

// Policy is a parsed sandbox.json. Create it with [Load], [Parse] or
// [DefaultPolicy]; it is immutable except for the preflight report that
// [Preflight] records in it. A Policy is safe for concurrent use.
type Policy struct {
	enabled  bool
	platform string // informational
	def      Profile
	rules    []Rule
	settings map[Profile]ProfileSettings
	source   string // where it came from, for messages

	report atomic.Pointer[Report] // the last Preflight's
}

// DefaultPolicy returns the policy of a missing sandbox.json: enabled, with
// the default profile workspace-write-no-network and no rules.
func DefaultPolicy() *Policy {
	return &Policy{enabled: true, def: DefaultProfile, source: "built-in defaults"}
}

// Enabled reports whether shell commands are confined. When it is false they
// run unconfined.
func (p *Policy) Enabled() bool { return p.enabled }

// Platform returns the informational "platform" field ("" if null or absent).
func (p *Policy) Platform() string { return p.platform }

// Default returns the profile used when no rule matches.
func (p *Policy) Default() Profile { return p.def }

// Rules returns a copy of the policy's rules.
func (p *Policy) Rules() []Rule { return append([]Rule(nil), p.rules...) }

// Source says where the policy came from: a file path, or the defaults.
func (p *Policy) Source() string { return p.source }

// ProfileSettings is what sandbox.json's "profiles" object adds to one
// built-in profile (an agentd extension; Agentao has no such field).
type ProfileSettings struct {
	// Env names the variables of agentd's environment that commands under
	// the profile get, beyond the base list of [CommandEnv].
	Env []string
	// ReadOnlyPaths are absolute paths commands under the profile may read
	// and execute, beyond the system paths (a toolchain in /opt, say).
	ReadOnlyPaths []string
}

// Settings returns the extra environment and read-only paths sandbox.json
// gives prof (none when it names nothing for it).
func (p *Policy) Settings(prof Profile) ProfileSettings {
	s := p.settings[prof]
	return ProfileSettings{Env: slices.Clone(s.Env), ReadOnlyPaths: slices.Clone(s.ReadOnlyPaths)}
}

// Profile returns the profile for a tool: override if it is non-empty (a
// canary assigning a profile per session), else the first rule naming the
// tool, else the default profile. An unknown override is an error.
func (p *Policy) Profile(tool string, override string) (Profile, error) {
	if override != "" {
		pr, err := ParseProfile(override)
		if err != nil {
			return "", fmt.Errorf("profile override: %w", err)
		}
		return pr, nil
	}
	for _, r := range p.rules {
		if r.Tool == tool {
			return r.Profile, nil
		}
	}
	return p.def, nil
}

// inUse reports whether the default or a rule names pr.
func (p *Policy) inUse(pr Profile) bool {
	if pr == p.def {
		return true
	}
	for _, r := range p.rules {
		if r.Profile == pr {
			return true
		}
	}
	return false
}

// String summarises the policy for logs.
func (p *Policy) String() string {
	var b strings.Builder
	if p.enabled {
		b.WriteString("sandbox enabled")
	} else {
		b.WriteString("sandbox DISABLED (shell commands run unconfined)")
	}
	fmt.Fprintf(&b, "; default profile %s", p.def)
	for _, r := range p.rules {
		fmt.Fprintf(&b, "; %s uses %s", r.Tool, r.Profile)
	}
	if p.platform != "" && p.platform != "linux" {
		fmt.Fprintf(&b, "; platform %q is informational, enforced with Landlock on linux", p.platform)
	}
	fmt.Fprintf(&b, " (from %s)", p.source)
	return b.String()
}

// Load reads the sandbox.json at path. A missing file means
// [DefaultPolicy]; any other read error, and any parse error, is returned
// prefixed with the path: the caller must then refuse to run shell commands
// (see [Refuse]).
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		p := DefaultPolicy()
		p.source = path + " (missing: built-in defaults)"
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sandbox config: %w", err)
	}
	p, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.source = path
	return p, nil
}

// topLevelFields are sandbox.json's fields, in Agentao's order.
var topLevelFields = []string{"enabled", "platform", "default_profile", "rules", "profiles_dir", "workspace_root", "profiles"}

// Parse parses a sandbox.json document. Absent fields take the defaults of
// [DefaultPolicy]; explicit nulls mean the same where the schema allows null.
// The error names the offending field, e.g.
//
//	rules[1].profile: unknown profile "workspace-rw"; known: readonly, workspace-write, workspace-write-no-network
func Parse(data []byte) (*Policy, error) {
	obj, err := decodeObject(data, "")
	if err != nil {
		return nil, err
	}
	p := DefaultPolicy()
	p.source = "sandbox.json"
	for key := range obj {
		if !slices.Contains(topLevelFields, key) {
			return nil, fmt.Errorf("%s: unknown field; known: %s", key, strings.Join(topLevelFields, ", "))
		}
	}
	if v, ok := obj["enabled"]; ok {
		if err := json.Unmarshal(v, &p.enabled); err != nil || kind(v) != "boolean" {
			return nil, fmt.Errorf("enabled: must be true or false, not %s", kind(v))
		}
	}
	if v, ok := obj["platform"]; ok && kind(v) != "null" {
		if kind(v) != "string" {
			return nil, fmt.Errorf("platform: must be a string or null, not %s", kind(v))
		}
		json.Unmarshal(v, &p.platform)
	}
	if v, ok := obj["default_profile"]; ok && kind(v) != "null" {
		if p.def, err = decodeProfile(v, "default_profile"); err != nil {
			return nil, err
		}
	}
	if v, ok := obj["rules"]; ok && kind(v) != "null" {
		if p.rules, err = decodeRules(v); err != nil {
			return nil, err
		}
	}
	if v, ok := obj["profiles"]; ok && kind(v) != "null" {
		if p.settings, err = decodeSettings(v); err != nil {
			return nil, err
		}
	}
	if v, ok := obj["profiles_dir"]; ok && kind(v) != "null" {
		if kind(v) != "string" {
			return nil, fmt.Errorf("profiles_dir: must be a string or null, not %s", kind(v))
		}
		return nil, fmt.Errorf("profiles_dir: custom profiles are not supported on Linux yet; "+
			"remove it or set it to null and use a built-in profile (%s)", knownProfiles())
	}
	if v, ok := obj["workspace_root"]; ok && kind(v) != "null" {
		if kind(v) != "string" {
			return nil, fmt.Errorf("workspace_root: must be a string or null, not %s", kind(v))
		}
		return nil, errors.New("workspace_root: not supported by agentd, where the writable root is " +
			"each session's own workspace; remove it or set it to null")
	}
	return p, nil
}

func decodeProfile(v json.RawMessage, field string) (Profile, error) {
	if kind(v) != "string" {
		return "", fmt.Errorf("%s: must be a profile name (a string), not %s", field, kind(v))
	}
	var s string
	json.Unmarshal(v, &s)
	pr, err := ParseProfile(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return pr, nil
}

func decodeRules(v json.RawMessage) ([]Rule, error) {
	if kind(v) != "array" {
		return nil, fmt.Errorf("rules: must be an array or null, not %s", kind(v))
	}
	var elems []json.RawMessage
	json.Unmarshal(v, &elems)
	var rules []Rule
	seen := map[string]int{}
	for i, e := range elems {
		field := fmt.Sprintf("rules[%d]", i)
		if kind(e) != "object" {
			return nil, fmt.Errorf("%s: must be an object {\"tool\": …, \"profile\": …}, not %s", field, kind(e))
		}
		obj, err := decodeObject(e, field)
		if err != nil {
			return nil, err
		}
		for key := range obj {
			if key != "tool" && key != "profile" {
				return nil, fmt.Errorf("%s.%s: unknown field; known: tool, profile", field, key)
			}
		}
		tv, ok := obj["tool"]
		if !ok {
			return nil, fmt.Errorf("%s.tool: missing", field)
		}
		var r Rule
		if kind(tv) != "string" {
			return nil, fmt.Errorf("%s.tool: must be a tool name (a string), not %s", field, kind(tv))
		}
		json.Unmarshal(tv, &r.Tool)
		if r.Tool == "" {
			return nil, fmt.Errorf("%s.tool: must not be empty", field)
		}
		pv, ok := obj["profile"]
		if !ok {
			return nil, fmt.Errorf("%s.profile: missing", field)
		}
		if r.Profile, err = decodeProfile(pv, field+".profile"); err != nil {
			return nil, err
		}
		if j, dup := seen[r.Tool]; dup {
			return nil, fmt.Errorf("%s.tool: a second rule for %q (rules[%d] is the first); keep one", field, r.Tool, j)
		}
		seen[r.Tool] = i
		rules = append(rules, r)
	}
	return rules, nil
}

// decodeSettings reads the "profiles" object: per built-in profile,
//
//	{"env": ["HTTPS_PROXY", "NO_PROXY"], "read_only_paths": ["/opt/toolchain"]}
func decodeSettings(v json.RawMessage) (map[Profile]ProfileSettings, error) {
	obj, err := decodeObject(v, "profiles")
	if err != nil {
		return nil, err
	}
	out := make(map[Profile]ProfileSettings, len(obj))
	for name, sv := range obj {
		field := "profiles." + name
		prof, err := ParseProfile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		so, err := decodeObject(sv, field)
		if err != nil {
			return nil, err
		}
		var ps ProfileSettings
		for key, fv := range so {
			switch key {
			case "env":
				if ps.Env, err = decodeStrings(fv, field+".env", checkEnvName); err != nil {
					return nil, err
				}
			case "read_only_paths":
				if ps.ReadOnlyPaths, err = decodeStrings(fv, field+".read_only_paths", checkReadOnlyPath); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("%s.%s: unknown field; known: env, read_only_paths", field, key)
			}
		}
		out[prof] = ps
	}
	return out, nil
}

// decodeStrings reads an array of distinct strings, each checked by check.
func decodeStrings(v json.RawMessage, field string, check func(string) error) ([]string, error) {
	if kind(v) == "null" {
		return nil, nil
	}
	if kind(v) != "array" {
		return nil, fmt.Errorf("%s: must be an array of strings, not %s", field, kind(v))
	}
	var elems []json.RawMessage
	json.Unmarshal(v, &elems)
	out := make([]string, 0, len(elems))
	for i, e := range elems {
		if kind(e) != "string" {
			return nil, fmt.Errorf("%s[%d]: must be a string, not %s", field, i, kind(e))
		}
		var s string
		json.Unmarshal(e, &s)
		if err := check(s); err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		if slices.Contains(out, s) {
			return nil, fmt.Errorf("%s[%d]: %q is listed twice", field, i, s)
		}
		out = append(out, s)
	}
	return out, nil
}

func checkReadOnlyPath(s string) error {
	switch {
	case !filepath.IsAbs(s):
		return fmt.Errorf("%q is not an absolute path", s)
	case filepath.Clean(s) != s:
		return fmt.Errorf("%q is not a clean path; write %q", s, filepath.Clean(s))
	case s == "/":
		return errors.New(`"/" would make every file readable; name the directories commands need`)
	}
	return nil
}

// decodeObject decodes one JSON object, rejecting invalid JSON, trailing
// data, other kinds of values and duplicate keys (anywhere in it: Go would
// silently keep the last, a reader would believe the first).
func decodeObject(data []byte, field string) (map[string]json.RawMessage, error) {
	prefix := ""
	if field != "" {
		prefix = field + ": "
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%sinvalid JSON: the document is empty", prefix)
	}
	if !json.Valid(data) {
		var v any
		err := json.Unmarshal(data, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(data, se.Offset)
			return nil, fmt.Errorf("%sinvalid JSON at line %d, column %d: %v", prefix, line, col, err)
		}
		return nil, fmt.Errorf("%sinvalid JSON: %v", prefix, err)
	}
	if k := kind(data); k != "object" {
		return nil, fmt.Errorf("%smust be a JSON object, not %s", prefix, k)
	}
	if err := checkDuplicateKeys(json.NewDecoder(bytes.NewReader(data)), field); err != nil {
		return nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%sinvalid JSON: %v", prefix, err)
	}
	return obj, nil
}

// checkDuplicateKeys walks one JSON value from dec and fails on an object
// with a key twice. The input is known to be valid JSON.
func checkDuplicateKeys(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key := kt.(string)
			sub := key
			if path != "" {
				sub = path + "." + key
			}
			if seen[key] {
				return fmt.Errorf("%s: duplicate field", sub)
			}
			seen[key] = true
			if err := checkDuplicateKeys(dec, sub); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkDuplicateKeys(dec, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// kind names the JSON kind of a valid value.
func kind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// position converts the offset of a json.SyntaxError (the bytes read,
// including the offending one) to the 1-based line and column of the
// offending byte.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off-1, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}
