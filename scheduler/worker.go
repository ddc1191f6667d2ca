package scheduler

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
)

// job is one transaction: recipients of one message at one domain.
type job struct {
	op        *opState
	prio      uint32
	entries   []entry
	dest      delivery.Destination
	destKey   string
	started   time.Time
	limits    config.Limits // the operator's limits when the job started (workers never read op.limits)
	window    Window        // the budget window reserved against (quota only)
	costMilli int64         // per recipient (quota only)

	// Filled by the worker while it runs the job, for the log line.
	connect  time.Duration // opening the session (DNS, TCP, greeting, TLS); 0 when reused
	transmit time.Duration // the transaction itself
	tls      string        // TLS version of the session, "" for plain text
}

func (j *job) hasQuota() bool    { return j.limits.Quota > 0 }
func (j *job) quotaMilli() int64 { return int64(j.limits.Quota) * UnitMilli }

// outcome is what became of one entry of a job, as the loop must know it.
type outcome uint8

const (
	outDone      outcome = iota // sent or failed: left the index
	outRetry                    // deferred: back to the waiting heap at next
	outNotTried                 // never attempted (no budget, store trouble): ready again
	outForget                   // stale: message gone, held, or recipient no longer pending
	outWaitUntil                // not attempted, wait until next (e.g. operator lookup)
)

type entryResult struct {
	entry
	out  outcome
	next time.Time
}

// jobResult is a worker's report to the loop. A nil job reports that the
// worker closed its connection and exited.
type jobResult struct {
	w       *worker
	job     *job
	entries []entryResult
	replies []delivery.Reply // remote replies seen, for response rules
	// grantedShort is set when the budget store granted fewer units than
	// the loop had set aside (another relay used them).
	grantedShort int
	refundMilli  int64 // units given back to job.window
	budgetDown   bool  // the budget store failed
	connected    bool  // a session was open (for throttle recovery)
	nextHopDSN   bool  // the server took NOTIFY/ORCPT (RFC 3461)
	success      bool  // at least one recipient was accepted
	exited       bool  // the worker closed its connection and stopped
}

// worker owns one SMTP connection to one destination of one operator and
// runs that destination's transactions one after the other.
type worker struct {
	s         *Scheduler
	op        *opState
	dest      delivery.Destination
	key       string
	jobs      chan *job
	conn      Conn // touched only by the worker goroutine
	sent      int  // transactions run (loop's count)
	idleSince time.Time
	closing   bool
}

// assign gives j to an idle connection for its destination, or to a new
// worker.
func (s *Scheduler) assign(j *job, now time.Time) {
	if w := s.takeIdle(j.destKey); w != nil {
		w.jobs <- j
		return
	}
	s.makeRoomFor(j.op)
	w := &worker{s: s, op: j.op, dest: j.dest, key: j.destKey, jobs: make(chan *job, 1)}
	s.conns++
	j.op.conns++
	s.jobWG.Add(1)
	go w.run()
	w.jobs <- j
}

// makeRoomFor closes an idle connection of op when op is at its connection
// limit with idle connections to other destinations.
func (s *Scheduler) makeRoomFor(op *opState) {
	if op.conns < op.maxConns() && s.conns < s.pol.cfg.Delivery.MaxConnections {
		return
	}
	if op.conns >= op.maxConns() {
		s.closeOldestIdle(op)
		return
	}
	s.closeOldestIdle(nil)
}

func (s *Scheduler) takeIdle(key string) *worker {
	ws := s.workers[key]
	if len(ws) == 0 {
		return nil
	}
	w := ws[len(ws)-1]
	if len(ws) == 1 {
		delete(s.workers, key)
	} else {
		s.workers[key] = ws[:len(ws)-1]
	}
	return w
}

func (s *Scheduler) hasIdleFor(op *opState) bool {
	for _, ws := range s.workers {
		if len(ws) > 0 && ws[0].op == op {
			return true
		}
	}
	return false
}

// closeOldestIdle tells the longest-idle worker (of op, or of anyone when
// op is nil) to quit.
func (s *Scheduler) closeOldestIdle(op *opState) {
	var oldest *worker
	for _, ws := range s.workers {
		for _, w := range ws {
			if (op == nil || w.op == op) && (oldest == nil || w.idleSince.Before(oldest.idleSince)) {
				oldest = w
			}
		}
	}
	if oldest != nil {
		s.retire(oldest)
	}
}

// retire removes w from the idle pool and tells it to close. Its slot is
// freed when it reports that it exited.
func (s *Scheduler) retire(w *worker) {
	ws := s.workers[w.key]
	for i := range ws {
		if ws[i] == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(s.workers, w.key)
	} else {
		s.workers[w.key] = ws
	}
	w.closing = true
	s.retiring++
	close(w.jobs)
}

// closeIdleWorkers closes connections idle for longer than ConnCacheTime.
func (s *Scheduler) closeIdleWorkers(now time.Time) {
	var old []*worker
	for _, ws := range s.workers {
		for _, w := range ws {
			if !now.Before(w.idleSince.Add(s.opts.ConnCacheTime)) {
				old = append(old, w)
			}
		}
	}
	for _, w := range old {
		s.retire(w)
	}
}

func (s *Scheduler) nextIdleClose() time.Time {
	var t time.Time
	for _, ws := range s.workers {
		for _, w := range ws {
			if c := w.idleSince.Add(s.opts.ConnCacheTime); t.IsZero() || c.Before(t) {
				t = c
			}
		}
	}
	return t
}

// run is the worker goroutine.
func (w *worker) run() {
	defer w.s.jobWG.Done()
	for j := range w.jobs {
		r := w.runJob(j)
		if r.exited {
			w.closeConn()
			w.s.results <- r
			return
		}
		w.s.results <- r
	}
	w.closeConn()
	w.s.results <- &jobResult{w: w, exited: true}
}

func (w *worker) closeConn() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

// runJob runs one transaction, turning a panic into deferred recipients so
// one poisonous message cannot stop the relay.
func (w *worker) runJob(j *job) (r *jobResult) {
	if !w.s.opts.NoRecover {
		defer func() {
			if p := recover(); p != nil {
				w.s.log.Error("delivery worker panicked; recipients deferred",
					"queue_id", fmt.Sprintf("%X", j.entries[0].seq), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				r = &jobResult{w: w, job: j, exited: true}
				next := w.s.clock.Now().Add(w.s.conf().Delivery.RetryAfter(1))
				for _, e := range j.entries {
					r.entries = append(r.entries, entryResult{entry: e, out: outRetry, next: next})
				}
			}
		}()
	}
	return w.s.execute(w, j)
}

// ensureConn opens the worker's connection if it has none.
func (w *worker) ensureConn(ctx context.Context) error {
	if w.conn != nil && w.conn.Usable() {
		return nil
	}
	w.closeConn()
	c, err := w.s.opts.Deliverer.Open(ctx, w.dest)
	if err != nil {
		return err
	}
	w.conn = c
	return nil
}
