package queue

import (
	"context"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// commitOp is one change waiting for the committer. fn may run more than
// once (when a batch is retried without a failing member), so it must only
// touch the transaction and state it overwrites on every run.
type commitOp struct {
	fn   func(tx *bolt.Tx) error
	done chan error
}

// errSkip marks the failing member of a batch.
var errSkip = errors.New("queue: batch member failed")

// commit runs fn in a write transaction shared with whatever else is waiting,
// and returns once that transaction is durably committed or has failed. A
// cancelled ctx abandons the wait only before the change was handed over:
// once handed over, the outcome is always reported, because the caller must
// never believe a committed change was lost.
func (s *Store) commit(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if s.opts.ReadOnly {
		return errors.New("queue: store opened read-only")
	}
	op := &commitOp{fn: fn, done: make(chan error, 1)}
	// The read lock keeps Close from stopping the committer between the
	// closed check and the hand-over.
	s.submitMu.RLock()
	if s.closed {
		s.submitMu.RUnlock()
		return ErrClosed
	}
	select {
	case <-ctx.Done():
		s.submitMu.RUnlock()
		return ctx.Err()
	case s.ops <- op:
	}
	s.submitMu.RUnlock()
	return <-op.done
}

// committer is the single writer. It takes one change, gathers every other
// change already waiting (no timer: under load the batch grows by itself
// while the previous fsync runs), and commits them together.
func (s *Store) committer() {
	defer close(s.done)
	batch := make([]*commitOp, 0, s.opts.MaxBatch)
	for {
		var first *commitOp
		select {
		case first = <-s.ops:
		case <-s.closing:
			s.drainOnClose()
			return
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < s.opts.MaxBatch {
			select {
			case op := <-s.ops:
				batch = append(batch, op)
			default:
				break gather
			}
		}
		s.runBatch(batch)
	}
}

// drainOnClose commits what was submitted before Close.
func (s *Store) drainOnClose() {
	for {
		select {
		case op := <-s.ops:
			s.runBatch([]*commitOp{op})
		default:
			return
		}
	}
}

// runBatch commits the batch. If one member fails, the transaction is rolled
// back, that member gets its error, and the rest are committed again without
// it (as bbolt's own Batch does).
func (s *Store) runBatch(batch []*commitOp) {
	for len(batch) > 0 {
		failed := -1
		var failErr error
		start := time.Now()
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, op := range batch {
				if err := op.fn(tx); err != nil {
					failed, failErr = i, err
					return errSkip
				}
			}
			return nil
		})
		if failed >= 0 {
			batch[failed].done <- storageError(failErr)
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			continue
		}
		if err != nil {
			err = storageError(err)
			for _, op := range batch {
				op.done <- err
			}
			return
		}
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(time.Since(start), len(batch))
		}
		for _, op := range batch {
			op.done <- nil
		}
		return
	}
}
