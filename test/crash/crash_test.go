package crash

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/internal/testmx"
	"github.com/sluice-mta/sluice/scheduler"
	"github.com/sluice-mta/sluice/test/harness"
)

var (
	flagN       = flag.Int("crash.n", 2000, "messages pushed through sluice")
	flagK       = flag.Int("crash.k", 20, "SIGKILLs, each followed by a restart")
	flagClients = flag.Int("crash.clients", 8, "concurrent SMTP clients")
	flagSeed    = flag.Uint64("crash.seed", 0, "seed for the kill moments (0 = from the clock)")
)

func TestMain(m *testing.M) { os.Exit(harness.Main(m)) }

// The operator's budget: 300 units per 2s window. Half the messages carry
// priority 5 (0.2 unit), half none (1 unit), so 2000 messages need 1200
// units, at least four windows, and most windows run out.
const (
	quota  = 300
	window = 2 * time.Second
)

// Bounds on the phases of the test.
const (
	killMinGap      = 100 * time.Millisecond
	killMaxGap      = 900 * time.Millisecond
	submitTimeout   = 3 * time.Minute
	drainTimeout    = 3 * time.Minute
	maxSendAttempts = 1000
)

var seqHeader = regexp.MustCompile(`(?m)^X-Crash-Seq: (\d+)\r?$`)

// TestKill9 is the loss-free crash test (issue 6). It prints
//
//	accepted=… delivered=… bounced=… lost=… duplicates=… budget_overruns=…
//
// lost and budget_overruns must be 0. Raise the load with -crash.n and
// -crash.k.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("the kill -9 loop takes about a minute")
	}
	n, k := *flagN, *flagK
	seed := *flagSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash test: n=%d k=%d clients=%d seed=%d", n, k, *flagClients, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	w := harness.NewWorld(t, "bigmail.test", "bigmail.test.de", "origin.test")
	cfg := w.Config(t.TempDir())
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t, "127.0.0.1"))
	cfg.SMTP = "max_connections = 200\nread_timeout = \"20s\""
	cfg.Extra = fmt.Sprintf(`
[[operator]]
name = "bigmail"
domains = ["bigmail.test", "bigmail.test.de"]
quota = %d
window = "%s"
max_connections = 4
`, quota, window)
	d := harness.Start(t, cfg)
	addr := d.Addr()

	sub := startSubmitters(addr, n, *flagClients)
	for i := range k {
		gap := killMinGap + time.Duration(rng.Int64N(int64(killMaxGap-killMinGap)))
		timer := time.NewTimer(gap)
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			return
		}
		d.Kill()
		d.Restart()
		t.Logf("kill %d/%d after %v: restarted (%d of %d accepted so far)", i+1, k, gap, sub.acceptedCount(), n)
	}
	if !sub.wait(submitTimeout) {
		t.Fatalf("clients did not finish within %v (%d of %d accepted)", submitTimeout, sub.acceptedCount(), n)
	}
	if left, ok := d.WaitQueueEmpty(drainTimeout); !ok {
		t.Errorf("queue not empty after %v: %d messages left", drainTimeout, len(left))
	}
	d.Stop()

	res := tally(sub.accepted(), w.MX["bigmail.test"].Messages(), w.MX["bigmail.test.de"].Messages(), w.MX["origin.test"].Messages())
	line := res.String()
	fmt.Println(line)
	t.Log(line)
	t.Logf("units per %v window at the remote MX: %s", window, res.windows)
	t.Logf("sends retried after a connection loss: %d; deliveries of messages whose 250 was lost: %d", sub.retried(), res.unacked)
	if res.lost != 0 {
		t.Errorf("lost=%d: accepted messages that neither reached the MX nor bounced: %v", res.lost, res.lostSeqs)
	}
	if res.overruns != 0 {
		t.Errorf("budget_overruns=%d", res.overruns)
	}
	if res.accepted != n {
		t.Errorf("accepted=%d, want %d: clients gave up", res.accepted, n)
	}
}

// submitters push messages 0..n-1 with several clients, each retrying a
// message until it gets a 250, as Postfix would.
type submitters struct {
	mu      sync.Mutex
	acked   map[int]bool
	retries int
	done    chan struct{}
}

func startSubmitters(addr string, n, clients int) *submitters {
	s := &submitters{acked: make(map[int]bool), done: make(chan struct{})}
	work := make(chan int, n)
	for i := range n {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				s.submit(addr, i)
			}
		}()
	}
	go func() { wg.Wait(); close(s.done) }()
	return s
}

// submit sends message i until it is accepted, pausing between tries
// (a client's backoff: the daemon may be down for a moment).
func (s *submitters) submit(addr string, i int) {
	rcpt := fmt.Sprintf("u%d@bigmail.test", i)
	if i%3 == 1 {
		rcpt = fmt.Sprintf("u%d@bigmail.test.de", i)
	}
	prio := ""
	if i%2 == 0 {
		prio = "X-Relay-Priority: 5\n"
	}
	body := fmt.Sprintf("From: <alice@origin.test>\nTo: <%s>\nSubject: crash %d\nMessage-ID: <crash-%d@client.test>\nX-Crash-Seq: %d\n%s\nmessage %d\n",
		rcpt, i, i, i, prio, i)
	for try := range maxSendAttempts {
		_, err := harness.Send(addr, "alice@origin.test", []string{rcpt}, body)
		if err == nil {
			s.mu.Lock()
			s.acked[i] = true
			s.mu.Unlock()
			return
		}
		if try == 0 {
			s.mu.Lock()
			s.retries++
			s.mu.Unlock()
		}
		time.Sleep(time.Duration(20+try%10*20) * time.Millisecond)
	}
}

func (s *submitters) wait(timeout time.Duration) bool {
	select {
	case <-s.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (s *submitters) acceptedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

func (s *submitters) retried() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retries
}

func (s *submitters) accepted() map[int]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]bool, len(s.acked))
	for i := range s.acked {
		out[i] = true
	}
	return out
}

// result is what the remote side saw.
type result struct {
	accepted, delivered, bounced, lost, duplicates, overruns, unacked int
	lostSeqs                                                          []int
	windows                                                           string
}

func (r result) String() string {
	return fmt.Sprintf("accepted=%d delivered=%d bounced=%d lost=%d duplicates=%d budget_overruns=%d",
		r.accepted, r.delivered, r.bounced, r.lost, r.duplicates, r.overruns)
}

// tally matches the MX arrivals and bounces to the accepted messages by
// their X-Crash-Seq header and sums the units per window by arrival time.
func tally(accepted map[int]bool, one, two, bounces []testmx.Message) result {
	arrivals := map[int]int{}
	used := map[time.Time]int64{}
	for _, m := range append(one, two...) {
		sm := seqHeader.FindSubmatch(m.Data)
		if sm == nil {
			continue
		}
		i, _ := strconv.Atoi(string(sm[1]))
		arrivals[i]++
		cost := scheduler.CostMilli(1000)
		if i%2 == 0 {
			cost = scheduler.CostMilli(5000)
		}
		used[scheduler.WindowAt(m.Received, window, time.UTC).Start] += cost * int64(len(m.To))
	}
	bounced := map[int]bool{}
	for _, b := range bounces {
		for _, sm := range seqHeader.FindAllSubmatch(b.Data, -1) {
			i, _ := strconv.Atoi(string(sm[1]))
			bounced[i] = true
		}
	}
	r := result{accepted: len(accepted)}
	for i, c := range arrivals {
		r.duplicates += c - 1
		if !accepted[i] {
			r.unacked++
		}
	}
	for i := range accepted {
		switch {
		case arrivals[i] > 0:
			r.delivered++
		case bounced[i]:
			r.bounced++
		default:
			r.lost++
			r.lostSeqs = append(r.lostSeqs, i)
		}
	}
	sort.Ints(r.lostSeqs)
	r.overruns, r.windows = overruns(used)
	return r
}

// overruns counts the windows whose arrivals cost more than the quota.
func overruns(used map[time.Time]int64) (int, string) {
	starts := make([]time.Time, 0, len(used))
	for s := range used {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(a, b int) bool { return starts[a].Before(starts[b]) })
	var parts []string
	n := 0
	for _, s := range starts {
		u := used[s]
		mark := ""
		if u > quota*1000 {
			n++
			mark = "(OVER)"
		}
		parts = append(parts, fmt.Sprintf("%s=%d.%03d%s", s.Format("15:04:05"), u/1000, u%1000, mark))
	}
	return n, strings.Join(parts, " ")
}
