package fleet

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/boltdb"
)

// cluster is a Node's handler on a real loopback server, without Raft
// started: enough for the stream layer and the key check.
func cluster(t *testing.T) (*Node, *httptest.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db, err := boltdb.Open(dir+"/agentd.db", boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	n, err := New(t.Context(), Config{Node: "n1", Peers: "n1=http://" + ln.Addr().String(), Key: testKey, DataDir: dir,
		Directory: db.Directory(), Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: n.Handler()}}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		n.Close()
	})
	return n, srv
}

// bare is a stream layer alone behind the cluster key check, on a real
// loopback server (a Node's transport would take its connections).
func bare(t *testing.T) (*streamLayer, *httptest.Server) {
	t.Helper()
	l := newStreamLayer("127.0.0.1:1", testKey, (&net.Dialer{}).DialContext)
	n := &Node{cfg: Config{Key: testKey}, log: zaptest.NewLogger(t)}
	srv := httptest.NewServer(n.authed(l.serveUpgrade))
	t.Cleanup(func() {
		l.Close()
		srv.Close()
	})
	return l, srv
}

func TestStreamUpgrade(t *testing.T) {
	n, srv := bare(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := n.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	c, err := n.Dial(raftAddr(srv), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	var s net.Conn
	select {
	case s = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the upgraded connection never reached Accept")
	}
	defer s.Close()
	for _, tc := range []struct {
		from, to net.Conn
		msg      string
	}{{c, s, "client to server"}, {s, c, "server to client"}} {
		if _, err := io.WriteString(tc.from, tc.msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(tc.msg))
		if _, err := io.ReadFull(tc.to, buf); err != nil || string(buf) != tc.msg {
			t.Errorf("read %q, %v; want %q", buf, err, tc.msg)
		}
	}
}

func TestStreamRefusals(t *testing.T) {
	n, srv := cluster(t)
	tests := []struct {
		name   string
		header map[string]string
		status int
		code   string
	}{
		{"no key", map[string]string{"Connection": "Upgrade", "Upgrade": raftProtocol}, 401, "unauthorized"},
		{"wrong key", map[string]string{"Connection": "Upgrade", "Upgrade": raftProtocol, "Authorization": "Bearer wrong-key-0123456789abc"}, 401, "unauthorized"},
		{"key as another scheme", map[string]string{"Connection": "Upgrade", "Upgrade": raftProtocol, "Authorization": "Basic " + testKey}, 401, "unauthorized"},
		{"no upgrade", map[string]string{"Authorization": "Bearer " + testKey}, 426, "upgrade_required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+pathRaft, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body errorBody
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Error.Code != tc.code {
				t.Errorf("GET %s = %d %q; want %d %q", pathRaft, resp.StatusCode, body.Error.Code, tc.status, tc.code)
			}
		})
	}
	// Every cluster route needs the key, whoami included.
	resp, err := http.Get(srv.URL + pathWhoami)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("GET %s without the key = %d; want 401", pathWhoami, resp.StatusCode)
	}
	// A dialer with the wrong key is refused with the reason.
	bad := newStreamLayer("127.0.0.1:1", "wrong-key-0123456789abc", n.dialContext)
	defer bad.Close()
	if _, err := bad.Dial(raftAddr(srv), 5*time.Second); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("Dial with a wrong key = %v; want refused with 401", err)
	}
}

func raftAddr(srv *httptest.Server) raft.ServerAddress {
	return raft.ServerAddress(srv.Listener.Addr().String())
}

// TestStreamBytesAfterUpgrade: bytes that travel in the same packet as the
// upgrade (either way) are not lost in a bufio.Reader.
func TestStreamBytesAfterUpgrade(t *testing.T) {
	n, srv := bare(t)
	// Client side: the request and the first bytes of the stream at once.
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := n.Accept(); err == nil {
			accepted <- c
		}
	}()
	raw, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_, _ = io.WriteString(raw, "GET "+pathRaft+" HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: "+raftProtocol+
		"\r\nAuthorization: Bearer "+testKey+"\r\n\r\nearly-bytes")
	br := bufio.NewReader(raw)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade = %v, %v; want 101", resp, err)
	}
	select {
	case s := <-accepted:
		defer s.Close()
		buf := make([]byte, len("early-bytes"))
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "early-bytes" {
			t.Errorf("server read %q, %v; want the bytes sent with the request", buf, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not accepted")
	}

	// Dialer side: a 101 followed at once by the first bytes of the stream.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		req, err := http.ReadRequest(r)
		if err != nil || req.Header.Get("Authorization") != "Bearer "+testKey {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+raftProtocol+"\r\n\r\nfirst-bytes")
		time.Sleep(time.Second)
	}()
	c, err := n.Dial(raft.ServerAddress(ln.Addr().String()), 5*time.Second)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	buf := make([]byte, len("first-bytes"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "first-bytes" {
		t.Errorf("dialer read %q, %v; want the bytes that followed the 101", buf, err)
	}
}
