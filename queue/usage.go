package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The usage bucket is the local budget store: milli-units each operator used
// in each window, keyed by the window's start. Reservations are committed
// before the scheduler sends a RCPT, so a restart reads back what was spent.

// Reserve grants up to n units of costMilli each for operator op in the
// window starting at window, as many as fit under quotaMilli, and commits
// the new total before returning how many it granted. The window's length
// is not needed locally (PruneUsage drops old windows); it is part of the
// signature because a shared store expires its keys with it.
func (s *Store) Reserve(ctx context.Context, op string, window time.Time, _ time.Duration, quotaMilli, costMilli int64, n int) (int, error) {
	if costMilli <= 0 || n <= 0 {
		return 0, fmt.Errorf("queue: reserve %d units of cost %d", n, costMilli)
	}
	var granted int
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		key := usageKey(op, window)
		used := decodeUsage(b.Get(key))
		granted = 0
		if free := quotaMilli - used; free > 0 {
			granted = int(min(int64(n), free/costMilli))
		}
		if granted == 0 {
			return nil
		}
		return b.Put(key, encodeUsage(used+int64(granted)*costMilli))
	})
	if err != nil {
		return 0, fmt.Errorf("queue: reserve budget for %s: %w", op, err)
	}
	return granted, nil
}

// Refund gives milli units back to op's window (never below zero).
func (s *Store) Refund(ctx context.Context, op string, window time.Time, milli int64) error {
	if milli <= 0 {
		return nil
	}
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		key := usageKey(op, window)
		used := decodeUsage(b.Get(key)) - milli
		if used < 0 {
			used = 0
		}
		return b.Put(key, encodeUsage(used))
	})
	if err != nil {
		return fmt.Errorf("queue: refund budget for %s: %w", op, err)
	}
	return nil
}

// Used returns the milli units op used in the window starting at window.
func (s *Store) Used(_ context.Context, op string, window time.Time) (int64, error) {
	var used int64
	err := s.db.View(func(tx *bolt.Tx) error {
		used = decodeUsage(tx.Bucket(bucketUsage).Get(usageKey(op, window)))
		return nil
	})
	return used, err
}

// UsageRecord is one operator-window total.
type UsageRecord struct {
	Operator    string
	WindowStart time.Time
	UsedMilli   int64
}

// Usage lists every usage record, for inspection and tests.
func (s *Store) Usage() ([]UsageRecord, error) {
	var out []UsageRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketUsage).ForEach(func(k, v []byte) error {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k) != i+9 {
				return fmt.Errorf("%w: usage key %q", ErrCorrupt, k)
			}
			out = append(out, UsageRecord{
				Operator:    string(k[:i]),
				WindowStart: time.Unix(int64(binary.BigEndian.Uint64(k[i+1:])), 0).UTC(),
				UsedMilli:   decodeUsage(v),
			})
			return nil
		})
	})
	return out, err
}

// PruneUsage deletes usage records of windows that started before cutoff.
func (s *Store) PruneUsage(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketUsage)
		var old [][]byte
		_ = b.ForEach(func(k, _ []byte) error {
			i := bytes.IndexByte(k, 0)
			if i >= 0 && len(k) == i+9 && int64(binary.BigEndian.Uint64(k[i+1:])) < cutoff.Unix() {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		// Collect first, delete after: deleting under a cursor can skip keys.
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

func decodeUsage(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func encodeUsage(u int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(u))
}
