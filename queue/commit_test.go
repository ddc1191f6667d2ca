package queue

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// commitLog records the size of every commit, for the lazy-commit tests.
type commitLog struct {
	mu    sync.Mutex
	sizes []int
}

func (c *commitLog) record(_ time.Duration, changes int) {
	c.mu.Lock()
	c.sizes = append(c.sizes, changes)
	c.mu.Unlock()
}

func (c *commitLog) get() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.sizes...)
}

// waitDone waits for a result with a generous deadline: a lazy commit that
// was wrongly kept waiting for an hour shows up as a failure, not a hang.
func waitDone(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return within 30s", what)
	}
}

// applyAsync marks message seq held in the background.
func applyAsync(s *Store, seq uint64) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := s.Apply(context.Background(), Change{Seq: seq, Update: func(m *Message) error {
			m.Held = true
			return nil
		}})
		ch <- err
	}()
	return ch
}

func TestLazyCommitSharesTheNextEnqueue(t *testing.T) {
	var log commitLog
	s := newTestStore(t, Options{LazyCommitDelay: time.Hour, OnCommit: log.record})
	lingering := make(chan struct{}, 1)
	s.onLinger = func() { lingering <- struct{}{} }
	ctx := context.Background()
	first := newTestMessage(s, "a@example.net")
	if err := s.Enqueue(ctx, first, []byte("body\r\n")); err != nil {
		t.Fatal(err)
	}
	applied := applyAsync(s, first.Seq)
	select {
	case <-lingering:
	case <-time.After(30 * time.Second):
		t.Fatal("the Apply right after an Enqueue did not wait for company")
	}
	if err := s.Enqueue(ctx, newTestMessage(s, "b@example.net"), []byte("body\r\n")); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "Apply", applied)
	if got, want := log.get(), []int{1, 2}; !slices.Equal(got, want) {
		t.Errorf("commit sizes: got %v, want %v (the Apply shares the second Enqueue's commit)", got, want)
	}
	m, err := s.Get(first.Seq)
	if err != nil || !m.Held {
		t.Errorf("after Apply: held %v, err %v; want held", m != nil && m.Held, err)
	}
}

func TestLazyCommitAloneCommitsAtOnce(t *testing.T) {
	cases := []struct {
		name  string
		delay time.Duration
	}{
		{name: "no acceptance lately", delay: time.Hour},
		{name: "lazy commits turned off", delay: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var log commitLog
			s := newTestStore(t, Options{LazyCommitDelay: tc.delay, OnCommit: log.record})
			s.onLinger = func() { t.Error("a lazy commit waited although nothing was being accepted") }
			// The message was accepted before a restart: the reopened
			// store has seen no acceptance, as when a backlog drains.
			m := newTestMessage(s, "a@example.net")
			path := s.Path()
			if err := s.Enqueue(context.Background(), m, []byte("body\r\n")); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s2 := newTestStore(t, Options{Path: path, LazyCommitDelay: tc.delay, OnCommit: log.record})
			s2.onLinger = s.onLinger
			waitDone(t, "Apply", applyAsync(s2, m.Seq))
		})
	}
}

func TestLazyCommitFlushedByClose(t *testing.T) {
	s := newTestStore(t, Options{LazyCommitDelay: time.Hour})
	lingering := make(chan struct{}, 1)
	s.onLinger = func() { lingering <- struct{}{} }
	m := newTestMessage(s, "a@example.net")
	if err := s.Enqueue(context.Background(), m, []byte("body\r\n")); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	applied := applyAsync(s, m.Seq)
	select {
	case <-lingering:
	case <-time.After(30 * time.Second):
		t.Fatal("the Apply did not wait for company")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "Apply during Close", applied)
	s2 := newTestStore(t, Options{Path: path})
	got, err := s2.Get(m.Seq)
	if err != nil || !got.Held {
		t.Errorf("after reopening: held %v, err %v; want the lingering change committed", got != nil && got.Held, err)
	}
}
