package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/internal/testdns"
	"github.com/sluice-mta/sluice/internal/testmx"
)

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// world is a small internet on loopback: a DNS server and MX hosts at
// 127.0.0.2 and up, all on one port that sluice delivers to.
type world struct {
	t    testing.TB
	dns  *testdns.Server
	port int
	mx   map[string]*testmx.Server // by domain
}

// newWorld starts one MX per domain, in order at 127.0.0.2, 127.0.0.3, ...
// with MX and A records for each.
func newWorld(t testing.TB, domains ...string) *world {
	w := &world{t: t, dns: testdns.Start(t), mx: map[string]*testmx.Server{}}
	var ips []string
	for i := range domains {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i+2))
	}
	port, servers := testmx.StartCluster(t, ips...)
	w.port = port
	for i, d := range domains {
		host := "mx." + d
		w.dns.AddMX(d, 10, host)
		w.dns.AddA(host, ips[i])
		w.mx[d] = servers[i]
	}
	return w
}

// daemonConfig is a configuration for an in-process daemon in this world;
// extra is appended (more tables).
func (w *world) daemonConfig(dataDir, extra string) string {
	return fmt.Sprintf(`
hostname = "relay.test"
data_dir = %q
shutdown_timeout = "5s"
[smtp]
listen = ["127.0.0.1:0"]
read_timeout = "10s"
[dns]
servers = [%q]
timeout = "1s"
[delivery]
port = %d
allow_private_mx = true
connect_timeout = "2s"
command_timeout = "5s"
data_timeout = "5s"
retry_schedule = ["1s"]
[bounce]
from = "MAILER-DAEMON@relay.test"
`, dataDir, w.dns.Addr(), w.port) + extra
}

// running is a daemon started by a test.
type running struct {
	t      testing.TB
	d      *daemon
	cfg    *config.Config
	cancel context.CancelFunc
	done   chan error
}

// startTestDaemon runs sluice in-process on cfgText; the configuration
// file is written to dir.
func startTestDaemon(t testing.TB, dir, cfgText string) *running {
	t.Helper()
	return startOpsDaemon(t, dir, cfgText, daemonOpts{})
}

func (r *running) addr() string { return r.d.SMTPAddrs()[0].String() }

// stop shuts the daemon down and waits for it.
func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("daemon: %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Fatal("daemon did not stop in time")
	}
}

// send submits one message over SMTP and returns the queue ID from the 250.
func send(t testing.TB, addr, from string, to []string, body string) string {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial sluice: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	wc, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := wc.Write([]byte(strings.ReplaceAll(body, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
	resp, err := wc.CloseWithResponse()
	if err != nil {
		t.Fatalf("end of DATA: %v", err)
	}
	c.Quit()
	const prefix = "Ok: queued as "
	i := strings.Index(resp.StatusText, prefix)
	if i < 0 {
		t.Fatalf("250 reply %q has no queue ID", resp.StatusText)
	}
	return strings.TrimSpace(resp.StatusText[i+len(prefix):])
}

func testMessage(from, subject string) string {
	return fmt.Sprintf("From: <%s>\nTo: <x@y>\nSubject: %s\nMessage-ID: <%d@client.test>\n\nHello.\n", from, subject, time.Now().UnixNano())
}

// waitQueueEmpty waits until the daemon's queue holds no message.
func waitQueueEmpty(t testing.TB, r *running) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for i := 0; i < 300; i++ {
		n, _, err := r.d.store.Count()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("queue did not empty in time")
}

// waitRecipientState waits until the first recipient of message id is in
// state, through the admin API.
func waitRecipientState(t testing.TB, r *running, id, state string, timeout time.Duration) *admin.MessageDetail {
	t.Helper()
	cl := admin.NewClient(r.cfg.Admin.Socket)
	deadline := time.Now().Add(timeout)
	var last *admin.MessageDetail
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		d, err := cl.Show(context.Background(), id)
		if err == nil {
			last = d
			if d.Recipients[0].State == state {
				return d
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("message %s did not reach state %s; last: %+v", id, state, last)
	return nil
}
