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

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/probe"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
)

const probeAdminKey = "ops-admin-key-0123456"

// probeFixture is the API over a real control plane, pool and prober, with
// probes.json served through control.AddFile as agentd serves it.
type probeFixture struct {
	*fixture
	tree string
	ctl  *control.Plane
}

func newProbeFixture(t *testing.T) *probeFixture {
	t.Helper()
	tree, data := t.TempDir(), t.TempDir()
	for name, content := range map[string]string{
		"AGENTAO.md":                   "# rules\n",
		".agentao/permissions/v1.json": `{"mode": "full-access", "rules": []}`,
		".agentao/canary.json":         `{"model": {"stable": "m-stable", "variants": [{"name": "beta", "value": "m-beta", "percent": 10}]}}`,
	} {
		writeTreeFile(t, tree, name, content)
	}
	db, err := boltdb.Open(filepath.Join(data, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctl, err := control.New(context.Background(), control.Config{
		ConfigDir: tree, DataDir: data, Model: "m-stable", Models: []string{"m-stable", "m-beta"},
		Versions: db.Versions(), Self: filepath.Join(data, "no-helper"), Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Close)
	probes, err := control.AddFile(ctl, probe.File, probe.Parse)
	if err != nil {
		t.Fatal(err)
	}
	model := agenttest.NewModel()
	model.Default = func(req agent.Request) agenttest.Step { return agenttest.Reply("Paris, says " + req.Model) }
	pool, err := session.NewPool(db.Sessions(), agent.New(model, agent.Config{}),
		session.Hooks{Assigner: ctl, Toolbox: ctl, Authorizer: ctl},
		session.Config{Dir: filepath.Join(data, "workspaces"), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	prober, err := probe.New(t.Context(), probe.Options{
		Pool: pool, Store: db.Probes(), Config: probes.Get, Cohorts: ctl.ProbeCohorts, Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prober.Close() })
	keys, err := tenant.Parse(probeAdminKey + "=ops:admin," + acmeKey + "=acme")
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(pool, keys, httpapi.Config{Control: ctl, Probes: prober, Logger: zaptest.NewLogger(t)})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &probeFixture{fixture: &fixture{t: t, srv: srv, api: api, pool: pool, model: model}, tree: tree, ctl: ctl}
}

func writeTreeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeProbes writes probes.json and reloads the tree, as the next poll does.
func (f *probeFixture) writeProbes(content string) {
	writeTreeFile(f.t, f.tree, probe.File, content)
	f.ctl.Refresh(context.Background(), "test", true)
}

type probesBody struct {
	Config  probe.Config `json:"config"`
	Leader  bool         `json:"leader"`
	NextRun *string      `json:"next_run"`
	Runs    []probe.Run  `json:"runs"`
}

func decodeAs[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.raw), &v); err != nil {
		t.Fatalf("decode %s: %v", r.raw, err)
	}
	return v
}

func TestProbeRoutes(t *testing.T) {
	f := newProbeFixture(t)

	for _, tc := range []struct {
		method, path, key string
		status            int
		code              string
	}{
		{"GET", "/v1/admin/probes", "", http.StatusUnauthorized, httpapi.CodeUnauthorized},
		{"GET", "/v1/admin/probes", acmeKey, http.StatusForbidden, httpapi.CodeForbidden},
		{"POST", "/v1/admin/probes/run", acmeKey, http.StatusForbidden, httpapi.CodeForbidden},
		{"POST", "/v1/admin/probes/run", probeAdminKey, http.StatusConflict, httpapi.CodeNoProbes}, // no probes.json yet
		{"GET", "/v1/admin/probes?runs=0", probeAdminKey, http.StatusBadRequest, httpapi.CodeInvalidRequest},
		{"GET", "/v1/admin/probes?runs=49", probeAdminKey, http.StatusBadRequest, httpapi.CodeInvalidRequest},
		{"GET", "/v1/admin/probes?runs=x", probeAdminKey, http.StatusBadRequest, httpapi.CodeInvalidRequest},
		{"DELETE", "/v1/admin/probes", probeAdminKey, http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed},
	} {
		if r := f.do(tc.method, tc.path, tc.key, ""); r.status != tc.status || errCode(r) != tc.code {
			t.Errorf("%s %s (key %q) = %d %s; want %d %s", tc.method, tc.path, tc.key, r.status, r.raw, tc.status, tc.code)
		}
	}

	// No probes.json: the defaults, no prompts, no run, nothing scheduled.
	r := f.do("GET", "/v1/admin/probes", probeAdminKey, "")
	got := decodeAs[probesBody](t, r)
	if r.status != http.StatusOK || len(got.Runs) != 0 || got.Config.Every.D().String() != "1h0m0s" || !got.Leader || got.NextRun != nil ||
		!strings.Contains(r.raw, `"prompts":[]`) || !strings.Contains(r.raw, `"runs":[]`) || !strings.Contains(r.raw, `"every":"1h0m0s"`) {
		t.Fatalf("GET without probes.json = %d %s", r.status, r.raw)
	}

	f.writeProbes(`{"every": "2h", "prompts": [{"name": "capital", "content": "What is the capital of France?"}]}`)
	r = f.do("POST", "/v1/admin/probes/run", probeAdminKey, "")
	if r.status != http.StatusOK {
		t.Fatalf("POST run = %d %s", r.status, r.raw)
	}
	run := decodeAs[probe.Run](t, r)
	if run.ID != 1 || run.Trigger != "manual" || len(run.Results) != 2 || run.Changed != 1 {
		t.Fatalf("run = %+v; want run 1, manual, 2 results, 1 changed", run)
	}
	stable, beta := run.Results[0], run.Results[1]
	if stable.Cohort() != "stable" || stable.Output != "Paris, says m-stable" || stable.Outcome.Status != agent.StatusOK {
		t.Errorf("stable result %+v", stable)
	}
	if beta.Cohort() != "model/beta" || beta.Output != "Paris, says m-beta" || beta.VsStable == nil || !beta.VsStable.Changed ||
		!strings.Contains(beta.VsStable.Text, "-Paris, says m-stable\n+Paris, says m-beta\n") {
		t.Errorf("beta result %+v (vs stable %+v)", beta, beta.VsStable)
	}
	if !strings.Contains(r.raw, `"vs_stable":{"changed":true,"diff":"--- capital stable\n+++ capital model/beta\n`) {
		t.Errorf("the run's JSON lacks the diff: %s", r.raw)
	}

	// A second run: nothing changed against the first.
	if r := f.do("POST", "/v1/admin/probes/run", probeAdminKey, ""); r.status != http.StatusOK {
		t.Fatalf("second POST run = %d %s", r.status, r.raw)
	}
	r = f.do("GET", "/v1/admin/probes", probeAdminKey, "")
	got = decodeAs[probesBody](t, r)
	if len(got.Runs) != 1 || got.Runs[0].ID != 2 || got.Config.Every.D().String() != "2h0m0s" || len(got.Config.Prompts) != 1 || got.NextRun == nil {
		t.Fatalf("GET = %s", r.raw)
	}
	if b := got.Runs[0].Results[1]; b.VsPrevious == nil || b.VsPrevious.Changed || b.VsPrevious.Against != 1 {
		t.Errorf("run 2 beta vs previous = %+v; want unchanged against run 1", b.VsPrevious)
	}
	got = decodeAs[probesBody](t, f.do("GET", "/v1/admin/probes?runs=48", probeAdminKey, ""))
	if len(got.Runs) != 2 || got.Runs[0].ID != 2 || got.Runs[1].ID != 1 {
		t.Errorf("?runs=48 gave %d runs; want 2, newest first", len(got.Runs))
	}

	// An invalid edit is refused and the served probes.json stays.
	f.writeProbes(`{"every": "10s", "prompts": []}`)
	if why := f.ctl.Refused()["probes.json"]; !strings.Contains(why, "every: 10s is too often") {
		t.Errorf("refused probes.json: %q", why)
	}
	got = decodeAs[probesBody](t, f.do("GET", "/v1/admin/probes", probeAdminKey, ""))
	if len(got.Config.Prompts) != 1 {
		t.Errorf("after an invalid edit the served prompts are %+v; want the last good one", got.Config.Prompts)
	}

	// The probe's sessions belong to no tenant a key can name.
	sums, _, err := f.pool.List(t.Context(), session.ProbeTenant, session.ListQuery{})
	if err != nil || len(sums) != 0 {
		t.Errorf("probe sessions left: %v %v", sums, err)
	}
}

func TestProbeRoutesWithoutAProber(t *testing.T) {
	f := newProbeFixture(t)
	api := httpapi.New(f.pool, mustKeys(t), httpapi.Config{Control: f.ctl, Logger: zaptest.NewLogger(t)})
	srv := httptest.NewServer(api)
	defer srv.Close()
	f.srv = srv
	if r := f.do("GET", "/v1/admin/probes", probeAdminKey, ""); r.status != http.StatusServiceUnavailable {
		t.Errorf("GET without a prober = %d %s; want 503", r.status, r.raw)
	}
}

func mustKeys(t *testing.T) *tenant.Keys {
	t.Helper()
	keys, err := tenant.Parse(probeAdminKey + "=ops:admin," + acmeKey + "=acme")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
