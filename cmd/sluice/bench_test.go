package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/sluice-mta/sluice/queue"
	"github.com/sluice-mta/sluice/smtpd"
)

// storeOnly commits mail without scheduling it: acceptance alone.
type storeOnly struct{ st *queue.Store }

func (e storeOnly) NewID() (uint64, string) { return e.st.NewID() }
func (e storeOnly) Enqueue(ctx context.Context, m *queue.Message, body []byte) error {
	return e.st.Enqueue(ctx, m, body)
}

// BenchmarkAcceptance measures SMTP acceptance into the durable queue:
// sessions over loopback TCP, each message committed with fsync before its
// 250. One connection per message, as Postfix's smtp-source does by default.
func BenchmarkAcceptance(b *testing.B) {
	for _, sessions := range []int{1, 20} {
		for _, size := range []int{2 << 10, 50 << 10} {
			b.Run(fmt.Sprintf("sessions=%d/size=%dKiB", sessions, size>>10), func(b *testing.B) {
				benchAcceptance(b, sessions, size)
			})
		}
	}
}

func benchAcceptance(b *testing.B, sessions, size int) {
	st, err := queue.Open(queue.Options{Path: filepath.Join(b.TempDir(), "queue.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := smtpd.New(smtpd.Options{
		Hostname: "relay.test", Listen: []string{"127.0.0.1:0"},
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		MaxMessageBytes: 10 << 20, MaxRecipients: 100, MaxLineLength: 2000, MaxConnections: 1000,
		ReadTimeout: time.Minute, WriteTimeout: time.Minute,
		PriorityHeader: "X-Relay-Priority", MaxPriorityMilli: 10000, StripPriorityHeader: true,
		Logger: slog.New(slog.DiscardHandler), Enqueuer: storeOnly{st},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addrs()[0].String()
	line := strings.Repeat("x", 76) + "\r\n"
	body := []byte("From: <a@origin.test>\r\nSubject: bench\r\n\r\n" + strings.Repeat(line, size/len(line)))
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := sendOnce(addr, body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// sendOnce delivers body over one new connection, as smtp-source does.
func sendOnce(addr string, body []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("bench.test"); err != nil {
		return err
	}
	if err := c.Mail("a@origin.test", nil); err != nil {
		return err
	}
	if err := c.Rcpt("r@dest.test", nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}
