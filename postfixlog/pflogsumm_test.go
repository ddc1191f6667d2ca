package postfixlog

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestPflogsummReadsTheLog runs the real pflogsumm over a log written by
// the handler: one message received, one recipient delivered, one
// deferred, one bounced, one refusal. It skips when pflogsumm is not
// installed, and fails then under SLUICE_REQUIRE_SERVERS=1 (CI).
func TestPflogsummReadsTheLog(t *testing.T) {
	bin, err := exec.LookPath("pflogsumm")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/pflogsumm"); serr != nil {
			if os.Getenv("SLUICE_REQUIRE_SERVERS") == "1" {
				t.Fatal("pflogsumm is not installed (apt-get install pflogsumm)")
			}
			t.Skip("pflogsumm is not installed")
		}
		bin = "/usr/sbin/pflogsumm"
	}
	var buf bytes.Buffer
	l := newTestHandler(&buf, Options{RelayPort: func(string) int { return 25 }})
	in := l.With("component", "smtpd", "conn_id", "c1", "remote_ip", "192.0.2.9")
	logAt(in.With("queue_id", "660E82B46F2BC"), slog.LevelInfo, "accepted", "from", "alice@origin.test", "size", 4096, "nrcpt", 3)
	logAt(in, slog.LevelInfo, "rejected", "stage", "rcpt", "code", 550, "reason", "<x@y.test>: Relay access denied", "to", "x@y.test")
	sched := l.With("component", "scheduler")
	for _, d := range [][]any{
		deliveryArgs("sent", "mx.one.test[192.0.2.1]", "2.0.0", "250 2.0.0 Ok"),
		deliveryArgs("deferred", "mx.one.test[192.0.2.1]", "4.7.1", "451 4.7.1 greylisted"),
		deliveryArgs("bounced", "mx.one.test[192.0.2.1]", "5.1.1", "550 5.1.1 no such user"),
	} {
		logAt(sched, slog.LevelInfo, "delivery", d...)
	}
	path := filepath.Join(t.TempDir(), "mail.log")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--syslog-name=sluice", path).CombinedOutput()
	if err != nil {
		t.Fatalf("pflogsumm: %v\n%s", err, out)
	}
	t.Logf("log:\n%s\npflogsumm:\n%s", buf.String(), out)
	for _, want := range []string{
		`(?m)^\s+1\s+received$`,
		`(?m)^\s+1\s+delivered$`,
		`(?m)^\s+1\s+deferred\s`,
		`(?m)^\s+1\s+bounced$`,
		`(?m)^\s+1\s+rejected\s`,
		`(?m)^\s+4096\s+bytes received$`,
		`(?m)greylisted`,
		`(?m)no such user`,
		`(?m)^\s+1\s+4096\s+1\s+1\.2 s\s+1\.2 s\s+one\.test$`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("pflogsumm's report does not match %s", want)
		}
	}
}
