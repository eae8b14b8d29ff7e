package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/internal/agent"
	"github.com/agentd/agentd/internal/session"
)

// SessionStore implements session.Store. A session is three kinds of
// records under the key prefix tenant\x00id: its metadata in "sessions",
// one record per message in "messages" and one per finished turn in
// "turns" (suffix: the big-endian index), so a save writes what changed
// and not the whole conversation again.
type SessionStore struct{ d *DB }

var _ session.Store = (*SessionStore)(nil)

// Sessions returns the session store of d.
func (d *DB) Sessions() *SessionStore { return &SessionStore{d: d} }

// record is a session's metadata: the session without its messages and
// turns, which are stored apart.
type record struct {
	Session      session.Session `json:"session"`
	MessageCount int             `json:"message_count"`
	TurnCount    int             `json:"turn_count"`
	LastOutcome  agent.Outcome   `json:"last_outcome,omitzero"`
}

func (r *record) summary() session.Summary {
	sum := r.Session.Summary()
	sum.TurnCount, sum.LastOutcome = r.TurnCount, r.LastOutcome
	return sum
}

func sessionKey(tenant string, id session.ID) []byte {
	return []byte(tenant + "\x00" + string(id))
}

// itemKey is the key of the i-th message or turn of a session.
func itemKey(sk []byte, i int) []byte {
	k := make([]byte, len(sk)+5)
	copy(k, sk)
	k[len(sk)] = 0
	binary.BigEndian.PutUint32(k[len(sk)+1:], uint32(i))
	return k
}

// Save writes the session's metadata and what changed since from, in one
// transaction shared with concurrent saves, and returns once it is on disk.
func (st *SessionStore) Save(ctx context.Context, s *session.Session, from session.Mark) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx) // bbolt has no ctx: check before the transaction starts
	}
	from.Messages = min(max(from.Messages, 0), len(s.Messages))
	from.Turns = min(max(from.Turns, 0), len(s.Turns))
	rec := record{Session: *s, MessageCount: len(s.Messages), TurnCount: len(s.Turns)}
	rec.Session.Messages, rec.Session.Turns = nil, nil
	if n := len(s.Turns); n > 0 {
		rec.LastOutcome = s.Turns[n-1].Outcome
	}
	meta, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	msgs, err := encodeAll(s.Messages[from.Messages:])
	if err != nil {
		return fmt.Errorf("encode messages: %w", err)
	}
	turns, err := encodeAll(s.Turns[from.Turns:])
	if err != nil {
		return fmt.Errorf("encode turns: %w", err)
	}
	sk := sessionKey(s.Tenant, s.ID)
	return st.d.w.update(func(tx *bbolt.Tx) error {
		var old record
		if v := tx.Bucket(bucketSessions).Get(sk); v != nil {
			if err := json.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("decode stored session %s: %w", s.ID, err)
			}
		}
		if err := putItems(tx.Bucket(bucketMessages), sk, from.Messages, msgs, old.MessageCount); err != nil {
			return err
		}
		if err := putItems(tx.Bucket(bucketTurns), sk, from.Turns, turns, old.TurnCount); err != nil {
			return err
		}
		return tx.Bucket(bucketSessions).Put(sk, meta)
	})
}

func encodeAll[T any](items []T) ([][]byte, error) {
	out := make([][]byte, len(items))
	for i := range items {
		b, err := json.Marshal(items[i])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// putItems writes items at indexes from, from+1, … and deletes stored items
// past the new end, up to the old count.
func putItems(b *bbolt.Bucket, sk []byte, from int, items [][]byte, oldCount int) error {
	for i, v := range items {
		if err := b.Put(itemKey(sk, from+i), v); err != nil {
			return err
		}
	}
	for i := from + len(items); i < oldCount; i++ {
		if err := b.Delete(itemKey(sk, i)); err != nil {
			return err
		}
	}
	return nil
}

// Load reads one session with its messages and turns.
func (st *SessionStore) Load(ctx context.Context, tenant string, id session.ID) (*session.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	sk := sessionKey(tenant, id)
	var rec record
	found := false
	var msgs, turns [][]byte
	err := st.d.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get(sk)
		if v == nil {
			return nil
		}
		found = true
		if err := json.Unmarshal(v, &rec); err != nil { // copies out: v is only valid inside the transaction
			return fmt.Errorf("decode session %s: %w", id, err)
		}
		msgs = scan(tx.Bucket(bucketMessages), sk)
		turns = scan(tx.Bucket(bucketTurns), sk)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, session.ErrNotFound
	}
	if len(msgs) != rec.MessageCount || len(turns) != rec.TurnCount {
		return nil, fmt.Errorf("session %s is damaged: %d of %d messages and %d of %d turns stored",
			id, len(msgs), rec.MessageCount, len(turns), rec.TurnCount)
	}
	s := rec.Session
	s.Messages = make([]agent.Message, len(msgs))
	for i, b := range msgs {
		if err := json.Unmarshal(b, &s.Messages[i]); err != nil {
			return nil, fmt.Errorf("decode message %d of session %s: %w", i, id, err)
		}
	}
	if len(turns) > 0 {
		s.Turns = make([]session.TurnRecord, len(turns))
	}
	for i, b := range turns {
		if err := json.Unmarshal(b, &s.Turns[i]); err != nil {
			return nil, fmt.Errorf("decode turn %d of session %s: %w", i+1, id, err)
		}
	}
	return &s, nil
}

// scan copies the values of every item of a session, in order.
func scan(b *bbolt.Bucket, sk []byte) [][]byte {
	prefix := append(bytes.Clone(sk), 0)
	var out [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+4; k, v = c.Next() {
		out = append(out, bytes.Clone(v))
	}
	return out
}

// Delete removes one session and everything stored with it.
func (st *SessionStore) Delete(ctx context.Context, tenant string, id session.ID) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	sk := sessionKey(tenant, id)
	return st.d.w.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b.Get(sk) == nil {
			return session.ErrNotFound
		}
		if err := b.Delete(sk); err != nil {
			return err
		}
		prefix := append(bytes.Clone(sk), 0)
		for _, name := range [][]byte{bucketMessages, bucketTurns} {
			c := tx.Bucket(name).Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// List returns a tenant's sessions newest first. Ids sort by creation time,
// so the key order is the creation order.
func (st *SessionStore) List(ctx context.Context, tenant string, q session.ListQuery) ([]session.Summary, session.ID, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", context.Cause(ctx)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	prefix := []byte(tenant + "\x00")
	var out []session.Summary
	var next session.ID
	err := st.d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketSessions).Cursor()
		// Position just past the page's range, then walk back.
		var k, v []byte
		if q.Before != "" {
			k, v = c.Seek(sessionKey(tenant, q.Before))
		} else {
			k, v = c.Seek(append(bytes.Clone(prefix), 0xff))
		}
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			var rec record
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode session %q: %w", k, err)
			}
			if q.User != "" && rec.Session.User != q.User {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			out = append(out, rec.summary())
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// Keys lists every stored session of every tenant (a handoff moves them
// all).
func (st *SessionStore) Keys(ctx context.Context) ([]session.Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	var out []session.Key
	err := st.d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, _ []byte) error {
			tenant, id, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("a session key without a tenant: %q", k)
			}
			out = append(out, session.Key{Tenant: string(tenant), ID: session.ID(id)})
			return nil
		})
	})
	return out, err
}
