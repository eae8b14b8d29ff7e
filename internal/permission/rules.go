package permission

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// ShellTool is the tool whose "command" argument the hardline floor reads.
const ShellTool = "run_shell_command"

// Sources of a decision, as in Agentao's permission_decision reason prefixes.
const (
	SourceHardline   = "hardline"    // the floor of unrecoverable shell commands
	SourceUserRule   = "user-rule"   // a rule of the version
	SourceModePreset = "mode-preset" // a rule of the mode's preset, or read-only enforcement
	SourceDefault    = "default"     // no rule matched
)

// Rule is one permission rule, as written in a version file.
type Rule struct {
	// Tool is a regular expression that must match the whole tool name;
	// "*" alone matches every tool.
	Tool string `json:"tool"`
	// Args maps argument names to regular expressions searched (unanchored)
	// in the argument's string form; all must match.
	Args map[string]string `json:"args,omitempty"`
	// Domain, if set, must match the host of the URL argument too.
	Domain *Domain `json:"domain,omitempty"`
	// Action is what a match decides. In a version file an absent action
	// means Ask.
	Action Action `json:"action"`
}

// Domain matches the host of a URL argument against host lists. It matches
// when the host is on the allowlist or on the blocklist: the two lists
// differ only in name, so allowing and denying take two rules.
type Domain struct {
	URLArg    string   `json:"url_arg,omitempty"` // the argument holding the URL; "url" if empty
	Allowlist []string `json:"allowlist,omitempty"`
	Blocklist []string `json:"blocklist,omitempty"`
}

// String renders r briefly for logs, e.g.
// `run_shell_command {command: ^git } allow`. Long patterns and lists are
// shortened.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Tool)
	if len(r.Args) > 0 || r.Domain != nil {
		b.WriteString(" {")
		keys := make([]string, 0, len(r.Args))
		for k := range r.Args {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(shorten(r.Args[k], 40))
		}
		if d := r.Domain; d != nil {
			arg := d.URLArg
			if arg == "" {
				arg = "url"
			}
			for _, l := range []struct {
				name  string
				hosts []string
			}{{"allowlist", d.Allowlist}, {"blocklist", d.Blocklist}} {
				if len(l.hosts) == 0 {
					continue
				}
				if b.Len() > len(r.Tool)+2 {
					b.WriteString(", ")
				}
				b.WriteString(arg + " host in " + l.name + ": ")
				for i, h := range l.hosts {
					if i == 3 {
						b.WriteString(" …")
						break
					}
					if i > 0 {
						b.WriteByte(' ')
					}
					b.WriteString(h)
				}
			}
		}
		b.WriteString("}")
	}
	b.WriteString(" ")
	b.WriteString(r.Action.String())
	return b.String()
}

func shorten(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for j := 0; j < n; j++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}

// Call is one planned tool call.
type Call struct {
	Tool string
	Args map[string]any // the decoded JSON arguments
	// ReadOnly: the tool never changes files, processes or remote state.
	ReadOnly bool
	// Confirm: the tool writes, executes or reaches the network, and an Ask
	// decision prompts for it (Agentao's requires_confirmation).
	Confirm bool
}

// Decision is the outcome of [Rules.Check], with what a log reader needs to
// know why (Agentao's permission_decision event).
type Decision struct {
	Action  Action
	Source  string // SourceHardline, SourceUserRule, SourceModePreset or SourceDefault
	Rule    int    // index of the matched rule in its source (the version's rules or the preset), -1 if none
	Matched string // the matched rule, rendered by [Rule.String]; "" if none
	Reason  string // one sentence, prefixed by the source: "hardline: recursive delete of /"
	Version string // the rule version ("" for a bare preset)
	Mode    Mode
}

// Rules is one compiled, immutable rule version with its mode. It is safe
// for concurrent use.
type Rules struct {
	version string
	mode    Mode
	user    []*rule // the version's rules, in file order
	order   []*rule // evaluation order
	sources []string
}

// rule is a compiled Rule.
type rule struct {
	src     Rule
	source  string
	index   int
	anyTool bool
	literal string         // the tool name, when the pattern is a literal
	tool    *regexp.Regexp // otherwise
	args    []argMatcher
	domain  *domainMatcher

	matched        string
	reason         string // the reason when the action stands
	reasonAskAllow string // the reason when an Ask becomes an Allow
}

type argMatcher struct {
	key  string
	re   *regexp.Regexp
	need []string // if set, re cannot match unless one of these occurs
}

func (m *argMatcher) match(s string) bool {
	if m.need != nil {
		found := false
		for _, n := range m.need {
			if strings.Contains(s, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return m.re.MatchString(s)
}

// compile compiles r. where names the rule for errors ("rules[3]"); source
// and label make up its decision reasons.
func compile(r Rule, source string, index int, label string) (*rule, []error) {
	c := &rule{src: r, source: source, index: index}
	var errs []error
	switch {
	case r.Tool == "*":
		c.anyTool = true
	case regexp.QuoteMeta(r.Tool) == r.Tool:
		c.literal = r.Tool
	default:
		if _, err := regexp.Compile(r.Tool); err != nil {
			errs = append(errs, fieldError(index, "tool", "invalid regex %q: %s", r.Tool, reError(err)))
		} else if c.tool, err = regexp.Compile(`\A(?:` + r.Tool + `)\z`); err != nil {
			errs = append(errs, fieldError(index, "tool", "invalid regex %q: %s", r.Tool, reError(err)))
		}
	}
	keys := make([]string, 0, len(r.Args))
	for k := range r.Args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		re, err := regexp.Compile(r.Args[k])
		if err != nil {
			errs = append(errs, fieldError(index, "args."+k, "invalid regex %q: %s", r.Args[k], reError(err)))
			continue
		}
		c.args = append(c.args, argMatcher{key: k, re: re, need: prefilters[r.Args[k]]})
	}
	if r.Domain != nil {
		d, derrs := compileDomain(*r.Domain, index)
		c.domain = d
		errs = append(errs, derrs...)
	}
	c.matched = r.String()
	c.reason = source + ": " + label + " matched: " + c.matched
	c.reasonAskAllow = c.reason + "; ask becomes allow because the tool needs no confirmation"
	return c, errs
}

func reError(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

// matches reports whether c matches the call. args are rendered lazily.
func (c *rule) matches(call *Call) bool {
	switch {
	case c.anyTool:
	case c.tool == nil:
		if call.Tool != c.literal {
			return false
		}
	default:
		if !c.tool.MatchString(call.Tool) {
			return false
		}
	}
	for i := range c.args {
		if !c.args[i].match(argString(call.Args, c.args[i].key)) {
			return false
		}
	}
	if c.domain != nil && !c.domain.matches(argString(call.Args, c.domain.urlArg)) {
		return false
	}
	return true
}

// argString renders the argument key the way rules see it: a missing
// argument is "", a string is itself, anything else is its compact JSON
// (numbers plainly, true/false, null, objects and arrays as JSON).
func argString(args map[string]any, key string) string {
	v, ok := args[key]
	if !ok {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	case json.Number:
		return string(v)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// presets holds the compiled preset rules of each mode.
var presets = sync.OnceValue(func() map[Mode][]*rule {
	m := make(map[Mode][]*rule)
	for _, mode := range []Mode{ModeReadOnly, ModeWorkspaceWrite, ModeFullAccess, ModePlan} {
		rules := presetRules(mode)
		compiled := make([]*rule, len(rules))
		for i, r := range rules {
			c, errs := compile(r, SourceModePreset, i, string(mode)+" preset rule "+strconv.Itoa(i))
			if len(errs) > 0 {
				panic("permission: bad preset rule: " + errs[0].Error()) // a bug in preset.go
			}
			compiled[i] = c
		}
		m[mode] = compiled
	}
	return m
})

// Preset returns the rules of a preset mode alone, with no version ("" in
// decisions).
func Preset(mode Mode) (*Rules, error) {
	if !mode.Valid() {
		return nil, errUnknownMode(mode)
	}
	return build("", mode, nil), nil
}

// WithMode returns the same version's rules under another preset mode (an
// ACP session/set_mode or an HTTP mode switch). r is not changed.
func (r *Rules) WithMode(mode Mode) (*Rules, error) {
	if !mode.Valid() {
		return nil, errUnknownMode(mode)
	}
	return build(r.version, mode, r.user), nil
}

func build(version string, mode Mode, user []*rule) *Rules {
	preset := presets()[mode]
	order := make([]*rule, 0, len(user)+len(preset))
	if mode.presetFirst() {
		order = append(append(order, preset...), user...)
	} else {
		order = append(append(order, user...), preset...)
	}
	sources := []string{"preset:" + string(mode)}
	if version != "" {
		sources = append(sources, "user:"+version)
	}
	return &Rules{version: version, mode: mode, user: user, order: order, sources: sources}
}

// Version returns the rule version, "" for a bare preset.
func (r *Rules) Version() string { return r.version }

// Mode returns the preset mode.
func (r *Rules) Mode() Mode { return r.mode }

// Check decides a tool call. It never fails: see the package documentation
// for the order of evaluation. A nil *Rules denies every call.
func (r *Rules) Check(c Call) Decision {
	if r == nil {
		return Decision{Action: Deny, Source: SourceDefault, Rule: -1, Reason: "default: no permission rules are loaded, so every call is denied"}
	}
	d := Decision{Rule: -1, Version: r.version, Mode: r.mode}
	if c.Tool == ShellTool {
		if why := hardline(argString(c.Args, "command")); why != "" {
			d.Action, d.Source, d.Reason = Deny, SourceHardline, "hardline: "+why
			return d
		}
	}
	if r.mode == ModeReadOnly && !c.ReadOnly {
		d.Action, d.Source, d.Reason = Deny, SourceModePreset, "mode-preset: read-only mode denies tools that can change state"
		return d
	}
	for _, ru := range r.order {
		if !ru.matches(&c) {
			continue
		}
		d.Action, d.Source, d.Rule, d.Matched, d.Reason = ru.src.Action, ru.source, ru.index, ru.matched, ru.reason
		if d.Action == Ask && !c.Confirm {
			d.Action, d.Reason = Allow, ru.reasonAskAllow
		}
		return d
	}
	d.Source = SourceDefault
	if c.Confirm {
		d.Action, d.Reason = Ask, "default: no rule matched and the tool requires confirmation"
	} else {
		d.Action, d.Reason = Allow, "default: no rule matched and the tool needs no confirmation"
	}
	return d
}

// ActivePermissions is Agentao's active_permissions record, for the audit
// log at session start. Rules are in evaluation order; preset patterns
// appear in their Go (RE2) form. The read-only mode's enforcement and the
// hardline floor are not rules and do not appear.
type ActivePermissions struct {
	Mode          Mode     `json:"mode"`
	Rules         []Rule   `json:"rules"`
	LoadedSources []string `json:"loaded_sources"`
}

// Snapshot returns the active permissions. The result is a copy the caller
// may keep or change.
func (r *Rules) Snapshot() ActivePermissions {
	s := ActivePermissions{Mode: r.mode, Rules: make([]Rule, 0, len(r.order)), LoadedSources: slices.Clone(r.sources)}
	for _, ru := range r.order {
		s.Rules = append(s.Rules, cloneRule(ru.src))
	}
	return s
}

func cloneRule(r Rule) Rule {
	if r.Args != nil {
		args := make(map[string]string, len(r.Args))
		for k, v := range r.Args {
			args[k] = v
		}
		r.Args = args
	}
	if r.Domain != nil {
		d := *r.Domain
		d.Allowlist = slices.Clone(d.Allowlist)
		d.Blocklist = slices.Clone(d.Blocklist)
		r.Domain = &d
	}
	return r
}
