package scheduler

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/clock"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/queue"
)

// benchConfig has 100 operators, each with one domain.
func benchConfig(tb testing.TB) *config.Config {
	text := baseConfig
	for i := range 100 {
		text += fmt.Sprintf("[[operator]]\nname = \"op%d\"\ndomains = [\"op%d.test\"]\nquota = 1000\nwindow = \"1h\"\n", i, i)
	}
	cfg, err := config.Parse([]byte(text), "bench.toml")
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// newIndexOnly returns a scheduler whose index can be filled without a
// store (the benchmarks of the in-memory index).
func newIndexOnly(tb testing.TB, cfg *config.Config) *Scheduler {
	s, err := New(Options{Config: cfg, Clock: clock.NewFake(testStart), Store: nopStore{}, Budget: nopBudget{}, Deliverer: &fakeDeliverer{}})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// fillIndex indexes n single-recipient messages spread over 100 operators
// and three priorities; deferred of them wait for a retry.
func fillIndex(s *Scheduler, n int, deferredShare float64) {
	rnd := rand.New(rand.NewPCG(1, 1))
	prios := []uint32{1000, 2000, 5000}
	now := testStart
	for i := range n {
		m := &queue.Message{Seq: uint64(i + 1), Arrival: now.Add(time.Duration(i) * time.Millisecond), PriorityMilli: prios[i%3],
			Recipients: []queue.Recipient{{Addr: fmt.Sprintf("u%d@op%d.test", i, rnd.IntN(100)), State: queue.StateQueued}}}
		if rnd.Float64() < deferredShare {
			m.Recipients[0].State = queue.StateDeferred
			m.Recipients[0].NextAttempt = now.Add(time.Hour)
		}
		s.addMessage(m, now)
	}
}

// BenchmarkPickNext measures choosing the next recipient with a million
// queued over 100 operators: the priority pick, the pop of the message's
// entries, and putting them back (so the queue stays at a million).
func BenchmarkPickNext(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("queued=%d", n), func(b *testing.B) {
			s := newIndexOnly(b, benchConfig(b))
			fillIndex(s, n, 0)
			ops := make([]*opState, 0, len(s.pol.ops))
			for _, op := range s.pol.ops {
				ops = append(ops, op)
			}
			now := testStart.Add(time.Hour)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				op := ops[i%len(ops)]
				prio, ok := op.ready.best(now, 2*time.Hour)
				if !ok {
					b.Fatal("empty operator")
				}
				es := op.ready.popMessage(prio)
				for _, e := range es {
					op.ready.push(prio, e)
				}
			}
		})
	}
}

// BenchmarkIndexMemory reports the heap used per queued recipient by the
// in-memory index (ready queues, retry heap, domain table).
func BenchmarkIndexMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := newIndexOnly(b, benchConfig(b))
		fillIndex(s, n, 0.3)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/recipient")
		runtime.KeepAlive(s)
	}
}

// BenchmarkRebuild measures opening a store holding a million queued
// recipients and rebuilding the index from it, as at every start. The
// store is built once (that takes a while) and kept in the temp directory
// between runs.
func BenchmarkRebuild(b *testing.B) {
	const n = 1_000_000
	path := filepath.Join(os.TempDir(), fmt.Sprintf("sluice-bench-rebuild-%d.db", n))
	if _, err := os.Stat(path); err != nil {
		buildBenchStore(b, path, n)
	}
	cfg := benchConfig(b)
	for b.Loop() {
		start := time.Now()
		st, err := queue.Open(queue.Options{Path: path, ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		opened := time.Since(start)
		s, err := New(Options{Config: cfg, Clock: clock.NewFake(testStart), Store: st, Budget: st, Deliverer: &fakeDeliverer{}})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.rebuild(); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(opened.Seconds(), "open-s")
		st.Close()
	}
	b.ReportMetric(float64(n), "recipients")
}

func buildBenchStore(b *testing.B, path string, n int) {
	tmp := path + ".partial"
	os.Remove(tmp)
	st, err := queue.Open(queue.Options{Path: tmp, MaxBatch: 2048})
	if err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	body := []byte("Subject: x\r\n\r\nbody\r\n")
	for range 512 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				seq, id := st.NewID()
				m := &queue.Message{ID: id, Seq: seq, From: "s@origin.test", Arrival: testStart, PriorityMilli: 1000,
					Recipients: []queue.Recipient{{Addr: fmt.Sprintf("u%d@op%d.test", i, i%100), State: queue.StateQueued}}}
				if err := st.Enqueue(context.Background(), m, body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st.Close()
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
}

type nopStore struct{}

func (nopStore) Load(uint64) (*queue.Message, []byte, error) {
	return nil, nil, queue.ErrNotFound
}
func (nopStore) Apply(context.Context, queue.Change) (queue.Applied, error) {
	return queue.Applied{}, queue.ErrNotFound
}
func (nopStore) Scan(func(*queue.Message) error) error { return nil }
func (nopStore) NewID() (uint64, string)               { return 1, "1" }

type nopBudget struct{}

func (nopBudget) Reserve(context.Context, string, time.Time, time.Duration, int64, int64, int) (int, error) {
	return 0, nil
}
func (nopBudget) Refund(context.Context, string, time.Time, int64) error { return nil }
func (nopBudget) Used(context.Context, string, time.Time) (int64, error) { return 0, nil }
