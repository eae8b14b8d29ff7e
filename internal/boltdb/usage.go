package boltdb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/agentd/agentd/internal/usage"
)

// Buckets of the usage counters (usage.Meter).
var (
	bucketUsageDays     = []byte("usage_days")     // day "2006-01-02" \x00 scope → usage.Counts JSON
	bucketUsageSlots    = []byte("usage_slots")    // slot start (8 bytes BE Unix seconds) scope → usage.Counts JSON
	bucketUsageSessions = []byte("usage_sessions") // tenant \x00 session id → usage.SessionUse JSON
)

// UsageStore implements usage.Store: the usage counters, one record per
// day and scope, per 5-minute slot and scope, and per session.
type UsageStore struct{ d *DB }

var _ usage.Store = (*UsageStore)(nil)

// Usage returns the usage store of d.
func (d *DB) Usage() *UsageStore { return &UsageStore{d: d} }

func dayKey(k usage.DayKey) []byte { return []byte(k.Day + "\x00" + string(k.Scope)) }

func slotKey(k usage.SlotKey) []byte {
	b := make([]byte, 8, 8+len(k.Scope))
	binary.BigEndian.PutUint64(b, uint64(k.Start))
	return append(b, k.Scope...)
}

func usageSessionKey(k usage.SessionKey) []byte { return []byte(k.Tenant + "\x00" + k.Session) }

// Load returns every record.
func (us *UsageStore) Load() (usage.Records, error) {
	r := usage.Records{Days: map[usage.DayKey]usage.Counts{}, Slots: map[usage.SlotKey]usage.Counts{}, Sessions: map[usage.SessionKey]usage.SessionUse{}}
	err := us.d.db.View(func(tx *bbolt.Tx) error {
		err := tx.Bucket(bucketUsageDays).ForEach(func(k, v []byte) error {
			day, scope, ok := bytes.Cut(k, []byte{0})
			if !ok {
				return fmt.Errorf("usage day key %q has no scope", k)
			}
			var c usage.Counts
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode usage day %q: %w", k, err)
			}
			r.Days[usage.DayKey{Day: string(day), Scope: usage.Scope(scope)}] = c
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketUsageSlots).ForEach(func(k, v []byte) error {
			if len(k) < 8 {
				return fmt.Errorf("usage slot key %q is too short", k)
			}
			var c usage.Counts
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode usage slot %q: %w", k, err)
			}
			r.Slots[usage.SlotKey{Start: int64(binary.BigEndian.Uint64(k)), Scope: usage.Scope(k[8:])}] = c
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketUsageSessions).ForEach(func(k, v []byte) error {
			var su usage.SessionUse
			if err := json.Unmarshal(v, &su); err != nil {
				return fmt.Errorf("decode usage session %q: %w", k, err)
			}
			r.Sessions[usage.SessionKey{Tenant: su.Tenant, Session: su.Session}] = su
			return nil
		})
	})
	if err != nil {
		return usage.Records{}, fmt.Errorf("load usage counters: %w", err)
	}
	return r, nil
}

// Apply writes ch in one transaction (shared with concurrent writes).
func (us *UsageStore) Apply(ch usage.Changes) error {
	// Encoded before the transaction: no work but puts inside it.
	type kv struct{ k, v []byte }
	var days, slots, sessions []kv
	for k, c := range ch.Put.Days {
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		days = append(days, kv{dayKey(k), v})
	}
	for k, c := range ch.Put.Slots {
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		slots = append(slots, kv{slotKey(k), v})
	}
	for k, su := range ch.Put.Sessions {
		v, err := json.Marshal(su)
		if err != nil {
			return err
		}
		sessions = append(sessions, kv{usageSessionKey(k), v})
	}
	return us.d.w.update(func(tx *bbolt.Tx) error {
		put := func(bucket []byte, kvs []kv) error {
			b := tx.Bucket(bucket)
			for _, x := range kvs {
				if err := b.Put(x.k, x.v); err != nil {
					return err
				}
			}
			return nil
		}
		if err := put(bucketUsageDays, days); err != nil {
			return err
		}
		if err := put(bucketUsageSlots, slots); err != nil {
			return err
		}
		if err := put(bucketUsageSessions, sessions); err != nil {
			return err
		}
		for _, k := range ch.DelDays {
			if err := tx.Bucket(bucketUsageDays).Delete(dayKey(k)); err != nil {
				return err
			}
		}
		for _, k := range ch.DelSlots {
			if err := tx.Bucket(bucketUsageSlots).Delete(slotKey(k)); err != nil {
				return err
			}
		}
		for _, k := range ch.DelSessions {
			if err := tx.Bucket(bucketUsageSessions).Delete(usageSessionKey(k)); err != nil {
				return err
			}
		}
		return nil
	})
}
