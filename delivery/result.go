package delivery

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/emersion/go-smtp"
)

// Status is the outcome for one recipient.
type Status uint8

const (
	// StatusDeferred: try again later (4xx, timeouts, network and local
	// errors). It is the zero value, so an unset result is never "sent".
	StatusDeferred Status = iota
	// StatusSent: the remote accepted responsibility (2xx after DATA).
	StatusSent
	// StatusFailed: permanent (5xx); do not retry.
	StatusFailed
)

func (s Status) String() string {
	switch s {
	case StatusSent:
		return "sent"
	case StatusFailed:
		return "failed"
	case StatusDeferred:
		return "deferred"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Reply is what a remote server answered, or a synthesised equivalent for
// local and network failures (then Code is 0).
type Reply struct {
	Code       int
	Enhanced   string // RFC 3463, e.g. "5.1.1"; "" when absent
	Text       string // one line: multi-line replies joined with spaces
	RemoteHost string
	RemoteIP   string
}

// String renders the reply for logs and reports, Postfix style:
// "mx.example.com[192.0.2.1] said: 550 5.1.1 no such user".
func (r Reply) String() string {
	var b strings.Builder
	if r.RemoteHost != "" {
		fmt.Fprintf(&b, "%s[%s] said: ", r.RemoteHost, r.RemoteIP)
	}
	if r.Code != 0 {
		fmt.Fprintf(&b, "%d ", r.Code)
	}
	if r.Enhanced != "" {
		b.WriteString(r.Enhanced + " ")
	}
	b.WriteString(r.Text)
	return strings.TrimSpace(b.String())
}

// Result is the outcome of one recipient of one transaction.
type Result struct {
	Rcpt   string
	Status Status
	Reply  Reply
	// MaybeDelivered is set when the connection was lost after the final
	// dot: the remote may have accepted the message (RFC 1047), so a retry
	// can duplicate it.
	MaybeDelivered bool
	// RcptSent is set once the RCPT command for this recipient was
	// written: from then on the remote may have counted it against a
	// budget. A recipient that never got that far (the session broke,
	// or the transaction was aborted before) cost the operator nothing.
	RcptSent bool
	Err      error // the local or network error, if any
}

// Error is the failure to open a session for a destination. Reply is the
// last reply seen (the last SMTP reply if any host answered, else a
// synthesised one), so that callers can match rules against it, such as
// 421 "too many connections".
type Error struct {
	Temporary bool
	Reply     Reply
	Msg       string
	Err       error // underlying cause, if any

	dialFailed bool // no TCP connection: the host's next address may work
	tlsFailed  bool // STARTTLS failed: opportunistic TLS retries in plaintext
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Reply.Code != 0 {
		s += " (reply: " + e.Reply.String() + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// IsTemporary reports whether a later retry may succeed.
func (e *Error) IsTemporary() bool { return e.Temporary }

// Classify maps an outcome to a status (RFC 5321 section 4.2.1): a 2xx
// code is sent, 5xx failed, 4xx deferred. Without a code it looks at err:
// an *smtp.SMTPError is classified by its code, an error that reports
// IsTemporary (such as *DNSError or *Error) by that, and anything else
// (timeouts, network errors, io.EOF, unknown errors, or no error at all) is
// deferred, because only a clear permanent answer may bounce mail.
func Classify(code int, err error) Status {
	switch code / 100 {
	case 2:
		return StatusSent
	case 4:
		return StatusDeferred
	case 5:
		return StatusFailed
	}
	if err == nil {
		return StatusDeferred
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code/100 >= 2 && se.Code/100 <= 5 {
		return Classify(se.Code, nil)
	}
	var te interface{ IsTemporary() bool }
	if errors.As(err, &te) && !te.IsTemporary() {
		return StatusFailed
	}
	return StatusDeferred
}

// enhancedRe matches an RFC 3463 status code at the start of reply text.
var enhancedRe = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3}$`)

// replyFromSMTPError converts a go-smtp error reply. go-smtp finds the
// enhanced code only when it leads the first line; servers that put it on
// the last line alone (go-smtp's own server does) are parsed per line.
func replyFromSMTPError(se *smtp.SMTPError) Reply {
	if ec := se.EnhancedCode; ec[0] > 0 {
		return Reply{Code: se.Code, Enhanced: fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2]), Text: oneLine(se.Message)}
	}
	return replyFromText(se.Code, se.Message)
}

// replyFromText parses reply text: an enhanced code leading a line (RFC
// 2034 section 4 puts one on every line) is kept once and stripped.
func replyFromText(code int, msg string) Reply {
	r := Reply{Code: code}
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		ec, rest, _ := strings.Cut(l, " ")
		if !enhancedRe.MatchString(ec) || ec[0] != byte('0'+code/100) {
			continue
		}
		if r.Enhanced == "" {
			r.Enhanced = ec
		}
		lines[i] = rest
	}
	r.Text = oneLine(strings.Join(lines, "\n"))
	return r
}

// oneLine joins reply lines with spaces and drops control characters, so
// that remote text is safe in logs and header fields.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
