package rollback_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
)

var known = canary.Known{Defaults: [5]string{"gpt-4o", "default", "v1", "workspace-write", "AGENTAO.md"}}

// env is a history over a real store and a canary.json file on disk.
type env struct {
	t      *testing.T
	dir    string
	db     *boltdb.DB
	router *canary.Router
	h      *rollback.History
}

func newEnv(t *testing.T, file string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	if file != "" {
		e.write(file)
	}
	e.open()
	return e
}

func (e *env) write(doc string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "canary.json"), []byte(doc), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) open() {
	e.t.Helper()
	db, err := boltdb.Open(filepath.Join(e.dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.db = db
	e.t.Cleanup(func() { db.Close() })
	p, _ := canary.Compile(canary.Document{}, known)
	e.router = canary.NewRouter(p, 0)
	e.h, err = rollback.Open(context.Background(), rollback.Config{
		Store: db.Versions(), Router: e.router, Known: func() canary.Known { return known },
		ReadFile: func() ([]byte, error) { return os.ReadFile(filepath.Join(e.dir, "canary.json")) },
		Hashes: func(p *canary.Policy) map[string]string {
			return map[string]string{"rules/" + p.Stable(canary.Rules): "sha256:0011223344556677"}
		},
		Logger: zaptest.NewLogger(e.t),
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) restart() {
	e.db.Close()
	e.open()
}

func (e *env) model(user string) canary.Pick { return e.router.Assign("acme", user).Get(canary.Model) }

const doc1 = `{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"beta","value":"gpt-5","users":["alice"]},{"name":"canary","value":"gpt-5","percent":100,"tenants":["acme"]}]}}`

func TestStartAndRestart(t *testing.T) {
	e := newEnv(t, "")
	_, v := e.h.Current()
	if v.N != 1 || v.Actor != rollback.ActorFile || e.model("bob").Value != "gpt-4o" {
		t.Fatalf("without a file: version %+v, bob on %+v; want version 1 of the defaults", v, e.model("bob"))
	}
	e.write(doc1)
	e.restart()
	_, v = e.h.Current()
	if v.N != 2 || v.Kind != "file" || e.model("bob").Variant != "canary" {
		t.Fatalf("after a file change while down: version %+v, bob %+v; want version 2 from the file", v, e.model("bob"))
	}
	e.restart()
	if _, v = e.h.Current(); v.N != 2 {
		t.Errorf("a restart with the same file made version %d; want 2 kept", v.N)
	}
	if st := e.h.Status(); st.DiffersFromFile {
		t.Errorf("status = %+v; want in sync with the file", st)
	}
}

func TestApply(t *testing.T) {
	e := newEnv(t, doc1)
	_, v1 := e.h.Current()
	ctx := context.Background()
	tests := []struct {
		name    string
		doc     string
		ifMatch int
		reason  string
		want    error
	}{
		{"stale If-Match", doc1, v1.N + 5, "x", rollback.ErrConflict},
		{"no reason", doc1, v1.N, "", rollback.ErrReasonRequired},
		{"invalid", `{"model":{"stable":"gpt-9"}}`, v1.N, "try", rollback.ErrInvalid},
		{"malformed", `{"model":`, v1.N, "try", rollback.ErrInvalid},
	}
	for _, tc := range tests {
		if _, err := e.h.Apply(ctx, []byte(tc.doc), tc.ifMatch, "ops", tc.reason); !errors.Is(err, tc.want) {
			t.Errorf("%s: Apply = %v; want %v", tc.name, err, tc.want)
		}
	}
	if _, v := e.h.Current(); v.N != v1.N || e.model("bob").Variant != "canary" {
		t.Fatalf("rejected applies changed the configuration: version %d", v.N)
	}
	doc2 := strings.Replace(doc1, `"percent":100`, `"percent":0.5`, 1)
	v2, err := e.h.Apply(ctx, []byte(doc2), v1.N, "ops", "slow the canary down")
	if err != nil {
		t.Fatal(err)
	}
	if v2.N != v1.N+1 || v2.Actor != "ops" || v2.Reason != "slow the canary down" {
		t.Errorf("version = %+v", v2)
	}
	if d := strings.Join(v2.Diff, "\n"); !strings.Contains(d, "model.variants[canary].percent: 100 → 0.5") {
		t.Errorf("diff = %q; want the percent change", d)
	}
	if _, v := e.router.Current(); v != v2.N {
		t.Errorf("router serves version %d; want %d", v, v2.N)
	}
	if st := e.h.Status(); !st.DiffersFromFile {
		t.Errorf("after an API change the status must say the running config differs from the file")
	}
	// A file change afterwards is a new version as usual.
	e.write(strings.Replace(doc1, `"alice"`, `"alice","carol"`, 1))
	v3, changed, err := e.h.Reload(ctx, "watch")
	if err != nil || !changed || v3.Kind != "file" || e.model("carol").Variant != "beta" || e.h.Status().DiffersFromFile {
		t.Errorf("Reload = %+v, %v, %v; want a file version serving carol as beta", v3, changed, err)
	}
	// An invalid file keeps the old configuration and says why.
	e.write(`{"model":{"stable":"gpt-9"}}`)
	if _, changed, err := e.h.Reload(ctx, "watch"); err == nil || changed {
		t.Errorf("Reload of an invalid file = %v, %v; want an error and no change", changed, err)
	}
	if st := e.h.Status(); st.FileError == "" || !st.DiffersFromFile || st.Version.N != v3.N {
		t.Errorf("status = %+v; want the file error and version %d still served", st, v3.N)
	}
}

func TestHaltAndRevert(t *testing.T) {
	e := newEnv(t, doc1)
	ctx := context.Background()
	if _, _, err := e.h.Halt(ctx, canary.Model, "nope", "ops", "x", nil); !errors.Is(err, rollback.ErrUnknownVariant) {
		t.Errorf("Halt of an unknown variant = %v", err)
	}
	if _, _, err := e.h.Halt(ctx, canary.Model, "canary", "ops", "", nil); !errors.Is(err, rollback.ErrReasonRequired) {
		t.Errorf("Halt without a reason = %v", err)
	}
	v, changed, err := e.h.Halt(ctx, canary.Model, "canary", "ops", "answers got worse", nil)
	if err != nil || !changed || v.Kind != "halt" {
		t.Fatalf("Halt = %+v, %v, %v", v, changed, err)
	}
	if got := e.model("bob"); got.Value != "gpt-4o" || got.Variant != "" {
		t.Errorf("bob after the halt = %+v; want stable", got)
	}
	if got := e.model("alice"); got.Variant != "beta" {
		t.Errorf("alice after halting canary = %+v; beta must be untouched", got)
	}
	if d := strings.Join(v.Diff, ";"); !strings.Contains(d, `halted: + "model/canary"`) {
		t.Errorf("diff = %q", d)
	}
	if again, changed, _ := e.h.Halt(ctx, canary.Model, "canary", "ops", "again", nil); changed || again.N != v.N {
		t.Errorf("halting twice made version %d", again.N)
	}
	// Halts outlive a restart, and a file change that leaves the variant
	// as it was.
	e.restart()
	e.write(strings.Replace(doc1, `"alice"`, `"alice","dave"`, 1))
	if _, _, err := e.h.Reload(ctx, "watch"); err != nil {
		t.Fatal(err)
	}
	if got := e.model("bob"); got.Variant != "" {
		t.Errorf("bob after restart and an unrelated file change = %+v; want still stable", got)
	}
	// Changing the halted variant in the file re-enables it.
	e.write(strings.Replace(doc1, `"percent":100`, `"percent":50`, 1))
	if _, _, err := e.h.Reload(ctx, "watch"); err != nil {
		t.Fatal(err)
	}
	p, _ := e.h.Current()
	if p.Halted(canary.Model, "canary") {
		t.Errorf("a file change to the halted variant did not re-enable it")
	}
	// Revert to the halted version.
	rv, err := e.h.Revert(ctx, v.N, "ops", "back to the halt")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := e.h.Current(); !p.Halted(canary.Model, "canary") || rv.Kind != "revert" {
		t.Errorf("revert to version %d did not bring the halt back: %+v", v.N, rv)
	}
	if _, err := e.h.Revert(ctx, 999, "ops", "x"); !errors.Is(err, rollback.ErrNotFound) {
		t.Errorf("Revert to a missing version = %v", err)
	}
	list, err := e.h.List(ctx, 0, 100)
	if err != nil || len(list) != rv.N || list[0].N != rv.N || list[len(list)-1].N != 1 {
		t.Errorf("List = %d versions, %v; want all %d newest first", len(list), err, rv.N)
	}
	page, _ := e.h.List(ctx, 3, 10)
	if len(page) != 2 || page[0].N != 2 {
		t.Errorf("List before 3 = %+v", page)
	}
}

// guardEnv runs turns of a canary variant and its control through a guard.
func guardEnv(t *testing.T, guard string) (*env, *rollback.Guard) {
	e := newEnv(t, `{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"canary","value":"gpt-5","percent":10}]},"guard":`+guard+`}`)
	g := rollback.NewGuard(e.h, zaptest.NewLogger(t))
	t.Cleanup(g.Close)
	return e, g
}

func turn(variant string, tools, fails, llm, e5, tokens int) (rollback.Sample, [5]string) {
	s := rollback.Sample{ToolCalls: tools, ToolFailures: fails, LLMCalls: llm, LLM5xx: e5, Tokens: tokens}
	s.Variants[canary.Model] = variant
	values := [5]string{"gpt-4o", "default", "v1", "workspace-write", "AGENTAO.md"}
	if variant != "" {
		values[canary.Model] = "gpt-5"
	}
	return s, values
}

func waitHalted(t *testing.T, e *env) rollback.Version {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p, v := e.h.Current(); p.Halted(canary.Model, "canary") {
			return v
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the guard did not halt the variant")
	return rollback.Version{}
}

func TestGuardHalts(t *testing.T) {
	tests := []struct {
		name      string
		variant   func(i int) (tools, fails, llm, e5, tokens int)
		wantCause string
	}{
		{"LLM 5xx", func(i int) (int, int, int, int, int) { return 0, 0, 1, 1, 0 }, "LLM 5xx rate 100.0%"},
		{"tool failures", func(i int) (int, int, int, int, int) { return 4, i % 2, 2, 0, 900 }, "tool failure rate"},
		{"tokens", func(i int) (int, int, int, int, int) { return 1, 0, 2, 0, 2000 }, "× the stable control's 1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, g := guardEnv(t, `{"min_samples":20,"window":50}`)
			for range 30 {
				g.Observe(turn("", 1, 0, 2, 0, 1000))
			}
			var observed time.Time
			for i := range 20 {
				tools, fails, llm, e5, tokens := tc.variant(i)
				if i == 19 {
					observed = time.Now()
				}
				g.Observe(turn("canary", tools, fails, llm, e5, tokens))
				if i < 19 {
					if p, _ := e.h.Current(); p.Halted(canary.Model, "canary") {
						t.Fatalf("halted after %d turns; min_samples is 20", i+1)
					}
				}
			}
			v := waitHalted(t, e)
			t.Logf("breach to halt (served): %v", time.Since(observed))
			if v.Actor != rollback.ActorAuto || !strings.Contains(v.Reason, tc.wantCause) || !strings.Contains(v.Reason, "last 20 turns") {
				t.Errorf("version = actor %q reason %q; want auto, citing %q and the window", v.Actor, v.Reason, tc.wantCause)
			}
			if v.Details["variant"] != "canary" || v.Details["window_turns"] == nil {
				t.Errorf("details = %v; want the numbers", v.Details)
			}
			if got := e.model("bob"); got.Variant != "" {
				t.Errorf("after the halt bob = %+v; want stable", got)
			}
		})
	}
}

// TestGuardNoFalseRollback: a variant that stays under the thresholds is
// never halted across 1,000 healthy turns with realistic noise.
func TestGuardNoFalseRollback(t *testing.T) {
	e, g := guardEnv(t, `{"min_samples":50}`)
	for i := range 1000 {
		g.Observe(turn("", 3, boolInt(i%40 == 0), 2, boolInt(i%60 == 0), 1000+i%200))
		// 3 tool calls a turn, one in 45 fails (~2.2% of calls); LLM 5xx
		// on one call in 100 (~1%); tokens 1.0-1.3x the control.
		g.Observe(turn("canary", 3, boolInt(i%15 == 0), 2, boolInt(i%50 == 0), 1100+(i*37)%300))
	}
	time.Sleep(50 * time.Millisecond) // let any (wrong) halt land
	if p, v := e.h.Current(); p.Halted(canary.Model, "canary") {
		t.Fatalf("a healthy variant was halted: %s", v.Reason)
	}
	stats := g.Stats()
	if len(stats) == 0 {
		t.Errorf("no guard stats")
	}
}

func TestGuardDisabled(t *testing.T) {
	e, g := guardEnv(t, `{"min_samples":5,"window":10,"disabled":true}`)
	for range 20 {
		g.Observe(turn("canary", 0, 0, 1, 1, 0))
	}
	time.Sleep(20 * time.Millisecond)
	if p, _ := e.h.Current(); p.Halted(canary.Model, "canary") {
		t.Errorf("a disabled guard halted a variant")
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestConcurrentChangesSerialise(t *testing.T) {
	e := newEnv(t, doc1)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, v := e.h.Current()
			_, err := e.h.Apply(context.Background(), []byte(doc1), v.N, "ops", fmt.Sprint("change ", i))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, rollback.ErrConflict):
			t.Errorf("Apply = %v", err)
		}
	}
	if _, v := e.h.Current(); v.N != 1+ok {
		t.Errorf("version %d after %d successful applies", v.N, ok)
	}
}

// TestRevertedBy checks which versions a revert takes out of service,
// through chains of reverts and across a restart (the reverts are read back
// from the store).
func TestRevertedBy(t *testing.T) {
	e := newEnv(t, `{"models":["gpt-4o","gpt-5"]}`)
	ctx := context.Background()
	apply := func(doc string) int {
		t.Helper()
		_, cur := e.h.Current()
		v, err := e.h.Apply(ctx, []byte(doc), cur.N, "ops", "change")
		if err != nil {
			t.Fatal(err)
		}
		return v.N
	}
	revert := func(to int) int {
		t.Helper()
		v, err := e.h.Revert(ctx, to, "ops", "undo")
		if err != nil {
			t.Fatal(err)
		}
		return v.N
	}
	v1 := 1
	v2 := apply(`{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-5"}}`)
	v3 := apply(`{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"b","value":"gpt-5","users":["bob"]}]}}`)
	r4 := revert(v1) // takes 2 and 3 out of service
	if by, p := e.h.RevertedBy(v3); by != r4 || p.Assign("acme", "bob").Get(canary.Model).Value != "gpt-4o" {
		t.Fatalf("RevertedBy(%d) = %d; want %d giving bob gpt-4o", v3, by, r4)
	}
	v5 := apply(`{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-5"}}`)
	r6 := revert(v3) // takes 4 and 5 out: back to what 3 served
	check := func(when string) {
		t.Helper()
		tests := []struct {
			n, by int
			model string // what the reverting version gives bob
		}{
			{v1, 0, ""},
			{v2, r6, "gpt-5"}, // 2 → 4 (reverted to 1) → 6 (reverted to 3)
			{v3, r6, "gpt-5"},
			{r4, r6, "gpt-5"},
			{v5, r6, "gpt-5"},
			{r6, 0, ""},
		}
		for _, tc := range tests {
			by, p := e.h.RevertedBy(tc.n)
			if by != tc.by || (p == nil) != (tc.by == 0) {
				t.Errorf("%s: RevertedBy(%d) = %d, %v; want %d", when, tc.n, by, p, tc.by)
				continue
			}
			if p != nil && p.Assign("acme", "bob").Get(canary.Model).Value != tc.model {
				t.Errorf("%s: the policy restored for version %d gives bob %+v; want %s", when, tc.n, p.Assign("acme", "bob").Get(canary.Model), tc.model)
			}
		}
	}
	check("live")
	e.restart()
	check("after a restart")
}
