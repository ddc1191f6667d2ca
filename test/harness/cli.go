package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-mta/sluice/admin"
)

// QueueList runs sluice queue list --json and decodes its one object per
// line.
func (d *Daemon) QueueList() ([]admin.Message, error) {
	out, err := d.CLI("queue", "list", "--json")
	if err != nil {
		return nil, err
	}
	var msgs []admin.Message
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var m admin.Message
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("queue list --json: %w", err)
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// QueueShow runs sluice queue show --json ID.
func (d *Daemon) QueueShow(id string) (*admin.MessageDetail, error) {
	out, err := d.CLI("queue", "show", "--json", id)
	if err != nil {
		return nil, err
	}
	var m admin.MessageDetail
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("queue show --json: %w: %s", err, out)
	}
	return &m, nil
}

// Quota runs sluice quota --json.
func (d *Daemon) Quota() ([]admin.OperatorStatus, error) {
	out, err := d.CLI("quota", "--json")
	if err != nil {
		return nil, err
	}
	var ops []admin.OperatorStatus
	if err := json.Unmarshal(out, &ops); err != nil {
		return nil, fmt.Errorf("quota --json: %w: %s", err, out)
	}
	return ops, nil
}

// WaitShow polls queue show until ok accepts the detail or timeout passes;
// it returns the last detail seen and whether ok accepted it. Polling is
// how a test observes another process; each poll is a CLI run.
func (d *Daemon) WaitShow(id string, timeout time.Duration, ok func(*admin.MessageDetail) bool) (*admin.MessageDetail, bool) {
	var last *admin.MessageDetail
	found := Poll(timeout, func() bool {
		m, err := d.QueueShow(id)
		if err != nil {
			return false
		}
		last = m
		return ok(m)
	})
	return last, found
}

// WaitQueueEmpty polls queue list until it is empty.
func (d *Daemon) WaitQueueEmpty(timeout time.Duration) ([]admin.Message, bool) {
	var last []admin.Message
	found := Poll(timeout, func() bool {
		msgs, err := d.QueueList()
		if err != nil {
			return false
		}
		last = msgs
		return len(msgs) == 0
	})
	return last, found
}

// pollInterval is the pause between two looks at another process.
const pollInterval = 100 * time.Millisecond

// maxPolls bounds every Poll loop whatever the timeout.
const maxPolls = 3000

// Poll calls cond until it returns true or timeout passes, pausing
// pollInterval in between; it reports whether cond returned true. Use it
// only to observe another process (the daemon, Postfix), which offers no
// notification.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for range maxPolls {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return false
}
