package queue

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
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
