package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/queue"
)

// execute runs one job on the worker's goroutine: reserve budget, record the
// attempt, open or reuse the connection, send, and record the outcome.
func (s *Scheduler) execute(w *worker, j *job) *jobResult {
	r := &jobResult{w: w, job: j}
	ctx := s.jobCtx
	seq := j.entries[0].seq
	m, body, err := s.store.Load(seq)
	if err != nil {
		if !errors.Is(err, queue.ErrNotFound) {
			s.log.Error("cannot read queued message", "queue_id", queue.FormatID(seq), "err", err)
			return r.all(outWaitUntil, s.clock.Now().Add(time.Minute))
		}
		return r.all(outForget, time.Time{})
	}
	live := r.liveEntries(m)
	if len(live) == 0 {
		return r
	}
	marked := false
	if j.hasQuota() {
		live, marked = s.reserve(ctx, r, m, live)
		if len(live) == 0 {
			return r
		}
	}
	results, err := s.send(ctx, w, r, m, live, body)
	if err != nil {
		// No session: the operator saw nothing, so the units go back.
		s.refund(r, len(live))
	} else {
		s.refundUnseen(r, results)
	}
	s.settle(r, m, live, results, body, marked)
	return r
}

// all marks every entry of the job with one outcome.
func (r *jobResult) all(out outcome, next time.Time) *jobResult {
	return r.add(r.job.entries, out, next)
}

func (r *jobResult) add(es []entry, out outcome, next time.Time) *jobResult {
	for _, e := range es {
		r.entries = append(r.entries, entryResult{entry: e, out: out, next: next})
	}
	return r
}

// liveEntries keeps the entries whose recipient still needs this attempt;
// the others are forgotten (the message was held, or an admin action
// settled them).
func (r *jobResult) liveEntries(m *queue.Message) []entry {
	var live []entry
	for _, e := range r.job.entries {
		if m.Held || int(e.idx) >= len(m.Recipients) || !m.Recipients[e.idx].State.IsPending() {
			r.add([]entry{e}, outForget, time.Time{})
			continue
		}
		live = append(live, e)
	}
	return live
}

// reserve takes budget for the live entries from the store, then records
// the attempt (count, next retry time, reservation) durably, both before
// any RCPT is sent. It returns the entries that may be sent and whether the
// attempt is recorded.
func (s *Scheduler) reserve(ctx context.Context, r *jobResult, m *queue.Message, live []entry) ([]entry, bool) {
	j := r.job
	op := j.op
	granted, err := s.budget.Reserve(ctx, op.key, j.window.Start, j.limits.Window, j.quotaMilli(), j.costMilli, len(live))
	if err != nil {
		r.budgetDown = true
		r.add(live, outNotTried, time.Time{})
		return nil, false
	}
	if granted < len(live) {
		r.grantedShort = len(live) - granted
		r.add(live[granted:], outNotTried, time.Time{})
		live = live[:granted]
	}
	if len(live) == 0 {
		return nil, false
	}
	now := s.clock.Now()
	res := queue.Reservation{Operator: op.key, WindowStart: j.window.Start, CostMilli: j.costMilli}
	_, err = s.store.Apply(ctx, queue.Change{Seq: m.Seq, Update: func(qm *queue.Message) error {
		for _, e := range live {
			rc := &qm.Recipients[e.idx]
			rc.Attempts++
			rc.LastAttempt = now
			rc.NextAttempt = now.Add(s.conf().Delivery.RetryAfter(rc.Attempts))
			rc.Reserved = res
		}
		return nil
	}})
	if err != nil {
		s.log.Error("cannot record delivery attempt", "queue_id", m.ID, "err", err)
		s.refund(r, len(live))
		r.add(live, outWaitUntil, now.Add(time.Minute))
		return nil, false
	}
	for _, e := range live {
		m.Recipients[e.idx].Attempts++
	}
	return live, true
}

// refund gives back the units of n recipients that never reached the
// operator.
func (s *Scheduler) refund(r *jobResult, n int) {
	j := r.job
	if !j.hasQuota() || n == 0 || r.budgetDown {
		return
	}
	milli := int64(n) * j.costMilli
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.budget.Refund(ctx, j.op.key, j.window.Start, milli); err != nil {
		s.log.Warn("cannot refund budget units", "operator", j.op.key, "milli", milli, "err", err)
		return
	}
	r.refundMilli += milli
}

// refundUnseen gives back the units of recipients whose RCPT was never
// sent (the session broke first, or a shutdown aborted the transaction)
// and, with refund_rejected = true, of those the remote refused.
func (s *Scheduler) refundUnseen(r *jobResult, results []delivery.Result) {
	n := 0
	for _, res := range results {
		switch {
		case !res.RcptSent && res.Status != delivery.StatusSent:
			n++
		case r.job.limits.RefundRejected && res.Status != delivery.StatusSent && res.Reply.Code >= 400:
			n++
		}
	}
	s.refund(r, n)
}

// send opens (or reuses) the worker's session and runs the transaction.
// A failure to open a session returns every recipient with the open
// error's classification and a nil error only when a session ran.
func (s *Scheduler) send(ctx context.Context, w *worker, r *jobResult, m *queue.Message, live []entry, body []byte) ([]delivery.Result, error) {
	t0 := time.Now()
	err := w.ensureConn(ctx)
	r.job.connect = time.Since(t0)
	if err != nil {
		r.exited = true
		reply := openReply(err)
		if reply.Code != 0 {
			r.replies = append(r.replies, reply)
			s.events.Reply(r.job.op.label, reply.Code)
		}
		status := delivery.Classify(0, err)
		out := make([]delivery.Result, len(live))
		for i, e := range live {
			out[i] = delivery.Result{Rcpt: m.Recipients[e.idx].Addr, Status: status, Reply: reply, Err: err}
		}
		return out, err
	}
	r.connected = true
	r.job.tls = w.conn.TLSVersion()
	r.nextHopDSN = w.conn.SupportsDSN()
	env := s.envelope(m, live, &r.job.limits)
	t1 := time.Now()
	results := w.conn.Send(ctx, env, body)
	r.job.transmit = time.Since(t1)
	if !w.conn.Usable() {
		r.exited = true
	}
	for _, res := range results {
		if res.Reply.Code != 0 {
			r.replies = append(r.replies, res.Reply)
			s.events.Reply(r.job.op.label, res.Reply.Code)
		}
		if res.Status == delivery.StatusSent {
			r.success = true
		}
	}
	if len(results) != len(live) {
		return nil, fmt.Errorf("scheduler: delivery returned %d results for %d recipients", len(results), len(live))
	}
	return results, nil
}

// openReply extracts the reply that made opening a session fail.
func openReply(err error) delivery.Reply {
	var de *delivery.Error
	if errors.As(err, &de) {
		return de.Reply
	}
	var dnsErr *delivery.DNSError
	if errors.As(err, &dnsErr) {
		return delivery.Reply{Enhanced: dnsErr.Enhanced, Text: dnsErr.Error()}
	}
	return delivery.Reply{Enhanced: "4.4.1", Text: err.Error()}
}

// envelope builds the transaction's envelope for the live recipients.
func (s *Scheduler) envelope(m *queue.Message, live []entry, l *config.Limits) delivery.Envelope {
	env := delivery.Envelope{From: m.From, Ret: m.Ret, EnvID: m.EnvID, DKIM: true}
	if l.EnvelopeFrom != "" && m.From != "" {
		env.From = l.EnvelopeFrom
		if l.VERP && len(live) == 1 {
			rc := &m.Recipients[live[0].idx]
			env.From = s.verp.Encode(l.EnvelopeFrom, m.ID, rc.Index, rc.Addr)
		}
	}
	for _, e := range live {
		rc := &m.Recipients[e.idx]
		env.Rcpts = append(env.Rcpts, delivery.Rcpt{Addr: rc.Addr, ORCPT: rc.ORCPT, Notify: notifyStrings(rc.Notify)})
	}
	return env
}

func notifyStrings(n queue.Notify) []string {
	if n == 0 {
		return nil
	}
	if n&queue.NotifyNever != 0 {
		return []string{"NEVER"}
	}
	var out []string
	if n&queue.NotifySuccess != 0 {
		out = append(out, "SUCCESS")
	}
	if n&queue.NotifyFailure != 0 {
		out = append(out, "FAILURE")
	}
	if n&queue.NotifyDelay != 0 {
		out = append(out, "DELAY")
	}
	return out
}
