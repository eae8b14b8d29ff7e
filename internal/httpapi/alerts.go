package httpapi

import (
	"net/http"

	"github.com/agentd/agentd/internal/alerts"
)

// AlertList is what GET /v1/admin/alerts needs of the built-in alerts
// (alerts.Alerts).
type AlertList interface {
	// List returns the firing alerts, then the recently resolved ones.
	List() []alerts.Alert
}

// listAlerts answers GET /v1/admin/alerts (admin keys only): the firing
// alerts, most severe first, then those resolved recently, newest first.
// ?status=firing|resolved and ?tenant=NAME narrow the list.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Alerts == nil {
		s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "the built-in alerts are not running on this server"})
		return
	}
	q := r.URL.Query()
	status, tenantName := q.Get("status"), q.Get("tenant")
	if status != "" && status != "firing" && status != "resolved" {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, `status must be "firing" or "resolved"`))
		return
	}
	out := []alerts.Alert{}
	for _, a := range s.cfg.Alerts.List() {
		if (status == "firing" && a.ResolvedAt != nil) || (status == "resolved" && a.ResolvedAt == nil) {
			continue
		}
		if tenantName != "" && a.Scope.Tenant != tenantName {
			continue
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": out})
}
