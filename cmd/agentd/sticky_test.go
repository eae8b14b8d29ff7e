package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/llm/llmtest"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
)

// tree writes a configuration tree with two of everything a canary can
// point at.
func tree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"AGENTAO.md":                   "# rules\n",
		"instructions/v2.md":           "# rules v2\n",
		"skills/default/a/SKILL.md":    "---\nname: a\ndescription: a\n---\n# A\n",
		"skills/beta/a/SKILL.md":       "---\nname: a\ndescription: a beta\n---\n# A\n",
		".agentao/permissions/v1.json": `{"rules": []}`,
		".agentao/permissions/v2.json": `{"rules": [{"tool": "run_shell_command", "action": "deny"}]}`,
		".agentao/canary.json":         `{}`,
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestStickySessions: 10,000 sessions are created while the configuration
// changes 20 times (percents up and down, variants added and removed, in
// every dimension); no session's model, skills, rules, sandbox or
// instructions ever changes, in memory or on disk, and turns run on the
// pinned model.
func TestStickySessions(t *testing.T) {
	const sessions, changes = 10_000, 20
	fake := llmtest.New()
	llm := httptest.NewServer(fake.Handler())
	defer func() { llm.Close(); fake.Close() }()
	cfg := Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), ConfigDir: tree(t), OpenAIBaseURL: llm.URL + "/v1", Model: "m-stable",
		Models: []string{"m-stable", "m-a", "m-b"}, LLMMaxAttempts: 1, ShutdownTimeout: 30 * time.Second, TurnTimeout: time.Minute,
		MaxIterations: 10, SessionTTL: time.Hour, MaxLiveSessions: 500, MaxBodyBytes: 1 << 20, ShellTimeout: time.Minute, ConfigPoll: time.Hour,
	}
	keys, _ := tenant.Parse("sticky-key-0123456789=acme")
	a, err := newApp(context.Background(), cfg, keys, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = a.pool.Close(); _ = a.close() }()

	doc := func(step int) string {
		p1, p2 := float64((step*7)%60), float64((step*13)%40)
		variants := fmt.Sprintf(`{"name":"a","value":"m-a","percent":%v}`, p1)
		if step%3 != 0 { // the second variant comes and goes
			variants += fmt.Sprintf(`,{"name":"b","value":"m-b","percent":%v,"users":["u-7"]}`, p2)
		}
		return fmt.Sprintf(`{"models":["m-stable","m-a","m-b"],
			"model":{"stable":"m-stable","variants":[%s]},
			"skills":{"stable":"default","variants":[{"name":"s","value":"beta","percent":%v}]},
			"rules":{"stable":"v1","variants":[{"name":"r","value":"v2","percent":%v}]},
			"sandbox":{"stable":"workspace-write-no-network","variants":[{"name":"x","value":"workspace-write","percent":%v}]},
			"instructions":{"stable":"AGENTAO.md","variants":[{"name":"i","value":"instructions/v2.md","percent":%v}]}}`,
			variants, float64((step*11)%100), float64((step*3)%50), float64((step*17)%90), float64((step*5)%100))
	}
	type pinned struct {
		id    session.ID
		model string
		a     session.Assignment
	}
	var mu sync.Mutex
	var all []pinned
	ctx := context.Background()
	for step := 0; step < changes; step++ {
		_, v := a.ctl.Canary()
		if _, err := a.ctl.ApplyCanary(ctx, []byte(doc(step)), v.N, "test", fmt.Sprint("change ", step)); err != nil {
			t.Fatalf("change %d: %v", step, err)
		}
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < sessions/changes; i += 16 {
					s, err := a.pool.Create(ctx, "acme", fmt.Sprintf("u-%d", step*1000+i), "")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					all = append(all, pinned{s.ID, s.Model, s.Assignment})
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	if len(all) != sessions {
		t.Fatalf("created %d sessions", len(all))
	}
	moved := 0
	variants := map[string]int{}
	for i, p := range all {
		s, err := a.pool.Get(ctx, "acme", p.id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Model != p.model || s.Assignment.Model != p.a.Model || s.Assignment.Skills != p.a.Skills || s.Assignment.Rules != p.a.Rules ||
			s.Assignment.Sandbox != p.a.Sandbox || s.Assignment.Instructions != p.a.Instructions || s.Assignment.ConfigVersion != p.a.ConfigVersion {
			moved++
			if moved < 5 {
				t.Errorf("session %d changed: %+v → %+v", i, p.a, s.Assignment)
			}
		}
		for dim, v := range s.Assignment.Variants {
			variants[dim+"/"+v]++
		}
	}
	if moved > 0 {
		t.Fatalf("%d of %d sessions changed assignment", moved, sessions)
	}
	if len(variants) < 5 {
		t.Errorf("variants seen: %v; the test should exercise every dimension", variants)
	}
	// Turns of a sample run on the pinned model.
	for _, p := range all[:sessions:sessions][:200] {
		res, err := a.pool.Turn(ctx, "acme", p.id, session.TurnInput{Content: "hi"})
		if err != nil || res.Model != p.model {
			t.Fatalf("turn of %s = %+v, %v; want model %s", p.id, res, err, p.model)
		}
	}
	reqs := fake.Requests()
	for i, p := range all[:200] {
		if reqs[len(reqs)-200+i].Model != p.model {
			t.Errorf("the LLM saw %q for session %s; want %s", reqs[len(reqs)-200+i].Model, p.id, p.model)
			break
		}
	}
}
