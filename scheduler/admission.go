package scheduler

import (
	"fmt"
	"sync"

	"github.com/sluice-mta/sluice/config"
)

// admission backs max_backlog_windows: it counts, per operator, the cost of
// every pending recipient at the operator's listed domains, so that the
// SMTP side can refuse more mail for an operator that already has more
// queued than it can send in that many windows. Postfix then keeps the
// mail, instead of sluice accepting mail it cannot send in time.
//
// Domains that belong to an operator only through mx_patterns are not
// counted: deciding that needs a DNS lookup, which RCPT must not wait for.
type admission struct {
	mu      sync.RWMutex
	cfg     *config.Config
	backlog map[string]int64 // operator name -> pending milli-units
	keys    map[uint32]string
	// verpBases are the envelope_from addresses of policies with verp =
	// true: the SMTP side accepts bounces to their VERP forms from anyone.
	verpBases []string
}

// BacklogError is why a recipient is refused at RCPT.
type BacklogError struct {
	Operator       string
	Windows        int
	BacklogMilli   int64
	PerWindowMilli int64
}

func (e *BacklogError) Error() string {
	return fmt.Sprintf("operator %s already has %s units queued, more than %d windows of its quota; try again later",
		e.Operator, formatUnits(e.BacklogMilli), e.Windows)
}

// Admit decides whether a new recipient may be accepted now. It is safe for
// concurrent use from SMTP sessions and never waits for the loop.
func (s *Scheduler) Admit(rcpt string) error {
	a := &s.adm
	a.mu.RLock()
	defer a.mu.RUnlock()
	o, ok := a.cfg.OperatorFor(domainOf(rcpt))
	if !ok || o.MaxBacklogWindows <= 0 || o.Quota <= 0 {
		return nil
	}
	per := int64(o.Quota) * UnitMilli
	if b := a.backlog[o.Name]; b >= int64(o.MaxBacklogWindows)*per {
		return &BacklogError{Operator: o.Name, Windows: o.MaxBacklogWindows, BacklogMilli: b, PerWindowMilli: per}
	}
	return nil
}

// keyOf returns the listed operator of an interned domain, or "".
func (a *admission) keyOf(d *domains, dom uint32) string {
	if k, ok := a.keys[dom]; ok {
		return k
	}
	k := ""
	if o, ok := a.cfg.OperatorFor(d.name(dom)); ok && o.MaxBacklogWindows > 0 {
		k = o.Name
	}
	a.keys[dom] = k
	return k
}

// count adds (sign +1) or removes (-1) one pending recipient.
func (s *Scheduler) count(prio uint32, e entry, sign int64) {
	a := &s.adm
	a.mu.Lock()
	if k := a.keyOf(&s.doms, e.dom); k != "" {
		a.backlog[k] += sign * CostMilli(prio)
		if a.backlog[k] <= 0 {
			delete(a.backlog, k)
		}
	}
	a.mu.Unlock()
}

// recount rebuilds the counts from the index, after a reload.
func (s *Scheduler) recount(cfg *config.Config) {
	a := &s.adm
	a.mu.Lock()
	a.cfg = cfg
	a.verpBases = verpBases(cfg)
	a.backlog = make(map[string]int64)
	a.keys = make(map[uint32]string)
	a.mu.Unlock()
	s.eachPending(func(prio uint32, e entry) { s.count(prio, e, +1) })
}

// eachPending calls fn for every pending recipient the loop knows: ready,
// waiting, parked for an operator lookup, or in flight.
func (s *Scheduler) eachPending(fn func(prio uint32, e entry)) {
	for _, op := range s.pol.ops {
		for _, p := range op.ready.prios {
			for _, e := range *op.ready.classes[p] {
				fn(p, e)
			}
		}
	}
	for _, w := range s.waiting {
		fn(w.prio, w.entry)
	}
	for _, dc := range s.classes {
		for _, p := range dc.pending {
			fn(p.prio, p.entry)
		}
	}
	for j := range s.running {
		for _, e := range j.entries {
			fn(j.prio, e)
		}
	}
}

// verpBases lists the envelope_from of every policy with verp = true.
func verpBases(cfg *config.Config) []string {
	var out []string
	add := func(l config.Limits) {
		if l.VERP && l.EnvelopeFrom != "" {
			out = append(out, l.EnvelopeFrom)
		}
	}
	for _, o := range cfg.Operators {
		add(o.Limits)
	}
	for _, r := range cfg.Routes {
		add(r.Limits)
	}
	add(cfg.Default)
	return out
}
