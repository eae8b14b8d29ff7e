package tenant_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/tenant"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		wantErr string
		lookups map[string]tenant.Principal // key → principal; absent = not found
	}{
		{
			name: "user and admin keys",
			spec: "acme-key-0123456789=acme, globex-key-012345678=globex:admin",
			lookups: map[string]tenant.Principal{
				"acme-key-0123456789":  {Tenant: "acme", Role: tenant.RoleUser},
				"globex-key-012345678": {Tenant: "globex", Role: tenant.RoleAdmin},
			},
		},
		{name: "empty is no keys", spec: " , "},
		{name: "short key", spec: "short=acme", wantErr: "shorter than 16"},
		{name: "missing tenant", spec: "acme-key-0123456789=", wantErr: "tenant"},
		{name: "bad tenant", spec: "acme-key-0123456789=../etc", wantErr: `tenant "../etc"`},
		{name: "bad role", spec: "acme-key-0123456789=acme:root", wantErr: `role "root"`},
		{name: "no equals", spec: "acme-key-0123456789", wantErr: "key=tenant"},
		{name: "duplicate", spec: "acme-key-0123456789=acme,acme-key-0123456789=globex", wantErr: "twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tenant.Parse(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) error = %v; want one containing %q", tc.spec, err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "0123456789") {
					t.Errorf("error %q leaks the key", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) = %v", tc.spec, err)
			}
			for key, want := range tc.lookups {
				if got, ok := k.Lookup(key); !ok || got != want {
					t.Errorf("Lookup(%q) = %+v, %v; want %+v", key, got, ok, want)
				}
			}
			for _, bad := range []string{"", "acme", "acme-key-012345678", "acme-key-0123456789 "} {
				if _, ok := k.Lookup(bad); ok {
					t.Errorf("Lookup(%q) found a principal; want none", bad)
				}
			}
		})
	}
}

func TestParseFile(t *testing.T) {
	k, err := tenant.ParseFile(strings.NewReader("# production keys\n\nacme-key-0123456789=acme\nops-key-0123456789ab=ops:admin\n"))
	if err != nil || k.Len() != 2 {
		t.Fatalf("ParseFile = %d keys, %v; want 2, nil", k.Len(), err)
	}
	_, err = tenant.ParseFile(strings.NewReader("acme-key-0123456789=acme\nbroken\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("ParseFile with a bad line = %v; want an error naming line 2", err)
	}
	other, _ := tenant.Parse("acme-key-0123456789=globex")
	if _, err := k.Merge(other); err == nil {
		t.Errorf("Merge with a repeated key succeeded; want an error")
	}
}

// TestLoad: keys from AGENTD_API_KEYS and the file, together; a missing
// file is an error.
func TestLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(file, []byte("# ops\nops-key-0123456789ab=ops:admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := tenant.Load("acme-key-0123456789=acme", file)
	if err != nil || keys.Len() != 2 {
		t.Fatalf("Load = %v keys, %v; want 2 from the variable and the file", keys, err)
	}
	if p, ok := keys.Lookup("ops-key-0123456789ab"); !ok || p.Role != "admin" {
		t.Errorf("file key = %+v, %v", p, ok)
	}
	if _, err := tenant.Load("", filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("a missing keys file was accepted")
	}
}
