package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/agentd/agentd/internal/probe"
	"github.com/agentd/agentd/internal/session"
)

// Probes is what the admin routes need of the continuous canary probe
// (internal/probe's *Prober).
type Probes interface {
	Config() probe.Config
	Status() probe.Status
	Runs(ctx context.Context, n int) ([]probe.Run, error)
	RunOnce(ctx context.Context, trigger string) (probe.Run, error)
}

// probeRoutes serves, under /v1/admin (admin keys only):
//
//	GET  /probes?runs=N  the served probes.json, the schedule, and the last
//	                     N runs (default 1, at most probe.DefaultKeep), newest first
//	POST /probes/run     a run now (after one in progress); answers with it
func (s *Server) probeRoutes(r chi.Router) {
	r.Get("/probes", s.getProbes)
	r.With(s.refuseWhileDraining).Post("/probes/run", s.runProbes)
}

func (s *Server) probes(w http.ResponseWriter, r *http.Request) (Probes, bool) {
	if s.cfg.Probes == nil {
		s.writeError(w, r, &apiError{http.StatusServiceUnavailable, CodeInternal, "the canary probe is not running on this server"})
		return nil, false
	}
	return s.cfg.Probes, true
}

type probesView struct {
	Config probe.Config `json:"config"`
	probe.Status
	Runs []probe.Run `json:"runs"`
}

func (s *Server) getProbes(w http.ResponseWriter, r *http.Request) {
	p, ok := s.probes(w, r)
	if !ok {
		return
	}
	n := 1
	if v := r.URL.Query().Get("runs"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > probe.DefaultKeep {
			s.writeError(w, r, errBadRequest(CodeInvalidRequest, "runs must be an integer from 1 to "+strconv.Itoa(probe.DefaultKeep)))
			return
		}
	}
	runs, err := p.Runs(r.Context(), n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if runs == nil {
		runs = []probe.Run{}
	}
	cfg := p.Config()
	if cfg.Prompts == nil {
		cfg.Prompts = []probe.Prompt{}
	}
	writeJSON(w, http.StatusOK, probesView{Config: cfg, Status: p.Status(), Runs: runs})
}

func (s *Server) runProbes(w http.ResponseWriter, r *http.Request) {
	p, ok := s.probes(w, r)
	if !ok {
		return
	}
	run, err := p.RunOnce(r.Context(), probe.TriggerManual)
	switch {
	case errors.Is(err, probe.ErrNoPrompts):
		s.writeError(w, r, &apiError{http.StatusConflict, CodeNoProbes, err.Error() + " (add prompts to .agentao/probes.json)"})
		return
	case errors.Is(err, probe.ErrClosed):
		s.writeError(w, r, session.ErrShuttingDown)
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}
