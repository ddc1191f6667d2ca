package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/queue"
)

// Delay warnings (delivery.delay_warning_after): once a message has waited
// that long with recipients still pending, its sender gets one "delayed"
// report (RFC 3464 Action: delayed, with Will-Retry-Until) that says in
// plain words why the mail waits, for example "waiting for the operator's
// hourly budget, next window at 14:00 UTC". One per message, ever.

// delayWatch is a min-heap of messages by the moment their warning is due.
type delayWatch = minHeap[delayDue]

type delayDue struct {
	at  int64 // Unix nanoseconds
	seq uint64
}

//lint:ignore U1000 called through minHeap's type constraint (staticcheck does not see it)
func (d delayDue) before(o delayDue) bool { return d.at < o.at }

// watchDelay arranges a delay warning for m if one can be owed.
func (s *Scheduler) watchDelay(m *queue.Message) {
	after := s.pol.cfg.Delivery.DelayWarningAfter
	if after <= 0 || m.From == "" {
		return
	}
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.State.IsPending() && !r.DelayNotified && r.Notify.Wants(queue.NotifyDelay) {
			s.delays.push(delayDue{at: m.Arrival.Add(after).UnixNano(), seq: m.Seq})
			return
		}
	}
}

// fireDelays starts the warnings that are due.
func (s *Scheduler) fireDelays(now time.Time) {
	for len(s.delays) > 0 && s.delays[0].at <= now.UnixNano() && !s.stopping {
		seq := s.delays.pop().seq
		s.background(func() { s.sendDelayWarning(seq) })
	}
}

// sendDelayWarning builds and queues the delayed report for one message.
func (s *Scheduler) sendDelayWarning(seq uint64) {
	m, body, err := s.store.Load(seq)
	if err != nil || m.Held {
		return // sent, deleted or held meanwhile
	}
	var idxs []int
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.State.IsPending() && !r.DelayNotified && r.Notify.Wants(queue.NotifyDelay) {
			idxs = append(idxs, i)
		}
	}
	if len(idxs) == 0 {
		return
	}
	var reasons map[int]string
	if err := s.do(s.jobCtx, func() { reasons = s.waitReasons(m, idxs, s.clock.Now()) }); err != nil {
		return
	}
	now := s.clock.Now()
	rep := s.delayReport(m, idxs, reasons, body, now)
	var adds []queue.NewMessage
	if rep != nil {
		adds = append(adds, *rep)
	}
	_, err = s.store.Apply(context.Background(), queue.Change{Seq: seq, Add: adds, Update: func(qm *queue.Message) error {
		for i := range qm.Recipients {
			if qm.Recipients[i].State.IsPending() {
				qm.Recipients[i].DelayNotified = true
			}
		}
		return nil
	}})
	if err != nil {
		if !errors.Is(err, queue.ErrNotFound) {
			s.log.Error("cannot record a delay warning", "queue_id", m.ID, "err", err)
		}
		return
	}
	s.log.Info("delay warning sent", "queue_id", m.ID, "from", m.From, "recipients", len(idxs),
		"reason", strings.Join(uniqueReasons(reasons), "; "))
	for _, a := range adds {
		s.Add(a.Msg)
	}
}

func (s *Scheduler) delayReport(m *queue.Message, idxs []int, reasons map[int]string, body []byte, now time.Time) *queue.NewMessage {
	until := m.Arrival.Add(s.conf().Delivery.MaxQueueLifetime)
	var rcpts []dsn.Recipient
	for _, i := range idxs {
		rc := &m.Recipients[i]
		status := rc.LastReply.Enhanced
		if !strings.HasPrefix(status, "4.") {
			status = "4.4.5" // RFC 3463: mail system congestion (our own pacing)
		}
		rcpts = append(rcpts, dsn.Recipient{
			FinalRecipient: rc.Addr, OriginalRecipient: rc.ORCPT, Action: dsn.ActionDelayed, Status: status,
			RemoteMTA: rc.LastReply.RemoteHost, DiagnosticCode: diagnostic(rc.LastReply, false),
			LastAttempt: rc.LastAttempt, WillRetryUntil: until,
		})
	}
	return s.report(m, rcpts, body, now, strings.Join(uniqueReasons(reasons), "; "))
}

func uniqueReasons(reasons map[int]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range reasons {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// waitReasons says, for each recipient, why it is still waiting (run on
// the loop, which knows budgets and suspensions).
func (s *Scheduler) waitReasons(m *queue.Message, idxs []int, now time.Time) map[int]string {
	out := make(map[int]string, len(idxs))
	for _, i := range idxs {
		out[i] = s.waitReason(&m.Recipients[i], now)
	}
	return out
}

func (s *Scheduler) waitReason(rc *queue.Recipient, now time.Time) string {
	if rc.NextAttempt.After(now) {
		why := "the last attempt failed"
		if d := diagnostic(rc.LastReply, false); d != "" {
			why += " (" + d + ")"
		}
		return why + "; next attempt at " + rc.NextAttempt.UTC().Format("15:04 MST")
	}
	dc := s.classes[s.doms.id(domainOf(rc.Addr))]
	if dc == nil || dc.op == nil {
		return "waiting to be sent"
	}
	op := dc.op
	if op.hasQuota() {
		s.refreshWindowQuiet(op, now)
	}
	loc := op.limits.Location
	if loc == nil {
		loc = time.UTC
	}
	switch {
	case now.Before(op.suspendedUntil):
		return fmt.Sprintf("the operator %s asked us to slow down; sending resumes at %s", op.key, op.suspendedUntil.In(loc).Format("15:04 MST"))
	case op.hasQuota() && (op.spent || op.quotaMilli()-op.usedMilli < CostMilli(UnitMilli)):
		return fmt.Sprintf("waiting for the operator's %s budget, next window at %s", budgetPeriod(op.limits.Window, op.limits.Quota), op.window.End.In(loc).Format("15:04 MST"))
	}
	return "waiting for a free connection to the destination"
}

// budgetPeriod names a window in words: "hourly" for 1h, "daily" for 24h.
func budgetPeriod(w time.Duration, quota int) string {
	switch w {
	case time.Hour:
		return "hourly"
	case 24 * time.Hour:
		return "daily"
	case time.Minute:
		return "per-minute"
	}
	return fmt.Sprintf("%d-per-%s", quota, w)
}
