package admin

import (
	"context"
	"time"
)

// Backend answers admin requests. The daemon implements it.
type Backend interface {
	List(ctx context.Context, f ListFilter) ([]Message, error)
	Show(ctx context.Context, id string) (*MessageDetail, error)
	Quota(ctx context.Context) ([]OperatorStatus, error)
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
}

// Error is the JSON body of a failed request.
type Error struct {
	Error string `json:"error"`
}

// ErrNotFound is returned by a Backend for an unknown queue ID.
type NotFoundError struct{ ID string }

func (e *NotFoundError) Error() string { return "no message with queue ID " + e.ID }
