package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/internal/testmx"
	"github.com/sluice-mta/sluice/internal/testredis"
	"github.com/sluice-mta/sluice/scheduler"
)

// Issue 7: two relays share one operator budget through a real Redis.

const sharedOperator = `
[quota_store]
backend = "redis"
redis_url = %q
on_store_error = "pause"
timeout = "200ms"

[[operator]]
name = "bigmail"
domains = ["bigmail.test"]
quota = 30
window = "2s"
max_connections = 4
`

// startRelay runs one relay of the pair with its own data and hostname.
func startRelay(t *testing.T, w *world, name, redisURL string) *running {
	cfg := w.daemonConfig(t.TempDir(), fmt.Sprintf(sharedOperator, redisURL))
	cfg = strings.Replace(cfg, `hostname = "relay.test"`, fmt.Sprintf("hostname = %q", name), 1)
	return startTestDaemon(t, t.TempDir(), cfg)
}

// feed sends one message after another to relay until stop is closed,
// about ten per second: two relays together offer more than the quota of
// 30 per 2s window.
func feed(t *testing.T, r *running, tag string, stop <-chan struct{}, sent *int, mu *sync.Mutex) {
	for i := 0; i < 10000; i++ {
		select {
		case <-stop:
			return
		default:
		}
		send(t, r.addr(), "alice@origin.test", []string{fmt.Sprintf("%s-%d@bigmail.test", tag, i)}, testMessage("alice@origin.test", tag))
		mu.Lock()
		*sent++
		mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// arrivalsPerWindow counts the recipients the MX received in each 2s window
// and which relay each came through.
func arrivalsPerWindow(msgs []testmx.Message) (map[time.Time]int, map[string]int) {
	perWindow, perRelay := map[time.Time]int{}, map[string]int{}
	for _, m := range msgs {
		perWindow[scheduler.WindowAt(m.Received, 2*time.Second, time.UTC).Start] += len(m.To)
		// The Received header sluice adds names the relay ("by HOST").
		for _, relay := range []string{"relay-a.test", "relay-b.test"} {
			if strings.Contains(strings.Join(strings.Fields(string(m.Data)), " "), "by "+relay) {
				perRelay[relay] += len(m.To)
			}
		}
	}
	return perWindow, perRelay
}

func TestTwoRelaysShareOneBudget(t *testing.T) {
	rs := testredis.Start(t)
	w := newWorld(t, "bigmail.test")
	a := startRelay(t, w, "relay-a.test", rs.URL())
	b := startRelay(t, w, "relay-b.test", rs.URL())
	stop := make(chan struct{})
	var mu sync.Mutex
	var sentA, sentB int
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); feed(t, a, "a", stop, &sentA, &mu) }()
	go func() { defer wg.Done(); feed(t, b, "b", stop, &sentB, &mu) }()
	time.Sleep(6 * time.Second) // three windows of continuous feeding
	close(stop)
	wg.Wait()
	total := sentA + sentB
	got := w.mx["bigmail.test"].WaitMessages(t, total, 60*time.Second)
	perWindow, perRelay := arrivalsPerWindow(got)
	var report []string
	for win, n := range perWindow {
		report = append(report, fmt.Sprintf("%s=%d", win.Format("15:04:05"), n))
		if n > 30 {
			t.Errorf("window %s: the MX received %d, over the shared quota of 30", win.Format("15:04:05.000"), n)
		}
	}
	sort.Strings(report)
	t.Logf("accepted a=%d b=%d; delivered via a=%d b=%d; per window: %s", sentA, sentB,
		perRelay["relay-a.test"], perRelay["relay-b.test"], strings.Join(report, " "))
	if perRelay["relay-a.test"] == 0 || perRelay["relay-b.test"] == 0 {
		t.Errorf("both relays should have delivered some: %v", perRelay)
	}
	// sluice quota on either relay shows the shared usage and the backend.
	st, err := a.d.sched.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Operators {
		if o.Key == "bigmail" && o.UsageError != "" {
			t.Errorf("usage from Redis: %s", o.UsageError)
		}
	}
}

func TestRedisOutagePausesAndResumes(t *testing.T) {
	rs := testredis.Start(t)
	w := newWorld(t, "bigmail.test")
	a := startRelay(t, w, "relay-a.test", rs.URL())
	stop := make(chan struct{})
	var mu sync.Mutex
	var sent int
	done := make(chan struct{})
	go func() { defer close(done); feed(t, a, "a", stop, &sent, &mu) }()
	time.Sleep(3 * time.Second)
	rs.Stop()
	down := time.Now()
	time.Sleep(4 * time.Second)
	up := time.Now()
	rs.Restart()
	time.Sleep(2 * time.Second)
	close(stop)
	<-done
	got := w.mx["bigmail.test"].WaitMessages(t, sent, 60*time.Second)
	during := 0
	for _, m := range got {
		// A transaction whose units were reserved just before the outage
		// may finish a moment after it began.
		if m.Received.After(down.Add(500*time.Millisecond)) && m.Received.Before(up) {
			during++
		}
	}
	if during > 0 {
		t.Errorf("%d deliveries while Redis was down (on_store_error = pause)", during)
	}
	perWindow, _ := arrivalsPerWindow(got)
	for win, n := range perWindow {
		if n > 30 {
			t.Errorf("window %s: %d over the quota", win.Format("15:04:05"), n)
		}
	}
	t.Logf("accepted %d, delivered %d, none during the %v outage", sent, len(got), up.Sub(down).Round(time.Millisecond))
	fams, err := a.d.metrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "sluice_quota_store_outages_total" {
			if n := f.GetMetric()[0].GetCounter().GetValue(); n < 1 {
				t.Errorf("sluice_quota_store_outages_total = %v after an outage", n)
			}
			return
		}
	}
	t.Error("sluice_quota_store_outages_total is not exposed")
}
