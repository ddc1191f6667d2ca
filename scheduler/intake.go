package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/queue"
)

// classLookupTTL is how long an operator found through mx_patterns is
// trusted before the domain's MX hosts are looked at again. The resolver
// caches answers within their DNS TTL, so looking again is cheap and
// follows the domain when it moves.
const classLookupTTL = time.Minute

// classRetry is how soon a domain whose MX lookup failed temporarily is
// looked up again. Its recipients wait meanwhile; that is not an attempt.
const classRetry = time.Minute

// rebuild loads every pending recipient from the store into the index.
func (s *Scheduler) rebuild() error {
	now := s.clock.Now()
	start := time.Now()
	n := 0
	err := s.store.Scan(func(m *queue.Message) error {
		n += s.addMessage(m, now)
		return nil
	})
	if err != nil {
		return fmt.Errorf("scheduler: load queue: %w", err)
	}
	s.log.Info("queue loaded", "recipients", n, "elapsed", time.Since(start).Round(time.Millisecond).String())
	return nil
}

func (s *Scheduler) drainIncoming(now time.Time) {
	s.inMu.Lock()
	in := s.incoming
	s.incoming = nil
	s.inMu.Unlock()
	for _, m := range in {
		s.addMessage(m, now)
	}
}

// addMessage indexes the pending recipients of m, unless it is held. It
// returns how many it indexed.
func (s *Scheduler) addMessage(m *queue.Message, now time.Time) int {
	if m.Held {
		return 0
	}
	s.watchDelay(m)
	n := 0
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if !r.State.IsPending() {
			continue
		}
		e := entry{seq: m.Seq, arrival: m.Arrival.UnixNano(), idx: uint32(i), dom: s.doms.id(domainOf(r.Addr))}
		s.count(m.PriorityMilli, e, +1)
		s.schedule(m.PriorityMilli, e, r.NextAttempt, now)
		n++
	}
	return n
}

// schedule puts a pending recipient where it belongs at now: the waiting
// heap if its next attempt lies ahead, else its operator's ready queue.
func (s *Scheduler) schedule(prio uint32, e entry, next, now time.Time) {
	if next.After(now) {
		s.waiting.push(waitEntry{at: next.UnixNano(), prio: prio, entry: e})
		return
	}
	s.makeReady(prio, e, now)
}

// promoteDue moves recipients whose retry time has come to the ready
// queues.
func (s *Scheduler) promoteDue(now time.Time) {
	limit := now.UnixNano()
	for len(s.waiting) > 0 && s.waiting[0].at <= limit {
		w := s.waiting.pop()
		s.makeReady(w.prio, w.entry, now)
	}
}

// makeReady files e under its domain's operator, or parks it while the
// operator is being looked up.
func (s *Scheduler) makeReady(prio uint32, e entry, now time.Time) {
	dc := s.classOf(e.dom, now)
	if dc.op == nil {
		dc.pending = append(dc.pending, prioEntry{prio: prio, entry: e})
		return
	}
	dc.op.ready.push(prio, e)
	s.markDirty(dc.op)
}

// classOf returns what is known of a domain's operator, starting an MX
// lookup when the configuration alone cannot tell.
func (s *Scheduler) classOf(dom uint32, now time.Time) *domainClass {
	dc := s.classes[dom]
	if dc != nil && (dc.op == nil || dc.expires.IsZero() || now.Before(dc.expires)) {
		return dc
	}
	if dc == nil {
		dc = &domainClass{}
		s.classes[dom] = dc
	}
	name := s.doms.name(dom)
	op, needMX := s.pol.byDomainList(name)
	switch {
	case op != nil:
		dc.op, dc.expires = op, time.Time{}
	case !needMX || s.opts.MX == nil:
		dc.op, dc.expires = s.pol.fallback(name), time.Time{}
	default:
		dc.op = nil
		s.startLookup(dom, dc)
	}
	return dc
}

// startLookup resolves the MX hosts of a domain in the background and
// hands the answer to the loop.
func (s *Scheduler) startLookup(dom uint32, dc *domainClass) {
	if dc.lookingUp {
		return
	}
	dc.lookingUp = true
	name := s.doms.name(dom)
	cfg := s.pol.cfg
	s.background(func() {
		ctx, cancel := context.WithTimeout(s.jobCtx, 30*time.Second)
		defer cancel()
		mxs, err := s.opts.MX.LookupMX(ctx, name)
		var found *config.Operator
		if err == nil {
			for _, mx := range mxs {
				if o, ok := cfg.OperatorForMX(mx.Host); ok {
					found = o
					break
				}
			}
		}
		temporary := err != nil && isTemporary(err)
		s.post(func() { s.finishLookup(dom, cfg, found, temporary, err) })
	})
}

func (s *Scheduler) finishLookup(dom uint32, cfg *config.Config, found *config.Operator, temporary bool, err error) {
	dc := s.classes[dom]
	if dc == nil {
		return
	}
	dc.lookingUp = false
	now := s.clock.Now()
	name := s.doms.name(dom)
	if cfg != s.pol.cfg {
		// Reloaded meanwhile: decide again under the new configuration.
		dc.op, dc.expires = nil, time.Time{}
		s.startLookup(dom, dc)
		return
	}
	switch {
	case found != nil:
		dc.op = s.pol.operator(found)
	case temporary:
		// Cannot tell whether the domain is one of an operator's: sending
		// it unbudgeted could blow that operator's quota, so wait.
		s.log.Info("operator lookup deferred", "domain", name, "err", err)
		for _, p := range dc.pending {
			s.waiting.push(waitEntry{at: now.Add(classRetry).UnixNano(), prio: p.prio, entry: p.entry})
		}
		dc.pending = nil
		delete(s.classes, dom)
		return
	default:
		dc.op = s.pol.fallback(name)
	}
	dc.expires = now.Add(classLookupTTL)
	for _, p := range dc.pending {
		dc.op.ready.push(p.prio, p.entry)
	}
	dc.pending = nil
	s.markDirty(dc.op)
}

func isTemporary(err error) bool {
	var t interface{ IsTemporary() bool }
	if errors.As(err, &t) {
		return t.IsTemporary()
	}
	return true
}
