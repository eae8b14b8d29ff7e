package main_test

// End-to-end tests of a fleet: three real `agentd serve` processes on
// loopback, replicating their control plane over the API port.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

const clusterKey = "fleet-e2e-cluster-key-0123"

// member is one replica of a test fleet: its name, fixed port, data and
// configuration directories, and the running process (nil when down).
type member struct {
	name, addr, data, dir string
	key                   string
	p                     *proc
}

// startFleet starts n replicas that list each other, each with doc as its
// canary.json; keys[i], if given, is member i's cluster key instead of the
// fleet's.
func startFleet(t *testing.T, llm *llmtest.Server, n int, doc string, keys map[int]string) []*member {
	t.Helper()
	var ms []*member
	var spec []string
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		m := &member{name: fmt.Sprintf("n%d", i+1), addr: ln.Addr().String(), data: t.TempDir(), dir: configDir(t, doc), key: clusterKey}
		ln.Close()
		if k, ok := keys[i]; ok {
			m.key = k
		}
		ms = append(ms, m)
		spec = append(spec, m.name+"=http://"+m.addr)
	}
	for _, m := range ms {
		m.start(t, llm, strings.Join(spec, ","))
	}
	return ms
}

func (m *member) start(t *testing.T, llm *llmtest.Server, spec string) {
	t.Helper()
	m.p = start(t, llm, m.data, "AGENTD_ADDR="+m.addr, "AGENTD_CONFIG_DIR="+m.dir, "AGENTD_NODE="+m.name,
		"AGENTD_PEERS="+spec, "AGENTD_CLUSTER_KEY="+m.key)
}

func (m *member) kill() {
	_ = m.p.cmd.Process.Signal(syscall.SIGKILL)
	m.p.wait(15 * time.Second)
	m.p = nil
}

// fleetView is GET /v1/admin/fleet.
type fleetView struct {
	Self           string `json:"self"`
	Leader         string `json:"leader"`
	AppliedVersion int    `json:"applied_version"`
	Members        []struct {
		Name           string `json:"name"`
		Voter          bool   `json:"voter"`
		Reachable      bool   `json:"reachable"`
		AppliedVersion int    `json:"applied_version"`
	} `json:"members"`
}

func (m *member) fleet() fleetView {
	r := m.p.do("GET", "/v1/admin/fleet", opsKey, "")
	var v fleetView
	if r.Status != 200 || json.Unmarshal([]byte(r.Raw), &v) != nil {
		m.p.t.Fatalf("GET /v1/admin/fleet on %s = %d %s", m.name, r.Status, r.Raw)
	}
	return v
}

// version is the configuration version m serves.
func (m *member) version() int {
	r := m.p.do("GET", "/v1/admin/canary", opsKey, "")
	if r.Status != 200 {
		m.p.t.Fatalf("GET /v1/admin/canary on %s = %d %s", m.name, r.Status, r.Raw)
	}
	return int(r.Body["version"].(float64))
}

func (m *member) halted(variant string) bool {
	r := m.p.do("GET", "/v1/admin/canary", opsKey, "")
	for _, v := range r.Body["variants"].([]any) {
		if v := v.(map[string]any); v["name"] == variant {
			return v["halted"] == true
		}
	}
	return false
}

// leader waits until the running members agree on a running leader.
func leader(t *testing.T, ms []*member) (lead *member, others []*member) {
	t.Helper()
	waitLong(t, "a leader all running members agree on", func() bool {
		name := ""
		for _, m := range ms {
			if m.p == nil {
				continue
			}
			v := m.fleet()
			if v.Leader == "" || (name != "" && v.Leader != name) {
				return false
			}
			name = v.Leader
		}
		lead, others = nil, nil
		for _, m := range ms {
			switch {
			case m.p == nil:
			case m.name == name:
				lead = m
			default:
				others = append(others, m)
			}
		}
		return lead != nil
	})
	return lead, others
}

// everywhere waits until every running member serves version n.
func everywhere(t *testing.T, ms []*member, n int) {
	t.Helper()
	waitLong(t, fmt.Sprintf("version %d on every running member", n), func() bool {
		for _, m := range ms {
			if m.p != nil && m.version() != n {
				return false
			}
		}
		return true
	})
}

// waitLong polls cond with a generous deadline (elections take seconds).
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// put replaces the canary configuration through m; retried while the fleet
// has no quorum (503 no_quorum, during an election).
func (m *member) put(t *testing.T, doc, reason string) int {
	t.Helper()
	var n int
	waitLong(t, "PUT /v1/admin/canary on "+m.name, func() bool {
		req, _ := httpRequest("PUT", m.p.url+"/v1/admin/canary", doc)
		req.Header.Set("Authorization", "Bearer "+opsKey)
		req.Header.Set("If-Match", fmt.Sprintf(`"%d"`, m.version()))
		req.Header.Set("X-Agentd-Reason", reason)
		r := m.p.send(req)
		switch {
		case r.Status == 200:
			n = int(r.Body["version"].(float64))
			return true
		case r.Status == 503 && r.Body["error"].(map[string]any)["code"] == "no_quorum", r.Status == 412:
			return false // an election, or a version that landed meanwhile
		}
		t.Fatalf("PUT /v1/admin/canary on %s = %d %s", m.name, r.Status, r.Raw)
		return false
	})
	return n
}

const fleetDoc = `{"models": ["stable-model", "canary-model"],
  "model": {"stable": "stable-model", "variants": [{"name": "beta", "value": "canary-model", "percent": 50}]}}`

// TestFleetOneHistory: a write on a follower is one version everywhere; a
// halt on one member is served by the others; the leader's SIGKILL leaves
// writes going on through the two others; a killed follower restarted from
// its data catches up.
func TestFleetOneHistory(t *testing.T) {
	llm := llmtest.NewServer(t)
	ms := startFleet(t, llm, 3, betaConfig, nil)
	lead, others := leader(t, ms)
	everywhere(t, ms, 1) // the leader made canary.json version 1, once

	// A PUT on a follower: committed, applied where it was taken, then
	// everywhere within a few seconds.
	f := others[0]
	n := f.put(t, fleetDoc, "fleet e2e: a write on a follower")
	if got := f.version(); got != n {
		t.Errorf("the follower answered version %d but serves %d", n, got)
	}
	everywhere(t, ms, n)
	for _, m := range ms {
		v := m.fleet()
		if len(v.Members) != 3 || v.AppliedVersion != n {
			t.Errorf("GET /v1/admin/fleet on %s = %+v; want 3 members, applied %d", m.name, v, n)
		}
	}

	// A halt on one member reaches every member.
	r := others[1].p.do("POST", "/v1/admin/rollback", opsKey, `{"dimension": "model", "variant": "beta", "reason": "fleet e2e: halt"}`)
	if r.Status != 200 {
		t.Fatalf("halt on %s = %d %s", others[1].name, r.Status, r.Raw)
	}
	halt := int(r.Body["version"].(map[string]any)["version"].(float64))
	everywhere(t, ms, halt)
	for _, m := range ms {
		if !m.halted("beta") {
			t.Errorf("%s does not serve the halt", m.name)
		}
	}
	// One history: the same versions everywhere.
	var want string
	for _, m := range ms {
		r := m.p.do("GET", "/v1/admin/versions", opsKey, "")
		if want == "" {
			want = r.Raw
		} else if r.Raw != want {
			t.Errorf("%s's history differs:\n%s\nwant\n%s", m.name, r.Raw, want)
		}
	}

	// SIGKILL of the leader: a new one is elected and writes go on.
	lead.kill()
	_, others = leader(t, ms)
	n = others[0].put(t, fleetDoc, "fleet e2e: after the leader died")
	everywhere(t, ms, n)

	// The killed leader, restarted from its data, catches up.
	spec := make([]string, len(ms))
	for i, m := range ms {
		spec[i] = m.name + "=http://" + m.addr
	}
	lead.start(t, llm, strings.Join(spec, ","))
	everywhere(t, ms, n)

	// So does a killed follower, after versions made without it.
	_, others = leader(t, ms)
	late := others[0]
	late.kill()
	lead, _ = leader(t, ms)
	revert := lead.p.do("POST", "/v1/admin/rollback", opsKey, `{"to_version": 2, "reason": "fleet e2e: while a follower is down"}`)
	if revert.Status != 200 {
		t.Fatalf("revert = %d %s", revert.Status, revert.Raw)
	}
	n = int(revert.Body["version"].(map[string]any)["version"].(float64))
	late.start(t, llm, strings.Join(spec, ","))
	everywhere(t, ms, n)
	if late.halted("beta") {
		t.Error("the caught-up member still serves the halt its revert undid")
	}
}

// TestFleetWrongKeyIsRefused: a member with another cluster key never
// joins (the two others go on), and its cluster requests get 401.
func TestFleetWrongKeyIsRefused(t *testing.T) {
	llm := llmtest.NewServer(t)
	ms := startFleet(t, llm, 3, betaConfig, map[int]string{2: "not-the-fleet-key-0123456789"})
	good, bad := ms[:2], ms[2]
	leader(t, good)
	everywhere(t, good, 1)
	n := good[1].put(t, fleetDoc, "fleet e2e: without the member with the wrong key")
	everywhere(t, good, n)
	if v := bad.fleet(); v.AppliedVersion != 0 || v.Leader != "" {
		t.Errorf("the member with the wrong key joined: %+v", v)
	}
	// Its admin writes cannot be committed.
	req, _ := httpRequest("PUT", bad.p.url+"/v1/admin/canary", fleetDoc)
	req.Header.Set("Authorization", "Bearer "+opsKey)
	req.Header.Set("If-Match", `"0"`)
	req.Header.Set("X-Agentd-Reason", "should fail")
	if r := bad.p.send(req); r.Status != 503 || r.Body["error"].(map[string]any)["code"] != "no_quorum" {
		t.Errorf("PUT on the member with the wrong key = %d %s; want 503 no_quorum", r.Status, r.Raw)
	}
	// The cluster channel refuses a wrong key with the API's error shape.
	for _, key := range []string{"", bad.key, opsKey} {
		req, _ := httpRequest("GET", good[0].p.url+"/cluster/v1/whoami", "")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if r := good[0].p.send(req); r.Status != 401 || r.Body["error"].(map[string]any)["code"] != "unauthorized" {
			t.Errorf("GET /cluster/v1/whoami with key %q = %d %s; want 401 unauthorized", key, r.Status, r.Raw)
		}
	}
	if !good[0].p.logged("cluster request refused") {
		t.Error("a refused cluster request is not logged")
	}
	for _, m := range ms {
		if strings.Contains(m.p.logs.String(), clusterKey) || strings.Contains(m.p.logs.String(), bad.key) {
			t.Errorf("%s logged a cluster key", m.name)
		}
	}
}

// TestNoPeersNoCluster: without peers nothing of the fleet is there.
func TestNoPeersNoCluster(t *testing.T) {
	p := start(t, llmtest.NewServer(t), t.TempDir())
	req, _ := httpRequest("GET", p.url+"/cluster/v1/whoami", "")
	req.Header.Set("Authorization", "Bearer "+clusterKey)
	if r := p.send(req); r.Status != 404 {
		t.Errorf("GET /cluster/v1/whoami on a single replica = %d; want 404", r.Status)
	}
	if r := p.do("GET", "/v1/admin/fleet", opsKey, ""); r.Status != 404 {
		t.Errorf("GET /v1/admin/fleet on a single replica = %d %s; want 404", r.Status, r.Raw)
	}
	if id := p.create(acmeKey); strings.Count(id, "_") != 1 {
		t.Errorf("a single replica's session id %q; want the form without a node", id)
	}
}

// TestFleetNeedsAKey: peers without a cluster key of 16+ characters is a
// usage error.
func TestFleetNeedsAKey(t *testing.T) {
	for _, env := range [][]string{
		{"AGENTD_PEERS=n1=http://127.0.0.1:1", "AGENTD_NODE=n1"},
		{"AGENTD_PEERS=n1=http://127.0.0.1:1", "AGENTD_NODE=n1", "AGENTD_CLUSTER_KEY=short"},
		{"AGENTD_PEERS=n2=http://127.0.0.1:1", "AGENTD_NODE=n1", "AGENTD_CLUSTER_KEY=" + clusterKey},
	} {
		code, out := runServe(t, env)
		if code != 2 || !strings.Contains(out, "AGENTD_") {
			t.Errorf("serve with %v exited %d:\n%s\nwant 2 and the setting named", env, code, out)
		}
	}
}

// runServe runs agentd serve with a bad configuration and returns its exit
// code and output.
func runServe(t *testing.T, env []string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env = append([]string{
		"AGENTD_ADDR=127.0.0.1:0", "AGENTD_DATA=" + t.TempDir(), "OPENAI_MODEL=m", "OPENAI_BASE_URL=http://127.0.0.1:1/v1",
		"AGENTD_API_KEYS=" + acmeKey + "=acme", "AGENTD_CONFIG_DIR=" + t.TempDir(),
	}, env...)
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}

// TestFleetGuardSeesEveryReplica: the failing canary turns are split over
// the two followers, fewer than min_samples on each; the leader's guard
// sees them all, halts the variant, and every replica serves the halt.
func TestFleetGuardSeesEveryReplica(t *testing.T) {
	llm := llmtest.NewServer(t)
	llm.SetResponder(func(r llmtest.Request) llmtest.Reply {
		if r.Model == "canary-model" {
			return llmtest.Reply{Status: 500, ErrorMessage: "canary model is broken"}
		}
		return llmtest.DefaultResponder(r)
	})
	cfg := `{"models": ["stable-model", "canary-model"],
	  "model": {"stable": "stable-model", "variants": [{"name": "broken", "value": "canary-model", "percent": 50}]},
	  "guard": {"min_samples": 8, "window": 20}}`
	ms := startFleet(t, llm, 3, cfg, nil)
	_, followers := leader(t, ms)
	everywhere(t, ms, 1)
	for _, f := range followers {
		canaryIDs, stableIDs := guardSessions(f.p, 5)
		for _, id := range stableIDs {
			if r := f.p.turn(acmeKey, id, "ok?"); outcome(r)["incomplete_reason"] != nil {
				t.Fatalf("stable turn on %s failed: %s", f.name, r.Raw)
			}
		}
		for _, id := range canaryIDs[:4] {
			if r := f.p.turn(acmeKey, id, "hello"); outcome(r)["incomplete_reason"] != "llm_error" {
				t.Fatalf("canary turn on %s = %s; want llm_error", f.name, r.Raw)
			}
		}
	}
	waitLong(t, "the guard's halt on every replica", func() bool {
		for _, m := range ms {
			if !m.halted("broken") {
				return false
			}
		}
		return true
	})
	v := ms[0].p.do("GET", "/v1/admin/versions?limit=1", opsKey, "").Body["versions"].([]any)[0].(map[string]any)
	if v["actor"] != "auto" || v["kind"] != "halt" || v["details"].(map[string]any)["window_turns"] != 8.0 {
		t.Errorf("the guard's version = %v; want an automatic halt over the 8 turns of both followers", v)
	}
}
