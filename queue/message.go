package queue

import (
	"errors"
	"time"
)

// State is where one recipient stands.
type State uint8

// Recipient states. A message leaves the queue when none of its recipients is
// Queued or Deferred any more.
const (
	StateQueued   State = 1 // waiting for its first attempt (or for budget)
	StateDeferred State = 2 // an attempt failed temporarily; NextAttempt says when to retry
	StateSent     State = 3 // accepted by the remote side
	StateFailed   State = 4 // permanently failed or expired; a bounce was queued if due
)

func (s State) String() string {
	switch s {
	case StateQueued:
		return "queued"
	case StateDeferred:
		return "deferred"
	case StateSent:
		return "sent"
	case StateFailed:
		return "failed"
	}
	return "unknown"
}

// IsPending reports whether the recipient still needs delivery.
func (s State) IsPending() bool { return s == StateQueued || s == StateDeferred }

// Notify is the RFC 3461 NOTIFY parameter of one recipient, as a bit set.
// Zero means the client gave none (the default: failures and delays).
type Notify uint8

// Notify bits.
const (
	NotifyNever   Notify = 1 << iota // NOTIFY=NEVER
	NotifySuccess                    // NOTIFY=SUCCESS
	NotifyFailure                    // NOTIFY=FAILURE
	NotifyDelay                      // NOTIFY=DELAY
)

// Wants reports whether a report of kind k (NotifySuccess, NotifyFailure or
// NotifyDelay) should be sent. Without NOTIFY, RFC 3461 section 4.1 lets the
// MTA report failures and delays.
func (n Notify) Wants(k Notify) bool {
	if n == 0 {
		return k == NotifyFailure || k == NotifyDelay
	}
	if n&NotifyNever != 0 {
		return false
	}
	return n&k != 0
}

// Reply is the last answer seen for a recipient, or a local diagnosis.
type Reply struct {
	Code       int    // SMTP basic code; 0 for a local or network diagnosis
	Enhanced   string // RFC 3463 code such as "4.7.0"; may be empty
	Text       string // reply text, CR and LF removed
	RemoteHost string // MX host name (or relay) that gave it; empty if local
	RemoteIP   string
}

// Reservation records budget units taken for a recipient's current attempt,
// so they can be given back if the attempt never happens or is refused.
type Reservation struct {
	Operator    string
	WindowStart time.Time
	CostMilli   int64
}

// Recipient is one envelope recipient of a message and its delivery state.
type Recipient struct {
	Index          int    // position in Message.Recipients; stable for the message's life
	Addr           string // RCPT TO address, without angle brackets
	ORCPT          string // RFC 3461 ORCPT as "type;address" (e.g. "rfc822;a@b"), or empty
	Notify         Notify
	State          State
	Attempts       int
	NextAttempt    time.Time // when the next attempt may start (zero: now)
	LastAttempt    time.Time
	LastReply      Reply
	Reserved       Reservation // zero when nothing is reserved
	DelayNotified  bool        // a "delayed" DSN went out for this recipient
	MaybeDuplicate bool        // a previous attempt may have delivered (connection lost after the final dot)
}

// Message is an accepted message: envelope, DSN parameters and recipients.
// The body is stored separately and read with Store.Body.
type Message struct {
	ID            string    // queue ID as shown to users; see FormatID
	Seq           uint64    // numeric form of ID, the store key
	From          string    // envelope sender; empty for the null sender <>
	Arrival       time.Time // when the 250 was given
	PriorityMilli uint32    // declared priority times 1000 (1000 = priority 1)
	ClientIP      string
	ClientHelo    string
	Ret           string // RFC 3461 RET: "FULL", "HDRS" or empty
	EnvID         string // RFC 3461 ENVID, decoded; may be empty
	Size          int64  // body size in bytes
	Held          bool   // on hold: not scheduled until released
	Recipients    []Recipient

	bodyInFile bool // the body lives in its own file, not in bbolt
}

// Errors returned by the store.
var (
	// ErrNoSpace means the store could not grow (disk full or quota): the
	// client should get 452 4.3.1 and try later.
	ErrNoSpace = errors.New("queue: no space left for the store")
	// ErrNotFound means no message has the given ID.
	ErrNotFound = errors.New("queue: no such message")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("queue: store closed")
)
