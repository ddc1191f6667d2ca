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
	fn    func(tx *bolt.Tx) error
	done  chan error
	class commitClass
}

// commitClass says how soon a change must reach the disk. Either way the
// caller returns only once it is committed with fsync; the class only
// decides whether the commit may wait for company.
type commitClass uint8

const (
	// commitNow starts a commit at once: someone is waiting, such as an
	// SMTP client for its 250.
	commitNow commitClass = iota
	// commitSoon may wait up to Options.LazyCommitDelay for a commitNow
	// change to share its transaction and its two fsyncs, but only while
	// such changes keep arriving (acceptance is busy). Delivery results are
	// of this class: under load they ride along with the acceptances, which
	// halves the commits per relayed message; when nothing is being
	// accepted they commit at once, as before.
	commitSoon
)

// busyWindowDelays: commitSoon changes wait only if a commitNow change
// came within this many LazyCommitDelays, so that a queue draining with no
// new mail coming in never waits for company that will not come.
const busyWindowDelays = 8

// errSkip marks the failing member of a batch.
var errSkip = errors.New("queue: batch member failed")

// commit runs fn in a write transaction shared with whatever else is waiting,
// and returns once that transaction is durably committed or has failed. A
// cancelled ctx abandons the wait only before the change was handed over:
// once handed over, the outcome is always reported, because the caller must
// never believe a committed change was lost.
func (s *Store) commit(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.submit(ctx, commitNow, fn)
}

// commitLazy is commit for a change of class commitSoon.
func (s *Store) commitLazy(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.submit(ctx, commitSoon, fn)
}

func (s *Store) submit(ctx context.Context, class commitClass, fn func(tx *bolt.Tx) error) error {
	if s.opts.ReadOnly {
		return errors.New("queue: store opened read-only")
	}
	op := &commitOp{fn: fn, done: make(chan error, 1), class: class}
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
// change already waiting (under load the batch grows by itself while the
// previous fsync runs), and commits them together. A commitSoon change
// first may linger for a commitNow one (see commitSoon).
func (s *Store) committer() {
	defer close(s.done)
	batch := make([]*commitOp, 0, s.opts.MaxBatch)
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	var lastNow time.Time
	for {
		var first *commitOp
		select {
		case first = <-s.ops:
		case <-s.closing:
			s.drainOnClose()
			return
		}
		batch = append(batch[:0], first)
		delay := s.opts.LazyCommitDelay
		if first.class == commitSoon && delay > 0 && time.Since(lastNow) < busyWindowDelays*delay {
			batch = s.linger(batch, linger, delay)
		}
		batch = s.gather(batch)
		for _, op := range batch {
			if op.class == commitNow {
				lastNow = time.Now()
				break
			}
		}
		s.runBatch(batch)
	}
}

// linger waits, for at most delay, until a commitNow change arrives or the
// batch is full, collecting what comes meanwhile.
func (s *Store) linger(batch []*commitOp, t *time.Timer, delay time.Duration) []*commitOp {
	t.Reset(delay)
	defer t.Stop()
	if s.onLinger != nil {
		s.onLinger()
	}
	for len(batch) < s.opts.MaxBatch {
		select {
		case op := <-s.ops:
			batch = append(batch, op)
			if op.class == commitNow {
				return batch
			}
		case <-t.C:
			return batch
		case <-s.closing:
			return batch
		}
	}
	return batch
}

// gather adds every change already waiting, up to MaxBatch.
func (s *Store) gather(batch []*commitOp) []*commitOp {
	for len(batch) < s.opts.MaxBatch {
		select {
		case op := <-s.ops:
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
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
