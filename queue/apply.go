package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// NewMessage is a message to enqueue together with a Change, such as the
// bounce that a failure causes: both commit or neither does.
type NewMessage struct {
	Msg  *Message // Seq and ID from NewID
	Body []byte
}

// Change is an update to one message, applied in one transaction.
type Change struct {
	Seq uint64
	// Update mutates the freshly loaded message. It may run more than once
	// (when a shared commit is retried), so it must depend only on its
	// argument and values it does not modify.
	Update func(m *Message) error
	// Add holds messages to enqueue in the same transaction.
	Add []NewMessage
	// Remove drops the message even if recipients are still pending
	// (sluice queue delete).
	Remove bool
	// Remember stores sent records (recipients handed over with a VERP
	// return path) in the same transaction.
	Remember []SentRecord
}

// Applied is the outcome of a Change.
type Applied struct {
	Msg     *Message // the message as committed (its last state when removed)
	Removed bool     // the message left the queue: no recipient pending, or Remove
}

// ErrSkipChange, returned by Change.Update, leaves the message untouched and
// makes Apply return it with no error and nothing written.
var ErrSkipChange = errors.New("queue: change skipped")

// Apply loads message ch.Seq, runs ch.Update on it, writes back the records
// that changed and enqueues ch.Add, all in one commit. When no recipient is
// pending afterwards, the message and its body leave the queue in that same
// commit.
func (s *Store) Apply(ctx context.Context, ch Change) (Applied, error) {
	adds, err := s.prepareAdds(ch.Add)
	if err != nil {
		return Applied{}, err
	}
	var out Applied
	var bodyFile bool
	// Lazy: nobody waits on the other end of a delivery result, so it may
	// share the next acceptance's commit (the caller still returns only
	// once it is on disk).
	err = s.commitLazy(ctx, func(tx *bolt.Tx) error {
		m, raw, err := loadMessage(tx, ch.Seq)
		if err != nil {
			return err
		}
		out = Applied{Msg: m}
		bodyFile = m.bodyInFile
		if ch.Update != nil {
			if err := ch.Update(m); err != nil {
				return err
			}
		}
		if ch.Remove || !hasPending(m) {
			out.Removed = true
			if err := removeMessage(tx, m); err != nil {
				return err
			}
		} else if err := writeBack(tx, m, raw); err != nil {
			return err
		}
		for _, a := range adds {
			if err := putNew(tx, a.msg, a.rec, a.rcpts, a.body); err != nil {
				return err
			}
		}
		if len(ch.Remember) > 0 {
			return putSent(tx, ch.Remember)
		}
		return nil
	})
	if errors.Is(err, ErrSkipChange) {
		m, gerr := s.Get(ch.Seq)
		return Applied{Msg: m}, gerr
	}
	if err != nil {
		s.dropAddFiles(adds)
		return Applied{}, fmt.Errorf("queue: update %s: %w", FormatID(ch.Seq), err)
	}
	if out.Removed && bodyFile {
		s.removeBodyFiles([]uint64{ch.Seq})
	}
	return out, nil
}

func hasPending(m *Message) bool {
	for i := range m.Recipients {
		if m.Recipients[i].State.IsPending() {
			return true
		}
	}
	return false
}

// writeBack rewrites the message record and the recipients whose encoding
// changed.
func writeBack(tx *bolt.Tx, m *Message, raw [][]byte) error {
	if len(m.Recipients) != len(raw) {
		return fmt.Errorf("queue: update of %s changed the recipient count", m.ID)
	}
	if err := tx.Bucket(bucketMsg).Put(seqKey(m.Seq), encodeMessage(m)); err != nil {
		return err
	}
	rb := tx.Bucket(bucketRcpt)
	for i := range m.Recipients {
		m.Recipients[i].Index = i
		enc := encodeRecipient(&m.Recipients[i])
		if bytes.Equal(enc, raw[i]) {
			continue
		}
		if err := rb.Put(rcptKey(m.Seq, i), enc); err != nil {
			return err
		}
	}
	return nil
}

func removeMessage(tx *bolt.Tx, m *Message) error {
	key := seqKey(m.Seq)
	if err := tx.Bucket(bucketMsg).Delete(key); err != nil {
		return err
	}
	rb := tx.Bucket(bucketRcpt)
	for i := range m.Recipients {
		if err := rb.Delete(rcptKey(m.Seq, i)); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketBody).Delete(key)
}

type preparedAdd struct {
	msg   *Message
	rec   []byte
	rcpts [][]byte
	body  []byte
}

// prepareAdds encodes the messages to add and writes big bodies to files
// before the transaction, as Enqueue does.
func (s *Store) prepareAdds(adds []NewMessage) ([]preparedAdd, error) {
	out := make([]preparedAdd, 0, len(adds))
	for _, a := range adds {
		if err := validateNew(a.Msg); err != nil {
			return nil, err
		}
		a.Msg.Size = int64(len(a.Body))
		a.Msg.bodyInFile = s.bodyInFile(len(a.Body))
		if a.Msg.bodyInFile {
			if err := s.writeBodyFile(a.Msg.Seq, a.Body); err != nil {
				s.dropAddFiles(out)
				return nil, err
			}
		}
		p := preparedAdd{msg: a.Msg, rec: encodeMessage(a.Msg), body: a.Body}
		for i := range a.Msg.Recipients {
			p.rcpts = append(p.rcpts, encodeRecipient(&a.Msg.Recipients[i]))
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Store) dropAddFiles(adds []preparedAdd) {
	var seqs []uint64
	for _, a := range adds {
		if a.msg.bodyInFile {
			seqs = append(seqs, a.msg.Seq)
		}
	}
	s.removeBodyFiles(seqs)
}
