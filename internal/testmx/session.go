package testmx

import (
	"io"
	"time"

	"github.com/emersion/go-smtp"
)

// session records one SMTP transaction at a time and runs the hooks.
type session struct {
	srv      *Server
	conn     *smtp.Conn
	from     string
	mailOpts smtp.MailOptions
	to       []string
	rcptOpts []smtp.RcptOptions
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

func (se *session) Mail(from string, opts *smtp.MailOptions) error {
	n, h := se.srv.next("mail")
	if h.Mail != nil {
		if e := h.Mail(from, n); e != nil {
			return e
		}
	}
	se.from = from
	se.mailOpts = smtp.MailOptions{}
	if opts != nil {
		se.mailOpts = *opts
	}
	return nil
}

func (se *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	n, h := se.srv.next("rcpt")
	if h.Rcpt != nil {
		if e := h.Rcpt(to, n); e != nil {
			return e
		}
	}
	se.to = append(se.to, to)
	var o smtp.RcptOptions
	if opts != nil {
		o = *opts
		o.Notify = append(o.Notify[:0:0], opts.Notify...)
	}
	se.rcptOpts = append(se.rcptOpts, o)
	return nil
}

func (se *session) Data(r io.Reader) error {
	n, h := se.srv.next("data")
	if h.DropMidData != nil && h.DropMidData(n) {
		// Take at least one byte so the body is known to be arriving.
		_, _ = io.ReadFull(r, make([]byte, 1))
		se.conn.Conn().Close()
		return errDropped
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if h.DropAfterData != nil && h.DropAfterData(n) {
		se.conn.Conn().Close()
		return errDropped
	}
	if !se.stall(h.StallData) {
		return errDropped
	}
	msg := se.message(body)
	if h.Data != nil {
		if e := h.Data(msg, n); e != nil {
			return e
		}
	}
	se.srv.record(msg)
	return nil
}

// stall waits d, or less if the server stops; false if it stopped.
func (se *session) stall(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-se.srv.stop:
		return false
	}
}

func (se *session) message(body []byte) Message {
	_, isTLS := se.conn.TLSConnectionState()
	return Message{
		From:       se.from,
		To:         append([]string(nil), se.to...),
		Data:       body,
		RemoteAddr: se.conn.Conn().RemoteAddr().String(),
		TLS:        isTLS,
		Helo:       se.conn.Hostname(),
		MailOpts:   se.mailOpts,
		RcptOpts:   append([]smtp.RcptOptions(nil), se.rcptOpts...),
		Received:   time.Now(),
	}
}

func (se *session) Reset() {
	se.from = ""
	se.mailOpts = smtp.MailOptions{}
	se.to = nil
	se.rcptOpts = nil
}

func (se *session) Logout() error { return nil }
