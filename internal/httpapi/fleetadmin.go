package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/agentd/agentd/internal/fleet"
	"github.com/agentd/agentd/internal/handoff"
)

// Handoff moves a retiring replica's sessions to another replica
// (*handoff.Mover).
type Handoff interface {
	MoveFrom(ctx context.Context, from, to string) (handoff.Result, error)
}

type moveRequest struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// postMove serves POST /v1/admin/fleet/move: every session of "from" moves
// to "to"; the answer comes when the move has finished, with the sessions
// that did not move (they stay served where they were).
func (s *Server) postMove(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Handoff == nil {
		s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "this agentd is not part of a fleet (AGENTD_PEERS is empty): there is nowhere to move sessions to"})
		return
	}
	var req moveRequest
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.From == "" || req.To == "" {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, `send {"from": "<node>", "to": "<node>"}`))
		return
	}
	res, err := s.cfg.Handoff.MoveFrom(r.Context(), req.From, req.To)
	switch {
	case errors.Is(err, handoff.ErrUnknownNode), errors.Is(err, handoff.ErrSelf), errors.Is(err, handoff.ErrRefused):
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, err.Error()))
	case errors.Is(err, handoff.ErrUnreachable):
		w.Header().Set("Retry-After", "5")
		s.writeError(w, r, &apiError{http.StatusServiceUnavailable, CodeOwnerUnavailable, err.Error()})
	case err != nil:
		s.writeError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

// deleteMember serves DELETE /v1/admin/fleet/members/{name}: a retired
// replica leaves the Raft configuration (fleet.Node.Remove).
func (s *Server) deleteMember(w http.ResponseWriter, r *http.Request) {
	if s.cfg.RemoveMember == nil {
		s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "this replica is not in a fleet (AGENTD_PEERS is empty)"})
		return
	}
	err := s.cfg.RemoveMember(r.Context(), chi.URLParam(r, "name"))
	switch {
	case errors.Is(err, fleet.ErrUnknownMember):
		s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, err.Error()})
	case errors.Is(err, fleet.ErrMemberRunning), errors.Is(err, fleet.ErrRemoveSelf):
		s.writeError(w, r, &apiError{http.StatusConflict, CodeMemberRunning, err.Error()})
	case err != nil:
		s.writeError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
