package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"go.uber.org/zap"

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
	list, unavailable := s.cfg.Alerts.List(), []string(nil)
	if s.fwd != nil && r.Header.Get(ForwardedByHeader) == "" { // a fleet: every replica's, each with its node
		var more []alerts.Alert
		more, unavailable = s.peerAlerts(r)
		list = append(list, more...)
		alerts.Order(list)
	}
	out := []alerts.Alert{}
	for _, a := range list {
		if (status == "firing" && a.ResolvedAt != nil) || (status == "resolved" && a.ResolvedAt == nil) {
			continue
		}
		if tenantName != "" && a.Scope.Tenant != tenantName {
			continue
		}
		out = append(out, a)
	}
	body := map[string]any{"alerts": out}
	if len(unavailable) > 0 {
		body["unavailable"] = unavailable
	}
	writeJSON(w, http.StatusOK, body)
}

// peerAlerts asks every other replica of the fleet for its own alerts,
// with the caller's key; the replicas that do not answer within
// peerListTimeout are named in unavailable.
func (s *Server) peerAlerts(r *http.Request) (list []alerts.Alert, unavailable []string) {
	ctx, cancel := context.WithTimeout(r.Context(), peerListTimeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	self := s.fwd.fleet.Self()
	for node, base := range s.fwd.fleet.Peers() {
		if node == self {
			continue
		}
		wg.Go(func() {
			got, err := s.peerAlertsOf(ctx, r, node, base)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				s.log.Warn("peer did not list its alerts", zap.String("peer", node), zap.Error(err))
				unavailable = append(unavailable, node)
				return
			}
			list = append(list, got...)
		})
	}
	wg.Wait()
	slices.Sort(unavailable)
	return list, unavailable
}

func (s *Server) peerAlertsOf(ctx context.Context, r *http.Request, node, base string) ([]alerts.Alert, error) {
	u, err := memberURL(base)
	if err != nil {
		return nil, err
	}
	u = u.JoinPath("/v1/admin/alerts")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", r.Header.Get("Authorization")) // the caller's admin key: the peer checks it again
	req.Header.Set(ForwardedByHeader, s.fwd.fleet.Self())
	resp, err := s.fwd.transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u.Redacted(), resp.StatusCode)
	}
	var page struct {
		Alerts []alerts.Alert `json:"alerts"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPeerListBytes)).Decode(&page); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	for _, a := range page.Alerts {
		if a.Node != node {
			return nil, fmt.Errorf("GET %s: an alert of node %q, not of %q", u.Redacted(), a.Node, node)
		}
	}
	return page.Alerts, nil
}
