package hostile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/test/harness"
)

// TestHostilePriorityHeader sends messages whose X-Relay-Priority is
// malformed, out of range or huge: each is accepted with priority 1, as
// sluice queue show --json reports; well-formed values are kept. The mail
// stays queued (example.com answers SERVFAIL) so it can be inspected.
func TestHostilePriorityHeader(t *testing.T) {
	d := startHostile(t, smtpConf(100000, 10*time.Second))
	digits := strings.Repeat("9", 900)
	folded := "X-Relay-Priority: " + digits + strings.Repeat("\n "+digits, 40) + "\n" // about 36 kB, folded
	cases := []struct {
		name   string
		header string // complete header lines, LF line ends
		want   float64
	}{
		{"well-formed 5 is kept", "X-Relay-Priority: 5\n", 5},
		{"well-formed 2.5 is kept", "X-Relay-Priority: 2.5\n", 2.5},
		{"no header is 1", "", 1},
		{"empty value is 1", "X-Relay-Priority:\n", 1},
		{"letters are 1", "X-Relay-Priority: high\n", 1},
		{"zero is 1", "X-Relay-Priority: 0\n", 1},
		{"negative is 1", "X-Relay-Priority: -3\n", 1},
		{"exponent is 1", "X-Relay-Priority: 1e3\n", 1},
		{"NaN is 1", "X-Relay-Priority: NaN\n", 1},
		{"over max_priority is 1", "X-Relay-Priority: 11\n", 1},
		{"23-digit number is 1", "X-Relay-Priority: 99999999999999999999999\n", 1},
		{"900-digit number is 1", "X-Relay-Priority: " + digits + "\n", 1},
		{"folded 36 kB value is 1", folded, 1},
		{"four decimals is 1", "X-Relay-Priority: 2.5001\n", 1},
		{"control byte is 1", "X-Relay-Priority: 5\x01\n", 1},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := fmt.Sprintf("prio%d@origin.test", i)
			body := "From: <" + from + ">\n" + tc.header + "Subject: priority\n\nbody\n"
			id, err := harness.Send(d.Addr(), from, []string{"rcpt@example.com"}, body)
			if err != nil {
				t.Fatalf("send: %v", err)
			}
			m, err := d.QueueShow(id)
			if err != nil {
				t.Fatal(err)
			}
			if m.Priority != tc.want {
				t.Errorf("priority: got %v, want %v", m.Priority, tc.want)
			}
		})
	}
}
