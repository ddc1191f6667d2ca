package queue

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkEnqueue measures durable acceptance into the store: every
// Enqueue returns only after its commit is fsynced. Writers are concurrent
// sessions sharing commits. Bodies inline in bbolt are compared with bodies
// in their own fsynced files.
func BenchmarkEnqueue(b *testing.B) {
	for _, size := range []int{2 << 10, 16 << 10, 50 << 10, 128 << 10, 256 << 10, 1 << 20} {
		for _, writers := range []int{1, 20} {
			for _, mode := range []struct {
				name      string
				fileBytes int
			}{{"inline", -1}, {"file", 1}} {
				name := fmt.Sprintf("body=%dKiB/writers=%d/%s", size>>10, writers, mode.name)
				b.Run(name, func(b *testing.B) {
					benchEnqueue(b, size, writers, mode.fileBytes)
				})
			}
		}
	}
}

func benchEnqueue(b *testing.B, size, writers, fileBytes int) {
	s := newTestStore(b, Options{FileBodyBytes: fileBytes})
	body := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ResetTimer()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				m := newTestMessage(s, "rcpt@example.net")
				if err := s.Enqueue(ctx, m, body); err != nil {
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

// BenchmarkScan measures reading the whole queue back, as the scheduler does
// at start.
func BenchmarkScan(b *testing.B) {
	s := newTestStore(b, Options{})
	ctx := context.Background()
	const n = 20000
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/20; i++ {
				if err := s.Enqueue(ctx, newTestMessage(s, "r@example.net"), []byte("b")); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ResetTimer()
	for b.Loop() {
		count := 0
		if err := s.Scan(func(*Message) error { count++; return nil }); err != nil || count != n {
			b.Fatalf("Scan: %d, %v", count, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
}

// BenchmarkRelayCycle measures the store's whole share of relaying a
// 2 KiB message: Enqueue (an SMTP session waiting for its 250) and then
// the Apply that records the delivery and removes the message (a delivery
// worker), with 1 and 20 sessions each feeding a worker, as in make bench.
// It reports commits per message: every commit costs two fsyncs, and the
// lazy Apply commits exist to share them (compare lazy=off).
func BenchmarkRelayCycle(b *testing.B) {
	for _, sessions := range []int{1, 20} {
		for _, lazy := range []struct {
			name  string
			delay time.Duration
		}{{"lazy=default", 0}, {"lazy=off", -1}} {
			b.Run(fmt.Sprintf("sessions=%d/%s", sessions, lazy.name), func(b *testing.B) {
				var commits atomic.Int64
				s := newTestStore(b, Options{LazyCommitDelay: lazy.delay,
					OnCommit: func(time.Duration, int) { commits.Add(1) }})
				benchRelayCycle(b, s, sessions)
				b.ReportMetric(float64(commits.Load())/float64(b.N), "commits/msg")
			})
		}
	}
}

func benchRelayCycle(b *testing.B, s *Store, sessions int) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 2<<10/16)
	ctx := context.Background()
	delivered := make(chan uint64, sessions)
	var next atomic.Int64
	var senders, workers sync.WaitGroup
	b.ResetTimer()
	for range sessions {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for next.Add(1) <= int64(b.N) {
				m := newTestMessage(s, "rcpt@example.net")
				if err := s.Enqueue(ctx, m, body); err != nil {
					b.Error(err)
					return
				}
				delivered <- m.Seq
			}
		}()
		workers.Add(1)
		go func() {
			defer workers.Done()
			for seq := range delivered {
				_, err := s.Apply(ctx, Change{Seq: seq, Update: func(m *Message) error {
					m.Recipients[0].State = StateSent
					return nil
				}})
				if err != nil {
					b.Error(err)
				}
			}
		}()
	}
	senders.Wait()
	close(delivered)
	workers.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
