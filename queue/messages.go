package queue

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Enqueue stores a new message durably: envelope, recipients and body in one
// committed transaction (the body file, if any, fsynced before it). It
// returns nil only when everything is on disk. m.Seq and m.ID must come from
// NewID. A full disk returns an error wrapping ErrNoSpace.
func (s *Store) Enqueue(ctx context.Context, m *Message, body []byte) error {
	if err := validateNew(m); err != nil {
		return err
	}
	m.Size = int64(len(body))
	m.bodyInFile = s.bodyInFile(len(body))
	if m.bodyInFile {
		if err := s.writeBodyFile(m.Seq, body); err != nil {
			return err
		}
	}
	rec := encodeMessage(m)
	rcpts := make([][]byte, len(m.Recipients))
	for i := range m.Recipients {
		rcpts[i] = encodeRecipient(&m.Recipients[i])
	}
	err := s.commit(ctx, func(tx *bolt.Tx) error {
		return putNew(tx, m, rec, rcpts, body)
	})
	if err != nil && m.bodyInFile {
		s.removeBodyFiles([]uint64{m.Seq})
	}
	if err != nil {
		return fmt.Errorf("queue: enqueue %s: %w", m.ID, err)
	}
	return nil
}

func validateNew(m *Message) error {
	if m.Seq == 0 || m.ID != FormatID(m.Seq) {
		return fmt.Errorf("queue: message ID %q does not match sequence %d (use Store.NewID)", m.ID, m.Seq)
	}
	if len(m.Recipients) == 0 {
		return fmt.Errorf("queue: message %s has no recipients", m.ID)
	}
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.Index != i {
			return fmt.Errorf("queue: message %s recipient %d has index %d", m.ID, i, r.Index)
		}
		if r.State == 0 {
			r.State = StateQueued
		}
	}
	return nil
}

// putNew writes a new message's records. The message key must be free: a
// sequence is never reused.
func putNew(tx *bolt.Tx, m *Message, rec []byte, rcpts [][]byte, body []byte) error {
	msgs := tx.Bucket(bucketMsg)
	key := seqKey(m.Seq)
	if msgs.Get(key) != nil {
		return fmt.Errorf("queue: message %s already exists", m.ID)
	}
	if err := msgs.Put(key, rec); err != nil {
		return err
	}
	rb := tx.Bucket(bucketRcpt)
	for i, r := range rcpts {
		if err := rb.Put(rcptKey(m.Seq, i), r); err != nil {
			return err
		}
	}
	if !m.bodyInFile {
		if err := tx.Bucket(bucketBody).Put(key, body); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyLastSeq); v == nil || be64(v) < m.Seq {
		return meta.Put(keyLastSeq, seqKey(m.Seq))
	}
	return nil
}

// Get returns message seq with its recipients.
func (s *Store) Get(seq uint64) (*Message, error) {
	var m *Message
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		m, _, err = loadMessage(tx, seq)
		return err
	})
	return m, err
}

// Body returns a copy of the raw message (headers and body) of seq.
func (s *Store) Body(seq uint64) ([]byte, error) {
	var body []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMsg).Get(seqKey(seq))
		if v == nil {
			return fmt.Errorf("%w: %s", ErrNotFound, FormatID(seq))
		}
		var m Message
		if _, err := decodeMessage(seq, v, &m); err != nil {
			return err
		}
		var err error
		body, err = s.readBody(tx, seq, m.bodyInFile)
		return err
	})
	return body, err
}

// Load returns message seq with its recipients and a copy of its body,
// read in one transaction (what a delivery needs).
func (s *Store) Load(seq uint64) (*Message, []byte, error) {
	var m *Message
	var body []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if m, _, err = loadMessage(tx, seq); err != nil {
			return err
		}
		body, err = s.readBody(tx, seq, m.bodyInFile)
		return err
	})
	return m, body, err
}

// loadMessage decodes a message and its recipients inside tx. The second
// result holds each recipient's stored encoding, to spot what changed.
func loadMessage(tx *bolt.Tx, seq uint64) (*Message, [][]byte, error) {
	v := tx.Bucket(bucketMsg).Get(seqKey(seq))
	if v == nil {
		return nil, nil, fmt.Errorf("%w: %s", ErrNotFound, FormatID(seq))
	}
	m := new(Message)
	n, err := decodeMessage(seq, v, m)
	if err != nil {
		return nil, nil, err
	}
	m.Recipients = make([]Recipient, n)
	raw := make([][]byte, n)
	c := tx.Bucket(bucketRcpt).Cursor()
	prefix := seqKey(seq)
	i := 0
	for k, rv := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, rv = c.Next() {
		idx := int(be32(k[8:]))
		if idx >= n || idx != i {
			return nil, nil, fmt.Errorf("%w: message %s recipient key %d out of order", ErrCorrupt, m.ID, idx)
		}
		r := &m.Recipients[idx]
		if err := decodeRecipient(rv, r); err != nil {
			return nil, nil, fmt.Errorf("message %s recipient %d: %w", m.ID, idx, err)
		}
		r.Index = idx
		raw[idx] = rv
		i++
	}
	if i != n {
		return nil, nil, fmt.Errorf("%w: message %s has %d of %d recipient records", ErrCorrupt, m.ID, i, n)
	}
	return m, raw, nil
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Scan calls fn for every message in the store, in sequence order, with its
// recipients. It runs in one read transaction; fn must not call the Store.
// The message passed to fn is fn's to keep.
func (s *Store) Scan(fn func(m *Message) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		mc := tx.Bucket(bucketMsg).Cursor()
		rc := tx.Bucket(bucketRcpt).Cursor()
		rk, rv := rc.First()
		for k, v := mc.First(); k != nil; k, v = mc.Next() {
			seq := be64(k)
			m := new(Message)
			n, err := decodeMessage(seq, v, m)
			if err != nil {
				return err
			}
			m.Recipients = make([]Recipient, n)
			// Recipient keys sort by sequence, so one forward cursor walks
			// them in step with the messages.
			for rk != nil && be64(rk) < seq {
				rk, rv = rc.Next()
			}
			got := 0
			for ; rk != nil && be64(rk) == seq; rk, rv = rc.Next() {
				idx := int(be32(rk[8:]))
				if idx >= n {
					return fmt.Errorf("%w: message %s recipient index %d of %d", ErrCorrupt, m.ID, idx, n)
				}
				if err := decodeRecipient(rv, &m.Recipients[idx]); err != nil {
					return fmt.Errorf("message %s recipient %d: %w", m.ID, idx, err)
				}
				m.Recipients[idx].Index = idx
				got++
			}
			if got != n {
				return fmt.Errorf("%w: message %s has %d of %d recipient records", ErrCorrupt, m.ID, got, n)
			}
			if err := fn(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// Count returns how many messages and recipients the store holds.
func (s *Store) Count() (messages, recipients int, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		messages = tx.Bucket(bucketMsg).Stats().KeyN
		recipients = tx.Bucket(bucketRcpt).Stats().KeyN
		return nil
	})
	return messages, recipients, err
}
