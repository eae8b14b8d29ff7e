package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// reconcile runs in DNS mode: every Reconcile it asks each address of the
// headless Service who it is; a member without Raft state bootstraps the
// fleet alone if its name sorts first among those found and none of them
// has state; the leader adds every member found as a voter. Members are
// never removed here: a replica that is down for a while is still one
// (the handoff retires a replica).
func (n *Node) reconcile() {
	t := time.NewTicker(n.cfg.Reconcile)
	defer t.Stop()
	bootstrapped := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Reconcile)
		n.reconcileOnce(ctx, &bootstrapped)
		cancel()
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

func (n *Node) reconcileOnce(ctx context.Context, bootstrapped *bool) {
	found, err := n.discover(ctx)
	if err != nil {
		n.log.Warn("could not discover the fleet's members", zap.String("service", n.peers.dnsHost), zap.Error(err))
		return
	}
	n.mu.Lock()
	n.discovered = map[string]string{}
	for name := range found {
		n.discovered[name] = n.peers.memberURL(name)
	}
	n.mu.Unlock()
	r := n.raftNode()
	if has, err := raft.HasExistingState(n.store, n.store, n.snaps); err == nil && !has && !*bootstrapped {
		names := []string{n.cfg.Node}
		withState := []string{}
		for name, w := range found {
			if name != n.cfg.Node {
				names = append(names, name)
				if w.HasState {
					withState = append(withState, name)
				}
			}
		}
		slices.Sort(names)
		if len(withState) == 0 && names[0] == n.cfg.Node {
			conf := raft.Configuration{Servers: []raft.Server{{ID: raft.ServerID(n.cfg.Node), Address: raft.ServerAddress(hostPort(n.self))}}}
			if err := r.BootstrapCluster(conf).Error(); err != nil {
				n.log.Warn("could not bootstrap the fleet", zap.Error(err))
				return
			}
			*bootstrapped = true
			n.log.Info("bootstrapped the fleet alone: first of the members found, none with state", zap.Strings("found", names))
		}
	}
	if r.State() != raft.Leader {
		return
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	in := map[raft.ServerID]bool{}
	for _, s := range f.Configuration().Servers {
		in[s.ID] = true
	}
	for _, name := range sortedKeys(n.discoveredCopy()) {
		if in[raft.ServerID(name)] {
			continue
		}
		addr := hostPort(n.peers.memberURL(name))
		if err := r.AddVoter(raft.ServerID(name), raft.ServerAddress(addr), 0, 5*time.Second).Error(); err != nil {
			n.log.Warn("could not add a member to the fleet", zap.String("member", name), zap.Error(err))
			continue
		}
		n.log.Info("added a member to the fleet", zap.String("member", name), zap.String("address", addr))
	}
}

func (n *Node) discoveredCopy() map[string]string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make(map[string]string, len(n.discovered))
	for k, v := range n.discovered {
		out[k] = v
	}
	return out
}

// discover asks every address of the Service who it is.
func (n *Node) discover(ctx context.Context) (map[string]Whoami, error) {
	ips, err := n.cfg.Resolve(ctx, n.peers.dnsHost)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	found := map[string]Whoami{}
	for _, ip := range ips {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := n.askWhoami(ctx, "http://"+net.JoinHostPort(ip, n.peers.dnsPort))
			if err != nil {
				n.log.Debug("a Service address did not say who it is", zap.String("address", ip), zap.Error(err))
				return
			}
			mu.Lock()
			found[w.Name] = w
			mu.Unlock()
		}()
	}
	wg.Wait()
	return found, nil
}

func (n *Node) askWhoami(ctx context.Context, base string) (Whoami, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+pathWhoami, nil)
	if err != nil {
		return Whoami{}, err
	}
	req.Header.Set("Authorization", "Bearer "+n.cfg.Key)
	resp, err := n.client.Do(req)
	if err != nil {
		return Whoami{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Whoami{}, fmt.Errorf("whoami: %s", resp.Status)
	}
	var w Whoami
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil {
		return Whoami{}, err
	}
	if err := validNode(w.Name); err != nil {
		return Whoami{}, err
	}
	return w, nil
}
