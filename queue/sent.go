package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sent records remember recipients handed over with a VERP return path,
// after their message left the queue, so that an asynchronous bounce that
// arrives days later can be matched to the recipient and reported to the
// original sender. They keep the original header section, not the body.

var bucketSent = []byte("sent")

const sentVersion = 1

// maxReturnedReport bounds the inbound bounce kept with a record.
const maxReturnedReport = 64 << 10

// SentRecord is one recipient handed over with a VERP return path.
type SentRecord struct {
	Seq      uint64
	ID       string
	Index    int
	Addr     string
	ORCPT    string
	Notify   Notify
	From     string
	EnvID    string
	Ret      string
	Arrival  time.Time
	SentAt   time.Time
	Headers  []byte
	Returned *Returned // nil until a bounce came back
}

// Returned is an inbound bounce matched to a sent recipient.
type Returned struct {
	At         time.Time
	Client     string // the IP that brought it
	From       string // its envelope sender (normally <>)
	Action     string
	Status     string
	Diagnostic string
	RemoteMTA  string
	Report     []byte // the bounce itself, truncated
}

func encodeSent(r *SentRecord) []byte {
	e := encoder{b: make([]byte, 0, 128+len(r.Headers))}
	e.byte(sentVersion)
	e.str(r.Addr)
	e.str(r.ORCPT)
	e.byte(byte(r.Notify))
	e.str(r.From)
	e.str(r.EnvID)
	e.str(r.Ret)
	e.time(r.Arrival)
	e.time(r.SentAt)
	e.str(string(r.Headers))
	if r.Returned == nil {
		e.byte(0)
		return e.b
	}
	x := r.Returned
	e.byte(1)
	e.time(x.At)
	for _, s := range []string{x.Client, x.From, x.Action, x.Status, x.Diagnostic, x.RemoteMTA, string(x.Report)} {
		e.str(s)
	}
	return e.b
}

func decodeSent(seq uint64, idx int, b []byte) (*SentRecord, error) {
	d := decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != sentVersion {
		return nil, fmt.Errorf("%w: sent record has schema version %d, this sluice reads %d", ErrCorrupt, v, sentVersion)
	}
	r := &SentRecord{Seq: seq, ID: FormatID(seq), Index: idx}
	r.Addr = d.str("address")
	r.ORCPT = d.str("orcpt")
	r.Notify = Notify(d.byte("notify"))
	r.From = d.str("sender")
	r.EnvID = d.str("envid")
	r.Ret = d.str("ret")
	r.Arrival = d.time("arrival")
	r.SentAt = d.time("sent")
	r.Headers = []byte(d.str("headers"))
	if d.byte("returned") == 1 {
		x := &Returned{At: d.time("returned at")}
		x.Client, x.From, x.Action = d.str("client"), d.str("from"), d.str("action")
		x.Status, x.Diagnostic, x.RemoteMTA = d.str("status"), d.str("diagnostic"), d.str("remote mta")
		x.Report = []byte(d.str("report"))
		r.Returned = x
	}
	if d.err != nil {
		return nil, fmt.Errorf("sent record %s/%d: %w", FormatID(seq), idx, d.err)
	}
	return r, nil
}

func putSent(tx *bolt.Tx, recs []SentRecord) error {
	b, err := tx.CreateBucketIfNotExists(bucketSent)
	if err != nil {
		return err
	}
	for i := range recs {
		if err := b.Put(rcptKey(recs[i].Seq, recs[i].Index), encodeSent(&recs[i])); err != nil {
			return err
		}
	}
	return nil
}

// Sent returns the sent records of message seq (none if unknown).
func (s *Store) Sent(seq uint64) ([]SentRecord, error) {
	var out []SentRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSent)
		if b == nil {
			return nil
		}
		prefix := seqKey(seq)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			r, err := decodeSent(seq, int(be32(k[8:])), v)
			if err != nil {
				return err
			}
			out = append(out, *r)
		}
		return nil
	})
	return out, err
}

// MarkReturned attaches an inbound bounce to a sent record. It reports
// whether this was the first bounce for the recipient (only the first
// gets reported to the sender) and returns the record; ErrNotFound when
// there is none (never sent with VERP, or pruned).
func (s *Store) MarkReturned(ctx context.Context, seq uint64, idx int, ret Returned) (bool, *SentRecord, error) {
	if len(ret.Report) > maxReturnedReport {
		ret.Report = ret.Report[:maxReturnedReport]
	}
	var first bool
	var rec *SentRecord
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSent)
		if b == nil {
			return fmt.Errorf("%w: no sent record for %s/%d", ErrNotFound, FormatID(seq), idx)
		}
		v := b.Get(rcptKey(seq, idx))
		if v == nil {
			return fmt.Errorf("%w: no sent record for %s/%d", ErrNotFound, FormatID(seq), idx)
		}
		r, err := decodeSent(seq, idx, v)
		if err != nil {
			return err
		}
		first, rec = r.Returned == nil, r
		if !first {
			return nil
		}
		r.Returned = &ret
		return b.Put(rcptKey(seq, idx), encodeSent(r))
	})
	return first, rec, err
}

// PruneSent forgets records of recipients sent before cutoff.
func (s *Store) PruneSent(ctx context.Context, cutoff time.Time) (int, error) {
	n := 0
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSent)
		if b == nil {
			return nil
		}
		var old [][]byte
		err := b.ForEach(func(k, v []byte) error {
			if len(k) != 12 {
				return nil
			}
			r, err := decodeSent(be64(k), int(binary.BigEndian.Uint32(k[8:])), v)
			if err != nil || r.SentAt.Before(cutoff) {
				old = append(old, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// ReplaceReturned overwrites the bounce attached to a sent record.
func (s *Store) ReplaceReturned(ctx context.Context, seq uint64, idx int, ret Returned) (*SentRecord, error) {
	if len(ret.Report) > maxReturnedReport {
		ret.Report = ret.Report[:maxReturnedReport]
	}
	var rec *SentRecord
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSent)
		var v []byte
		if b != nil {
			v = b.Get(rcptKey(seq, idx))
		}
		if v == nil {
			return fmt.Errorf("%w: no sent record for %s/%d", ErrNotFound, FormatID(seq), idx)
		}
		r, err := decodeSent(seq, idx, v)
		if err != nil {
			return err
		}
		r.Returned = &ret
		rec = r
		return b.Put(rcptKey(seq, idx), encodeSent(r))
	})
	return rec, err
}
