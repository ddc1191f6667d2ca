package scheduler

import (
	"fmt"
	"time"
)

// Events receives what the scheduler does, for metrics. Labels are bounded:
// operator labels, never addresses or queue IDs. Calls come from the loop
// and from workers, so implementations must be safe for concurrent use and
// must not block.
type Events interface {
	// Delivery is one recipient's attempt outcome: status is sent,
	// deferred, bounced or expired; d the transaction's duration.
	Delivery(operator, status string, d time.Duration)
	// Reply is one SMTP reply code received from a remote server.
	Reply(operator string, code int)
	// Budget reports an operator's usage in its current window.
	Budget(operator string, usedMilli, quotaMilli int64, windowEnd time.Time)
	// OperatorState reports a suspension starting or ending.
	OperatorState(operator string, suspended bool)
}

type nopEvents struct{}

func (nopEvents) Delivery(string, string, time.Duration) {}
func (nopEvents) Reply(string, int)                      {}
func (nopEvents) Budget(string, int64, int64, time.Time) {}
func (nopEvents) OperatorState(string, bool)             {}

// formatUnits renders milli-units as units with three decimals.
func formatUnits(milli int64) string {
	return fmt.Sprintf("%d.%03d", milli/UnitMilli, milli%UnitMilli)
}

func (s *Scheduler) rndFloat() float64 {
	s.rndMu.Lock()
	defer s.rndMu.Unlock()
	return s.rnd.Float64()
}
