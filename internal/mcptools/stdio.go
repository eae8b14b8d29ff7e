package mcptools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Limits of the stdio transport.
const (
	// maxMessage bounds one JSON-RPC message from a server. A longer line
	// ends the connection: the response it carried cannot be delivered.
	maxMessage = 32 << 20
	// maxStderrLine cuts long stderr lines before they are logged.
	maxStderrLine = 2048
	// stderrBudget is how many stderr lines of one child are logged per
	// stderrWindow; the rest are counted and reported.
	stderrBudget = 300
	stderrWindow = time.Minute
	// stderrTail is how many last stderr lines are kept to explain a
	// server that fails to start.
	stderrTail = 5
	// drainTimeout bounds reading what is left in the output pipes after
	// the process group is gone (a writer that left the group keeps them
	// open).
	drainTimeout = time.Second
)

// stdioTransport is mcp-go's transport.Interface over a child process that
// agentd owns. mcp-go's own Stdio transport cannot be used: it signals and
// reaps only the direct child, so the grandchildren of `npx` or `sh -c`
// would survive Close, and it reaps the child before a group kill could be
// sent safely. This one starts the child in its own process group and
// stops it by closing stdin, SIGTERM to the group, SIGKILL to the group
// after a grace, then reaping; the leader is reaped only after the last
// group signal, so the group id cannot have been reused.
//
// Messages are newline-delimited JSON-RPC. Responses are matched by id (a
// server may answer out of order); notifications and requests may come at
// any time, including before the initialize response.
type stdioTransport struct {
	cmd     *exec.Cmd
	log     *zap.Logger
	grace   time.Duration
	onStart func() // called once the child has started
	onExit  func() // called once the child is reaped

	stdin  *os.File // our write end of the child's stdin
	stdout *os.File // our read end of the child's stdout
	stderr *os.File

	writeMu sync.Mutex

	mu        sync.Mutex
	started   bool
	pid       int
	pending   map[string]chan *transport.JSONRPCResponse
	onNotify  func(mcp.JSONRPCNotification)
	onRequest transport.RequestHandler
	err       error // why done was closed
	exitErr   error // cmd.Wait's, set before reaped is closed
	selfExit  bool  // the child exited before Close asked it to
	tail      []string

	done      chan struct{} // closed when the connection is over
	closing   chan struct{} // closed by Close, before stdin is closed
	stopping  chan struct{} // closed by Close once stdin is closed
	reaped    chan struct{} // closed once the child is reaped and its group killed
	closeOnce sync.Once
	readers   sync.WaitGroup

	// ctx is the context of requests the server sends us; canceled by Close.
	ctx    context.Context
	cancel context.CancelFunc
}

var _ transport.BidirectionalInterface = (*stdioTransport)(nil)

func newStdioTransport(cmd *exec.Cmd, log *zap.Logger, grace time.Duration, onStart, onExit func()) *stdioTransport {
	ctx, cancel := context.WithCancel(context.Background())
	return &stdioTransport{
		ctx:      ctx,
		cancel:   cancel,
		stopping: make(chan struct{}),
		cmd:      cmd,
		log:      log,
		grace:    grace,
		onStart:  onStart,
		onExit:   onExit,
		pending:  map[string]chan *transport.JSONRPCResponse{},
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
		reaped:   make(chan struct{}),
	}
}

// Start starts the child. ctx bounds nothing but the start itself: the
// child lives until Close or until it exits.
func (t *stdioTransport) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started {
		return nil
	}
	select {
	case <-t.closing:
		return transport.ErrTransportClosed
	default:
	}
	var files []*os.File
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return err
	}
	outR, outW, err := pipe()
	if err != nil {
		closeAll()
		return err
	}
	errR, errW, err := pipe()
	if err != nil {
		closeAll()
		return err
	}
	// *os.File values are handed to the child as they are: no copying
	// goroutines, so Wait never waits for a grandchild holding a pipe.
	t.cmd.Stdin, t.cmd.Stdout, t.cmd.Stderr = inR, outW, errW
	if err := t.cmd.Start(); err != nil {
		closeAll()
		return err
	}
	inR.Close()
	outW.Close()
	errW.Close()
	t.stdin, t.stdout, t.stderr = inW, outR, errR
	t.started = true
	t.pid = t.cmd.Process.Pid
	t.log = t.log.With(zap.Int("pid", t.pid))
	if t.onStart != nil {
		t.onStart()
	}
	t.readers.Add(2)
	go t.readStdout()
	go t.readStderr()
	go t.watch()
	return nil
}

// PID is the child's process id while it runs, else 0.
func (t *stdioTransport) PID() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.reaped:
		return 0
	default:
		return t.pid
	}
}

// Done is closed when the connection is over; Err says why.
func (t *stdioTransport) Done() <-chan struct{} { return t.done }

// Err is why Done was closed, or nil.
func (t *stdioTransport) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// SelfExit reports, once the child is reaped, whether it exited on its own
// (not stopped by Close), and how.
func (t *stdioTransport) SelfExit() (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.reaped:
		return t.selfExit, t.exitErr
	default:
		return false, nil
	}
}

// StderrTail is the last lines the child wrote to stderr.
func (t *stdioTransport) StderrTail() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.tail...)
}

// fail ends the connection with err; the first error wins.
func (t *stdioTransport) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return
	}
	t.err = err
	close(t.done)
}

// Close ends the connection and the child's whole process group: it closes
// stdin, sends SIGTERM to the group, SIGKILL after the grace, and returns
// once the child is reaped and its output read. It is idempotent.
func (t *stdioTransport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		started := t.started
		close(t.closing) // under mu: no Start slips in after this
		t.mu.Unlock()
		t.fail(transport.ErrTransportClosed)
		t.cancel()
		if started {
			// EOF first: a well-behaved server exits by itself. Closing
			// also unblocks a write stuck on a full pipe.
			t.stdin.Close()
		}
		close(t.stopping)
	})
	t.mu.Lock()
	started := t.started
	t.mu.Unlock()
	if started {
		<-t.reaped
		t.readers.Wait()
	}
	return nil
}

// watch waits for the child to exit (or for Close), kills what is left of
// its group and reaps it.
func (t *stdioTransport) watch() {
	exited := make(chan struct{})
	go func() {
		waitExited(t.pid)
		close(exited)
	}()
	selfExit := false
	select {
	case <-exited:
		selfExit = true
	case <-t.stopping:
		select {
		case <-exited:
			selfExit = true // already gone when Close came
		default:
			t.signalGroup(syscall.SIGTERM)
			timer := time.NewTimer(t.grace)
			select {
			case <-exited:
			case <-timer.C:
			}
			timer.Stop()
		}
	}
	// The leader is not reaped yet, so the group id is still ours.
	t.signalGroup(syscall.SIGKILL)
	<-exited
	err := t.cmd.Wait()
	if t.onExit != nil {
		t.onExit() // before reaped: Close returns with the count right
	}
	t.mu.Lock()
	t.exitErr, t.selfExit = err, selfExit
	close(t.reaped)
	t.mu.Unlock()
	// A process that left the group (setsid) may still hold the pipes.
	deadline := time.Now().Add(drainTimeout)
	t.stdout.SetReadDeadline(deadline)
	t.stderr.SetReadDeadline(deadline)
	t.fail(exitError(err))
}

// signalGroup signals the child's process group, and the child itself in
// case a PrepareCommand hook left it outside its own group.
func (t *stdioTransport) signalGroup(sig syscall.Signal) {
	if err := unix.Kill(-t.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		t.log.Debug("signal MCP server process group", zap.Stringer("signal", sig), zap.Error(err))
	}
	_ = unix.Kill(t.pid, sig)
}

// exitError describes how the child ended.
func exitError(err error) error {
	if err == nil {
		return errors.New("the server process exited")
	}
	return fmt.Errorf("the server process exited: %w", err)
}

// readStdout dispatches every message the child writes.
func (t *stdioTransport) readStdout() {
	defer t.readers.Done()
	r := bufio.NewReaderSize(t.stdout, 64<<10)
	for {
		line, truncated, err := readLine(r, maxMessage)
		if truncated {
			t.fail(fmt.Errorf("the server sent a message longer than %d MiB", maxMessage>>20))
			t.drain(r)
			return
		}
		if len(bytes.TrimSpace(line)) > 0 {
			t.dispatch(line)
		}
		if err != nil {
			break
		}
	}
	// The output ended: the child is exiting, or closed stdout. Prefer the
	// exit status as the reason.
	timer := time.NewTimer(drainTimeout)
	defer timer.Stop()
	select {
	case <-t.reaped:
		t.mu.Lock()
		err := t.exitErr
		t.mu.Unlock()
		t.fail(exitError(err))
	case <-t.closing:
	case <-timer.C:
		t.fail(errors.New("the server closed its standard output"))
	}
}

// drain discards the rest of r so the child never blocks writing.
func (t *stdioTransport) drain(r io.Reader) {
	_, _ = io.Copy(io.Discard, r)
}

func (t *stdioTransport) dispatch(line []byte) {
	var probe struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.Unmarshal(line, &probe); err != nil {
		t.log.Debug("MCP server wrote a non-JSON line to stdout", zap.ByteString("line", truncate(line, 200)))
		return
	}
	hasID := len(probe.ID) > 0 && !isNull(probe.ID)
	switch {
	case probe.Method != "" && !hasID:
		var n mcp.JSONRPCNotification
		if err := json.Unmarshal(line, &n); err != nil {
			return
		}
		t.mu.Lock()
		h := t.onNotify
		t.mu.Unlock()
		if h != nil {
			h(n)
		}
	case probe.Method != "":
		var req transport.JSONRPCRequest
		if err := json.Unmarshal(line, &req); err != nil {
			return
		}
		t.handleRequest(req)
	default:
		var resp transport.JSONRPCResponse
		if err := json.Unmarshal(line, &resp); err != nil {
			return
		}
		key := resp.ID.String()
		t.mu.Lock()
		ch, ok := t.pending[key]
		delete(t.pending, key)
		t.mu.Unlock()
		if ok {
			ch <- &resp // buffered; each id is delivered once
		}
	}
}

// handleRequest answers a request from the server (ping, roots/list ...).
func (t *stdioTransport) handleRequest(req transport.JSONRPCRequest) {
	t.mu.Lock()
	h := t.onRequest
	t.mu.Unlock()
	go func() {
		ctx := t.ctx
		var resp *transport.JSONRPCResponse
		if h == nil {
			resp = transport.NewJSONRPCErrorResponse(req.ID, mcp.METHOD_NOT_FOUND, "method not supported by this client", nil)
		} else {
			var err error
			resp, err = h(ctx, req)
			if err != nil {
				resp = transport.NewJSONRPCErrorResponse(req.ID, mcp.INTERNAL_ERROR, err.Error(), nil)
			}
		}
		if resp == nil {
			return
		}
		b, err := json.Marshal(resp)
		if err != nil {
			return
		}
		_ = t.write(ctx, b)
	}()
}

// readStderr logs the child's stderr line by line, within a budget.
func (t *stdioTransport) readStderr() {
	defer t.readers.Done()
	r := bufio.NewReaderSize(t.stderr, 4096)
	windowStart := time.Now()
	logged, dropped := 0, 0
	flush := func() {
		if dropped > 0 {
			t.log.Warn("MCP server stderr lines dropped", zap.Int("dropped", dropped))
			dropped = 0
		}
	}
	for {
		line, truncated, err := readLine(r, maxStderrLine)
		text := strings.TrimRight(string(line), "\r\n")
		if truncated {
			text += " …(truncated)"
		}
		if text != "" {
			t.mu.Lock()
			t.tail = append(t.tail, text)
			if len(t.tail) > stderrTail {
				t.tail = t.tail[len(t.tail)-stderrTail:]
			}
			t.mu.Unlock()
			if now := time.Now(); now.Sub(windowStart) >= stderrWindow {
				flush()
				windowStart, logged = now, 0
			}
			if logged < stderrBudget {
				logged++
				t.log.Info("MCP server stderr", zap.String("line", text))
			} else {
				dropped++
			}
		}
		if err != nil {
			break
		}
	}
	flush()
}

// readLine reads one line of at most max bytes (the newline included). A
// longer line is cut: the rest up to its newline is discarded and
// truncated is true.
func readLine(r *bufio.Reader, max int) (line []byte, truncated bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max {
			if room := max - len(line); room > 0 {
				line = append(line, chunk[:room]...)
			}
			truncated = true
		} else {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if truncated && err == nil {
			return line, true, nil
		}
		return line, truncated, err
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// write sends one message, honouring ctx while the pipe is full. A message
// cut in the middle leaves the stream unusable, so the connection fails.
func (t *stdioTransport) write(ctx context.Context, msg []byte) error {
	msg = append(msg, '\n')
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	select {
	case <-t.done:
		return t.closedErr()
	default:
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		t.stdin.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	n, err := t.stdin.Write(msg)
	if !stop() {
		<-fired
		t.stdin.SetWriteDeadline(time.Time{})
	}
	if err == nil {
		return nil
	}
	if n == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	err = fmt.Errorf("write to the server: %w", err)
	t.fail(err)
	return err
}

func (t *stdioTransport) closedErr() error {
	if err := t.Err(); err != nil {
		return err
	}
	return transport.ErrTransportClosed
}

// SendRequest sends req and waits for the response with its id.
func (t *stdioTransport) SendRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	t.mu.Lock()
	started := t.started
	t.mu.Unlock()
	if !started {
		return nil, errors.New("stdio transport not started")
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	key := req.ID.String()
	ch := make(chan *transport.JSONRPCResponse, 1)
	t.mu.Lock()
	t.pending[key] = ch
	t.mu.Unlock()
	forget := func() {
		t.mu.Lock()
		delete(t.pending, key)
		t.mu.Unlock()
	}
	if err := t.write(ctx, b); err != nil {
		forget()
		return nil, err
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	case <-t.done:
		select {
		case r := <-ch:
			return r, nil
		default:
		}
		forget()
		return nil, t.closedErr()
	}
}

// SendNotification sends n.
func (t *stdioTransport) SendNotification(ctx context.Context, n mcp.JSONRPCNotification) error {
	t.mu.Lock()
	started := t.started
	t.mu.Unlock()
	if !started {
		return errors.New("stdio transport not started")
	}
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	return t.write(ctx, b)
}

func (t *stdioTransport) SetNotificationHandler(h func(mcp.JSONRPCNotification)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onNotify = h
}

func (t *stdioTransport) SetRequestHandler(h transport.RequestHandler) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.onRequest = h
}

// GetSessionId is empty: stdio has no session id.
func (t *stdioTransport) GetSessionId() string { return "" }

// waitExited blocks until process pid has exited, leaving it a zombie:
// waitid(WNOWAIT) does not reap, so the PID, and the PGID of the group it
// leads, cannot be reused until cmd.Wait reaps it.
func waitExited(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}
