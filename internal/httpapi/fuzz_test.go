package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/probe"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
	"github.com/agentd/agentd/internal/usage"
)

const fuzzAdminKey = "acme-admin-0123456789"

// fuzzRoutes are the routes that read a body (or, for GETs, a query: the
// body is used as the query string). {id} is a session of the caller's
// tenant.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/v1/sessions"},
	{http.MethodPost, "/v1/sessions/{id}/messages"},
	{http.MethodPut, "/v1/sessions/{id}/model"},
	{http.MethodPost, "/v1/sessions/{id}/approvals/call_1"},
	{http.MethodPost, "/v1/admin/rollback"},
	{http.MethodPut, "/v1/admin/canary"},
	{http.MethodPost, "/v1/sessions/{id}/cancel"},
	{http.MethodGet, "/v1/sessions"},
	{http.MethodGet, "/v1/admin/canary/assignment"},
	{http.MethodGet, "/v1/admin/versions"},
	{http.MethodGet, "/v1/usage"},
	{http.MethodGet, "/v1/admin/usage"},
	{http.MethodGet, "/v1/admin/alerts"},
	{http.MethodGet, "/v1/admin/probes"},
}

// FuzzRequests sends arbitrary bodies and headers through the real handler
// over a real pool on bbolt and a real control plane on a configuration
// tree, both in temporary directories, with the scripted model. Whatever
// the request, the API does not panic, answers below 500, and answers in
// JSON; an error is the API's error shape with a code and a message.
//
// The fuzzed input is a route (an index of fuzzRoutes), header lines
// ("Name: value"; they replace the defaults: an admin key, X-Agentd-User:
// alice, Content-Type: application/json; an empty value removes one) and
// the body.
func FuzzRequests(f *testing.F) {
	type seed struct {
		route   uint8
		headers string
		body    string
	}
	for _, s := range []seed{
		// Version 1 is canary.json's: the first seed changes it (seeds run in order).
		{5, "If-Match: \"1\"\nX-Agentd-Reason: widen", `{"rules": {"stable": "v1", "variants": [{"name": "tight", "value": "v2", "percent": 10}]}}`},
		{0, "", `{"model": "m-beta"}`}, {0, "", ``}, {0, "X-Agentd-User: bob\nContent-Type: application/merge-patch+json", `{}`},
		{1, "", `{"content": "hello", "max_iterations": 3}`}, {1, "Accept: text/event-stream", `{"content": "stream it"}`},
		{2, "", `{"model": "m-beta"}`}, {3, "", `{"decision": "allow_once"}`},
		{4, "", `{"dimension": "rules", "variant": "tight", "reason": "errors up"}`}, {4, "", `{"to_version": 1, "reason": "back"}`},
		{6, "", ``}, {7, "", `limit=2&user=alice`}, {8, "", `tenant=acme&user=alice`}, {9, "", `before=3&limit=1`},
		// Near misses.
		{0, "", `{"model": 5}`}, {0, "", `{"modle": "m"}`}, {0, "X-Agentd-User: ", `{}`}, {0, "X-Agentd-User: a\x01b", `{}`},
		{1, "", `{"content": "hi"} {}`}, {1, "", `{"content": "  "}`}, {1, "", `{"content": "x", "max_iterations": 100000}`},
		{1, "Content-Type: text/plain", `{"content": "x"}`}, {1, "Content-Type: ;;", `{"content": "x"}`}, {1, "", `[1]`},
		{1, "", `{"content": "x"` + strings.Repeat(" ", 5000) + `}`}, {1, "Authorization: Bearer nope", `{"content": "x"}`},
		{1, "Authorization: ", `{"content": "x"}`}, {1, "Authorization: Basic " + fuzzAdminKey, `{"content": "x"}`},
		{2, "", `{"model": "gpt-9"}`}, {3, "", `{"decision": "maybe"}`}, {4, "", `{"dimension": "rulez", "variant": "x", "reason": "r"}`},
		{4, "", `{"to_version": -1, "reason": "r"}`}, {4, "", `{"to_version": 99, "reason": "r"}`}, {4, "", `{"reason": ""}`},
		{5, "", `{}`}, {5, "If-Match: W/\"x\"\nX-Agentd-Reason: r", `{}`}, {5, "If-Match: \"1\"", `{}`},
		{5, "If-Match: 1\nX-Agentd-Reason: r", `{"model": {"stable": "gpt-9"}}`}, {5, "If-Match: 1\nX-Agentd-Reason: r", `{"rules":`},
		{7, "", `limit=0&cursor=%zz`}, {8, "", `tenant=../x`}, {9, "", `limit=1001`},
		{10, "", ``}, {10, "X-Agentd-User: bob", ``}, {11, "", `tenant=acme`}, {11, "", `tenant=../etc`}, {11, "", ``},
		{12, "", `status=firing&tenant=acme`}, {12, "", `status=maybe`}, {13, "", `runs=3`}, {13, "", `runs=-1`}, {13, "", `runs=1e9`},
	} {
		f.Add(s.route, s.headers, []byte(s.body))
	}

	dir := f.TempDir()
	tree, data := filepath.Join(dir, "tree"), filepath.Join(dir, "data")
	rules, err := os.ReadFile(filepath.Join("..", "..", ".agentao", "permissions", "v1.json"))
	if err != nil {
		f.Fatal(err)
	}
	for name, content := range map[string]string{
		"AGENTAO.md":                   "# Project rules\n",
		"skills/default/a/SKILL.md":    "---\nname: a\ndescription: skill a\n---\n# A\n",
		".agentao/permissions/v1.json": string(rules),
		".agentao/permissions/v2.json": `{"rules": [{"tool": "run_shell_command", "action": "deny"}]}`,
		".agentao/sandbox.json":        `{"enabled": false}`, // no preflight: no helper binary here
		".agentao/canary.json":         `{"rules": {"stable": "v1", "variants": [{"name": "tight", "value": "v2", "percent": 50}]}}`,
	} {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.MkdirAll(data, 0o755); err != nil {
		f.Fatal(err)
	}
	db, err := boltdb.Open(filepath.Join(data, "agentd.db"), boltdb.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	ctl, err := control.New(context.Background(), control.Config{
		ConfigDir: tree, DataDir: data, Model: "m-stable", Models: []string{"m-stable", "m-beta"},
		Versions: db.Versions(), Self: filepath.Join(dir, "no-helper"),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(ctl.Close)
	model := agenttest.NewModel()
	model.Default = func(agent.Request) agenttest.Step { return agenttest.Reply("done") }
	meter, err := usage.New(usage.Config{Store: db.Usage(), Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { meter.Close() })
	al, err := alerts.New(context.Background(), alerts.Config{Source: meter, Store: db.Alerts(), Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { al.Close() })
	pool, err := session.NewPool(db.Sessions(), agent.New(model, agent.Config{}),
		session.Hooks{Assigner: ctl, Toolbox: ctl, Authorizer: ctl, Meter: meter},
		session.Config{Dir: filepath.Join(data, "workspaces"), Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { pool.Close() })
	prober, err := probe.New(context.Background(), probe.Options{Pool: pool, Store: db.Probes(), Cohorts: ctl.ProbeCohorts,
		Config: func() probe.Config { return probe.Config{} }, Logger: zap.NewNop()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { prober.Close() })
	keys, err := tenant.Parse(fuzzAdminKey + "=acme:admin," + acmeKey + "=acme")
	if err != nil {
		f.Fatal(err)
	}
	api := httpapi.New(pool, keys, httpapi.Config{MaxBodyBytes: 4096, Control: ctl, Logger: zap.NewNop(),
		Usage: meter, Alerts: al, Probes: prober})
	sess, err := pool.Create(context.Background(), "acme", "alice", "")
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, route uint8, headers string, body []byte) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		target := strings.ReplaceAll(rt.path, "{id}", string(sess.ID))
		var req *http.Request
		if rt.method == http.MethodGet {
			req = httptest.NewRequestWithContext(t.Context(), rt.method, target, nil)
			req.URL.RawQuery = string(body)
		} else {
			req = httptest.NewRequestWithContext(t.Context(), rt.method, target, strings.NewReader(string(body)))
		}
		req.Header.Set("Authorization", "Bearer "+fuzzAdminKey)
		req.Header.Set(httpapi.UserHeader, "alice")
		req.Header.Set("Content-Type", "application/json")
		for _, line := range strings.Split(headers, "\n") {
			name, value, ok := strings.Cut(line, ":")
			if !ok || strings.TrimSpace(name) == "" {
				continue
			}
			if value = strings.TrimSpace(value); value == "" {
				req.Header.Del(name)
			} else {
				req.Header.Set(name, value)
			}
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if strings.HasSuffix(rt.path, "/messages") {
			// Keep the session small: every turn would add to it.
			if _, err := pool.Clear(context.WithoutCancel(t.Context()), "acme", sess.ID); err != nil {
				t.Fatal(err)
			}
		}

		res := rec.Result()
		t.Logf("%s %s = %d %.200s", rt.method, target, res.StatusCode, rec.Body)
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s = %d %s; want below 500", rt.method, target, res.StatusCode, rec.Body)
		}
		ct := res.Header.Get("Content-Type")
		if ct == "text/event-stream" {
			if !strings.Contains(rec.Body.String(), "event: done\n") && !strings.Contains(rec.Body.String(), "event: error\n") {
				t.Fatalf("event stream without a done or error event:\n%s", rec.Body)
			}
			return
		}
		if res.StatusCode == http.StatusNoContent {
			return
		}
		if ct != "application/json" || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s = %d, Content-Type %q, body %q; want JSON", rt.method, target, res.StatusCode, ct, rec.Body)
		}
		if res.StatusCode >= 400 {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s = %d %s; want {\"error\": {\"code\", \"message\"}}", rt.method, target, res.StatusCode, rec.Body)
			}
		}
	})
}
