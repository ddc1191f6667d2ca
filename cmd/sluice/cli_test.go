package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/internal/testmx"

	"github.com/emersion/go-smtp"
)

// runCLI runs the sluice command line in-process with empty standard
// input and returns its output and exit status.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCLIInput(t, "", args...)
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("data_dir = \".\"\n"), 0o600)
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("data_dir = \".\"\n[smtp]\nlistn = [\"x\"]\nmax_recipients = 0\n"), 0o600)
	if out, errOut, code := runCLI(t, "--config", good, "config", "check"); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check of a good file: code %d, out %q, err %q", code, out, errOut)
	}
	_, errOut, code := runCLI(t, "--config", bad, "config", "check")
	if code != 2 {
		t.Errorf("check of a bad file exited %d, want 2", code)
	}
	for _, want := range []string{`line 3: unknown key "smtp.listn"`, "line 4", "smtp.max_recipients"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("check output %q lacks %q", errOut, want)
		}
	}
	if _, _, code := runCLI(t, "--config", "../../config.example.toml", "config", "check"); code != 0 {
		t.Errorf("config.example.toml does not pass config check")
	}
}

func TestQueueListAndShowThroughTheDaemon(t *testing.T) {
	w := newWorld(t, "one.test")
	w.mx["one.test"].SetHooks(testmx.Hooks{Rcpt: func(string, int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
	}})
	dir := t.TempDir()
	r := startTestDaemon(t, dir, w.daemonConfig(t.TempDir(), ""))
	cfgPath := filepath.Join(dir, "sluice.toml")
	if out, _, _ := runCLI(t, "--config", cfgPath, "queue", "list"); strings.TrimSpace(out) != "Mail queue is empty" {
		t.Errorf("empty queue listed as %q", out)
	}
	id := send(t, r.addr(), "alice@origin.test", []string{"bob@one.test"}, "From: <alice@origin.test>\nSubject: listed\nX-Relay-Priority: 5\n\nhi\n")
	waitRecipientState(t, r, id, "deferred", 10*time.Second)

	out, errOut, code := runCLI(t, "--config", cfgPath, "queue", "list")
	if code != 0 {
		t.Fatalf("queue list: %d %s", code, errOut)
	}
	layout := regexp.MustCompile(`(?m)^-Queue ID- +--Size-- ----Arrival Time---- -Sender/Recipient-------\n` +
		id + ` +\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  alice@origin\.test  \(priority 5, operator default:one\.test\)\n` +
		` +\(host mx\.one\.test\[127\.0\.0\.2\] said: 451 4\.7\.1 greylisted\)\n` +
		` +bob@one\.test\n\n-- 1 Kbytes in 1 Request\.\n$`)
	if !layout.MatchString(out) {
		t.Errorf("queue list does not have the mailq layout:\n%s", out)
	}
	out, _, _ = runCLI(t, "--config", cfgPath, "queue", "list", "--json")
	var m admin.Message
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &m); err != nil {
		t.Fatalf("queue list --json: %v: %q", err, out)
	}
	if m.QueueID != id || m.QueueName != "deferred" || m.Sender != "alice@origin.test" || m.Priority != 5 ||
		len(m.Recipients) != 1 || !strings.Contains(m.Recipients[0].DelayReason, "greylisted") || m.ETA == 0 {
		t.Errorf("queue list --json = %+v", m)
	}
	out, errOut, code = runCLI(t, "--config", cfgPath, "queue", "show", id)
	if code != 0 {
		t.Fatalf("queue show: %d %s", code, errOut)
	}
	for _, want := range []string{"Queue ID:  " + id, "Priority:  5", "bob@one.test", "state: deferred", "attempts: 1",
		"last reply: host mx.one.test[127.0.0.2] said: 451 4.7.1 greylisted", "next attempt:", "Subject: listed"} {
		if !strings.Contains(out, want) {
			t.Errorf("queue show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "X-Relay-Priority") {
		t.Errorf("the priority header was not stripped:\n%s", out)
	}
	out, _, _ = runCLI(t, "--config", cfgPath, "queue", "show", "--json", id)
	var d admin.MessageDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.QueueID != id || d.Recipients[0].Attempts != 1 {
		t.Errorf("queue show --json = %+v, %v", d, err)
	}
	if _, errOut, code := runCLI(t, "--config", cfgPath, "queue", "show", "ABCDEF"); code == 0 || !strings.Contains(errOut, "ABCDEF") {
		t.Errorf("show of an unknown ID: code %d, %q", code, errOut)
	}
	r.stop()
	out, errOut, code = runCLI(t, "--config", cfgPath, "queue", "list")
	if code != 0 || !strings.Contains(errOut, "the daemon is not running; reading the queue file directly") || !strings.Contains(out, id) {
		t.Errorf("list without a daemon: code %d, stdout %q, stderr %q", code, out, errOut)
	}
}
