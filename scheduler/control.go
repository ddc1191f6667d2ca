package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/queue"
)

// The operations behind sluice queue hold|release|delete|retry|bounce and
// sluice operator suspend|resume. Store changes run on the caller's
// goroutine; only the index updates run on the loop, so a large request
// does not stall dispatching.

// ErrUnknownOperator is returned for an operator name the configuration
// does not define.
var ErrUnknownOperator = errors.New("scheduler: no such operator")

// Hold puts messages on hold: nothing is sent for them until Release. It
// returns how many were newly held.
func (s *Scheduler) Hold(ctx context.Context, seqs []uint64) (int, error) {
	n, held, err := s.applyEach(ctx, seqs, func(m *queue.Message) error {
		if m.Held {
			return queue.ErrSkipChange
		}
		m.Held = true
		return nil
	})
	if len(held) > 0 {
		s.do(ctx, func() {
			for _, seq := range held {
				s.held[seq] = true
			}
			s.unindex(held)
		})
	}
	return n, err
}

// Release takes messages off hold and schedules them again.
func (s *Scheduler) Release(ctx context.Context, seqs []uint64) (int, error) {
	n := 0
	for _, seq := range seqs {
		skipped := false
		ap, err := s.store.Apply(ctx, queue.Change{Seq: seq, Update: func(m *queue.Message) error {
			skipped = !m.Held
			if skipped {
				return queue.ErrSkipChange
			}
			m.Held = false
			return nil
		}})
		if errors.Is(err, queue.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		// Only a message that was held is re-indexed: a held message has
		// no index entries (results of transactions that were in flight
		// when it was held are dropped), so no recipient is indexed twice.
		if !skipped && !ap.Removed {
			n++
			m := ap.Msg
			s.do(ctx, func() {
				delete(s.held, seq)
				s.addMessage(m, s.clock.Now())
			})
		}
	}
	return n, nil
}

// Delete removes messages from the queue without any report.
func (s *Scheduler) Delete(ctx context.Context, seqs []uint64) (int, error) {
	n := 0
	var gone []uint64
	for _, seq := range seqs {
		_, err := s.store.Apply(ctx, queue.Change{Seq: seq, Remove: true})
		if errors.Is(err, queue.ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
		gone = append(gone, seq)
	}
	if len(gone) > 0 {
		s.do(ctx, func() {
			for _, seq := range gone {
				delete(s.held, seq)
			}
			s.unindex(gone)
		})
	}
	return n, nil
}

// Retry makes the deferred recipients of messages due now. It never
// bypasses a budget, a suspension or a connection limit: the recipients
// simply join their operator's ready queue.
func (s *Scheduler) Retry(ctx context.Context, seqs []uint64) (int, error) {
	now := s.clock.Now()
	n, touched, err := s.applyEach(ctx, seqs, func(m *queue.Message) error {
		changed := false
		for i := range m.Recipients {
			r := &m.Recipients[i]
			if r.State.IsPending() && r.NextAttempt.After(now) {
				r.NextAttempt = now
				changed = true
			}
		}
		if !changed {
			return queue.ErrSkipChange
		}
		return nil
	})
	if len(touched) > 0 {
		s.do(ctx, func() { s.makeDue(touched, now) })
	}
	return n, err
}

// Bounce fails every pending recipient of messages and sends the sender a
// failure report, as Postfix's postsuper -r does not but an operator often
// must: the mail will not go out and the sender should know.
func (s *Scheduler) Bounce(ctx context.Context, seqs []uint64) (int, error) {
	n := 0
	var gone []uint64
	for _, seq := range seqs {
		ok, err := s.bounceOne(ctx, seq)
		if err != nil {
			return n, err
		}
		if ok {
			n++
			gone = append(gone, seq)
		}
	}
	if len(gone) > 0 {
		s.do(ctx, func() { s.unindex(gone) })
	}
	return n, nil
}

func (s *Scheduler) bounceOne(ctx context.Context, seq uint64) (bool, error) {
	m, body, err := s.store.Load(seq)
	if errors.Is(err, queue.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := s.clock.Now()
	var ds []decision
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if !r.State.IsPending() {
			continue
		}
		ds = append(ds, decision{idx: i, state: queue.StateFailed, attempts: r.Attempts, status: "bounced",
			reply: queue.Reply{Enhanced: "5.0.0", Text: "message returned by the relay administrator" + lastReplySuffix(r.LastReply)}})
	}
	if len(ds) == 0 {
		return false, nil
	}
	var adds []queue.NewMessage
	if b := s.bounce(m, ds, body, now); b != nil {
		adds = append(adds, *b)
	}
	_, err = s.store.Apply(ctx, queue.Change{Seq: seq, Add: adds,
		Update: func(qm *queue.Message) error { applyDecisions(qm, ds, now); return nil }})
	if errors.Is(err, queue.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	j := &job{op: &opState{key: "admin", label: "admin"}, started: now}
	for _, d := range ds {
		s.logDelivery(m, &m.Recipients[d.idx], j, d, now)
	}
	for _, a := range adds {
		s.Add(a.Msg)
	}
	return true, nil
}

func lastReplySuffix(r queue.Reply) string {
	if d := diagnostic(r, false); d != "" {
		return "; last reply: " + d
	}
	return ""
}

// applyEach applies update to each message, counting those changed. It
// returns the sequences it changed.
func (s *Scheduler) applyEach(ctx context.Context, seqs []uint64, update func(*queue.Message) error) (int, []uint64, error) {
	var changed []uint64
	for _, seq := range seqs {
		skipped := false
		_, err := s.store.Apply(ctx, queue.Change{Seq: seq, Update: func(m *queue.Message) error {
			err := update(m)
			skipped = errors.Is(err, queue.ErrSkipChange)
			return err
		}})
		if errors.Is(err, queue.ErrNotFound) {
			continue
		}
		if err != nil {
			return len(changed), changed, err
		}
		if !skipped {
			changed = append(changed, seq)
		}
	}
	return len(changed), changed, nil
}

// unindex drops every index entry of the given messages (run on the loop).
func (s *Scheduler) unindex(seqs []uint64) {
	set := make(map[uint64]bool, len(seqs))
	for _, seq := range seqs {
		set[seq] = true
	}
	keep := func(e entry) bool { return !set[e.seq] }
	for _, op := range s.pol.ops {
		for _, p := range op.ready.filter(keep) {
			s.count(p.prio, p.entry, -1)
		}
	}
	for _, w := range s.waiting.filter(func(w waitEntry) bool { return keep(w.entry) }) {
		s.count(w.prio, w.entry, -1)
	}
	for _, dc := range s.classes {
		out := dc.pending[:0]
		for _, p := range dc.pending {
			if keep(p.entry) {
				out = append(out, p)
			} else {
				s.count(p.prio, p.entry, -1)
			}
		}
		dc.pending = out
	}
}

// makeDue moves the waiting entries of the given messages to the ready
// queues (run on the loop).
func (s *Scheduler) makeDue(seqs []uint64, now time.Time) {
	set := make(map[uint64]bool, len(seqs))
	for _, seq := range seqs {
		set[seq] = true
	}
	for _, w := range s.waiting.filter(func(w waitEntry) bool { return !set[w.seq] }) {
		s.makeReady(w.prio, w.entry, now)
	}
}

// Suspend stops new connections to an operator until the time given (a
// manual sluice operator suspend). Queued mail waits; it is not an attempt.
func (s *Scheduler) Suspend(ctx context.Context, name string, until time.Time, reason string) error {
	var err error
	doErr := s.do(ctx, func() {
		op := s.namedOp(name)
		if op == nil {
			err = fmt.Errorf("%w: %q", ErrUnknownOperator, name)
			return
		}
		op.suspendedUntil, op.suspendReason = until, reason
		s.log.Info("operator suspended", "operator", op.key, "until", until.UTC().Format(time.RFC3339), "reason", reason)
		s.events.OperatorState(op.label, true)
		s.markDirty(op)
	})
	if doErr != nil {
		return doErr
	}
	return err
}

// Resume lifts a suspension and any throttling at once.
func (s *Scheduler) Resume(ctx context.Context, name string) error {
	var err error
	doErr := s.do(ctx, func() {
		op := s.namedOp(name)
		if op == nil {
			err = fmt.Errorf("%w: %q", ErrUnknownOperator, name)
			return
		}
		op.suspendedUntil, op.suspendReason = time.Time{}, ""
		op.throttle = throttleState{}
		s.log.Info("operator resumed", "operator", op.key)
		s.events.OperatorState(op.label, false)
		s.markDirty(op)
	})
	if doErr != nil {
		return doErr
	}
	return err
}

// namedOp finds the state of an operator by its key ("bigmail",
// "route:…", "default:example.org"), creating it for an operator the
// configuration defines.
func (s *Scheduler) namedOp(name string) *opState {
	if op, ok := s.pol.ops[name]; ok {
		return op
	}
	for i := range s.pol.cfg.Operators {
		if s.pol.cfg.Operators[i].Name == name {
			return s.pol.operator(&s.pol.cfg.Operators[i])
		}
	}
	return nil
}

// Reconfigure switches to a new configuration without losing state: the
// usage of the current windows (it lives in the budget store), suspensions
// and connections stay; limits, operators and routes change at once, and
// every ready recipient is classified again.
func (s *Scheduler) Reconfigure(ctx context.Context, cfg *config.Config) error {
	return s.do(ctx, func() {
		old := s.pol
		s.pol = newPolicies(cfg)
		s.cfg.Store(cfg)
		for key, op := range old.ops {
			if l, kind, ok := limitsFor(cfg, key); ok {
				op.setLimits(l)
				op.kind = kind
				op.window = Window{} // re-read: the window length may have changed
				s.pol.ops[key] = op
			}
		}
		var ready []prioEntry
		for _, op := range old.ops {
			ready = append(ready, op.ready.filter(func(entry) bool { return false })...)
		}
		for _, dc := range s.classes {
			ready = append(ready, dc.pending...)
		}
		s.classes = make(map[uint32]*domainClass)
		now := s.clock.Now()
		for _, p := range ready {
			s.makeReady(p.prio, p.entry, now)
		}
		s.recount(cfg)
		s.log.Info("configuration reloaded", "operators", len(cfg.Operators), "routes", len(cfg.Routes), "requeued", len(ready))
	})
}

// limitsFor finds the limits that an operator key stands for in cfg.
func limitsFor(cfg *config.Config, key string) (config.Limits, opKind, bool) {
	for i := range cfg.Operators {
		if cfg.Operators[i].Name == key {
			return cfg.Operators[i].Limits, kindOperator, true
		}
	}
	for i := range cfg.Routes {
		if "route:"+joinDomains(cfg.Routes[i].Domains) == key {
			return cfg.Routes[i].Limits, kindRoute, true
		}
	}
	if len(key) > len("default:") && key[:len("default:")] == "default:" {
		return cfg.Default, kindDefault, true
	}
	return config.Limits{}, 0, false
}
