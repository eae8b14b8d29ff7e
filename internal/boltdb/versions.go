package boltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/internal/rollback"
)

// VersionStore implements rollback.Store: one record per configuration
// version in "versions", keyed by the big-endian version number.
type VersionStore struct{ d *DB }

var _ rollback.Store = (*VersionStore)(nil)

// Versions returns the version store of d.
func (d *DB) Versions() *VersionStore { return &VersionStore{d: d} }

func versionKey(n int) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(n))
	return k
}

// Append stores v, which must be the next version.
func (vs *VersionStore) Append(ctx context.Context, v rollback.Version) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode version: %w", err)
	}
	return vs.d.w.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketVersions)
		if k, _ := b.Cursor().Last(); k != nil && int(binary.BigEndian.Uint64(k)) >= v.N {
			return fmt.Errorf("version %d is not after the stored version %d", v.N, binary.BigEndian.Uint64(k))
		}
		return b.Put(versionKey(v.N), data)
	})
}

// Latest returns the newest version, if any.
func (vs *VersionStore) Latest(ctx context.Context) (rollback.Version, bool, error) {
	var v rollback.Version
	var data []byte
	err := vs.d.db.View(func(tx *bbolt.Tx) error {
		_, val := tx.Bucket(bucketVersions).Cursor().Last()
		data = bytes.Clone(val)
		return nil
	})
	if err != nil || data == nil {
		return v, false, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, false, fmt.Errorf("decode the latest version: %w", err)
	}
	return v, true, nil
}

// Get returns version n.
func (vs *VersionStore) Get(ctx context.Context, n int) (rollback.Version, error) {
	var v rollback.Version
	if n <= 0 {
		return v, rollback.ErrNotFound
	}
	var data []byte
	err := vs.d.db.View(func(tx *bbolt.Tx) error {
		data = bytes.Clone(tx.Bucket(bucketVersions).Get(versionKey(n)))
		return nil
	})
	if err != nil {
		return v, err
	}
	if data == nil {
		return v, fmt.Errorf("%w: %d", rollback.ErrNotFound, n)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode version %d: %w", n, err)
	}
	return v, nil
}

// List returns up to limit versions older than before (0: the newest),
// newest first.
func (vs *VersionStore) List(ctx context.Context, before, limit int) ([]rollback.Version, error) {
	if limit <= 0 {
		limit = 50
	}
	var raw [][]byte
	err := vs.d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketVersions).Cursor()
		var k, v []byte
		if before > 0 {
			k, v = c.Seek(versionKey(before))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for ; k != nil && len(raw) < limit; k, v = c.Prev() {
			raw = append(raw, bytes.Clone(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]rollback.Version, len(raw))
	for i, data := range raw {
		if err := json.Unmarshal(data, &out[i]); err != nil {
			return nil, fmt.Errorf("decode version: %w", err)
		}
	}
	return out, nil
}

var _ rollback.PutStore = (*VersionStore)(nil)

// Put stores v as version v.N whatever is stored (a fleet's replicated log
// is the truth): a different version stored there and every later one are
// moved to "versions_replaced", where they stay for an operator to read.
func (vs *VersionStore) Put(ctx context.Context, v rollback.Version) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode version: %w", err)
	}
	now := time.Now().UnixNano()
	return vs.d.w.update(func(tx *bbolt.Tx) error {
		b, old := tx.Bucket(bucketVersions), tx.Bucket(bucketReplaced)
		c := b.Cursor()
		var later [][2][]byte
		for k, val := c.Seek(versionKey(v.N)); k != nil; k, val = c.Next() {
			later = append(later, [2][]byte{bytes.Clone(k), bytes.Clone(val)})
		}
		for _, kv := range later {
			if bytes.Equal(kv[0], versionKey(v.N)) && bytes.Equal(kv[1], data) {
				continue
			}
			key := append(binary.BigEndian.AppendUint64(nil, uint64(now)), kv[0]...)
			if err := old.Put(key, kv[1]); err != nil {
				return err
			}
			if err := b.Delete(kv[0]); err != nil {
				return err
			}
		}
		return b.Put(versionKey(v.N), data)
	})
}
