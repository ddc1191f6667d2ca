package postfixlog

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The patterns pflogsumm 1.1.5 applies to each line, transcribed: a
// traditional syslog prefix, then "NAME/PROCESS[PID]: QUEUEID: ", then the
// event. A line the tools should count must match them.
var (
	pfSyslog   = regexp.MustCompile(`^(...) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) \S+ (.+)$`)
	pfCmdQID   = regexp.MustCompile(`^(?:postfix|sluice)(?:/(?:smtps|submission))?/([^\[:]*).*?: ([^:\s]+)`)
	pfTo       = regexp.MustCompile(`to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), (?:conn_use=[^,]+, )?delay=([^,]+), (?:delays=[^,]+, )?(?:dsn=[^,]+, )?status=(\S+)(.*)$`)
	pfFrom     = regexp.MustCompile(`from=<([^>]*)>, size=(\d+)`)
	pfDeferred = regexp.MustCompile(`, status=deferred \(([^\)]+)`)
	pfBounced  = regexp.MustCompile(`, status=bounced \((.+)\)`)
	pfClient   = regexp.MustCompile(`\[\d+\]: \w+: client=(.+?)(,|$)`)
	pfReject   = regexp.MustCompile(`\[\d+\]: \w+: (reject(?:_warning)?|hold|discard): `)
	pfExpired  = regexp.MustCompile(`^\w{3} [ :0-9]{11} [._[:alnum:]-]+ sluice/n?qmgr\[[0-9]+\]: [[:alnum:]]+: from=<.*>, status=expired, returned to sender$`)
)

var testTime = time.Date(2025, time.November, 3, 10, 0, 1, 0, time.UTC)

// newTestHandler returns a handler writing to buf with fixed host, PID and
// clock, and a logger over it.
func newTestHandler(buf *bytes.Buffer, o Options) *slog.Logger {
	o.Hostname, o.PID = "relay1", 4242
	o.Now = func() time.Time { return testTime }
	return slog.New(New(buf, o))
}

// logAt writes one record with a fixed time.
func logAt(l *slog.Logger, level slog.Level, msg string, args ...any) {
	r := slog.NewRecord(testTime, level, msg, 0)
	r.Add(args...)
	_ = l.Handler().Handle(context.Background(), r)
}

func deliveryArgs(status, relay, dsn, reply string) []any {
	return []any{"queue_id", "660E82B46F2BC", "from", "alice@origin.test", "to", "bob@one.test", "relay", relay,
		"delay", "1.2", "delays", "0/0.01/0.3/0.9", "dsn", dsn, "status", status, "operator", "bigmail",
		"attempt", 1, "reply", reply}
}

func TestDeliveryLines(t *testing.T) {
	port := func(op string) int {
		if op == "bigmail" {
			return 25
		}
		return 0
	}
	tests := []struct {
		name   string
		args   []any
		want   string
		status string
		reason *regexp.Regexp
	}{
		{
			name:   "sent",
			args:   deliveryArgs("sent", "mx.one.test[192.0.2.1]", "2.0.0", "250 2.0.0 Ok: queued as 1234"),
			want:   "Nov  3 10:00:01 relay1 sluice/smtp[4242]: 660E82B46F2BC: to=<bob@one.test>, relay=mx.one.test[192.0.2.1]:25, delay=1.2, delays=0/0.01/0.3/0.9, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234)",
			status: "sent",
		},
		{
			name:   "deferred by the remote",
			args:   deliveryArgs("deferred", "mx.one.test[192.0.2.1]", "4.7.1", "451 4.7.1 greylisted"),
			want:   "Nov  3 10:00:01 relay1 sluice/smtp[4242]: 660E82B46F2BC: to=<bob@one.test>, relay=mx.one.test[192.0.2.1]:25, delay=1.2, delays=0/0.01/0.3/0.9, dsn=4.7.1, status=deferred (host mx.one.test[192.0.2.1] said: 451 4.7.1 greylisted)",
			status: "deferred",
			reason: pfDeferred,
		},
		{
			name:   "bounced with no relay",
			args:   deliveryArgs("bounced", "none", "5.1.2", "5.1.2 domain does not exist"),
			want:   "Nov  3 10:00:01 relay1 sluice/smtp[4242]: 660E82B46F2BC: to=<bob@one.test>, relay=none, delay=1.2, delays=0/0.01/0.3/0.9, dsn=5.1.2, status=bounced (5.1.2 domain does not exist)",
			status: "bounced",
			reason: pfBounced,
		},
		{
			name:   "original recipient",
			args:   append(deliveryArgs("sent", "mx.one.test[192.0.2.1]", "2.0.0", "250 ok"), "orig_to", "rfc822;Bob@One.test"),
			want:   "Nov  3 10:00:01 relay1 sluice/smtp[4242]: 660E82B46F2BC: to=<bob@one.test>, orig_to=<Bob@One.test>, relay=mx.one.test[192.0.2.1]:25, delay=1.2, delays=0/0.01/0.3/0.9, dsn=2.0.0, status=sent (250 ok)",
			status: "sent",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logAt(newTestHandler(&buf, Options{RelayPort: port}), slog.LevelInfo, "delivery", tt.args...)
			got := strings.TrimSuffix(buf.String(), "\n")
			if got != tt.want {
				t.Errorf("line:\n got %s\nwant %s", got, tt.want)
			}
			m := pfSyslog.FindStringSubmatch(got)
			if m == nil {
				t.Fatalf("pflogsumm's syslog pattern does not match %q", got)
			}
			cq := pfCmdQID.FindStringSubmatch(m[6])
			if cq == nil || cq[1] != "smtp" || cq[2] != "660E82B46F2BC" {
				t.Errorf("pflogsumm's command/queue ID pattern got %q, want smtp and the queue ID", cq)
			}
			to := pfTo.FindStringSubmatch(m[6])
			if to == nil || to[1] != "bob@one.test" || to[3] != "1.2" || to[4] != tt.status {
				t.Errorf("pflogsumm's to= pattern got %q, want bob@one.test, delay 1.2, status %s", to, tt.status)
			}
			if tt.reason != nil && tt.reason.FindStringSubmatch(got) == nil {
				t.Errorf("pflogsumm's %s reason pattern does not match %q", tt.status, got)
			}
		})
	}
}

func TestExpiredWritesTheMessageLineOnce(t *testing.T) {
	var buf bytes.Buffer
	l := newTestHandler(&buf, Options{})
	for _, to := range []string{"a@one.test", "b@one.test"} {
		args := deliveryArgs("expired", "none", "4.4.7", "message expired in the queue")
		args[5] = to
		logAt(l, slog.LevelInfo, "delivery", args...)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3 (one message line, two recipient lines):\n%s", len(lines), buf.String())
	}
	if !pfExpired.MatchString(lines[0]) {
		t.Errorf("first line %q is not Postfix's expiry line", lines[0])
	}
	for _, ln := range lines[1:] {
		if !strings.Contains(ln, "status=expired, returned to sender (message expired in the queue)") || !pfTo.MatchString(ln) {
			t.Errorf("recipient line %q lacks the expiry status", ln)
		}
	}
}

func TestAcceptedAndRejectedLines(t *testing.T) {
	var buf bytes.Buffer
	l := newTestHandler(&buf, Options{}).With("component", "smtpd", "conn_id", "c1", "remote_ip", "192.0.2.9")
	logAt(l.With("queue_id", "660E82B46F2BC"), slog.LevelInfo, "accepted", "from", "", "size", 411, "nrcpt", 2, "priority", "5")
	logAt(l, slog.LevelInfo, "rejected", "stage", "rcpt", "code", 550, "reason", "<x@y.test>: Relay access denied", "to", "x@y.test")
	want := []string{
		"Nov  3 10:00:01 relay1 sluice/smtpd[4242]: 660E82B46F2BC: client=unknown[192.0.2.9]",
		"Nov  3 10:00:01 relay1 sluice/qmgr[4242]: 660E82B46F2BC: from=<>, size=411, nrcpt=2, priority=5 (queue active)",
		"Nov  3 10:00:01 relay1 sluice/smtpd[4242]: NOQUEUE: reject: RCPT from unknown[192.0.2.9]: 550 <x@y.test>: Relay access denied; to=<x@y.test>",
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if m := pfClient.FindStringSubmatch(got[0]); m == nil || m[1] != "unknown[192.0.2.9]" {
		t.Errorf("pflogsumm's client= pattern got %q", m)
	}
	if m := pfFrom.FindStringSubmatch(got[1]); m == nil || m[1] != "" || m[2] != "411" {
		t.Errorf("pflogsumm's from= pattern got %q, want the null sender and size 411", m)
	}
	if !pfReject.MatchString(got[2]) {
		t.Errorf("pflogsumm's reject pattern does not match %q", got[2])
	}
}

func TestGenericLines(t *testing.T) {
	tests := []struct {
		name  string
		level slog.Level
		msg   string
		args  []any
		want  string
	}{
		{"info with fields", slog.LevelInfo, "operator suspended",
			[]any{"component", "scheduler", "operator", "bigmail", "until", testTime, "reason", "manual, by admin"},
			`sluice/scheduler[4242]: operator suspended: operator=bigmail, until=2025-11-03T10:00:01Z, reason="manual, by admin"`},
		{"warning with queue ID", slog.LevelWarn, "connection lost after the final dot",
			[]any{"component", "scheduler", "queue_id", "ABC123", "to", "x@y"},
			`sluice/scheduler[4242]: ABC123: warning: connection lost after the final dot: to=x@y`},
		{"error value", slog.LevelError, "closing the queue", []any{"err", errors.New("disk on fire")},
			`sluice/main[4242]: error: closing the queue: err="disk on fire"`},
		{"no newline survives", slog.LevelInfo, "line\nbreak", []any{"v", "a\r\nb"},
			`sluice/main[4242]: line break: v="a  b"`},
		{"groups", slog.LevelInfo, "g", []any{slog.Group("a", "b", 1, slog.Group("c", "d", 2))},
			`sluice/main[4242]: g: a.b=1, a.c.d=2`},
		{"delivery without its fields", slog.LevelInfo, "delivery", []any{"to", "x@y"},
			`sluice/main[4242]: delivery: to=x@y`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logAt(newTestHandler(&buf, Options{}), tt.level, tt.msg, tt.args...)
			got := strings.TrimPrefix(strings.TrimSuffix(buf.String(), "\n"), "Nov  3 10:00:01 relay1 ")
			if got != tt.want {
				t.Errorf("line:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestLevelAndWithGroup(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	l := newTestHandler(&buf, Options{Level: lv})
	l.Info("hidden")
	if buf.Len() != 0 {
		t.Fatalf("an Info record was written at level Warn: %q", buf.String())
	}
	lv.Set(slog.LevelDebug)
	l.WithGroup("g").With("k", "v").Debug("shown", "n", 1)
	if got, want := buf.String(), "debug: shown: g.k=v, g.n=1\n"; !strings.HasSuffix(got, want) {
		t.Errorf("got %q, want suffix %q", got, want)
	}
}
