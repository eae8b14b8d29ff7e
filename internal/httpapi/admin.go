package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/tenant"
)

// Control is what the admin routes need of the control plane
// (internal/control's Plane): the canary configuration, its history and the
// guard's windows. The routes reach the history and the guard only through
// it.
type Control interface {
	Canary() (*canary.Policy, rollback.Version)
	CanaryStatus() rollback.Status
	// Refused names each part of the configuration on disk that is
	// invalid and not served, with why.
	Refused() map[string]string
	ApplyCanary(ctx context.Context, doc []byte, ifMatch int, actor, reason string) (rollback.Version, error)
	Versions(ctx context.Context, before, limit int) ([]rollback.Version, error)
	Version(ctx context.Context, n int) (rollback.Version, error)
	Halt(ctx context.Context, dim canary.Dimension, variant, actor, reason string) (rollback.Version, bool, error)
	Revert(ctx context.Context, n int, actor, reason string) (rollback.Version, error)
	GuardWindows() []rollback.Stats
	GuardReported() []rollback.Reported
}

func (s *Server) adminRoutes(r chi.Router) {
	r.Use(s.requireAdmin)
	r.Get("/canary", s.getCanary)
	r.Put("/canary", s.putCanary)
	r.Get("/canary/assignment", s.explainAssignment)
	r.Get("/versions", s.listVersions)
	r.Get("/versions/{n}", s.getVersion)
	r.Post("/rollback", s.postRollback)
	r.Get("/alerts", s.listAlerts)
	r.Get("/usage", s.adminUsage)
	s.probeRoutes(r)
	r.Post("/fleet/move", s.postMove)
	r.Delete("/fleet/members/{name}", s.deleteMember)
	r.Get("/fleet", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.FleetStatus == nil {
			s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "this replica is not in a fleet (AGENTD_PEERS is empty)"})
			return
		}
		writeJSON(w, http.StatusOK, s.cfg.FleetStatus(r.Context()))
	})
}

func (s *Server) requireAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if principal(r).Role != tenant.RoleAdmin {
			s.writeError(w, r, &apiError{http.StatusForbidden, CodeForbidden, "this route needs an admin key (key=tenant:admin in AGENTD_API_KEYS)"})
			return
		}
		if s.cfg.Control == nil {
			s.writeError(w, r, &apiError{http.StatusServiceUnavailable, CodeInternal, "the canary configuration is not loaded"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func etag(n int) string { return `"` + strconv.Itoa(n) + `"` }

type variantView struct {
	Dimension string   `json:"dimension"`
	Name      string   `json:"name"`
	Value     string   `json:"value"`
	Percent   float64  `json:"percent"`
	Users     int      `json:"users"`
	Tenants   []string `json:"tenants,omitempty"`
	Halted    bool     `json:"halted"`
}

type canaryView struct {
	Version         int       `json:"version"`
	AppliedAt       time.Time `json:"applied_at"`
	Actor           string    `json:"actor"`
	Reason          string    `json:"reason"`
	DiffersFromFile bool      `json:"differs_from_file"`
	FileError       string    `json:"file_error,omitempty"`
	// Refused names each part of the configuration on disk (tree,
	// canary.json, mcp.json) that is invalid, with why; what was served
	// before keeps serving and the part is retried at every poll.
	Refused      map[string]string `json:"refused,omitempty"`
	Stable       map[string]string `json:"stable"`
	Variants     []variantView     `json:"variants"`
	Guard        canary.Guard      `json:"guard"`
	GuardWindows []rollback.Stats  `json:"guard_windows"`
	// GuardReported are the ceiling breaches the guard did not halt for
	// because stable is over the ceiling too.
	GuardReported []rollback.Reported `json:"guard_reported"`
	Config        json.RawMessage     `json:"config"`
}

func (s *Server) getCanary(w http.ResponseWriter, r *http.Request) {
	c := s.cfg.Control
	p, v := c.Canary()
	st := c.CanaryStatus()
	out := canaryView{
		Version: v.N, AppliedAt: v.At, Actor: v.Actor, Reason: v.Reason, DiffersFromFile: st.DiffersFromFile,
		FileError: st.FileError, Refused: c.Refused(), Stable: map[string]string{}, Variants: []variantView{}, Guard: p.Guard(),
		GuardWindows: []rollback.Stats{}, GuardReported: c.GuardReported(), Config: v.Canary,
	}
	doc := p.Document()
	for _, dim := range canary.Dimensions() {
		out.Stable[dim.String()] = p.Stable(dim)
		spec := doc.Spec(dim)
		if spec == nil {
			continue
		}
		for _, vr := range spec.Variants {
			out.Variants = append(out.Variants, variantView{Dimension: dim.String(), Name: vr.Name, Value: vr.Value, Percent: vr.Percent,
				Users: len(vr.Users), Tenants: vr.Tenants, Halted: p.Halted(dim, vr.Name)})
		}
	}
	out.GuardWindows = append(out.GuardWindows, c.GuardWindows()...)
	w.Header().Set("ETag", etag(v.N))
	writeJSON(w, http.StatusOK, out)
}

// reason reads the reason of a change from X-Agentd-Reason or ?reason=.
func reason(r *http.Request) string {
	if v := strings.TrimSpace(r.Header.Get("X-Agentd-Reason")); v != "" {
		return v
	}
	return strings.TrimSpace(r.URL.Query().Get("reason"))
}

func (s *Server) putCanary(w http.ResponseWriter, r *http.Request) {
	match := strings.TrimSpace(r.Header.Get("If-Match"))
	if match == "" {
		s.writeError(w, r, &apiError{http.StatusPreconditionRequired, CodePreconditionRequired, `send If-Match with the current version (the ETag of GET /v1/admin/canary, e.g. "7")`})
		return
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(match, "W/"), `"`))
	if err != nil {
		s.writeError(w, r, &apiError{http.StatusPreconditionFailed, CodePreconditionFailed, "If-Match " + strconv.Quote(match) + " is not a version"})
		return
	}
	why := reason(r)
	if why == "" {
		s.writeError(w, r, errBadRequest(CodeReasonRequired, "say why: an X-Agentd-Reason header or ?reason= (it goes into the version history)"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := s.cfg.Control.ApplyCanary(r.Context(), body, n, principal(r).Tenant, why)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(v.N))
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) explainAssignment(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	t, u := q.Get("tenant"), q.Get("user")
	if !tenant.ValidName(t) || u == "" {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, "give ?tenant= (a tenant name) and ?user="))
		return
	}
	p, v := s.cfg.Control.Canary()
	writeJSON(w, http.StatusOK, map[string]any{"tenant": t, "user": u, "version": v.N, "assignment": p.Explain(t, u)})
}

func (s *Server) listVersions(w http.ResponseWriter, r *http.Request) {
	before, limit := 0, 50
	for name, dst := range map[string]*int{"before": &before, "limit": &limit} {
		if v := r.URL.Query().Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || (name == "limit" && n > 1000) {
				s.writeError(w, r, errBadRequest(CodeInvalidRequest, name+" must be a positive integer (limit at most 1000)"))
				return
			}
			*dst = n
		}
	}
	vs, err := s.cfg.Control.Versions(r.Context(), before, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if vs == nil {
		vs = []rollback.Version{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(chi.URLParam(r, "n"))
	if err != nil || n < 1 {
		s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "no such version"})
		return
	}
	v, err := s.cfg.Control.Version(r.Context(), n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

type rollbackRequest struct {
	Dimension string `json:"dimension"`
	Variant   string `json:"variant"`
	ToVersion int    `json:"to_version"`
	Reason    string `json:"reason"`
}

func (s *Server) postRollback(w http.ResponseWriter, r *http.Request) {
	var req rollbackRequest
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Reason = strings.TrimSpace(req.Reason)
	halt := req.Dimension != "" || req.Variant != ""
	switch {
	case req.Reason == "":
		s.writeError(w, r, errBadRequest(CodeReasonRequired, `"reason" is required: it goes into the version history`))
		return
	case halt && req.ToVersion != 0, !halt && req.ToVersion == 0:
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, `give either {"dimension", "variant", "reason"} to halt a variant or {"to_version", "reason"} to return to a version`))
		return
	case req.ToVersion < 0:
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, "to_version must be positive"))
		return
	}
	c := s.cfg.Control
	actor := principal(r).Tenant
	if !halt {
		v, err := c.Revert(r.Context(), req.ToVersion, actor, req.Reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"version": v, "changed": true})
		return
	}
	dim, err := canary.ParseDimension(req.Dimension)
	if err != nil {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, err.Error()))
		return
	}
	if req.Variant == "" {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, `"variant" is required with "dimension"`))
		return
	}
	v, changed, err := c.Halt(r.Context(), dim, req.Variant, actor, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": v, "changed": changed})
}
