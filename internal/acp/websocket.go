package acp

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/tenant"
)

// UserHeader names the end user a WebSocket connection acts for (as in the
// HTTP API); the "user" query parameter is the fallback for clients that
// cannot set headers.
const UserHeader = "X-Agentd-User"

const maxUserLen = 256

// Handler returns the handler of GET /v1/acp: ACP over WebSocket, one
// JSON-RPC message per text frame. The connection authenticates like the
// HTTP API ("Authorization: Bearer <key>" names the tenant; 401 otherwise)
// and acts for the end user named by X-Agentd-User or the "user" query
// parameter (400 without one). It is mounted behind the API's own
// authentication or alone: it checks the key itself. While shutting down
// it answers 503. In a fleet, the connection relays requests about
// sessions other replicas own to them with the same key and user
// (relay.go); a connection with ForwardedByHeader is relayed by another
// replica and never relays further.
func (s *Server) Handler(keys *tenant.Keys) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			httpError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentd"`)
			httpError(w, http.StatusUnauthorized, "unauthorized", "send your API key as Authorization: Bearer <key>")
			return
		}
		p, found := keys.Lookup(strings.TrimSpace(key))
		if !found {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentd"`)
			httpError(w, http.StatusUnauthorized, "unauthorized", "unknown API key")
			return
		}
		user := strings.TrimSpace(r.Header.Get(UserHeader))
		if user == "" {
			user = strings.TrimSpace(r.URL.Query().Get("user"))
		}
		if msg := checkUser(user); msg != "" {
			code := "invalid_request"
			if user == "" {
				code = "missing_user"
			}
			httpError(w, http.StatusBadRequest, code, msg)
			return
		}
		if s.isClosing() {
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusServiceUnavailable, "shutting_down", "agentd is shutting down; retry on another replica")
			return
		}
		ws, err := websocket.Accept(w, r, nil) // it answers a bad handshake itself
		if err != nil {
			s.log.Debug("acp websocket handshake failed", zap.Error(err))
			return
		}
		ws.SetReadLimit(int64(s.cfg.MaxMessageBytes))
		stop := s.heartbeat(ws)
		defer stop()
		peer := Peer{Tenant: p.Tenant, User: user, Transport: "websocket"}
		// The key and user go on to the owners of relayed sessions, which
		// authenticate them again; a relayed connection is not relayed
		// again.
		creds := relayCreds{auth: "Bearer " + strings.TrimSpace(key), forwardedBy: forwardedBy(r)}
		// The request's context is not used after the hijack (see
		// websocket.Accept); the connection lives until either side ends it.
		_ = s.serve(context.Background(), &wsTransport{c: ws, writeTimeout: s.cfg.WriteTimeout}, peer, creds)
	})
}

// forwardedBy is the replica that relays the request, if any: at most
// 253 bytes, printable, for the log.
func forwardedBy(r *http.Request) string {
	v := strings.TrimSpace(r.Header.Get(ForwardedByHeader))
	if len(v) > 253 {
		v = v[:253]
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, v)
}

// CheckUser validates an end user name: required, at most 256 bytes, no
// control characters. It returns what is wrong, or "".
func CheckUser(user string) string { return checkUser(user) }

func checkUser(user string) string {
	switch {
	case user == "":
		return "name the end user in the " + UserHeader + " header or the user query parameter; the canary router assigns cohorts per user"
	case len(user) > maxUserLen:
		return "the user name is longer than 256 bytes"
	}
	for _, r := range user {
		if unicode.IsControl(r) {
			return "the user name has control characters"
		}
	}
	return ""
}

// heartbeat pings the client every Heartbeat; a client that does not answer
// within PongTimeout is disconnected (its Serve then ends as if it had gone
// away). The pong is read by Serve's read loop, which always runs.
func (s *Server) heartbeat(ws *websocket.Conn) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PongTimeout)
				err := ws.Ping(ctx)
				cancel()
				if err != nil {
					s.log.Info("acp websocket: no pong in time; disconnecting", zap.String("pong_timeout", s.cfg.PongTimeout.String()), zap.Error(err))
					_ = ws.CloseNow()
					return
				}
			}
		}
	}()
	return func() { close(quit); <-done }
}

// httpError answers with the HTTP API's error shape.
func httpError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	_ = json.NewEncoder(w).Encode(body)
}
