package handoff_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/agent/agenttest"
	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/handoff"
	"github.com/agentd/agentd/internal/session"
	"github.com/agentd/agentd/internal/session/sessiontest"
)

const key = "cluster-key-0123456789"

// directory is the fleet's view shared by the test's replicas: members and
// the moved sessions, as the replicated log would give every replica.
type directory struct {
	mu      sync.Mutex
	members map[string]string
	moved   map[session.ID]string
	home    map[session.ID]string // where each session was created
	fail    error                 // Moved answers this
}

type view struct {
	d    *directory
	self string
}

func (v view) Self() string { return v.self }
func (v view) Peers() map[string]string {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	out := map[string]string{}
	for n, u := range v.d.members {
		if n != v.self {
			out[n] = u
		}
	}
	return out
}
func (v view) Owner(id session.ID) (string, string, bool) {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	n, ok := v.d.moved[id]
	if !ok {
		n, ok = v.d.home[id]
	}
	return n, v.d.members[n], ok
}
func (v view) Moved(_ context.Context, ids []session.ID, to string) error {
	v.d.mu.Lock()
	defer v.d.mu.Unlock()
	if v.d.fail != nil {
		return v.d.fail
	}
	for _, id := range ids {
		v.d.moved[id] = to
	}
	return nil
}

type replica struct {
	name  string
	pool  *session.Pool
	model *agenttest.Model
	mover *handoff.Mover
	srv   *httptest.Server
	view  view
}

func newReplica(t *testing.T, d *directory, name string, grace time.Duration) *replica {
	t.Helper()
	dir := t.TempDir()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, model: agenttest.NewModel(), view: view{d: d, self: name}}
	block := agenttest.NewTool("block", func(ctx context.Context, _ agent.Call) (string, error) {
		<-ctx.Done()
		return "", context.Cause(ctx)
	})
	hooks := (&sessiontest.Hooks{
		ToolsFn: func(*session.Session, string) ([]agent.Tool, io.Closer, error) { return []agent.Tool{block}, nil, nil },
	}).Pool()
	r.pool, err = session.NewPool(db.Sessions(), agent.New(r.model, agent.Config{}), hooks, session.Config{
		Dir: filepath.Join(dir, "workspaces"), Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.mover = handoff.New(handoff.Config{Pool: r.pool, Fleet: r.view, Key: key, Grace: grace, Logger: zaptest.NewLogger(t).Named(name)})
	r.srv = httptest.NewServer(requireKey(r.mover.Handler()))
	d.mu.Lock()
	d.members[name] = r.srv.URL
	d.mu.Unlock()
	t.Cleanup(func() {
		r.srv.Close()
		_ = r.pool.Close()
		_ = db.Close()
	})
	return r
}

// requireKey stands for the fleet's cluster key check in front of the
// handler.
func requireKey(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func newDirectory() *directory {
	return &directory{members: map[string]string{}, moved: map[session.ID]string{}, home: map[session.ID]string{}}
}

func (r *replica) create(t *testing.T, d *directory, tenant, user string) *session.Session {
	t.Helper()
	s, err := r.pool.Create(t.Context(), tenant, user, "")
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.home[s.ID] = r.name
	d.mu.Unlock()
	return s
}

func (r *replica) turn(t *testing.T, s *session.Session, reply string) {
	t.Helper()
	r.model.Push(agenttest.Reply(reply))
	res, err := r.pool.Turn(t.Context(), s.Tenant, s.ID, session.TurnInput{Content: "hello " + reply})
	if err != nil || res.Outcome.Status != agent.StatusOK {
		t.Fatalf("turn: %v %+v", err, res.Outcome)
	}
}

func TestMoveCarriesSessionsWhole(t *testing.T) {
	d := newDirectory()
	src, dst := newReplica(t, d, "a", time.Second), newReplica(t, d, "b", time.Second)
	var moved []*session.Session
	for i, tenant := range []string{"acme", "acme", "globex"} {
		s := src.create(t, d, tenant, "user")
		src.turn(t, s, "answer "+string(rune('0'+i)))
		ws := src.pool.Dir(s.Tenant, s.ID)
		if err := os.MkdirAll(filepath.Join(ws, "src", "deep"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, "src", "deep", "main.go"), []byte("package main // "+tenant), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("src/deep/main.go", filepath.Join(ws, "link")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/etc/passwd", filepath.Join(ws, "outside")); err != nil { // a planted link moves as a link, never as what it names
			t.Fatal(err)
		}
		full, err := src.pool.Get(t.Context(), s.Tenant, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		moved = append(moved, full)
	}
	stray := dst.create(t, d, "acme", "b-user") // b's own session stays put
	res, err := src.mover.Move(t.Context(), "b")
	if err != nil || res.Moved != 3 || len(res.Failed) != 0 {
		t.Fatalf("Move = %+v, %v; want 3 moved", res, err)
	}
	for _, want := range moved {
		if owner, _, _ := dst.view.Owner(want.ID); owner != "b" {
			t.Errorf("%s: owner %q after the move, want b", want.ID, owner)
		}
		got, err := dst.pool.Get(t.Context(), want.Tenant, want.ID)
		if err != nil {
			t.Fatalf("%s on the target: %v", want.ID, err)
		}
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Errorf("%s changed in the move:\n before %s\n after  %s", want.ID, a, b)
		}
		ws := dst.pool.Dir(want.Tenant, want.ID)
		if b, err := os.ReadFile(filepath.Join(ws, "link")); err != nil || string(b) != "package main // "+want.Tenant {
			t.Errorf("%s: workspace file through its link = %q, %v", want.ID, b, err)
		}
		if fi, err := os.Stat(filepath.Join(ws, "src", "deep", "main.go")); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: file mode after the move: %v, %v", want.ID, fi, err)
		}
		if l, err := os.Readlink(filepath.Join(ws, "outside")); err != nil || l != "/etc/passwd" {
			t.Errorf("%s: a link moves as a link: %q, %v", want.ID, l, err)
		}
		if _, err := src.pool.Get(t.Context(), want.Tenant, want.ID); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("%s still on the source: %v", want.ID, err)
		}
		if _, err := os.Stat(src.pool.Dir(want.Tenant, want.ID)); !os.IsNotExist(err) {
			t.Errorf("%s: the source's workspace is still there: %v", want.ID, err)
		}
		// The moved session goes on where it is now.
		dst.turn(t, got, "after the move")
	}
	if _, err := dst.pool.Get(t.Context(), stray.Tenant, stray.ID); err != nil {
		t.Errorf("the target's own session: %v", err)
	}
	left, _ := src.pool.Stored(t.Context())
	if len(left) != 0 {
		t.Errorf("sessions left on the source: %v", left)
	}
	// A second move finds nothing to do.
	if res, err := src.mover.Move(t.Context(), "b"); err != nil || res.Moved != 0 {
		t.Errorf("second Move = %+v, %v", res, err)
	}
}

func TestMoveGivesARunningTurnItsGraceThenCancels(t *testing.T) {
	d := newDirectory()
	src, _ := newReplica(t, d, "a", 100*time.Millisecond), newReplica(t, d, "b", time.Second)
	s := src.create(t, d, "acme", "alice")
	src.model.Push(agenttest.Calls("block", `{}`), agenttest.Reply("never"))
	turn := make(chan session.TurnResult, 1)
	go func() {
		res, _ := src.pool.Turn(context.Background(), s.Tenant, s.ID, session.TurnInput{Content: "run forever"})
		turn <- res
	}()
	waitFor(t, func() bool { _, running := src.pool.Live(); return running == 1 })
	res, err := src.mover.Move(t.Context(), "b")
	if err != nil || res.Moved != 1 {
		t.Fatalf("Move = %+v, %v", res, err)
	}
	tr := <-turn
	if tr.Outcome.Status != agent.StatusCancelled || tr.Outcome.CancelReason != agent.ReasonShutdown {
		t.Errorf("the running turn ended %+v; want cancelled with reason shutdown", tr.Outcome)
	}
	d.mu.Lock()
	owner := d.moved[s.ID]
	d.mu.Unlock()
	if owner != "b" {
		t.Fatalf("owner %q", owner)
	}
}

func TestAHeldSessionAnswersMoving(t *testing.T) {
	d := newDirectory()
	r := newReplica(t, d, "a", time.Second)
	s := r.create(t, d, "acme", "alice")
	if _, _, err := r.pool.Hold(t.Context(), s.Tenant, s.ID, time.Second); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"get": func() error { _, err := r.pool.Get(t.Context(), s.Tenant, s.ID); return err },
		"turn": func() error {
			_, err := r.pool.Turn(t.Context(), s.Tenant, s.ID, session.TurnInput{Content: "x"})
			return err
		},
		"clear": func() error { _, err := r.pool.Clear(t.Context(), s.Tenant, s.ID); return err },
		"del":   func() error { return r.pool.Delete(t.Context(), s.Tenant, s.ID) },
	} {
		if err := call(); !errors.Is(err, session.ErrMoving) {
			t.Errorf("%s during a hold: %v, want ErrMoving", name, err)
		}
	}
	r.pool.Unhold(t.Context(), s.Tenant, s.ID, false)
	r.turn(t, s, "back in service")
}

func TestAFailedMoveKeepsServing(t *testing.T) {
	cases := map[string]func(d *directory, dst *replica){
		"target down":          func(_ *directory, dst *replica) { dst.srv.Close() },
		"directory not raised": func(d *directory, _ *replica) { d.fail = errors.New("no quorum") },
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			d := newDirectory()
			src, dst := newReplica(t, d, "a", time.Second), newReplica(t, d, "b", time.Second)
			s := src.create(t, d, "acme", "alice")
			src.turn(t, s, "one")
			breakIt(d, dst)
			res, err := src.mover.Move(t.Context(), "b")
			if err != nil || res.Moved != 0 || len(res.Failed) != 1 || res.Failed[0].ID != s.ID {
				t.Fatalf("Move = %+v, %v; want one failure", res, err)
			}
			src.turn(t, s, "still served here")
			if name == "directory not raised" {
				// The target kept a stray copy; the next move replaces it.
				d.mu.Lock()
				d.fail = nil
				d.mu.Unlock()
				src.turn(t, s, "more history")
				if res, err := src.mover.Move(t.Context(), "b"); err != nil || res.Moved != 1 {
					t.Fatalf("second Move = %+v, %v", res, err)
				}
				got, err := dst.pool.Get(t.Context(), s.Tenant, s.ID)
				if err != nil || len(got.Turns) != 3 {
					t.Fatalf("the target has %v turns (%v); want the 3 of the latest copy", got, err)
				}
			}
		})
	}
}

func TestMoveRefusesBadTargets(t *testing.T) {
	d := newDirectory()
	src := newReplica(t, d, "a", time.Second)
	if _, err := src.mover.Move(t.Context(), "a"); !errors.Is(err, handoff.ErrSelf) {
		t.Errorf("to itself: %v", err)
	}
	if _, err := src.mover.Move(t.Context(), "nobody"); !errors.Is(err, handoff.ErrUnknownNode) {
		t.Errorf("to a stranger: %v", err)
	}
}

// entry is one tar entry of a hand-made archive.
type entry struct {
	name, link string
	typ        byte
	body       string
}

func archive(t *testing.T, s *session.Session, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if s != nil {
		doc, _ := json.Marshal(s)
		_ = tw.WriteHeader(&tar.Header{Name: "session.json", Mode: 0o600, Size: int64(len(doc)), Typeflag: tar.TypeReg})
		_, _ = tw.Write(doc)
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(e.body))
	}
	_ = tw.Close()
	return buf.Bytes()
}

func TestImportRefusesWhatIsNotAWorkspace(t *testing.T) {
	d := newDirectory()
	dst := newReplica(t, d, "b", time.Second)
	outside := t.TempDir()
	sess := func() *session.Session {
		return &session.Session{ID: session.NewID(time.Now(), ""), Tenant: "acme", User: "u", Messages: []agent.Message{}}
	}
	owned := sess()
	d.home[owned.ID] = "b"
	cases := []struct {
		name    string
		body    []byte
		status  int
		escaped string // a path that must not exist afterwards
	}{
		{"no session.json", archive(t, nil, entry{name: "workspace/x", typ: tar.TypeReg, body: "x"}), 400, ""},
		{"not tar", []byte("hello"), 400, ""},
		{"bad id", archive(t, &session.Session{ID: "sess_../../etc", Tenant: "acme"}), 400, ""},
		{"dot-dot", archive(t, sess(), entry{name: "workspace/../../x", typ: tar.TypeReg, body: "x"}), 400, ""},
		{"absolute", archive(t, sess(), entry{name: "/etc/x", typ: tar.TypeReg, body: "x"}), 400, ""},
		{"hard link", archive(t, sess(), entry{name: "workspace/h", link: "/etc/passwd", typ: tar.TypeLink}), 400, ""},
		{"fifo", archive(t, sess(), entry{name: "workspace/f", typ: tar.TypeFifo}), 400, ""},
		{"write through a link", archive(t, sess(),
			entry{name: "workspace/l", link: outside, typ: tar.TypeSymlink},
			entry{name: "workspace/l/pwned", typ: tar.TypeReg, body: "x"}), 500, filepath.Join(outside, "pwned")},
		{"owned here already", archive(t, owned), 409, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, dst.srv.URL+handoff.ImportPath, bytes.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(b), `"error"`) {
				t.Errorf("status %d %s; want %d with the error shape", resp.StatusCode, b, c.status)
			}
			if c.escaped != "" {
				if _, err := os.Stat(c.escaped); !os.IsNotExist(err) {
					t.Errorf("the archive wrote outside the workspace: %s", c.escaped)
				}
			}
		})
	}
	if keys, _ := dst.pool.Stored(t.Context()); len(keys) != 0 {
		t.Errorf("refused archives stored sessions: %v", keys)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMoveFromAnotherReplica(t *testing.T) {
	d := newDirectory()
	a, b, c := newReplica(t, d, "a", time.Second), newReplica(t, d, "b", time.Second), newReplica(t, d, "c", time.Second)
	s := a.create(t, d, "acme", "alice")
	a.turn(t, s, "one")
	// c asks a (over the cluster channel) to move its sessions to b.
	res, err := c.mover.MoveFrom(t.Context(), "a", "b")
	if err != nil || res.Moved != 1 || res.From != "a" || res.To != "b" {
		t.Fatalf("MoveFrom = %+v, %v", res, err)
	}
	if _, err := b.pool.Get(t.Context(), s.Tenant, s.ID); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ from, to string }{{"a", "a"}, {"a", "nobody"}, {"nobody", "b"}} {
		if _, err := c.mover.MoveFrom(t.Context(), bad.from, bad.to); err == nil {
			t.Errorf("MoveFrom(%s, %s) did not fail", bad.from, bad.to)
		}
	}
	a.srv.Close()
	if _, err := c.mover.MoveFrom(t.Context(), "a", "b"); !errors.Is(err, handoff.ErrUnreachable) {
		t.Errorf("from a dead replica: %v", err)
	}
}
