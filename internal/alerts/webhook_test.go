package alerts_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/alerts"
	"github.com/agentd/agentd/internal/boltdb"
)

// hookServer is a webhook receiver answering with the statuses given, in
// turn (the last one repeats), and keeping the bodies it got.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	bodies   []map[string]any
	types    []string
}

func newHookServer(t *testing.T, statuses ...int) *hookServer {
	h := &hookServer{statuses: statuses}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(data, &body)
		h.mu.Lock()
		status := h.statuses[min(len(h.bodies), len(h.statuses)-1)]
		h.bodies = append(h.bodies, body)
		h.types = append(h.types, r.Header.Get("Content-Type"))
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.bodies...)
}

// waitFor polls cond with a generous deadline (no timed assertions).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookRetries(t *testing.T) {
	cases := []struct {
		name      string
		statuses  []int
		requests  int    // per event
		delivered bool   // the last attempt got a 2xx
		logged    string // a log line saying what happened
		lines     int    // how many times
	}{
		{"fails twice then 200", []int{500, 503, 200}, 3, true, "alert webhook attempt failed; retrying", 2},
		{"a 429 is retried", []int{429, 204}, 2, true, "alert webhook attempt failed; retrying", 1},
		{"a 400 is final", []int{400}, 1, false, "alert webhook refused the event; not retried", 1},
		{"gives up after 5 attempts", []int{502}, 5, false, "alert webhook failed; event dropped", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHookServer(t, tc.statuses...)
			start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
			e := newEnv(t, time.UTC, start, func(c *alerts.Config) {
				c.Webhook, c.WebhookBackoff = h.URL+"/hook/secret-token", time.Millisecond
			})
			e.src.call(start, "acme", "sess_1", 60000)
			e.eval()
			waitFor(t, "the attempts", func() bool { return len(h.got()) >= tc.requests })
			waitFor(t, "the log line", func() bool { return e.lines(tc.logged) == tc.lines })
			if n := len(h.got()); n != tc.requests {
				t.Errorf("%d requests; want %d", n, tc.requests)
			}
			for i, b := range h.got() {
				if b["status"] != "firing" {
					t.Errorf("request %d: status %v; want firing", i, b["status"])
				}
				a, _ := b["alert"].(map[string]any)
				scope, _ := a["scope"].(map[string]any)
				if a["name"] != alerts.SessionTokensHigh || a["severity"] != "P3" || scope["tenant"] != "acme" ||
					scope["session"] != "sess_1" || a["value"] != 60000.0 || a["threshold"] != 50000.0 ||
					a["since"] != "2026-03-10T09:00:00Z" || a["resolved_at"] != nil {
					t.Errorf("request %d: alert %v; want the firing session alert", i, a)
				}
				if h.types[i] != "application/json" {
					t.Errorf("request %d: Content-Type %q", i, h.types[i])
				}
			}
			for _, l := range e.logs.All() {
				if strings.Contains(l.Message+strings.Join(fieldStrings(l.ContextMap()), " "), "secret-token") {
					t.Errorf("log line %q %v holds the webhook URL's token", l.Message, l.ContextMap())
				}
			}
			if !tc.delivered {
				return
			}
			// The resolution follows, in order.
			e.clock.add(2 * time.Hour)
			e.eval()
			waitFor(t, "the resolved event", func() bool { return len(h.got()) > tc.requests })
			last := h.got()[tc.requests]
			if a, _ := last["alert"].(map[string]any); last["status"] != "resolved" || a["resolved_at"] != "2026-03-10T11:00:00Z" {
				t.Errorf("after the firing: %v; want the resolved event with resolved_at", last)
			}
		})
	}
}

func fieldStrings(m map[string]any) []string {
	var out []string
	for k, v := range m {
		b, _ := json.Marshal(v)
		out = append(out, k+"="+string(b))
	}
	return out
}

// TestWebhookHangs: a webhook that never answers holds up neither the
// evaluations (each returns while the first POST hangs) nor Close (it gives
// up after its drain time); a full queue drops its oldest event.
func TestWebhookHangs(t *testing.T) {
	arrived := make(chan string, 16)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Alert alerts.Alert `json:"alert"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		arrived <- ev.Alert.Scope.Session
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close (cleanups run last first)
	start := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	e := newEnv(t, time.UTC, start, func(c *alerts.Config) {
		c.Webhook, c.WebhookTimeout, c.QueueSize, c.DrainTimeout = srv.URL, time.Hour, 2, 50*time.Millisecond
	})
	e.src.call(start, "acme", "s1", 60000)
	e.eval()
	if got := <-arrived; got != "s1" {
		t.Fatalf("first POST for %q; want s1", got)
	}
	// s1's POST hangs; three more alerts fire, one evaluation each.
	for _, id := range []string{"s2", "s3", "s4"} {
		e.src.call(start, "acme", id, 60000)
		e.eval()
	}
	if n := len(e.firing(alerts.SessionTokensHigh)); n != 4 {
		t.Fatalf("%d firing; want 4 (evaluations go on while the webhook hangs)", n)
	}
	if n := e.lines("alert webhook queue full: the oldest event was dropped"); n != 1 {
		t.Errorf("%d queue-full lines; want 1", n)
	}
	for _, l := range e.logs.FilterMessageSnippet("queue full").All() {
		if !strings.Contains(l.ContextMap()["summary"].(string), "session s2 of tenant acme") {
			t.Errorf("dropped %v; want s2's event (the oldest queued)", l.ContextMap())
		}
	}
	e.close() // drains for 50 ms, then gives up on the hanging POST and the queue
	if e.lines("alert events not sent to the webhook: shutdown drain time is up") != 1 &&
		e.lines("alert event not sent to the webhook: shutdown drain time is up") == 0 {
		t.Errorf("no line says events were not sent at shutdown")
	}
}

func TestWebhookURLChecked(t *testing.T) {
	dir := t.TempDir()
	db, err := boltdb.Open(dir+"/agentd.db", boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, u := range []string{"hooks.example/x?token=s3cr3t", "ftp://hooks.example/s3cr3t", "http://", "://s3cr3t"} {
		_, err := alerts.New(context.Background(), alerts.Config{Source: newSource(time.UTC, time.Now), Store: db.Alerts(), Webhook: u})
		if err == nil || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("New(Webhook: %q) = %v; want an error that does not repeat the URL", u, err)
		}
	}
}
