package redisbudget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for Options fields left zero.
const (
	DefaultTimeout     = 200 * time.Millisecond
	DefaultKeyTTLGrace = time.Hour
)

// Options configure a Store.
type Options struct {
	// URL says where Redis is. Accepted forms, and the go-redis client
	// each builds:
	//
	//	redis://[user:password@]host[:port][/db][?option=value...]
	//	rediss://...   the same over TLS (certificate verified)
	//	unix://[user:password@]/path/to/redis.sock[?db=N&...]
	//	    one server: redis.ParseURL, redis.NewClient.
	//
	//	redis-sentinel://[user:password@]host[:port][/db]?master_name=NAME[&addr=host:port...][&password=...]
	//	rediss-sentinel://...   the same over TLS
	//	    Redis Sentinel: the host and each addr= are sentinels;
	//	    master_name is required; the userinfo authenticates to the
	//	    sentinels, username= and password= to the master.
	//	    redis.ParseFailoverURL (scheme mapped to redis or rediss),
	//	    redis.NewFailoverClient.
	//
	//	redis-cluster://[user:password@]host[:port][?addr=host:port...]
	//	rediss-cluster://...   the same over TLS
	//	    Redis Cluster: the host and each addr= are seed nodes.
	//	    redis.ParseClusterURL (scheme mapped), redis.NewClusterClient.
	//
	// Query parameters are the go-redis parser's for that form (snake_case
	// option names; unknown names are an error). These are overridden,
	// because the budget depends on them: dial, read, write and pool
	// timeouts become Timeout; context deadlines are honoured; retries
	// (max_retries) and cluster redirects (max_redirects) are off, so no
	// script ever runs twice; dial_retries is 1. Errors about the URL wrap
	// ErrBadURL and never repeat it, as it may hold a password.
	URL string
	// Timeout bounds every call, dial included (default 200ms). A Redis
	// that accepts connections but never answers costs a caller at most
	// about this long.
	Timeout time.Duration
	// KeyTTLGrace is how long a window's key outlives the window (default
	// one hour), so that late refunds and `sluice quota` still find it.
	KeyTTLGrace time.Duration
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Now is the relay's clock, compared with Redis's by ClockSkew
	// (default time.Now).
	Now func() time.Time
}

// Store is a Budget kept in Redis. It is safe for concurrent use.
type Store struct {
	client  redis.UniversalClient
	timeout time.Duration
	grace   time.Duration
	log     *slog.Logger
	now     func() time.Time

	mu   sync.Mutex
	seen *windowTable // the last total Redis reported per window

	closeOnce sync.Once
	closeErr  error
}

// New checks o and builds a Store. It does not contact Redis: the first
// call does, so a relay can start while Redis is down.
func New(o Options) (*Store, error) {
	if o.Timeout < 0 || o.KeyTTLGrace < 0 {
		return nil, fmt.Errorf("redisbudget: negative timeout %v or key TTL grace %v", o.Timeout, o.KeyTTLGrace)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.KeyTTLGrace == 0 {
		o.KeyTTLGrace = DefaultKeyTTLGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c, err := newClient(o.URL, o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("redisbudget: %w", err)
	}
	return &Store{
		client:  c,
		timeout: o.Timeout,
		grace:   o.KeyTTLGrace,
		log:     o.Logger,
		now:     o.Now,
		seen:    newWindowTable(o.KeyTTLGrace),
	}, nil
}

// Close closes the connections. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.client.Close() })
	return s.closeErr
}

// Reserve grants up to n units of costMilli each in op's window
// [start, start+length), as many as fit under quotaMilli, and returns how
// many. It is atomic across every relay sharing the Redis server.
func (s *Store) Reserve(ctx context.Context, op string, start time.Time, length time.Duration, quotaMilli, costMilli int64, n int) (int, error) {
	if err := checkReserve(op, length, quotaMilli, costMilli, n); err != nil {
		return 0, fmt.Errorf("redisbudget: reserve: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := []any{quotaMilli, costMilli, n, ttlSeconds(length, s.grace)}
	res, err := reserveScript.Run(ctx, s.client, []string{Key(op, start)}, args...).Int64Slice()
	if err != nil {
		return 0, unavailable("reserve", op, err)
	}
	if len(res) != 2 || res[0] < 0 || res[0] > int64(n) {
		return 0, fmt.Errorf("redisbudget: reserve for %s: %w: script returned %v", op, ErrUnavailable, res)
	}
	s.note(op, start, start.Add(length), res[1])
	s.log.Debug("budget reserved", "operator", op, "window", start.Unix(),
		"granted", res[0], "cost_milli", costMilli, "used_milli", res[1])
	return int(res[0]), nil
}

// Refund gives milli units back to op's window, never below zero. A window
// Redis no longer holds (expired, or lost in a restart) stays absent.
func (s *Store) Refund(ctx context.Context, op string, start time.Time, milli int64) error {
	if err := checkOperator(op); err != nil {
		return fmt.Errorf("redisbudget: refund: %w", err)
	}
	if milli <= 0 {
		return nil
	}
	if milli > maxExact {
		return fmt.Errorf("redisbudget: refund: %w: %d milli is above 2^53", ErrInvalidArgument, milli)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	used, err := refundScript.Run(ctx, s.client, []string{Key(op, start)}, milli).Int64()
	if err != nil {
		return unavailable("refund", op, err)
	}
	s.note(op, start, time.Time{}, used)
	return nil
}

// Used returns the milli units op's window has used; a missing key is 0.
func (s *Store) Used(ctx context.Context, op string, start time.Time) (int64, error) {
	if err := checkOperator(op); err != nil {
		return 0, fmt.Errorf("redisbudget: used: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	raw, err := s.client.Get(ctx, Key(op, start)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable("read usage", op, err)
	}
	used, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redisbudget: read usage for %s: %w: key holds %q", op, ErrUnavailable, raw)
	}
	s.note(op, start, time.Time{}, used)
	return used, nil
}

// charge adds milli to op's window unconditionally, setting its TTL as
// Reserve does. Fallback uses it to record what it granted locally while
// Redis was unreachable.
func (s *Store) charge(ctx context.Context, op string, start time.Time, length time.Duration, milli int64) error {
	if err := checkOperator(op); err != nil {
		return fmt.Errorf("redisbudget: charge: %w", err)
	}
	if milli <= 0 || milli > maxExact || length <= 0 {
		return fmt.Errorf("redisbudget: charge: %w: %d milli over %v", ErrInvalidArgument, milli, length)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	args := []any{milli, ttlSeconds(length, s.grace)}
	used, err := chargeScript.Run(ctx, s.client, []string{Key(op, start)}, args...).Int64()
	if err != nil {
		return unavailable("charge", op, err)
	}
	s.note(op, start, start.Add(length), used)
	return nil
}

// lastUsed returns the total Redis last reported for op's window to this
// relay, if any call touched it. Fallback uses it to size a local share.
func (s *Store) lastUsed(op string, start time.Time) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.seen.get(op, start)
	return e.milli, ok
}

// note records a total Redis reported. end is the window's end when the
// caller knows it; otherwise an existing entry keeps its end, and a new one
// ages from its start.
func (s *Store) note(op string, start, end time.Time, used int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if end.IsZero() {
		end = start
		if e, ok := s.seen.get(op, start); ok {
			end = e.end
		}
	}
	s.seen.put(op, start, windowEntry{milli: used, end: end})
}

// unavailable wraps a Redis failure.
func unavailable(verb, op string, err error) error {
	return fmt.Errorf("redisbudget: %s for %s: %w: %w", verb, op, ErrUnavailable, err)
}
