package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/dsn"
	"github.com/sluice-mta/sluice/internal/testmx"
)

// greylistAll makes an MX answer every RCPT with 451, so mail stays
// deferred; greylistNone lets it through.
func greylistAll(mx *testmx.Server) {
	mx.SetHooks(testmx.Hooks{Rcpt: func(string, int) *smtp.SMTPError {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted"}
	}})
}

// cliFor returns a runner of the CLI on one configuration file that fails
// the test on a non-zero exit, and checks the daemon was asked (no notice
// about reading the queue file).
func cliFor(t *testing.T, cfgPath string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, append([]string{"--config", cfgPath}, args...)...)
		if code != 0 {
			t.Fatalf("sluice %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		if strings.Contains(errOut, "not running") {
			t.Fatalf("sluice %s did not reach the daemon: %s", strings.Join(args, " "), errOut)
		}
		return out
	}
}

func listJSON(t *testing.T, out string) []admin.Message {
	t.Helper()
	var msgs []admin.Message
	for _, ln := range strings.Split(strings.TrimSpace(out), "\n") {
		if ln == "" {
			continue
		}
		var m admin.Message
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("queue list --json line %q: %v", ln, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func TestQueueVerbsThroughTheDaemon(t *testing.T) {
	w := newWorld(t, "one.test", "origin.test")
	greylistAll(w.mx["one.test"])
	dir := t.TempDir()
	r := startTestDaemon(t, dir, slowRetryConfig(w, t.TempDir(), ""))
	cli := cliFor(t, filepath.Join(dir, "sluice.toml"))
	var ids []string
	for i := range 3 {
		ids = append(ids, send(t, r.addr(), "alice@origin.test", []string{fmt.Sprintf("bob%d@one.test", i)},
			fmt.Sprintf("From: <alice@origin.test>\nSubject: verbs %d\nX-Relay-Priority: 2\n\nbody %d\n", i, i)))
	}
	for _, id := range ids {
		waitRecipientState(t, r, id, "deferred", 10*time.Second)
	}

	t.Run("list in the mailq layout", func(t *testing.T) {
		out := cli("queue", "list")
		entry := ` +\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d  alice@origin\.test  \(priority 2, operator default:one\.test\)\n` +
			` +\(host mx\.one\.test\[127\.0\.0\.2\] said: 451 4\.7\.1 greylisted\)\n +bob\d@one\.test\n\n`
		layout := regexp.MustCompile(`^-Queue ID- +--Size-- ----Arrival Time---- -Sender/Recipient-------\n` +
			`(?:[0-9A-F]+` + entry + `){3}-- 1 Kbytes in 3 Requests\.\n$`)
		if !layout.MatchString(out) {
			t.Errorf("queue list is not in the mailq layout:\n%s", out)
		}
	})
	t.Run("list --json", func(t *testing.T) {
		msgs := listJSON(t, cli("queue", "list", "--json"))
		if len(msgs) != 3 {
			t.Fatalf("queue list --json wrote %d objects, want 3", len(msgs))
		}
		for _, m := range msgs {
			if m.QueueName != "deferred" || m.ArrivalTime == 0 || m.MessageSize == 0 || m.Sender != "alice@origin.test" ||
				m.Priority != 2 || m.Operator != "default:one.test" || m.ETA == 0 || len(m.Recipients) != 1 ||
				!strings.Contains(m.Recipients[0].DelayReason, "greylisted") {
				t.Errorf("queue list --json object %+v lacks a field", m)
			}
		}
	})
	t.Run("show and cat", func(t *testing.T) {
		out := cli("queue", "show", ids[0])
		for _, want := range []string{"Queue ID:  " + ids[0], "bob0@one.test", "state: deferred", "Subject: verbs 0"} {
			if !strings.Contains(out, want) {
				t.Errorf("queue show lacks %q:\n%s", want, out)
			}
		}
		raw := cli("queue", "cat", ids[0])
		if !strings.HasPrefix(raw, "Received: from client.test") || !strings.Contains(raw, "Subject: verbs 0\r\n") || !strings.HasSuffix(raw, "body 0\r\n") {
			t.Errorf("queue cat is not the stored message:\n%q", raw)
		}
		var cj catJSON
		if err := json.Unmarshal([]byte(cli("queue", "cat", "--json", ids[0])), &cj); err != nil || cj.Message != raw || cj.QueueID != ids[0] {
			t.Errorf("queue cat --json = %+v, %v", cj, err)
		}
	})
	t.Run("hold then release", func(t *testing.T) {
		if out := cli("queue", "hold", ids[0]); out != "Placed on hold: 1 message\n" {
			t.Errorf("hold said %q", out)
		}
		if out := cli("queue", "hold", ids[0]); out != "Placed on hold: 0 messages\n" {
			t.Errorf("a second hold said %q", out)
		}
		if out := cli("queue", "list"); !regexp.MustCompile(`(?m)^` + ids[0] + `! `).MatchString(out) {
			t.Errorf("a held message is not marked with !:\n%s", out)
		}
		held := listJSON(t, cli("queue", "list", "--json", "--state", "hold"))
		if len(held) != 1 || held[0].QueueID != ids[0] || held[0].QueueName != "hold" {
			t.Errorf("list --state hold = %+v, want only %s", held, ids[0])
		}
		if out := cli("queue", "release", ids[0]); out != "Released from hold: 1 message\n" {
			t.Errorf("release said %q", out)
		}
	})
	t.Run("delete", func(t *testing.T) {
		out, errOut, code := runCLI(t, "--config", filepath.Join(dir, "sluice.toml"), "queue", "delete", ids[1], "FFFFFFFF")
		if code != 0 || out != "Deleted: 1 message\n" || !strings.Contains(errOut, "FFFFFFFF: no such message in the queue") {
			t.Errorf("delete: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if _, errOut, code := runCLI(t, "--config", filepath.Join(dir, "sluice.toml"), "queue", "show", ids[1]); code == 0 || !strings.Contains(errOut, ids[1]) {
			t.Errorf("show of a deleted message: exit %d, %q", code, errOut)
		}
	})
	t.Run("retry sends deferred mail now", func(t *testing.T) {
		w.mx["one.test"].SetHooks(testmx.Hooks{})
		if out := cli("queue", "retry", ids[0]); out != "Requeued: 1 message\n" {
			t.Errorf("retry said %q", out)
		}
		got := w.mx["one.test"].WaitMessages(t, 1, 10*time.Second)
		if got[0].To[0] != "bob0@one.test" {
			t.Errorf("retry delivered to %v, want bob0@one.test", got[0].To)
		}
	})
	t.Run("bounce reports to the sender", func(t *testing.T) {
		greylistAll(w.mx["one.test"])
		var res admin.ActionResult
		if err := json.Unmarshal([]byte(cli("queue", "bounce", "--json", ids[2])), &res); err != nil || res.Count != 1 || res.Action != admin.ActionBounce {
			t.Fatalf("bounce --json = %+v, %v", res, err)
		}
		b := w.mx["origin.test"].WaitMessages(t, 1, 10*time.Second)[0]
		p, err := dsn.Parse(b.Data)
		if err != nil || b.From != "" || len(p.Recipients) != 1 || p.Recipients[0].FinalRecipient != "bob2@one.test" || p.Recipients[0].Action != "failed" {
			t.Errorf("the bounce is not a failure report for bob2@one.test: from=%q %+v %v", b.From, p, err)
		}
	})
	t.Run("IDs from standard input and ALL", func(t *testing.T) {
		id := send(t, r.addr(), "alice@origin.test", []string{"carol@one.test"}, testMessage("alice@origin.test", "stdin"))
		waitRecipientState(t, r, id, "deferred", 10*time.Second)
		out, errOut, code := runCLIInput(t, id+"\n", "--config", filepath.Join(dir, "sluice.toml"), "queue", "hold", "-")
		if code != 0 || out != "Placed on hold: 1 message\n" {
			t.Errorf("hold - : exit %d, %q, %q", code, out, errOut)
		}
		waitQueueEmptyBut(t, r, 1)
		if out := cli("queue", "delete", "ALL"); out != "Deleted: 1 message\n" {
			t.Errorf("delete ALL said %q", out)
		}
		if out := cli("queue", "list"); out != "Mail queue is empty\n" {
			t.Errorf("after delete ALL the queue lists:\n%s", out)
		}
	})
	t.Run("quota --json", func(t *testing.T) {
		var st []admin.OperatorStatus
		if err := json.Unmarshal([]byte(cli("quota", "--json")), &st); err != nil {
			t.Fatalf("quota --json: %v", err)
		}
		if len(st) == 0 || st[0].Backend != "local" {
			t.Errorf("quota --json = %+v", st)
		}
	})
	t.Run("usage mistakes", func(t *testing.T) {
		for _, args := range [][]string{{"queue", "delete"}, {"queue", "show"}, {"queue", "cat", "a", "b"}} {
			if _, errOut, code := runCLI(t, append([]string{"--config", filepath.Join(dir, "sluice.toml")}, args...)...); code != 2 {
				t.Errorf("sluice %s: exit %d (%s), want 2", strings.Join(args, " "), code, errOut)
			}
		}
	})
}

// waitQueueEmptyBut waits until the daemon's queue holds n messages (the
// bounce of an earlier step may still be on its way).
func waitQueueEmptyBut(t *testing.T, r *running, n int) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%d message(s) in the queue", n), func() bool {
		got, _, err := r.d.store.Count()
		return err == nil && got == n
	})
}

func TestQueueVerbsWithoutTheDaemon(t *testing.T) {
	w := newWorld(t, "one.test")
	greylistAll(w.mx["one.test"])
	dir := t.TempDir()
	cfgText := slowRetryConfig(w, t.TempDir(), "")
	r := startTestDaemon(t, dir, cfgText)
	a := send(t, r.addr(), "alice@origin.test", []string{"bob@one.test"}, testMessage("alice@origin.test", "offline a"))
	b := send(t, r.addr(), "alice@origin.test", []string{"carol@one.test"}, testMessage("alice@origin.test", "offline b"))
	waitRecipientState(t, r, a, "deferred", 10*time.Second)
	waitRecipientState(t, r, b, "deferred", 10*time.Second)
	r.stop()

	cfgPath := filepath.Join(dir, "sluice.toml")
	run := func(args ...string) (string, string, int) {
		return runCLI(t, append([]string{"--config", cfgPath}, args...)...)
	}
	const readNotice = "sluice: the daemon is not running; reading the queue file directly"
	const writeNotice = "sluice: the daemon is not running; changing the queue file directly"
	tests := []struct {
		name    string
		args    []string
		code    int
		out     *regexp.Regexp
		errWant string
	}{
		{"list", []string{"queue", "list"}, 0, regexp.MustCompile(`(?s)^-Queue ID-.*` + a + ` .*bob@one\.test.*` + b + ` .*-- 1 Kbytes in 2 Requests\.\n$`), readNotice},
		{"list --json", []string{"queue", "list", "--json", "--state", "deferred"}, 0, regexp.MustCompile(`"queue_name":"deferred"`), readNotice},
		{"show", []string{"queue", "show", a}, 0, regexp.MustCompile(`state: deferred, operator: default:one\.test, attempts: 1`), readNotice},
		{"cat", []string{"queue", "cat", a}, 0, regexp.MustCompile(`Subject: offline a\r\n`), readNotice},
		{"quota", []string{"quota", "--json"}, 0, regexp.MustCompile(`"name":"default:one\.test"`), readNotice},
		{"hold", []string{"queue", "hold", a}, 0, regexp.MustCompile(`^Placed on hold: 1 message\n$`), writeNotice},
		{"held is marked", []string{"queue", "list"}, 0, regexp.MustCompile(`(?m)^` + a + `! `), readNotice},
		{"release", []string{"queue", "release", a}, 0, regexp.MustCompile(`^Released from hold: 1 message\n$`), writeNotice},
		{"delete", []string{"queue", "delete", b}, 0, regexp.MustCompile(`^Deleted: 1 message\n$`), writeNotice},
		{"retry needs the daemon", []string{"queue", "retry", a}, 1, regexp.MustCompile(`^$`), "queue retry needs the running daemon"},
		{"bounce needs the daemon", []string{"queue", "bounce", "ALL"}, 1, regexp.MustCompile(`^$`), "queue bounce needs the running daemon"},
		{"suspend needs the daemon", []string{"operator", "suspend", "x"}, 1, regexp.MustCompile(`^$`), "operator suspend needs the running daemon"},
		{"reload needs the daemon", []string{"reload"}, 1, regexp.MustCompile(`^$`), "reload needs the running daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(tt.args...)
			if code != tt.code || !tt.out.MatchString(out) || !strings.Contains(errOut, tt.errWant) {
				t.Errorf("sluice %s: exit %d (want %d)\nstdout %q (want %s)\nstderr %q (want %q)",
					strings.Join(tt.args, " "), code, tt.code, out, tt.out, errOut, tt.errWant)
			}
		})
	}
	// The daemon finds what the direct changes left: a, not held, and no b.
	w.mx["one.test"].SetHooks(testmx.Hooks{})
	r2 := startTestDaemon(t, dir, cfgText)
	msgs, err := admin.NewClient(r2.cfg.Admin.Socket).List(context.Background(), admin.ListFilter{})
	if err != nil || len(msgs) != 1 || msgs[0].QueueID != a || msgs[0].QueueName == "hold" {
		t.Errorf("after direct changes the daemon lists %+v, %v; want only %s, not held", msgs, err, a)
	}
}
