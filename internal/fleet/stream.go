package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// raftProtocol is the Upgrade token of the Raft stream on the API port.
const raftProtocol = "agentd-raft/1"

// streamLayer is hashicorp/raft's StreamLayer over the HTTP listener: a
// peer dials the member's HTTP address and asks for an upgrade of
// GET /cluster/v1/raft with the cluster key; once answered 101 the
// connection is the raft NetworkTransport's. Incoming ones arrive by the
// handler (serveUpgrade), which hands the hijacked connection to Accept.
// Written here because raft's own TCP transport wants a port of its own,
// and the fleet keeps one port per replica.
type streamLayer struct {
	addr net.Addr // this member's advertised address
	key  string
	dial func(ctx context.Context, network, addr string) (net.Conn, error)

	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	live map[net.Conn]struct{} // every stream, closed by Close
}

func newStreamLayer(advertise, key string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *streamLayer {
	return &streamLayer{addr: addrString(advertise), key: key, dial: dial, conns: make(chan net.Conn),
		closed: make(chan struct{}), live: map[net.Conn]struct{}{}}
}

// addrString is a net.Addr of a "host:port" that may name a host.
type addrString string

func (a addrString) Network() string { return "tcp" }
func (a addrString) String() string  { return string(a) }

// Accept implements net.Listener: the next upgraded connection.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener; it also closes every stream, accepted or
// dialed (the transport does not close the accepted ones).
func (l *streamLayer) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.mu.Lock()
		live := make([]net.Conn, 0, len(l.live))
		for c := range l.live {
			live = append(live, c)
		}
		l.mu.Unlock()
		for _, c := range live {
			c.Close()
		}
	})
	return nil
}

func (l *streamLayer) Addr() net.Addr { return l.addr }

// track wraps c so that Close closes it, and forgets it when it closes.
func (l *streamLayer) track(c net.Conn) (net.Conn, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.closed:
		return nil, false
	default:
	}
	tc := &trackedConn{Conn: c, l: l}
	l.live[tc] = struct{}{}
	return tc, true
}

type trackedConn struct {
	net.Conn
	l    *streamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.live, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// bufferedConn reads first what a bufio.Reader holds of the connection:
// bytes that arrived with the upgrade and must not be lost.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Dial implements raft.StreamLayer: TCP to the member, the upgrade
// request, and its 101.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-l.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	conn, err := l.dial(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	br, err := upgrade(ctx, conn, string(address), l.key)
	if err != nil {
		conn.Close()
		return nil, err
	}
	var c net.Conn = conn
	if br.Buffered() > 0 {
		c = &bufferedConn{Conn: conn, r: br}
	}
	tc, ok := l.track(c)
	if !ok {
		c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

// upgrade asks for the Raft stream on conn and reads the answer; the
// returned reader may hold bytes that followed the 101.
func upgrade(ctx context.Context, conn net.Conn, host, key string) (*bufio.Reader, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req := "GET " + pathRaft + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: Upgrade\r\nUpgrade: " + raftProtocol +
		"\r\nAuthorization: Bearer " + key + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, fmt.Errorf("cluster upgrade to %s: %w", host, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster upgrade to %s: %w", host, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("cluster upgrade to %s refused: %s: %s", host, resp.Status, strings.TrimSpace(string(msg)))
	}
	_ = conn.SetDeadline(time.Time{})
	return br, nil
}

// serveUpgrade answers GET /cluster/v1/raft (already authenticated): it
// switches protocols and hands the connection to Accept.
func (l *streamLayer) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if !headerHas(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), raftProtocol) {
		w.Header().Set("Upgrade", raftProtocol)
		writeErr(w, http.StatusUpgradeRequired, "upgrade_required", "this route is the fleet's Raft stream: Connection: Upgrade, Upgrade: "+raftProtocol)
		return
	}
	select {
	case <-l.closed:
		writeErr(w, http.StatusServiceUnavailable, "shutting_down", "this replica's Raft transport is closed")
		return
	default:
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "internal", "cannot take over the connection: "+err.Error())
		return
	}
	_ = conn.SetDeadline(time.Time{}) // the server's read and write timeouts are for requests, not streams
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + raftProtocol + "\r\n\r\n"); err != nil {
		conn.Close()
		return
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return
	}
	var c net.Conn = conn
	if brw.Reader.Buffered() > 0 {
		c = &bufferedConn{Conn: conn, r: brw.Reader}
	}
	tc, ok := l.track(c)
	if !ok {
		c.Close()
		return
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case l.conns <- tc:
	case <-l.closed:
		tc.Close()
	case <-t.C: // raft is not accepting (not started yet)
		tc.Close()
	}
}

// headerHas tells whether a comma-separated header has token.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
