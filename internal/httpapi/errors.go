package httpapi

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/session"
)

// Error codes of the API, in the "code" field of every error body. Append
// only: clients branch on them.
const (
	CodeInvalidJSON          = "invalid_json"           // 400 the body is not valid JSON for this route
	CodeUnknownField         = "unknown_field"          // 400 the body has a field this route does not take
	CodeInvalidRequest       = "invalid_request"        // 400 a value is missing or out of range
	CodeMissingUser          = "missing_user"           // 400 X-Agentd-User is required here
	CodeUnauthorized         = "unauthorized"           // 401 no key, or an unknown key
	CodeForbidden            = "forbidden"              // 403 the key's role may not do this
	CodeNotFound             = "not_found"              // 404 no such session for this tenant, or no such route
	CodeMethodNotAllowed     = "method_not_allowed"     // 405
	CodeSessionBusy          = "session_busy"           // 409 a turn is already running in the session
	CodeBodyTooLarge         = "body_too_large"         // 413 the body is over the limit
	CodeUnsupportedMediaType = "unsupported_media_type" // 415 the body is not application/json
	CodePreconditionFailed   = "precondition_failed"    // 412 If-Match does not name the current version
	CodePreconditionRequired = "precondition_required"  // 428 a change of the configuration needs If-Match
	CodeReasonRequired       = "reason_required"        // 400 a configuration change needs a reason
	CodeInvalidConfig        = "invalid_config"         // 400 the configuration does not validate; nothing changed
	CodeUnknownVariant       = "unknown_variant"        // 404 no such variant in that dimension
	CodeInternal             = "internal"               // 500 see the server log
	CodeShuttingDown         = "shutting_down"          // 503 the server is draining; retry on another replica
	CodeRequestTimeout       = "request_timeout"        // 408 the request body did not arrive within the read timeout
	CodeOwnerUnavailable     = "owner_unavailable"      // 503 the replica that owns the session did not answer, or is handing it to another; Retry-After
	CodeMemberRunning        = "member_running"         // 409 a fleet member to remove still answers (or is the replica asked): scale it down first
	CodeNoQuorum             = "no_quorum"              // 503 the fleet has no leader: configuration writes wait; Retry-After
	CodeBudgetExceeded       = "budget_exceeded"        // 429 the tenant's or user's daily token budget is spent; Retry-After: the day's end
	CodeNoProbes             = "no_probes"              // 409 .agentao/probes.json names no prompts: there is nothing to probe
)

// apiError is an error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func errBadRequest(code, msg string) error { return &apiError{http.StatusBadRequest, code, msg} }

// classify maps an error to its status and code: the only place where
// errors become HTTP statuses.
func classify(err error) (int, string, string) {
	var ae *apiError
	var mbe *http.MaxBytesError
	var oe *ownerError
	var be *session.BudgetError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.code, ae.msg
	case errors.As(err, &oe):
		return http.StatusServiceUnavailable, CodeOwnerUnavailable, oe.message()
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the request body is over the limit of " + itoa(mbe.Limit) + " bytes"
	case errors.As(err, &be):
		return http.StatusTooManyRequests, CodeBudgetExceeded, be.Error()
	case errors.Is(err, session.ErrNotFound):
		return http.StatusNotFound, CodeNotFound, "no such session"
	case errors.Is(err, session.ErrBusy):
		return http.StatusConflict, CodeSessionBusy, "a turn is already running in this session; wait for it or cancel it"
	case errors.Is(err, session.ErrMoving):
		return http.StatusServiceUnavailable, CodeOwnerUnavailable, "the session is moving to another replica; retry in a moment"
	case errors.Is(err, session.ErrShuttingDown):
		return http.StatusServiceUnavailable, CodeShuttingDown, "agentd is shutting down; retry on another replica"
	case errors.Is(err, rollback.ErrNoQuorum):
		return http.StatusServiceUnavailable, CodeNoQuorum, err.Error()
	case errors.Is(err, rollback.ErrConflict):
		return http.StatusPreconditionFailed, CodePreconditionFailed, err.Error()
	case errors.Is(err, rollback.ErrReasonRequired):
		return http.StatusBadRequest, CodeReasonRequired, "a reason is required"
	case errors.Is(err, rollback.ErrInvalid):
		return http.StatusBadRequest, CodeInvalidConfig, err.Error()
	case errors.Is(err, rollback.ErrUnknownVariant):
		return http.StatusNotFound, CodeUnknownVariant, err.Error()
	case errors.Is(err, rollback.ErrNotFound):
		return http.StatusNotFound, CodeNotFound, err.Error()
	case errors.Is(err, session.ErrInvalid):
		return http.StatusBadRequest, CodeInvalidRequest, err.Error()
	default:
		return http.StatusInternalServerError, CodeInternal, "internal error; see the server log"
	}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers with the error shape of the API, and logs what the
// client is not told.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := s.logError(r, err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="agentd"`)
	}
	var be *session.BudgetError
	switch {
	case errors.As(err, &be): // whole seconds to the budget's day end, at least 1
		w.Header().Set("Retry-After", itoa(max(1, int64(math.Ceil(time.Until(be.Reset).Seconds())))))
	case code == CodeShuttingDown:
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Connection", "close")
	case errors.Is(err, session.ErrMoving): // a handoff holds a session for a moment
		w.Header().Set("Retry-After", "1")
	case code == CodeOwnerUnavailable, code == CodeNoQuorum:
		if w.Header().Get("Retry-After") == "" {
			w.Header().Set("Retry-After", retryAfterFleet)
		}
	}
	var body errorBody
	body.Error.Code, body.Error.Message = code, msg
	writeJSON(w, status, body)
}

// logError classifies err and logs it when it is the server's fault.
func (s *Server) logError(r *http.Request, err error) (int, string, string) {
	status, code, msg := classify(err)
	switch {
	case errors.Is(err, session.ErrMoving): // the handoff logs what it does
	case code == CodeOwnerUnavailable || code == CodeNoQuorum:
		// The fleet's state, not a bug here: worth a line, not an alarm.
		s.log.Warn("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("code", code), zap.Error(err))
	case status >= 500 && code != CodeShuttingDown:
		s.log.Error("request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err))
	}
	return status, code, msg
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
