package boltdb

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/rollback"
	"github.com/agentd/agentd/internal/session"
)

// FuzzStoredRecords reads back whatever bytes the store holds (a damaged
// disk, a bug in an older agentd, a hand edit), as a session's metadata, its
// one message and its one turn, and as a configuration version. Reading
// never panics; it gives the record or an error with a message. A session
// that reads back can be saved again and reads back the same.
func FuzzStoredRecords(f *testing.F) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	meta, _ := json.Marshal(record{
		Session: session.Session{ID: "s1", Tenant: "acme", User: "alice", Title: "fix the build", CreatedAt: at, UpdatedAt: at,
			Model: "gpt-4o", Assignment: session.Assignment{Model: "gpt-4o", Skills: "default", Rules: "v1", Sandbox: "workspace-write-no-network",
				Instructions: "AGENTAO.md", Variants: map[string]string{"model": "gpt5-beta"}, ConfigVersion: 3},
			ActiveSkills: []string{"debugging"}, InFlight: &session.TurnRecord{N: 2, StartedAt: at, Model: "gpt-4o"}},
		MessageCount: 1, TurnCount: 1, LastOutcome: agent.Outcome{Status: agent.StatusOK},
	})
	msg, _ := json.Marshal(agent.Message{Role: agent.RoleAssistant, Content: "running it", ToolCalls: []agent.ToolCall{
		{ID: "call_1", Type: "function", Function: agent.FunctionCall{Name: "run_shell_command", Arguments: `{"command":"go build ./..."`}}}})
	turn, _ := json.Marshal(session.TurnRecord{N: 1, StartedAt: at, EndedAt: at.Add(time.Second), Model: "gpt-4o",
		Outcome: agent.Outcome{Status: agent.StatusOK, ToolCount: 1}, Stats: agent.Stats{LLMCalls: 2, ToolCalls: 1}})
	version, _ := json.Marshal(rollback.Version{N: 1, At: at, Actor: "acme", Reason: "start", Kind: "file",
		Canary: json.RawMessage(`{"rules":{"stable":"v1"}}`), Hashes: map[string]string{"rules/v1": "ab12"}, FileHash: "cd34", Diff: []string{"rules: v1"}})
	f.Add(meta, msg, turn, version)
	for _, near := range [][4]string{
		{`{"session":{"id":"s1","tenant":"acme"},"message_count":2,"turn_count":0}`, `{"role":"user","content":"hi"}`, ``, `{"version":1}`},
		{`{"session":{"created_at":"not a time"},"message_count":1}`, `{"role":1}`, `{"n":"1"}`, `{"version":1,"canary":nul}`},
		{`{"session":null,"message_count":-1,"turn_count":1}`, `null`, `{"outcome":{"status":"ok"},"stats":{"usage":{}}}`, `[]`},
		{`{"session":{"messages":[{"role":"user"}],"turns":[{}]},"message_count":1,"turn_count":1}`, `"x"`, `{}`, `{"diff":"x"}`},
		{`{`, ``, `{"ended_at":"0000-01-01T00:00:00Z"}`, `{"at":"9999-12-31T23:59:59-23:59"}`},
	} {
		f.Add([]byte(near[0]), []byte(near[1]), []byte(near[2]), []byte(near[3]))
	}
	db, err := Open(filepath.Join(f.TempDir(), "agentd.db"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	// What is fuzzed is decoding, not durability: without fsync an input
	// runs in microseconds instead of two fsyncs, so the fuzzer's
	// minimization of a new input does not stall the run for seconds (Go
	// 1.26's coordinator fails a run whose -fuzztime ends in such a stall,
	// golang/go#75804; see scripts/fuzz).
	db.db.NoSync = true
	st, vs := db.Sessions(), db.Versions()
	sk := sessionKey("acme", "s1")
	f.Fuzz(func(t *testing.T, meta, msg, turn, version []byte) {
		ctx := t.Context()
		err := db.db.Update(func(tx *bbolt.Tx) error {
			for _, kv := range []struct {
				bucket, key, value []byte
			}{
				{bucketSessions, sk, meta}, {bucketMessages, itemKey(sk, 0), msg}, {bucketTurns, itemKey(sk, 0), turn},
				{bucketVersions, versionKey(1), version},
			} {
				b := tx.Bucket(kv.bucket)
				if kv.value == nil { // bbolt cannot store nil: a record that is not there
					if err := b.Delete(kv.key); err != nil {
						return err
					}
					continue
				}
				if err := b.Put(kv.key, kv.value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}

		s, err := st.Load(ctx, "acme", "s1")
		if (s == nil) == (err == nil) {
			t.Fatalf("Load = %v, %v; want exactly one of a session and an error", s, err)
		}
		noEmptyError(t, "Load", err)
		_, _, err = st.List(ctx, "acme", session.ListQuery{})
		noEmptyError(t, "List", err)
		if s != nil {
			roundTrip(t, st, s)
		}

		_, ok, err := vs.Latest(ctx)
		if ok != (err == nil && version != nil) {
			t.Errorf("Latest = %v, %v with a stored record %q", ok, err, version)
		}
		noEmptyError(t, "Latest", err)
		_, err = vs.Get(ctx, 1)
		noEmptyError(t, "Get", err)
		_, err = vs.List(ctx, 0, 10)
		noEmptyError(t, "List versions", err)
	})
}

func noEmptyError(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil && err.Error() == "" {
		t.Errorf("%s error has an empty message", op)
	}
}

// roundTrip saves a copy of s under another id and checks it reads back
// the same.
func roundTrip(t *testing.T, st *SessionStore, s *session.Session) {
	t.Helper()
	c := *s
	c.Tenant, c.ID = "copy", "c1"
	if err := st.Save(t.Context(), &c, session.Mark{}); err != nil {
		t.Fatalf("a session that loads does not save: %v", err)
	}
	back, err := st.Load(t.Context(), c.Tenant, c.ID)
	if err != nil {
		t.Fatalf("a saved session does not load: %v", err)
	}
	want, _ := json.Marshal(&c)
	got, _ := json.Marshal(back)
	if !bytes.Equal(got, want) {
		t.Fatalf("saved then loaded:\n%s\nwant\n%s", got, want)
	}
}
