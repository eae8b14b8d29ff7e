package httpapi

import (
	"net/http"
	"time"

	"github.com/agentd/agentd/internal/tenant"
	"github.com/agentd/agentd/internal/usage"
)

// Usage is what GET /v1/usage and GET /v1/admin/usage read of the token
// meter (usage.Meter).
type Usage interface {
	Zone() *time.Location
	TenantStatus(tenant string) usage.Status
	UserStatus(tenant, user string) usage.Status
	Users(tenant string) []string
	Tenants() []string
}

// usageView is the answer of the usage routes.
type usageView struct {
	Zone     string     `json:"zone"`      // the zone of the days, e.g. "UTC"
	Day      string     `json:"day"`       // today in the zone
	ResetsAt time.Time  `json:"resets_at"` // the day's end: when the budgets are whole again
	Tenant   *scopeUse  `json:"tenant,omitempty"`
	User     *scopeUse  `json:"user,omitempty"`    // GET /v1/usage with X-Agentd-User
	Users    []scopeUse `json:"users,omitempty"`   // admin, one tenant: its end users
	Tenants  []scopeUse `json:"tenants,omitempty"` // admin, no tenant named: every tenant, today only
}

// scopeUse is a tenant's or end user's use today against its budget.
type scopeUse struct {
	Name   string `json:"name"`
	Tokens int64  `json:"tokens"` // today's input plus output tokens
	usage.Counts
	Budget    *int64    `json:"budget"`    // daily tokens; null: no limit
	Remaining *int64    `json:"remaining"` // null: no limit
	ResetsAt  time.Time `json:"resets_at"`
	Days      []dayUse  `json:"days,omitempty"` // the last 7 days, oldest first, today last
}

type dayUse struct {
	Day    string `json:"day"`
	Tokens int64  `json:"tokens"`
	usage.Counts
}

func newScopeUse(name string, st usage.Status, days bool) scopeUse {
	v := scopeUse{Name: name, Tokens: st.Today.Tokens(), Counts: st.Today, ResetsAt: st.ResetsAt}
	if st.Budget > 0 {
		left := max(0, st.Budget-st.Today.Tokens())
		v.Budget, v.Remaining = &st.Budget, &left
	}
	if days {
		for _, d := range st.Days {
			v.Days = append(v.Days, dayUse{Day: d.Day, Tokens: d.Tokens(), Counts: d.Counts})
		}
	}
	return v
}

func (s *Server) usageMeter(w http.ResponseWriter, r *http.Request) (Usage, bool) {
	if s.cfg.Usage == nil {
		s.writeError(w, r, &apiError{http.StatusNotFound, CodeNotFound, "this server does not count usage"})
		return nil, false
	}
	return s.cfg.Usage, true
}

func (s *Server) newUsageView(u Usage, st usage.Status) usageView {
	return usageView{Zone: u.Zone().String(), Day: st.Days[len(st.Days)-1].Day, ResetsAt: st.ResetsAt}
}

// getUsage answers GET /v1/usage: the caller's tenant and, with
// X-Agentd-User, that end user. Never another tenant's.
func (s *Server) getUsage(w http.ResponseWriter, r *http.Request) {
	u, ok := s.usageMeter(w, r)
	if !ok {
		return
	}
	user, err := user(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	t := principal(r).Tenant
	st := u.TenantStatus(t)
	v := s.newUsageView(u, st)
	ts := newScopeUse(t, st, true)
	v.Tenant = &ts
	if user != "" {
		us := newScopeUse(user, u.UserStatus(t, user), true)
		v.User = &us
	}
	writeJSON(w, http.StatusOK, v)
}

// adminUsage answers GET /v1/admin/usage?tenant=T: T and each of its end
// users; without tenant, every tenant's today.
func (s *Server) adminUsage(w http.ResponseWriter, r *http.Request) {
	u, ok := s.usageMeter(w, r)
	if !ok {
		return
	}
	t := r.URL.Query().Get("tenant")
	if t == "" {
		var v usageView
		for i, name := range u.Tenants() {
			st := u.TenantStatus(name)
			if i == 0 {
				v = s.newUsageView(u, st)
			}
			v.Tenants = append(v.Tenants, newScopeUse(name, st, false))
		}
		if v.Tenants == nil {
			v = s.newUsageView(u, u.TenantStatus(principal(r).Tenant))
			v.Tenants = []scopeUse{}
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	if !tenant.ValidName(t) {
		s.writeError(w, r, errBadRequest(CodeInvalidRequest, "tenant: not a tenant name"))
		return
	}
	st := u.TenantStatus(t)
	v := s.newUsageView(u, st)
	ts := newScopeUse(t, st, true)
	v.Tenant, v.Users = &ts, []scopeUse{}
	for _, name := range u.Users(t) {
		v.Users = append(v.Users, newScopeUse(name, u.UserStatus(t, name), true))
	}
	writeJSON(w, http.StatusOK, v)
}
