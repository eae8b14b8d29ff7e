package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/httpapi"
	"github.com/agentd/agentd/internal/session"
)

// guard bounds every wait of these tests on the server: reaching it is a
// failure (the server kept waiting on a client), never a measurement.
const guard = 10 * time.Second

// rawConn opens a TCP connection to f's server and writes req to it as is.
func (f *fixture) rawConn(req string) (net.Conn, *bufio.Reader) {
	f.t.Helper()
	c, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, req); err != nil {
		f.t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(guard))
	return c, bufio.NewReader(c)
}

// readResponse reads one response from br; the server not answering within
// the guard fails the test.
func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &body)
	return resp, body
}

// wantClosed fails unless the server closes c (within the guard).
func wantClosed(t *testing.T, br *bufio.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, br)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server kept the connection open")
	}
}

func code(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestEarlyAnswerClosesConnection: a request answered before its body has
// arrived is answered at once with Connection: close, and the connection
// ends: net/http does not wait for a body the client may never send. A
// request whose body was read keeps its connection.
//
// On the old code the 100-byte and 100 kB cases got no answer at all
// (net/http read the rest of the body, with no deadline, before writing
// the 401); the 10 MB case passed (net/http gives up on bodies over
// 256 kB by itself).
func TestEarlyAnswerClosesConnection(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		req        string
		wantStatus int
		wantClose  bool
	}{
		{"no key, 100 bytes announced", "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", 401, true},
		{"no key, 100 kB announced", "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 401, true},
		{"no key, 10 MB announced", "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n", 401, true},
		{"no key, chunked", "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 401, true},
		{"unknown route", "POST /v1/nowhere HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + acmeKey + "\r\nContent-Length: 100\r\n\r\n", 404, true},
		{"body read: kept alive", "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + acmeKey + "\r\nX-Agentd-User: alice\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 201, false},
		{"bad JSON, body read: kept alive", "POST /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + acmeKey + "\r\nX-Agentd-User: alice\r\nContent-Length: 2\r\n\r\n{]", 400, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, br := f.rawConn(tc.req)
			resp, body := readResponse(t, br)
			if resp.StatusCode != tc.wantStatus || resp.Close != tc.wantClose {
				t.Fatalf("got %d, Connection: close %v (%v); want %d, %v", resp.StatusCode, resp.Close, body, tc.wantStatus, tc.wantClose)
			}
			if tc.wantClose {
				wantClosed(t, br)
				return
			}
			// The same connection serves the next request.
			if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			if resp, _ := readResponse(t, br); resp.StatusCode != 200 {
				t.Errorf("next request on the kept connection = %d", resp.StatusCode)
			}
		})
	}
}

// TestStalledBodyTimesOut: a body that does not arrive within the read
// timeout (counted from the request's first byte) gets 408 and a closed
// connection. On the old code it was never answered: decode gave up after
// its own 30 s, cleared the deadline, and net/http then waited for the rest
// of the body with none.
func TestStalledBodyTimesOut(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) { c.Timeouts.Read = 200 * time.Millisecond })
	id := f.create(acmeKey)
	_, br := f.rawConn("POST /v1/sessions/" + id + "/approvals/call_1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + acmeKey +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"decision\":")
	resp, body := readResponse(t, br)
	if resp.StatusCode != http.StatusRequestTimeout || code(body) != "request_timeout" || !resp.Close {
		t.Fatalf("stalled body = %d %v, Connection: close %v; want 408 request_timeout, closed", resp.StatusCode, body, resp.Close)
	}
	wantClosed(t, br)
}

// TestShutdownCutsStalledReads: Shutdown does not wait for clients that are
// not sending (a body that never comes, a header cut in the middle), while a
// turn in flight is still answered, ended by the pool's shutdown rather than
// by a cut connection. Without the cut, srv.Shutdown waits for the stalled
// body until the read timeout (30 s), past this test's shutdown deadline.
func TestShutdownCutsStalledReads(t *testing.T) {
	f := newFixture(t)
	f.model.Default = func(agent.Request) agenttest.Step { return agenttest.Step{Text: "working", Block: true} }
	id := f.create(acmeKey)
	turn := make(chan reply, 1)
	go func() { turn <- f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"long"}`) }()
	waitFor(t, func() bool { return len(f.model.Requests()) == 1 })

	_, body := f.rawConn("POST /v1/sessions/" + id + "/approvals/call_1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + acmeKey +
		"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
	_, header := f.rawConn("GET /v1/sessions HTTP/1.1\r\nHost: x\r\nAuthor")

	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	if err := f.pool.Shutdown(ctx); err != nil {
		t.Fatalf("pool shutdown: %v", err)
	}
	if err := f.api.Shutdown(ctx); err != nil {
		t.Fatalf("API shutdown: %v (it waited on a client that is not sending)", err)
	}
	r := <-turn
	if r.status != 200 || r.body["outcome"].(map[string]any)["cancel_reason"] != string(agent.ReasonShutdown) {
		t.Errorf("turn in flight = %d %s; want 200, cancelled by shutdown", r.status, r.raw)
	}
	// The stalled body got 503 or a closed connection; the half header a
	// closed connection.
	if resp, err := http.ReadResponse(body, nil); err == nil {
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("stalled body answered %d; want 503 or a closed connection", resp.StatusCode)
		}
		resp.Body.Close()
	}
	wantClosed(t, body)
	wantClosed(t, header)
}

// smallBuffers makes the server's socket buffers small, so that a client
// that stops reading blocks the server's writes after a few kilobytes
// instead of the megabytes loopback buffers take.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestSSEStalledReader: a client that stops reading its stream fails the
// server's next write after the write timeout; the turn then ends as
// client-disconnected instead of blocking on the write for ever (which it
// did on the old code: the test's wait for the turn to end ran out).
func TestSSEStalledReader(t *testing.T) {
	f := newFixtureOn(t, func(c *httpapi.Config) { c.Timeouts.Write = 100 * time.Millisecond },
		func(l net.Listener) net.Listener { return smallBuffers{l} })
	f.model.ChunkSize = 1024
	f.model.Default = func(agent.Request) agenttest.Step { return agenttest.Step{Text: strings.Repeat("x", 4<<20)} }
	id := f.create(acmeKey)

	c, br := f.rawConn("")
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	const msg = `{"content":"go"}`
	fmt.Fprintf(c, "POST /v1/sessions/%s/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: text/event-stream\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", id, acmeKey, len(msg), msg)
	// Read the first event, then read nothing more.
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream = %v %v", resp, err)
	}
	waitFor(t, func() bool { _, running := f.pool.Live(); return len(f.model.Requests()) == 1 && running == 0 })
	s, err := f.pool.Get(t.Context(), "acme", session.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	if o := s.Turns[0].Outcome; o.Status != agent.StatusCancelled || o.CancelReason != agent.ReasonClientDisconnected {
		t.Errorf("outcome = %+v; want cancelled by client-disconnected", o)
	}
}

// TestSSEOutlivesWriteTimeout: the write timeout bounds each write, not the
// stream: a turn that streams (here, heartbeats while the model thinks) for
// many times the write timeout is delivered whole. A server-wide
// WriteTimeout alone would cut it off after 100 ms.
func TestSSEOutlivesWriteTimeout(t *testing.T) {
	f := newFixtureWith(t, func(c *httpapi.Config) { c.Timeouts.Write = 100 * time.Millisecond })
	release := make(chan struct{})
	f.model.Default = func(agent.Request) agenttest.Step { <-release; return agenttest.Reply("thought long") }
	id := f.create(acmeKey)
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/v1/sessions/"+id+"/messages", strings.NewReader(`{"content":"go"}`))
	req.Header.Set("Authorization", "Bearer "+acmeKey)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	beats, last := 0, ""
	for sc.Scan() {
		line := sc.Text()
		if line == ": keep-alive" {
			// 20 heartbeats of 20 ms: four times the write timeout.
			if beats++; beats == 20 {
				close(release)
			}
		}
		if strings.HasPrefix(line, "event: ") {
			last = line
		}
	}
	if beats < 20 || last != "event: done" {
		t.Errorf("stream ended after %d heartbeats with %q (%v); want 20 heartbeats and a final done", beats, last, sc.Err())
	}
	if beats < 20 {
		close(release)
	}
}

// TestTurnOutlivesReadTimeout: the read timeout bounds the request, not
// the answer. Once the body has arrived, net/http keeps a read pending on
// the connection to notice a client that goes away; if the read deadline
// of the request still applied to it, a turn longer than the read timeout
// would be cancelled as client-disconnected when that read timed out.
func TestTurnOutlivesReadTimeout(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			f := newFixtureWith(t, func(c *httpapi.Config) { c.Timeouts.Read = 100 * time.Millisecond })
			started, release := make(chan struct{}), make(chan struct{})
			f.model.Default = func(agent.Request) agenttest.Step {
				close(started)
				<-release
				return agenttest.Reply("thought long")
			}
			id := f.create(acmeKey)
			done := make(chan reply, 1)
			go func() {
				if stream {
					req, _ := http.NewRequest("POST", f.srv.URL+"/v1/sessions/"+id+"/messages", strings.NewReader(`{"content":"go"}`))
					req.Header.Set("Authorization", "Bearer "+acmeKey)
					req.Header.Set("Accept", "text/event-stream")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						done <- reply{status: -1, raw: err.Error()}
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					done <- reply{status: resp.StatusCode, raw: string(b)}
					return
				}
				done <- f.do("POST", "/v1/sessions/"+id+"/messages", acmeKey, `{"content":"go"}`)
			}()
			<-started
			// Wait until the read timeout has passed many times over: the
			// request's deadline must not reach the turn.
			time.Sleep(10 * 100 * time.Millisecond)
			close(release)
			r := <-done
			if r.status != 200 || !strings.Contains(r.raw, "thought long") {
				t.Errorf("turn longer than the read timeout = %d %.300s; want 200 with the reply", r.status, r.raw)
			}
		})
	}
}
