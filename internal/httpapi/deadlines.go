package httpapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Timeouts bound how long the server waits on a client, so that a client
// that stops sending or reading holds neither a goroutine nor a drain.
// A zero field takes its default.
type Timeouts struct {
	// ReadHeader bounds a request's header, from its first byte. Default 10 s.
	ReadHeader time.Duration
	// Read bounds a whole request, header and body, from its first byte:
	// it applies before authentication. Default 30 s.
	Read time.Duration
	// Write bounds one write to the client: it is extended before every
	// write, so a turn or a Server-Sent Events stream may last as long as
	// it needs while a client that stops reading is cut off. Default 30 s.
	Write time.Duration
	// Idle bounds the wait for the next request on a kept-alive
	// connection. Default 2 min.
	Idle time.Duration
}

// Defaults of Timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

func (t *Timeouts) setDefaults() {
	for _, f := range []struct {
		d   *time.Duration
		def time.Duration
	}{{&t.ReadHeader, DefaultReadHeaderTimeout}, {&t.Read, DefaultReadTimeout}, {&t.Write, DefaultWriteTimeout}, {&t.Idle, DefaultIdleTimeout}} {
		if *f.d <= 0 {
			*f.d = f.def
		}
	}
}

// HTTPServer returns the http.Server that serves s with its Timeouts (the
// same one at every call). Serve it on a listener and end it with
// s.Shutdown.
//
// There is deliberately no cap on a response as a whole (WriteTimeout is
// re-armed before each write, see loggingWriter): a turn may take minutes
// before it answers, and a stream lasts as long as its turn. Hijacked
// connections (the ACP WebSocket) have their deadlines cleared by net/http
// and keep themselves alive with pings.
func (s *Server) HTTPServer() *http.Server {
	s.httpOnce.Do(func() {
		t := s.cfg.Timeouts
		s.http = &http.Server{
			Handler:           s,
			ReadHeaderTimeout: t.ReadHeader,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Write,
			IdleTimeout:       t.Idle,
			ConnState:         s.conns.state,
			ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey, c) },
			ErrorLog:          zap.NewStdLog(s.log.WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))),
		}
	})
	return s.http
}

// Shutdown drains s (see Drain) and shuts its HTTPServer down: it stops
// listening, closes idle connections, ends at once every request whose
// header or body has not fully arrived (the client gets 503 shutting_down
// or a closed connection), and waits, until ctx ends, for the responses
// already under way. Call it once the running turns have ended
// (session.Pool.Shutdown): their responses are among those it waits for.
// Requests forwarded to another member of the fleet end at once, and their
// owner sees the client go (the turn ends "client-disconnected").
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	if s.fwd != nil {
		// Forwarded requests end like the local turns before them: their
		// owner sees the client go (client-disconnected).
		s.fwd.close()
	}
	srv := s.HTTPServer()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	// net/http's Shutdown would wait for a stalled upload until the read
	// deadline (and for a connection that has not finished its first
	// header for 5 s): neither carries anything worth waiting for once
	// new turns are refused.
	s.conns.cutReads()
	return <-done
}

type connCtxKey struct{}

// connKey holds a request's net.Conn in its context (HTTPServer's ConnContext).
var connKey connCtxKey

// conns tracks the connections that may be waiting on their client: those
// still reading their first request's header, and those whose request body
// has not fully arrived (in the handler, or in net/http's read of the rest
// of the body after it). Shutdown cuts their reads short; others are left
// to finish (their turn's response) or closed by net/http (idle ones).
type conns struct {
	mu      sync.Mutex
	fresh   map[net.Conn]struct{}     // StateNew: no request read yet
	bodies  map[net.Conn]*requestBody // StateActive with a body, until the request is done
	cutting bool                      // Shutdown has begun: cut newcomers too
}

func (c *conns) state(nc net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st != http.StateNew {
		delete(c.fresh, nc)
		if st != http.StateActive { // idle, closed or hijacked: the request is done
			delete(c.bodies, nc)
		}
		return
	}
	if c.cutting {
		_ = nc.SetReadDeadline(time.Now())
		return
	}
	if c.fresh == nil {
		c.fresh = map[net.Conn]struct{}{}
	}
	c.fresh[nc] = struct{}{}
}

// track records that nc's current request has body b, until the
// connection leaves StateActive.
func (c *conns) track(nc net.Conn, b *requestBody) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bodies == nil {
		c.bodies = map[net.Conn]*requestBody{}
	}
	c.bodies[nc] = b
	if c.cutting && !b.done.Load() {
		_ = nc.SetReadDeadline(time.Now())
	}
}

// cutReads makes every pending read of a tracked connection fail now. A
// connection whose body has fully arrived is left alone: net/http's
// background read on it only watches for the client going away, and
// cutting it would cancel the request's context.
func (c *conns) cutReads() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutting = true
	now := time.Now()
	for nc := range c.fresh {
		_ = nc.SetReadDeadline(now)
	}
	for nc, b := range c.bodies {
		if !b.done.Load() {
			_ = nc.SetReadDeadline(now)
		}
	}
}

// requestBody is a request's body that knows whether it has been read to
// its end: an answer sent before that closes the connection (see
// loggingWriter.WriteHeader).
type requestBody struct {
	io.ReadCloser
	done atomic.Bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.done.Store(true)
	}
	return n, err
}

// earlyCloseGrace bounds net/http's read of the rest of a body after an
// answer sent before it arrived (it reads up to 256 KiB before closing, so
// that a client that did send its body gets a clean close rather than a
// reset that could lose the answer). A client that sends nothing is not
// waited on for longer; 500 ms is net/http's own rstAvoidanceDelay.
const earlyCloseGrace = 500 * time.Millisecond

// isTimeout reports whether err is a read that hit its deadline.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
