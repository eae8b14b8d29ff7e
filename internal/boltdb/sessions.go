package boltdb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/internal/session"
)

// SessionStore implements session.Store.
type SessionStore struct{ d *DB }

var _ session.Store = (*SessionStore)(nil)

// Sessions returns the session store of d.
func (d *DB) Sessions() *SessionStore { return &SessionStore{d: d} }

func sessionKey(tenant string, id session.ID) []byte {
	return []byte(tenant + "\x00" + string(id))
}

// Save writes the session and its summary in one transaction, shared with
// concurrent saves, and returns once it is on disk.
func (st *SessionStore) Save(ctx context.Context, s *session.Session) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx) // bbolt has no ctx: check before the transaction starts
	}
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	sum, err := json.Marshal(s.Summary())
	if err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	k := sessionKey(s.Tenant, s.ID)
	return st.d.db.Batch(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketSessions).Put(k, data); err != nil {
			return err
		}
		return tx.Bucket(bucketSummaries).Put(k, sum)
	})
}

// Load reads one session.
func (st *SessionStore) Load(ctx context.Context, tenant string, id session.ID) (*session.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	var data []byte
	err := st.d.db.View(func(tx *bbolt.Tx) error {
		data = bytes.Clone(tx.Bucket(bucketSessions).Get(sessionKey(tenant, id))) // only valid inside the transaction
		return nil
	})
	if err != nil {
		return nil, err
	}
	if data == nil {
		return nil, session.ErrNotFound
	}
	var s session.Session
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode session %s: %w", id, err)
	}
	return &s, nil
}

// Delete removes one session.
func (st *SessionStore) Delete(ctx context.Context, tenant string, id session.ID) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	k := sessionKey(tenant, id)
	return st.d.db.Batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		if b.Get(k) == nil {
			return session.ErrNotFound
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		return tx.Bucket(bucketSummaries).Delete(k)
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
		c := tx.Bucket(bucketSummaries).Cursor()
		// Position after the last key of the page's range, then walk back.
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
			var s session.Summary
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decode summary %q: %w", k, err)
			}
			if q.User != "" && s.User != q.User {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			out = append(out, s)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}
