package main_test

// End-to-end tests of a fleet's sessions: any replica serves any session
// (forwarded to its owner), a session whose owner is down is 503 and never
// 404, and `agentd sessions move` hands a retiring replica's sessions over.

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentd/agentd/internal/llm/llmtest"
)

// call is a request through m as tenant acme's user alice, with the
// answer's owner header.
func (m *member) call(t *testing.T, method, path, body string, header ...string) (reply, http.Header) {
	t.Helper()
	req, err := httpRequest(method, m.p.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	req.Header.Set("X-Agentd-User", "alice")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, m.name, err)
	}
	defer resp.Body.Close()
	var raw strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		raw.WriteString(sc.Text() + "\n")
	}
	r := reply{Status: resp.StatusCode, Raw: raw.String()}
	_ = json.Unmarshal([]byte(r.Raw), &r.Body)
	return r, resp.Header
}

func errorCode(r reply) string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestFleetServesAnySession(t *testing.T) {
	llm := llmtest.NewServer(t)
	ms := startFleet(t, llm, 3, betaConfig, nil)
	leader(t, ms)
	a, b, c := ms[0], ms[1], ms[2]

	r, h := a.call(t, "POST", "/v1/sessions", "")
	if r.Status != 201 || h.Get("X-Agentd-Owner") != a.name {
		t.Fatalf("create on %s = %d %s (owner %q)", a.name, r.Status, r.Raw, h.Get("X-Agentd-Owner"))
	}
	id := r.Body["id"].(string)
	if !strings.HasSuffix(id, "_"+a.name) {
		t.Errorf("id %s does not name its owner %s", id, a.name)
	}

	// A JSON turn through b, an SSE turn through c, the history through
	// either: all served by a.
	r, h = b.call(t, "POST", "/v1/sessions/"+id+"/messages", `{"content":"through b"}`)
	if r.Status != 200 || r.Body["reply"] != "echo: through b" || h.Get("X-Agentd-Owner") != a.name {
		t.Fatalf("JSON turn through %s = %d %s (owner %q)", b.name, r.Status, r.Raw, h.Get("X-Agentd-Owner"))
	}
	r, h = c.call(t, "POST", "/v1/sessions/"+id+"/messages", `{"content":"through c"}`, "Accept", "text/event-stream")
	if r.Status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") || !strings.Contains(r.Raw, "event: done") ||
		!strings.Contains(r.Raw, "echo: through c") || h.Get("X-Agentd-Owner") != a.name {
		t.Fatalf("SSE turn through %s = %d %q %s", c.name, r.Status, h.Get("Content-Type"), r.Raw)
	}
	for _, m := range ms {
		r, h := m.call(t, "GET", "/v1/sessions/"+id, "")
		if r.Status != 200 || len(r.Body["messages"].([]any)) != 4 || h.Get("X-Agentd-Owner") != a.name {
			t.Errorf("GET through %s = %d (owner %q) %s; want the 4 messages of both turns", m.name, r.Status, h.Get("X-Agentd-Owner"), r.Raw)
		}
	}
	// Another tenant gets what it gets on the owner: nothing.
	if r := b.p.do("GET", "/v1/sessions/"+id, globexKey, ""); r.Status != 404 {
		t.Errorf("globex through %s = %d %s, want 404", b.name, r.Status, r.Raw)
	}
	// The listing through any replica has the session.
	if r, _ := c.call(t, "GET", "/v1/sessions", ""); r.Status != 200 || !strings.Contains(r.Raw, id) {
		t.Errorf("list through %s = %d %s", c.name, r.Status, r.Raw)
	}

	// The owner down: 503 owner_unavailable with Retry-After, never 404;
	// back up: served again.
	a.kill()
	r, h = b.call(t, "GET", "/v1/sessions/"+id, "")
	if r.Status != 503 || errorCode(r) != "owner_unavailable" || h.Get("Retry-After") == "" {
		t.Fatalf("GET through %s with %s down = %d %s (Retry-After %q)", b.name, a.name, r.Status, r.Raw, h.Get("Retry-After"))
	}
	spec := make([]string, len(ms))
	for i, m := range ms {
		spec[i] = m.name + "=http://" + m.addr
	}
	a.start(t, llm, strings.Join(spec, ","))
	r, _ = c.call(t, "POST", "/v1/sessions/"+id+"/messages", `{"content":"after the restart"}`)
	if r.Status != 200 || r.Body["reply"] != "echo: after the restart" {
		t.Fatalf("turn through %s after %s restarted = %d %s", c.name, a.name, r.Status, r.Raw)
	}
}

// TestFleetSessionsMove: `agentd sessions move`, asked of any replica,
// moves a retiring replica's sessions (history and workspace) to another,
// ids kept; they are served through every replica, also once the retired
// one is gone.
func TestFleetSessionsMove(t *testing.T) {
	llm := llmtest.NewServer(t)
	ms := startFleet(t, llm, 3, betaConfig, nil)
	leader(t, ms)
	a, b, c := ms[0], ms[1], ms[2]

	var ids []string
	for range 2 {
		r, _ := c.call(t, "POST", "/v1/sessions", "")
		id := r.Body["id"].(string)
		if r, _ := c.call(t, "POST", "/v1/sessions/"+id+"/messages", `{"content":"before the move"}`); r.Status != 200 {
			t.Fatalf("turn = %d %s", r.Status, r.Raw)
		}
		ids = append(ids, id)
	}
	// A file in the first session's workspace moves with it.
	ws := filepath.Join(c.data, "workspaces", "acme", ids[0])
	if err := os.WriteFile(filepath.Join(ws, "notes.txt"), []byte("kept across the move"), 0o600); err != nil {
		t.Fatal(err)
	}
	kept, _ := a.call(t, "POST", "/v1/sessions", "") // a's own session stays on a

	out, err := a.p.cli("sessions", "move", "--from", c.name, "--to", b.name)
	if err != nil || !strings.Contains(out, "moved 2 sessions from "+c.name+" to "+b.name) {
		t.Fatalf("agentd sessions move: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(b.data, "workspaces", "acme", ids[0], "notes.txt")); err != nil || string(b) != "kept across the move" {
		t.Errorf("the workspace file on the new owner: %q, %v", b, err)
	}
	if _, err := os.Stat(ws); !os.IsNotExist(err) {
		t.Errorf("the retired replica still has the workspace: %v", err)
	}
	if r := a.p.do("DELETE", "/v1/admin/fleet/members/"+c.name, opsKey, ""); r.Status != 409 || !strings.Contains(r.Raw, "member_running") {
		t.Errorf("removing %s while it runs = %d %s; want 409 member_running", c.name, r.Status, r.Raw)
	}
	c.kill() // scaled down
	// Then out of the Raft configuration: the quorum counts the two left.
	if r := a.p.do("DELETE", "/v1/admin/fleet/members/"+c.name, opsKey, ""); r.Status != 204 {
		t.Fatalf("removing %s = %d %s", c.name, r.Status, r.Raw)
	}
	for _, m := range a.fleet().Members {
		if m.Name == c.name && m.Voter {
			t.Errorf("%s is still a voter: %+v", c.name, a.fleet())
		}
	}
	if r := b.p.do("DELETE", "/v1/admin/fleet/members/nobody", opsKey, ""); r.Status != 404 {
		t.Errorf("removing a stranger = %d %s", r.Status, r.Raw)
	}
	a.put(t, fleetDoc, "fleet e2e: a write after the removal")
	for _, id := range ids {
		for _, m := range []*member{a, b} {
			r, h := m.call(t, "GET", "/v1/sessions/"+id, "")
			if r.Status != 200 || len(r.Body["messages"].([]any)) != 2 || h.Get("X-Agentd-Owner") != b.name {
				t.Errorf("%s through %s after the move = %d (owner %q) %s", id, m.name, r.Status, h.Get("X-Agentd-Owner"), r.Raw)
			}
		}
		if r, _ := a.call(t, "POST", "/v1/sessions/"+id+"/messages", `{"content":"after the move"}`); r.Status != 200 || r.Body["reply"] != "echo: after the move" {
			t.Errorf("turn on %s after the move = %d %s", id, r.Status, r.Raw)
		}
	}
	if r, h := b.call(t, "GET", "/v1/sessions/"+kept.Body["id"].(string), ""); r.Status != 200 || h.Get("X-Agentd-Owner") != a.name {
		t.Errorf("a's own session = %d, owner %q", r.Status, h.Get("X-Agentd-Owner"))
	}
	// Moving from a replica that is gone says so.
	if out, err := a.p.cli("sessions", "move", "--from", c.name, "--to", b.name); err == nil || !strings.Contains(out, "owner_unavailable") {
		t.Errorf("a move from a dead replica: %v\n%s", err, out)
	}
}
