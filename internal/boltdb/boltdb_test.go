package boltdb

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

func open(t *testing.T, path string) *DB {
	t.Helper()
	db, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConcurrentSavesAreAllDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.db")
	db := open(t, path)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := &session.Session{ID: session.NewID(time.Now(), ""), Tenant: "acme", Messages: []agent.Message{{Role: "user", Content: fmt.Sprint(i)}}}
			errs <- db.Sessions().Save(t.Context(), s, session.Mark{})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Save = %v", err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	defer db.Close()
	sums, _, err := db.Sessions().List(t.Context(), "acme", session.ListQuery{Limit: 1000})
	if err != nil || len(sums) != n {
		t.Fatalf("after reopening: %d sessions, %v; want %d", len(sums), err, n)
	}
	if err := db.Sessions().Save(t.Context(), &session.Session{ID: session.NewID(time.Now(), ""), Tenant: "acme"}, session.Mark{}); err != nil {
		t.Fatal(err)
	}
}

func TestFailingWriteFailsAlone(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "agentd.db"))
	defer db.Close()
	bad := errors.New("bad write")
	var wg sync.WaitGroup
	results := make([]error, 50)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = db.w.update(func(tx *bbolt.Tx) error {
				if i == 7 {
					return bad
				}
				return tx.Bucket(bucketMeta).Put([]byte(fmt.Sprint("k", i)), []byte("v"))
			})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if want := error(nil); i == 7 {
			if !errors.Is(err, bad) {
				t.Errorf("write 7 = %v; want its own error", err)
			}
		} else if err != want {
			t.Errorf("write %d = %v; want nil (a failure in its group must not fail it)", i, err)
		}
	}
	_ = db.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta).Get([]byte("k7")) != nil || tx.Bucket(bucketMeta).Get([]byte("k8")) == nil {
			t.Errorf("the failed write was applied or a good one was lost")
		}
		return nil
	})
}

func TestOpenErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agentd.db")
	db := open(t, path)
	if _, err := Open(path, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v; want ErrLocked", err)
	}
	_ = db.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("99")) })
	db.Close()
	if err := db.Sessions().Save(t.Context(), &session.Session{ID: "x", Tenant: "acme"}, session.Mark{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Save after Close = %v; want ErrClosed", err)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Errorf("Open of a newer schema succeeded; want an error")
	}
}

func TestSaveWritesOnlyWhatChanged(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "agentd.db"))
	defer db.Close()
	st := db.Sessions()
	msgs := func(contents ...string) []agent.Message {
		var out []agent.Message
		for _, c := range contents {
			out = append(out, agent.Message{Role: "user", Content: c})
		}
		return out
	}
	s := &session.Session{ID: session.NewID(time.Now(), ""), Tenant: "acme", Messages: msgs("a", "b", "c", "d", "e")}
	steps := []struct {
		name string
		msgs []agent.Message
		from int
		want string
	}{
		{"first save", msgs("a", "b", "c", "d", "e"), 0, "abcde"},
		{"rewrite the tail only", msgs("a", "b", "c", "X", "Y", "Z"), 3, "abcXYZ"},
		{"a stale prefix is not rewritten", msgs("stale", "b", "c", "X", "Y", "Z", "W"), 6, "abcXYZW"},
		{"shrink", msgs("a"), 1, "a"},
		{"clear", nil, 0, ""},
	}
	for _, step := range steps {
		s.Messages = step.msgs
		if err := st.Save(t.Context(), s, session.Mark{Messages: step.from}); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		got, err := st.Load(t.Context(), "acme", s.ID)
		if err != nil {
			t.Fatalf("%s: Load = %v", step.name, err)
		}
		var b strings.Builder
		for _, m := range got.Messages {
			b.WriteString(m.Content)
		}
		if b.String() != step.want {
			t.Errorf("%s: stored %q; want %q", step.name, b.String(), step.want)
		}
	}
	s.Messages = msgs("p", "q")
	s.Turns = []session.TurnRecord{{N: 1}, {N: 2}}
	if err := st.Save(t.Context(), s, session.Mark{}); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(t.Context(), "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	_ = db.db.View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketMessages, bucketTurns} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("bucket %s keeps %d keys after Delete", b, n)
			}
		}
		return nil
	})
	if err := st.Delete(t.Context(), "acme", s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("second Delete = %v; want ErrNotFound", err)
	}
}
