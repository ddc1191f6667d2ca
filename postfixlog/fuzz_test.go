package postfixlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// FuzzHandle feeds arbitrary messages and values through every event
// form: the output is always whole lines, each with the syslog prefix, and
// no value can start a line of its own.
func FuzzHandle(f *testing.F) {
	f.Add("delivery", "660E82B46F2BC", "bob@one.test", "sent", "mx[192.0.2.1]", "250 ok")
	f.Add("delivery", "ID", "a@b", "expired", "none", "")
	f.Add("accepted", "ID", "a@b", "5", "192.0.2.1", "")
	f.Add("rejected", "", "\"x\\r\\n\"", "rcpt", "550", "Relay\r\ndenied")
	f.Add("other\nline", "ID\r", "to\n", "st at", "re,lay", "rep\x00ly\u2028")
	f.Fuzz(func(t *testing.T, msg, id, to, status, relay, reply string) {
		var buf bytes.Buffer
		l := newTestHandler(&buf, Options{RelayPort: func(string) int { return 25 }})
		args := []any{"queue_id", id, "to", to, "status", status, "relay", relay, "reply", reply,
			"from", to, "size", status, "stage", status, "code", relay, "remote_ip", relay, "reason", reply}
		logAt(l, slog.LevelInfo, msg, args...)
		logAt(l, slog.LevelInfo, "delivery", args...)
		logAt(l, slog.LevelInfo, "accepted", args...)
		logAt(l, slog.LevelWarn, "rejected", args...)
		out := buf.String()
		if !strings.HasSuffix(out, "\n") {
			t.Fatalf("output does not end in a newline: %q", out)
		}
		for _, ln := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !strings.HasPrefix(ln, "Nov  3 10:00:01 relay1 sluice/") {
				t.Fatalf("line without the syslog prefix: %q in %q", ln, out)
			}
			if strings.ContainsAny(ln, "\r\x00") {
				t.Fatalf("control character in %q", ln)
			}
		}
	})
}
