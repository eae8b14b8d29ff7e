package acp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// Cancellation reasons of ACP (Agentao's vocabulary, besides agent's).
const (
	ReasonSessionCancel    = "acp-session-cancel" // session/cancel or $/cancel_request
	ReasonConnectionClosed = "connection-closed"  // the client went away
)

// ProtocolVersion is the ACP version agentd speaks.
const ProtocolVersion = 1

// Config tunes a Server. The zero value is usable.
type Config struct {
	// Models returns the model catalog, offered as the "model" config
	// option. Nil: only each session's own model is offered.
	Models func() []string
	// Version is agentd's version, sent in agentInfo.
	Version string
	// MaxMessageBytes bounds one incoming message; default
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxInFlight bounds the requests of one connection handled at once;
	// more get -32600. Default 64.
	MaxInFlight int
	// WriteTimeout bounds one WebSocket write; a client that does not read
	// for that long is disconnected. Default 30 s.
	WriteTimeout time.Duration
	// Heartbeat is the interval of WebSocket pings, which keep proxies from
	// closing a connection that waits on a long turn. Default 30 s.
	Heartbeat time.Duration
	Logger    *zap.Logger
}

// Defaults of Config.
const (
	DefaultMaxInFlight  = 64
	DefaultWriteTimeout = 30 * time.Second
	DefaultHeartbeat    = 30 * time.Second
)

// ErrShuttingDown is returned by Serve once Shutdown has begun.
var ErrShuttingDown = errors.New("acp: agentd is shutting down")

// Server serves ACP connections over a pool.
type Server struct {
	pool *session.Pool
	cfg  Config
	log  *zap.Logger

	mu      sync.Mutex
	closing bool
	conns   map[*conn]struct{}
	serving sync.WaitGroup
}

// New returns a Server over pool.
func New(pool *session.Pool, cfg Config) *Server {
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Server{pool: pool, cfg: cfg, log: cfg.Logger.Named("acp"), conns: map[*conn]struct{}{}}
}

// Peer is who a connection acts for.
type Peer struct {
	Tenant    string
	User      string
	Transport string // for logs: "stdio", "websocket"
}

// Serve runs one ACP connection over t for peer until the client goes away
// (EOF, a closed socket, any read or write error), ctx is done or Shutdown
// is called. It then cancels the connection's running turns
// ("connection-closed", or "shutdown" for ctx and Shutdown), waits until
// every handler has answered and every turn is saved, closes t and returns
// nil. It returns ErrShuttingDown at once, closing t, once Shutdown has
// begun.
func (s *Server) Serve(ctx context.Context, t Transport, peer Peer) error {
	c := s.newConn(t, peer)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = t.Close()
		return ErrShuttingDown
	}
	s.conns[c] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.serving.Done()
	}()
	c.log.Info("acp connection opened")
	if err := c.serve(ctx); err != nil {
		c.log.Info("acp connection closed", zap.String("reason", c.reason()), zap.NamedError("transport_error", err))
	} else {
		c.log.Info("acp connection closed", zap.String("reason", c.reason()))
	}
	return nil
}

// Shutdown refuses new connections, ends every connection (its running
// turns are cancelled with reason "shutdown"; clients get their prompts
// answered with stopReason "cancelled") and waits until each has closed,
// or ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.end(agent.ReasonShutdown)
	}
	done := make(chan struct{})
	go func() { s.serving.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("acp: %d connection(s) did not close: %w", len(conns), context.Cause(ctx))
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// conn is one client connection.
type conn struct {
	s    *Server
	t    Transport
	peer Peer
	log  *zap.Logger

	// ctx ends, with a CancelError cause, when the connection ends; every
	// turn of the connection runs under it.
	ctx    context.Context
	cancel context.CancelCauseFunc

	done    chan struct{} // closed by end: the read loop stops
	endOnce sync.Once
	why     string // the reason given to end

	wmu sync.Mutex // one write at a time, in call order

	mu          sync.Mutex
	ended       bool // no new handlers, calls or prompts
	initialized bool
	inflight    int
	handlers    sync.WaitGroup
	prompts     map[session.ID]*prompt       // running prompts of this connection
	loading     map[session.ID]chan struct{} // session/load replays in progress; closed when done
	calls       map[string]chan message      // server→client requests waiting for their response
}

func (s *Server) newConn(t Transport, peer Peer) *conn {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &conn{
		s: s, t: t, peer: peer, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log:     s.log.With(zap.String("tenant", peer.Tenant), zap.String("user", peer.User), zap.String("transport", peer.Transport)),
		prompts: map[session.ID]*prompt{}, loading: map[session.ID]chan struct{}{}, calls: map[string]chan message{},
	}
}

// end stops the connection for reason; the first reason wins.
func (c *conn) end(reason string) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.why = reason
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *conn) reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.why
}

type frame struct {
	data []byte
	err  error
}

// serve runs the read loop, then cleans up; it returns what ended the
// transport when that was not a plain EOF.
func (c *conn) serve(ctx context.Context) error {
	readCtx, stopRead := context.WithCancel(context.Background())
	defer stopRead()
	frames := make(chan frame)
	go func() {
		for {
			data, err := c.t.Read(readCtx)
			select {
			case frames <- frame{data, err}:
			case <-readCtx.Done():
				return
			}
			var tl *TooLargeError
			if err != nil && !errors.As(err, &tl) {
				return
			}
		}
	}()
	var readErr error
loop:
	for {
		select {
		case f := <-frames:
			var tl *TooLargeError
			switch {
			case f.err == nil:
				c.dispatch(f.data)
			case errors.As(f.err, &tl):
				c.send(errorResponse{JSONRPC: "2.0", ID: nullID, Error: &Error{Code: CodeParseError, Message: "Parse error: " + tl.Error()}})
			default:
				if !errors.Is(f.err, io.EOF) {
					readErr = f.err
				}
				c.end(ReasonConnectionClosed)
				break loop
			}
		case <-ctx.Done():
			c.end(agent.ReasonShutdown)
			break loop
		case <-c.done:
			break loop
		}
	}
	c.finish()
	_ = c.t.Close() // a WebSocket's close handshake needs the reader: stop it after
	stopRead()
	return readErr
}

// finish cancels what runs for the connection and waits for its handlers:
// prompts are answered (if the transport still takes writes) once their
// turns are saved.
func (c *conn) finish() {
	reason := c.reason()
	c.mu.Lock()
	c.ended = true
	calls := c.calls
	c.calls = map[string]chan message{}
	c.mu.Unlock()
	c.cancel(agent.Cancelled(reason))
	for _, ch := range calls {
		close(ch) // a permission nobody will answer: rejected
	}
	c.handlers.Wait()
}

// dispatch handles one incoming message. Quick methods run here, in order;
// the others run in their own goroutines.
func (c *conn) dispatch(data []byte) {
	m, answerID, perr := parse(data)
	if perr != nil {
		c.send(errorResponse{JSONRPC: "2.0", ID: answerID, Error: perr})
		return
	}
	if !m.isMethod {
		c.route(m)
		return
	}
	isRequest := m.ID != nil
	switch m.Method {
	case "initialize":
		if isRequest {
			res, err := c.initialize(m.Params)
			c.answer(m.ID, res, err)
		}
		return
	case "session/cancel":
		err := c.cancelSession(m.Params)
		if isRequest {
			c.answer(m.ID, nil, err)
		}
		return
	case "$/cancel_request":
		c.cancelRequest(m.Params)
		return
	}
	h := c.handler(m.Method)
	if !isRequest {
		if h == nil {
			c.log.Debug("ignored notification", zap.String("method", m.Method))
		}
		return
	}
	if h == nil {
		c.answer(m.ID, nil, &Error{Code: CodeMethodNotFound, Message: "Method not found: " + m.Method})
		return
	}
	c.mu.Lock()
	switch {
	case !c.initialized:
		c.mu.Unlock()
		c.answer(m.ID, nil, errInvalidRequest("call initialize first"))
		return
	case c.ended:
		c.mu.Unlock()
		return
	case c.inflight >= c.s.cfg.MaxInFlight:
		c.mu.Unlock()
		c.answer(m.ID, nil, errInvalidRequest(fmt.Sprintf("more than %d requests in flight on this connection", c.s.cfg.MaxInFlight)))
		return
	}
	c.mu.Unlock()
	// The checks and registrations run here, in message order (a cancel
	// read after a prompt finds it; a prompt read after a load waits for
	// its replay); the work runs in its own goroutine.
	var w work
	if _, err := c.safely(m.Method, func() (any, *Error) {
		var err *Error
		w, err = h(m.ID, m.Params)
		return nil, err
	}); err != nil {
		c.answer(m.ID, nil, err)
		return
	}
	c.mu.Lock()
	c.inflight++
	c.handlers.Add(1)
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			c.inflight--
			c.mu.Unlock()
			c.handlers.Done()
		}()
		res, err := c.safely(m.Method, w.run)
		c.answer(m.ID, res, err)
		if w.answered != nil {
			w.answered()
		}
	}()
}

// handlerFunc validates a request and registers what must be known before
// the next message is read; it returns the work that answers it.
type handlerFunc func(id json.RawMessage, params json.RawMessage) (work, *Error)

// work is what answers a request: run does the work, in a goroutine of its
// own, and returns the result; answered, if set, runs once the response is
// written.
type work struct {
	run      func() (any, *Error)
	answered func()
}

func (c *conn) handler(method string) handlerFunc {
	switch method {
	case "session/new":
		return c.newSession
	case "session/load":
		return c.loadSession
	case "session/prompt":
		return c.prompt
	case "session/set_config_option":
		return c.setConfigOption
	}
	return nil
}

// safely runs a handler and turns a panic into an internal error.
func (c *conn) safely(method string, fn func() (any, *Error)) (res any, rerr *Error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("acp handler panicked", zap.String("method", method), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			res, rerr = nil, &Error{Code: CodeInternalError, Message: "Internal error; see the agentd log"}
		}
	}()
	return fn()
}

// answer sends the response to request id.
func (c *conn) answer(id json.RawMessage, result any, err *Error) {
	if err != nil {
		c.send(errorResponse{JSONRPC: "2.0", ID: id, Error: err})
		return
	}
	c.send(response{JSONRPC: "2.0", ID: id, Result: result})
}

// notify sends a notification.
func (c *conn) notify(method string, params any) error {
	return c.send(request{JSONRPC: "2.0", Method: method, Params: params})
}

// send writes one message. A failed write ends the connection: the client
// is gone or not reading.
func (c *conn) send(v any) error {
	data, err := encode(v)
	if err != nil {
		c.log.Error("encode acp message", zap.Error(err))
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.t.Write(context.Background(), data); err != nil {
		c.log.Debug("acp write failed", zap.Error(err))
		c.end(ReasonConnectionClosed)
		return err
	}
	return nil
}

// call sends a request to the client and returns the channel its response
// arrives on (closed, without a response, if the connection ends first).
func (c *conn) call(method string, params any) (string, <-chan message, error) {
	id := newRequestID()
	ch := make(chan message, 1)
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return "", nil, errors.New("the connection is closing")
	}
	c.calls[id] = ch
	c.mu.Unlock()
	if err := c.send(request{JSONRPC: "2.0", ID: id, Method: method, Params: params}); err != nil {
		c.forget(id)
		return "", nil, err
	}
	return id, ch, nil
}

// forget drops a pending request; it reports whether it was still pending.
func (c *conn) forget(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.calls[id]
	delete(c.calls, id)
	return ok
}

// route hands a response to the request waiting for it.
func (c *conn) route(m message) {
	var id string
	if err := json.Unmarshal(m.ID, &id); err != nil {
		c.log.Debug("response to a request agentd did not send", zap.ByteString("id", m.ID))
		return
	}
	c.mu.Lock()
	ch, ok := c.calls[id]
	delete(c.calls, id)
	c.mu.Unlock()
	if !ok {
		c.log.Debug("response to no pending request", zap.String("id", id))
		return
	}
	ch <- m
}
