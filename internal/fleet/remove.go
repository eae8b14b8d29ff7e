package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/session"
)

// Errors of Remove.
var (
	ErrUnknownMember = errors.New("no such member of the fleet")
	ErrMemberRunning = errors.New("the member still answers: scale it down (after agentd sessions move) before removing it")
	ErrRemoveSelf    = errors.New("a replica does not remove itself: ask another one")
)

const pathRemove = "/cluster/v1/remove" // POST {"name"}: the leader removes a voter

// Remove takes a retired replica out of the Raft configuration, so that the
// fleet's quorum counts only the replicas that remain (the last step of a
// scale-down, docs/fleet.md). The replica must be gone: one that still
// answers is refused (in a DNS fleet the leader would add it again). Any
// replica takes the call; the leader carries it out.
func (n *Node) Remove(ctx context.Context, name string) error {
	if err := session.ValidNode(name); err != nil {
		return fmt.Errorf("%w: %w", ErrUnknownMember, err)
	}
	if name == n.cfg.Node {
		return ErrRemoveSelf
	}
	if !n.voter(name) {
		return fmt.Errorf("%w: %q is not a voter of the fleet", ErrUnknownMember, name)
	}
	if url, ok := n.members()[name]; ok {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := n.askWhoami(actx, url)
		cancel()
		if err == nil {
			return fmt.Errorf("%w (%s)", ErrMemberRunning, name)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	for {
		err := n.removeHere(name)
		if errors.Is(err, rollback.ErrNotLeader) {
			err = n.toLeader(ctx, pathRemove, map[string]string{"name": name}, nil)
		}
		if err == nil || !(errors.Is(err, errNoLeader) || errors.Is(err, rollback.ErrNotLeader)) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", rollback.ErrNoQuorum, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// voter tells whether name is in the Raft configuration.
func (n *Node) voter(name string) bool {
	r := n.raftNode()
	if r == nil {
		return false
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == name {
			return true
		}
	}
	return false
}

// removeHere removes name if this replica leads (rollback.ErrNotLeader if
// not).
func (n *Node) removeHere(name string) error {
	r := n.raftNode()
	if r == nil || r.State() != raft.Leader {
		return rollback.ErrNotLeader
	}
	if err := r.RemoveServer(raft.ServerID(name), 0, n.cfg.WriteTimeout).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return rollback.ErrNotLeader
		}
		return fmt.Errorf("%w: %v", rollback.ErrNoQuorum, err)
	}
	n.log.Info("removed a member from the fleet", zap.String("member", name))
	return nil
}

// serveRemove is the leader's side of Remove.
func (n *Node) serveRemove(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxClusterBody)).Decode(&req); err != nil || req.Name == "" {
		writeErr(w, http.StatusBadRequest, codeBadRequest, `want {"name": "<member>"}`)
		return
	}
	if err := n.removeHere(req.Name); err != nil {
		n.writeRollbackErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
