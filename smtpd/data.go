package smtpd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sluice-mta/sluice/queue"
)

var crlf = []byte("\r\n")

// Data receives a body (DATA or BDAT), checks it and commits it. On success
// it returns a 250 *smtp.SMTPError: go-smtp sends any SMTPError's code and
// text as they are, and that is how the reply names the queue ID.
func (s *session) Data(r io.Reader) error {
	tx, err := s.beginData()
	if err != nil {
		return err
	}
	buf := bodyBufs.get()
	defer bodyBufs.put(buf)
	body, err := s.readBody(r, buf)
	if err != nil {
		return s.readFailed(err)
	}
	return s.accept(tx, body)
}

// beginData takes a copy of the envelope: for BDAT, Data runs in a
// goroutine of its own and Reset may clear s.tx meanwhile.
func (s *session) beginData() (*transaction, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return nil, errNoMail
	}
	if len(s.tx.rcpts) == 0 {
		return nil, errNoRcpt
	}
	tx := *s.tx
	tx.rcpts = slices.Clone(s.tx.rcpts)
	return &tx, nil
}

// readBody reads the whole body through the strict reader into buf and
// returns it (buf's bytes). go-smtp caps DATA at MaxMessageBytes and
// refuses BDAT chunks past it; the strict reader caps both again.
func (s *session) readBody(r io.Reader, buf *bytes.Buffer) ([]byte, error) {
	sr := newStrictReader(r, s.srv.opts.MaxLineLength, s.srv.opts.MaxMessageBytes)
	defer sr.release()
	if _, err := buf.ReadFrom(sr); err != nil {
		return nil, err
	}
	body := buf.Bytes()
	if len(body) > 0 && !bytes.HasSuffix(body, crlf) {
		// A BDAT body (RFC 3030) need not end in CRLF; the copy we relay
		// will, so store it that way and count it right.
		body = append(body, crlf...)
	}
	return body, nil
}

// readFailed turns a body read error into the reply. go-smtp then reads on
// to the true end of DATA (or the BDAT chunk), so the dialog stays in step,
// except where noted.
func (s *session) readFailed(err error) error {
	switch {
	case errors.Is(err, errBareCR):
		return s.reject("data", replyBareCR)
	case errors.Is(err, errBareLF):
		return s.reject("data", replyBareLF)
	case errors.Is(err, errLineTooLong):
		return s.reject("data", replyLineTooLong)
	case errors.Is(err, smtp.ErrTooLongLine):
		// go-smtp's own line limit (DATA only) cannot find the end of the
		// body any more: this reply is the last.
		s.tc.closeAfterNextWrite()
		return s.reject("data", replyLineTooLong)
	case errors.Is(err, errTooBig), errors.Is(err, smtp.ErrDataTooLarge):
		return s.reject("data", replyTooBig)
	case errors.Is(err, smtp.ErrDataReset):
		// RSET or EHLO in the middle of BDAT: nobody reads this reply.
		s.log.Debug("message transfer aborted by client")
		return replyAborted
	case isTimeout(err):
		// The connection closes once this reply is written (trackedConn).
		return s.reject("data", replyTimeout)
	default:
		s.tc.closeAfterNextWrite()
		s.log.Info("rejected", "stage", "data", "code", replyConnLost.Code, "reason", "read error", "err", err)
		s.srv.opts.report(replyConnLost.Code)
		return replyConnLost
	}
}

// accept applies the header checks, prepends Received and commits.
func (s *session) accept(tx *transaction, body []byte) error {
	h := scanHeader(body, s.srv.opts.PriorityHeader)
	if h.received > maxReceived {
		return s.reject("data", replyLoop, "from", tx.from, "received", h.received)
	}
	seq, id := s.srv.opts.Enqueuer.NewID()
	prio := s.priority(id, h)
	var drop []span
	if s.srv.opts.StripPriorityHeader || !s.trusted {
		// An untrusted client's priority is ignored, and its header is not
		// passed on to tell anyone otherwise.
		drop = h.fields
	}
	now := s.srv.opts.Now()
	info := receivedInfo{helo: tx.helo, ip: s.ip, hostname: s.srv.opts.Hostname,
		tls: s.tls, id: id, date: now}
	if len(tx.rcpts) == 1 {
		info.rcpt = tx.rcpts[0].addr
	}
	// One copy of the body, behind our Received field: the message as it
	// is queued.
	full := without(received(info), body, drop)

	msg := s.message(tx, seq, id, prio, now)
	msg.Size = int64(len(full))
	if err := s.commit(tx, msg, full); err != nil {
		s.srv.opts.report(replyTempLocal.Code)
		return commitFailed(s.log, id, err)
	}
	s.srv.opts.report(250)
	// LogAttrs with typed attributes: this line is written for every
	// message, so it should cost no more than its formatting.
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "accepted", slog.String("queue_id", id),
		slog.String("from", tx.from), slog.Int("size", len(full)), slog.Int("nrcpt", len(tx.rcpts)),
		slog.String("priority", formatMilli(prio)))
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: "Ok: queued as " + id}
}

// priority returns the message's priority in milli-units: the header's
// value from a trusted client, else 1.
func (s *session) priority(id string, h headerScan) uint32 {
	const defaultMilli = 1000
	if !s.trusted {
		return defaultMilli
	}
	if !h.found {
		s.log.Debug("no priority header, using priority 1", "queue_id", id)
		return defaultMilli
	}
	m, ok := ParsePriority(string(h.priority), s.srv.opts.MaxPriorityMilli)
	if !ok {
		s.log.Info("malformed priority header, using priority 1", "queue_id", id,
			"header", s.srv.opts.PriorityHeader, "value", quoteForLog(h.priority))
		return defaultMilli
	}
	return m
}

// quoteForLog escapes and truncates a client-supplied value for a log line.
func quoteForLog(v []byte) string {
	const maxLen = 64
	if len(v) > maxLen {
		return strconv.QuoteToASCII(string(v[:maxLen])) + "..."
	}
	return strconv.QuoteToASCII(string(v))
}

// message builds the queue record; local recipients go to the Intake and
// are not in it.
func (s *session) message(tx *transaction, seq uint64, id string, prio uint32, now time.Time) *queue.Message {
	m := &queue.Message{
		ID: id, Seq: seq, From: tx.from, Arrival: now, PriorityMilli: prio,
		ClientHelo: tx.helo, Ret: tx.ret, EnvID: tx.envID,
	}
	if s.ip.IsValid() {
		m.ClientIP = s.ip.String()
	}
	for _, r := range tx.rcpts {
		if r.local {
			continue
		}
		m.Recipients = append(m.Recipients, queue.Recipient{
			Index: len(m.Recipients), Addr: r.addr, ORCPT: r.orcpt,
			Notify: r.notify, State: queue.StateQueued,
		})
	}
	return m
}

// commit hands the message to the Intake (local recipients) and the queue
// (relay recipients); both must succeed before the 250. The Intake goes
// first: if the queue then fails, the client's retry repeats a bounce to
// our own intake, which is harmless, whereas the other order would repeat
// mail to the outside world.
func (s *session) commit(tx *transaction, msg *queue.Message, body []byte) error {
	var local []string
	for _, r := range tx.rcpts {
		if r.local {
			local = append(local, r.addr)
		}
	}
	if len(local) > 0 {
		if err := s.srv.opts.Intake.Receive(s.srv.ctx, tx.from, local, body, msg.ClientIP); err != nil {
			return fmt.Errorf("intake: %w", err)
		}
	}
	if len(msg.Recipients) > 0 {
		if err := s.srv.opts.Enqueuer.Enqueue(s.srv.ctx, msg, body); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
	}
	return nil
}

// commitFailed logs a storage failure (the detail stays in the log) and
// returns a 4xx: a storage problem is never the sender's fault.
func commitFailed(log *slog.Logger, id string, err error) error {
	log.Error("message not stored", "queue_id", id, "err", err)
	if errors.Is(err, queue.ErrNoSpace) {
		return replyNoSpace
	}
	return replyTempLocal
}
