package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/agentd/agentd/internal/agent"
)

// convo is one session of the load, with every turn sent to it.
type convo struct {
	tenant, key, user, id string
	turns                 []*turn
	touched               bool // a turn was sent to it in the current run
}

// turnState is what the client knows of a turn.
type turnState int

const (
	// acked: a 2xx reply, an SSE done event or an ACP prompt result came
	// back. The turn must be in the history, exactly once.
	acked turnState = iota + 1
	// refused: 409 session_busy or 503 shutting_down, before the turn
	// started. The turn must not be in the history nor have run.
	refused
	// unknown: the answer died with the process. The turn may be missing
	// or present (at most once): as an error turn with reason interrupted
	// when it was cut off, or complete when only its answer was lost.
	unknown
)

// turn is one turn sent by the load. Its marker is in its user text and in
// its shell command, so that the history and the workspace say whether
// and how often it ran.
type turn struct {
	marker string
	kind   string // json, sse or acp
	tool   bool   // it runs a shell command that appends the marker to ran.log and writes out/<marker>.txt
	round  int
	state  turnState
	n      int    // the turn number of the reply (0 over ACP, which does not say)
	status string // the outcome status of the reply
	reply  string
	why    string // for refused and unknown turns: what came back
	// checked: an acknowledged turn was found in its history at least once.
	checked bool
}

// reply is an HTTP answer of agentd.
type reply struct {
	status int
	raw    string
	body   map[string]any
	err    error
}

// call sends one request to the running agentd. Transport errors are
// returned, not fatal: the process may die under any request.
func (c *campaign) call(ctx context.Context, method, path, key, user string, body []byte, header ...string) reply {
	req, err := http.NewRequestWithContext(ctx, method, c.proc.url+path, bytes.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if user != "" {
		req.Header.Set("X-Agentd-User", user)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, raw: string(data), err: err}
	_ = json.Unmarshal(data, &r.body)
	return r
}

// createSessions fills the slots before the first run: half for each
// tenant.
func (c *campaign) createSessions() {
	for w := range slots {
		if c.newSession(w) == nil {
			c.t.Fatalf("create session %d: agentd refused it before any kill:\n%s", w, c.proc.logs.tail(4000))
		}
	}
}

// newSession creates a session in slot w; nil when agentd did not answer
// 201 (it may be dying).
func (c *campaign) newSession(w int) *convo {
	s := &convo{tenant: "acme", key: acmeKey, user: fmt.Sprintf("user-%02d", w)}
	if w%2 == 1 {
		s.tenant, s.key = "globex", globexKey
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := c.call(ctx, "POST", "/v1/sessions", s.key, s.user, nil)
	id, _ := r.body["id"].(string)
	if r.status != http.StatusCreated || id == "" {
		return nil
	}
	s.id = id
	c.mu.Lock()
	c.all = append(c.all, s)
	c.counts.sessionsCreated++
	c.mu.Unlock()
	c.slots[w] = s
	return s
}

// work is the load of slot w during one run: turns of random kinds on the
// slot's session until stop, or until agentd stops answering.
func (c *campaign) work(w int, rng *rand.Rand, stop <-chan struct{}) {
	var acp *acpConn
	defer func() {
		if acp != nil {
			acp.ws.CloseNow()
		}
	}()
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		s := c.slots[w]
		if len(s.turns) >= turnsPerSession {
			if s = c.newSession(w); s == nil {
				return
			}
		}
		tr := &turn{marker: fmt.Sprintf("mk-r%d-w%d-%d", c.round, w, seq), round: c.round, tool: rng.IntN(2) == 0}
		content := tr.marker + " hello"
		if tr.tool {
			content = fmt.Sprintf(`%[1]s [[tool run_shell_command {"command":"echo %[1]s >> ran.log; sleep 0.%[2]d"}]] [[tool write_file {"file_path":"out/%[1]s.txt","content":"%[1]s"}]]`,
				tr.marker, rng.IntN(3))
		}
		if rng.IntN(3) == 0 { // a slow model: more turns are in flight at the kill
			content += fmt.Sprintf(" [[sleep %dms]]", 50+rng.IntN(400))
		}
		switch k := rng.IntN(10); {
		case k < 4:
			tr.kind = "json"
		case k < 7:
			tr.kind = "sse"
		default:
			tr.kind = "acp"
		}
		s.touched = true
		s.turns = append(s.turns, tr)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		switch tr.kind {
		case "json":
			c.jsonTurn(ctx, s, tr, content)
		case "sse":
			c.sseTurn(ctx, s, tr, content)
		case "acp":
			if acp == nil {
				acp = c.dialACP(ctx, s)
			}
			if acp == nil || !acp.resume(ctx, s) {
				tr.state, tr.why = unknown, "ACP connection or session/resume failed; prompt not sent"
				s.turns = s.turns[:len(s.turns)-1] // never sent: nothing to check
				cancel()
				return
			}
			acp.prompt(ctx, s, tr, content)
		}
		cancel()
		c.count(tr)
		if tr.state == unknown || strings.Contains(tr.why, "shutting_down") {
			return // agentd is going away: this slot waits for the restart
		}
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond) // think time, not a timing assertion
	}
}

// count adds a finished turn to the campaign's counts.
func (c *campaign) count(tr *turn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts.turnsSent++
	c.counts.byKind[tr.kind]++
	if tr.tool {
		c.counts.byKind["tool"]++
	}
	switch tr.state {
	case acked:
		c.counts.turnsAcked++
		if tr.ranTool() {
			c.counts.toolTurnsAcked++
		}
	case refused:
		c.counts.turnsRefused++
	default:
		c.counts.turnsUnknown++
	}
}

// ranTool reports whether an acknowledged turn's reply shows its tool calls
// ran to the end: the fake model answers "tool said: …" once tool results
// follow the user's message.
func (tr *turn) ranTool() bool {
	return tr.tool && tr.state == acked && tr.status == string(agent.StatusOK) && strings.HasPrefix(tr.reply, "tool said: ")
}

// classify records an HTTP answer that is not a turn result: 409 and 503
// are refusals before the turn started; anything else is unknown.
func (tr *turn) classify(r reply) {
	switch {
	case r.err != nil:
		tr.state, tr.why = unknown, r.err.Error()
	case r.status == http.StatusConflict || r.status == http.StatusServiceUnavailable:
		tr.state, tr.why = refused, fmt.Sprintf("%d %s", r.status, r.raw)
	default:
		tr.state, tr.why = unknown, fmt.Sprintf("%d %s", r.status, r.raw)
	}
}

// turnResult is the JSON reply of a turn, and the SSE done event.
type turnResult struct {
	Type    string        `json:"type"`
	Turn    int           `json:"turn"`
	Reply   string        `json:"reply"`
	Outcome agent.Outcome `json:"outcome"`
}

func (tr *turn) ack(res turnResult) {
	tr.state, tr.n, tr.status, tr.reply = acked, res.Turn, string(res.Outcome.Status), res.Reply
}

func (c *campaign) jsonTurn(ctx context.Context, s *convo, tr *turn, content string) {
	body, _ := json.Marshal(map[string]string{"content": content})
	r := c.call(ctx, "POST", "/v1/sessions/"+s.id+"/messages", s.key, s.user, body)
	var res turnResult
	if r.err == nil && r.status == http.StatusOK && json.Unmarshal([]byte(r.raw), &res) == nil && res.Turn > 0 {
		tr.ack(res)
		return
	}
	tr.classify(r)
}

// sseTurn streams a turn; it is acknowledged by its done event.
func (c *campaign) sseTurn(ctx context.Context, s *convo, tr *turn, content string) {
	body, _ := json.Marshal(map[string]string{"content": content})
	req, _ := http.NewRequestWithContext(ctx, "POST", c.proc.url+"/v1/sessions/"+s.id+"/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.client.Do(req)
	if err != nil {
		tr.classify(reply{err: err})
		return
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data, err := io.ReadAll(resp.Body)
		tr.classify(reply{status: resp.StatusCode, raw: string(data), err: err})
		return
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var res turnResult
		if json.Unmarshal([]byte(data), &res) != nil {
			continue
		}
		switch res.Type {
		case "done":
			tr.ack(res)
			return
		case "error": // the turn started but did not end well (a failed save): not acknowledged
			tr.state, tr.why = unknown, "SSE error event: "+data
			return
		}
	}
	tr.state, tr.why = unknown, fmt.Sprintf("SSE stream ended without done: %v", sc.Err())
}

// acpConn is the client side of GET /v1/acp: raw JSON-RPC frames over
// coder/websocket, as the end-to-end tests of cmd/agentd speak it.
type acpConn struct {
	ws      *websocket.Conn
	next    int
	resumed map[string]bool
	text    strings.Builder // the agent's message chunks of the last call
}

func (c *campaign) dialACP(ctx context.Context, s *convo) *acpConn {
	header := http.Header{"Authorization": {"Bearer " + s.key}, "X-Agentd-User": {s.user}}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(c.proc.url, "http")+"/v1/acp", &websocket.DialOptions{HTTPHeader: header, HTTPClient: c.client})
	if err != nil {
		return nil
	}
	ws.SetReadLimit(16 << 20)
	a := &acpConn{ws: ws, resumed: map[string]bool{}}
	if _, err := a.call(ctx, "initialize", map[string]any{"protocolVersion": 1, "clientCapabilities": map[string]any{}}); err != nil {
		ws.CloseNow()
		return nil
	}
	return a
}

// resume attaches the connection to s (once per connection).
func (a *acpConn) resume(ctx context.Context, s *convo) bool {
	if a.resumed[s.id] {
		return true
	}
	if _, err := a.call(ctx, "session/resume", map[string]any{"sessionId": s.id, "cwd": "/"}); err != nil {
		return false
	}
	a.resumed[s.id] = true
	return true
}

// call sends a request and reads up to its response; notifications on the
// way are dropped (the history over the API is what the checks read).
func (a *acpConn) call(ctx context.Context, method string, params any) (map[string]any, error) {
	a.next++
	id := a.next
	a.text.Reset()
	frame, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err := a.ws.Write(ctx, websocket.MessageText, frame); err != nil {
		return nil, err
	}
	for {
		_, data, err := a.ws.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m struct {
			ID     *int            `json:"id"`
			Method string          `json:"method"`
			Result map[string]any  `json:"result"`
			Error  json.RawMessage `json:"error"`
			Params struct {
				Update struct {
					SessionUpdate string `json:"sessionUpdate"`
					Content       struct {
						Text string `json:"text"`
					} `json:"content"`
				} `json:"update"`
			} `json:"params"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if u := m.Params.Update; m.Method == "session/update" && u.SessionUpdate == "agent_message_chunk" {
			a.text.WriteString(u.Content.Text)
		}
		if m.Method != "" || m.ID == nil || *m.ID != id {
			continue
		}
		if m.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, m.Error)
		}
		return m.Result, nil
	}
}

// prompt runs a turn over ACP. A result other than cancelled acknowledges
// it (its outcome was ok: end_turn, max_turn_requests or max_tokens). A
// cancelled result does not: agentd answers cancelled also to a prompt
// whose turn never started (its context ended while the session loaded),
// so such a turn may be missing, like an unanswered one.
func (a *acpConn) prompt(ctx context.Context, s *convo, tr *turn, content string) {
	res, err := a.call(ctx, "session/prompt", map[string]any{"sessionId": s.id, "prompt": []any{map[string]any{"type": "text", "text": content}}})
	switch reason, _ := res["stopReason"].(string); {
	case err != nil:
		tr.state, tr.why = unknown, err.Error()
	case reason == "cancelled" || reason == "":
		tr.state, tr.why = unknown, "ACP stopReason "+reason
	default:
		tr.state, tr.status, tr.reply = acked, string(agent.StatusOK), a.text.String()
	}
}
