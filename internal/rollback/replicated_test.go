package rollback_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/agentd/agentd/internal/boltdb"
	"github.com/agentd/agentd/internal/canary"
	"github.com/agentd/agentd/internal/rollback"
)

// logOf is a Replicator of one replica that leads: Commit applies at once,
// as a log of one would, and remembers what was committed.
type logOf struct {
	h         *rollback.History
	committed []rollback.Version
	leading   bool
}

func (l *logOf) Leading(context.Context) bool { return l.leading }
func (l *logOf) Commit(ctx context.Context, v rollback.Version) error {
	if err := l.h.ApplyCommitted(ctx, v); err != nil {
		return err
	}
	l.committed = append(l.committed, v)
	return nil
}
func (l *logOf) Forward(context.Context, rollback.Op) (rollback.Version, bool, error) {
	return rollback.Version{}, false, rollback.ErrNoQuorum
}

// replica opens a replicated history on dir's store and canary.json, with
// known as what the tree has.
func replica(t *testing.T, dir string, k canary.Known, l *logOf) *rollback.History {
	t.Helper()
	db, err := boltdb.Open(filepath.Join(dir, "agentd.db"), boltdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p, _ := canary.Compile(canary.Document{}, known)
	h, err := rollback.Open(t.Context(), rollback.Config{
		Store: db.Versions(), Router: canary.NewRouter(p, 0), Known: func() canary.Known { return k },
		ReadFile:   func() ([]byte, error) { return os.ReadFile(filepath.Join(dir, "canary.json")) },
		Logger:     zaptest.NewLogger(t),
		Replicator: l,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.h = h
	return h
}

func TestReplicaProposesOnlyWhenLeading(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "canary.json"), []byte(doc1), 0o600)
	l := &logOf{}
	h := replica(t, dir, known, l)
	ctx := t.Context()
	if _, v := h.Current(); v.N != 0 {
		t.Fatalf("a new replica serves version %d; want canary.json unrecorded (0)", v.N)
	}
	if _, changed, _ := h.Reload(ctx, "poll"); changed || len(l.committed) != 0 {
		t.Fatal("a follower proposed canary.json")
	}
	if _, err := h.Apply(ctx, []byte(doc1), 0, "ops", "x"); !errors.Is(err, rollback.ErrNoQuorum) {
		t.Errorf("Apply on a follower without a leader = %v; want ErrNoQuorum", err)
	}
	l.leading = true
	if _, changed, err := h.Reload(ctx, "poll"); !changed || err != nil || len(l.committed) != 1 {
		t.Fatalf("the leader's poll: changed %v, %v, %d committed; want canary.json as version 1", changed, err, len(l.committed))
	}
	if _, changed, _ := h.Reload(ctx, "poll"); changed {
		t.Error("the same file was proposed twice")
	}
	if _, v := h.Current(); v.N != 1 || v.Kind != "file" {
		t.Errorf("serving %+v; want version 1 from the file", v)
	}
}

func TestReplicaReplacesADivergedHistory(t *testing.T) {
	dir := t.TempDir()
	// A history of its own from before the fleet: versions 1 and 2.
	e := newEnv(t, doc1)
	if _, _, err := e.h.Halt(t.Context(), canary.Model, "beta", "ops", "before the fleet", nil); err != nil {
		t.Fatal(err)
	}
	e.db.Close()
	data, _ := os.ReadFile(filepath.Join(e.dir, "agentd.db"))
	os.WriteFile(filepath.Join(dir, "agentd.db"), data, 0o600)
	os.WriteFile(filepath.Join(dir, "canary.json"), []byte(doc1), 0o600)

	h := replica(t, dir, known, &logOf{})
	if _, v := h.Current(); v.N != 2 {
		t.Fatalf("serving %d at start; want the stored 2", v.N)
	}
	// The fleet's version 1 differs: it replaces 1 and drops 2.
	fleet1 := rollback.Version{N: 1, Actor: "file", Kind: "file", Reason: "the fleet's", Canary: []byte(`{}`), FileHash: "f"}
	if err := h.ApplyCommitted(t.Context(), fleet1); err != nil {
		t.Fatal(err)
	}
	if _, v := h.Current(); v.N != 1 || v.Reason != "the fleet's" {
		t.Errorf("serving %+v; want the fleet's version 1", v)
	}
	vs, _ := h.List(t.Context(), 0, 10)
	if len(vs) != 1 || vs[0].Reason != "the fleet's" {
		t.Errorf("history %+v; want the fleet's version 1 only", vs)
	}
	// Replayed, it changes nothing; out of order, it is refused.
	h.BeginRestore()
	if err := h.ApplyCommitted(t.Context(), fleet1); err != nil {
		t.Errorf("replay: %v", err)
	}
	if err := h.ApplyCommitted(t.Context(), rollback.Version{N: 3}); !errors.Is(err, rollback.ErrStale) {
		t.Errorf("version 3 after 1 = %v; want ErrStale", err)
	}
}

func TestReplicaKeepsServingWhatValidates(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "canary.json"), []byte(`{}`), 0o600)
	k := known
	k.Exists = func(dim canary.Dimension, value string) error {
		if dim == canary.Rules && value != "v1" {
			return errors.New("no such rule version")
		}
		return nil
	}
	h := replica(t, dir, k, &logOf{})
	ctx := t.Context()
	if err := h.ApplyCommitted(ctx, rollback.Version{N: 1, Kind: "file", Canary: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	// Version 2 needs a rule version this replica's tree lacks.
	v2 := rollback.Version{N: 2, Kind: "apply", Canary: []byte(`{"rules":{"stable":"v2"}}`)}
	if err := h.ApplyCommitted(ctx, v2); err != nil {
		t.Fatal(err)
	}
	if _, v := h.Current(); v.N != 1 {
		t.Errorf("serving %d; want 1 kept while 2 does not validate here", v.N)
	}
	if st := h.Status(); st.Unserved == "" {
		t.Error("Status does not say version 2 is not served")
	}
	if _, err := h.Get(ctx, 2); err != nil {
		t.Errorf("version 2 is not stored: %v", err)
	}
}
