package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/control"
	"github.com/agentd/agentd/internal/sandbox"
	"github.com/agentd/agentd/internal/session"
)

// helper is the agentd binary, built once: the sandbox helper the Plane's
// preflight and MCP servers re-execute. (The test binary could act as the
// helper, but built with -race it starts ten times slower.)
var helper string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agentd-control-test-")
	if err == nil {
		helper = filepath.Join(dir, "agentd")
		var out []byte
		if out, err = exec.Command("go", "build", "-o", helper, "../../cmd/agentd").CombinedOutput(); err != nil {
			err = fmt.Errorf("%v\n%s", err, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build agentd:", err)
		os.Exit(1)
	}
	code := m.Run()
	sandbox.ReleaseCgroups()
	sandbox.SweepCgroups() // the parents the helpers' preflights made
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeTree writes files (path → content) below dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// baseTree is a configuration tree with two of what a canary points at.
func baseTree() map[string]string {
	return map[string]string{
		"AGENTAO.md":                   "# Project rules v1\n",
		"instructions/v2.md":           "# Project rules v2\n",
		"skills/default/a/SKILL.md":    "---\nname: a\ndescription: skill a\n---\n# A\n",
		".agentao/permissions/v1.json": `{"mode": "full-access", "rules": []}`,
		".agentao/permissions/v2.json": `{"rules": [{"tool": "run_shell_command", "action": "deny"}]}`,
		".agentao/canary.json":         `{}`,
	}
}

// newPlane builds a Plane on a temporary tree and a real store.
func newPlane(t *testing.T, files map[string]string) (*control.Plane, string) {
	t.Helper()
	return newPlaneLogged(t, files, zaptest.NewLogger(t))
}

func newPlaneLogged(t *testing.T, files map[string]string, log *zap.Logger) (*control.Plane, string) {
	t.Helper()
	dir, data := t.TempDir(), t.TempDir()
	writeTree(t, dir, files)
	db, err := boltdb.Open(filepath.Join(data, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, err := control.New(context.Background(), control.Config{
		ConfigDir: dir, DataDir: data, Model: "m-stable", Models: []string{"m-stable", "m-beta"},
		Versions: db.Versions(), ShellTimeout: time.Minute, Self: helper, Logger: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, dir
}

func newSession(t *testing.T, p *control.Plane, user string) *session.Session {
	t.Helper()
	a, err := p.Assign("acme", user)
	if err != nil {
		t.Fatal(err)
	}
	return &session.Session{ID: "sess_test", Tenant: "acme", User: user, Model: a.Model, Assignment: a}
}

func shellCall(command string) (agent.Call, agent.ToolSpec) {
	args, _ := json.Marshal(map[string]string{"command": command})
	return agent.Call{ID: "c1", Name: "run_shell_command", Args: args}, agent.ToolSpec{Name: "run_shell_command", Confirm: true}
}

func TestTreeSwap(t *testing.T) {
	p, dir := newPlane(t, baseTree())
	s := newSession(t, p, "alice")
	prompt, err := p.SystemPrompt(s, s.Model)
	if err != nil || !strings.Contains(prompt, "Project rules v1") {
		t.Fatalf("SystemPrompt = %.80q, %v; want AGENTAO.md v1", prompt, err)
	}
	_, before := p.Canary()
	writeTree(t, dir, map[string]string{"AGENTAO.md": "# Project rules v1.1\n"})
	p.Refresh(context.Background(), "test", false)
	if prompt, _ := p.SystemPrompt(s, s.Model); !strings.Contains(prompt, "Project rules v1.1") {
		t.Errorf("SystemPrompt after the edit = %.80q; want the new AGENTAO.md", prompt)
	}
	// The content the configuration points at changed: a version records it.
	_, after := p.Canary()
	if after.N != before.N+1 || !strings.Contains(after.Reason, "configuration tree changed") {
		t.Errorf("version after the edit = %d %q; want %d, configuration tree changed", after.N, after.Reason, before.N+1)
	}
	// Unchanged files: nothing happens.
	p.Refresh(context.Background(), "test", false)
	if _, again := p.Canary(); again.N != after.N {
		t.Errorf("a refresh without changes made version %d", again.N)
	}
}

func TestRefusedTree(t *testing.T) {
	files := baseTree()
	files[".agentao/canary.json"] = `{"rules": {"stable": "v1", "variants": [{"name": "strict", "value": "v2", "percent": 100}]}}`
	p, dir := newPlane(t, files)
	s := newSession(t, p, "alice")
	if s.Assignment.Rules != "v2" {
		t.Fatalf("assignment rules %q; want the variant's v2", s.Assignment.Rules)
	}
	call, spec := shellCall("ls")
	if got := p.Permit(s, call, spec); got.Action != session.ActionDeny {
		t.Fatalf("Permit under v2 = %v; want deny", got.Action)
	}
	_, before := p.Canary()
	tests := []struct {
		name  string
		edit  map[string]string
		clean func()
	}{
		{"a rule version that does not parse", map[string]string{".agentao/permissions/v2.json": `{"rules": [`}, nil},
		{"a rule version the served canary needs is gone", nil, func() { os.Remove(filepath.Join(dir, ".agentao/permissions/v2.json")) }},
		{"a skill that does not parse", map[string]string{"skills/default/a/SKILL.md": "---\nname: [\n---\n"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeTree(t, dir, files) // start from the served tree
			writeTree(t, dir, tc.edit)
			if tc.clean != nil {
				tc.clean()
			}
			p.Refresh(context.Background(), "test", true)
			// The old tree keeps serving: v2 still denies, the prompt is intact.
			if got := p.Permit(s, call, spec); got.Action != session.ActionDeny {
				t.Errorf("Permit after a refused tree = %v (%s); want the old v2's deny", got.Action, got.Why)
			}
			if prompt, err := p.SystemPrompt(s, s.Model); err != nil || !strings.Contains(prompt, "skill a") {
				t.Errorf("SystemPrompt after a refused tree = %.80q, %v", prompt, err)
			}
			if _, v := p.Canary(); v.N != before.N {
				t.Errorf("a refused tree made version %d (%s); want none", v.N, v.Reason)
			}
		})
	}
}

// TestRefusedTreeIsRetried: an edit that removes a rule version the served
// canary configuration needs, together with a valid skill edit and a
// canary.json that no longer needs it, is refused at first (the served
// configuration still needs the rule version) and must be served at the next
// poll, without another edit or a SIGHUP. A refusal is said once per reason.
func TestRefusedTreeIsRetried(t *testing.T) {
	files := baseTree()
	files[".agentao/canary.json"] = `{"rules": {"stable": "v1", "variants": [{"name": "strict", "value": "v2", "percent": 100}]}}`
	core, logs := observer.New(zap.InfoLevel)
	p, dir := newPlaneLogged(t, files, zap.New(core))
	ctx := context.Background()
	refusals := func() int { return logs.FilterMessageSnippet("configuration tree on disk is invalid").Len() }
	s := newSession(t, p, "alice")

	// Step 1: the rule version goes, the canary still needs it (by API).
	if err := os.Remove(filepath.Join(dir, ".agentao/permissions/v2.json")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"skills/default/a/SKILL.md": "---\nname: a\ndescription: skill a, edited\n---\n# A\n"})
	for range 3 {
		p.Refresh(ctx, "poll", false)
	}
	if why := p.Refused()[control.PartTree]; !strings.Contains(why, "v2") || refusals() != 1 {
		t.Fatalf("after 3 polls of a refused tree: Refused = %q, %d log lines; want the reason once", p.Refused(), refusals())
	}
	// Step 2: a second problem changes the reason: logged again, once.
	writeTree(t, dir, map[string]string{".agentao/permissions/v3.json": `{"rules": [`})
	p.Refresh(ctx, "poll", false)
	p.Refresh(ctx, "poll", false)
	if refusals() != 2 {
		t.Errorf("a new reason logged %d times in all; want 2", refusals())
	}
	os.Remove(filepath.Join(dir, ".agentao/permissions/v3.json"))
	p.Refresh(ctx, "poll", false)

	// Step 3: canary.json stops needing v2 in the same poll as the tree is
	// refused; the next poll serves the tree, skill edit included.
	writeTree(t, dir, map[string]string{".agentao/canary.json": `{"rules": {"stable": "v1"}}`})
	p.Refresh(ctx, "poll", false)
	p.Refresh(ctx, "poll", false)
	if r := p.Refused(); len(r) != 0 {
		t.Errorf("Refused = %q; want nothing once the canary no longer needs v2", r)
	}
	if prompt, _ := p.SystemPrompt(s, s.Model); !strings.Contains(prompt, "skill a, edited") {
		t.Errorf("the skill edit of the refused tree is not served after the retry: %.200q", prompt)
	}
}

// TestRefusedFilesAreRetried: an invalid canary.json or mcp.json is
// named by Refused with why, retried at every poll and logged once per
// reason, and forgotten once the file is valid again (or back to what is
// served).
func TestRefusedFilesAreRetried(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	p, dir := newPlaneLogged(t, baseTree(), zap.New(core))
	ctx := context.Background()
	count := func(msg string) int { return logs.FilterMessageSnippet(msg).Len() }
	writeTree(t, dir, map[string]string{".agentao/canary.json": `{"rules": {"stable": "v9"}}`, ".agentao/mcp.json": `{"servers": {"x": {}}}`})
	for range 3 {
		p.Refresh(ctx, "poll", false)
	}
	r := p.Refused()
	if !strings.Contains(r[control.PartCanary], "v9") || r[control.PartMCP] == "" || r[control.PartTree] != "" {
		t.Fatalf("Refused = %q; want canary.json and mcp.json, with why", r)
	}
	if c, m := count("canary.json is invalid"), count("mcp.json changed but is invalid"); c != 1 || m != 1 {
		t.Errorf("after 3 polls: %d canary.json and %d mcp.json log lines; want 1 each", c, m)
	}
	writeTree(t, dir, map[string]string{".agentao/canary.json": `{}`})
	os.Remove(filepath.Join(dir, ".agentao/mcp.json")) // back to what is served: no servers
	p.Refresh(ctx, "poll", false)
	if r := p.Refused(); len(r) != 0 {
		t.Errorf("Refused after the fixes = %q; want nothing", r)
	}
}

func TestHaltAndRevert(t *testing.T) {
	files := baseTree()
	files[".agentao/canary.json"] = `{"models": ["m-stable", "m-beta"], "model": {"stable": "m-stable", "variants": [{"name": "beta", "value": "m-beta", "users": ["alice"]}]}}`
	p, _ := newPlane(t, files)
	ctx := context.Background()
	s := newSession(t, p, "alice")
	if s.Model != "m-beta" || s.Assignment.VariantOf(canary.Model) != "beta" {
		t.Fatalf("alice = %s, %v; want the beta variant", s.Model, s.Assignment.Variants)
	}
	_, v1 := p.Canary()

	halted, changed, err := p.Halt(ctx, canary.Model, "beta", "ops", "too many 5xx")
	if err != nil || !changed || halted.Actor != "ops" || halted.Reason != "too many 5xx" {
		t.Fatalf("Halt = %+v, %v, %v", halted, changed, err)
	}
	if _, again, err := p.Halt(ctx, canary.Model, "beta", "ops", "again"); err != nil || again {
		t.Errorf("a second Halt = changed %v, %v; want no change", again, err)
	}
	// New sessions get stable; the live one moves at its next turn boundary.
	if fresh := newSession(t, p, "alice"); fresh.Model != "m-stable" {
		t.Errorf("after the halt alice gets %s; want m-stable", fresh.Model)
	}
	changes := p.Rebind(s)
	if s.Model != "m-stable" || s.Assignment.Model != "m-stable" || s.Assignment.Variants != nil || len(changes) != 1 ||
		!strings.Contains(changes[0], "model: variant beta is halted; variant beta (m-beta) → stable m-stable") {
		t.Errorf("Rebind = %q; session %s %+v; want it moved to m-stable", changes, s.Model, s.Assignment)
	}
	if _, vars := p.Variants(); len(vars) != 1 || !vars[0].Halted {
		t.Errorf("Variants = %+v; want beta halted", vars)
	}

	reverted, err := p.Revert(ctx, v1.N, "ops", "the fix shipped")
	if err != nil || reverted.N != halted.N+1 {
		t.Fatalf("Revert = %+v, %v", reverted, err)
	}
	if fresh := newSession(t, p, "alice"); fresh.Model != "m-beta" {
		t.Errorf("after reverting to version %d alice gets %s; want m-beta again", v1.N, fresh.Model)
	}
	vs, err := p.Versions(ctx, 0, 10)
	if err != nil || len(vs) != 3 || vs[0].N != reverted.N {
		t.Errorf("Versions = %d versions, newest %v, %v; want 3, the revert first", len(vs), vs, err)
	}
	if got, err := p.Version(ctx, halted.N); err != nil || got.Reason != "too many 5xx" {
		t.Errorf("Version(%d) = %+v, %v", halted.N, got, err)
	}
}

// apply serves doc as a new version through the admin path.
func apply(t *testing.T, p *control.Plane, doc string) int {
	t.Helper()
	_, cur := p.Canary()
	v, err := p.ApplyCanary(context.Background(), []byte(doc), cur.N, "ops", "test")
	if err != nil {
		t.Fatalf("ApplyCanary(%s): %v", doc, err)
	}
	return v.N
}

// TestRollbackMovesLiveSessions is the seed's rollback case on live
// sessions: a rule version rolled out, then reverted; the sessions created
// under it move back at their next turn unless the restored canary.json
// says on_rollback "finish"; sessions from before, and forward changes,
// move nothing.
func TestRollbackMovesLiveSessions(t *testing.T) {
	tests := []struct {
		name, onRollback string
		wantRules        string
	}{
		{"default", "", "v1"},
		{"migrate", `, "on_rollback": "migrate"`, "v1"},
		{"finish", `, "on_rollback": "finish"`, "v2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := baseTree()
			files[".agentao/canary.json"] = `{"rules": {"stable": "v1"` + tc.onRollback + `}}`
			p, _ := newPlane(t, files)
			ctx := context.Background()
			_, good := p.Canary()
			before := newSession(t, p, "carol")
			apply(t, p, `{"rules": {"stable": "v2"}}`)
			bob := newSession(t, p, "bob")
			if bob.Assignment.Rules != "v2" {
				t.Fatalf("bob under the bad version: %+v", bob.Assignment)
			}
			rev, err := p.Revert(ctx, good.N, "ops", "rules mis-block")
			if err != nil {
				t.Fatal(err)
			}
			changes := p.Rebind(bob)
			if bob.Assignment.Rules != tc.wantRules || bob.Assignment.ConfigVersion != rev.N {
				t.Errorf("bob after the revert: %+v; want rules %s at version %d", bob.Assignment, tc.wantRules, rev.N)
			}
			want := 0
			if tc.wantRules == "v1" {
				want = 1
			}
			if len(changes) != want || (want == 1 && !strings.Contains(changes[0], fmt.Sprintf("rules: version %d was reverted by version %d; stable v2 → stable v1", rev.N-1, rev.N))) {
				t.Errorf("Rebind(bob) = %q; want %d line(s) naming the revert", changes, want)
			}
			if changes := p.Rebind(before); len(changes) != 0 || before.Assignment.Rules != "v1" {
				t.Errorf("a session from before the bad version: Rebind = %q, rules %s; want no change", changes, before.Assignment.Rules)
			}
			// A forward change applies to new sessions only.
			apply(t, p, `{"rules": {"stable": "v2"}}`)
			if changes := p.Rebind(bob); len(changes) != 0 || bob.Assignment.Rules != tc.wantRules {
				t.Errorf("after a forward change: Rebind(bob) = %q, rules %s; want nothing moved", changes, bob.Assignment.Rules)
			}
		})
	}
}

func TestHaltWithFinishKeepsSessions(t *testing.T) {
	files := baseTree()
	files[".agentao/canary.json"] = `{"rules": {"stable": "v1", "on_rollback": "finish", "variants": [{"name": "strict", "value": "v2", "users": ["alice"]}]}}`
	p, _ := newPlane(t, files)
	alice := newSession(t, p, "alice")
	if _, _, err := p.Halt(context.Background(), canary.Rules, "strict", "ops", "mis-blocks"); err != nil {
		t.Fatal(err)
	}
	if changes := p.Rebind(alice); len(changes) != 0 || alice.Assignment.Rules != "v2" || alice.Assignment.VariantOf(canary.Rules) != "strict" {
		t.Errorf("Rebind under on_rollback finish = %q, %+v; want alice to keep v2", changes, alice.Assignment)
	}
	if fresh := newSession(t, p, "alice"); fresh.Assignment.Rules != "v1" {
		t.Errorf("a new session of alice after the halt gets %s; want v1", fresh.Assignment.Rules)
	}
}

// TestGoneValueMovesToStable: a session pinned to a value whose file was
// removed, or to a model taken out of the catalog, moves to stable (even
// under "finish": the value cannot run) instead of failing every turn.
func TestGoneValueMovesToStable(t *testing.T) {
	files := baseTree()
	files[".agentao/canary.json"] = `{"models": ["m-stable", "m-beta"], "model": {"stable": "m-stable", "variants": [{"name": "b", "value": "m-beta", "users": ["carol"]}]},
		"instructions": {"stable": "AGENTAO.md", "on_rollback": "finish", "variants": [{"name": "v2", "value": "instructions/v2.md", "users": ["carol"]}]}}`
	p, dir := newPlane(t, files)
	carol := newSession(t, p, "carol")
	if carol.Assignment.Instructions != "instructions/v2.md" || carol.Model != "m-beta" {
		t.Fatalf("carol = %+v", carol.Assignment)
	}
	apply(t, p, `{"models": ["m-stable"], "instructions": {"stable": "AGENTAO.md", "on_rollback": "finish"}}`)
	if err := os.Remove(filepath.Join(dir, "instructions", "v2.md")); err != nil {
		t.Fatal(err)
	}
	p.Refresh(context.Background(), "test", true)
	if _, err := p.SystemPrompt(carol, ""); err == nil {
		t.Fatal("the removed instructions file still builds a prompt; the test proves nothing")
	}
	changes := p.Rebind(carol)
	if carol.Assignment.Instructions != "AGENTAO.md" || carol.Model != "m-stable" || carol.Assignment.Model != "m-stable" || carol.Assignment.Variants != nil || len(changes) != 2 {
		t.Fatalf("Rebind = %q; carol %s %+v; want stable instructions and model", changes, carol.Model, carol.Assignment)
	}
	for i, want := range []string{"model: its value no longer exists; variant b (m-beta) → stable m-stable", "instructions: its value no longer exists; variant v2 (instructions/v2.md) → stable AGENTAO.md"} {
		if !strings.Contains(changes[i], want) {
			t.Errorf("change %d = %q; want %q", i, changes[i], want)
		}
		if strings.Contains(changes[i], "have [") {
			t.Errorf("change %d = %q names other values of the tree; the tenant sees it", i, changes[i])
		}
	}
	if _, err := p.SystemPrompt(carol, ""); err != nil {
		t.Errorf("SystemPrompt after the move: %v", err)
	}
}

// TestChosenModelLeavesTheCatalog: a model the session chose itself (not
// its assignment's) is kept while it is in the catalog and replaced by the
// assignment's once it leaves.
func TestChosenModelLeavesTheCatalog(t *testing.T) {
	files := baseTree()
	files[".agentao/canary.json"] = `{"models": ["m-stable", "m-beta"]}`
	p, _ := newPlane(t, files)
	s := newSession(t, p, "dora")
	s.Model = "m-beta" // chosen over ACP or PUT .../model
	if changes := p.Rebind(s); len(changes) != 0 || s.Model != "m-beta" {
		t.Fatalf("Rebind with the chosen model in the catalog = %q, %s; want it kept", changes, s.Model)
	}
	apply(t, p, `{"models": ["m-stable"]}`)
	changes := p.Rebind(s)
	if s.Model != "m-stable" || len(changes) != 1 || !strings.Contains(changes[0], "chosen model m-beta is not in the catalog") {
		t.Errorf("Rebind after m-beta left the catalog = %q, %s; want m-stable and one line", changes, s.Model)
	}
}

func TestGuardHaltsABadVariant(t *testing.T) {
	files := baseTree()
	files[".agentao/canary.json"] = `{"models": ["m-stable", "m-beta"],
		"model": {"stable": "m-stable", "variants": [{"name": "beta", "value": "m-beta", "percent": 50}]},
		"guard": {"min_samples": 5, "tool_failure_rate": 0.2}}`
	p, _ := newPlane(t, files)
	turn := func(variant string, failures int) {
		a := session.Assignment{Model: "m-stable", Skills: "default", Rules: "v1", Sandbox: "workspace-write-no-network", Instructions: "AGENTAO.md"}
		if variant != "" {
			a.Model, a.Variants = "m-beta", map[string]string{"model": variant}
		}
		p.Observe(session.Summary{Assignment: a}, session.TurnRecord{Stats: agent.Stats{LLMCalls: 1, ToolCalls: 4, ToolFailures: failures}})
	}
	for range 10 {
		turn("", 0)
		turn("beta", 3)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pol, v := p.Canary()
		if pol.Halted(canary.Model, "beta") {
			if v.Actor != "auto" || !strings.Contains(v.Reason, "tool failure rate") {
				t.Errorf("the guard's halt: actor %q, reason %q", v.Actor, v.Reason)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guard did not halt beta (windows %+v)", p.GuardWindows())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestApplyCanaryConflict(t *testing.T) {
	p, _ := newPlane(t, baseTree())
	ctx := context.Background()
	_, v := p.Canary()
	doc := `{"rules": {"stable": "v1", "variants": [{"name": "strict", "value": "v2", "percent": 10}]}}`
	if _, err := p.ApplyCanary(ctx, []byte(doc), v.N+5, "ops", "stale"); err == nil {
		t.Errorf("ApplyCanary with a stale If-Match = nil error; want a conflict")
	}
	if _, err := p.ApplyCanary(ctx, []byte(`{"rules": {"stable": "v9"}}`), v.N, "ops", "bad"); err == nil {
		t.Errorf("ApplyCanary naming a rule version that does not exist = nil error")
	}
	got, err := p.ApplyCanary(ctx, []byte(doc), v.N, "ops", "10% on strict rules")
	if err != nil || got.N != v.N+1 {
		t.Fatalf("ApplyCanary = %+v, %v", got, err)
	}
	if err := p.CheckModel("m-beta"); err != nil {
		t.Errorf("CheckModel(m-beta) = %v; want it in the catalog", err)
	}
	if err := p.CheckModel("gpt-unknown"); err == nil {
		t.Errorf("CheckModel(gpt-unknown) = nil; want an error")
	}
}

// TestMCPReload: the tenant's MCP servers start at its first turn; a
// changed mcp.json restarts them under the new name; an invalid one keeps
// them.
func TestMCPReload(t *testing.T) {
	bin := buildFakeMCP(t)
	files := baseTree()
	files[".agentao/mcp.json"] = fmt.Sprintf(`{"mcpServers": {"fake": {"command": %q}}}`, bin)
	files[".agentao/sandbox.json"] = fmt.Sprintf(`{"profiles": {"workspace-write-no-network": {"read_only_paths": [%q]}}}`, filepath.Dir(bin))
	p, dir := newPlane(t, files)
	s := newSession(t, p, "alice")
	names := func() string {
		var out []string
		for _, tl := range p.TurnTools(context.Background(), s, nil) {
			out = append(out, tl.Spec().Name)
		}
		return strings.Join(out, " ")
	}
	if got := names(); !strings.Contains(got, "mcp_fake_echo") {
		t.Fatalf("turn tools = %s; want the fake server's", got)
	}
	if p.MCPChildren() != 1 {
		t.Errorf("MCPChildren = %d; want 1", p.MCPChildren())
	}
	writeTree(t, dir, map[string]string{".agentao/mcp.json": `{"mcpServers": {"fake": {"command": 3}}}`})
	p.Refresh(context.Background(), "test", false)
	if got := names(); !strings.Contains(got, "mcp_fake_echo") {
		t.Errorf("after an invalid mcp.json, turn tools = %s; want the servers kept", got)
	}
	writeTree(t, dir, map[string]string{".agentao/mcp.json": fmt.Sprintf(`{"mcpServers": {"renamed": {"command": %q}}}`, bin)})
	p.Refresh(context.Background(), "test", false)
	if got := names(); !strings.Contains(got, "mcp_renamed_echo") || strings.Contains(got, "mcp_fake_") {
		t.Errorf("after a changed mcp.json, turn tools = %s; want only the renamed server's", got)
	}
	p.CloseMCP()
	if n := p.MCPChildren(); n != 0 {
		t.Errorf("after CloseMCP, %d MCP children", n)
	}
}

var (
	fakeMCPOnce sync.Once
	fakeMCPPath string
	fakeMCPErr  error
)

// buildFakeMCP builds cmd/fakemcp once.
func buildFakeMCP(t *testing.T) string {
	t.Helper()
	fakeMCPOnce.Do(func() {
		dir, err := os.MkdirTemp("", "agentd-control-test-")
		if err != nil {
			fakeMCPErr = err
			return
		}
		fakeMCPPath = filepath.Join(dir, "fakemcp")
		out, err := exec.Command("go", "build", "-o", fakeMCPPath, "../../cmd/fakemcp").CombinedOutput()
		if err != nil {
			fakeMCPErr = fmt.Errorf("go build cmd/fakemcp: %v\n%s", err, out)
		}
	})
	if fakeMCPErr != nil {
		t.Fatal(fakeMCPErr)
	}
	return fakeMCPPath
}

func TestConfigErrors(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"a rule version that does not parse": {".agentao/permissions/v1.json": `{`},
		"mcp.json that does not parse":       {".agentao/mcp.json": `{"mcpServers": {"x": {"comand": "y"}}}`},
	} {
		t.Run(name, func(t *testing.T) {
			dir, data := t.TempDir(), t.TempDir()
			writeTree(t, dir, baseTree())
			writeTree(t, dir, files)
			db, err := boltdb.Open(filepath.Join(data, "agentd.db"), boltdb.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			_, err = control.New(context.Background(), control.Config{ConfigDir: dir, DataDir: data, Model: "m", Versions: db.Versions(), Self: helper})
			var ce *control.ConfigError
			if err == nil || !errors.As(err, &ce) {
				t.Errorf("New = %v; want a *control.ConfigError", err)
			}
		})
	}
}
