package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-mta/sluice/queue"
)

// sweep fails ready recipients that outlived max_queue_lifetime while they
// waited for budget, a suspension or a connection slot. Recipients in the
// waiting heap need no sweep: a deferral never schedules a retry past the
// lifetime (decide expires them instead). Only the head of each priority
// class can be the oldest, so the sweep looks at heads.
func (s *Scheduler) sweep(now time.Time) {
	s.prune(now)
	lifetime := s.pol.cfg.Delivery.MaxQueueLifetime
	if lifetime <= 0 || s.stopping {
		return
	}
	cutoff := now.Add(-lifetime).UnixNano()
	for _, op := range s.pol.ops {
		var expired []entry
		for _, p := range op.ready.prios {
			h := op.ready.classes[p]
			for len(*h) > 0 && (*h)[0].arrival <= cutoff {
				e := op.ready.pop(p)
				s.count(p, e, -1)
				expired = append(expired, e)
			}
		}
		if len(expired) > 0 {
			s.expire(op, expired)
		}
	}
}

// expire fails recipients that waited too long, in the background, with
// the usual bounce.
func (s *Scheduler) expire(op *opState, es []entry) {
	bySeq := make(map[uint64][]entry)
	for _, e := range es {
		bySeq[e.seq] = append(bySeq[e.seq], e)
	}
	j := &job{op: op, limits: op.limits} // a snapshot: the expiry runs off the loop
	for seq, group := range bySeq {
		s.background(func() { s.expireMessage(j, seq, group) })
	}
}

func (s *Scheduler) expireMessage(op *job, seq uint64, es []entry) {
	m, body, err := s.store.Load(seq)
	if errors.Is(err, queue.ErrNotFound) {
		return // gone meanwhile
	}
	if err != nil {
		s.log.Error("cannot read a message to expire it", "queue_id", queue.FormatID(seq), "err", err)
		return
	}
	now := s.clock.Now()
	reason := "waiting for delivery slot"
	if op.hasQuota() {
		reason = "waiting for the operator's budget"
	}
	var ds []decision
	for _, e := range es {
		rc := &m.Recipients[e.idx]
		if !rc.State.IsPending() {
			continue
		}
		r := rc.LastReply
		if r.Text == "" {
			r.Text = reason
		}
		ds = append(ds, decision{idx: int(e.idx), state: queue.StateFailed, attempts: rc.Attempts,
			reply: r, expired: true, maybeDup: rc.MaybeDuplicate, status: "expired"})
	}
	var adds []queue.NewMessage
	if b := s.bounce(m, ds, body, now); b != nil {
		adds = append(adds, *b)
	}
	_, err = s.store.Apply(context.Background(), queue.Change{
		Seq:    seq,
		Update: func(qm *queue.Message) error { applyDecisions(qm, ds, now); return nil },
		Add:    adds,
	})
	if err != nil {
		s.log.Error("cannot record expiry; will try again", "queue_id", m.ID, "err", err)
		retry := now.Add(time.Minute).UnixNano()
		s.post(func() {
			for _, e := range es {
				s.count(m.PriorityMilli, e, +1)
				s.waiting.push(waitEntry{at: retry, prio: m.PriorityMilli, entry: e})
			}
		})
		return
	}
	j := &job{op: op.op, limits: op.limits, started: now}
	for _, d := range ds {
		s.logDelivery(m, &m.Recipients[d.idx], j, d, now)
	}
	for _, a := range adds {
		s.Add(a.Msg)
	}
}

// pruner is the store's housekeeping; the queue has it.
type pruner interface {
	PruneUsage(ctx context.Context, cutoff time.Time) (int, error)
	PruneSent(ctx context.Context, cutoff time.Time) (int, error)
}

// keepSent is how long recipients sent with a VERP return path are
// remembered for late bounces: remote MTAs give up on a bounce after a
// few days, five by default in Postfix.
const keepSent = 7 * 24 * time.Hour

// prune drops, once an hour, budget usage of windows long past and sent
// records too old for a late bounce.
func (s *Scheduler) prune(now time.Time) {
	p, ok := s.store.(pruner)
	if !ok || now.Before(s.nextPrune) {
		return
	}
	s.nextPrune = now.Add(time.Hour)
	usageCutoff := now.Add(-48 * time.Hour)
	sentCutoff := now.Add(-max(keepSent, s.pol.cfg.Delivery.MaxQueueLifetime))
	s.background(func() {
		ctx := context.Background()
		if n, err := p.PruneUsage(ctx, usageCutoff); err != nil {
			s.log.Warn("cannot prune budget usage", "err", err)
		} else if n > 0 {
			s.log.Debug("pruned budget usage", "windows", n)
		}
		if n, err := p.PruneSent(ctx, sentCutoff); err != nil {
			s.log.Warn("cannot prune sent records", "err", err)
		} else if n > 0 {
			s.log.Debug("pruned sent records", "records", n)
		}
	})
}
