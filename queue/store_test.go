package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newTestStore(t testing.TB, o Options) *Store {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "queue.db")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newTestMessage(s *Store, rcpts ...string) *Message {
	seq, id := s.NewID()
	m := &Message{
		ID: id, Seq: seq, From: "sender@example.org", Arrival: t0,
		PriorityMilli: 2500, ClientIP: "127.0.0.1", ClientHelo: "postfix.local",
		Ret: "HDRS", EnvID: "env-1",
	}
	for i, r := range rcpts {
		m.Recipients = append(m.Recipients, Recipient{
			Index: i, Addr: r, ORCPT: "rfc822;" + r, Notify: NotifyFailure | NotifyDelay, State: StateQueued,
		})
	}
	return m
}

func TestEnqueueGetRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		fileBytes int
		bodyLen   int
	}{
		{"inline body", -1, 2048},
		{"file body", 1, 2048},
		{"threshold picks inline", 4096, 100},
		{"threshold picks file", 4096, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t, Options{FileBodyBytes: tc.fileBytes})
			m := newTestMessage(s, "a@one.example", "b@two.example")
			body := bytes.Repeat([]byte("x"), tc.bodyLen)
			if err := s.Enqueue(context.Background(), m, body); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			got, err := s.Get(m.Seq)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if got.ID != m.ID || got.From != m.From || !got.Arrival.Equal(m.Arrival) ||
				got.PriorityMilli != 2500 || got.Ret != "HDRS" || got.EnvID != "env-1" ||
				got.Size != int64(tc.bodyLen) || len(got.Recipients) != 2 {
				t.Errorf("Get = %+v, want fields of %+v", got, m)
			}
			if r := got.Recipients[1]; r.Addr != "b@two.example" || r.ORCPT != "rfc822;b@two.example" ||
				r.Notify != NotifyFailure|NotifyDelay || r.State != StateQueued || r.Index != 1 {
				t.Errorf("recipient 1 = %+v", r)
			}
			b, err := s.Body(m.Seq)
			if err != nil || !bytes.Equal(b, body) {
				t.Errorf("Body = %d bytes, %v; want %d bytes", len(b), err, len(body))
			}
			_, statErr := os.Stat(s.bodyPath(m.Seq))
			if inFile := statErr == nil; inFile != s.bodyInFile(tc.bodyLen) {
				t.Errorf("body file exists = %v, want %v", inFile, s.bodyInFile(tc.bodyLen))
			}
		})
	}
}

func TestEnqueueRejectsBadMessages(t *testing.T) {
	s := newTestStore(t, Options{})
	m := newTestMessage(s)
	if err := s.Enqueue(context.Background(), m, []byte("x")); err == nil {
		t.Error("Enqueue of a message without recipients succeeded")
	}
	m = newTestMessage(s, "a@b.example")
	m.ID = "NOTHEX"
	if err := s.Enqueue(context.Background(), m, []byte("x")); err == nil {
		t.Error("Enqueue with an ID not from NewID succeeded")
	}
}

func TestApplyUpdatesAndRemoves(t *testing.T) {
	s := newTestStore(t, Options{FileBodyBytes: 1})
	ctx := context.Background()
	m := newTestMessage(s, "a@one.example", "b@two.example")
	if err := s.Enqueue(ctx, m, []byte("Subject: hi\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	next := t0.Add(5 * time.Minute)
	ap, err := s.Apply(ctx, Change{Seq: m.Seq, Update: func(m *Message) error {
		m.Recipients[0].State = StateSent
		r := &m.Recipients[1]
		r.State, r.Attempts, r.NextAttempt = StateDeferred, 1, next
		r.LastReply = Reply{Code: 451, Enhanced: "4.7.1", Text: "try later", RemoteHost: "mx.two.example"}
		return nil
	}})
	if err != nil || ap.Removed {
		t.Fatalf("Apply = %+v, %v; want kept", ap, err)
	}
	got, err := s.Get(m.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Recipients[1]; r.State != StateDeferred || !r.NextAttempt.Equal(next) || r.LastReply.Code != 451 {
		t.Errorf("after update recipient 1 = %+v", r)
	}
	bounceSeq, bounceID := s.NewID()
	bounce := &Message{ID: bounceID, Seq: bounceSeq, Arrival: t0, PriorityMilli: 1000,
		Recipients: []Recipient{{Addr: "sender@example.org", State: StateQueued}}}
	ap, err = s.Apply(ctx, Change{
		Seq:    m.Seq,
		Update: func(m *Message) error { m.Recipients[1].State = StateFailed; return nil },
		Add:    []NewMessage{{Msg: bounce, Body: []byte("bounce")}},
	})
	if err != nil || !ap.Removed {
		t.Fatalf("Apply = %+v, %v; want removed", ap, err)
	}
	if _, err := s.Get(m.Seq); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after removal: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(s.bodyPath(m.Seq)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("body file of removed message: %v, want gone", err)
	}
	if b, err := s.Body(bounceSeq); err != nil || string(b) != "bounce" {
		t.Errorf("bounce body = %q, %v", b, err)
	}
	msgs, rcpts, _ := s.Count()
	if msgs != 1 || rcpts != 1 {
		t.Errorf("Count = %d messages %d recipients, want 1 1", msgs, rcpts)
	}
}

func TestApplyFailureCommitsNothing(t *testing.T) {
	s := newTestStore(t, Options{})
	ctx := context.Background()
	m := newTestMessage(s, "a@one.example")
	if err := s.Enqueue(ctx, m, []byte("x")); err != nil {
		t.Fatal(err)
	}
	bseq, bid := s.NewID()
	boom := errors.New("boom")
	_, err := s.Apply(ctx, Change{
		Seq:    m.Seq,
		Update: func(m *Message) error { m.Recipients[0].State = StateFailed; return boom },
		Add: []NewMessage{{Msg: &Message{ID: bid, Seq: bseq,
			Recipients: []Recipient{{Addr: "x@y.example"}}}, Body: []byte("b")}},
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply error = %v, want boom", err)
	}
	got, err := s.Get(m.Seq)
	if err != nil || got.Recipients[0].State != StateQueued {
		t.Errorf("message after failed Apply = %+v, %v; want unchanged", got, err)
	}
	if _, err := s.Get(bseq); !errors.Is(err, ErrNotFound) {
		t.Errorf("added message exists after failed Apply: %v", err)
	}
	ap, err := s.Apply(ctx, Change{Seq: m.Seq, Update: func(*Message) error { return ErrSkipChange }})
	if err != nil || ap.Msg == nil || ap.Removed {
		t.Errorf("skipped Apply = %+v, %v", ap, err)
	}
	if _, err := s.Apply(ctx, Change{Seq: 12345}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Apply on a missing message: %v, want ErrNotFound", err)
	}
}

// A failing member of a shared commit must not take the others down.
func TestBatchIsolatesFailingChange(t *testing.T) {
	s := newTestStore(t, Options{})
	ctx := context.Background()
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	seqs := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%10 == 0 {
				_, errs[i] = s.Apply(ctx, Change{Seq: 999999999 + uint64(i)})
				return
			}
			m := newTestMessage(s, fmt.Sprintf("r%d@example.net", i))
			seqs[i] = m.Seq
			errs[i] = s.Enqueue(ctx, m, []byte("body"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%10 == 0 {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("change %d: %v, want ErrNotFound", i, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("enqueue %d: %v", i, err)
		} else if _, err := s.Get(seqs[i]); err != nil {
			t.Errorf("message %d missing: %v", i, err)
		}
	}
}

func TestScanAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := newTestStore(t, Options{Path: path})
	ctx := context.Background()
	var want []string
	for i := range 30 {
		rc := []string{fmt.Sprintf("a%d@one.example", i)}
		if i%3 == 0 {
			rc = append(rc, fmt.Sprintf("b%d@two.example", i))
		}
		m := newTestMessage(s, rc...)
		if err := s.Enqueue(ctx, m, []byte("b")); err != nil {
			t.Fatal(err)
		}
		want = append(want, m.ID)
	}
	lastSeq := s.lastSeq.Load()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := newTestStore(t, Options{Path: path})
	if got := s2.lastSeq.Load(); got != lastSeq {
		t.Errorf("last sequence after reopen = %d, want %d", got, lastSeq)
	}
	if seq, _ := s2.NewID(); seq <= lastSeq {
		t.Errorf("NewID after reopen = %d, not above %d", seq, lastSeq)
	}
	var got []string
	err := s2.Scan(func(m *Message) error {
		got = append(got, m.ID)
		for i, r := range m.Recipients {
			if r.Index != i || r.Addr == "" {
				t.Errorf("%s recipient %d = %+v", m.ID, i, r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Scan order = %v, want %v", got, want)
	}
}

func TestReserveNeverOverGrants(t *testing.T) {
	s := newTestStore(t, Options{})
	ctx := context.Background()
	w := t0.Truncate(time.Hour)
	const quota = 30_000
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g, err := s.Reserve(ctx, "bigmail", w, time.Hour, quota, 334, 3)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += g
			mu.Unlock()
		}()
	}
	wg.Wait()
	if want := quota / 334; total != want {
		t.Errorf("granted %d recipients of cost 334 under quota %d, want %d", total, quota, want)
	}
	used, _ := s.Used(ctx, "bigmail", w)
	if used > quota || used != int64(total)*334 {
		t.Errorf("used = %d, want %d (<= %d)", used, total*334, quota)
	}
	if err := s.Refund(ctx, "bigmail", w, 334); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.Reserve(ctx, "bigmail", w, time.Hour, quota, 334, 5); g != 1 {
		t.Errorf("after a refund of one unit, granted %d, want 1", g)
	}
	if other, _ := s.Used(ctx, "bigmail", w.Add(time.Hour)); other != 0 {
		t.Errorf("next window used = %d, want 0", other)
	}
	n, err := s.PruneUsage(ctx, w.Add(time.Minute))
	if err != nil || n != 1 {
		t.Errorf("PruneUsage = %d, %v; want 1", n, err)
	}
}

func TestSchemaVersionRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := newTestStore(t, Options{Path: path})
	m := newTestMessage(s, "a@b.example")
	if err := s.Enqueue(context.Background(), m, []byte("x")); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMsg)
		v := append([]byte(nil), b.Get(seqKey(m.Seq))...)
		v[0] = 99
		return b.Put(seqKey(m.Seq), v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(m.Seq); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("Get of a version-99 record: %v, want ErrCorrupt naming the version", err)
	}
	if err := s.Scan(func(*Message) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Scan over a version-99 record: %v, want ErrCorrupt", err)
	}
}

func TestOrphanBodyFilesRemovedAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s := newTestStore(t, Options{Path: path, FileBodyBytes: 1})
	m := newTestMessage(s, "a@b.example")
	if err := s.Enqueue(context.Background(), m, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	orphan, _ := s.NewID()
	if err := s.writeBodyFile(orphan, []byte("never committed")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2 := newTestStore(t, Options{Path: path, FileBodyBytes: 1})
	if _, err := os.Stat(s2.bodyPath(orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan body file still there: %v", err)
	}
	if b, err := s2.Body(m.Seq); err != nil || string(b) != "kept" {
		t.Errorf("committed body = %q, %v", b, err)
	}
}

func TestSecondOpenTimesOutWithClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	newTestStore(t, Options{Path: path})
	_, err := Open(Options{Path: path, LockTimeout: 50 * time.Millisecond, ReadOnly: true})
	if err == nil || !strings.Contains(err.Error(), "daemon running") {
		t.Errorf("second Open: %v, want a locked error mentioning the daemon", err)
	}
}

func TestIDFormat(t *testing.T) {
	for _, seq := range []uint64{1, 0xABC, 1 << 52, ^uint64(0)} {
		id := FormatID(seq)
		back, err := ParseID(id)
		if err != nil || back != seq {
			t.Errorf("ParseID(FormatID(%d)=%q) = %d, %v", seq, id, back, err)
		}
	}
	for _, bad := range []string{"", "XYZ", "12345678901234567", "1 2"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
}

func TestClosedStore(t *testing.T) {
	s := newTestStore(t, Options{})
	s.Close()
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	m := newTestMessage(s, "a@b.example")
	if err := s.Enqueue(context.Background(), m, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Enqueue after Close: %v, want ErrClosed", err)
	}
}
