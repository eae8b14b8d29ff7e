// Package boltdb is agentd's embedded store on bbolt, and the only importer
// of go.etcd.io/bbolt. One file holds every bucket; each write is committed
// and fsynced before it returns, and the writes that arrive while a commit
// runs share the next one (group commit), so many sessions saving at once
// share an fsync while a lone save is never delayed.
package boltdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
	"go.uber.org/zap"
)

// Bucket names and the schema version, in one place.
var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions") // tenant \x00 id → session metadata JSON
	bucketMessages = []byte("messages") // tenant \x00 id \x00 index(4 bytes BE) → message JSON
	bucketTurns    = []byte("turns")    // tenant \x00 id \x00 index(4 bytes BE) → turn record JSON
	bucketVersions = []byte("versions") // version number (8 bytes BE) → configuration version JSON
	// bucketReplaced keeps versions a fleet's replicated log replaced
	// (VersionStore.Put): replaced-at (8 bytes BE unix nanoseconds) \x00
	// version number (8 bytes BE) → version JSON.
	bucketReplaced  = []byte("versions_replaced")
	bucketDirectory = []byte("directory") // session id → {"to", "index"}: where a fleet moved a session
	bucketProbes    = []byte("probes")    // run number (8 bytes BE) → canary probe run JSON
	keySchema       = []byte("schema_version")
)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = "1"

// ErrLocked is returned by Open when another process holds the database.
var ErrLocked = errors.New("database is in use by another process")

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for the file lock; a second agentd on the
	// same data dir fails instead of hanging. Default 2 s.
	LockTimeout time.Duration
	Logger      *zap.Logger
}

// DB is an open store.
type DB struct {
	db  *bbolt.DB
	w   *committer
	log *zap.Logger
}

// Open opens (creating if needed) the store at path. Its directory must be
// writable (with fsync): a read-only mount fails here, with the uid to fix,
// not at the first save.
func Open(path string, opts Options) (*DB, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if err := checkWritable(filepath.Dir(path)); err != nil {
		return nil, err
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.LockTimeout, FreelistType: bbolt.FreelistMapType})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keySchema); {
		case v == nil:
			if err := meta.Put(keySchema, []byte(SchemaVersion)); err != nil {
				return err
			}
		case string(v) != SchemaVersion:
			return fmt.Errorf("schema version %q, this agentd reads %q", v, SchemaVersion)
		}
		for _, b := range [][]byte{bucketSessions, bucketMessages, bucketTurns, bucketVersions, bucketReplaced, bucketDirectory, bucketAlerts, bucketUsageDays, bucketUsageSlots, bucketUsageSessions, bucketProbes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return &DB{db: db, w: newCommitter(db), log: opts.Logger.Named("boltdb")}, nil
}

// Close closes the file. Writes in flight finish first; later ones get
// ErrClosed.
func (d *DB) Close() error {
	d.w.close()
	return d.db.Close()
}

// checkWritable makes dir if needed and proves a file can be written and
// synced in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".agentd-write-check-*")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable (as uid %d): %w", dir, os.Getuid(), err)
	}
	name := f.Name()
	_, werr := f.Write([]byte("ok"))
	serr := f.Sync()
	f.Close()
	os.Remove(name)
	if err := errors.Join(werr, serr); err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	return nil
}
