package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
	"github.com/agentd/agentd/internal/tenant"
	"github.com/agentd/agentd/internal/usage"
)

const adminKey = "acme-admin-0123456789"

// sessionSource is an alerts.Source with only sessions' use in it.
type sessionSource struct {
	mu       sync.Mutex
	sessions []usage.SessionUse
}

func (s *sessionSource) Day(usage.Scope, time.Time) usage.Counts    { return usage.Counts{} }
func (s *sessionSource) Window(usage.Scope, time.Time) usage.Counts { return usage.Counts{} }
func (s *sessionSource) Active(time.Time) []usage.Scope             { return nil }
func (s *sessionSource) set(su ...usage.SessionUse)                 { s.mu.Lock(); s.sessions = su; s.mu.Unlock() }
func (s *sessionSource) Sessions(since time.Time) (out []usage.SessionUse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// noControl stands for the control plane, which the admin routes require
// but /v1/admin/alerts does not use.
type noControl struct{ httpapi.Control }

// alertsServer serves the API with real alerts (a real store, a fake
// clock) and an admin key of acme.
func alertsServer(t *testing.T, al httpapi.AlertList) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pool, err := session.NewPool(db.Sessions(), agent.New(agenttest.NewModel(), agent.Config{}), (&sessiontest.Hooks{}).Pool(),
		session.Config{Dir: filepath.Join(dir, "ws"), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	keys, err := tenant.Parse(adminKey + "=acme:admin," + acmeKey + "=acme")
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Control: noControl{}, Logger: zaptest.NewLogger(t)}
	if al != nil {
		cfg.Alerts = al
	}
	srv := httptest.NewServer(httpapi.New(pool, keys, cfg))
	t.Cleanup(srv.Close)
	return srv
}

func getJSON(t *testing.T, url, key string) (int, map[string]any, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(data, &body)
	return resp.StatusCode, body, string(data)
}

func TestAdminAlerts(t *testing.T) {
	dir := t.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "alerts.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	src := &sessionSource{}
	al, err := alerts.New(context.Background(), alerts.Config{Source: src, Store: db.Alerts(), Now: clock, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	// Both fire at t0; an hour and a minute later acme's session has been
	// quiet for 61 minutes (resolved) and globex's is still going.
	src.set(usage.SessionUse{Tenant: "acme", Session: "s_a", Tokens: 60000, Last: t0},
		usage.SessionUse{Tenant: "globex", Session: "s_g", Tokens: 70000, Last: t0})
	if err := al.Evaluate(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = t0.Add(61 * time.Minute)
	mu.Unlock()
	src.set(usage.SessionUse{Tenant: "acme", Session: "s_a", Tokens: 60000, Last: t0},
		usage.SessionUse{Tenant: "globex", Session: "s_g", Tokens: 70001, Last: t0.Add(time.Hour)})
	if err := al.Evaluate(t.Context()); err != nil {
		t.Fatal(err)
	}

	srv := alertsServer(t, al)
	cases := []struct {
		name     string
		query    string
		key      string
		status   int
		code     string
		sessions []string // the alerts listed, in order, by session
	}{
		{"no key", "", "", 401, "unauthorized", nil},
		{"a user key", "", acmeKey, 403, "forbidden", nil},
		{"admin: firing first, then resolved", "", adminKey, 200, "", []string{"s_g", "s_a"}},
		{"only firing", "?status=firing", adminKey, 200, "", []string{"s_g"}},
		{"only resolved", "?status=resolved", adminKey, 200, "", []string{"s_a"}},
		{"one tenant", "?tenant=acme", adminKey, 200, "", []string{"s_a"}},
		{"a tenant without alerts", "?tenant=initech", adminKey, 200, "", []string{}},
		{"a bad status", "?status=open", adminKey, 400, "invalid_request", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body, raw := getJSON(t, srv.URL+"/v1/admin/alerts"+tc.query, tc.key)
			if status != tc.status {
				t.Fatalf("status %d %s; want %d", status, raw, tc.status)
			}
			if tc.code != "" {
				e, _ := body["error"].(map[string]any)
				if e["code"] != tc.code || e["message"] == "" {
					t.Fatalf("body %s; want error code %s with a message", raw, tc.code)
				}
				return
			}
			list, ok := body["alerts"].([]any)
			if !ok {
				t.Fatalf("body %s; want {\"alerts\": [...]}", raw)
			}
			var got []string
			for _, x := range list {
				a := x.(map[string]any)
				scope := a["scope"].(map[string]any)
				got = append(got, scope["session"].(string))
				for _, k := range []string{"name", "severity", "value", "threshold", "since", "summary"} {
					if _, ok := a[k]; !ok {
						t.Errorf("alert %v has no %q", a, k)
					}
				}
				if _, resolved := a["resolved_at"]; resolved != (scope["session"] == "s_a") {
					t.Errorf("alert %v: resolved_at present = %v; want it only on the resolved one", a, resolved)
				}
				if a["name"] != alerts.SessionTokensHigh || a["severity"] != "P3" || a["threshold"] != 50000.0 || a["since"] != "2026-03-10T09:00:00Z" {
					t.Errorf("alert %v; want AgentdSessionTokensHigh P3, threshold 50000, since t0", a)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.sessions, ",") {
				t.Errorf("alerts for sessions %v; want %v", got, tc.sessions)
			}
		})
	}
}

func TestAdminAlertsNotRunning(t *testing.T) {
	srv := alertsServer(t, nil)
	status, body, raw := getJSON(t, srv.URL+"/v1/admin/alerts", adminKey)
	if e, _ := body["error"].(map[string]any); status != 404 || e["code"] != "not_found" {
		t.Errorf("without alerts: %d %s; want 404 not_found", status, raw)
	}
}
