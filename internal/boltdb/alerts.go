package boltdb

import (
	"bytes"
	"context"

	"go.etcd.io/bbolt"
)

// bucketAlerts holds the built-in alerts (internal/alerts), firing and
// recently resolved: alert key → alert JSON. The keys and the JSON are the
// alerts package's; this file only stores them.
var bucketAlerts = []byte("alerts")

// AlertStore keeps the state of the built-in alerts, so that an alert
// firing before a restart is still firing after it (with its first
// "since") and is not announced again.
type AlertStore struct{ d *DB }

// Alerts returns the alert store of d.
func (d *DB) Alerts() *AlertStore { return &AlertStore{d: d} }

// Load returns every stored alert, by key.
func (s *AlertStore) Load(ctx context.Context) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	out := map[string][]byte{}
	err := s.d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
			out[string(k)] = bytes.Clone(v)
			return nil
		})
	})
	return out, err
}

// Save writes put and removes del in one transaction.
func (s *AlertStore) Save(ctx context.Context, put map[string][]byte, del []string) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if len(put) == 0 && len(del) == 0 {
		return nil
	}
	return s.d.w.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		for k, v := range put {
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		for _, k := range del {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
}
