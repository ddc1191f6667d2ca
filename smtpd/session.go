package smtpd

import (
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/emersion/go-smtp"

	"github.com/sluice-mta/sluice/queue"
)

// backend makes a session per HELO/EHLO (go-smtp calls NewSession there,
// and again after STARTTLS).
type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	tc, ok := baseConn(c.Conn())
	if !ok {
		// Every listener is wrapped, so this cannot happen; refuse rather
		// than run a session without its slot and shutdown bookkeeping.
		b.s.log.Error("smtpd: connection without slot", "remote_addr", c.Conn().RemoteAddr().String())
		return nil, errInternal
	}
	ip := remoteIP(c.Conn().RemoteAddr())
	_, isTLS := c.TLSConnectionState()
	return &session{
		srv:     b.s,
		conn:    c,
		tc:      tc,
		log:     tc.log,
		ip:      ip,
		trusted: b.s.isTrusted(ip),
		tls:     isTLS,
	}, nil
}

// isTrusted reports whether ip may relay. go-smtp demands neither AUTH nor
// anything else before MAIL, so this check is all that stands between us
// and an open relay.
func (s *Server) isTrusted(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range s.opts.TrustedNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// session is one SMTP session. Its fields above mu never change; tx is
// guarded by mu because go-smtp runs Data for BDAT in its own goroutine,
// concurrently with Reset and Logout.
type session struct {
	srv     *Server
	conn    *smtp.Conn
	tc      *trackedConn
	log     *slog.Logger
	ip      netip.Addr
	trusted bool
	tls     bool

	mu sync.Mutex
	tx *transaction
}

// transaction is the envelope collected by MAIL and RCPT.
type transaction struct {
	from  string // canonical; empty for the null sender
	ret   string
	envID string
	helo  string // sanitised, as it stood at MAIL
	rcpts []recipient
}

type recipient struct {
	addr   string // canonical
	orcpt  string // "type;address" or empty
	notify queue.Notify
	local  bool // for the Intake, not the queue
}

// Mail starts a transaction.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	canon := ""
	if from != "" {
		var rerr *smtp.SMTPError
		if canon, rerr = checkAddress(from, roleSender); rerr != nil {
			return s.reject("mail", rerr, "from", quoteForLog([]byte(from)))
		}
	}
	tx := &transaction{from: canon, helo: sanitizeHelo(s.conn.Hostname())}
	if opts != nil {
		tx.ret = string(opts.Return)
		tx.envID = opts.EnvelopeID
	}
	s.mu.Lock()
	s.tx = tx
	s.mu.Unlock()
	return nil
}

// Rcpt adds a recipient. go-smtp has already refused the one past
// MaxRecipients with 452 4.5.3, as RFC 5321 4.5.3.1.10 asks.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	canon, rerr := checkAddress(to, roleRecipient)
	if rerr != nil {
		return s.reject("rcpt", rerr, "to", quoteForLog([]byte(to)))
	}
	local := s.srv.opts.Intake != nil && s.srv.opts.Intake.IsLocal(canon)
	if !local {
		if rerr := s.mayRelay(canon); rerr != nil {
			return s.reject("rcpt", rerr, "to", canon)
		}
	}
	r := recipient{addr: canon, local: local}
	if opts != nil {
		r.notify = notifyBits(opts.Notify)
		if opts.OriginalRecipient != "" {
			// RFC 3461 4.2: the address type is case-insensitive; we store
			// it in lower case, with the decoded address.
			r.orcpt = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tx == nil {
		return errNoMail // go-smtp checks MAIL first; kept for safety
	}
	if !s.tc.beginTransaction() {
		return s.reject("rcpt", replyShuttingDown, "to", canon)
	}
	for _, have := range s.tx.rcpts {
		if have.addr == canon {
			return nil // a duplicate RCPT must not mean a duplicate delivery
		}
	}
	s.tx.rcpts = append(s.tx.rcpts, r)
	return nil
}

// mayRelay applies the relay policy to a recipient that is not ours:
// trusted clients only, and only while the Admitter lets the backlog grow.
func (s *session) mayRelay(rcpt string) *smtp.SMTPError {
	if !s.trusted {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "<" + rcpt + ">: Relay access denied"}
	}
	if s.srv.opts.Admitter == nil {
		return nil
	}
	if err := s.srv.opts.Admitter.Admit(rcpt); err != nil {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
			Message: "<" + rcpt + ">: " + replyText(err.Error())}
	}
	return nil
}

func notifyBits(ns []smtp.DSNNotify) queue.Notify {
	var n queue.Notify
	for _, v := range ns {
		switch v {
		case smtp.DSNNotifyNever:
			n |= queue.NotifyNever
		case smtp.DSNNotifySuccess:
			n |= queue.NotifySuccess
		case smtp.DSNNotifyFailure:
			n |= queue.NotifyFailure
		case smtp.DSNNotifyDelayed:
			n |= queue.NotifyDelay
		}
	}
	return n
}

// Reset ends the transaction. After a body go-smtp calls it once the reply
// is written, which is when a draining connection may close.
func (s *session) Reset() {
	s.mu.Lock()
	s.tx = nil
	s.mu.Unlock()
	s.tc.endTransaction()
}

// Logout ends the session (close, or STARTTLS).
func (s *session) Logout() error {
	s.Reset()
	return nil
}

// reject logs a refusal at Info and returns it for go-smtp to send.
func (s *session) reject(stage string, e *smtp.SMTPError, args ...any) error {
	args = append([]any{"stage", stage, "code", e.Code, "reason", e.Message}, args...)
	s.log.Info("rejected", args...)
	s.srv.opts.report(e.Code)
	return e
}

// replyText makes text safe for a reply line: printable ASCII only, so that
// it can neither end the line nor start another, and not too long.
func replyText(text string) string {
	const maxLen = 200
	b := []byte(text)
	if len(b) > maxLen {
		b = b[:maxLen]
	}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// remoteIP returns the IP of addr, with IPv4-mapped IPv6 unmapped so that
// IPv4 prefixes match; zero if addr carries none (net.Pipe).
func remoteIP(addr net.Addr) netip.Addr {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func ipString(ip netip.Addr) string {
	if !ip.IsValid() {
		return "unknown"
	}
	return ip.String()
}
