// Package fleet makes replicas of agentd one fleet, and is the only
// importer of hashicorp/raft and raft-boltdb.
//
// Membership comes from AGENTD_PEERS: a static list of members (every
// member bootstraps the Raft cluster with the whole list when it has no
// Raft state), or a headless Service (dns+http://host:port) whose
// addresses are asked GET /cluster/v1/whoami; there the member whose name
// sorts first bootstraps alone if no member reports state, and the leader
// adds the members it discovers as voters every few seconds.
//
// The control plane is replicated: the configuration versions of
// rollback.History and the directory of moved sessions are entries of one
// Raft log (in DATA/raft/raft.db, snapshots in DATA/raft/snapshots), applied
// on every replica. Raft's traffic shares the HTTP listener: Handler serves
// /cluster/v1/*, where every request must carry the cluster key; the Raft
// stream is an HTTP upgrade of GET /cluster/v1/raft.
//
// Admin writes on a follower are forwarded to the leader
// (POST /cluster/v1/propose) and return once applied here; the guard's
// samples of followers reach the leader every second
// (POST /cluster/v1/samples), whose guard alone halts, through the log.
// Without a leader reachable by a majority, writes fail with
// rollback.ErrNoQuorum within a few seconds; turns never wait on Raft.
//
// A Node is safe for concurrent use. Close leaves the fleet's Raft (handing
// leadership over first if it leads) and stops its goroutines.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.uber.org/zap"

	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/session"
)

// MinKeyLen is the shortest cluster key accepted.
const MinKeyLen = 16

// Config is what a Node is built from.
type Config struct {
	// Node is this replica's name (Raft's server ID).
	Node string
	// Peers is AGENTD_PEERS: "name=http://host:port,..." naming this
	// node too, or "dns+http://host:port".
	Peers string
	// Key is the cluster key every /cluster/v1 request carries. Never
	// logged.
	Key string `json:"-"`
	// DataDir holds the Raft state, in DataDir/raft.
	DataDir string
	// Directory persists the directory of moved sessions
	// (*boltdb.DirectoryStore).
	Directory Directory
	// Resolve looks a host name up (DNS mode, and the members' names when
	// dialing them). Default: the system resolver.
	Resolve func(ctx context.Context, host string) ([]string, error)
	// Raft's timing; zero values take defaults made for a LAN or a
	// Kubernetes cluster network (a failover takes a few seconds).
	HeartbeatTimeout   time.Duration // default 1 s
	ElectionTimeout    time.Duration // default 1 s
	LeaderLeaseTimeout time.Duration // default 500 ms
	// CommitTimeout is how soon, at most, the leader tells followers what
	// is committed when nothing else is sent: followers apply a write that
	// much after the leader. Default 10 ms (an idle fleet sends 50 to 100
	// tiny messages a second to each follower).
	CommitTimeout time.Duration
	// WriteTimeout bounds an admin write's wait for a leader and a
	// commit before rollback.ErrNoQuorum. Default 5 s.
	WriteTimeout time.Duration
	// Reconcile is how often DNS members are discovered (and added as
	// voters by the leader). Default 3 s.
	Reconcile time.Duration
	// SampleInterval is how often a follower sends the guard's samples
	// to the leader. Default 1 s.
	SampleInterval time.Duration
	// SnapshotThreshold and TrailingLogs tune Raft's snapshots (0: its
	// defaults).
	SnapshotThreshold, TrailingLogs uint64
	Logger                          *zap.Logger
}

// Directory persists the directory of moved sessions.
// *boltdb.DirectoryStore implements it.
type Directory interface {
	Move(ctx context.Context, ids []string, to string, index uint64) error
	Entries(ctx context.Context, fn func(id, to string, index uint64) error) error
	Reset(ctx context.Context) error
}

// Validate checks the settings a fleet needs, all at once.
func (c Config) Validate() error {
	var errs []error
	if err := validNode(c.Node); err != nil {
		errs = append(errs, fmt.Errorf("AGENTD_NODE: %w", err))
	} else if _, err := parsePeers(c.Peers, c.Node); err != nil {
		errs = append(errs, fmt.Errorf("AGENTD_PEERS: %w", err))
	}
	if len(c.Key) < MinKeyLen {
		errs = append(errs, fmt.Errorf("AGENTD_CLUSTER_KEY: a fleet (AGENTD_PEERS) needs a cluster key of at least %d characters, the same on every member", MinKeyLen))
	}
	return errors.Join(errs...)
}

// Node is this replica's membership of the fleet.
type Node struct {
	cfg    Config
	log    *zap.Logger
	peers  peers
	self   string // this member's base URL
	client *http.Client
	stream *streamLayer
	trans  *raft.NetworkTransport
	store  *raftboltdb.BoltStore
	snaps  *raft.FileSnapshotStore
	mux    *http.ServeMux

	mu         sync.Mutex
	raft       *raft.Raft // nil until Start
	h          *rollback.History
	observe    func(rollback.Sample, canary.ByDimension)
	ready      chan struct{}     // closed once this leader applied what was committed before it led
	discovered map[string]string // DNS mode: name → base URL
	dir        map[session.ID]dirEntry
	samples    []sampled

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

type dirEntry struct {
	to    string
	index uint64
}

// New opens the Raft state of cfg.DataDir and the transport; Handler
// serves at once (whoami; Raft streams wait for Start). Start begins
// replicating.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Directory == nil {
		return nil, errors.New("fleet: a directory store is required")
	}
	setDefaults(&cfg)
	p, _ := parsePeers(cfg.Peers, cfg.Node)
	n := &Node{cfg: cfg, log: cfg.Logger.Named("fleet"), peers: p, stop: make(chan struct{}), ready: make(chan struct{}),
		discovered: map[string]string{}, dir: map[session.ID]dirEntry{}}
	if p.dns() {
		n.self = p.memberURL(cfg.Node)
	} else {
		n.self = p.static[cfg.Node]
	}
	n.client = &http.Client{Transport: &http.Transport{DialContext: n.dialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}}
	if err := cfg.Directory.Entries(ctx, func(id, to string, index uint64) error {
		n.dir[session.ID(id)] = dirEntry{to, index}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the directory of moved sessions: %w", err)
	}
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("raft state %s: %w", dir, err)
	}
	hlog := newHCLogger(n.log)
	var err error
	if n.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("open the raft log %s: %w", filepath.Join(dir, "raft.db"), err)
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, hlog); err != nil { // in dir/snapshots
		n.store.Close()
		return nil, fmt.Errorf("raft snapshots: %w", err)
	}
	n.stream = newStreamLayer(hostPort(n.self), cfg.Key, n.dialContext)
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: n.stream, MaxPool: 3, Timeout: 5 * time.Second, Logger: hlog,
	})
	n.mux = n.routes()
	return n, nil
}

func setDefaults(c *Config) {
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{
		{&c.HeartbeatTimeout, time.Second}, {&c.ElectionTimeout, time.Second}, {&c.LeaderLeaseTimeout, 500 * time.Millisecond}, {&c.CommitTimeout, 10 * time.Millisecond},
		{&c.WriteTimeout, 5 * time.Second}, {&c.Reconcile, 3 * time.Second}, {&c.SampleInterval, time.Second},
	} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Resolve == nil {
		c.Resolve = net.DefaultResolver.LookupHost
	}
}

// dialContext dials addr, looking its host up with Config.Resolve.
func (n *Node) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) == nil {
		ips, err := n.cfg.Resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("%s has no address", host)
		}
		addr = net.JoinHostPort(ips[0], port)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// Start begins replicating into h: committed versions are applied to it
// (and the moved sessions to the directory), other replicas' admin writes
// run on it while this replica leads, and the followers' guard samples
// are given to observe. Call it once, after h is open.
func (n *Node) Start(h *rollback.History, observe func(rollback.Sample, canary.ByDimension)) error {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.Node)
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = n.cfg.HeartbeatTimeout, n.cfg.ElectionTimeout, n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.Logger = newHCLogger(n.log)
	if n.cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	}
	if n.cfg.TrailingLogs > 0 {
		rc.TrailingLogs = n.cfg.TrailingLogs
	}
	n.mu.Lock()
	n.h, n.observe = h, observe
	n.mu.Unlock()
	has, err := raft.HasExistingState(n.store, n.store, n.snaps)
	if err != nil {
		return fmt.Errorf("read the raft state: %w", err)
	}
	if !has && !n.peers.dns() {
		conf := raft.Configuration{}
		for _, name := range sortedKeys(n.peers.static) {
			conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(name), Address: raft.ServerAddress(hostPort(n.peers.static[name]))})
		}
		if err := raft.BootstrapCluster(rc, n.store, n.store, n.snaps, n.trans, conf); err != nil {
			return fmt.Errorf("bootstrap the fleet: %w", err)
		}
		n.log.Info("bootstrapped the fleet", zap.Strings("members", sortedKeys(n.peers.static)))
	}
	r, err := raft.NewRaft(rc, &fsm{n: n}, n.store, n.store, n.snaps, n.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.mu.Lock()
	n.raft = r
	n.mu.Unlock()
	n.log.Info("fleet member started", zap.String("node", n.cfg.Node), zap.String("url", n.self), zap.Bool("had_state", has),
		zap.Bool("dns", n.peers.dns()))
	n.goLoop(n.watchLeadership)
	n.goLoop(n.sendSamples)
	if n.peers.dns() {
		n.goLoop(n.reconcile)
	}
	return nil
}

func (n *Node) goLoop(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) raftNode() *raft.Raft {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.raft
}

// watchLeadership makes Leading wait, on a new leader, for a barrier: the
// leader's history has then applied every entry committed before.
func (n *Node) watchLeadership() {
	r := n.raftNode()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-r.LeaderCh():
			n.mu.Lock()
			n.ready = make(chan struct{})
			ready := n.ready
			n.mu.Unlock()
			if !leader {
				n.log.Info("no longer the fleet's leader")
				continue
			}
			n.log.Info("leading the fleet")
			n.goLoop(func() { n.barrier(r, ready) })
		}
	}
}

func (n *Node) barrier(r *raft.Raft, ready chan struct{}) {
	for {
		err := r.Barrier(10 * time.Second).Error()
		if err == nil {
			n.mu.Lock()
			if n.ready == ready { // still the same leadership
				close(ready)
			}
			n.mu.Unlock()
			return
		}
		if r.State() != raft.Leader {
			return
		}
		select {
		case <-n.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Leading implements rollback.Replicator. Raft says it leads a moment
// before it tells (LeaderCh): the wait re-reads the state.
func (n *Node) Leading(ctx context.Context) bool {
	r := n.raftNode()
	if r == nil {
		return false
	}
	for {
		if r.State() != raft.Leader {
			return false
		}
		n.mu.Lock()
		ready := n.ready
		n.mu.Unlock()
		select {
		case <-ready:
			return r.State() == raft.Leader
		case <-ctx.Done():
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// IsLeader tells whether this replica leads the fleet now.
func (n *Node) IsLeader() bool {
	r := n.raftNode()
	return r != nil && r.State() == raft.Leader
}

// Commit implements rollback.Replicator.
func (n *Node) Commit(ctx context.Context, v rollback.Version) error {
	resp, _, err := n.apply(ctx, entry{Version: &v})
	if err != nil {
		return err
	}
	if e, ok := resp.(error); ok {
		return e
	}
	return nil
}

// apply commits e through Raft on this leader and returns what its FSM
// answered and the entry's index.
func (n *Node) apply(ctx context.Context, e entry) (any, uint64, error) {
	r := n.raftNode()
	if r == nil {
		return nil, 0, fmt.Errorf("%w: the fleet is not started", rollback.ErrNoQuorum)
	}
	data, err := e.encode()
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	f := r.Apply(data, n.cfg.WriteTimeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, 0, fmt.Errorf("%w: not committed within %v (it may still be; see the version history)", rollback.ErrNoQuorum, n.cfg.WriteTimeout)
	}
	switch {
	case err == nil:
		return f.Response(), f.Index(), nil
	case errors.Is(err, raft.ErrLeadershipLost):
		return nil, 0, fmt.Errorf("%w: this replica lost the leadership while committing; the change may or may not be applied: see the version history", rollback.ErrNoQuorum)
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrRaftShutdown):
		return nil, 0, fmt.Errorf("%w: %v", rollback.ErrNoQuorum, err)
	default:
		return nil, 0, fmt.Errorf("commit: %w", err)
	}
}

// Self is this replica's name.
func (n *Node) Self() string { return n.cfg.Node }

// URL is this replica's base URL, as the other members reach it.
func (n *Node) URL() string { return n.self }

// Leader is the name of the fleet's leader ("" when there is none).
func (n *Node) Leader() string {
	r := n.raftNode()
	if r == nil {
		return ""
	}
	_, id := r.LeaderWithID()
	return string(id)
}

// members returns every member: name → base URL (the static list, or the
// members discovered and those in the Raft configuration).
func (n *Node) members() map[string]string {
	if !n.peers.dns() {
		return n.peers.static
	}
	out := map[string]string{n.cfg.Node: n.self}
	n.mu.Lock()
	for name, u := range n.discovered {
		out[name] = u
	}
	n.mu.Unlock()
	if r := n.raftNode(); r != nil {
		if f := r.GetConfiguration(); f.Error() == nil {
			for _, s := range f.Configuration().Servers {
				out[string(s.ID)] = "http://" + string(s.Address)
			}
		}
	}
	return out
}

// Peers returns every other member: name → base URL.
func (n *Node) Peers() map[string]string {
	out := map[string]string{}
	for name, u := range n.members() {
		if name != n.cfg.Node {
			out[name] = u
		}
	}
	return out
}

// Owner says which member serves session id now: the directory of moved
// sessions first, else the node its id names. An id of the form without a
// node (made before the fleet) is this replica's to look up. ok is false
// when the node is not a member.
func (n *Node) Owner(id session.ID) (node, url string, ok bool) {
	n.mu.Lock()
	e, moved := n.dir[id]
	n.mu.Unlock()
	switch {
	case moved:
		node = e.to
	default:
		node = id.Node()
	}
	if node == "" {
		return n.cfg.Node, n.self, true
	}
	url, ok = n.members()[node]
	return node, url, ok
}

// Handle serves h at pattern on the cluster channel, behind the cluster
// key (the handoff's routes). Call it before the listener serves.
func (n *Node) Handle(pattern string, h http.Handler) { n.mux.Handle(pattern, n.authed(h.ServeHTTP)) }

// Moved records, through the log, that the sessions ids are held by node
// to from now on (the handoff's last step). It returns once applied here.
func (n *Node) Moved(ctx context.Context, ids []session.ID, to string) error {
	if err := session.ValidNode(to); err != nil {
		return err
	}
	if _, ok := n.members()[to]; !ok {
		return fmt.Errorf("node %s is not a member of the fleet", to)
	}
	m := movedEntry{To: to}
	for _, id := range ids {
		if !id.Valid() {
			return fmt.Errorf("%q is not a session id", id)
		}
		m.IDs = append(m.IDs, string(id))
	}
	if n.Leading(ctx) {
		resp, _, err := n.apply(ctx, entry{Moved: &m})
		if err != nil {
			return err
		}
		if e, ok := resp.(error); ok {
			return e
		}
		return nil
	}
	var out proposeResponse
	if err := n.forward(ctx, proposeRequest{Moved: &m}, &out); err != nil {
		return err
	}
	return n.waitIndex(ctx, out.Index)
}

// waitIndex returns once this replica's log has applied index.
func (n *Node) waitIndex(ctx context.Context, index uint64) error {
	r := n.raftNode()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for r.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: committed but not yet applied here", rollback.ErrNoQuorum)
		case <-t.C:
		}
	}
	return nil
}

// Forward implements rollback.Replicator.
func (n *Node) Forward(ctx context.Context, op rollback.Op) (rollback.Version, bool, error) {
	var out proposeResponse
	if err := n.forward(ctx, proposeRequest{Op: &op}, &out); err != nil {
		return rollback.Version{}, false, err
	}
	if out.Version == nil {
		return rollback.Version{}, false, errors.New("the leader answered without a version")
	}
	n.mu.Lock()
	h := n.h
	n.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, n.cfg.WriteTimeout)
	defer cancel()
	if err := h.WaitApplied(wctx, out.Version.N); err != nil {
		return rollback.Version{}, false, fmt.Errorf("%w: %w", rollback.ErrNoQuorum, err)
	}
	return *out.Version, out.Changed, nil
}

// Sample queues a finished turn for the leader's guard (sent within a
// second). At most maxSamples wait; the oldest go first.
func (n *Node) Sample(s rollback.Sample, values canary.ByDimension) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.samples) >= maxSamples {
		n.samples = slices.Delete(n.samples, 0, len(n.samples)-maxSamples+1)
	}
	n.samples = append(n.samples, sampled{Sample: s, Values: values})
}

const maxSamples = 10000

type sampled struct {
	Sample rollback.Sample    `json:"sample"`
	Values canary.ByDimension `json:"values"`
}

// sendSamples sends the queued samples to the leader every
// SampleInterval (to this replica's own guard if it leads now).
func (n *Node) sendSamples() {
	t := time.NewTicker(n.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		n.mu.Lock()
		batch := n.samples
		n.samples = nil
		observe := n.observe
		n.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		if n.IsLeader() {
			for _, s := range batch {
				observe(s.Sample, s.Values)
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := n.toLeader(ctx, pathSamples, batch, nil)
		cancel()
		if err != nil {
			n.log.Debug("could not send the guard's samples to the leader; kept for the next try", zap.Int("samples", len(batch)), zap.Error(err))
			n.mu.Lock()
			n.samples = append(batch, n.samples...)
			if len(n.samples) > maxSamples {
				n.samples = n.samples[len(n.samples)-maxSamples:]
			}
			n.mu.Unlock()
		}
	}
}

// Close leaves the fleet's Raft: it hands leadership over if it leads (so
// the others need not wait for an election), stops, and closes the Raft
// state. Later calls do nothing.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.stop)
		if r := n.raftNode(); r != nil {
			if r.State() == raft.Leader && len(n.members()) > 1 {
				if err := r.LeadershipTransfer().Error(); err != nil {
					n.log.Info("could not hand the leadership over before leaving", zap.Error(err))
				}
			}
			n.closeErr = r.Shutdown().Error()
		}
		n.wg.Wait()
		n.closeErr = errors.Join(n.closeErr, n.trans.Close(), n.stream.Close(), n.store.Close())
		n.client.CloseIdleConnections()
	})
	return n.closeErr
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
