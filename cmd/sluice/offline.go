package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/queue"
	"github.com/sluice-mta/sluice/scheduler"
)

// offline answers the reading verbs, and delete, hold and release, from the
// queue file itself when no daemon runs. What only the running scheduler
// knows is absent: no message is active, domains are classified by the
// configuration alone (mx_patterns need the daemon's MX lookups), and the
// budget is read from the local store.
type offline struct {
	cfg   *config.Config
	store *queue.Store
	now   time.Time
}

// offlineLockTimeout is how long the CLI waits for the queue file's lock:
// a daemon that holds it should have answered on the socket, so a short
// wait only covers a daemon starting or stopping.
const offlineLockTimeout = 500 * time.Millisecond

// openOffline opens the queue file, read-only unless write is set. It
// never creates a queue file.
func openOffline(cfg *config.Config, write bool) (*offline, error) {
	path := filepath.Join(cfg.DataDir, "queue.db")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no queue file at %s: the daemon has not run with this data_dir yet", path)
	}
	st, err := queue.Open(queue.Options{Path: path, ReadOnly: !write, LockTimeout: offlineLockTimeout})
	if err != nil {
		return nil, err
	}
	return &offline{cfg: cfg, store: st, now: time.Now()}, nil
}

func (o *offline) Close() error { return o.store.Close() }

func (o *offline) view() (*queueView, error) {
	snap, err := o.snapshot()
	if err != nil {
		return nil, err
	}
	return newQueueView(o.cfg, snap), nil
}

func (o *offline) List(_ context.Context, f admin.ListFilter) ([]admin.Message, error) {
	v, err := o.view()
	if err != nil {
		return nil, err
	}
	return v.list(o.store, f)
}

func (o *offline) Show(_ context.Context, id string) (*admin.MessageDetail, error) {
	v, err := o.view()
	if err != nil {
		return nil, err
	}
	return v.show(o.store, id)
}

func (o *offline) Raw(_ context.Context, id string) ([]byte, error) { return rawMessage(o.store, id) }

func (o *offline) Quota(context.Context) ([]admin.OperatorStatus, error) {
	snap, err := o.snapshot()
	if err != nil {
		return nil, err
	}
	backend := o.cfg.QuotaStore.Backend
	if backend == config.BackendRedis {
		backend = "redis (not read: the daemon is not running)"
	}
	return operatorStatuses(snap, backend), nil
}

// errNeedsDaemon is the answer to retry and bounce without a daemon: both
// must go through the scheduler (budget, bounce reports).
var errNeedsDaemon = errors.New("needs the running daemon")

// Act deletes, holds or releases messages in the queue file.
func (o *offline) Act(ctx context.Context, a admin.Action, req admin.ActionRequest) (*admin.ActionResult, error) {
	var update func(m *queue.Message) error
	remove := false
	switch a {
	case admin.ActionDelete:
		remove = true
	case admin.ActionHold, admin.ActionRelease:
		held := a == admin.ActionHold
		update = func(m *queue.Message) error {
			if m.Held == held {
				return queue.ErrSkipChange
			}
			m.Held = held
			return nil
		}
	default:
		return nil, errNeedsDaemon
	}
	seqs, unknown, err := resolveIDs(o.store, req)
	if err != nil {
		return nil, err
	}
	res := &admin.ActionResult{Action: a, Unknown: unknown}
	for _, seq := range seqs {
		skipped := false
		_, err := o.store.Apply(ctx, queue.Change{Seq: seq, Remove: remove, Update: func(m *queue.Message) error {
			if update == nil {
				return nil
			}
			err := update(m)
			skipped = errors.Is(err, queue.ErrSkipChange)
			return err
		}})
		if errors.Is(err, queue.ErrNotFound) {
			continue
		}
		if err != nil {
			return res, err
		}
		if !skipped {
			res.Count++
		}
	}
	return res, nil
}

// snapshot builds what the scheduler would report from the configuration
// and the queue file: per operator key, the pending recipients (ready or
// waiting for a retry) and this window's usage from the local store.
func (o *offline) snapshot() (*scheduler.Snapshot, error) {
	snap := &scheduler.Snapshot{Now: o.now, Active: map[uint64]bool{}, Domains: map[string]string{}}
	ops := map[string]*scheduler.OperatorStatus{}
	for i := range o.cfg.Operators {
		op := &o.cfg.Operators[i]
		ops[op.Name] = o.status(op.Name, op.Name, op.Limits)
	}
	err := o.store.Scan(func(m *queue.Message) error {
		if m.Held {
			return nil // not scheduled, as in the daemon
		}
		for i := range m.Recipients {
			r := &m.Recipients[i]
			if !r.State.IsPending() {
				continue
			}
			st := o.statusFor(ops, domainOf(r.Addr))
			if r.NextAttempt.After(o.now) {
				st.Waiting++
				continue
			}
			st.Queued++
			st.QueuedByPriority[m.PriorityMilli]++
			st.QueuedCostMilli += scheduler.CostMilli(m.PriorityMilli)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		st := ops[k]
		if err := o.usage(st); err != nil {
			return nil, err
		}
		snap.Operators = append(snap.Operators, *st)
	}
	return snap, nil
}

// statusFor returns the line of the operator key a domain counts under,
// creating it from the configuration's limits.
func (o *offline) statusFor(ops map[string]*scheduler.OperatorStatus, dom string) *scheduler.OperatorStatus {
	key := operatorKey(o.cfg, dom)
	if st := ops[key]; st != nil {
		return st
	}
	label, limits := "default", o.cfg.Default
	if name, ok := strings.CutPrefix(key, "route:"); ok {
		label = key
		for i := range o.cfg.Routes {
			if strings.Join(o.cfg.Routes[i].Domains, ",") == name {
				limits = o.cfg.Routes[i].Limits
			}
		}
	}
	st := o.status(key, label, limits)
	ops[key] = st
	return st
}

func (o *offline) status(key, label string, l config.Limits) *scheduler.OperatorStatus {
	st := &scheduler.OperatorStatus{Key: key, Label: label, Quota: l.Quota, Window: l.Window,
		QueuedByPriority: map[uint32]int{}}
	if l.Quota > 0 && l.Window > 0 {
		w := scheduler.WindowAt(o.now, l.Window, l.Location)
		st.WindowStart, st.WindowEnd = w.Start, w.End
	}
	return st
}

// usage fills the window's usage from the local store (a Redis budget is
// not consulted without the daemon).
func (o *offline) usage(st *scheduler.OperatorStatus) error {
	if st.Quota == 0 || st.WindowStart.IsZero() || o.cfg.QuotaStore.Backend == config.BackendRedis {
		return nil
	}
	used, err := o.store.Used(context.Background(), st.Key, st.WindowStart)
	if err != nil {
		return err
	}
	st.UsedMilli = used
	st.Spent = used >= int64(st.Quota)*scheduler.UnitMilli
	return nil
}
