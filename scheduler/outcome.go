package scheduler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/queue"
)

// decision is what one attempt's result does to one recipient.
type decision struct {
	idx      int
	state    queue.State
	attempts int
	next     time.Time
	reply    queue.Reply
	expired  bool
	maybeDup bool
	status   string // log status: sent, deferred, bounced, expired
}

// decide turns a delivery result into the recipient's new state (RFC 5321
// section 4.5.4.1 for retries): sent, failed, or deferred to the next retry
// time with jitter, unless that lies past the queue lifetime, which fails
// it as expired (RFC 3463 4.4.7).
func (s *Scheduler) decide(m *queue.Message, rc *queue.Recipient, res delivery.Result, marked bool, now time.Time) decision {
	d := decision{idx: rc.Index, attempts: rc.Attempts, reply: toQueueReply(res.Reply), maybeDup: rc.MaybeDuplicate || res.MaybeDelivered}
	if !marked {
		d.attempts++
	}
	switch res.Status {
	case delivery.StatusSent:
		d.state, d.status = queue.StateSent, "sent"
	case delivery.StatusFailed:
		d.state, d.status = queue.StateFailed, "bounced"
	default:
		d.state, d.status = queue.StateDeferred, "deferred"
		d.next = now.Add(s.jitter(s.conf().Delivery.RetryAfter(d.attempts)))
		if deadline := m.Arrival.Add(s.conf().Delivery.MaxQueueLifetime); !d.next.Before(deadline) {
			d.state, d.status, d.expired, d.next = queue.StateFailed, "expired", true, time.Time{}
		}
	}
	return d
}

// jitter spreads retries by ±10% so that mail deferred together does not
// come back together.
func (s *Scheduler) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	f := 0.9 + 0.2*s.rndFloat()
	return time.Duration(float64(d) * f)
}

func toQueueReply(r delivery.Reply) queue.Reply {
	return queue.Reply{Code: r.Code, Enhanced: r.Enhanced, Text: r.Text, RemoteHost: r.RemoteHost, RemoteIP: r.RemoteIP}
}

// settle records the results of one transaction in the store, with the
// bounce they cause in the same commit, logs one line per recipient, and
// fills the job result for the loop.
func (s *Scheduler) settle(r *jobResult, m *queue.Message, live []entry, results []delivery.Result, body []byte, marked bool) {
	now := s.clock.Now()
	ds := make([]decision, len(live))
	for i, e := range live {
		res := delivery.Result{Status: delivery.StatusDeferred, Reply: delivery.Reply{Enhanced: "4.3.0", Text: "no result from delivery"}}
		if i < len(results) {
			res = results[i]
		}
		ds[i] = s.decide(m, &m.Recipients[e.idx], res, marked, now)
	}
	var adds []queue.NewMessage
	if b := s.statusReport(m, ds, body, now, r.nextHopDSN); b != nil {
		adds = append(adds, *b)
	}
	_, err := s.store.Apply(context.Background(), queue.Change{
		Seq:      m.Seq,
		Update:   func(qm *queue.Message) error { applyDecisions(qm, ds, now); return nil },
		Add:      adds,
		Remember: s.sentRecords(&r.job.limits, m, ds, body, now),
	})
	if errors.Is(err, queue.ErrNotFound) {
		r.add(live, outForget, time.Time{}) // deleted by an administrator meanwhile
		return
	}
	if err != nil {
		// The outcome is not recorded: the recipients stay pending in the
		// store and are retried, which may duplicate what was sent.
		s.log.Error("cannot record delivery results; will retry", "queue_id", m.ID, "err", err)
		r.add(live, outWaitUntil, now.Add(time.Minute))
		return
	}
	for i, e := range live {
		s.logDelivery(m, &m.Recipients[e.idx], r.job, ds[i], now)
		if ds[i].state == queue.StateDeferred {
			r.add([]entry{e}, outRetry, ds[i].next)
		} else {
			r.add([]entry{e}, outDone, time.Time{})
		}
	}
	for _, a := range adds {
		s.Add(a.Msg)
	}
}

// sentRecords keeps, for recipients handed over with a VERP return path,
// what an asynchronous bounce will need: the envelope and the headers.
func (s *Scheduler) sentRecords(l *config.Limits, m *queue.Message, ds []decision, body []byte, now time.Time) []queue.SentRecord {
	if !l.VERP || l.EnvelopeFrom == "" || m.From == "" {
		return nil
	}
	var out []queue.SentRecord
	for _, d := range ds {
		if d.state != queue.StateSent {
			continue
		}
		rc := &m.Recipients[d.idx]
		out = append(out, queue.SentRecord{
			Seq: m.Seq, Index: d.idx, Addr: rc.Addr, ORCPT: rc.ORCPT, Notify: rc.Notify, From: m.From,
			EnvID: m.EnvID, Ret: m.Ret, Arrival: m.Arrival, SentAt: now, Headers: headerSection(body),
		})
	}
	return out
}

// headerSection returns a message's header block, up to and including the
// blank line.
func headerSection(body []byte) []byte {
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		return body[:i+4]
	}
	return body
}

func applyDecisions(qm *queue.Message, ds []decision, now time.Time) {
	for _, d := range ds {
		rc := &qm.Recipients[d.idx]
		rc.State = d.state
		rc.Attempts = d.attempts
		rc.LastAttempt = now
		rc.NextAttempt = d.next
		rc.LastReply = d.reply
		rc.Reserved = queue.Reservation{}
		rc.MaybeDuplicate = d.maybeDup
	}
}

// bounce builds the failure report for the recipients that failed in ds and
// asked for one, or returns nil. A message from the null sender never
// causes a bounce (RFC 5321 section 4.5.5).
func (s *Scheduler) bounce(m *queue.Message, ds []decision, body []byte, now time.Time) *queue.NewMessage {
	return s.statusReport(m, ds, body, now, true)
}

// statusReport builds one report for the recipients of ds that asked for
// one: failures (NOTIFY default or FAILURE) and, when the next hop did not
// take the DSN parameters, successful relays the sender asked about with
// NOTIFY=SUCCESS (RFC 3461 section 5.2.2: Action "relayed"). It returns
// nil when nobody is owed a report, and always for the null sender.
func (s *Scheduler) statusReport(m *queue.Message, ds []decision, body []byte, now time.Time, nextHopDSN bool) *queue.NewMessage {
	if m.From == "" {
		return nil
	}
	var rcpts []dsn.Recipient
	for _, d := range ds {
		rc := &m.Recipients[d.idx]
		switch {
		case d.state == queue.StateFailed && rc.Notify.Wants(queue.NotifyFailure):
			rcpts = append(rcpts, failedRecipient(rc, d, now))
		case d.state == queue.StateSent && !nextHopDSN && rc.Notify.Wants(queue.NotifySuccess):
			rcpts = append(rcpts, dsn.Recipient{
				FinalRecipient: rc.Addr, OriginalRecipient: rc.ORCPT, Action: dsn.ActionRelayed,
				Status: statusOr(d.reply.Enhanced, "2.0.0"), RemoteMTA: d.reply.RemoteHost,
				DiagnosticCode: diagnostic(d.reply, false), LastAttempt: now,
			})
		}
	}
	if len(rcpts) == 0 {
		return nil
	}
	return s.report(m, rcpts, body, now, "")
}

func statusOr(s, def string) string {
	if len(s) >= 5 && s[0] == def[0] {
		return s
	}
	return def
}

func failedRecipient(rc *queue.Recipient, d decision, now time.Time) dsn.Recipient {
	status := d.reply.Enhanced
	switch {
	case d.expired:
		status = "4.4.7" // RFC 3463: delivery time expired
	case !strings.HasPrefix(status, "5."):
		status = "5.0.0"
	}
	return dsn.Recipient{
		FinalRecipient:    rc.Addr,
		OriginalRecipient: rc.ORCPT,
		Action:            dsn.ActionFailed,
		Status:            status,
		RemoteMTA:         d.reply.RemoteHost,
		DiagnosticCode:    diagnostic(d.reply, d.expired),
		LastAttempt:       now,
	}
}

// diagnostic renders a reply for the Diagnostic-Code field.
func diagnostic(r queue.Reply, expired bool) string {
	var b strings.Builder
	if r.Code != 0 {
		fmt.Fprintf(&b, "%d ", r.Code)
	}
	if r.Enhanced != "" {
		b.WriteString(r.Enhanced + " ")
	}
	b.WriteString(r.Text)
	out := strings.TrimSpace(b.String())
	if expired {
		if out == "" {
			return "message expired in the queue"
		}
		return "message expired in the queue; last reply: " + out
	}
	return out
}

// report builds a DSN to m's sender as a new queued message from the null
// sender.
func (s *Scheduler) report(m *queue.Message, rcpts []dsn.Recipient, body []byte, now time.Time, waitReason string) *queue.NewMessage {
	cfg := s.conf()
	seq, id := s.store.NewID()
	rep := &dsn.Report{
		ReportingMTA:   cfg.Hostname,
		From:           cfg.Bounce.From,
		To:             m.From,
		Date:           now,
		MessageID:      "<" + id + ".dsn@" + cfg.Hostname + ">",
		QueueID:        m.ID,
		EnvID:          m.EnvID,
		ArrivalDate:    m.Arrival,
		Recipients:     rcpts,
		Original:       body,
		Return:         m.Ret,
		MaxReturnBytes: int(cfg.Bounce.MaxReturnedBytes),
		WaitReason:     waitReason,
		RetryUntil:     m.Arrival.Add(cfg.Delivery.MaxQueueLifetime),
	}
	out, err := dsn.Build(rep)
	if err != nil {
		s.log.Error("cannot build delivery status notification", "queue_id", m.ID, "err", err)
		return nil
	}
	msg := &queue.Message{
		ID: id, Seq: seq, From: "", Arrival: now, PriorityMilli: UnitMilli,
		ClientIP: "127.0.0.1", ClientHelo: cfg.Hostname,
		Recipients: []queue.Recipient{{Index: 0, Addr: m.From, State: queue.StateQueued}},
	}
	return &queue.NewMessage{Msg: msg, Body: out}
}

// logDelivery writes the event line for one recipient's attempt, with the
// Postfix-style fields (DESIGN.md). delays is Postfix's a/b/c/d: before the
// queue manager (always 0: sluice schedules at once), waiting in the queue,
// connection setup, transmission.
func (s *Scheduler) logDelivery(m *queue.Message, rc *queue.Recipient, j *job, d decision, now time.Time) {
	relay := "none"
	if d.reply.RemoteHost != "" {
		relay = fmt.Sprintf("%s[%s]", d.reply.RemoteHost, d.reply.RemoteIP)
	}
	dsnCode := d.reply.Enhanced
	if dsnCode == "" {
		dsnCode = map[queue.State]string{queue.StateSent: "2.0.0", queue.StateFailed: "5.0.0"}[d.state]
		if dsnCode == "" {
			dsnCode = "4.0.0"
		}
	}
	if d.expired {
		dsnCode = "4.4.7"
	}
	waited := max(j.started.Sub(m.Arrival), 0)
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs, slog.String("queue_id", m.ID), slog.String("from", m.From), slog.String("to", rc.Addr),
		slog.String("relay", relay), slog.String("delay", roundSeconds(now.Sub(m.Arrival))),
		slog.String("delays", "0/"+roundSeconds(waited)+"/"+roundSeconds(j.connect)+"/"+roundSeconds(j.transmit)),
		slog.String("dsn", dsnCode), slog.String("status", d.status), slog.String("operator", j.op.key),
		slog.Int("attempt", d.attempts), slog.String("reply", diagnostic(d.reply, false)))
	if j.tls != "" {
		attrs = append(attrs, slog.String("tls", j.tls))
	}
	if rc.ORCPT != "" && !strings.EqualFold(strings.TrimPrefix(strings.ToLower(rc.ORCPT), "rfc822;"), rc.Addr) {
		attrs = append(attrs, slog.String("orig_to", rc.ORCPT))
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "delivery", attrs...)
	s.events.Delivery(j.op.label, d.status, j.connect+j.transmit)
	if d.maybeDup && d.status == "deferred" {
		s.log.Warn("connection lost after the final dot; a retry may duplicate the message",
			"queue_id", m.ID, "to", rc.Addr, "relay", relay)
	}
}

// roundSeconds renders a duration the way Postfix logs delays: seconds
// with at most two decimals, trailing zeros dropped.
func roundSeconds(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "-" {
		return "0"
	}
	return s
}
