package mcptools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/tools"
)

// Defaults of Options.
const (
	DefaultRetryInterval = 30 * time.Second
	DefaultKillGrace     = 2 * time.Second
)

// Caps of one server's tools/list (Agentao's).
const (
	MaxListPages   = 100
	MaxServerTools = 1024
	MaxCursorLen   = 64 << 10
)

// ErrClosed is returned by the tools of a Manager after Close.
var ErrClosed = errors.New("the MCP servers of this tenant are closed")

// Options tune a Manager. The zero value works.
type Options struct {
	// Dir is the working directory of stdio servers, and what a relative
	// cwd in mcp.json is relative to: the tenant's directory. Empty means
	// agentd's own working directory.
	Dir string
	// Env returns the environment stdio servers start from, before the
	// scrub. Nil means os.Environ.
	Env func() []string
	// ScrubEnv names variables removed from that environment. Nil means
	// tools.DefaultScrubEnv(). Every AGENTD_* and *_API_KEY variable is
	// removed as well, whatever it holds, as for shell commands. A server's
	// own env is applied after the scrub, so it may set any of them.
	ScrubEnv []string
	// PrepareCommand, if set, is called with each stdio server's command
	// just before it starts (a sandbox hook, like tools.Config.PrepareShell).
	// It must keep SysProcAttr.Setpgid. An error fails that server's start.
	PrepareCommand func(cmd *exec.Cmd) error
	// HTTPClient is used for http and sse servers. Nil means a client
	// without a timeout (streams are long-lived; requests are bounded by
	// contexts).
	HTTPClient *http.Client
	// Logger receives connection events, mcp-go's logs and the stderr of
	// stdio servers. Nil means no logging.
	Logger *zap.Logger
	// KillGrace is the time between SIGTERM and SIGKILL to a stdio
	// server's process group on Close. Zero means DefaultKillGrace.
	KillGrace time.Duration
	// RetryInterval is the least time between two connection attempts of
	// one server. Zero means DefaultRetryInterval (30 s).
	RetryInterval time.Duration
	// ClientVersion is sent as clientInfo.version ("agentd" is the name).
	ClientVersion string
}

// State is where a server's connection stands.
type State string

// The states of Health.
const (
	StateStarting  State = "starting"  // not tried yet, or a connection attempt is running
	StateConnected State = "connected" // its tools are offered
	StateFailed    State = "failed"    // the last attempt failed or the connection died; retried later
	StateClosed    State = "closed"    // the Manager is closed
)

// ServerHealth is the state of one server.
type ServerHealth struct {
	Name        string
	Transport   Transport
	State       State
	Tools       int       // tools offered (0 unless connected)
	LastError   string    // why the last attempt failed or the connection died; "" when connected
	LastAttempt time.Time // start of the last connection attempt; zero if none
	PID         int       // the stdio child's process id while it runs
	Protocol    string    // the MCP protocol version negotiated, while connected
}

// Manager is the MCP client of one tenant: it connects the servers of one
// mcp.json and offers their tools. A Manager is never shared between
// tenants. It is safe for concurrent use.
type Manager struct {
	opts    Options
	log     *zap.Logger
	servers []*server // by name

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	work   sync.WaitGroup // calls, connection attempts, refreshes
	conns  sync.WaitGroup // connections not yet closed
	once   sync.Once

	children atomic.Int64
}

// New returns a Manager for the servers of cfg. It connects nothing: call
// Start, or Tools (which connects in the background).
func New(cfg Config, opts Options) *Manager {
	if opts.Env == nil {
		opts.Env = os.Environ
	}
	if opts.ScrubEnv == nil {
		opts.ScrubEnv = tools.DefaultScrubEnv()
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.KillGrace <= 0 {
		opts.KillGrace = DefaultKillGrace
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	m := &Manager{opts: opts, log: opts.Logger}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	for _, name := range cfg.Names() {
		sc := cfg.Servers[name]
		sc.Name = name
		if sc.StartupTimeout <= 0 {
			sc.StartupTimeout = DefaultStartupTimeout
		}
		if sc.Transport == "" { // a config built in code, not by Parse
			sc.Transport = TransportHTTP
			if sc.Command != "" {
				sc.Transport = TransportStdio
			}
		}
		m.servers = append(m.servers, &server{
			m:     m,
			cfg:   sc,
			log:   m.log.With(zap.String("mcp_server", name)),
			state: StateStarting,
		})
	}
	return m
}

// begin registers one piece of work that Close waits for; false once closed.
func (m *Manager) begin() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.work.Add(1)
	return true
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Start connects every server that is not connected, concurrently, each
// within its startup timeout, and returns when all attempts have ended. A
// server that fails is not an error: Health reports it, and Tools retries
// it later. Canceling ctx abandons the attempts still running (they count
// as failed). Start returns ErrClosed after Close.
func (m *Manager) Start(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range m.servers {
		if !m.begin() {
			wg.Wait()
			return ErrClosed
		}
		if !s.claim(time.Time{}) {
			m.work.Done()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer m.work.Done()
			s.connect(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// Tools returns the tools of every connected server, by server name and
// then in the server's order. Names are mcp_<server>_<tool>, sanitised,
// at most 64 characters, and unique (see ToolName and the package doc).
//
// Tools also keeps the servers up: a server that failed or died is
// reconnected in the background, at most once per RetryInterval, and its
// tools come back in a later call; a server that announced
// notifications/tools/list_changed is listed again before Tools returns.
// After Close it returns nil.
func (m *Manager) Tools() []agent.Tool {
	if m.isClosed() {
		return nil
	}
	now := time.Now()
	var wg sync.WaitGroup
	for _, s := range m.servers {
		if c := s.maintain(now); c != nil {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer m.work.Done()
				s.refresh(c)
			}()
		}
	}
	wg.Wait()

	var refs []toolRef
	var defs []toolDef
	var owners []*server
	for _, s := range m.servers {
		for _, d := range s.current() {
			refs = append(refs, toolRef{server: s.cfg.Name, tool: d.remote})
			defs = append(defs, d)
			owners = append(owners, s)
		}
	}
	names := assignNames(refs)
	out := make([]agent.Tool, len(defs))
	for i, d := range defs {
		s := owners[i]
		out[i] = &mcpTool{spec: d.spec(names[i], s.cfg.Name, s.cfg.Trust), srv: s, remote: d.remote}
	}
	return out
}

// Health reports every server, by name.
func (m *Manager) Health() []ServerHealth {
	out := make([]ServerHealth, len(m.servers))
	for i, s := range m.servers {
		out[i] = s.health()
	}
	return out
}

// Children is the number of stdio server processes alive (started and not
// yet reaped), for a gauge.
func (m *Manager) Children() int {
	return int(m.children.Load())
}

// Close cancels the calls in flight and waits for them, then closes every
// connection: for a stdio server, stdin is closed, its process group gets
// SIGTERM, SIGKILL after KillGrace, and the child is reaped. It returns
// when no child of this Manager is left. Close is idempotent; concurrent
// calls all wait for the first.
func (m *Manager) Close() error {
	m.once.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.cancel()
		m.work.Wait()
		var wg sync.WaitGroup
		for _, s := range m.servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.shutdown()
			}()
		}
		wg.Wait()
		m.conns.Wait()
	})
	return nil
}

// server is one entry of mcp.json and its current connection.
type server struct {
	m   *Manager
	cfg ServerConfig
	log *zap.Logger

	mu          sync.Mutex
	state       State
	conn        *conn
	tools       []toolDef
	lastErr     string
	lastAttempt time.Time
	connecting  bool
	refreshing  bool
	refreshWait time.Time // no refresh before this, after one failed
}

// claim marks a connection attempt as started, if none runs and the server
// is not connected, and (unless now is zero) the retry interval has passed.
func (s *server) claim(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.connecting || s.conn != nil || s.state == StateClosed {
		return false
	}
	if !now.IsZero() && !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.m.opts.RetryInterval {
		return false
	}
	s.connecting = true
	s.state = StateStarting
	s.lastAttempt = time.Now()
	return true
}

// maintain starts a background reconnection if one is due, and returns the
// connection to refresh now (with work begun) if its tool list changed.
func (s *server) maintain(now time.Time) *conn {
	if s.claim(now) {
		if !s.m.begin() {
			s.mu.Lock()
			s.connecting = false
			s.mu.Unlock()
			return nil
		}
		go func() {
			defer s.m.work.Done()
			s.connect(s.m.ctx)
		}()
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn
	if c == nil || s.refreshing || !c.dirty.Load() || now.Before(s.refreshWait) {
		return nil
	}
	if !s.m.begin() {
		return nil
	}
	s.refreshing = true
	return c
}

// refresh lists the tools of c again after tools/list_changed.
func (s *server) refresh(c *conn) {
	timeout := s.cfg.StartupTimeout
	if s.cfg.RequestTimeout > 0 {
		timeout = s.cfg.RequestTimeout
	}
	ctx, cancel := context.WithTimeout(s.m.ctx, timeout)
	defer cancel()
	defs, err := s.list(ctx, c)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshing = false
	if err != nil {
		s.log.Warn("MCP tools/list after list_changed failed; keeping the old list", zap.Error(err))
		c.dirty.Store(true)
		s.refreshWait = time.Now().Add(s.m.opts.RetryInterval)
		if isTransportError(err) {
			c.kill(fmt.Errorf("tools/list: %w", err))
		}
		return
	}
	if s.conn == c {
		s.tools = defs
		s.log.Info("MCP tool list refreshed", zap.Int("tools", len(defs)))
	}
}

// current is the tools offered now: none unless connected.
func (s *server) current() []toolDef {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.tools
}

func (s *server) health() ServerHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := ServerHealth{
		Name:        s.cfg.Name,
		Transport:   s.cfg.Transport,
		State:       s.state,
		LastError:   s.lastErr,
		LastAttempt: s.lastAttempt,
	}
	if s.conn != nil {
		h.Tools = len(s.tools)
		h.Protocol = s.conn.client.ProtocolVersion()
		if s.conn.stdio != nil {
			h.PID = s.conn.stdio.PID()
		}
	}
	return h
}

// connect makes one connection attempt and records its outcome.
func (s *server) connect(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.m.ctx, cancel)
	defer stop()
	c, defs, err := s.dial(ctx)
	s.mu.Lock()
	s.connecting = false
	if err != nil {
		s.state = StateFailed
		s.lastErr = err.Error()
		s.mu.Unlock()
		if s.m.ctx.Err() != nil {
			s.log.Debug("MCP connection attempt ended by Close", zap.Error(err))
			return
		}
		s.log.Warn("MCP server failed to start; retried later", zap.Error(err),
			zap.Duration("retry_after", s.m.opts.RetryInterval))
		return
	}
	s.conn, s.tools = c, defs
	s.state, s.lastErr = StateConnected, ""
	s.refreshWait = time.Time{}
	s.mu.Unlock()
	s.log.Info("MCP server connected", zap.Int("tools", len(defs)),
		zap.String("protocol", c.client.ProtocolVersion()))
	go s.watch(c)
}

// watch takes c out of service when it dies, and closes it. Whoever took
// c out of service first (shutdown) closes it instead.
func (s *server) watch(c *conn) {
	select {
	case <-c.dead:
	case <-c.closed:
		return
	}
	s.mu.Lock()
	current := s.conn == c
	if current {
		s.conn, s.tools = nil, nil
		s.state = StateFailed
		s.lastErr = "connection lost: " + c.deadErr.Error()
	}
	s.mu.Unlock()
	if current {
		s.log.Warn("MCP server connection lost; a later Tools call reconnects it", zap.Error(c.deadErr))
		c.close()
	}
}

// shutdown closes the server for good.
func (s *server) shutdown() {
	s.mu.Lock()
	c := s.conn
	s.conn, s.tools = nil, nil
	s.state = StateClosed
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// dial connects, performs the handshake and lists the tools, all within
// the startup timeout.
func (s *server) dial(parent context.Context) (*conn, []toolDef, error) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.StartupTimeout)
	defer cancel()
	c, err := s.newConn()
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			c.close()
		}
	}()
	fail := func(step string, err error) (*conn, []toolDef, error) {
		if ctx.Err() != nil && parent.Err() == nil {
			err = fmt.Errorf("%s: did not start within %v", step, s.cfg.StartupTimeout)
		} else if parent.Err() != nil {
			err = fmt.Errorf("%s: %w", step, parent.Err())
		} else {
			err = fmt.Errorf("%s: %w", step, err)
		}
		if c.stdio != nil {
			// Reap the child and read the rest of its stderr: how it
			// exited says more than the broken pipe that revealed it.
			c.close()
			if self, exitErr := c.stdio.SelfExit(); self {
				err = fmt.Errorf("%s: %w", step, exitError(exitErr))
			}
			if tail := c.stdio.StderrTail(); len(tail) > 0 {
				err = fmt.Errorf("%w (stderr: %s)", err, strings.Join(tail, " | "))
			}
		}
		return nil, nil, err
	}
	// The connection outlives ctx (an SSE stream is bound to the context
	// Start gets), so Start gets the connection's own; ctx still bounds
	// the attempt by ending the connection.
	stop := context.AfterFunc(ctx, c.cancel)
	defer stop()
	if err := c.client.Start(c.ctx); err != nil {
		if c.stdio != nil {
			return fail("start "+s.cfg.Command, err)
		}
		return fail("connect", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "agentd", Version: s.m.opts.ClientVersion}
	init.Params.Capabilities = mcp.ClientCapabilities{}
	res, err := c.client.Initialize(ctx, init)
	if err != nil {
		return fail("initialize", err)
	}
	if mcp.IsModernProtocol(c.client.ProtocolVersion()) && res.Capabilities.Tools != nil && res.Capabilities.Tools.ListChanged {
		// On 2026-07-28 notifications flow only on a subscriptions/listen
		// stream; on earlier versions they come unasked.
		stopListen, err := c.client.ListenAsync(c.ctx, mcp.SubscriptionFilter{ToolsListChanged: true}, func(err error) {
			s.log.Debug("MCP subscriptions/listen ended", zap.Error(err))
		})
		if err == nil {
			c.stopListen = stopListen
		}
	}
	defs, err := s.list(ctx, c)
	if err != nil {
		return fail("tools/list", err)
	}
	if !stop() {
		return fail("tools/list", ctx.Err())
	}
	ok = true
	return c, defs, nil
}

// newConn builds the transport and client of one connection attempt.
func (s *server) newConn() (*conn, error) {
	c := &conn{dead: make(chan struct{}), closed: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(s.m.ctx)
	var tr transport.Interface
	switch s.cfg.Transport {
	case TransportStdio:
		cmd, err := s.command()
		if err != nil {
			c.cancel()
			return nil, err
		}
		m := s.m
		c.stdio = newStdioTransport(cmd, s.log, m.opts.KillGrace,
			func() { m.children.Add(1) }, func() { m.children.Add(-1) })
		tr = c.stdio
	case TransportHTTP:
		t, err := transport.NewStreamableHTTP(s.cfg.URL,
			transport.WithHTTPHeaders(s.cfg.Headers),
			transport.WithHTTPBasicClient(s.m.opts.HTTPClient),
			transport.WithHTTPLogger(newSlog(s.log)))
		if err != nil {
			c.cancel()
			return nil, fmt.Errorf("url: %w", err)
		}
		tr = t
	case TransportSSE:
		t, err := transport.NewSSE(s.cfg.URL,
			transport.WithHeaders(s.cfg.Headers),
			transport.WithHTTPClient(s.m.opts.HTTPClient),
			transport.WithSSELogger(newSlog(s.log)))
		if err != nil {
			c.cancel()
			return nil, fmt.Errorf("url: %w", err)
		}
		tr = t
	default:
		c.cancel()
		return nil, fmt.Errorf("unknown transport %q", s.cfg.Transport)
	}
	c.client = client.NewClient(tr)
	c.client.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == mcp.MethodNotificationToolsListChanged {
			c.dirty.Store(true)
		}
	})
	c.client.OnConnectionLost(func(err error) {
		c.kill(fmt.Errorf("stream ended: %w", err))
	})
	s.m.conns.Add(1)
	c.release = s.m.conns.Done
	if c.stdio != nil {
		go func() {
			select {
			case <-c.stdio.Done():
				c.kill(c.stdio.Err())
			case <-c.closed:
			}
		}()
	}
	return c, nil
}

// command is the exec.Cmd of a stdio server, not started.
func (s *server) command() (*exec.Cmd, error) {
	dir := s.m.opts.Dir
	if s.cfg.Cwd != "" {
		if filepath.IsAbs(s.cfg.Cwd) || dir == "" {
			dir = s.cfg.Cwd
		} else {
			dir = filepath.Join(dir, s.cfg.Cwd)
		}
	}
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		dir = wd
	}
	cmd := exec.Command(s.cfg.Command, s.cfg.Args...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("start %s: %w", s.cfg.Command, cmd.Err)
	}
	cmd.Dir = dir
	cmd.Env = childEnv(s.m.opts.Env(), s.m.opts.ScrubEnv, s.cfg.Env, dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.m.opts.PrepareCommand != nil {
		if err := s.m.opts.PrepareCommand(cmd); err != nil {
			return nil, fmt.Errorf("start %s refused: %w", s.cfg.Command, err)
		}
		// The group is how Close reaches grandchildren: keep it (a new
		// session is a new group too).
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		if !cmd.SysProcAttr.Setsid {
			cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pgid = true, 0
		}
	}
	return cmd, nil
}

// childEnv is base without the scrubbed variables, AGENTD_* and *_API_KEY
// (names compared case-insensitively), with PWD set to dir, then the
// server's explicit env on top.
func childEnv(base, scrub []string, explicit map[string]string, dir string) []string {
	env := make([]string, 0, len(base)+len(explicit)+1)
	for _, kv := range tools.ScrubbedEnv(base, scrub) {
		name, _, _ := strings.Cut(kv, "=")
		if _, set := explicit[name]; set {
			continue
		}
		env = append(env, kv)
	}
	if _, set := explicit["PWD"]; !set {
		env = append(env, "PWD="+dir)
	}
	for _, k := range sortedKeys(explicit) {
		env = append(env, k+"="+explicit[k])
	}
	return env
}

// list runs tools/list page by page within the caps, and converts the
// tools. It clears c's list_changed mark first, so a change announced
// while it runs causes another listing.
func (s *server) list(ctx context.Context, c *conn) ([]toolDef, error) {
	c.dirty.Store(false)
	var all []mcp.Tool
	seen := map[mcp.Cursor]bool{}
	var cursor mcp.Cursor
	for page := 1; ; page++ {
		req := mcp.ListToolsRequest{}
		req.Params.Cursor = cursor
		res, err := c.client.ListToolsByPage(ctx, req)
		if err != nil {
			return nil, err
		}
		all = append(all, res.Tools...)
		next := res.NextCursor
		var stop string
		switch {
		case next == "":
		case len(all) >= MaxServerTools:
			stop = fmt.Sprintf("more than %d tools", MaxServerTools)
		case page >= MaxListPages:
			stop = fmt.Sprintf("more than %d pages", MaxListPages)
		case len(next) > MaxCursorLen:
			stop = fmt.Sprintf("a cursor longer than %d bytes", MaxCursorLen)
		case seen[next]:
			stop = "a cursor that repeats"
		}
		if next == "" || stop != "" {
			if stop != "" {
				s.log.Warn("MCP tools/list cut short", zap.String("reason", stop), zap.Int("tools", min(len(all), MaxServerTools)))
			}
			break
		}
		seen[next] = true
		cursor = next
	}
	if len(all) > MaxServerTools {
		all = all[:MaxServerTools]
	}
	defs := make([]toolDef, 0, len(all))
	names := map[string]bool{}
	for _, t := range all {
		if t.Name == "" || names[t.Name] {
			s.log.Warn("MCP server listed a tool twice or without a name; ignored", zap.String("tool", t.Name))
			continue
		}
		names[t.Name] = true
		d, warn := newToolDef(t)
		if warn != "" {
			s.log.Warn("MCP tool schema replaced", zap.String("tool", t.Name), zap.String("reason", warn))
		}
		defs = append(defs, d)
	}
	return defs, nil
}

// errRequestTimeout is the cause of a call that ran out of its server's
// request timeout.
var errRequestTimeout = errors.New("request timeout")

// call runs tools/call on the server's current connection.
func (s *server) call(ctx context.Context, tool string, args json.RawMessage) (string, error) {
	if !s.m.begin() {
		return "", ErrClosed
	}
	defer s.m.work.Done()
	if err := ctx.Err(); err != nil {
		return "", err
	}
	raw, err := argsObject(args)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	c, lastErr := s.conn, s.lastErr
	s.mu.Unlock()
	if c == nil {
		if lastErr == "" {
			lastErr = "not connected yet"
		}
		return "", fmt.Errorf("MCP server %q is not connected (%s); the server may have stopped, agentd reconnects it on a later turn", s.cfg.Name, lastErr)
	}

	callCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.m.ctx, func() { cancel(ErrClosed) })
	defer stop()
	if rt := s.cfg.RequestTimeout; rt > 0 {
		var cancelT context.CancelFunc
		callCtx, cancelT = context.WithTimeoutCause(callCtx, rt, errRequestTimeout)
		defer cancelT()
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.RawArguments = raw
	res, err := c.client.CallTool(callCtx, req)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		switch cause := context.Cause(callCtx); {
		case errors.Is(cause, ErrClosed):
			return "", ErrClosed
		case errors.Is(cause, errRequestTimeout):
			return "", fmt.Errorf("MCP server %q: %s did not answer within its request timeout of %v", s.cfg.Name, tool, s.cfg.RequestTimeout)
		}
		if isTransportError(err) {
			c.kill(fmt.Errorf("tools/call: %w", err))
			return "", fmt.Errorf("MCP server %q: calling %s failed: %v; the server may have stopped", s.cfg.Name, tool, err)
		}
		return "", fmt.Errorf("MCP server %q: %s: %v", s.cfg.Name, tool, err)
	}
	text := resultText(res)
	if res.IsError {
		if strings.TrimSpace(text) == "" {
			text = fmt.Sprintf("MCP tool %s reported an error without a message", tool)
		}
		return "", errors.New(text)
	}
	return text, nil
}

// argsObject checks that args is a JSON object; empty means {}.
func argsObject(args json.RawMessage) (json.RawMessage, error) {
	trimmed := strings.TrimSpace(string(args))
	if trimmed == "" || trimmed == "null" {
		return json.RawMessage(`{}`), nil
	}
	if !strings.HasPrefix(trimmed, "{") || !json.Valid([]byte(trimmed)) {
		return nil, errors.New("the arguments must be a JSON object")
	}
	return json.RawMessage(trimmed), nil
}

// isTransportError reports whether err came from the transport (the server
// is unreachable or gone) rather than from the server's answer.
func isTransportError(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) || errors.Is(err, transport.ErrTransportClosed)
}

// conn is one connection to a server.
type conn struct {
	client *client.Client
	stdio  *stdioTransport // nil for http and sse

	ctx    context.Context // the connection's lifetime
	cancel context.CancelFunc

	dirty      atomic.Bool // tools/list_changed seen since the last listing
	stopListen func()
	release    func() // Manager.conns.Done

	deadOnce  sync.Once
	dead      chan struct{}
	deadErr   error
	closeOnce sync.Once
	closed    chan struct{}
}

// kill marks c dead with err; the first error wins.
func (c *conn) kill(err error) {
	c.deadOnce.Do(func() {
		c.deadErr = err
		close(c.dead)
	})
}

// close ends c and, for stdio, its process group; it blocks until the
// child is reaped. It is idempotent.
func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.kill(errors.New("closed"))
		if c.stopListen != nil {
			c.stopListen()
		}
		_ = c.client.Close() // the connection is gone either way
		c.cancel()
		close(c.closed)
		if c.release != nil {
			c.release()
		}
	})
}

// mcpTool is one tool of a server, as the agent sees it.
type mcpTool struct {
	spec   agent.ToolSpec
	srv    *server
	remote string
}

func (t *mcpTool) Spec() agent.ToolSpec { return t.spec }

func (t *mcpTool) Run(ctx context.Context, c agent.Call) (string, error) {
	return t.srv.call(ctx, t.remote, c.Args)
}

// compile-time check
var _ agent.Tool = (*mcpTool)(nil)
