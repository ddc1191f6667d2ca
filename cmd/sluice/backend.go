package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/scheduler"
)

// backend answers the admin API from the store and the scheduler of a
// running daemon.
type backend struct{ d *daemon }

var _ admin.Backend = (*backend)(nil)

func (b *backend) view(ctx context.Context) (*queueView, error) {
	snap, err := b.d.sched.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return newQueueView(b.d.config(), snap), nil
}

func (b *backend) List(ctx context.Context, f admin.ListFilter) ([]admin.Message, error) {
	v, err := b.view(ctx)
	if err != nil {
		return nil, err
	}
	return v.list(b.d.store, f)
}

func (b *backend) Show(ctx context.Context, id string) (*admin.MessageDetail, error) {
	v, err := b.view(ctx)
	if err != nil {
		return nil, err
	}
	return v.show(b.d.store, id)
}

func (b *backend) Raw(_ context.Context, id string) ([]byte, error) {
	return rawMessage(b.d.store, id)
}

func (b *backend) Quota(ctx context.Context) ([]admin.OperatorStatus, error) {
	snap, err := b.d.sched.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return operatorStatuses(snap, b.d.config().QuotaStore.Backend), nil
}

// Act runs a queue operation through the scheduler, which keeps its index
// in step with the store.
func (b *backend) Act(ctx context.Context, a admin.Action, req admin.ActionRequest) (*admin.ActionResult, error) {
	op, ok := map[admin.Action]func(context.Context, []uint64) (int, error){
		admin.ActionDelete:  b.d.sched.Delete,
		admin.ActionHold:    b.d.sched.Hold,
		admin.ActionRelease: b.d.sched.Release,
		admin.ActionRetry:   b.d.sched.Retry,
		admin.ActionBounce:  b.d.sched.Bounce,
	}[a]
	if !ok {
		return nil, &admin.BadRequestError{Msg: fmt.Sprintf("unknown queue action %q", a)}
	}
	seqs, unknown, err := resolveIDs(b.d.store, req)
	if err != nil {
		return nil, err
	}
	n, err := op(ctx, seqs)
	return &admin.ActionResult{Action: a, Count: n, Unknown: unknown}, err
}

func (b *backend) Suspend(ctx context.Context, name string, d time.Duration, reason string) (time.Time, error) {
	if reason == "" {
		reason = "suspended by the administrator"
	}
	until := b.d.clock.Now().Add(d)
	err := b.d.sched.Suspend(ctx, name, until, reason)
	if errors.Is(err, scheduler.ErrUnknownOperator) {
		return time.Time{}, &admin.UnknownOperatorError{Name: name}
	}
	return until, err
}

func (b *backend) Resume(ctx context.Context, name string) error {
	err := b.d.sched.Resume(ctx, name)
	if errors.Is(err, scheduler.ErrUnknownOperator) {
		return &admin.UnknownOperatorError{Name: name}
	}
	return err
}

func (b *backend) Reload(ctx context.Context) error { return b.d.reload(ctx) }

func (b *backend) Healthy(ctx context.Context) error { return b.d.healthy(ctx) }
