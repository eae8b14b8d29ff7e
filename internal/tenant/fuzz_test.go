package tenant_test

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/tenant"
)

// FuzzParseFile: any API keys file gives keys or errors, never a panic,
// and each problem names its line. A file without errors is what it says:
// every entry's key looks up to its tenant and role, and a key it does not
// have is unknown.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{
		"# agentd API keys: key=tenant[:role]\nacme-key-0123456789=acme\nroot-key-0123456789=ops:admin\n\n",
		"  k-0123456789abcdef = globex : user \r\n#k-0000000000000000=x\n",
		"k-0123456789abcdef=a.b_c-d:admin\nk-0123456789abcdeg=a.b_c-d",
		// Near misses.
		"short=acme\n", "k-0123456789abcdef=\n", "k-0123456789abcdef=acme:root\n", "=acme\n", "no equals sign\n",
		"k-0123456789abcdef=acme\nk-0123456789abcdef=globex\n", "k-0123456789abcdef=-acme\n", "k-0123456789abcdef=a/b\n",
		"k-0123456789abcdef=acme,k-0123456789abcdeg=globex\n", "k-0123456789abcdef=acme:admin:extra\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := tenant.ParseFile(bytes.NewReader(data))
		if keys == nil {
			t.Fatal("ParseFile returned nil keys")
		}
		var entries [][2]string // key, rest
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, rest, _ := strings.Cut(line, "=")
			entries = append(entries, [2]string{strings.TrimSpace(k), rest})
		}
		if err != nil {
			// Every problem names its line (the file's keys are secrets:
			// messages point at lines, they do not quote keys).
			for _, problem := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(problem, "line ") && problem != bufio.ErrTooLong.Error() {
					t.Errorf("problem %q does not name its line", problem)
				}
			}
			return
		}
		if keys.Len() != len(entries) {
			t.Fatalf("Len = %d; the file has %d entries", keys.Len(), len(entries))
		}
		for _, e := range entries {
			p, ok := keys.Lookup(e[0])
			name, role, _ := strings.Cut(e[1], ":")
			want := tenant.Principal{Tenant: strings.TrimSpace(name), Role: tenant.Role(strings.TrimSpace(role))}
			if want.Role == "" {
				want.Role = tenant.RoleUser
			}
			if !ok || p != want {
				t.Errorf("Lookup(%q) = %v, %v; want %v", e[0], p, ok, want)
			}
		}
		if p, ok := keys.Lookup("not-a-key-of-this-file\x00"); ok {
			t.Errorf("an unknown key looks up to %v", p)
		}
	})
}
