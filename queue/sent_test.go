package queue

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestSentRecords(t *testing.T) {
	s := newTestStore(t, Options{})
	ctx := context.Background()
	m := newTestMessage(s, "a@one.example", "b@one.example")
	if err := s.Enqueue(ctx, m, []byte("Subject: x\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	rec := SentRecord{Seq: m.Seq, Index: 1, Addr: "b@one.example", ORCPT: "rfc822;b@one.example", Notify: NotifyFailure,
		From: m.From, EnvID: "e1", Ret: "HDRS", Arrival: t0, SentAt: t0.Add(time.Minute), Headers: []byte("Subject: x\r\n")}
	_, err := s.Apply(ctx, Change{Seq: m.Seq, Remember: []SentRecord{rec},
		Update: func(m *Message) error {
			for i := range m.Recipients {
				m.Recipients[i].State = StateSent
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sent(m.Seq)
	if err != nil || len(got) != 1 || got[0].Addr != "b@one.example" || got[0].Index != 1 || !bytes.Equal(got[0].Headers, rec.Headers) ||
		got[0].ID != m.ID || !got[0].SentAt.Equal(rec.SentAt) {
		t.Fatalf("Sent = %+v, %v", got, err)
	}
	ret := Returned{At: t0.Add(time.Hour), Client: "192.0.2.1", Action: "failed", Status: "5.1.1", Diagnostic: "smtp; 550 no", Report: bytes.Repeat([]byte("r"), 100<<10)}
	first, r, err := s.MarkReturned(ctx, m.Seq, 1, ret)
	if err != nil || !first || r.Addr != "b@one.example" {
		t.Fatalf("MarkReturned = %v %+v %v", first, r, err)
	}
	if first, _, _ := s.MarkReturned(ctx, m.Seq, 1, ret); first {
		t.Error("second bounce reported as first")
	}
	got, _ = s.Sent(m.Seq)
	if got[0].Returned == nil || got[0].Returned.Status != "5.1.1" || len(got[0].Returned.Report) != maxReturnedReport {
		t.Errorf("returned = %+v", got[0].Returned)
	}
	if _, _, err := s.MarkReturned(ctx, m.Seq, 0, ret); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkReturned of an unrecorded recipient: %v", err)
	}
	if n, err := s.PruneSent(ctx, t0.Add(2*time.Minute)); n != 1 || err != nil {
		t.Errorf("PruneSent = %d, %v", n, err)
	}
	if got, _ := s.Sent(m.Seq); len(got) != 0 {
		t.Errorf("after prune: %+v", got)
	}
}
