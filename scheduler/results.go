package scheduler

import (
	"time"
)

// handleResult folds a worker's report into the index and the operator's
// state.
func (s *Scheduler) handleResult(r *jobResult, now time.Time) {
	w := r.w
	if r.job == nil {
		s.workerGone(w)
		return
	}
	j := r.job
	op := j.op
	op.busy--
	s.inflight--
	delete(s.running, j)
	if s.active[j.entries[0].seq]--; s.active[j.entries[0].seq] <= 0 {
		delete(s.active, j.entries[0].seq)
	}
	w.sent++
	s.settleBudget(op, r, now)
	for _, er := range r.entries {
		if s.held[er.seq] || er.out == outDone || er.out == outForget {
			// Done, gone, or held while in flight (Release indexes it
			// again): it leaves the index.
			s.count(j.prio, er.entry, -1)
			continue
		}
		switch er.out {
		case outRetry, outWaitUntil:
			s.waiting.push(waitEntry{at: er.next.UnixNano(), prio: j.prio, entry: er.entry})
		case outNotTried:
			s.makeReady(j.prio, er.entry, now)
		}
	}
	for _, reply := range r.replies {
		s.react(op, reply, now)
	}
	if r.success {
		s.recoverThrottle(op, now)
	}
	switch {
	case r.exited:
		s.workerGone(w)
	case s.stopping || w.sent >= op.limits.MaxMessagesPerConnection || op.conns > op.maxConns():
		w.closing = true
		s.retiring++
		close(w.jobs)
	default:
		w.idleSince = now
		s.workers[w.key] = append(s.workers[w.key], w)
	}
	s.markDirty(op)
}

// settleBudget corrects the loop's estimate of op's usage with what the
// budget store actually did.
func (s *Scheduler) settleBudget(op *opState, r *jobResult, now time.Time) {
	j := r.job
	if !op.hasQuota() || j.costMilli == 0 {
		return
	}
	sameWindow := j.window.Start.Equal(op.window.Start)
	if r.budgetDown {
		op.budgetDownUntil = now.Add(budgetRetry)
		if sameWindow {
			op.usedMilli -= int64(len(j.entries)) * j.costMilli
		}
		return
	}
	if !sameWindow {
		return
	}
	op.usedMilli -= r.refundMilli
	if r.grantedShort > 0 {
		// The store had less room than we thought: other relays share
		// this budget. Treat the window as spent.
		op.usedMilli = op.quotaMilli()
		s.noteSpent(op)
	}
	s.events.Budget(op.label, op.usedMilli, op.quotaMilli(), op.window.End)
}

// workerGone frees the connection slot of a worker that exited.
func (s *Scheduler) workerGone(w *worker) {
	if w.closing {
		s.retiring--
	}
	s.conns--
	w.op.conns--
	s.markDirty(w.op)
	for op := range s.starved {
		delete(s.starved, op)
		s.markDirty(op)
	}
}

// shutdown stops dispatching, closes idle connections, waits up to drain
// for transactions in flight, then aborts the rest and records their
// results.
func (s *Scheduler) shutdown(drain time.Duration) error {
	s.stopping = true
	for _, ws := range s.workers {
		for _, w := range append([]*worker(nil), ws...) {
			s.retire(w)
		}
	}
	deadline := time.NewTimer(drain)
	defer deadline.Stop()
	aborted := false
	for s.inflight > 0 || s.conns > 0 {
		select {
		case r := <-s.results:
			s.handleResult(r, s.clock.Now())
		case fn := <-s.cmds:
			fn()
		case <-deadline.C:
			if !aborted {
				s.log.Warn("shutdown timeout: aborting deliveries in flight", "in_flight", s.inflight)
				s.cancelJob()
				aborted = true
			}
		}
	}
	s.cancelJob()
	s.jobWG.Wait()
	s.drainIncoming(s.clock.Now())
	return nil
}
