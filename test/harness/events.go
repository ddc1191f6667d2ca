package harness

import (
	"fmt"
	"time"
)

// Deliveries returns the daemon's "delivery" log records for recipient to,
// in log order.
func (d *Daemon) Deliveries(to string) []map[string]any {
	var out []map[string]any
	for _, r := range d.LogRecords("delivery") {
		if r["to"] == to {
			out = append(out, r)
		}
	}
	return out
}

// WaitDelivery polls the log until a "delivery" record for to has the
// given status (sent, deferred, bounced) and returns it.
func (d *Daemon) WaitDelivery(to, status string, timeout time.Duration) (map[string]any, error) {
	var found map[string]any
	ok := Poll(timeout, func() bool {
		for _, r := range d.Deliveries(to) {
			if r["status"] == status {
				found = r
				return true
			}
		}
		return false
	})
	if !ok {
		return nil, fmt.Errorf("no delivery record for %s with status=%s within %v; records: %v", to, status, timeout, d.Deliveries(to))
	}
	return found, nil
}

// Str returns a log record's field as a string ("" when absent).
func Str(rec map[string]any, key string) string {
	if v, ok := rec[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}
