// Package httpapi serves agentd's HTTP/JSON API and is the only importer of
// go-chi/chi.
//
// Every route but /healthz, /readyz and /metrics needs "Authorization: Bearer <key>";
// the key decides the tenant, and a session of another tenant does not exist
// for the caller (404). Errors are {"error": {"code", "message"}} with the
// codes listed in errors.go. A turn answers with JSON, or with Server-Sent
// Events when the client sends "Accept: text/event-stream"; a client that
// goes away cancels its turn ("client-disconnected"). In a fleet
// (Config.Fleet), a request about a session another member owns is
// forwarded to it, and the listing covers every member (fleet.go).
package httpapi

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/tenant"
)

// Config tunes a Server.
type Config struct {
	// MaxBodyBytes limits request bodies; larger ones get 413. Default 1 MiB.
	MaxBodyBytes int64
	// MaxIterations is the highest per-turn max_iterations a client may ask
	// for. Default 1000.
	MaxIterations int
	// Heartbeat is the interval of SSE comment lines that keep proxies from
	// closing a quiet stream. Default 15 s.
	Heartbeat time.Duration
	// Timeouts bound the waits on clients (HTTPServer).
	Timeouts Timeouts
	// Control enables /v1/admin (admin keys only): nil answers 503.
	Control Control
	// Handoff, if set, serves POST /v1/admin/fleet/move (a fleet).
	Handoff Handoff
	// RemoveMember, if set, serves DELETE /v1/admin/fleet/members/{name}
	// (fleet.Node.Remove).
	RemoveMember func(ctx context.Context, name string) error
	// ACP, if set, serves GET /v1/acp (ACP over WebSocket; acp.Server.Handler).
	ACP http.Handler
	// Metrics, if set, serves GET /metrics, without a key like the health
	// endpoints.
	Metrics http.Handler
	// Fleet, if set, is the fleet this replica is a member of: requests
	// about a session another member owns are forwarded to it, and the
	// listing covers every member (fleet.go). Nil: a single process.
	Fleet Fleet
	// Cluster, if set, serves /cluster/v1/* (a fleet's channel between
	// replicas, fleet.Node.Handler): outside the API keys, it checks the
	// cluster key itself.
	Cluster http.Handler
	// FleetStatus, if set, answers GET /v1/admin/fleet (fleet.Node.Status).
	FleetStatus func(ctx context.Context) any
	// Alerts, if set, serves GET /v1/admin/alerts (alerts.Alerts).
	Alerts AlertList
	// Usage, if set, serves GET /v1/usage and GET /v1/admin/usage (usage.Meter).
	Usage Usage
	// Probes, if set, serves GET /v1/admin/probes and POST
	// /v1/admin/probes/run (internal/probe's *Prober); nil answers 503.
	Probes Probes
	// OnRequest, if set, sees every answered request with the route
	// pattern that matched ("" if none).
	OnRequest func(method, route string, status int, d time.Duration)
	Logger    *zap.Logger
}

// Defaults of Config.
const (
	DefaultMaxBodyBytes  = 1 << 20
	DefaultMaxIterations = 1000
	DefaultHeartbeat     = 15 * time.Second
	// UserHeader names the end user a request acts for.
	UserHeader = "X-Agentd-User"
	// maxUserLen bounds X-Agentd-User.
	maxUserLen = 256
)

// Server is the HTTP API over a session pool.
type Server struct {
	cfg      Config
	pool     *session.Pool
	keys     *tenant.Keys
	log      *zap.Logger
	draining atomic.Bool
	router   chi.Router
	conns    conns
	fwd      *forwarder // nil without a fleet

	httpOnce sync.Once
	http     *http.Server
}

// New returns the API for pool, authenticating with keys.
func New(pool *session.Pool, keys *tenant.Keys, cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxIterations <= 0 {
		cfg.MaxIterations = DefaultMaxIterations
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	cfg.Timeouts.setDefaults()
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Server{cfg: cfg, pool: pool, keys: keys, log: cfg.Logger.Named("http")}
	if cfg.Fleet != nil {
		s.fwd = s.newForwarder(cfg.Fleet)
	}
	s.router = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Drain marks the server as shutting down: /readyz answers 503 and new
// sessions and turns are refused with 503 shutting_down.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.accessLog, s.recoverer) // accessLog first: a recovered panic is logged, and its answer closes a half-read request
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "no route " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &apiError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, r.Method + " is not allowed on " + r.URL.Path})
	})
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting_down"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if s.cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", s.cfg.Metrics)
	}
	if s.cfg.Cluster != nil {
		r.Handle("/cluster/v1/*", s.cfg.Cluster)
	}
	r.Route("/v1", func(r chi.Router) {
		r.Use(s.authenticate)
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "no route " + r.Method + " " + r.URL.Path})
		})
		r.Route("/admin", s.adminRoutes)
		r.Get("/usage", s.getUsage)
		if s.cfg.ACP != nil {
			r.With(s.refuseWhileDraining).Get("/acp", s.cfg.ACP.ServeHTTP)
		}
		r.Route("/sessions", func(r chi.Router) {
			r.With(s.refuseWhileDraining).Post("/", s.createSession)
			r.Get("/", s.listSessions)
			r.Route("/{id}", func(r chi.Router) {
				own := r.With(s.toOwner(false)) // a session another member owns is served there
				own.Get("/", s.getSession)
				own.Delete("/", s.deleteSession)
				r.With(s.refuseWhileDraining, s.toOwner(true)).Post("/messages", s.postMessage)
				own.Post("/cancel", s.cancelTurn)
				own.Put("/model", s.setModel)
				own.Post("/clear", s.clearSession)
				own.Post("/approvals/{call}", s.approve)
			})
		})
	})
	return r
}

type ctxKey int

const principalKey ctxKey = iota

// principal returns the caller authenticated by authenticate.
func principal(r *http.Request) tenant.Principal {
	p, _ := r.Context().Value(principalKey).(tenant.Principal)
	return p
}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			s.writeError(w, r, &apiError{http.StatusUnauthorized, CodeUnauthorized, "send your API key as Authorization: Bearer <key>"})
			return
		}
		p, found := s.keys.Lookup(strings.TrimSpace(key))
		if !found {
			s.writeError(w, r, &apiError{http.StatusUnauthorized, CodeUnauthorized, "unknown API key"})
			return
		}
		if lw, ok := w.(*loggingWriter); ok {
			lw.tenant = p.Tenant
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

func (s *Server) refuseWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			s.writeError(w, r, session.ErrShuttingDown)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// user returns the end user named by X-Agentd-User ("" if absent).
func user(r *http.Request) (string, error) {
	u := strings.TrimSpace(r.Header.Get(UserHeader))
	if len(u) > maxUserLen {
		return "", errBadRequest(CodeInvalidRequest, UserHeader+" is longer than 256 bytes")
	}
	for _, c := range u {
		if unicode.IsControl(c) {
			return "", errBadRequest(CodeInvalidRequest, UserHeader+" has control characters")
		}
	}
	return u, nil
}

// recoverer turns a handler panic into a 500 with the API's error shape.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panicked", zap.Any("panic", p), zap.Stack("stack"))
				s.writeError(w, r, &apiError{http.StatusInternalServerError, CodeInternal, "internal error; see the server log"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// loggingWriter is the writer of every request: it records the status for
// the access log, keeps the wrapped writer reachable for
// http.ResponseController (Flush, deadlines), re-arms the write deadline
// before each write (Timeouts.Write), and closes the connection after an
// answer sent before the request body was read to its end.
type loggingWriter struct {
	http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
	body         *requestBody // nil for a request without a body
	status       int
	tenant       string
}

func (w *loggingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		// net/http would otherwise read and discard the rest of the body
		// before answering, from a client that may never send it.
		if w.body != nil && !w.body.done.Load() {
			w.Header().Set("Connection", "close")
		}
	}
	w.armWrite()
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.armWrite()
	return w.ResponseWriter.Write(b)
}

// armWrite gives the next write its own deadline: a response may come
// long after its request (a turn), but no single write may block longer
// than the write timeout on a client that does not read.
func (w *loggingWriter) armWrite() {
	if w.writeTimeout > 0 {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
}

func (w *loggingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// statusOr200 is the status sent: net/http sends 200 for a handler that
// wrote nothing.
func (w *loggingWriter) statusOr200() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		lw := &loggingWriter{ResponseWriter: w, rc: http.NewResponseController(w), writeTimeout: s.cfg.Timeouts.Write}
		if r.ContentLength != 0 {
			lw.body = &requestBody{ReadCloser: r.Body}
			r.Body = lw.body
			if nc, ok := r.Context().Value(connKey).(net.Conn); ok {
				s.conns.track(nc, lw.body)
			}
		}
		next.ServeHTTP(lw, r)
		if lw.body != nil && !lw.body.done.Load() && time.Until(began.Add(s.cfg.Timeouts.Read)) > earlyCloseGrace {
			// Answered early, with Connection: close (WriteHeader): see earlyCloseGrace.
			_ = lw.rc.SetReadDeadline(time.Now().Add(earlyCloseGrace))
		}
		if s.cfg.OnRequest != nil {
			route := ""
			if rc := chi.RouteContext(r.Context()); rc != nil {
				route = rc.RoutePattern()
			}
			s.cfg.OnRequest(r.Method, route, lw.statusOr200(), time.Since(began))
		}
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" || strings.HasPrefix(r.URL.Path, "/cluster/") {
			return
		}
		s.log.Info("request", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", lw.status),
			zap.String("tenant", lw.tenant), zap.Int64("duration_ms", time.Since(began).Milliseconds()))
	})
}

// turnContext derives the context of a turn from a request: detached from
// the request's own cancellation, which instead cancels the turn with reason
// client-disconnected.
func turnContext(r *http.Request) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(r.Context(), func() { cancel(agent.Cancelled(agent.ReasonClientDisconnected)) })
	return ctx, func() { stop(); cancel(nil) }
}
