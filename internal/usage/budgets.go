package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/agentd/agentd/internal/tenant"
)

// Budgets are the daily token budgets of .agentao/budgets.json:
//
//	{"tenants": {"acme": {"daily_tokens": 2000000}},
//	 "users":   {"acme/alice": {"daily_tokens": 200000}},
//	 "default": {"daily_tokens": 500000}}
//
// Default applies to every tenant not listed under tenants. A user's budget
// is checked in addition to its tenant's. A daily_tokens of 0 (or absent)
// is no limit. The zero Budgets limits nothing.
type Budgets struct {
	Tenants map[string]Budget `json:"tenants,omitempty"`
	Users   map[string]Budget `json:"users,omitempty"` // "tenant/user"
	Default Budget            `json:"default,omitzero"`
}

// Budget is one scope's limit.
type Budget struct {
	// DailyTokens bounds the input plus output tokens of a day (in the
	// process's usage zone); 0 is no limit.
	DailyTokens int64 `json:"daily_tokens,omitempty"`
}

// Tenant returns the budget of tenant: its own, else the default.
func (b Budgets) Tenant(tenant string) Budget {
	if bu, ok := b.Tenants[tenant]; ok {
		return bu
	}
	return b.Default
}

// User returns the budget of tenant's end user (none if not listed).
func (b Budgets) User(tenant, user string) Budget {
	if user == "" {
		return Budget{}
	}
	return b.Users[tenant+"/"+user]
}

// maxUserLen matches the API's bound on X-Agentd-User.
const maxUserLen = 256

// Parse reads budgets.json. nil (no file) is no budget at all. Every field
// is optional; an unknown field, a negative or fractional budget, or a
// malformed tenant or user name is an error naming where it is. All the
// problems are reported at once.
//
// Hand-written over encoding/json's DisallowUnknownFields because that
// names an unknown field without saying where it is ("tenants.acme"),
// which is what an operator needs in a file of hundreds of entries.
func Parse(data []byte) (Budgets, error) {
	var b Budgets
	if data == nil {
		return b, nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		// An editor truncating the file must not lift every budget.
		return b, errors.New(`the file is empty: write {} for no budgets, or delete it`)
	}
	top, err := object(data, "budgets.json")
	if err != nil {
		return b, err
	}
	var errs []error
	for _, k := range sortedKeys(top) {
		raw := top[k]
		switch k {
		case "tenants", "users":
			m, err := object(raw, k)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out := map[string]Budget{}
			for _, name := range sortedKeys(m) {
				path := k + "." + name
				if err := checkName(k, name); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", path, err))
					continue
				}
				bu, err := budget(m[name], path)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out[name] = bu
			}
			if k == "tenants" {
				b.Tenants = out
			} else {
				b.Users = out
			}
		case "default":
			bu, err := budget(raw, k)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			b.Default = bu
		default:
			errs = append(errs, fmt.Errorf("budgets.json: unknown field %q (want tenants, users or default)", k))
		}
	}
	if len(errs) > 0 {
		return Budgets{}, errors.Join(errs...)
	}
	return b, nil
}

// budget reads {"daily_tokens": N}.
func budget(raw json.RawMessage, path string) (Budget, error) {
	var bu Budget
	m, err := object(raw, path)
	if err != nil {
		return bu, err
	}
	var errs []error
	for _, k := range sortedKeys(m) {
		if k != "daily_tokens" {
			errs = append(errs, fmt.Errorf("%s: unknown field %q (want daily_tokens)", path, k))
			continue
		}
		if string(m[k]) == "null" {
			continue
		}
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(m[k]))
		d.UseNumber()
		if err := d.Decode(&n); err != nil || m[k][0] == '"' { // json.Number also takes "100"
			errs = append(errs, fmt.Errorf("%s.daily_tokens: want a whole number of tokens, got %s", path, m[k]))
			continue
		}
		v, err := n.Int64()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s.daily_tokens: want a whole number of tokens, got %s", path, n))
		case v < 0:
			errs = append(errs, fmt.Errorf("%s.daily_tokens: %d is negative (0 or absent: no limit)", path, v))
		default:
			bu.DailyTokens = v
		}
	}
	return bu, errors.Join(errs...)
}

// object decodes a JSON object, keeping its values raw.
func object(raw json.RawMessage, path string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s: not valid JSON (at byte %d): %v", path, se.Offset, err)
		}
		return nil, fmt.Errorf("%s: want an object, got %s", path, truncate(string(raw), 40))
	}
	if m == nil { // null
		return map[string]json.RawMessage{}, nil
	}
	return m, nil
}

// checkName checks a tenants key (a tenant name) or a users key
// ("tenant/user", the user as X-Agentd-User names it).
func checkName(kind, name string) error {
	if kind == "tenants" {
		if !tenant.ValidName(name) {
			return errors.New("not a tenant name (letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64)")
		}
		return nil
	}
	t, u, ok := strings.Cut(name, "/")
	switch {
	case !ok:
		return errors.New(`want "tenant/user"`)
	case !tenant.ValidName(t):
		return fmt.Errorf("%q is not a tenant name", t)
	case u == "" || u != strings.TrimSpace(u):
		return errors.New("the user is empty or has leading or trailing spaces")
	case len(u) > maxUserLen:
		return fmt.Errorf("the user is longer than %d bytes", maxUserLen)
	case strings.ContainsFunc(u, unicode.IsControl):
		return errors.New("the user has control characters")
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
