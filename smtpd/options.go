package smtpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/sluice-mta/sluice/queue"
)

// Enqueuer commits accepted messages durably.
type Enqueuer interface {
	// NewID allocates the queue ID before DATA ends, so that it can appear in
	// the Received field.
	NewID() (seq uint64, id string)
	// Enqueue commits the message and its body; it returns nil only once the
	// commit is synced. errors.Is(err, queue.ErrNoSpace) means "try later".
	Enqueue(ctx context.Context, m *queue.Message, body []byte) error
}

// Admitter is optional backlog admission control: a non-nil error refuses a
// relay recipient with 452 4.7.1 and the error's text.
type Admitter interface {
	Admit(rcpt string) error
}

// Intake is optional: it recognises sluice's own addresses (VERP bounce
// returns), which anyone may send to, and takes the messages sent to them.
type Intake interface {
	IsLocal(rcpt string) bool
	Receive(ctx context.Context, from string, rcpts []string, body []byte, client string) error
}

// Options configure a Server. Every limit must be set: go-smtp treats zero as
// "no limit", so New refuses zeros rather than silently running unbounded.
type Options struct {
	Hostname        string         // our name in the greeting and in Received
	Listen          []string       // host:port each, for Start
	TrustedNetworks []netip.Prefix // clients that may relay

	MaxMessageBytes int64 // body size cap (also advertised as SIZE, RFC 1870)
	MaxRecipients   int   // per transaction; the extra RCPT gets 452 4.5.3
	MaxLineLength   int   // including CRLF; RFC 5321 4.5.3.1.6 wants at least 1000
	MaxConnections  int   // concurrent connections over all listeners

	// ReadTimeout bounds each command wait and, because go-smtp does not
	// renew it while a body streams, the whole DATA transfer.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration

	PriorityHeader      string // header field carrying the priority, e.g. X-Relay-Priority
	MaxPriorityMilli    uint32 // highest priority times 1000; at least 1000
	StripPriorityHeader bool   // remove the field from stored messages

	TLSConfig *tls.Config      // nil: no STARTTLS
	Now       func() time.Time // clock for Received dates and arrival times; nil: time.Now
	Logger    *slog.Logger     // required

	Enqueuer Enqueuer // required
	Admitter Admitter // optional
	Intake   Intake   // optional

	// OnMessage, if set, is told the outcome of each message and of each
	// refused command, for metrics: ResultAccepted once a message is
	// committed, ResultRejected for a 5xx and ResultTempfail for a 4xx
	// reply to MAIL, RCPT or the end of DATA. It must not block.
	OnMessage func(result string)
}

// Outcomes reported to Options.OnMessage.
const (
	ResultAccepted = "accepted"
	ResultRejected = "rejected"
	ResultTempfail = "tempfail"
)

// report tells OnMessage about an outcome: accepted, or the class of a
// refusal's reply code.
func (o *Options) report(code int) {
	if o.OnMessage == nil {
		return
	}
	switch {
	case code < 400:
		o.OnMessage(ResultAccepted)
	case code < 500:
		o.OnMessage(ResultTempfail)
	default:
		o.OnMessage(ResultRejected)
	}
}

// minLineLength is the shortest text line RFC 5321 4.5.3.1.6 lets a server
// impose (1000 octets including CRLF).
const minLineLength = 1000

// OptionError reports an invalid Option.
type OptionError struct {
	Option  string // field name in Options
	Problem string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("smtpd: option %s: %s", e.Option, e.Problem)
}

func optErr(option, format string, args ...any) error {
	return &OptionError{Option: option, Problem: fmt.Sprintf(format, args...)}
}

// validate checks o and fills the defaults that are safe to fill.
func (o *Options) validate() error {
	if err := validDomain(o.Hostname); err != nil {
		return optErr("Hostname", "%q is not a domain name: %v", o.Hostname, err)
	}
	for _, a := range o.Listen {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return optErr("Listen", "%q is not host:port: %v", a, err)
		}
	}
	for _, p := range o.TrustedNetworks {
		if !p.IsValid() {
			return optErr("TrustedNetworks", "invalid prefix %v", p)
		}
	}
	if err := o.validateLimits(); err != nil {
		return err
	}
	if !validFieldName(o.PriorityHeader) {
		return optErr("PriorityHeader", "%q is not a header field name", o.PriorityHeader)
	}
	if o.MaxPriorityMilli < 1000 {
		return optErr("MaxPriorityMilli", "must be at least 1000 (priority 1), got %d", o.MaxPriorityMilli)
	}
	if o.Logger == nil {
		return optErr("Logger", "required")
	}
	if o.Enqueuer == nil {
		return optErr("Enqueuer", "required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

func (o *Options) validateLimits() error {
	switch {
	case o.MaxMessageBytes <= 0:
		return optErr("MaxMessageBytes", "must be positive, got %d", o.MaxMessageBytes)
	case o.MaxRecipients <= 0:
		return optErr("MaxRecipients", "must be positive, got %d", o.MaxRecipients)
	case o.MaxLineLength < minLineLength:
		return optErr("MaxLineLength", "must be at least %d (RFC 5321 4.5.3.1.6), got %d", minLineLength, o.MaxLineLength)
	case o.MaxConnections <= 0:
		return optErr("MaxConnections", "must be positive, got %d", o.MaxConnections)
	case o.ReadTimeout <= 0:
		return optErr("ReadTimeout", "must be positive, got %v", o.ReadTimeout)
	case o.WriteTimeout <= 0:
		return optErr("WriteTimeout", "must be positive, got %v", o.WriteTimeout)
	}
	return nil
}

// validFieldName reports whether name is an RFC 5322 2.2 field name:
// printable US-ASCII except colon.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}
