package acp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	sdk "github.com/coder/acp-go-sdk"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// Cancellation reasons of ACP (Agentao's vocabulary, besides agent's).
const (
	ReasonSessionCancel    = "acp-session-cancel" // session/cancel, session/close or $/cancel_request
	ReasonConnectionClosed = "connection-closed"  // the client went away
)

// ProtocolVersion is the ACP version agentd speaks.
const ProtocolVersion = sdk.ProtocolVersionNumber

// Config tunes a Server. The zero value is usable.
type Config struct {
	// Models returns the model catalog, offered as the "model" config
	// option. Nil: only each session's own model is offered.
	Models func() []string
	// Version is agentd's version, sent in agentInfo.
	Version string
	// MaxMessageBytes bounds one incoming message; default and maximum
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
	// PongTimeout is how long a ping waits for its pong; a client that
	// does not answer in time is disconnected. Default 30 s.
	PongTimeout time.Duration
	// ListPageSize is the number of sessions in one page of session/list.
	// Default 100.
	ListPageSize int
	// Fleet, when set, is the replica's view of the fleet: a WebSocket
	// connection relays the requests about sessions other replicas own
	// to their owner (relay.go). Nil: every session is this replica's.
	Fleet  Fleet
	Logger *zap.Logger
}

// Defaults of Config.
const (
	DefaultMaxInFlight  = 64
	DefaultWriteTimeout = 30 * time.Second
	DefaultHeartbeat    = 30 * time.Second
	DefaultPongTimeout  = 30 * time.Second
	DefaultListPageSize = 100
)

// ErrShuttingDown is returned by Serve once Shutdown has begun.
var ErrShuttingDown = errors.New("acp: agentd is shutting down")

// Server serves ACP connections over a pool.
type Server struct {
	pool      *session.Pool
	cfg       Config
	log       *zap.Logger
	relayHTTP *http.Client // dials the owners of relayed sessions

	mu      sync.Mutex
	closing bool
	conns   map[*conn]struct{}
	serving sync.WaitGroup
}

// New returns a Server over pool.
func New(pool *session.Pool, cfg Config) *Server {
	if cfg.MaxMessageBytes <= 0 || cfg.MaxMessageBytes > DefaultMaxMessageBytes {
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
	if cfg.PongTimeout <= 0 {
		cfg.PongTimeout = DefaultPongTimeout
	}
	if cfg.ListPageSize <= 0 {
		cfg.ListPageSize = DefaultListPageSize
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Server{pool: pool, cfg: cfg, log: cfg.Logger.Named("acp"), relayHTTP: newRelayHTTPClient(), conns: map[*conn]struct{}{}}
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
// every request has been answered and every turn is saved, closes t and
// returns nil. It returns ErrShuttingDown at once, closing t, once Shutdown
// has begun.
func (s *Server) Serve(ctx context.Context, t Transport, peer Peer) error {
	return s.serve(ctx, t, peer, relayCreds{})
}

// serve is Serve for a connection authenticated with creds, which it
// passes on to the owners of the sessions it relays.
func (s *Server) serve(ctx context.Context, t Transport, peer Peer, creds relayCreds) error {
	c := s.newConn(t, peer, creds)
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
	if creds.forwardedBy != "" {
		c.log.Info("acp connection opened", zap.String("forwarded_by", creds.forwardedBy))
	} else {
		c.log.Info("acp connection opened")
	}
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

// conn is one client connection: the SDK's AgentSideConnection, fed
// through the wire adapter (wire.go) from a Transport.
type conn struct {
	s     *Server
	t     Transport
	peer  Peer
	creds relayCreds
	log   *zap.Logger
	sdk   *sdk.AgentSideConnection

	// ctx ends, with a CancelError cause, when the connection ends; every
	// turn of the connection runs under it.
	ctx    context.Context
	cancel context.CancelCauseFunc

	done    chan struct{} // closed by end: the read loop stops
	endOnce sync.Once
	why     string // the reason given to end

	toSDK *io.PipeWriter // what the SDK reads: the client's messages the adapter lets through, one per line

	wmu    sync.Mutex // one write at a time, in call order
	closed bool       // the transport is closed: nothing more is written

	requests sync.WaitGroup // the client's requests handed to the SDK and not answered yet
	tasks    sync.WaitGroup // goroutines of the connection's own (permission requests)

	mu          sync.Mutex
	ended       bool // no new requests, calls or prompts
	initialized bool
	pending     map[string]*request          // the client's requests the SDK handles, by idKey
	nullIDs     int                          // ids given to requests with a null id
	calls       map[string]*call             // agentd's requests to the client, by their wire id
	callIDs     map[string]string            // the SDK's id of a call → its wire id
	barrier     chan struct{}                // closed once the session/cancel or session/close the reader waits for is done
	barrierCall bool                         // that session/cancel is a request, not a notification
	initReq     *sdk.InitializeRequest       // the client's last initialize, sent to the owners of relayed sessions
	ups         map[string]*upstream         // relays to the owners of sessions, by owner and URL
	prompts     map[session.ID]*prompt       // prompts of this connection, from admission to their end
	loading     map[session.ID]chan struct{} // session/load replays in progress; closed when answered
}

func (s *Server) newConn(t Transport, peer Peer, creds relayCreds) *conn {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &conn{
		s: s, t: t, peer: peer, creds: creds, ctx: ctx, cancel: cancel, done: make(chan struct{}), ups: map[string]*upstream{},
		log:     s.log.With(zap.String("tenant", peer.Tenant), zap.String("user", peer.User), zap.String("transport", peer.Transport)),
		pending: map[string]*request{}, calls: map[string]*call{}, callIDs: map[string]string{},
		prompts: map[session.ID]*prompt{}, loading: map[session.ID]chan struct{}{},
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
	fromAdapter, toSDK := io.Pipe()
	c.toSDK = toSDK
	c.sdk = sdk.NewAgentSideConnection(agentSide{c}, sdkOutput{c}, fromAdapter)
	// The SDK's own diagnostics ("connection closed", a notification
	// handler's error) go to the debug log: what matters is logged here.
	stdlog, _ := zap.NewStdLogAt(c.log.Named("sdk"), zapcore.DebugLevel)
	c.sdk.SetLogger(slog.New(slog.NewTextHandler(stdlog.Writer(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	go func() {
		// The SDK stops reading when its input ends, or when it gives up
		// on the connection (its notification queue overflowed): then a
		// write to the pipe would block forever.
		<-c.sdk.Done()
		c.end(ReasonConnectionClosed)
		_ = fromAdapter.Close()
	}()
	stop := context.AfterFunc(ctx, func() { c.end(agent.ReasonShutdown) })
	defer stop()

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
				c.receive(f.data)
			case errors.As(f.err, &tl):
				c.reply(nullID, &Error{Code: CodeParseError, Message: "Parse error: " + tl.Error()})
			default:
				if !errors.Is(f.err, io.EOF) {
					readErr = f.err
				}
				c.end(ReasonConnectionClosed)
				break loop
			}
		case <-c.done:
			break loop
		}
	}
	c.finish()
	c.wmu.Lock()
	c.closed = true
	c.wmu.Unlock()
	_ = c.t.Close() // a WebSocket's close handshake needs the reader: stop it after
	stopRead()
	<-c.sdk.Done()
	return readErr
}

// finish cancels what runs for the connection and waits until every
// request the SDK took is answered (if the transport still takes writes):
// prompts answer once their turns are saved. The relays to owners close
// first: the owners cancel the turns they run for the connection.
func (c *conn) finish() {
	c.mu.Lock()
	c.ended = true
	calls := c.calls
	c.calls, c.callIDs = map[string]*call{}, map[string]string{}
	c.mu.Unlock()
	c.cancel(agent.Cancelled(c.reason()))
	for _, cl := range calls {
		close(cl.settled) // nothing will be answered or withdrawn any more
	}
	c.closeUpstreams()
	// The SDK's input ends: the contexts of its handlers end, and its
	// requests to the client return.
	_ = c.toSDK.Close()
	c.requests.Wait()
	c.tasks.Wait()
}

// write sends one message. A failed write ends the connection: the client
// is gone or not reading.
func (c *conn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed {
		return errors.New("the connection is closed")
	}
	if err := c.t.Write(context.Background(), msg); err != nil {
		c.log.Debug("acp write failed", zap.Error(err))
		c.end(ReasonConnectionClosed)
		return err
	}
	return nil
}
