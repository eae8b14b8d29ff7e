package acp

// The fleet relay: a session-addressed request for a session another
// replica owns is relayed to the owner over an ACP client connection of
// the SDK (ClientSideConnection) on a WebSocket to the owner's
// GET /v1/acp, opened with the client's own API key and user. The owner
// authenticates the key again and applies its tenant rules; this replica
// only decides where a request goes. What comes back is relayed through
// the downstream connection's AgentSideConnection: responses and errors
// as the owner gave them, the owner's session/update notifications, and
// its requests to the client (session/request_permission, fs, terminal)
// with their answers.
//
// Ordering is kept as on a local session:
//
//   - every update of a relayed request reaches the client before its
//     response: the SDK's SendRequest returns only once the notifications
//     read before the response are handled (waitNotificationsUpTo), and
//     relayClient.SessionUpdate writes each one to the client before it
//     returns;
//   - a session/cancel or session/close reaches the owner after the
//     prompt it cancels and before any request the client sent after it
//     (the reader waits for it, as for a local session);
//   - a cancelled prompt waits for the owner's answer (stopReason
//     "cancelled", after the turn's last updates): it is cancelled on the
//     owner with a $/cancel_request of its own id, which the SDK would
//     send only by giving up on the answer (Connection.waitForResponse);
//   - a request of the owner (a permission request) or its withdrawal
//     never overtakes an update the owner sent before it (waitRelayed),
//     and a withdrawn permission request is withdrawn from the client
//     before anything the owner sent after the withdrawal;
//   - the client paces the owner: at most relaySlots updates wait for it.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	sdk "github.com/coder/acp-go-sdk"
	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/agentd/agentd/internal/session"
)

// Fleet is the replica's view of the fleet, for relaying requests about
// sessions other replicas own. Nil in Config: every session is local.
type Fleet interface {
	// Self is this replica's name.
	Self() string
	// Owner names the replica that serves id now and its base URL
	// ("http://host:port"); ok is false when id names no member.
	Owner(id session.ID) (node, url string, ok bool)
	// Peers are the other members: name → base URL.
	Peers() map[string]string
}

// ForwardedByHeader names the replica that relays a connection; a
// connection that carries it is never relayed further.
const ForwardedByHeader = "X-Agentd-Forwarded-By"

const (
	// relayDialTimeout bounds opening an upstream: the WebSocket
	// handshake and initialize.
	relayDialTimeout = 5 * time.Second
	// relaySlots bounds the owner's session/update notifications read
	// and not yet written to the client. Connection.receive (SDK) queues
	// notifications without bound on the reader's side and ends the
	// connection once 1024 wait; instead the relay stops reading the
	// owner's socket, and TCP slows the owner's turn down as a slow
	// client slows a local one.
	relaySlots = 256
)

// newRelayHTTPClient returns the client that dials owners: directly, as
// replicas reach each other on the addresses of the membership, never
// through an HTTP proxy of the environment, and over HTTP/1.1, which
// WebSocket needs.
func newRelayHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.ForceAttemptHTTP2 = false
	t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	return &http.Client{Transport: t}
}

// relayCreds are what a WebSocket connection was authenticated with,
// passed on to owners. Zero for stdio: no relay.
type relayCreds struct {
	auth        string // "Bearer <key>"; never logged
	forwardedBy string // the replica that relays this connection, if any
}

// codeRequestCancelled is the SDK's error for a request whose context
// ended (toReqErr); agentd never answers with it.
const codeRequestCancelled = -32800

func errOwnerUnavailable(sid session.ID, node, msg string) *Error {
	return &Error{Code: CodeOwnerUnavailable, Message: "Owner unavailable: " + msg,
		Data: map[string]string{"code": "owner_unavailable", "node": node, "sessionId": string(sid)}}
}

// route says where a session-addressed request is served: here (nil,
// nil), by the owner through an upstream, or nowhere (the error to
// answer).
func (c *conn) route(sid session.ID) (*upstream, *Error) {
	f := c.s.cfg.Fleet
	if f == nil || !sid.Valid() {
		return nil, nil
	}
	node, base, ok := f.Owner(sid)
	switch {
	case !ok: // no such member: as unknown as a session that never was
		return nil, errSessionNotFound(string(sid))
	case node == "" || node == f.Self():
		return nil, nil
	case c.creds.forwardedBy != "":
		c.log.Warn("acp: a relayed connection names a session another replica owns; not relaying again",
			zap.String("session_id", string(sid)), zap.String("owner", node), zap.String("forwarded_by", c.creds.forwardedBy))
		return nil, errOwnerUnavailable(sid, node, fmt.Sprintf("session %s is served by node %s, and this request was relayed already; retry in a few seconds", sid, quote(node)))
	case c.creds.auth == "":
		return nil, errOwnerUnavailable(sid, node, fmt.Sprintf("session %s is served by node %s; this connection serves this replica's sessions only: use GET /v1/acp over WebSocket", sid, quote(node)))
	}
	up, err := c.upstream(node, base)
	if err != nil {
		c.log.Warn("acp: the session's owner cannot be reached", zap.String("session_id", string(sid)), zap.String("owner", node), zap.Error(err))
		return nil, errOwnerUnavailable(sid, node, fmt.Sprintf("session %s is served by node %s, which cannot be reached; retry in a few seconds", sid, quote(node)))
	}
	return up, nil
}

// upstream returns the connection's open upstream to an owner, opening
// it if need be: one per owner, shared by the connection's requests.
func (c *conn) upstream(node, base string) (*upstream, error) {
	key := node + " " + base
	for {
		c.mu.Lock()
		if c.ended {
			c.mu.Unlock()
			return nil, errors.New("the connection is closing")
		}
		up := c.ups[key]
		if up == nil {
			up = newUpstream(c, node, base)
			c.ups[key] = up
			c.mu.Unlock()
			up.err = up.open()
			close(up.ready)
			if up.err != nil {
				c.mu.Lock()
				if c.ups[key] == up {
					delete(c.ups, key)
				}
				c.mu.Unlock()
				return nil, up.err
			}
			c.log.Info("acp relay opened", zap.String("owner", node))
			return up, nil
		}
		c.mu.Unlock()
		<-up.ready
		if up.err != nil {
			return nil, up.err // it just failed: not again at once
		}
		if !up.gone() {
			return up, nil
		}
		// The owner went away (a restart, a failed write): open anew.
		c.mu.Lock()
		if c.ups[key] == up {
			delete(c.ups, key)
		}
		c.mu.Unlock()
		up.close()
	}
}

// closeUpstreams closes the connection's upstreams once it has ended:
// what is still relayed fails, and the owners cancel their turns for it.
func (c *conn) closeUpstreams() {
	c.mu.Lock()
	ups := c.ups
	c.ups = map[string]*upstream{}
	c.mu.Unlock()
	for _, up := range ups {
		<-up.ready
		up.close()
	}
}

// upstream is an ACP client connection to the owner of sessions, for one
// downstream connection.
type upstream struct {
	c          *conn
	node, base string
	ready      chan struct{} // closed once open returned
	err        error         // open's
	// ctx is the relayed requests': it ends when the upstream closes.
	ctx    context.Context
	cancel context.CancelFunc

	ws        *websocket.Conn
	cs        *sdk.ClientSideConnection
	closeOnce sync.Once
	closed    chan struct{} // closed by close
	stopPing  func()
	slots     chan struct{} // a token per session/update read from the owner and not yet relayed

	wmu sync.Mutex // one write at a time, in call order

	mu      sync.Mutex
	relayed *sync.Cond               // on mu: signalled when updates is 0, or the upstream closes
	updates int                      // session/update notifications read from the owner and not yet relayed
	ended   bool                     // close has run
	sent    map[string]*sent         // requests waiting to be written, by method and session
	asks    map[string]string        // the owner's session/request_permission ids → their call keys
	asking  map[string]chan struct{} // call key → closed once the relayed request returned
}

// sent is a request of the relay that is about to be written to the
// owner: ch is closed once it is, and id is then its id on the upstream.
type sent struct {
	key string
	ch  chan struct{}
	id  json.RawMessage
}

func newUpstream(c *conn, node, base string) *upstream {
	ctx, cancel := context.WithCancel(context.Background())
	up := &upstream{
		c: c, node: node, base: base, ready: make(chan struct{}), closed: make(chan struct{}), ctx: ctx, cancel: cancel,
		slots: make(chan struct{}, relaySlots), sent: map[string]*sent{}, asks: map[string]string{}, asking: map[string]chan struct{}{},
	}
	up.relayed = sync.NewCond(&up.mu)
	return up
}

// relayURL is the owner's GET /v1/acp as a WebSocket URL.
func relayURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("the owner's URL %q: %w", base, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("the owner's URL %q is not http:// or https://", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("the owner's URL %q has no host", base)
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/acp"
	u.RawPath = ""
	return u.String(), nil
}

// open dials the owner and initializes the connection with what the
// client sent in its own initialize.
func (up *upstream) open() error {
	c := up.c
	target, err := relayURL(up.base)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayDialTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("Authorization", c.creds.auth)
	h.Set(UserHeader, c.peer.User)
	h.Set(ForwardedByHeader, c.s.cfg.Fleet.Self())
	ws, resp, err := websocket.Dial(ctx, target, &websocket.DialOptions{HTTPClient: c.s.relayHTTP, HTTPHeader: h})
	if err != nil {
		if resp != nil {
			return fmt.Errorf("open %s: HTTP %d: %w", target, resp.StatusCode, err)
		}
		return fmt.Errorf("open %s: %w", target, err)
	}
	ws.SetReadLimit(int64(sdkMaxLine))
	up.ws = ws
	up.stopPing = c.s.heartbeat(ws) // before anything may call close
	fromOwner, toSDK := io.Pipe()
	up.cs = sdk.NewClientSideConnection(relayClient{up}, relayOutput{up}, fromOwner)
	stdlog, _ := zap.NewStdLogAt(c.log.Named("sdk-relay").With(zap.String("owner", up.node)), zapcore.DebugLevel)
	up.cs.SetLogger(slog.New(slog.NewTextHandler(stdlog.Writer(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	go func() {
		// The SDK stops reading when it gives up on the connection: a
		// write to the pipe would then block forever.
		<-up.cs.Done()
		_ = fromOwner.Close()
		up.close()
	}()
	go up.read(toSDK)
	init := c.clientInit()
	if _, err := up.cs.Initialize(ctx, init); err != nil {
		up.close()
		return fmt.Errorf("initialize %s: %w", target, err)
	}
	return nil
}

// gone reports whether the upstream can no longer be used.
func (up *upstream) gone() bool {
	select {
	case <-up.closed:
		return true
	case <-up.cs.Done():
		return true
	default:
		return false
	}
}

// close ends the upstream: the owner cancels what still runs for it
// ("connection-closed").
func (up *upstream) close() {
	up.closeOnce.Do(func() {
		close(up.closed)
		up.mu.Lock()
		up.ended = true
		up.relayed.Broadcast()
		up.mu.Unlock()
		if up.ws != nil {
			_ = (&wsTransport{c: up.ws}).Close()
		}
		if up.stopPing != nil { // after the close: a ping waiting for its pong returns
			up.stopPing()
		}
		// After the close too: what the SDK sends when a request's
		// context ends (Connection.waitForResponse) does not reach the
		// owner.
		up.cancel()
	})
}

// read hands the owner's messages to the SDK, one line each.
func (up *upstream) read(toSDK *io.PipeWriter) {
	defer toSDK.Close()
	defer up.close()
	for {
		_, data, err := up.ws.Read(context.Background())
		if err != nil {
			up.c.log.Debug("acp relay: the owner's connection ended", zap.String("owner", up.node), zap.Error(err))
			return
		}
		if bytes.ContainsAny(data, "\r\n") { // the SDK reads lines
			var b bytes.Buffer
			if json.Compact(&b, data) == nil {
				data = b.Bytes()
			}
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		_ = json.Unmarshal(data, &m)
		var withdrawn <-chan struct{}
		switch {
		case m.Method == sdk.ClientMethodSessionUpdate && m.ID == nil:
			if relayedUpdate(m.Params) {
				select { // released by relayClient.SessionUpdate
				case up.slots <- struct{}{}:
				case <-up.closed:
					return
				}
				up.mu.Lock()
				up.updates++
				up.mu.Unlock()
			}
		case m.Method == "$/cancel_request" && m.ID == nil:
			up.waitRelayed()
			withdrawn = up.withdrawn(m.Params)
		case m.Method != "" && m.ID != nil:
			up.waitRelayed()
			if m.Method == sdk.ClientMethodSessionRequestPermission {
				up.noteAsk(m.ID, m.Params)
			}
		}
		if _, err := toSDK.Write(append(data, '\n')); err != nil {
			return
		}
		if withdrawn != nil {
			// What the owner sent after a withdrawal follows it on the
			// client's side too: wait until the relayed request is
			// withdrawn there (the SDK does it from a goroutine).
			select {
			case <-withdrawn:
			case <-up.closed:
			case <-time.After(2 * withdrawWait):
			}
		}
	}
}

// waitRelayed waits until every session/update read so far is on the
// client's wire. Connection.receive (SDK) runs each request of the owner
// in a goroutine, and handles a $/cancel_request at once, but queues
// notifications: without the wait, the client could get a permission
// request, or its withdrawal, before the updates the owner sent first.
func (up *upstream) waitRelayed() {
	up.mu.Lock()
	defer up.mu.Unlock()
	for up.updates > 0 && !up.ended {
		up.relayed.Wait()
	}
}

// relayedUpdate reports whether the SDK will hand a session/update's
// params to relayClient.SessionUpdate, which releases its slot: the
// generated handler drops what does not decode or validate.
func relayedUpdate(params json.RawMessage) bool {
	var n sdk.SessionNotification
	return json.Unmarshal(params, &n) == nil && n.Validate() == nil
}

// noteAsk remembers a permission request of the owner by its id, for a
// later withdrawal.
func (up *upstream) noteAsk(id, params json.RawMessage) {
	var p struct {
		SessionID string `json:"sessionId"`
		ToolCall  struct {
			ToolCallID string `json:"toolCallId"`
		} `json:"toolCall"`
	}
	_ = json.Unmarshal(params, &p)
	key := callKey(p.SessionID, p.ToolCall.ToolCallID)
	up.mu.Lock()
	up.asks[idKey(id)] = key
	up.asking[key] = make(chan struct{})
	up.mu.Unlock()
}

// withdrawn returns the channel closed once the permission request the
// owner withdraws has returned; nil if it is not one.
func (up *upstream) withdrawn(params json.RawMessage) <-chan struct{} {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(params, &p) != nil || p.RequestID == nil {
		return nil
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	key, ok := up.asks[idKey(p.RequestID)]
	if !ok {
		return nil
	}
	delete(up.asks, idKey(p.RequestID))
	return up.asking[key] // nil once returned
}

// asked notes that the relayed permission request for key returned.
func (up *upstream) asked(key string) {
	up.mu.Lock()
	defer up.mu.Unlock()
	if ch := up.asking[key]; ch != nil {
		close(ch)
		delete(up.asking, key)
	}
	for id, k := range up.asks {
		if k == key {
			delete(up.asks, id)
		}
	}
}

// relayOutput is the SDK's io.Writer: Connection.sendMessage writes one
// message per call, a line of JSON.
type relayOutput struct{ up *upstream }

func (o relayOutput) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSuffix(p, []byte("\n")), []byte("\n")) {
		if err := o.up.send(line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// send writes one message to the owner. A failed write ends the
// upstream: the SDK would wait for answers that cannot come.
func (up *upstream) send(msg []byte) error {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			SessionID string `json:"sessionId"`
		} `json:"params"`
	}
	_ = json.Unmarshal(msg, &m)
	up.wmu.Lock()
	defer up.wmu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), up.c.s.cfg.WriteTimeout)
	err := up.ws.Write(ctx, websocket.MessageText, msg)
	cancel()
	if err != nil {
		up.c.log.Info("acp relay: a write to the owner failed; closing", zap.String("owner", up.node), zap.Error(err))
		_ = up.ws.CloseNow()
		return err
	}
	if m.ID != nil && m.Method != "" {
		key := m.Method + "\x00" + m.Params.SessionID
		up.mu.Lock()
		s := up.sent[key]
		delete(up.sent, key)
		up.mu.Unlock()
		if s != nil {
			s.id = append(json.RawMessage(nil), m.ID...)
			close(s.ch)
		}
	}
	return nil
}

// expect returns what tells when the relay's next request of method for
// sid is on the wire. The connection admits one prompt per session, and
// the reader one session/close at a time.
func (up *upstream) expect(method string, sid session.ID) *sent {
	s := &sent{key: method + "\x00" + string(sid), ch: make(chan struct{})}
	up.mu.Lock()
	up.sent[s.key] = s
	up.mu.Unlock()
	return s
}

// unexpect forgets s, if it was not written.
func (up *upstream) unexpect(s *sent) {
	up.mu.Lock()
	if up.sent[s.key] == s {
		delete(up.sent, s.key)
	}
	up.mu.Unlock()
}

// cancelRequest withdraws the relay's request id on the owner.
func (up *upstream) cancelRequest(id json.RawMessage) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "$/cancel_request", "params": map[string]json.RawMessage{"requestId": id}})
	_ = up.send(b)
}

// mapErr turns what a relayed request returned into the client's error:
// the owner's own error as it gave it, owner_unavailable when the owner
// went away.
func (up *upstream) mapErr(err error, sid session.ID) *Error {
	var re *sdk.RequestError
	isRE := errors.As(err, &re)
	// The SDK's own errors: "peer disconnected" (-32603), or -32800 when
	// the upstream's context ended with it.
	if up.gone() && (!isRE || re.Code == CodeInternalError || re.Code == codeRequestCancelled) {
		up.c.log.Warn("acp relay: the owner went away", zap.String("session_id", string(sid)), zap.String("owner", up.node), zap.Error(err))
		return errOwnerUnavailable(sid, up.node, fmt.Sprintf("session %s is served by node %s, which closed the connection; retry in a few seconds", sid, quote(up.node)))
	}
	if isRE {
		return re
	}
	up.c.log.Error("acp relay failed", zap.String("session_id", string(sid)), zap.String("owner", up.node), zap.Error(err))
	return errInternal()
}

// relayClient is the client side of an upstream: what the owner sends the
// client goes to the downstream client.
type relayClient struct{ up *upstream }

var _ sdk.Client = relayClient{}

// SessionUpdate writes the update to the client before it returns.
func (r relayClient) SessionUpdate(ctx context.Context, n sdk.SessionNotification) error {
	defer func() {
		select {
		case <-r.up.slots:
		default:
		}
		r.up.mu.Lock()
		if r.up.updates > 0 {
			r.up.updates--
		}
		if r.up.updates == 0 {
			r.up.relayed.Broadcast()
		}
		r.up.mu.Unlock()
	}()
	return r.up.c.sdk.SessionUpdate(context.WithoutCancel(ctx), n)
}

// RequestPermission asks the client. The SDK's context ends when the owner
// withdraws its request; the client's request is then withdrawn too, and
// RequestPermission waits until that is on the wire.
func (r relayClient) RequestPermission(ctx context.Context, p sdk.RequestPermissionRequest) (sdk.RequestPermissionResponse, error) {
	c, key := r.up.c, callKey(string(p.SessionId), string(p.ToolCall.ToolCallId))
	defer r.up.asked(key)
	resp, err := c.sdk.RequestPermission(ctx, p)
	if ctx.Err() != nil {
		if settled := c.settledOf(key); settled != nil {
			select {
			case <-settled:
			case <-c.done:
			case <-time.After(withdrawWait):
			}
		}
	}
	return resp, err
}

// agentd's tools run on the agentd host and never call these; they are
// relayed as they come for an owner of another version.

func (r relayClient) ReadTextFile(ctx context.Context, p sdk.ReadTextFileRequest) (sdk.ReadTextFileResponse, error) {
	return r.up.c.sdk.ReadTextFile(ctx, p)
}

func (r relayClient) WriteTextFile(ctx context.Context, p sdk.WriteTextFileRequest) (sdk.WriteTextFileResponse, error) {
	return r.up.c.sdk.WriteTextFile(ctx, p)
}

func (r relayClient) CreateTerminal(ctx context.Context, p sdk.CreateTerminalRequest) (sdk.CreateTerminalResponse, error) {
	return r.up.c.sdk.CreateTerminal(ctx, p)
}

func (r relayClient) KillTerminal(ctx context.Context, p sdk.KillTerminalRequest) (sdk.KillTerminalResponse, error) {
	return r.up.c.sdk.KillTerminal(ctx, p)
}

func (r relayClient) TerminalOutput(ctx context.Context, p sdk.TerminalOutputRequest) (sdk.TerminalOutputResponse, error) {
	return r.up.c.sdk.TerminalOutput(ctx, p)
}

func (r relayClient) ReleaseTerminal(ctx context.Context, p sdk.ReleaseTerminalRequest) (sdk.ReleaseTerminalResponse, error) {
	return r.up.c.sdk.ReleaseTerminal(ctx, p)
}

func (r relayClient) WaitForTerminalExit(ctx context.Context, p sdk.WaitForTerminalExitRequest) (sdk.WaitForTerminalExitResponse, error) {
	return r.up.c.sdk.WaitForTerminalExit(ctx, p)
}

// relayPrompt runs a prompt on the session's owner. A cancel (the
// client's session/cancel or $/cancel_request) withdraws it there with a
// $/cancel_request of its id, and the owner's answer, "cancelled" after
// the turn's last updates, is awaited and relayed as a local prompt's
// would be. When the connection ends, its upstreams close: the owner
// cancels the turn ("connection-closed"), and the prompt is answered
// "cancelled" here if the client still reads (Shutdown).
func (c *conn) relayPrompt(up *upstream, pr *prompt, req sdk.PromptRequest) (sdk.PromptResponse, error) {
	defer pr.settleRelay()
	if pr.loading != nil { // a pipelined prompt waits for the replay to reach the wire
		select {
		case <-pr.loading:
		case <-pr.ctx.Done():
		}
	}
	if pr.ctx.Err() != nil {
		return sdk.PromptResponse{StopReason: sdk.StopReasonCancelled}, nil
	}
	s := up.expect(sdk.AgentMethodSessionPrompt, pr.sid)
	defer up.unexpect(s)
	type result struct {
		resp sdk.PromptResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// Not a context that a cancel ends: Connection.waitForResponse
		// (SDK) would stop waiting for the owner's answer.
		resp, err := up.cs.Prompt(up.ctx, req)
		done <- result{resp, err}
	}()
	var r result
	select {
	case r = <-done: // not written, or answered already
	case <-s.ch:
		pr.settleRelay()
		select {
		case r = <-done:
		case <-pr.ctx.Done():
			if c.ctx.Err() == nil { // else the connection ends, and finish closes the upstream
				up.cancelRequest(s.id)
			}
			r = <-done
		}
	}
	switch {
	case r.err != nil && c.ctx.Err() != nil:
		return sdk.PromptResponse{StopReason: sdk.StopReasonCancelled}, nil
	case r.err != nil:
		return sdk.PromptResponse{}, up.mapErr(r.err, pr.sid)
	}
	return r.resp, nil
}

// relayClose closes a session on its owner: after this connection's
// prompt of it is on the owner's wire (the owner's close cancels it and
// answers after it), before the reader goes on (pass), and it answers
// once this connection's prompt and load of the session are answered, as
// a local close does.
func (c *conn) relayClose(up *upstream, req sdk.CloseSessionRequest, pass func()) (sdk.CloseSessionResponse, error) {
	sid := session.ID(req.SessionId)
	c.mu.Lock()
	pr := c.prompts[sid]
	loading := c.loading[sid]
	c.mu.Unlock()
	if pr != nil {
		pr.cancelRequested(ReasonSessionCancel)
		select {
		case <-pr.relayed:
		case <-c.done:
		}
	}
	s := up.expect(sdk.AgentMethodSessionClose, sid)
	defer up.unexpect(s)
	type result struct {
		resp sdk.CloseSessionResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := up.cs.CloseSession(up.ctx, req)
		done <- result{resp, err}
	}()
	var r result
	select {
	case <-s.ch:
		pass()
		r = <-done
	case r = <-done:
		pass()
	}
	if r.err != nil {
		return sdk.CloseSessionResponse{}, up.mapErr(r.err, sid)
	}
	for _, ch := range []<-chan struct{}{answered(pr), loading} {
		if ch != nil {
			select {
			case <-ch:
			case <-c.done:
			}
		}
	}
	c.log.Info("acp session closed through its owner", zap.String("session_id", string(sid)), zap.String("owner", up.node))
	return r.resp, nil
}

// clientInit is what the owners of relayed sessions are initialized with:
// the client's own initialize.
func (c *conn) clientInit() sdk.InitializeRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.initReq == nil {
		return sdk.InitializeRequest{ProtocolVersion: ProtocolVersion}
	}
	return *c.initReq
}
