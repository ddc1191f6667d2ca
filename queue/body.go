package queue

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Bodies live inline in bbolt unless they are at least Options.FileBodyBytes
// long; then they are written to their own file and fsynced (file and
// directory) before the transaction that references them commits. A file
// without a committed message (a crash between the two) is removed at open.

func (s *Store) bodyInFile(size int) bool {
	return s.opts.FileBodyBytes > 0 && size >= s.opts.FileBodyBytes
}

func (s *Store) bodyPath(seq uint64) string {
	return filepath.Join(s.bodyDir, FormatID(seq))
}

// writeBodyFile stores body durably in its own file.
func (s *Store) writeBodyFile(seq uint64, body []byte) error {
	if err := os.MkdirAll(s.bodyDir, 0o750); err != nil {
		return storageError(fmt.Errorf("queue: create body directory: %w", err))
	}
	path := s.bodyPath(seq)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return storageError(fmt.Errorf("queue: create body file: %w", err))
	}
	_, werr := f.Write(body)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = syncDir(s.bodyDir)
	}
	if werr != nil {
		os.Remove(path)
		return storageError(fmt.Errorf("queue: write body file: %w", werr))
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readBody returns a copy of the body of message seq.
func (s *Store) readBody(tx *bolt.Tx, seq uint64, inFile bool) ([]byte, error) {
	if inFile {
		b, err := os.ReadFile(s.bodyPath(seq))
		if err != nil {
			return nil, fmt.Errorf("queue: read body of %s: %w", FormatID(seq), err)
		}
		return b, nil
	}
	v := tx.Bucket(bucketBody).Get(seqKey(seq))
	if v == nil {
		return nil, fmt.Errorf("%w: message %s has no body", ErrCorrupt, FormatID(seq))
	}
	return append([]byte(nil), v...), nil
}

// removeBodyFiles deletes body files after the transaction that dropped
// their messages committed. A failure only leaves an orphan for the next open.
func (s *Store) removeBodyFiles(seqs []uint64) {
	for _, seq := range seqs {
		if err := os.Remove(s.bodyPath(seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot remove body file", "queue_id", FormatID(seq), "err", err)
		}
	}
}

// removeOrphanBodies deletes body files whose message is not in the store.
func (s *Store) removeOrphanBodies() error {
	entries, err := os.ReadDir(s.bodyDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("queue: read body directory: %w", err)
	}
	var orphans []uint64
	err = s.db.View(func(tx *bolt.Tx) error {
		msgs := tx.Bucket(bucketMsg)
		for _, e := range entries {
			name := e.Name()
			seq, perr := ParseID(name)
			if perr != nil || strings.ToUpper(name) != name {
				continue
			}
			if msgs.Get(seqKey(seq)) == nil {
				orphans = append(orphans, seq)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(orphans) > 0 {
		s.log.Info("removing body files of messages never committed", "count", len(orphans))
		s.removeBodyFiles(orphans)
	}
	return nil
}
