package permission

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Parse compiles a rule version from its file,
// .agentao/permissions/<version>.json:
//
//	{"mode": "workspace-write", "rules": [{"tool": …, "args": {…}, "domain": {…}, "action": …}, …]}
//
// "mode" is optional (default workspace-write); "rules" is optional (none).
// Every problem is reported, each naming the rule and field
// ("rules[3].args.command: invalid regex …"), joined with [errors.Join].
func Parse(version string, data []byte) (*Rules, error) {
	if version == "" {
		return nil, errors.New("permission: empty rule version")
	}
	compiled, mode, errs := decode(version, data)
	if len(errs) > 0 {
		return nil, fmt.Errorf("permission version %q: %w", version, errors.Join(errs...))
	}
	return build(version, mode, compiled), nil
}

func errUnknownMode(m Mode) error {
	return fmt.Errorf("permission: unknown mode %q (want read-only, workspace-write, full-access or plan)", string(m))
}

// fieldError names a rule field: "rules[3].args.command: …".
func fieldError(index int, field, format string, args ...any) error {
	return fmt.Errorf("rules[%d].%s: %s", index, field, fmt.Sprintf(format, args...))
}

// decode reads and compiles a version file, reporting problems in file order.
func decode(version string, data []byte) (rules []*rule, mode Mode, errs []error) {
	mode = DefaultMode
	fields, err := objectFields(data)
	if err != nil {
		return nil, mode, []error{fmt.Errorf("malformed file: %w", err)}
	}
	for _, f := range fields {
		if f.err != nil {
			errs = append(errs, f.err)
			continue
		}
		switch f.key {
		case "mode":
			var s string
			if err := json.Unmarshal(f.val, &s); err != nil {
				errs = append(errs, fmt.Errorf("mode: want a string, got %s", kind(f.val)))
			} else if !Mode(s).Valid() {
				errs = append(errs, fmt.Errorf("mode: unknown mode %q (want read-only, workspace-write, full-access or plan)", s))
			} else {
				mode = Mode(s)
			}
		case "rules":
			var raw []json.RawMessage
			if err := json.Unmarshal(f.val, &raw); err != nil || raw == nil {
				errs = append(errs, fmt.Errorf("rules: want an array of rules, got %s", kind(f.val)))
				continue
			}
			for i, raw := range raw {
				r, rerrs := decodeRule(i, raw)
				if len(rerrs) > 0 {
					errs = append(errs, rerrs...)
					continue
				}
				c, cerrs := compile(*r, SourceUserRule, i, "rules["+strconv.Itoa(i)+"] of version "+version)
				rules = append(rules, c)
				errs = append(errs, cerrs...)
			}
		default:
			errs = append(errs, fmt.Errorf("%q: unknown field (want mode, rules)", f.key))
		}
	}
	return rules, mode, errs
}

func decodeRule(i int, data []byte) (*Rule, []error) {
	fields, err := objectFields(data)
	if err != nil {
		return nil, []error{fmt.Errorf("rules[%d]: %w", i, err)}
	}
	r := &Rule{Action: Ask} // Agentao: a missing action means ask
	var errs []error
	hasTool := false
	for _, f := range fields {
		if f.err != nil {
			errs = append(errs, fmt.Errorf("rules[%d]: %w", i, f.err))
			continue
		}
		switch f.key {
		case "tool":
			hasTool = true
			if err := json.Unmarshal(f.val, &r.Tool); err != nil {
				errs = append(errs, fieldError(i, "tool", "want a string, got %s", kind(f.val)))
			} else if r.Tool == "" {
				errs = append(errs, fieldError(i, "tool", `empty; use "*" for every tool`))
			}
		case "args":
			afields, err := objectFields(f.val)
			if err != nil {
				errs = append(errs, fieldError(i, "args", "%v", err))
				continue
			}
			r.Args = make(map[string]string, len(afields))
			for _, a := range afields {
				if a.err != nil {
					errs = append(errs, fieldError(i, "args", "%v", a.err))
					continue
				}
				var s string
				if err := json.Unmarshal(a.val, &s); err != nil {
					errs = append(errs, fieldError(i, "args."+a.key, "want a regex string, got %s", kind(a.val)))
					continue
				}
				r.Args[a.key] = s
			}
		case "domain":
			d, derrs := decodeDomain(i, f.val)
			r.Domain = d
			errs = append(errs, derrs...)
		case "action":
			var s string
			if err := json.Unmarshal(f.val, &s); err != nil {
				errs = append(errs, fieldError(i, "action", "want a string, got %s", kind(f.val)))
			} else if err := r.Action.UnmarshalText([]byte(s)); err != nil {
				errs = append(errs, fieldError(i, "action", "%v", err))
			}
		default:
			errs = append(errs, fieldError(i, f.key, "unknown field (want tool, args, domain, action)"))
		}
	}
	if !hasTool {
		errs = append(errs, fieldError(i, "tool", `missing; use "*" for every tool`))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

func decodeDomain(i int, data []byte) (*Domain, []error) {
	fields, err := objectFields(data)
	if err != nil {
		return nil, []error{fieldError(i, "domain", "%v", err)}
	}
	d := &Domain{}
	var errs []error
	for _, f := range fields {
		if f.err != nil {
			errs = append(errs, fieldError(i, "domain", "%v", f.err))
			continue
		}
		switch f.key {
		case "url_arg":
			if err := json.Unmarshal(f.val, &d.URLArg); err != nil {
				errs = append(errs, fieldError(i, "domain.url_arg", "want a string, got %s", kind(f.val)))
			} else if d.URLArg == "" {
				errs = append(errs, fieldError(i, "domain.url_arg", "empty"))
			}
		case "allowlist", "blocklist":
			var raw []json.RawMessage
			if err := json.Unmarshal(f.val, &raw); err != nil || raw == nil {
				errs = append(errs, fieldError(i, "domain."+f.key, "want an array of host names, got %s", kind(f.val)))
				continue
			}
			hosts := make([]string, 0, len(raw))
			for j, h := range raw {
				var s string
				if err := json.Unmarshal(h, &s); err != nil {
					errs = append(errs, fieldError(i, "domain."+f.key+"["+strconv.Itoa(j)+"]", "want a string, got %s", kind(h)))
					continue
				}
				hosts = append(hosts, s)
			}
			if f.key == "allowlist" {
				d.Allowlist = hosts
			} else {
				d.Blocklist = hosts
			}
		default:
			errs = append(errs, fieldError(i, "domain."+f.key, "unknown field (want url_arg, allowlist, blocklist)"))
		}
	}
	return d, errs
}

// field is one member of a JSON object; a duplicate member is reported as a
// field with err set.
type field struct {
	key string
	val json.RawMessage
	err error
}

// objectFields reads a JSON object, keeping its members in order and
// reporting duplicates (which encoding/json would silently resolve to the
// last one: {"action":"deny","action":"allow"}).
func objectFields(data []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want an object, got %s", kind(data))
	}
	var fields []field
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, jsonError(err)
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, jsonError(err)
		}
		if seen[key] {
			fields = append(fields, field{key: key, err: fmt.Errorf("duplicate field %q", key)})
			continue
		}
		seen[key] = true
		fields = append(fields, field{key: key, val: val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return fields, nil
}

func jsonError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("unexpected end of JSON")
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	return err
}

// kind names the JSON type of a value, for error messages.
func kind(data []byte) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return "nothing"
	}
	switch data[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}
