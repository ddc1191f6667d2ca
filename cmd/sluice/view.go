package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/queue"
	"github.com/sluice-mta/sluice/scheduler"
)

// The admin answers that both the daemon and the CLI's direct mode give:
// stored messages annotated with what the scheduler knows (or, without a
// daemon, what the configuration and the queue file say).

// messageStore is the queue as the admin answers read it.
type messageStore interface {
	Get(seq uint64) (*queue.Message, error)
	Body(seq uint64) ([]byte, error)
	Scan(fn func(*queue.Message) error) error
	Sent(seq uint64) ([]queue.SentRecord, error)
}

// queueView annotates stored messages with a scheduler snapshot.
type queueView struct {
	cfg  *config.Config
	snap *scheduler.Snapshot
	ops  map[string]*scheduler.OperatorStatus
}

func newQueueView(cfg *config.Config, snap *scheduler.Snapshot) *queueView {
	v := &queueView{cfg: cfg, snap: snap, ops: make(map[string]*scheduler.OperatorStatus)}
	for i := range snap.Operators {
		v.ops[snap.Operators[i].Key] = &snap.Operators[i]
	}
	return v
}

// list is sluice queue list.
func (v *queueView) list(st messageStore, f admin.ListFilter) ([]admin.Message, error) {
	var out []admin.Message
	err := st.Scan(func(m *queue.Message) error {
		lm := v.message(m)
		if matches(f, lm, m, v.snap.Now) {
			out = append(out, lm)
		}
		return nil
	})
	return out, err
}

// show is sluice queue show.
func (v *queueView) show(st messageStore, id string) (*admin.MessageDetail, error) {
	seq, m, err := getMessage(st, id)
	var nf *admin.NotFoundError
	if errors.As(err, &nf) && seq != 0 {
		return completedDetail(st, seq, err)
	}
	if err != nil {
		return nil, err
	}
	body, err := st.Body(seq)
	if err != nil {
		return nil, err
	}
	d := v.detail(m, body)
	sent, err := st.Sent(seq)
	if err != nil {
		return nil, err
	}
	d.Returned = returnedBounces(sent)
	return d, nil
}

// completedDetail shows a message that left the queue but is remembered
// for late bounces (VERP); notFound is returned when there is nothing.
func completedDetail(st messageStore, seq uint64, notFound error) (*admin.MessageDetail, error) {
	sent, err := st.Sent(seq)
	if err != nil {
		return nil, err
	}
	if len(sent) == 0 {
		return nil, notFound
	}
	first := sent[0]
	d := &admin.MessageDetail{QueueID: first.ID, Sender: first.From, ArrivalTime: first.Arrival, Ret: first.Ret,
		EnvID: first.EnvID, Headers: string(first.Headers), Completed: true, Priority: 1}
	for _, r := range sent {
		state := "sent"
		if r.Returned != nil {
			state = "returned"
		}
		d.Recipients = append(d.Recipients, admin.RecipientDetail{Address: r.Addr, ORCPT: r.ORCPT, State: state, LastAttempt: r.SentAt})
	}
	d.Returned = returnedBounces(sent)
	return d, nil
}

func returnedBounces(sent []queue.SentRecord) []admin.ReturnedBounce {
	var out []admin.ReturnedBounce
	for _, r := range sent {
		if x := r.Returned; x != nil {
			out = append(out, admin.ReturnedBounce{Recipient: r.Addr, At: x.At, Client: x.Client, Action: x.Action,
				Status: x.Status, Diagnostic: x.Diagnostic, RemoteMTA: x.RemoteMTA, Report: string(x.Report)})
		}
	}
	return out
}

// getMessage loads a message by queue ID, with NotFoundError for an ID that
// is malformed or not queued.
func getMessage(st messageStore, id string) (uint64, *queue.Message, error) {
	seq, err := queue.ParseID(id)
	if err != nil {
		return 0, nil, &admin.NotFoundError{ID: id}
	}
	m, err := st.Get(seq)
	if errors.Is(err, queue.ErrNotFound) {
		return seq, nil, &admin.NotFoundError{ID: id}
	}
	return seq, m, err
}

// rawMessage is sluice queue cat.
func rawMessage(st messageStore, id string) ([]byte, error) {
	seq, _, err := getMessage(st, id)
	if err != nil {
		return nil, err
	}
	body, err := st.Body(seq)
	if errors.Is(err, queue.ErrNotFound) {
		return nil, &admin.NotFoundError{ID: id}
	}
	return body, err
}

// resolveIDs turns an action's request into sequence numbers: every queued
// message for ALL, else the IDs given, with those not queued set apart.
func resolveIDs(st messageStore, req admin.ActionRequest) (seqs []uint64, unknown []string, err error) {
	if req.All {
		err = st.Scan(func(m *queue.Message) error {
			seqs = append(seqs, m.Seq)
			return nil
		})
		return seqs, nil, err
	}
	seen := map[uint64]bool{}
	for _, id := range req.IDs {
		seq, _, err := getMessage(st, id)
		var nf *admin.NotFoundError
		if errors.As(err, &nf) {
			unknown = append(unknown, id)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if !seen[seq] {
			seen[seq] = true
			seqs = append(seqs, seq)
		}
	}
	return seqs, unknown, nil
}

// operatorOf names the operator a recipient domain is counted under.
func (v *queueView) operatorOf(addr string) string {
	dom := domainOf(addr)
	if k, ok := v.snap.Domains[dom]; ok {
		return k
	}
	return operatorKey(v.cfg, dom)
}

// operatorKey is the scheduler's key for a domain as the configuration
// alone decides it (mx_patterns need the daemon's MX lookups).
func operatorKey(cfg *config.Config, dom string) string {
	if o, ok := cfg.OperatorFor(dom); ok {
		return o.Name
	}
	if r, ok := cfg.RouteFor(dom); ok {
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

// operatorStatuses turns a snapshot into sluice quota's lines.
func operatorStatuses(snap *scheduler.Snapshot, backend string) []admin.OperatorStatus {
	var out []admin.OperatorStatus
	for _, o := range snap.Operators {
		st := admin.OperatorStatus{
			Name: o.Key, Backend: backend, Quota: o.Quota, Window: o.Window.String(),
			UsedMilli: o.UsedMilli, WindowStart: o.WindowStart, WindowEnd: o.WindowEnd,
			Queued: o.Queued, Waiting: o.Waiting, InFlight: o.InFlight, Connections: o.Connections,
			SuspendedUntil: o.SuspendedUntil, SuspendReason: o.SuspendReason, ThrottleLevel: o.ThrottleLevel,
			DrainETA: o.DrainETA, UsageError: o.UsageError,
		}
		if len(o.QueuedByPriority) > 0 {
			st.QueuedByPriority = make(map[string]int, len(o.QueuedByPriority))
			for p, n := range o.QueuedByPriority {
				st.QueuedByPriority[formatPriority(p)] = n
			}
		}
		out = append(out, st)
	}
	return out
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
