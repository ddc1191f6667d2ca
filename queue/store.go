package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	bucketMeta  = []byte("meta")
	bucketMsg   = []byte("msg")
	bucketRcpt  = []byte("rcpt")
	bucketBody  = []byte("body")
	bucketUsage = []byte("usage")

	keySchema  = []byte("schema")
	keyLastSeq = []byte("last_seq")
)

// storeSchema is the layout version of the whole file (bucket names, keys).
const storeSchema = 1

// Options configures a Store.
type Options struct {
	// Path of the bbolt file. Its directory also holds body files.
	Path string
	// LockTimeout bounds the wait for the file lock held by another process
	// (a running daemon). Zero means 1s.
	LockTimeout time.Duration
	// FileBodyBytes: bodies of at least this many bytes are written to their
	// own fsynced file instead of inline in bbolt. Zero means DefaultFileBodyBytes;
	// negative means always inline.
	FileBodyBytes int
	// MaxBatch caps how many changes share one commit. Zero means 512.
	MaxBatch int
	// LazyCommitDelay is how long a delivery result or other Apply may wait
	// for an Enqueue to share its commit with, while mail is being accepted
	// (see commitSoon). Zero means DefaultLazyCommitDelay; negative, never.
	LazyCommitDelay time.Duration
	// ReadOnly opens the file for reading only (the CLI when no daemon runs).
	ReadOnly bool
	// OnCommit, if set, is called after every commit with its duration and
	// the number of changes it carried (for metrics).
	OnCommit func(d time.Duration, changes int)
	Logger   *slog.Logger
}

// DefaultLazyCommitDelay bounds the wait of a lazy commit. Under steady
// acceptance an Enqueue comes along well within it; see docs/performance.md.
const DefaultLazyCommitDelay = 5 * time.Millisecond

// DefaultFileBodyBytes is where bodies move out of bbolt into files. See
// BenchmarkEnqueue and docs/performance.md for the measurement behind it.
const DefaultFileBodyBytes = 128 << 10

// Store is the durable queue. It is safe for concurrent use.
type Store struct {
	db      *bolt.DB
	opts    Options
	log     *slog.Logger
	bodyDir string
	lastSeq atomic.Uint64

	ops       chan *commitOp
	submitMu  sync.RWMutex
	closed    bool
	closing   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	closeErr  error

	// onLinger, set only by tests before any commit, is called when a lazy
	// commit starts waiting for company.
	onLinger func()
}

// Open opens (creating if needed) the store at o.Path and recovers it: body
// files left by an interrupted enqueue are removed. Every pending recipient
// stays as it was committed; the scheduler schedules them again from Scan.
func Open(o Options) (*Store, error) {
	if o.LockTimeout == 0 {
		o.LockTimeout = time.Second
	}
	if o.FileBodyBytes == 0 {
		o.FileBodyBytes = DefaultFileBodyBytes
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.LazyCommitDelay == 0 {
		o.LazyCommitDelay = DefaultLazyCommitDelay
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !o.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
			return nil, fmt.Errorf("queue: create directory for %s: %w", o.Path, err)
		}
	}
	db, err := bolt.Open(o.Path, 0o640, &bolt.Options{
		Timeout:        o.LockTimeout,
		ReadOnly:       o.ReadOnly,
		NoFreelistSync: true, // the freelist is rebuilt at open; every data page is still fsynced
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("queue: %s is locked by another process (is the daemon running?): %w", o.Path, err)
		}
		return nil, fmt.Errorf("queue: open %s: %w", o.Path, err)
	}
	s := &Store{
		db: db, opts: o, log: o.Logger,
		bodyDir: o.Path + ".bodies",
		ops:     make(chan *commitOp, o.MaxBatch),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	if o.ReadOnly {
		close(s.done)
		return s, nil
	}
	go s.committer()
	return s, nil
}

func (s *Store) init() error {
	if s.opts.ReadOnly {
		return s.db.View(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				return fmt.Errorf("queue: %s is not a sluice queue (no meta bucket)", s.opts.Path)
			}
			return s.loadMeta(meta)
		})
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketMsg, bucketRcpt, bucketBody, bucketUsage} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keySchema) == nil {
			if err := meta.Put(keySchema, seqKey(storeSchema)); err != nil {
				return err
			}
		}
		return s.loadMeta(meta)
	})
	if err != nil {
		return fmt.Errorf("queue: initialise %s: %w", s.opts.Path, err)
	}
	return s.removeOrphanBodies()
}

func (s *Store) loadMeta(meta *bolt.Bucket) error {
	if v := meta.Get(keySchema); len(v) == 8 {
		if got := be64(v); got != storeSchema {
			return fmt.Errorf("%w: store schema %d, this sluice reads %d", ErrCorrupt, got, storeSchema)
		}
	}
	if v := meta.Get(keyLastSeq); len(v) == 8 {
		s.lastSeq.Store(be64(v))
	}
	return nil
}

// Path returns the bbolt file's path.
func (s *Store) Path() string { return s.opts.Path }

// Close stops the committer after the changes already submitted and closes
// the file. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.submitMu.Lock()
		s.closed = true
		s.submitMu.Unlock()
		close(s.closing)
		<-s.done
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// NewID allocates the next queue ID. IDs grow with time (microseconds since
// the Unix epoch, or one more than the last, whichever is larger), so they
// stay unique across restarts even before the message is committed.
func (s *Store) NewID() (uint64, string) {
	now := uint64(time.Now().UnixMicro())
	for {
		last := s.lastSeq.Load()
		next := last + 1
		if now > next {
			next = now
		}
		if s.lastSeq.CompareAndSwap(last, next) {
			return next, FormatID(next)
		}
	}
}

// storageError maps a commit failure to ErrNoSpace when the disk or a quota
// is full.
func storageError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}
