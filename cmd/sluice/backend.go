package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/queue"
	"github.com/sluice-mta/sluice/scheduler"
)

// backend answers the admin API from the store and the scheduler.
type backend struct{ d *daemon }

func (b *backend) List(ctx context.Context, f admin.ListFilter) ([]admin.Message, error) {
	snap, err := b.d.sched.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	v := newQueueView(b.d, snap)
	var out []admin.Message
	err = b.d.store.Scan(func(m *queue.Message) error {
		lm := v.message(m)
		if matches(f, lm, m, snap.Now) {
			out = append(out, lm)
		}
		return nil
	})
	return out, err
}

func (b *backend) Show(ctx context.Context, id string) (*admin.MessageDetail, error) {
	seq, err := queue.ParseID(id)
	if err != nil {
		return nil, &admin.NotFoundError{ID: id}
	}
	m, err := b.d.store.Get(seq)
	if errors.Is(err, queue.ErrNotFound) {
		return nil, &admin.NotFoundError{ID: id}
	}
	if err != nil {
		return nil, err
	}
	body, err := b.d.store.Body(seq)
	if err != nil {
		return nil, err
	}
	snap, err := b.d.sched.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return newQueueView(b.d, snap).detail(m, body), nil
}

func (b *backend) Quota(ctx context.Context) ([]admin.OperatorStatus, error) {
	snap, err := b.d.sched.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	var out []admin.OperatorStatus
	for _, o := range snap.Operators {
		st := admin.OperatorStatus{
			Name: o.Key, Backend: b.d.cfg.QuotaStore.Backend, Quota: o.Quota, Window: o.Window.String(),
			UsedMilli: o.UsedMilli, WindowStart: o.WindowStart, WindowEnd: o.WindowEnd,
			Queued: o.Queued, Waiting: o.Waiting, InFlight: o.InFlight, Connections: o.Connections,
			SuspendedUntil: o.SuspendedUntil, SuspendReason: o.SuspendReason, ThrottleLevel: o.ThrottleLevel,
			DrainETA: o.DrainETA,
		}
		if len(o.QueuedByPriority) > 0 {
			st.QueuedByPriority = make(map[string]int, len(o.QueuedByPriority))
			for p, n := range o.QueuedByPriority {
				st.QueuedByPriority[formatPriority(p)] = n
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// queueView annotates stored messages with what the scheduler knows.
type queueView struct {
	d    *daemon
	snap *scheduler.Snapshot
	ops  map[string]*scheduler.OperatorStatus
}

func newQueueView(d *daemon, snap *scheduler.Snapshot) *queueView {
	v := &queueView{d: d, snap: snap, ops: make(map[string]*scheduler.OperatorStatus)}
	for i := range snap.Operators {
		v.ops[snap.Operators[i].Key] = &snap.Operators[i]
	}
	return v
}

// operatorOf names the operator a recipient domain is counted under.
func (v *queueView) operatorOf(addr string) string {
	dom := domainOf(addr)
	if k, ok := v.snap.Domains[dom]; ok {
		return k
	}
	if o, ok := v.d.cfg.OperatorFor(dom); ok {
		return o.Name
	}
	if r, ok := v.d.cfg.RouteFor(dom); ok {
		return "route:" + strings.Join(r.Domains, ",")
	}
	return "default:" + dom
}

// state says where a recipient stands and why it waits, and when it
// should go.
func (v *queueView) state(m *queue.Message, r *queue.Recipient, op string) (state, reason string, eta time.Time) {
	now := v.snap.Now
	switch {
	case m.Held:
		return "hold", "message is on hold", time.Time{}
	case v.snap.Active[m.Seq]:
		return "active", "", now
	case r.NextAttempt.After(now):
		return "deferred", replyText(r.LastReply), r.NextAttempt
	}
	if st := v.ops[op]; st != nil {
		if st.SuspendedUntil.After(now) {
			return "waiting", fmt.Sprintf("operator %s suspended until %s: %s", op, st.SuspendedUntil.Format("15:04:05 MST"), st.SuspendReason), st.SuspendedUntil
		}
		if st.Quota > 0 && st.Spent {
			return "waiting", fmt.Sprintf("waiting for the budget of operator %s, next window at %s", op, st.WindowEnd.Format("15:04 MST")), st.WindowEnd
		}
	}
	return "queued", replyText(r.LastReply), now
}

func replyText(r queue.Reply) string {
	if r.Code == 0 && r.Text == "" {
		return ""
	}
	s := r.Text
	if r.Enhanced != "" {
		s = r.Enhanced + " " + s
	}
	if r.Code != 0 {
		s = fmt.Sprintf("%d %s", r.Code, s)
	}
	if r.RemoteHost != "" {
		s = fmt.Sprintf("host %s[%s] said: %s", r.RemoteHost, r.RemoteIP, s)
	}
	return s
}

func (v *queueView) message(m *queue.Message) admin.Message {
	lm := admin.Message{
		QueueID: m.ID, ArrivalTime: m.Arrival.Unix(), MessageSize: m.Size, Sender: m.From,
		Priority: float64(m.PriorityMilli) / 1000,
	}
	var eta time.Time
	names := map[string]bool{}
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if !r.State.IsPending() {
			continue
		}
		op := v.operatorOf(r.Addr)
		st, reason, e := v.state(m, r, op)
		lm.Recipients = append(lm.Recipients, admin.Recipient{Address: r.Addr, DelayReason: reason, State: st, Operator: op})
		names[st] = true
		if lm.Operator == "" {
			lm.Operator = op
		}
		if !e.IsZero() && (eta.IsZero() || e.Before(eta)) {
			eta = e
		}
	}
	if !eta.IsZero() {
		lm.ETA = eta.Unix()
	}
	lm.QueueName = queueName(names)
	return lm
}

// queueName maps recipient states to a postqueue -j queue name.
func queueName(states map[string]bool) string {
	for _, s := range []string{"hold", "active", "deferred", "waiting"} {
		if states[s] {
			return s
		}
	}
	return "incoming"
}

func (v *queueView) detail(m *queue.Message, body []byte) *admin.MessageDetail {
	d := &admin.MessageDetail{
		QueueID: m.ID, Sender: m.From, ArrivalTime: m.Arrival, MessageSize: m.Size,
		Priority: float64(m.PriorityMilli) / 1000, Held: m.Held, ClientIP: m.ClientIP, ClientHelo: m.ClientHelo,
		Ret: m.Ret, EnvID: m.EnvID, Headers: string(headerSection(body)),
	}
	for i := range m.Recipients {
		r := &m.Recipients[i]
		op := v.operatorOf(r.Addr)
		st := r.State.String()
		var eta time.Time
		if r.State.IsPending() {
			st, _, eta = v.state(m, r, op)
		}
		d.Recipients = append(d.Recipients, admin.RecipientDetail{
			Address: r.Addr, ORCPT: r.ORCPT, State: st, Operator: op, Attempts: r.Attempts,
			LastAttempt: r.LastAttempt, NextAttempt: r.NextAttempt, LastReply: replyText(r.LastReply), ETA: eta,
		})
	}
	return d
}

// matches applies sluice queue list's filters.
func matches(f admin.ListFilter, lm admin.Message, m *queue.Message, now time.Time) bool {
	if f.OlderThan > 0 && now.Sub(m.Arrival) < f.OlderThan {
		return false
	}
	if f.Operator == "" && f.State == "" {
		return true
	}
	for _, r := range lm.Recipients {
		if (f.Operator == "" || r.Operator == f.Operator) && (f.State == "" || r.State == f.State) {
			return true
		}
	}
	return false
}

// headerSection returns the message's header block (up to the blank line).
func headerSection(body []byte) []byte {
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		return body[:i+2]
	}
	return body
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

func formatPriority(milli uint32) string {
	if milli%1000 == 0 {
		return fmt.Sprintf("%d", milli/1000)
	}
	return strings.TrimRight(fmt.Sprintf("%d.%03d", milli/1000, milli%1000), "0")
}
