package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// sessionView is a session as the API shows it.
type sessionView struct {
	session.Summary
	ActiveSkills []string                  `json:"active_skills"`
	Messages     []agent.Message           `json:"messages"`
	Turns        []session.TurnRecord      `json:"turns"`
	Pending      []session.PendingApproval `json:"pending_approvals"`
}

func view(s *session.Session) sessionView {
	v := sessionView{Summary: s.Summary(), ActiveSkills: s.ActiveSkills, Messages: s.Messages, Turns: s.Turns, Pending: []session.PendingApproval{}}
	if v.ActiveSkills == nil {
		v.ActiveSkills = []string{}
	}
	if v.Messages == nil {
		v.Messages = []agent.Message{}
	}
	if v.Turns == nil {
		v.Turns = []session.TurnRecord{}
	}
	return v
}

func sessionID(r *http.Request) session.ID { return session.ID(chi.URLParam(r, "id")) }

type createRequest struct {
	Model string `json:"model"`
}

func (s *Server) createSession(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := s.decode(w, r, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if u == "" {
		s.writeError(w, r, errBadRequest(CodeMissingUser, "name the end user in the "+UserHeader+" header; the canary router assigns cohorts per user"))
		return
	}
	sess, err := s.pool.Create(r.Context(), principal(r).Tenant, u, strings.TrimSpace(req.Model))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/sessions/"+string(sess.ID))
	if s.fwd != nil {
		w.Header().Set(OwnerHeader, s.fwd.fleet.Self())
	}
	writeJSON(w, http.StatusCreated, view(sess))
}

type listResponse struct {
	Sessions   []session.Summary `json:"sessions"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	q := session.ListQuery{Limit: 100, User: r.URL.Query().Get("user"), Before: session.ID(r.URL.Query().Get("cursor"))}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			s.writeError(w, r, errBadRequest(CodeInvalidRequest, "limit must be an integer from 1 to 1000"))
			return
		}
		q.Limit = n
	}
	if q.Before != "" && !q.Before.Valid() {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, "cursor is not a session id from next_cursor"))
		return
	}
	if s.fwd != nil && r.Header.Get(ForwardedByHeader) == "" {
		s.listFleet(w, r, q)
		return
	}
	sums, next, err := s.pool.List(r.Context(), principal(r).Tenant, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if sums == nil {
		sums = []session.Summary{}
	}
	writeJSON(w, http.StatusOK, listResponse{Sessions: sums, NextCursor: string(next)})
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.pool.Get(r.Context(), principal(r).Tenant, sessionID(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := view(sess)
	if pending, err := s.pool.Pending(r.Context(), principal(r).Tenant, sessionID(r)); err == nil {
		v.Pending = pending
	}
	writeJSON(w, http.StatusOK, v)
}

type approvalRequest struct {
	Decision string `json:"decision"`
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	var req approvalRequest
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	call := chi.URLParam(r, "call")
	if err := s.pool.Approve(r.Context(), principal(r).Tenant, sessionID(r), call, req.Decision); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"call_id": call, "decision": req.Decision})
}

func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) {
	if err := s.pool.Delete(r.Context(), principal(r).Tenant, sessionID(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type modelRequest struct {
	Model string `json:"model"`
}

func (s *Server) setModel(w http.ResponseWriter, r *http.Request) {
	var req modelRequest
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.TrimSpace(req.Model) == "" {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, `"model" is required`))
		return
	}
	sess, err := s.pool.SetModel(r.Context(), principal(r).Tenant, sessionID(r), strings.TrimSpace(req.Model))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sess.Summary())
}

func (s *Server) clearSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.pool.Clear(r.Context(), principal(r).Tenant, sessionID(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sess.Summary())
}

func (s *Server) cancelTurn(w http.ResponseWriter, r *http.Request) {
	ok, err := s.pool.Cancel(r.Context(), principal(r).Tenant, sessionID(r), agent.ReasonUserCancel)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"cancelled": ok})
}

type messageRequest struct {
	Content       string `json:"content"`
	MaxIterations int    `json:"max_iterations"`
}

type turnResponse struct {
	Turn    int           `json:"turn"`
	Reply   string        `json:"reply"`
	Outcome agent.Outcome `json:"outcome"`
	Model   string        `json:"model"`
	Usage   agent.Usage   `json:"usage"`
}

func result(res session.TurnResult) turnResponse {
	return turnResponse{Turn: res.Turn, Reply: res.Reply, Outcome: res.Outcome, Model: res.Model, Usage: res.Stats.Usage}
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	var req messageRequest
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case strings.TrimSpace(req.Content) == "":
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, `"content" is required and must not be blank`))
		return
	case req.MaxIterations < 0 || req.MaxIterations > s.cfg.MaxIterations:
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, "max_iterations must be from 1 to "+strconv.Itoa(s.cfg.MaxIterations)+" (0 or absent: the server default)"))
		return
	}
	ctx, done := turnContext(r)
	defer done()
	in := session.TurnInput{Content: req.Content, MaxIterations: req.MaxIterations}
	if !wantsSSE(r) {
		res, err := s.pool.Turn(ctx, principal(r).Tenant, sessionID(r), in)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, result(res))
		return
	}
	st := &stream{w: w, rc: http.NewResponseController(w), session: sessionID(r)}
	stopBeat := st.heartbeat(s.cfg.Heartbeat)
	in.Emit = st.event
	res, err := s.pool.Turn(ctx, principal(r).Tenant, sessionID(r), in)
	stopBeat()
	if err != nil {
		if !st.started() {
			s.writeError(w, r, err)
			return
		}
		_, code, msg := s.logError(r, err)
		st.send("error", map[string]any{"type": "error", "error": map[string]string{"code": code, "message": msg}})
		return
	}
	st.send("done", struct {
		Type string `json:"type"`
		turnResponse
	}{"done", result(res)})
}

func wantsSSE(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
			return true
		}
	}
	return false
}

// stream writes Server-Sent Events. Headers go out with the first event, so
// a turn refused before it starts still gets a plain JSON error.
type stream struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	session session.ID // the turn's, for the route that answers an ask
	begun   bool
	dead    bool // the client is gone; drop further writes
}

func (st *stream) started() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.begun
}

func (st *stream) beginLocked() {
	if st.begun {
		return
	}
	st.begun = true
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
}

func (st *stream) event(e agent.Event) {
	var data any = e.Data
	if ask, ok := e.Data.(session.ToolConfirmation); ok {
		// The client answers over this API: say where.
		data = struct {
			session.ToolConfirmation
			Answer string `json:"answer"`
		}{ask, "POST /v1/sessions/" + string(st.session) + "/approvals/" + ask.CallID}
	}
	st.send(e.Type, map[string]any{"type": e.Type, "data": data, "ts": e.Time.UnixMilli()})
}

func (st *stream) send(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data, _ = json.Marshal(map[string]string{"type": name, "error": "unencodable event: " + err.Error()})
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.dead {
		return
	}
	st.beginLocked()
	st.writeLocked("event: " + name + "\ndata: " + string(data) + "\n\n")
}

// writeLocked writes and flushes one piece of the stream. Each write has its
// own deadline (loggingWriter): a client that stops reading fails it, its
// request's context ends, and so does the turn (client-disconnected).
func (st *stream) writeLocked(s string) {
	if _, err := st.w.Write([]byte(s)); err != nil {
		st.dead = true
		return
	}
	if err := st.rc.Flush(); err != nil {
		st.dead = true
	}
}

// heartbeat writes a comment line every d once the stream has begun.
func (st *stream) heartbeat(d time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				st.mu.Lock()
				if st.begun && !st.dead {
					st.writeLocked(": keep-alive\n\n")
				}
				st.mu.Unlock()
			}
		}
	}()
	return func() { close(quit); <-done }
}
