package acp

// The wire adapter stands between a Transport and the SDK's
// AgentSideConnection (github.com/coder/acp-go-sdk), which does the
// JSON-RPC: it decodes requests into the SDK's types and dispatches them to
// agentSide, each in a goroutine of its own, writes their responses, and
// correlates agentd's requests to the client with their answers. The
// adapter does only what the SDK's Connection lacks, each piece below
// saying which function lacks what:
//
//   - framing: Transport messages in, one compact line each to the SDK's
//     io.Reader; the SDK's lines out, one Transport message each;
//   - answers to messages the SDK never dispatches (malformed ones, and
//     requests refused before dispatch), written directly;
//   - admission (admit.go): in read order, what the SDK would do
//     concurrently or not at all;
//   - id mapping: agentd's requests to the client carry "srv_<16 hex>"
//     ids, and a request with a null id is answered under null.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	sdk "github.com/coder/acp-go-sdk"
	"go.uber.org/zap"
)

// JSON-RPC and ACP error codes. Append only: clients branch on them.
const (
	CodeParseError     = -32700 // the message is not JSON, or too long (id null)
	CodeInvalidRequest = -32600 // not a JSON-RPC 2.0 message, a batch, before initialize, or the session is busy
	CodeMethodNotFound = -32601 // no such method
	CodeInvalidParams  = -32602 // the params do not have the shape the method takes
	CodeInternalError  = -32603 // see the agentd log
	CodeNotFound       = -32002 // unknown session (data.sessionId names it)
	// CodeOwnerUnavailable: the replica that owns the session cannot be
	// reached (data: {"code": "owner_unavailable", "node", "sessionId"});
	// the session is not lost: retry in a few seconds. 503 in the HTTP API.
	CodeOwnerUnavailable = -32053
	// CodeBudgetExceeded: the daily token budget of the caller's tenant or
	// user is spent (data: {"code": "budget_exceeded", "retryAfter":
	// seconds, "resetsAt"}). 429 in the HTTP API.
	CodeBudgetExceeded = -32029
)

// Error is a JSON-RPC error object: the SDK's.
type Error = sdk.RequestError

func errInvalidParams(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParams, Message: "Invalid params: " + fmt.Sprintf(format, args...)}
}

func errInvalidRequest(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "Invalid request: " + msg}
}

func errSessionNotFound(id string) *Error {
	return &Error{Code: CodeNotFound, Message: "Resource not found: no session " + quote(id), Data: map[string]string{"sessionId": id}}
}

func errInternal() *Error {
	return &Error{Code: CodeInternalError, Message: "Internal error; see the agentd log"}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

var nullID = json.RawMessage("null")

// sdkMaxLine is the longest line the SDK reads: Connection.receive scans
// with a 10 MiB bufio.Scanner buffer, and a longer line ends the
// connection instead of being refused.
const sdkMaxLine = 10<<20 - 1

// envelope is a JSON-RPC message split into its members. A request has a
// method and an id, a notification a method and no id, a response an id
// and no method.
type envelope struct {
	members map[string]json.RawMessage
	id      json.RawMessage // nil: absent; "null" is a present null id
	method  string
	params  json.RawMessage
}

// parseEnvelope checks that data is one JSON-RPC 2.0 message, or returns
// the error to answer with and the id to answer it under (null when
// unknown). Connection.receive (SDK) instead logs and drops what it cannot
// unmarshal, ignores "jsonrpc", and answers a request with an object or
// array id under that id: a client would wait for an answer forever.
func parseEnvelope(data []byte) (envelope, json.RawMessage, *Error) {
	var e envelope
	if err := json.Unmarshal(data, &e.members); err != nil {
		switch {
		case !json.Valid(data):
			return e, nullID, &Error{Code: CodeParseError, Message: "Parse error: the message is not valid JSON"}
		case bytes.HasPrefix(bytes.TrimSpace(data), []byte("[")):
			return e, nullID, errInvalidRequest("JSON-RPC batches are not supported")
		default:
			return e, nullID, errInvalidRequest("a message must be a JSON object")
		}
	}
	if id, ok := e.members["id"]; ok {
		if !validID(id) {
			return e, nullID, errInvalidRequest("id must be a string, a number or null")
		}
		e.id = id
	}
	answerID := e.id
	if answerID == nil {
		answerID = nullID
	}
	var version string
	if err := json.Unmarshal(e.members["jsonrpc"], &version); err != nil || version != "2.0" {
		return e, answerID, errInvalidRequest(`"jsonrpc" must be "2.0"`)
	}
	if raw, ok := e.members["method"]; ok {
		if err := json.Unmarshal(raw, &e.method); err != nil || e.method == "" {
			return e, answerID, errInvalidRequest(`"method" must be a non-empty string`)
		}
		e.params = e.members["params"]
		if len(e.params) > 0 && e.params[0] != '{' && !bytes.Equal(e.params, nullID) {
			return e, answerID, errInvalidParams("params must be an object")
		}
		return e, nil, nil
	}
	_, hasResult := e.members["result"]
	_, hasError := e.members["error"]
	if e.id == nil || hasResult == hasError {
		return e, answerID, errInvalidRequest(`a message needs a "method", or an "id" and one of "result" and "error"`)
	}
	return e, nil, nil
}

func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// idKey names a request id whatever its spelling: the SDK echoes an id
// through json.Marshal, which may escape a string otherwise than the
// client did.
func idKey(id json.RawMessage) string {
	var s string
	if json.Unmarshal(id, &s) == nil {
		return "s" + s
	}
	return "n" + string(id)
}

// line renders the envelope as one compact line for the SDK, with the
// members in set replaced.
func (e envelope) line(set map[string]json.RawMessage) ([]byte, error) {
	m := e.members
	if len(set) > 0 {
		m = make(map[string]json.RawMessage, len(e.members))
		for k, v := range e.members {
			m[k] = v
		}
		for k, v := range set {
			m[k] = v
		}
	}
	return json.Marshal(m) // compact: encoding/json escapes newlines in strings
}

// request is a request of the client that the SDK handles.
type request struct {
	wireID  json.RawMessage // the id to answer under when the SDK saw another (a null id)
	release func()          // runs once it is answered, or never will be
}

// call is a request agentd sent the client (session/request_permission).
type call struct {
	sdkID   string        // the id the SDK gave it
	key     string        // its sessionId and toolCallId
	settled chan struct{} // closed once answered, withdrawn on the wire, or the connection ends
}

func callKey(sid, toolCallID string) string { return sid + "\x00" + toolCallID }

// newCallID returns the wire id of a request agentd sends: "srv_" and 16
// hex digits (Agentao's shape), never a number, so it cannot collide with
// the client's own ids in logs. Connection.prepareRequest (SDK) numbers
// its requests from 1; the adapter swaps the ids both ways.
func newCallID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "srv_" + hex.EncodeToString(b[:])
}

// receive handles one message from the client, in read order.
func (c *conn) receive(data []byte) {
	e, answerID, perr := parseEnvelope(data)
	switch {
	case perr != nil:
		c.reply(answerID, perr)
	case e.method == "":
		c.routeAnswer(e)
	case e.id == nil:
		c.receiveNotification(e)
	default:
		c.receiveRequest(e)
	}
}

// receiveNotification lets through the notifications agentd handles.
// Others are dropped here: the SDK would only log them, after queueing
// them in Connection.receive's notification queue, which closes the
// connection once 1024 wait.
func (c *conn) receiveNotification(e envelope) {
	switch e.method {
	case sdk.AgentMethodSessionCancel:
		if _, err := c.admit(e.method, e.params); err != nil {
			c.log.Debug("ignored session/cancel", zap.String("error", err.Message))
			return
		}
		c.forwardWaiting(e, nil)
	case "$/cancel_request": // Connection.receive handles it in read order
		c.forward(e, nil)
	default:
		c.log.Debug("ignored notification", zap.String("method", e.method))
	}
}

// receiveRequest admits a request and hands it to the SDK, or answers it.
func (c *conn) receiveRequest(e envelope) {
	var set map[string]json.RawMessage
	r := &request{}
	if bytes.Equal(e.id, nullID) {
		// Connection.receive (SDK) takes a null id for a notification and
		// would never answer: it sees a private id instead.
		c.mu.Lock()
		c.nullIDs++
		private, _ := json.Marshal("agentd-null-id-" + strconv.Itoa(c.nullIDs))
		c.mu.Unlock()
		set = map[string]json.RawMessage{"id": private}
		r.wireID = nullID
		e.id = private
	}
	key := idKey(e.id)
	c.mu.Lock()
	var refuse *Error
	switch {
	case c.ended:
		c.mu.Unlock()
		return
	case !c.initialized && needsInitialize(e.method):
		refuse = errInvalidRequest("call initialize first")
	case c.pending[key] != nil:
		refuse = errInvalidRequest("a request with this id is still in flight")
	case len(c.pending) >= c.s.cfg.MaxInFlight:
		refuse = errInvalidRequest(fmt.Sprintf("more than %d requests in flight on this connection", c.s.cfg.MaxInFlight))
	}
	c.mu.Unlock()
	if refuse != nil {
		c.reply(answerIDOf(e, r), refuse)
		return
	}
	release, err := c.admit(e.method, e.params)
	if err != nil {
		c.reply(answerIDOf(e, r), err)
		return
	}
	r.release = release
	c.mu.Lock()
	c.pending[key] = r
	c.mu.Unlock()
	c.requests.Add(1)
	switch e.method {
	case sdk.AgentMethodSessionCancel, sdk.AgentMethodSessionClose:
		c.forwardWaiting(e, set)
	default:
		if !c.forward(e, set) {
			c.drop(key)
		}
	}
}

func answerIDOf(e envelope, r *request) json.RawMessage {
	if r.wireID != nil {
		return r.wireID
	}
	return e.id
}

// forward hands a message to the SDK; false if it could not.
func (c *conn) forward(e envelope, set map[string]json.RawMessage) bool {
	line, err := e.line(set)
	switch {
	case err != nil:
		c.log.Error("encode a message for the SDK", zap.Error(err))
		return false
	case len(line) > sdkMaxLine: // longer than it came, by a rewritten id
		if e.method != "" && e.id != nil {
			c.reply(nullID, &Error{Code: CodeParseError, Message: "Parse error: " + (&TooLargeError{Limit: sdkMaxLine}).Error()})
		}
		return false
	}
	if _, err := c.toSDK.Write(append(line, '\n')); err != nil {
		return false // the SDK has stopped reading: the connection is ending
	}
	return true
}

// forwardWaiting hands a session/cancel or session/close to the SDK and
// waits until its handler has cancelled what it cancels (takeBarrier).
// Connection.receive (SDK) runs each request in a goroutine and each
// notification in a queue of its own, so without the wait a prompt read
// after a cancel could be admitted before the cancel runs, and be
// cancelled by it.
func (c *conn) forwardWaiting(e envelope, set map[string]json.RawMessage) {
	barrier := make(chan struct{})
	c.mu.Lock()
	c.barrier, c.barrierCall = barrier, e.id != nil
	c.mu.Unlock()
	if !c.forward(e, set) {
		if e.id != nil {
			c.drop(idKey(e.id))
		}
		return
	}
	select {
	case <-barrier:
	case <-c.done:
	}
}

// takeBarrier returns what lets the reader go on after the session/cancel
// or session/close the handler calling it runs (any number of calls), and
// whether that session/cancel is a request. The reader sets the barrier
// before the SDK sees the message and waits for it, so it is the
// handler's own when the handler starts.
func (c *conn) takeBarrier() (pass func(), call bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	barrier, call := c.barrier, c.barrierCall
	c.barrier = nil
	var once sync.Once
	return func() {
		once.Do(func() {
			if barrier != nil {
				close(barrier)
			}
		})
	}, call
}

// drop forgets a request the SDK will never answer.
func (c *conn) drop(key string) {
	c.mu.Lock()
	r := c.pending[key]
	delete(c.pending, key)
	c.mu.Unlock()
	if r != nil {
		if r.release != nil {
			r.release()
		}
		c.requests.Done()
	}
}

// reply answers a message the SDK never sees: the SDK has no way to answer
// a message it did not dispatch itself.
func (c *conn) reply(id json.RawMessage, e *Error) {
	b, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *Error          `json:"error"`
	}{"2.0", id, e})
	if err != nil {
		c.log.Error("encode an error response", zap.Error(err))
		return
	}
	_ = c.write(b)
}

// routeAnswer hands the client's answer to agentd's request to the SDK,
// under the SDK's id.
func (c *conn) routeAnswer(e envelope) {
	var wire string
	if json.Unmarshal(e.id, &wire) != nil {
		c.log.Debug("response to a request agentd did not send", zap.ByteString("id", e.id))
		return
	}
	c.mu.Lock()
	cl := c.calls[wire]
	if cl != nil {
		delete(c.calls, wire)
		delete(c.callIDs, cl.sdkID)
	}
	c.mu.Unlock()
	if cl == nil {
		c.log.Debug("response to no pending request", zap.String("id", wire))
		return
	}
	defer close(cl.settled)
	set := map[string]json.RawMessage{"id": json.RawMessage(cl.sdkID)}
	if result, ok := flattenedOutcome(e.members["result"]); ok {
		set["result"] = result
	}
	c.forward(e, set)
}

// flattenedOutcome rewrites the flattened answer to
// session/request_permission that some clients send
// ({"outcome":"selected","optionId":…}, Agentao's shape) into the nested
// one: RequestPermissionOutcome.UnmarshalJSON (SDK) knows only the latter
// and fails the whole call otherwise.
func flattenedOutcome(result json.RawMessage) (json.RawMessage, bool) {
	var flat struct {
		Outcome  json.RawMessage `json:"outcome"`
		OptionID json.RawMessage `json:"optionId"`
	}
	if json.Unmarshal(result, &flat) != nil || len(flat.Outcome) == 0 || flat.Outcome[0] != '"' {
		return nil, false
	}
	inner := map[string]json.RawMessage{"outcome": flat.Outcome}
	if flat.OptionID != nil {
		inner["optionId"] = flat.OptionID
	}
	b, err := json.Marshal(map[string]any{"outcome": inner})
	return b, err == nil
}

// sdkOutput is the SDK's io.Writer: Connection.sendMessage writes one
// message per call, a line of JSON.
type sdkOutput struct{ c *conn }

func (o sdkOutput) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSuffix(p, []byte("\n")), []byte("\n")) {
		if err := o.c.send(line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// send writes one message of the SDK, with the ids swapped, and notes what
// it answers or withdraws.
func (c *conn) send(msg []byte) error {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		c.log.Error("the SDK wrote something else than JSON", zap.Error(err))
		return err
	}
	var after func()
	switch {
	case m.ID != nil && m.Method == "":
		msg, after = c.answering(m.ID, msg)
	case m.ID != nil:
		msg = c.calling(m.ID, msg)
	case m.Method == "$/cancel_request":
		msg, after = c.withdrawing(msg)
		if msg == nil {
			return nil
		}
	}
	err := c.write(msg)
	if after != nil {
		after()
	}
	return err
}

// answering notes the response to a request of the client.
func (c *conn) answering(id json.RawMessage, msg []byte) ([]byte, func()) {
	key := idKey(id)
	c.mu.Lock()
	r := c.pending[key]
	delete(c.pending, key)
	c.mu.Unlock()
	if r == nil {
		return msg, nil
	}
	if r.wireID != nil {
		msg = setMember(msg, "id", r.wireID)
	}
	return msg, func() {
		if r.release != nil {
			r.release()
		}
		c.requests.Done()
	}
}

// calling gives a request of agentd its wire id.
func (c *conn) calling(id json.RawMessage, msg []byte) []byte {
	var p struct {
		Params struct {
			SessionID string `json:"sessionId"`
			ToolCall  struct {
				ToolCallID string `json:"toolCallId"`
			} `json:"toolCall"`
		} `json:"params"`
	}
	_ = json.Unmarshal(msg, &p)
	wire := newCallID()
	cl := &call{sdkID: string(id), key: callKey(p.Params.SessionID, p.Params.ToolCall.ToolCallID), settled: make(chan struct{})}
	c.mu.Lock()
	if c.ended {
		close(cl.settled)
	} else {
		c.calls[wire] = cl
		c.callIDs[cl.sdkID] = wire
	}
	c.mu.Unlock()
	b, _ := json.Marshal(wire)
	return setMember(msg, "id", b)
}

// withdrawing gives a $/cancel_request of the SDK the wire id of the
// request it withdraws; nil if that request is already answered.
func (c *conn) withdrawing(msg []byte) ([]byte, func()) {
	var p struct {
		Params struct {
			RequestID json.RawMessage `json:"requestId"`
		} `json:"params"`
	}
	_ = json.Unmarshal(msg, &p)
	c.mu.Lock()
	wire, ok := c.callIDs[string(p.Params.RequestID)]
	var cl *call
	if ok {
		cl = c.calls[wire]
		delete(c.calls, wire)
		delete(c.callIDs, string(p.Params.RequestID))
	}
	c.mu.Unlock()
	if cl == nil {
		return nil, nil
	}
	b, _ := json.Marshal(map[string]string{"requestId": wire})
	return setMember(msg, "params", b), func() { close(cl.settled) }
}

// settledOf returns the channel closed once agentd's request about the
// tool call is answered or withdrawn on the wire; nil if it is.
func (c *conn) settledOf(key string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cl := range c.calls {
		if cl.key == key {
			return cl.settled
		}
	}
	return nil
}

// setMember returns the JSON object msg with one member replaced.
func setMember(msg []byte, name string, value json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil {
		return msg
	}
	m[name] = value
	b, err := json.Marshal(m)
	if err != nil {
		return msg
	}
	return b
}
