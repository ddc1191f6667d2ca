package redisbudget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Budget is a budget store as Fallback uses it: Store, and the queue's
// local bbolt store through the scheduler's adapter. The scheduler declares
// the same interface; Fallback implements it too.
type Budget interface {
	// Reserve grants up to n units of costMilli each in the window
	// [start, start+length) of operator op, as many as fit under
	// quotaMilli, and returns how many.
	Reserve(ctx context.Context, op string, start time.Time, length time.Duration, quotaMilli, costMilli int64, n int) (int, error)
	Refund(ctx context.Context, op string, start time.Time, milli int64) error
	Used(ctx context.Context, op string, start time.Time) (int64, error)
}

// Outage policies, the values of [quota_store] on_store_error.
const (
	PolicyPause      = "pause"
	PolicyLocalShare = "local_share"
)

// DefaultProbeInterval is how often, during an outage, Fallback tries the
// primary again when FallbackOptions.ProbeInterval is zero.
const DefaultProbeInterval = time.Second

// localGrantKeep is how long after its window ended Fallback remembers
// what it granted locally, so that late refunds still go back there.
const localGrantKeep = time.Hour

// errWaitingToProbe is returned while the primary is down and the next
// probe is not due yet.
var errWaitingToProbe = fmt.Errorf("%w: waiting before trying redis again", ErrUnavailable)

// FallbackOptions configure a Fallback.
type FallbackOptions struct {
	// Policy is PolicyPause or PolicyLocalShare. Anything else, and
	// local_share without a local store or with ExpectedRelays below one,
	// is treated as pause, the choice that can never overspend, with a
	// Warn line at construction.
	Policy string
	// ExpectedRelays is how many relays share the budget; during an
	// outage each may spend 1/ExpectedRelays of what is left.
	ExpectedRelays int
	// Logger receives the outage lines; nil discards them.
	Logger *slog.Logger
	// OnOutage, if set, is called with true when an outage starts and
	// false when it ends, in order, with the Fallback's lock held: keep it
	// short (set a metric) and do not call the Fallback from it.
	OnOutage func(down bool)
	// ProbeInterval spaces the attempts to reach the primary while it is
	// down (default DefaultProbeInterval; negative: try on every call).
	// Calls in between fail, or use the local share, at once instead of
	// each waiting out the primary's timeout.
	ProbeInterval time.Duration
}

// Fallback is a Budget that uses a primary store (Redis) and applies the
// outage policy when the primary fails. A failure is any primary error
// other than ErrInvalidArgument while the caller's context is still live.
// One Warn line marks the start of an outage and one Info line its end,
// however many calls fail in between. While the primary is down, it is
// tried again at most once per probe interval. Used always reads the
// primary and fails during an outage.
//
// Under local_share, during an outage Reserve grants from the local store
// against (quota - U) / ExpectedRelays for the window, where U is the
// window's total as the primary last reported it to this relay (0 if it
// never did, which gives the plain quota / ExpectedRelays). Relays cut off
// together thus share what was left; a relay cut off alone may add its
// share to what the others still spend through Redis.
//
// Fallback remembers, in memory and per operator and window, the
// milli-units the local store granted and the primary has not counted.
// Before the primary serves anything after an outage, those are charged to
// it (when it is a *Store), so the shared total includes what was sent
// during the outage and the window cannot be spent twice (up to calls in
// flight at the moment Redis returns). The local store keeps counting them
// too, which only makes a second outage in the same window stricter. A
// refund goes to the local store first, up to what it granted in that
// window and has not charged to the primary, and the rest to the primary:
// a refund usually follows its reservation closely, and a misrouted one
// can only shift units between the two totals, never free units nobody
// reserved. A restart forgets uncharged local grants.
//
// A primary call that times out may still have run on Redis; what it
// charged there is then lost to the window, erring on the side of sending
// less.
type Fallback struct {
	primary    Budget
	local      Budget
	policy     string
	relays     int64
	log        *slog.Logger
	onOutage   func(down bool)
	probeEvery time.Duration
	now        func() time.Time // real time, only to space probes

	mu        sync.Mutex
	down      bool
	downSince time.Time
	lastProbe time.Time
	grants    *windowTable // granted locally, not yet charged to the primary
	dirty     bool         // grants holds units to charge to the primary
	canCharge bool         // the primary implements charger

	chargeMu sync.Mutex // one goroutine charges at a time, others wait
}

// usageReporter and charger are implemented by *Store; a primary without
// them still works, with plain quota/ExpectedRelays shares and no charging
// after an outage.
type usageReporter interface {
	lastUsed(op string, start time.Time) (int64, bool)
}

type charger interface {
	charge(ctx context.Context, op string, start time.Time, length time.Duration, milli int64) error
}

// WithFallback wraps primary with the outage policy of o; local is the
// relay's own store, used only by local_share.
func WithFallback(primary, local Budget, o FallbackOptions) *Fallback {
	f := &Fallback{
		primary:    primary,
		local:      local,
		policy:     o.Policy,
		relays:     int64(o.ExpectedRelays),
		log:        o.Logger,
		onOutage:   o.OnOutage,
		probeEvery: o.ProbeInterval,
		now:        time.Now,
		grants:     newWindowTable(localGrantKeep),
	}
	_, f.canCharge = primary.(charger)
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.probeEvery == 0 {
		f.probeEvery = DefaultProbeInterval
	}
	switch {
	case o.Policy == PolicyPause:
	case o.Policy == PolicyLocalShare && local != nil && o.ExpectedRelays >= 1:
	default:
		f.log.Warn("redis budget outage policy unusable; pausing during outages instead",
			"policy", o.Policy, "expected_relays", o.ExpectedRelays, "has_local_store", local != nil)
		f.policy = PolicyPause
	}
	return f
}

// Reserve reserves from the primary; when it fails, it applies the policy.
func (f *Fallback) Reserve(ctx context.Context, op string, start time.Time, length time.Duration, quotaMilli, costMilli int64, n int) (int, error) {
	if err := checkReserve(op, length, quotaMilli, costMilli, n); err != nil {
		return 0, fmt.Errorf("redisbudget: reserve: %w", err)
	}
	var k int
	outage, err := f.viaPrimary(ctx, func() error {
		var err error
		k, err = f.primary.Reserve(ctx, op, start, length, quotaMilli, costMilli, n)
		return err
	})
	switch {
	case err == nil:
		return k, nil
	case !outage:
		return 0, err
	case f.policy != PolicyLocalShare:
		return 0, fmt.Errorf("redisbudget: reserve for %s paused: %w", op, asUnavailable(err))
	}
	return f.reserveLocal(ctx, op, start, length, quotaMilli, costMilli, n)
}

// reserveLocal grants from the local store against this relay's share of
// what the window had left.
func (f *Fallback) reserveLocal(ctx context.Context, op string, start time.Time, length time.Duration, quotaMilli, costMilli int64, n int) (int, error) {
	share := f.localShare(op, start, quotaMilli)
	k, err := f.local.Reserve(ctx, op, start, length, share, costMilli, n)
	if err != nil {
		return 0, fmt.Errorf("redisbudget: reserve for %s from the local share: %w", op, err)
	}
	if k > 0 {
		f.mu.Lock()
		e, ok := f.grants.get(op, start)
		if !ok {
			e.end = start.Add(length)
		}
		e.milli += int64(k) * costMilli
		f.grants.put(op, start, e)
		f.dirty = f.canCharge
		f.mu.Unlock()
	}
	f.log.Debug("budget reserved from the local share", "operator", op, "window", start.Unix(),
		"granted", k, "cost_milli", costMilli, "share_milli", share)
	return k, nil
}

// localShare is (quota - U) / ExpectedRelays, U being the window's total
// the primary last reported, or 0 if unknown. Integer division rounds
// down, so the shares never add up to more than what was left.
func (f *Fallback) localShare(op string, start time.Time, quotaMilli int64) int64 {
	left := quotaMilli
	if r, ok := f.primary.(usageReporter); ok {
		if used, seen := r.lastUsed(op, start); seen {
			left -= used
		}
	}
	if left <= 0 {
		return 0
	}
	return left / f.relays
}

// Refund gives milli back: first to the local store, up to what it granted
// in this window and has not charged to the primary, then to the primary.
// When the primary cannot take its part, the units stay spent and the
// error wraps ErrUnavailable.
func (f *Fallback) Refund(ctx context.Context, op string, start time.Time, milli int64) error {
	if milli <= 0 {
		return nil
	}
	fromLocal := f.takeLocal(op, start, milli)
	if fromLocal > 0 {
		if err := f.local.Refund(ctx, op, start, fromLocal); err != nil {
			f.putBackLocal(op, start, fromLocal)
			return fmt.Errorf("redisbudget: refund for %s to the local store: %w", op, err)
		}
	}
	rest := milli - fromLocal
	if rest == 0 {
		return nil
	}
	outage, err := f.viaPrimary(ctx, func() error { return f.primary.Refund(ctx, op, start, rest) })
	if outage {
		return fmt.Errorf("redisbudget: refund for %s: %w", op, asUnavailable(err))
	}
	return err
}

// takeLocal takes up to milli from the local grants of op's window.
func (f *Fallback) takeLocal(op string, start time.Time, milli int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.grants.get(op, start)
	if !ok || e.milli <= 0 {
		return 0
	}
	taken := min(milli, e.milli)
	e.milli -= taken
	f.grants.put(op, start, e)
	return taken
}

// putBackLocal undoes takeLocal after the local store refused the refund.
func (f *Fallback) putBackLocal(op string, start time.Time, milli int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.grants.get(op, start)
	if !ok {
		e.end = start
	}
	e.milli += milli
	f.grants.put(op, start, e)
}

// Used reads the primary; while it is down the error wraps ErrUnavailable
// (the local store only knows this relay's part).
func (f *Fallback) Used(ctx context.Context, op string, start time.Time) (int64, error) {
	var used int64
	outage, err := f.viaPrimary(ctx, func() error {
		var err error
		used, err = f.primary.Used(ctx, op, start)
		return err
	})
	if outage {
		return 0, fmt.Errorf("redisbudget: usage of %s: %w", op, asUnavailable(err))
	}
	return used, err
}

// Down reports whether the primary is in an outage.
func (f *Fallback) Down() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down
}

// asUnavailable makes sure err wraps ErrUnavailable.
func asUnavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
