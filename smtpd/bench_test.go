package smtpd

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/queue"
)

// countingEnqueuer accepts everything and keeps only a count.
type countingEnqueuer struct{ seq, n atomic.Uint64 }

func (c *countingEnqueuer) NewID() (uint64, string) {
	s := c.seq.Add(1)
	return s, fmt.Sprintf("B%08d", s)
}

func (c *countingEnqueuer) Enqueue(context.Context, *queue.Message, []byte) error {
	c.n.Add(1)
	return nil
}

// BenchmarkAccept measures acceptance with 20 concurrent sessions, each
// sending messages back to back over one connection, for a 3 KB and a
// 50 KB body. The enqueuer only counts, so this is smtpd's own cost (and
// the client's): reading, checking and copying the body, the Received
// field, the log line. Allocations per message are reported.
func BenchmarkAccept(b *testing.B) {
	for _, lines := range []int{40, 660} {
		body := "From: a@example.org\r\nX-Relay-Priority: 3\r\nSubject: bench\r\n\r\n" +
			strings.Repeat(strings.Repeat("x", 76)+"\r\n", lines)
		b.Run(fmt.Sprintf("body=%dKiB", len(body)>>10), func(b *testing.B) {
			benchAccept(b, body)
		})
	}
}

func benchAccept(b *testing.B, body string) {
	const sessions = 20
	enq := &countingEnqueuer{}
	o := testOptions(b, nil, nil)
	o.Enqueuer = enq
	o.Logger = slog.New(slog.DiscardHandler)
	o.MaxConnections = sessions
	srv, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addrs()[0].String()
	var left atomic.Int64
	left.Store(int64(b.N))
	errs := make(chan error, sessions)
	var wg sync.WaitGroup
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- benchSession(addr, body, &left)
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	if got := enq.n.Load(); got != uint64(b.N) {
		b.Fatalf("enqueued %d, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// benchSession sends messages while left stays positive; it pipelines the
// envelope (PIPELINING is offered) as Postfix does.
func benchSession(addr, body string, left *atomic.Int64) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	expect := func(prefix string) error {
		for range 20 {
			line, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if len(line) >= 4 && line[3] == '-' {
				continue
			}
			if !strings.HasPrefix(line, prefix) {
				return fmt.Errorf("got %q, want %q", line, prefix)
			}
			return nil
		}
		return fmt.Errorf("reply too long")
	}
	if err := expect("220"); err != nil {
		return err
	}
	fmt.Fprintf(w, "EHLO bench.test\r\n")
	w.Flush()
	if err := expect("250"); err != nil {
		return err
	}
	for left.Add(-1) >= 0 {
		fmt.Fprintf(w, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
		w.Flush()
		for _, want := range []string{"250", "250", "354"} {
			if err := expect(want); err != nil {
				return err
			}
		}
		w.WriteString(body)
		w.WriteString(".\r\n")
		w.Flush()
		if err := expect("250 2.0.0 Ok"); err != nil {
			return err
		}
	}
	return nil
}
