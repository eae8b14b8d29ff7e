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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/session"
)

const testKey = "fleet-test-key-0123456789"

var known = canary.Known{Defaults: [5]string{"gpt-4o", "default", "v1", "workspace-write", "AGENTAO.md"}}

const docBeta = `{"models":["gpt-4o","gpt-5"],"model":{"stable":"gpt-4o","variants":[{"name":"beta","value":"gpt-5","percent":50}]}}`

// member is one replica of a test fleet: a real store in a temp dir, a
// replicated history, and the cluster handler on a real loopback listener.
type member struct {
	t      testing.TB
	name   string
	addr   string // host:port it listens on
	dir    string
	cfg    Config
	db     *boltdb.DB
	node   *Node
	h      *rollback.History
	router *canary.Router
	srv    *http.Server
	served atomic.Int32 // versions served (OnApply)
	seen   atomic.Int32 // guard samples observed
}

// newFleet starts n members with static peers.
func newFleet(t testing.TB, n int, tune func(*Config)) []*member {
	t.Helper()
	var ms []*member
	var spec []string
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		m := &member{t: t, name: fmt.Sprintf("n%d", i+1), addr: ln.Addr().String(), dir: t.TempDir()}
		ln.Close()
		ms = append(ms, m)
		spec = append(spec, m.name+"=http://"+m.addr)
	}
	for _, m := range ms {
		m.cfg = Config{Node: m.name, Peers: strings.Join(spec, ","), Key: testKey, DataDir: m.dir}
		if tune != nil {
			tune(&m.cfg)
		}
		m.start()
	}
	return ms
}

func (m *member) start() {
	t := m.t
	t.Helper()
	db, err := boltdb.Open(filepath.Join(m.dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.db = db
	cfg := m.cfg
	cfg.Directory = db.Directory()
	if cfg.Logger == nil {
		cfg.Logger = zaptest.NewLogger(t).Named(m.name)
	}
	node, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.node = node
	p, _ := canary.Compile(canary.Document{}, known)
	m.router = canary.NewRouter(p, 0)
	m.h, err = rollback.Open(t.Context(), rollback.Config{
		Store: db.Versions(), Router: m.router, Known: func() canary.Known { return known },
		ReadFile: func() ([]byte, error) { return os.ReadFile(filepath.Join(m.dir, "canary.json")) },
		Logger:   cfg.Logger, Replicator: node,
		OnApply: func(*canary.Policy, rollback.Version) { m.served.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln := listenRetry(t, m.addr)
	m.srv = &http.Server{Handler: node.Handler()}
	go m.srv.Serve(ln)
	if err := node.Start(m.h, func(rollback.Sample, canary.ByDimension) { m.seen.Add(1) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
}

// listenRetry listens on addr again (a restarted member keeps its address).
func listenRetry(t testing.TB, addr string) net.Listener {
	t.Helper()
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("listen %s: %v", addr, err)
	return nil
}

// stop closes the member as a process exit would (idempotent).
func (m *member) stop() {
	if m.srv == nil {
		return
	}
	m.srv.Close()
	if err := m.node.Close(); err != nil {
		m.t.Logf("%s: close: %v", m.name, err)
	}
	m.db.Close()
	m.srv = nil
}

// waitFor polls cond until it holds (a generous deadline: no timed
// assertions).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leaderOf(t testing.TB, ms []*member) *member {
	t.Helper()
	var leader *member
	waitFor(t, "a leader", func() bool {
		for _, m := range ms {
			if m.srv != nil && m.node.Leading(t.Context()) {
				leader = m
				return true
			}
		}
		return false
	})
	return leader
}

func followerOf(ms []*member, leader *member) *member {
	for _, m := range ms {
		if m != leader && m.srv != nil {
			return m
		}
	}
	return nil
}

// converged waits until every running member applied and serves version n.
func converged(t testing.TB, ms []*member, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("version %d everywhere", n), func() bool {
		for _, m := range ms {
			if m.srv == nil {
				continue
			}
			if _, v := m.h.Current(); v.N != n || m.h.Applied().N != n {
				return false
			}
		}
		return true
	})
}

// poll is the watcher's poll on every member: the leader proposes the file.
func poll(t testing.TB, ms []*member) {
	for _, m := range ms {
		if m.srv != nil {
			_, _, _ = m.h.Reload(t.Context(), "canary.json changed")
		}
	}
}

func TestOneVersionSequence(t *testing.T) {
	ms := newFleet(t, 3, nil)
	leader := leaderOf(t, ms)
	poll(t, ms) // the leader makes canary.json (none: defaults) version 1
	converged(t, ms, 1)
	ctx := t.Context()

	// A write on each member in turn, followers included.
	for i, m := range ms {
		_, cur := m.h.Current()
		v, err := m.h.Apply(ctx, []byte(docBeta), cur.N, "ops", fmt.Sprintf("write %d on %s", i, m.name))
		if err != nil {
			t.Fatalf("Apply on %s (leader %s): %v", m.name, leader.name, err)
		}
		// It returns once applied on the member that took it.
		if _, now := m.h.Current(); now.N != v.N {
			t.Errorf("Apply on %s returned version %d but it serves %d", m.name, v.N, now.N)
		}
		converged(t, ms, v.N) // the others apply it a moment later
	}
	converged(t, ms, 4)

	f := followerOf(ms, leader)
	if _, _, err := f.h.Halt(ctx, canary.Model, "beta", "ops", "bad numbers", nil); err != nil {
		t.Fatalf("Halt on a follower: %v", err)
	}
	converged(t, ms, 5)
	if _, err := f.h.Revert(ctx, 2, "ops", "back"); err != nil {
		t.Fatalf("Revert on a follower: %v", err)
	}
	converged(t, ms, 6)

	// Errors keep their meaning across the hop.
	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"stale If-Match", func() error { _, err := f.h.Apply(ctx, []byte(docBeta), 2, "ops", "late"); return err }, rollback.ErrConflict},
		{"invalid document", func() error {
			_, err := f.h.Apply(ctx, []byte(`{"model":{"stable":"nope"}}`), 6, "ops", "bad")
			return err
		}, rollback.ErrInvalid},
		{"unknown variant", func() error { _, _, err := f.h.Halt(ctx, canary.Model, "ghost", "ops", "x", nil); return err }, rollback.ErrUnknownVariant},
		{"no such version", func() error { _, err := f.h.Revert(ctx, 99, "ops", "x"); return err }, rollback.ErrNotFound},
		{"no reason", func() error { _, err := f.h.Revert(ctx, 1, "ops", ""); return err }, rollback.ErrReasonRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !errors.Is(err, tc.want) {
				t.Errorf("err = %v; want %v", err, tc.want)
			}
		})
	}

	// One history: the same versions, the same revert list, everywhere.
	want, _ := leader.h.List(ctx, 0, 100)
	for _, m := range ms {
		got, _ := m.h.List(ctx, 0, 100)
		if len(got) != len(want) {
			t.Fatalf("%s has %d versions; want %d", m.name, len(got), len(want))
		}
		for i := range got {
			if got[i].N != want[i].N || !got[i].At.Equal(want[i].At) || got[i].Reason != want[i].Reason {
				t.Errorf("%s version %d = %+v; want %+v", m.name, got[i].N, got[i], want[i])
			}
		}
		if by, _ := m.h.RevertedBy(4); by != 6 {
			t.Errorf("%s: RevertedBy(4) = %d; want 6", m.name, by)
		}
	}
}

func TestLeaderLossWritesGoOn(t *testing.T) {
	ms := newFleet(t, 3, nil)
	old := leaderOf(t, ms)
	poll(t, ms)
	converged(t, ms, 1)
	old.stop()
	leader := leaderOf(t, ms)
	if leader == old {
		t.Fatal("the stopped member still leads")
	}
	f := followerOf(ms, leader)
	v, err := f.h.Apply(t.Context(), []byte(docBeta), 1, "ops", "with 2 of 3")
	if err != nil {
		t.Fatalf("Apply on %s with 2 of 3: %v", f.name, err)
	}
	converged(t, ms, v.N)
}

func TestRestartedMemberCatchesUp(t *testing.T) {
	ms := newFleet(t, 3, nil)
	leader := leaderOf(t, ms)
	poll(t, ms)
	converged(t, ms, 1)
	f := followerOf(ms, leader)
	f.stop()
	ctx := t.Context()
	if _, err := leader.h.Apply(ctx, []byte(docBeta), 1, "ops", "while f is down"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.h.Halt(ctx, canary.Model, "beta", "ops", "halt while f is down", nil); err != nil {
		t.Fatal(err)
	}
	f.start()
	// It serves what it had at once (its stored 1), never nothing; on a
	// fast machine the log may have been replayed already (3).
	if _, v := f.h.Current(); v.N != 1 && v.N != 3 {
		t.Errorf("restarted member serves version %d at start; want its stored 1 (or 3, caught up already)", v.N)
	}
	converged(t, ms, 3)
	if p, _ := f.h.Current(); !p.Halted(canary.Model, "beta") {
		t.Error("the restarted member does not serve the halt")
	}
}

func TestReplayIsIdempotent(t *testing.T) {
	ms := newFleet(t, 3, nil)
	leader := leaderOf(t, ms)
	poll(t, ms)
	converged(t, ms, 1)
	ctx := t.Context()
	for i := range 3 {
		if _, err := leader.h.Apply(ctx, []byte(docBeta), i+1, "ops", fmt.Sprintf("write %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, ms, 4)
	f := followerOf(ms, leader)
	before, _ := f.h.List(ctx, 0, 100)
	f.stop()
	f.start()
	servedAtStart := f.served.Load()
	// The whole log is applied again (no snapshot was taken): wait until
	// it is, then nothing may have changed or been served again.
	waitFor(t, "the replayed log", func() bool { return f.h.Applied().N == 4 })
	after, _ := f.h.List(ctx, 0, 100)
	if len(after) != len(before) {
		t.Fatalf("after the replay %d versions; want %d", len(after), len(before))
	}
	for i := range after {
		if !after[i].At.Equal(before[i].At) || after[i].N != before[i].N {
			t.Errorf("version %d changed by the replay: %+v; want %+v", after[i].N, after[i], before[i])
		}
	}
	if got := f.served.Load(); got != servedAtStart {
		t.Errorf("the replay served %d versions again; want none", got-servedAtStart)
	}
	// A version out of order is refused on every replica alike.
	if err := f.h.ApplyCommitted(ctx, rollback.Version{N: 9}); !errors.Is(err, rollback.ErrStale) {
		t.Errorf("ApplyCommitted(version 9 after 4) = %v; want ErrStale", err)
	}
}

func TestNoQuorumFailsFast(t *testing.T) {
	ms := newFleet(t, 3, func(c *Config) { c.WriteTimeout = 3 * time.Second })
	leader := leaderOf(t, ms)
	poll(t, ms)
	converged(t, ms, 1)
	for _, m := range ms {
		if m != leader {
			m.stop()
		}
	}
	for _, m := range []*member{leader} {
		began := time.Now()
		_, err := m.h.Apply(t.Context(), []byte(docBeta), 1, "ops", "alone")
		if !errors.Is(err, rollback.ErrNoQuorum) {
			t.Fatalf("Apply alone = %v; want ErrNoQuorum", err)
		}
		if took := time.Since(began); took > 20*time.Second {
			t.Errorf("ErrNoQuorum took %v", took)
		}
		// The data plane goes on with what was applied.
		if _, v := m.h.Current(); v.N != 1 {
			t.Errorf("serving %d; want 1 kept", v.N)
		}
	}
}

func TestMovedAndSnapshotRestore(t *testing.T) {
	ms := newFleet(t, 3, func(c *Config) { c.TrailingLogs = 1; c.SnapshotThreshold = 1 << 30 })
	leader := leaderOf(t, ms)
	poll(t, ms)
	converged(t, ms, 1)
	ctx := t.Context()
	f := followerOf(ms, leader)
	id := session.ID("sess_0123456789abcdef0123456789abcdef_n1")
	if node, _, ok := f.node.Owner(id); !ok || node != "n1" {
		t.Fatalf("Owner(%s) = %s, %v; want n1 from the id", id, node, ok)
	}
	if err := f.node.Moved(ctx, []session.ID{id}, "n3"); err != nil {
		t.Fatalf("Moved on a follower: %v", err)
	}
	for _, m := range ms {
		waitFor(t, "the directory on "+m.name, func() bool { node, _, _ := m.node.Owner(id); return node == "n3" })
	}

	// A member that was down while the leader compacted its log gets a
	// snapshot: versions and directory.
	late := followerOf(ms, leader)
	late.stop()
	for i := range 3 {
		if _, err := leader.h.Apply(ctx, []byte(docBeta), i+1, "ops", fmt.Sprintf("write %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.node.raftNode().Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	// Wipe the late member's data: it rejoins from nothing.
	os.RemoveAll(late.dir)
	os.MkdirAll(late.dir, 0o700)
	late.start()
	converged(t, ms, 4)
	if node, _, _ := late.node.Owner(id); node != "n3" {
		t.Errorf("after the snapshot Owner(%s) = %s; want n3", id, node)
	}
	got, _ := late.h.List(ctx, 0, 100)
	if len(got) != 4 {
		t.Errorf("the restored member has %d versions; want 4", len(got))
	}
}

func TestOwnerAndPeers(t *testing.T) {
	ms := newFleet(t, 3, nil)
	n := ms[0].node
	if got := n.Self(); got != "n1" {
		t.Errorf("Self() = %q", got)
	}
	peers := n.Peers()
	if len(peers) != 2 || peers["n2"] != "http://"+ms[1].addr || peers["n3"] != "http://"+ms[2].addr {
		t.Errorf("Peers() = %v", peers)
	}
	tests := []struct {
		id       session.ID
		node     string
		url      string
		ok       bool
		describe string
	}{
		{"sess_0123456789abcdef0123456789abcdef_n2", "n2", "http://" + ms[1].addr, true, "an id naming a member"},
		{"sess_0123456789abcdef0123456789abcdef_n9", "n9", "", false, "an id naming no member"},
		{"sess_0123456789abcdef0123456789abcdef", "n1", "http://" + ms[0].addr, true, "an id from before the fleet: this replica's"},
	}
	for _, tc := range tests {
		node, url, ok := n.Owner(tc.id)
		if node != tc.node || url != tc.url || ok != tc.ok {
			t.Errorf("%s: Owner(%s) = %q, %q, %v; want %q, %q, %v", tc.describe, tc.id, node, url, ok, tc.node, tc.url, tc.ok)
		}
	}
}

func TestGuardSamplesReachTheLeader(t *testing.T) {
	ms := newFleet(t, 3, func(c *Config) { c.SampleInterval = 100 * time.Millisecond })
	leader := leaderOf(t, ms)
	for _, m := range ms {
		if m != leader {
			m.node.Sample(rollback.Sample{ToolCalls: 1}, canary.ByDimension{})
		}
	}
	waitFor(t, "the followers' samples on the leader", func() bool { return leader.seen.Load() == 2 })
	for _, m := range ms {
		if m != leader && m.seen.Load() != 0 {
			t.Errorf("follower %s's guard saw samples", m.name)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // in the error; "" = valid
	}{
		{"static", Config{Node: "a", Peers: "a=http://h1:8080,b=http://h2:8080", Key: testKey}, ""},
		{"dns", Config{Node: "agentd-0", Peers: "dns+http://agentd-headless:8080", Key: testKey}, ""},
		{"short key", Config{Node: "a", Peers: "a=http://h1:8080", Key: "short"}, "AGENTD_CLUSTER_KEY"},
		{"self missing", Config{Node: "c", Peers: "a=http://h1:8080,b=http://h2:8080", Key: testKey}, `"c" is not in the list`},
		{"bad name", Config{Node: "A_1", Peers: "a=http://h1:8080", Key: testKey}, "AGENTD_NODE"},
		{"no port", Config{Node: "a", Peers: "a=http://h1", Key: testKey}, "with the port"},
		{"https", Config{Node: "a", Peers: "a=https://h1:443", Key: testKey}, "want http://host:port"},
		{"duplicate", Config{Node: "a", Peers: "a=http://h1:1,a=http://h2:1", Key: testKey}, "twice"},
		{"dns without port", Config{Node: "a", Peers: "dns+http://svc", Key: testKey}, "dns+http://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v; want an error with %q", err, tc.want)
			}
		})
	}
}

// TestDNSMembership runs three members behind one "headless Service"
// name, each on its own loopback address and the same port, with the
// resolver injected: the first by name bootstraps, the leader adds the
// others, and writes replicate.
func TestDNSMembership(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	for _, ip := range ips[1:] { // other loopback addresses may be missing in some sandboxes
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			t.Skipf("loopback address %s: %v", ip, err)
		}
		l.Close()
	}
	var mu sync.Mutex
	resolve := func(ctx context.Context, host string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		switch host {
		case "agentd.svc.test":
			return slices.Clone(ips), nil
		case "n1.agentd.svc.test":
			return ips[:1], nil
		case "n2.agentd.svc.test":
			return ips[1:2], nil
		case "n3.agentd.svc.test":
			return ips[2:3], nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var ms []*member
	for i, ip := range ips {
		m := &member{t: t, name: fmt.Sprintf("n%d", i+1), addr: net.JoinHostPort(ip, port), dir: t.TempDir()}
		m.cfg = Config{Node: m.name, Peers: "dns+http://agentd.svc.test:" + port, Key: testKey, DataDir: m.dir,
			Resolve: resolve, Reconcile: 300 * time.Millisecond}
		ms = append(ms, m)
	}
	for _, m := range ms {
		m.start()
	}
	leader := leaderOf(t, ms)
	if leader.name != "n1" {
		t.Errorf("leader %s; want n1, the first name, which bootstrapped alone", leader.name)
	}
	waitFor(t, "three voters", func() bool {
		f := leader.node.raftNode().GetConfiguration()
		return f.Error() == nil && len(f.Configuration().Servers) == 3
	})
	poll(t, ms)
	converged(t, ms, 1)
	f := followerOf(ms, leader)
	if _, err := f.h.Apply(t.Context(), []byte(docBeta), 1, "ops", "through dns members"); err != nil {
		t.Fatal(err)
	}
	converged(t, ms, 2)
	if got := f.node.Peers()["n1"]; got != "http://n1.agentd.svc.test:"+port {
		t.Errorf("Peers()[n1] = %q; want the member's name under the Service", got)
	}
}
