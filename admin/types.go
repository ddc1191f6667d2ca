package admin

import (
	"context"
	"fmt"
	"time"
)

// Backend answers admin requests. The daemon implements it over the queue
// and the scheduler.
type Backend interface {
	Reader
	Controller
	// Healthy returns nil when the store and the SMTP listeners are up.
	Healthy(ctx context.Context) error
}

// Reader answers the reading requests. The CLI also implements it over the
// queue file alone when no daemon runs.
type Reader interface {
	List(ctx context.Context, f ListFilter) ([]Message, error)
	Show(ctx context.Context, id string) (*MessageDetail, error)
	// Raw returns the message as stored, headers and body.
	Raw(ctx context.Context, id string) ([]byte, error)
	Quota(ctx context.Context) ([]OperatorStatus, error)
}

// Controller answers the requests that change something.
type Controller interface {
	Act(ctx context.Context, a Action, req ActionRequest) (*ActionResult, error)
	// Suspend stops new connections to an operator for d and returns
	// until when.
	Suspend(ctx context.Context, operator string, d time.Duration, reason string) (time.Time, error)
	Resume(ctx context.Context, operator string) error
	// Reload re-reads the configuration file; a *ReloadError means it was
	// refused and the running configuration kept.
	Reload(ctx context.Context) error
}

// Action is a queue operation, named after the CLI verb.
type Action string

// Queue operations: postsuper's -d, -h, -H, -r (as a retry that keeps the
// budget), and a bounce that fails the recipients with a report.
const (
	ActionDelete  Action = "delete"
	ActionHold    Action = "hold"
	ActionRelease Action = "release"
	ActionRetry   Action = "retry"
	ActionBounce  Action = "bounce"
)

// Actions lists every Action, in the order the CLI documents them.
var Actions = []Action{ActionDelete, ActionHold, ActionRelease, ActionRetry, ActionBounce}

// ActionRequest names the messages an Action applies to: IDs, or All.
type ActionRequest struct {
	IDs []string `json:"ids,omitempty"`
	All bool     `json:"all,omitempty"`
}

// ActionResult reports what an Action did.
type ActionResult struct {
	Action Action `json:"action"`
	// Count is how many messages changed (a hold of a held message does
	// not count).
	Count int `json:"count"`
	// Unknown lists the requested IDs that are not in the queue.
	Unknown []string `json:"unknown,omitempty"`
}

// SuspendRequest is the body of an operator suspension.
type SuspendRequest struct {
	For    string `json:"for"` // a Go duration, e.g. "1h30m"
	Reason string `json:"reason,omitempty"`
}

// SuspendResult is the reply to a suspension.
type SuspendResult struct {
	Operator       string    `json:"operator"`
	SuspendedUntil time.Time `json:"suspended_until"`
}

// ListFilter narrows sluice queue list.
type ListFilter struct {
	Operator  string        `json:"operator,omitempty"`
	State     string        `json:"state,omitempty"` // queued, deferred, hold, waiting, active
	OlderThan time.Duration `json:"older_than,omitempty"`
}

// Message is one queued message as sluice queue list shows it. The JSON
// names of the first fields are those of postqueue -j, so tools written for
// Postfix read it; the rest are sluice's.
type Message struct {
	QueueName   string      `json:"queue_name"` // active, deferred, hold, incoming, waiting
	QueueID     string      `json:"queue_id"`
	ArrivalTime int64       `json:"arrival_time"` // Unix seconds
	MessageSize int64       `json:"message_size"`
	Sender      string      `json:"sender"`
	Recipients  []Recipient `json:"recipients"`
	Priority    float64     `json:"priority"`
	Operator    string      `json:"operator"`
	ETA         int64       `json:"eta,omitempty"` // Unix seconds: when the next attempt is expected
}

// Recipient is one pending recipient of a listed message.
type Recipient struct {
	Address     string `json:"address"`
	DelayReason string `json:"delay_reason,omitempty"`
	State       string `json:"state"`
	Operator    string `json:"operator"`
}

// MessageDetail is sluice queue show: everything known about one message.
type MessageDetail struct {
	QueueID     string            `json:"queue_id"`
	Sender      string            `json:"sender"`
	ArrivalTime time.Time         `json:"arrival_time"`
	MessageSize int64             `json:"message_size"`
	Priority    float64           `json:"priority"`
	Held        bool              `json:"held"`
	ClientIP    string            `json:"client_ip,omitempty"`
	ClientHelo  string            `json:"client_helo,omitempty"`
	Ret         string            `json:"ret,omitempty"`
	EnvID       string            `json:"envid,omitempty"`
	Recipients  []RecipientDetail `json:"recipients"`
	Headers     string            `json:"headers"`
	// Completed is set for a message that left the queue but is still
	// remembered because it went out with VERP return paths.
	Completed bool `json:"completed,omitempty"`
	// Returned lists bounces that came back later to a VERP return path.
	Returned []ReturnedBounce `json:"returned,omitempty"`
}

// ReturnedBounce is an asynchronous bounce matched to a recipient.
type ReturnedBounce struct {
	Recipient  string    `json:"recipient"`
	At         time.Time `json:"at"`
	Client     string    `json:"client,omitempty"`
	Action     string    `json:"action"`
	Status     string    `json:"status"`
	Diagnostic string    `json:"diagnostic,omitempty"`
	RemoteMTA  string    `json:"remote_mta,omitempty"`
	Report     string    `json:"report,omitempty"` // the bounce as received (truncated)
}

// RecipientDetail is one recipient in sluice queue show.
type RecipientDetail struct {
	Address     string    `json:"address"`
	ORCPT       string    `json:"orcpt,omitempty"`
	State       string    `json:"state"`
	Operator    string    `json:"operator"`
	Attempts    int       `json:"attempts"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastReply   string    `json:"last_reply,omitempty"`
	ETA         time.Time `json:"eta,omitzero"`
}

// OperatorStatus is one line of sluice quota.
type OperatorStatus struct {
	Name             string         `json:"name"`
	Backend          string         `json:"backend"` // where usage is counted: local or redis
	Quota            int            `json:"quota"`   // recipients per window; 0 = none
	Window           string         `json:"window"`
	UsedMilli        int64          `json:"used_milli"`
	WindowStart      time.Time      `json:"window_start,omitzero"`
	WindowEnd        time.Time      `json:"window_end,omitzero"`
	Queued           int            `json:"queued"`
	QueuedByPriority map[string]int `json:"queued_by_priority,omitempty"`
	Waiting          int            `json:"waiting"` // deferred, not yet due
	InFlight         int            `json:"in_flight"`
	Connections      int            `json:"connections"`
	SuspendedUntil   time.Time      `json:"suspended_until,omitzero"`
	SuspendReason    string         `json:"suspend_reason,omitempty"`
	ThrottleLevel    int            `json:"throttle_level,omitempty"`
	DrainETA         time.Time      `json:"drain_eta,omitzero"`
	// UsageError is set when the budget store could not say what the
	// window used (a shared store that is down): UsedMilli is then this
	// relay's own estimate.
	UsageError string `json:"usage_error,omitempty"`
}

// Error is the JSON body of a failed request. Kind says which typed error
// the client should return.
type Error struct {
	Error  string `json:"error"`
	Kind   string `json:"kind,omitempty"`
	Detail string `json:"detail,omitempty"` // the ID, operator name or problems the typed error carries
}

// Error kinds.
const (
	kindNotFound        = "not_found"
	kindUnknownOperator = "unknown_operator"
	kindReload          = "reload_refused"
	kindBadRequest      = "bad_request"
)

// NotFoundError is returned for an unknown queue ID.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return "no message with queue ID " + e.ID }

// UnknownOperatorError is returned for an operator the configuration does
// not define.
type UnknownOperatorError struct{ Name string }

func (e *UnknownOperatorError) Error() string {
	return fmt.Sprintf("no operator named %q in the configuration (see sluice quota)", e.Name)
}

// ReloadError means a reload was refused: the new configuration has
// problems, listed in Problems, and the running one stays.
type ReloadError struct{ Problems string }

func (e *ReloadError) Error() string {
	return "configuration not reloaded, the running one stays:\n" + e.Problems
}

// BadRequestError is a request the server cannot make sense of.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }
