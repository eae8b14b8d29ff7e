package fleet

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Status is the fleet as this replica sees it (GET /v1/admin/fleet).
type Status struct {
	Self   string `json:"self"`
	Leader string `json:"leader"` // "" when there is none
	// AppliedVersion is the last configuration version this replica's log
	// applied.
	AppliedVersion int            `json:"applied_version"`
	Members        []MemberStatus `json:"members"`
}

// MemberStatus is one member: whether it votes in the Raft configuration
// and whether it answered just now, with the version it applied.
type MemberStatus struct {
	Name           string `json:"name"`
	URL            string `json:"url"`
	Voter          bool   `json:"voter"`
	Reachable      bool   `json:"reachable"`
	AppliedVersion int    `json:"applied_version"`
	Error          string `json:"error,omitempty"`
}

// Status asks every member who it is (a second at most) and reports the
// fleet.
func (n *Node) Status(ctx context.Context) Status {
	self := n.status()
	st := Status{Self: n.cfg.Node, Leader: self.Leader, AppliedVersion: self.AppliedVersion}
	voters := map[string]bool{}
	if r := n.raftNode(); r != nil {
		if f := r.GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				voters[string(s.ID)] = s.Suffrage == raft.Voter
			}
		}
	}
	members := n.members()
	names := sortedKeys(members)
	st.Members = make([]MemberStatus, len(names))
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, name := range names {
		m := MemberStatus{Name: name, URL: members[name], Voter: voters[name]}
		if name == n.cfg.Node {
			m.Reachable, m.AppliedVersion = true, self.AppliedVersion
			st.Members[i] = m
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := n.askWhoami(ctx, m.URL)
			if err != nil {
				m.Error = err.Error()
			} else {
				m.Reachable, m.AppliedVersion = true, w.AppliedVersion
			}
			st.Members[i] = m
		}()
	}
	wg.Wait()
	return st
}
