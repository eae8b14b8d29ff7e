// Package tenant maps API keys to tenants and roles.
//
// Keys are given as "key=tenant[:role]" entries, comma-separated in one
// string (AGENTD_API_KEYS) or one per line in a file (AGENTD_API_KEYS_FILE,
// with # comments). Only SHA-256 digests of the keys are kept, and a lookup
// compares the presented key's digest with every known digest in constant
// time, so neither the answer's timing nor a memory dump gives a key away.
package tenant

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// Role is what a key may do.
type Role string

// Roles. A key without a role is a user key.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Principal is who a key belongs to.
type Principal struct {
	Tenant string
	Role   Role
}

// MinKeyLength is the shortest key accepted.
const MinKeyLength = 16

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether s can name a tenant: 1 to 64 letters, digits,
// '.', '_' or '-', starting with a letter or digit (it is used in paths).
func ValidName(s string) bool { return namePattern.MatchString(s) }

type entry struct {
	digest [sha256.Size]byte
	p      Principal
}

// Keys is an immutable set of API keys.
type Keys struct{ entries []entry }

// Parse reads comma-separated "key=tenant[:role]" entries.
func Parse(spec string) (*Keys, error) {
	k := &Keys{}
	var errs []error
	for i, item := range strings.Split(spec, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		if err := k.add(item); err != nil {
			errs = append(errs, fmt.Errorf("entry %d: %w", i+1, err))
		}
	}
	return k, errors.Join(errs...)
}

// ParseFile reads "key=tenant[:role]" entries, one per line; blank lines and
// lines starting with # are skipped.
func ParseFile(r io.Reader) (*Keys, error) {
	k := &Keys{}
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := k.add(line); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return k, errors.Join(errs...)
}

// Merge returns the keys of k and o together; a key in both is an error.
func (k *Keys) Merge(o *Keys) (*Keys, error) {
	m := &Keys{entries: append([]entry(nil), k.entries...)}
	for _, e := range o.entries {
		if m.has(e.digest) {
			return nil, errors.New("the same key is configured twice")
		}
		m.entries = append(m.entries, e)
	}
	return m, nil
}

func (k *Keys) add(item string) error {
	key, rest, ok := strings.Cut(strings.TrimSpace(item), "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return errors.New(`want "key=tenant[:role]"`)
	}
	tenant, role, _ := strings.Cut(strings.TrimSpace(rest), ":")
	p := Principal{Tenant: strings.TrimSpace(tenant), Role: Role(strings.TrimSpace(role))}
	if p.Role == "" {
		p.Role = RoleUser
	}
	switch {
	case len(key) < MinKeyLength:
		return fmt.Errorf("key for tenant %q is shorter than %d characters", p.Tenant, MinKeyLength)
	case !ValidName(p.Tenant):
		return fmt.Errorf("tenant %q: want 1-64 letters, digits, '.', '_' or '-'", p.Tenant)
	case p.Role != RoleUser && p.Role != RoleAdmin:
		return fmt.Errorf("tenant %q: role %q is neither user nor admin", p.Tenant, p.Role)
	}
	d := sha256.Sum256([]byte(key))
	if k.has(d) {
		return fmt.Errorf("tenant %q: the same key is configured twice", p.Tenant)
	}
	k.entries = append(k.entries, entry{digest: d, p: p})
	return nil
}

func (k *Keys) has(d [sha256.Size]byte) bool {
	for _, e := range k.entries {
		if e.digest == d {
			return true
		}
	}
	return false
}

// Len returns how many keys there are.
func (k *Keys) Len() int { return len(k.entries) }

// Lookup returns the principal of key. It looks at every entry whatever
// matches, in constant time per entry.
func (k *Keys) Lookup(key string) (Principal, bool) {
	d := sha256.Sum256([]byte(key))
	var found Principal
	ok := 0
	for _, e := range k.entries {
		if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 {
			found, ok = e.p, 1
		}
	}
	return found, ok == 1
}

// Load reads the keys of spec (AGENTD_API_KEYS: "key=tenant[:role],...")
// and of file (AGENTD_API_KEYS_FILE: one per line), if file is not "". At
// least one key is required; a key named in both is an error.
func Load(spec, file string) (*Keys, error) {
	keys, err := Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("AGENTD_API_KEYS: %w", err)
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("AGENTD_API_KEYS_FILE: %w", err)
		}
		defer f.Close()
		fromFile, err := ParseFile(f)
		if err != nil {
			return nil, fmt.Errorf("AGENTD_API_KEYS_FILE %s: %w", file, err)
		}
		if keys, err = keys.Merge(fromFile); err != nil {
			return nil, fmt.Errorf("AGENTD_API_KEYS_FILE %s: %w", file, err)
		}
	}
	if keys.Len() == 0 {
		return nil, errors.New("no API keys configured: set AGENTD_API_KEYS or AGENTD_API_KEYS_FILE")
	}
	return keys, nil
}
