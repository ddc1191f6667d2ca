package redisbudget

import (
	"context"
	"errors"
	"time"
)

// viaPrimary runs fn, one call to the primary, when the outage state
// allows it, after charging the primary with any pending local grants so
// that fn already sees them. It starts or ends an outage by the result.
// outage reports that err means the primary is unavailable (as opposed to
// the caller's mistake or the caller giving up); err is nil when fn ran and
// succeeded.
func (f *Fallback) viaPrimary(ctx context.Context, fn func() error) (outage bool, err error) {
	if !f.admit() {
		return true, errWaitingToProbe
	}
	err = f.chargePending(ctx)
	if err == nil {
		err = fn()
	}
	if err == nil {
		f.primaryOK()
		return false, nil
	}
	if !f.isOutage(ctx, err) {
		return false, err
	}
	f.primaryFailed(err)
	return true, err
}

// admit reports whether a call may try the primary. While it is down, one
// call per probe interval may; the others go straight to the policy, so a
// silent Redis costs one timeout per interval rather than one per call.
func (f *Fallback) admit() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down || f.probeEvery < 0 {
		return true
	}
	now := f.now()
	if now.Sub(f.lastProbe) < f.probeEvery {
		return false
	}
	f.lastProbe = now
	return true
}

// isOutage tells a primary failure from the caller's mistake or the
// caller giving up: neither says anything about Redis.
func (f *Fallback) isOutage(ctx context.Context, err error) bool {
	return !errors.Is(err, ErrInvalidArgument) && ctx.Err() == nil
}

// primaryFailed starts an outage, or continues one quietly.
func (f *Fallback) primaryFailed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	f.lastProbe = now
	if f.down {
		f.log.Debug("redis budget store still unavailable", "error", err)
		return
	}
	f.down, f.downSince = true, now
	f.log.Warn("redis budget store unavailable", "policy", f.policy, "error", err)
	if f.onOutage != nil {
		f.onOutage(true)
	}
}

// primaryOK ends an outage, if one was on.
func (f *Fallback) primaryOK() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.down {
		return
	}
	f.down = false
	f.log.Info("redis budget store available again", "policy", f.policy,
		"outage", f.now().Sub(f.downSince).Round(time.Millisecond))
	if f.onOutage != nil {
		f.onOutage(false)
	}
}

// pendingGrant is a window's uncharged local grants as chargePending found
// them.
type pendingGrant struct {
	op    string
	start time.Time
	entry windowEntry
}

// chargePending adds every window's uncharged local grants to the primary,
// one window at a time, before the primary serves anything else: a
// reservation that ran first would not see them and could grant the same
// units twice. Other callers wait while one charges. On failure the rest
// stays pending for the next call.
func (f *Fallback) chargePending(ctx context.Context) error {
	if !f.isDirty() {
		return nil
	}
	f.chargeMu.Lock()
	defer f.chargeMu.Unlock()
	pending := f.takePending()
	c, _ := f.primary.(charger) // dirty implies canCharge
	for _, p := range pending {
		err := c.charge(ctx, p.op, p.start, p.entry.end.Sub(p.start), p.entry.milli)
		if errors.Is(err, ErrInvalidArgument) {
			// Cannot happen with grants Reserve accepted; dropping the
			// entry beats retrying it forever.
			f.log.Warn("dropping local grants redis refused", "operator", p.op, "error", err)
			f.chargedLocal(p)
			continue
		}
		if err != nil {
			f.markDirty()
			return err
		}
		f.primaryOK() // before the line below, so the log reads in order
		f.chargedLocal(p)
		f.log.Info("charged redis with budget granted locally during the outage",
			"operator", p.op, "window", p.start.Unix(), "milli", p.entry.milli)
	}
	return nil
}

func (f *Fallback) isDirty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dirty
}

// takePending lists the windows with uncharged local grants and clears the
// dirty mark; grants added from now on set it again.
func (f *Fallback) takePending() []pendingGrant {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirty = false
	var out []pendingGrant
	for k, e := range f.grants.m {
		if e.milli > 0 {
			out = append(out, pendingGrant{op: k.op, start: time.Unix(k.start, 0), entry: e})
		}
	}
	return out
}

// markDirty marks grants as still to be charged after a failure.
func (f *Fallback) markDirty() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dirty = true
}

// chargedLocal records that p's units are now counted by the primary, so
// refunds for them go there. A refund to the local store that raced with
// the charge leaves the primary over-charged by that much: it errs on the
// side of sending less.
func (f *Fallback) chargedLocal(p pendingGrant) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.grants.get(p.op, p.start); ok {
		e.milli = max(0, e.milli-p.entry.milli)
		f.grants.put(p.op, p.start, e)
	}
}
