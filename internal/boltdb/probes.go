package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/internal/probe"
)

// ProbeStore implements probe.Store: one record per canary probe run in
// "probes", keyed by the big-endian run number.
type ProbeStore struct{ d *DB }

var _ probe.Store = (*ProbeStore)(nil)

// Probes returns the probe run store of d.
func (d *DB) Probes() *ProbeStore { return &ProbeStore{d: d} }

// Append stores r as the run after the newest, and deletes all but the
// newest keep runs.
func (ps *ProbeStore) Append(ctx context.Context, r probe.Run, keep int) (probe.Run, error) {
	if err := ctx.Err(); err != nil {
		return r, context.Cause(ctx)
	}
	err := ps.d.w.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketProbes)
		r.ID = 1
		if k, _ := b.Cursor().Last(); k != nil {
			r.ID = int(binary.BigEndian.Uint64(k)) + 1
		}
		data, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode probe run: %w", err)
		}
		if err := b.Put(versionKey(r.ID), data); err != nil {
			return err
		}
		// Prune: collect the old keys first, a cursor must not walk
		// while its bucket changes.
		var old [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil && int(binary.BigEndian.Uint64(k)) <= r.ID-keep; k, _ = c.Next() {
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return r, err
}

// Runs returns up to limit runs, newest first.
func (ps *ProbeStore) Runs(ctx context.Context, limit int) ([]probe.Run, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	var raw [][]byte
	err := ps.d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketProbes).Cursor()
		for k, v := c.Last(); k != nil && len(raw) < limit; k, v = c.Prev() {
			raw = append(raw, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]probe.Run, 0, len(raw))
	for _, data := range raw {
		var r probe.Run
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("decode probe run: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}
