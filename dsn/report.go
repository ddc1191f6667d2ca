package dsn

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Action is the RFC 3464 section 2.3.3 action-value of one recipient.
type Action string

// The action values of RFC 3464 section 2.3.3.
const (
	ActionFailed    Action = "failed"
	ActionDelayed   Action = "delayed"
	ActionDelivered Action = "delivered"
	ActionRelayed   Action = "relayed"
	ActionExpanded  Action = "expanded"
)

// IsSuccess reports whether the action is a terminal or partial success
// (delivered, relayed or expanded).
func (a Action) IsSuccess() bool {
	return a == ActionDelivered || a == ActionRelayed || a == ActionExpanded
}

func (a Action) isValid() bool {
	return a == ActionFailed || a == ActionDelayed || a.IsSuccess()
}

// defaultStatus is the RFC 3463 code used when the caller gives none: the
// "other or undefined" detail of the class the action implies.
func (a Action) defaultStatus() string {
	switch a {
	case ActionFailed:
		return "5.0.0"
	case ActionDelayed:
		return "4.0.0"
	}
	return "2.0.0"
}

// Return values for Report.Return (RFC 3461 section 4.3, the RET parameter).
const (
	ReturnFull    = "FULL"
	ReturnHeaders = "HDRS"
)

// DefaultMaxReturnBytes bounds the returned original when Report.MaxReturnBytes
// is zero or negative. It is Postfix's bounce_size_limit.
const DefaultMaxReturnBytes = 50000

// Report describes one notification about one queued message.
type Report struct {
	ReportingMTA string    // our host name: "Reporting-MTA: dns; host"
	From         string    // header From address; empty means MAILER-DAEMON@ReportingMTA
	To           string    // the original envelope sender, who receives the report
	Date         time.Time // the report's Date header; required
	MessageID    string    // the report's Message-ID, "<id@host>"; required
	QueueID      string    // the original message's queue ID; may be empty
	EnvID        string    // RFC 3461 ENVID, xtext-decoded; may be empty
	ArrivalDate  time.Time // when the original arrived; zero omits Arrival-Date

	Recipients []Recipient // at least one

	Original       []byte // the original message, header section and body
	Return         string // ReturnFull, ReturnHeaders or "" (headers)
	MaxReturnBytes int    // RET=FULL returns at most this much; <= 0 means DefaultMaxReturnBytes

	WaitReason string    // delayed reports: one sentence saying why the mail waits
	RetryUntil time.Time // delayed reports: default Will-Retry-Until
}

// Recipient is what happened to one recipient of the original message.
//
// Status and Action are not checked against each other: RFC 3464 section
// 2.3.3 expects a 4.x.x status on a recipient that failed because its
// retries ran out. An empty Status becomes 5.0.0, 4.0.0 or 2.0.0 by Action.
type Recipient struct {
	FinalRecipient    string    // envelope address: "Final-Recipient: rfc822; addr"; required
	OriginalRecipient string    // RFC 3461 ORCPT as "type;addr", xtext-decoded; empty omits it
	Action            Action    // required
	Status            string    // RFC 3463 code "5.1.1"; empty derives one from Action (see below)
	RemoteMTA         string    // remote host name; empty omits Remote-MTA
	DiagnosticCode    string    // the remote reply, "550 5.1.1 user unknown"; may be empty
	LastAttempt       time.Time // zero omits Last-Attempt-Date
	WillRetryUntil    time.Time // delayed only; zero falls back to Report.RetryUntil
}

// ErrInvalidReport is wrapped by every FieldError.
var ErrInvalidReport = errors.New("dsn: invalid report")

// ErrNullSender means the report would go to the null reverse-path. A
// message sent with the null sender is itself a notification, and RFC 5321
// section 4.5.5 forbids answering it with another: that is how report
// loops start.
var ErrNullSender = errors.New("dsn: no report to the null sender")

// FieldError says which Report field is unusable and why. It wraps
// ErrInvalidReport.
type FieldError struct {
	Field  string // e.g. "Recipients[2].Status"
	Reason string
}

func (e *FieldError) Error() string {
	return "dsn: " + e.Field + ": " + e.Reason
}

// Unwrap lets errors.Is match ErrInvalidReport.
func (e *FieldError) Unwrap() error { return ErrInvalidReport }

// validate checks what Build cannot repair by sanitising.
func (r *Report) validate() error {
	if isNullPath(r.To) {
		return ErrNullSender
	}
	if cleanWord(r.ReportingMTA, maxHostBytes) == "" {
		return &FieldError{Field: "ReportingMTA", Reason: "empty"}
	}
	if r.Date.IsZero() {
		return &FieldError{Field: "Date", Reason: "zero"}
	}
	if !isMsgID(r.MessageID) {
		return &FieldError{Field: "MessageID", Reason: "not of the form <left@right>"}
	}
	switch strings.ToUpper(r.Return) {
	case "", ReturnFull, ReturnHeaders:
	default:
		return &FieldError{Field: "Return", Reason: "not FULL or HDRS"}
	}
	if len(r.Recipients) == 0 {
		return &FieldError{Field: "Recipients", Reason: "none"}
	}
	for i := range r.Recipients {
		if err := r.Recipients[i].validate(); err != nil {
			err.Field = "Recipients[" + strconv.Itoa(i) + "]." + err.Field
			return err
		}
	}
	return nil
}

func (rc *Recipient) validate() *FieldError {
	if strings.TrimSpace(rc.FinalRecipient) == "" {
		return &FieldError{Field: "FinalRecipient", Reason: "empty"}
	}
	if !rc.Action.isValid() {
		return &FieldError{Field: "Action", Reason: "unknown action " + quoteClean(string(rc.Action))}
	}
	if rc.Status != "" && !IsStatusCode(rc.Status) {
		return &FieldError{Field: "Status", Reason: "not an RFC 3463 code: " + quoteClean(rc.Status)}
	}
	return nil
}

// status returns the recipient's status code, derived from the action when
// the caller gave none.
func (rc *Recipient) status() string {
	if rc.Status != "" {
		return rc.Status
	}
	return rc.Action.defaultStatus()
}

// kind is the action that decides the report's subject and introduction:
// any failure makes it a failure report, else any delay a delay report.
func (r *Report) kind() Action {
	k := ActionDelivered
	for _, rc := range r.Recipients {
		switch {
		case rc.Action == ActionFailed:
			return ActionFailed
		case rc.Action == ActionDelayed:
			k = ActionDelayed
		}
	}
	return k
}

// returnsFull reports whether the whole original goes back. RFC 3461
// section 4.3 defines RET for failure reports only; delay and success
// reports carry the headers.
func (r *Report) returnsFull() bool {
	return strings.EqualFold(r.Return, ReturnFull) && r.kind() == ActionFailed
}

func (r *Report) maxReturnBytes() int {
	if r.MaxReturnBytes <= 0 {
		return DefaultMaxReturnBytes
	}
	return r.MaxReturnBytes
}

// IsStatusCode reports whether s is an RFC 3463 status code as RFC 3464
// section 2.3.4 writes it: class 2, 4 or 5, then two numbers of one to three
// digits without leading zeros, separated by dots.
func IsStatusCode(s string) bool {
	class, rest, ok := strings.Cut(s, ".")
	if !ok || (class != "2" && class != "4" && class != "5") {
		return false
	}
	subject, detail, ok := strings.Cut(rest, ".")
	return ok && isStatusNumber(subject) && isStatusNumber(detail)
}

func isStatusNumber(s string) bool {
	if len(s) == 0 || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isNullPath reports whether addr is the null reverse-path of RFC 5321
// section 4.1.1.2, written bare or in angle brackets.
func isNullPath(addr string) bool {
	a := strings.TrimSpace(addr)
	return a == "" || a == "<>"
}

// isMsgID accepts the printable-ASCII form "<left@right>" of RFC 5322
// section 3.6.4, which is all the Message-IDs the caller makes look like.
func isMsgID(s string) bool {
	if len(s) < 5 || len(s) > maxHostBytes || s[0] != '<' || s[len(s)-1] != '>' {
		return false
	}
	left, right, ok := strings.Cut(s[1:len(s)-1], "@")
	if !ok || left == "" || right == "" {
		return false
	}
	for _, c := range []byte(left + right) {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '@' {
			return false
		}
	}
	return true
}

// quoteClean makes caller input safe to put in an error message.
func quoteClean(s string) string {
	return `"` + cleanText(s, 64) + `"`
}
