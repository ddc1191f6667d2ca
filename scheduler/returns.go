package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/queue"
)

// Asynchronous bounces. A remote server that accepted a recipient and
// later finds it cannot deliver sends a bounce to the envelope sender; for
// operators with verp = true that is a per-recipient address of ours. The
// SMTP side accepts mail to those addresses from anyone (and only those:
// the relay stays closed) and hands it here. The bounce is parsed as an
// RFC 3464 report (with a fallback for plain-text bounces), the recipient
// is marked failed, and the original sender gets a normal failure report.

// returnStore is what bounce intake needs beyond Store; the queue has it.
type returnStore interface {
	MarkReturned(ctx context.Context, seq uint64, idx int, ret queue.Returned) (bool, *queue.SentRecord, error)
	ReplaceReturned(ctx context.Context, seq uint64, idx int, ret queue.Returned) (*queue.SentRecord, error)
	Enqueue(ctx context.Context, m *queue.Message, body []byte) error
}

// IsLocal reports whether rcpt is one of our VERP return paths with a
// valid signature. It is safe for concurrent use.
func (s *Scheduler) IsLocal(rcpt string) bool {
	s.adm.mu.RLock()
	bases := s.adm.verpBases
	s.adm.mu.RUnlock()
	if len(bases) == 0 {
		return false
	}
	_, _, ok := s.verp.Decode(rcpt, bases)
	return ok
}

// Receive processes one inbound bounce addressed to our return paths. An
// error makes the SMTP side answer 451, so the sender tries again.
func (s *Scheduler) Receive(ctx context.Context, from string, rcpts []string, body []byte, client string) error {
	s.adm.mu.RLock()
	bases := s.adm.verpBases
	s.adm.mu.RUnlock()
	parsed, perr := dsn.Parse(body)
	for _, rcpt := range rcpts {
		id, idx, ok := s.verp.Decode(rcpt, bases)
		if !ok {
			continue
		}
		seq, err := queue.ParseID(id)
		if err != nil {
			continue
		}
		if err := s.returned(ctx, seq, idx, from, client, parsed, perr, body); err != nil {
			return err
		}
	}
	return nil
}

// returned handles the bounce for one recipient.
func (s *Scheduler) returned(ctx context.Context, seq uint64, idx int, from, client string, p *dsn.Parsed, perr error, body []byte) error {
	now := s.clock.Now()
	ret := queue.Returned{At: now, Client: client, From: from, Report: body}
	rs, ok := s.store.(returnStore)
	if !ok {
		return errors.New("scheduler: the store cannot keep returned mail")
	}
	first, rec, err := rs.MarkReturned(ctx, seq, idx, queue.Returned{At: now})
	if errors.Is(err, queue.ErrNotFound) {
		s.log.Info("bounce for a recipient no longer known", "queue_id", queue.FormatID(seq), "index", idx, "client", client)
		return nil
	}
	if err != nil {
		return err
	}
	fillReturned(&ret, rec.Addr, p, perr)
	// Record the full details (the first MarkReturned only claimed the
	// recipient, so that two bounces racing cannot both report it).
	if !first {
		s.log.Info("another bounce for an already returned recipient", "queue_id", rec.ID, "to", rec.Addr, "client", client, "status", ret.Status)
		return nil
	}
	if _, err := rs.ReplaceReturned(ctx, rec.Seq, rec.Index, ret); err != nil {
		return err
	}
	s.log.Info("inbound bounce", "queue_id", rec.ID, "to", rec.Addr, "client", client, "action", ret.Action,
		"dsn", ret.Status, "reply", ret.Diagnostic)
	if !isFailure(ret) {
		return nil // a delay or success notice: kept, not reported
	}
	return s.reportReturned(ctx, rs, rec, ret, now)
}

// fillReturned takes status, action and diagnostic from the report group
// about addr (or the only group, or the plain-text guess).
func fillReturned(ret *queue.Returned, addr string, p *dsn.Parsed, perr error) {
	ret.Action, ret.Status = "failed", "5.0.0"
	if perr != nil || p == nil || len(p.Recipients) == 0 {
		ret.Diagnostic = "unparseable bounce"
		return
	}
	g := p.Recipients[0]
	for _, r := range p.Recipients {
		if strings.EqualFold(r.FinalRecipient, addr) || strings.EqualFold(strings.TrimPrefix(r.OriginalRecipient, "rfc822;"), addr) {
			g = r
			break
		}
	}
	if g.Action != "" {
		ret.Action = strings.ToLower(g.Action)
	}
	if g.Status != "" {
		ret.Status = g.Status
	}
	ret.Diagnostic, ret.RemoteMTA = g.DiagnosticCode, g.RemoteMTA
	if ret.RemoteMTA == "" {
		ret.RemoteMTA = p.ReportingMTA
	}
}

func isFailure(r queue.Returned) bool {
	return r.Action == "failed" || strings.HasPrefix(r.Status, "5.")
}

// reportReturned fails the recipient (if its message is still queued) and
// sends the original sender a failure report naming it.
func (s *Scheduler) reportReturned(ctx context.Context, rs returnStore, rec *queue.SentRecord, ret queue.Returned, now time.Time) error {
	if rec.From == "" || !rec.Notify.Wants(queue.NotifyFailure) {
		return nil
	}
	m := &queue.Message{ID: rec.ID, Seq: rec.Seq, From: rec.From, Arrival: rec.Arrival, EnvID: rec.EnvID, Ret: rec.Ret,
		Recipients: make([]queue.Recipient, rec.Index+1)}
	m.Recipients[rec.Index] = queue.Recipient{Index: rec.Index, Addr: rec.Addr, ORCPT: rec.ORCPT, Notify: rec.Notify}
	status := ret.Status
	if !strings.HasPrefix(status, "5.") {
		status = "5.0.0"
	}
	r := dsn.Recipient{
		FinalRecipient: rec.Addr, OriginalRecipient: rec.ORCPT, Action: dsn.ActionFailed, Status: status,
		RemoteMTA: ret.RemoteMTA, DiagnosticCode: strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(ret.Diagnostic, "smtp;"), "SMTP;")),
		LastAttempt: rec.SentAt,
	}
	rep := s.report(m, []dsn.Recipient{r}, rec.Headers, now, "")
	if rep == nil {
		return fmt.Errorf("cannot build the report for %s", rec.ID)
	}
	if err := s.enqueueReport(ctx, rs, rec, rep); err != nil {
		return err
	}
	s.log.Info("delivery", "queue_id", rec.ID, "from", rec.From, "to", rec.Addr, "relay", "none",
		"delay", roundSeconds(now.Sub(rec.Arrival)), "dsn", status, "status", "bounced",
		"reply", "returned later: "+ret.Diagnostic)
	return nil
}

// enqueueReport queues the report, together with failing the recipient
// when its message is still in the queue (other recipients pending).
func (s *Scheduler) enqueueReport(ctx context.Context, rs returnStore, rec *queue.SentRecord, rep *queue.NewMessage) error {
	_, err := s.store.Apply(ctx, queue.Change{Seq: rec.Seq, Add: []queue.NewMessage{*rep},
		Update: func(m *queue.Message) error {
			if rec.Index < len(m.Recipients) && m.Recipients[rec.Index].State == queue.StateSent {
				m.Recipients[rec.Index].State = queue.StateFailed
			}
			return nil
		}})
	if errors.Is(err, queue.ErrNotFound) {
		err = rs.Enqueue(ctx, rep.Msg, rep.Body)
	}
	if err != nil {
		return err
	}
	s.Add(rep.Msg)
	return nil
}
