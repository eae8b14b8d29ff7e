package alerts_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/control"
)

// TestRulesEdit serves alerts.json through the control plane as agentd
// does: an edit applies at the next poll and evaluation, an invalid edit
// keeps the last good rules (and is a refused part), a threshold of 0
// resolves what fired, and no file is the defaults.
func TestRulesEdit(t *testing.T) {
	tree, data := t.TempDir(), t.TempDir()
	for name, content := range map[string]string{
		"AGENTAO.md":                   "# Project rules\n",
		"skills/default/a/SKILL.md":    "---\nname: a\ndescription: skill a\n---\n# A\n",
		".agentao/permissions/v1.json": `{"mode": "full-access", "rules": []}`,
		".agentao/sandbox.json":        `{"enabled": false}`,
		".agentao/canary.json":         `{}`,
		".agentao/alerts.json":         `{"session_tokens": 50000}`,
	} {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := boltdb.Open(filepath.Join(data, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := control.New(context.Background(), control.Config{
		ConfigDir: tree, DataDir: data, Model: "m", Models: []string{"m"}, Versions: db.Versions(),
		Self: filepath.Join(data, "no-helper"), Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	f, err := control.AddFile(p, ".agentao/alerts.json", alerts.Parse)
	if err != nil {
		t.Fatal(err)
	}

	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, func(c *alerts.Config) { c.Rules = f.Get })
	e.src.call(start, "acme", "sess_1", 30000)
	path := filepath.Join(tree, ".agentao/alerts.json")
	steps := []struct {
		name      string
		content   string // "-" removes the file
		threshold float64
		firing    bool
		refused   bool
	}{
		{"50000: not over", "", 0, false, false},
		{"lowered to 20000: fires", `{"session_tokens": 20000}`, 20000, true, false},
		{"an invalid edit keeps 20000", `{"session_tokens": -1}`, 20000, true, true},
		{"a typo keeps 20000 too", `{"sesion_tokens": 10}`, 20000, true, true},
		{"raised to 25000: still over, threshold updated", `{"session_tokens": 25000, "window": "5m"}`, 25000, true, false},
		{"0 turns it off: resolved", `{"session_tokens": 0}`, 0, false, false},
		{"on again at 10000: fires anew", `{"session_tokens": 10000}`, 10000, true, false},
		{"no file: the defaults (50000)", "-", 0, false, false},
	}
	for _, st := range steps {
		switch st.content {
		case "":
		case "-":
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(path, []byte(st.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		p.Refresh(context.Background(), "test", true)
		e.clock.add(time.Minute)
		e.src.call(e.clock.now(), "acme", "sess_1", 0) // the session is still active
		e.eval()
		got := e.firing(alerts.SessionTokensHigh)
		a, firing := got[alerts.Scope{Tenant: "acme", Session: "sess_1"}]
		if firing != st.firing || (firing && a.Threshold != st.threshold) {
			t.Errorf("%s: firing %v; want firing %v with threshold %v", st.name, got, st.firing, st.threshold)
		}
		if _, refused := p.Refused()["alerts.json"]; refused != st.refused {
			t.Errorf("%s: refused %v; want %v", st.name, p.Refused(), st.refused)
		}
	}
	if n := e.lines("alert firing: AgentdSessionTokensHigh"); n != 2 {
		t.Errorf("%d firing lines; want 2 (at 20000, and again at 10000)", n)
	}
	if n := e.lines("alert resolved: AgentdSessionTokensHigh"); n != 2 {
		t.Errorf("%d resolved lines; want 2 (turned off, then the defaults)", n)
	}
}
