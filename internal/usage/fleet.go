package usage

import (
	"maps"
	"strings"
	"time"
)

// In a fleet each replica counts the sessions it owns. A tenant's sessions
// may live on several replicas, so budgets and the usage routes add the
// other replicas' counts of the tenant and user scopes: each replica hands
// out its Share, and takes the others' with SetShare (internal/operate
// exchanges them over the cluster channel every few seconds). The built-in
// alerts keep reading this replica's own counts (Day, Window): each replica
// alerts on what it serves.

// Share is a replica's tenant and user counts of the last StatusDays days.
type Share struct {
	Node string                      `json:"node"`
	Days map[string]map[Scope]Counts `json:"days"` // day (in the zone) → scope → counts
}

// Share returns this replica's Share.
func (m *Meter) Share(node string) Share {
	now := m.cfg.Now().In(m.cfg.Zone)
	first := time.Date(now.Year(), now.Month(), now.Day()-(StatusDays-1), 12, 0, 0, 0, m.cfg.Zone).Format(time.DateOnly)
	s := Share{Node: node, Days: map[string]map[Scope]Counts{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, c := range m.days {
		if k.Day < first || (k.Scope.Kind() != "tenant" && k.Scope.Kind() != "user") {
			continue
		}
		if s.Days[k.Day] == nil {
			s.Days[k.Day] = map[Scope]Counts{}
		}
		s.Days[k.Day][k.Scope] = c
	}
	return s
}

// SetShare keeps another replica's Share (the newest replaces the last),
// dropping what is not a tenant or user scope of a kept day.
func (m *Meter) SetShare(s Share) {
	days := map[string]map[Scope]Counts{}
	for day, scopes := range s.Days {
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			continue
		}
		for sc, c := range scopes {
			if k := sc.Kind(); (k != "tenant" && k != "user") || !strings.Contains(string(sc), ":") {
				continue
			}
			if days[day] == nil {
				days[day] = map[Scope]Counts{}
			}
			days[day][sc] = c
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shares == nil {
		m.shares = map[string]map[string]map[Scope]Counts{}
	}
	m.shares[s.Node] = days
}

// fleetDay is a scope's counts of day on this replica and every other
// replica whose Share it holds. Call with mu held.
func (m *Meter) fleetDay(day string, sc Scope) Counts {
	c := m.days[DayKey{day, sc}]
	for _, days := range m.shares {
		c = c.Add(days[day][sc])
	}
	return c
}

// sharedScopes adds the scopes other replicas have counted to set, for
// Users and Tenants. Call with mu held.
func (m *Meter) sharedScopes(kind string, set map[Scope]bool) {
	for _, days := range m.shares {
		for _, scopes := range days {
			for sc := range maps.Keys(scopes) {
				if sc.Kind() == kind {
					set[sc] = true
				}
			}
		}
	}
}
