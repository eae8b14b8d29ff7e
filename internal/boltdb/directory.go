package boltdb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// DirectoryStore keeps a fleet's directory of moved sessions: for each
// session moved off the replica that made it, the replica that holds it
// now, with the index of the replicated log entry that said so (an older
// entry replayed after a newer one changes nothing). It lives in this file,
// next to the sessions, so that a replica knows where sessions went as soon
// as it starts, before its log is replayed and without a quorum.
type DirectoryStore struct{ d *DB }

// Directory returns the directory of moved sessions of d.
func (d *DB) Directory() *DirectoryStore { return &DirectoryStore{d: d} }

type dirEntry struct {
	To    string `json:"to"`
	Index uint64 `json:"index"`
}

// Move records that ids are held by node to, as of log entry index.
func (ds *DirectoryStore) Move(ctx context.Context, ids []string, to string, index uint64) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	data, err := json.Marshal(dirEntry{To: to, Index: index})
	if err != nil {
		return err
	}
	return ds.d.w.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDirectory)
		for _, id := range ids {
			var old dirEntry
			if raw := b.Get([]byte(id)); raw != nil && json.Unmarshal(raw, &old) == nil && old.Index >= index {
				continue
			}
			if err := b.Put([]byte(id), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Entries calls fn with every entry, in id order.
func (ds *DirectoryStore) Entries(ctx context.Context, fn func(id, to string, index uint64) error) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	type kv struct {
		id string
		e  dirEntry
	}
	var all []kv
	err := ds.d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDirectory).ForEach(func(k, v []byte) error {
			var e dirEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode directory entry %q: %w", k, err)
			}
			all = append(all, kv{string(bytes.Clone(k)), e})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, x := range all {
		if err := fn(x.id, x.e.To, x.e.Index); err != nil {
			return err
		}
	}
	return nil
}

// Reset empties the directory (before a snapshot of the log's state is
// written again).
func (ds *DirectoryStore) Reset(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	return ds.d.w.update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketDirectory); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketDirectory)
		return err
	})
}
