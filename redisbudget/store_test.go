package redisbudget

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-mta/sluice/internal/testredis"
)

func TestKey(t *testing.T) {
	tests := []struct {
		name  string
		op    string
		start time.Time
		want  string
	}{
		{"hour window", "bigmail", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), "sluice:budget:{bigmail}:1767225600"},
		{"zone does not matter", "bigmail", time.Date(2026, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600)), "sluice:budget:{bigmail}:1767225600"},
		{"dots and dashes", "big-mail.eu_1", time.Unix(60, 0), "sluice:budget:{big-mail.eu_1}:60"},
		{"sub-second start truncated", "x", time.Unix(60, 999_000_000), "sluice:budget:{x}:60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Key(tt.op, tt.start)
			if got != tt.want {
				t.Errorf("Key(%q, %v) = %q, want %q", tt.op, tt.start, got, tt.want)
			}
			// The hash tag is the first {...}: exactly the operator.
			open, end := strings.IndexByte(got, '{'), strings.IndexByte(got, '}')
			if open < 0 || end < open || got[open+1:end] != tt.op {
				t.Errorf("hash tag of %q is not {%s}", got, tt.op)
			}
		})
	}
}

func TestTTLSeconds(t *testing.T) {
	tests := []struct {
		name          string
		length, grace time.Duration
		want          int64
	}{
		{"hour plus hour", time.Hour, time.Hour, 7200},
		{"rounds up", 2 * time.Second, time.Millisecond, 3},
		{"exact seconds", 2 * time.Second, 3 * time.Second, 5},
		{"never zero", time.Nanosecond, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ttlSeconds(tt.length, tt.grace); got != tt.want {
				t.Errorf("ttlSeconds(%v, %v) = %d, want %d", tt.length, tt.grace, got, tt.want)
			}
		})
	}
}

func TestReserveGrants(t *testing.T) {
	_, s := newTestRedis(t)
	ctx := testCtx(t)
	tests := []struct {
		name        string
		before      int64 // milli already used in the window
		quota, cost int64
		n           int
		want        int
	}{
		{"all fit", 0, 10_000, 1000, 5, 5},
		{"partial grant", 0, 2_500, 1000, 5, 2},
		{"exactly full", 8_000, 10_000, 1000, 2, 2},
		{"nothing left", 10_000, 10_000, 1000, 3, 0},
		{"cost above what is left", 9_500, 10_000, 1000, 1, 0},
		{"fractional cost", 0, 1_000, 334, 5, 2},
		{"used above quota", 12_000, 10_000, 1, 1, 0},
		{"zero quota", 0, 0, 1000, 1, 0},
		{"negative quota", 0, -5, 1000, 1, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := "op" + strconv.Itoa(i)
			if tt.before > 0 {
				if err := s.client.Set(ctx, Key(op, window0), tt.before, 0).Err(); err != nil {
					t.Fatalf("seed: %v", err)
				}
			}
			got, err := s.Reserve(ctx, op, window0, time.Hour, tt.quota, tt.cost, tt.n)
			if err != nil {
				t.Fatalf("Reserve: %v", err)
			}
			if got != tt.want {
				t.Errorf("Reserve granted %d, want %d", got, tt.want)
			}
			used, err := s.Used(ctx, op, window0)
			if err != nil {
				t.Fatalf("Used: %v", err)
			}
			if want := tt.before + int64(tt.want)*tt.cost; used != want {
				t.Errorf("Used = %d, want %d", used, want)
			}
		})
	}
}

// TestReserveConcurrentNeverOverGrants runs 50 goroutines, spread over two
// Stores as two relays would be, each reserving several times.
func TestReserveConcurrentNeverOverGrants(t *testing.T) {
	srv, s1 := newTestRedis(t)
	s2 := newTestStore(t, srv.URL(), Options{})
	ctx := testCtx(t)
	const (
		workers = 50
		rounds  = 8
		quota   = 50_000
		cost    = 334 // priority 3
	)
	var (
		mu      sync.Mutex
		granted int64
		wg      sync.WaitGroup
		errs    = make(chan error, workers*rounds)
	)
	for w := range workers {
		s := s1
		if w%2 == 1 {
			s = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				k, err := s.Reserve(ctx, "bigmail", window0, time.Hour, quota, cost, 1+(w+r)%3)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				granted += int64(k) * cost
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Reserve: %v", err)
	}
	used, err := s1.Used(ctx, "bigmail", window0)
	if err != nil {
		t.Fatalf("Used: %v", err)
	}
	if granted > quota {
		t.Errorf("granted %d milli in all, over the quota %d", granted, quota)
	}
	if used != granted {
		t.Errorf("key holds %d milli, want the %d granted", used, granted)
	}
	// 50*8 requests of at least one unit ask for far more than the quota:
	// the window must be spent down to less than one unit.
	if quota-used >= cost {
		t.Errorf("key holds %d milli, want the quota %d spent to within one cost %d", used, quota, cost)
	}
}

func TestReserveSetsRelativeTTL(t *testing.T) {
	tests := []struct {
		name    string
		length  time.Duration
		grace   time.Duration
		wantTTL time.Duration
	}{
		{"default grace", time.Hour, 0, 2 * time.Hour},
		{"short window", 2 * time.Second, 10 * time.Minute, 10*time.Minute + 2*time.Second},
	}
	srv := testredis.Start(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t, srv.URL(), Options{KeyTTLGrace: tt.grace})
			ctx := testCtx(t)
			op := "ttl" + strconv.Itoa(i)
			// window0 lies in 2001: an absolute expiry would delete the key.
			if _, err := s.Reserve(ctx, op, window0, tt.length, 10_000, 1000, 1); err != nil {
				t.Fatalf("Reserve: %v", err)
			}
			ttl, err := s.client.TTL(ctx, Key(op, window0)).Result()
			if err != nil {
				t.Fatalf("TTL: %v", err)
			}
			if ttl > tt.wantTTL || ttl < tt.wantTTL-2*time.Second {
				t.Errorf("TTL = %v, want %v (within 2s)", ttl, tt.wantTTL)
			}
		})
	}
}

func TestRefund(t *testing.T) {
	_, s := newTestRedis(t)
	ctx := testCtx(t)
	tests := []struct {
		name   string
		before int64 // milli reserved before the refund; 0: no key
		refund int64
		want   int64
	}{
		{"part", 3000, 1000, 2000},
		{"all", 3000, 3000, 0},
		{"more than used stops at zero", 3000, 5000, 0},
		{"zero is a no-op", 3000, 0, 3000},
		{"negative is a no-op", 3000, -7, 3000},
		{"missing key stays missing", 0, 1000, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := "refund" + strconv.Itoa(i)
			if tt.before > 0 {
				if _, err := s.Reserve(ctx, op, window0, time.Hour, 100_000, tt.before, 1); err != nil {
					t.Fatalf("Reserve: %v", err)
				}
			}
			if err := s.Refund(ctx, op, window0, tt.refund); err != nil {
				t.Fatalf("Refund: %v", err)
			}
			used, err := s.Used(ctx, op, window0)
			if err != nil {
				t.Fatalf("Used: %v", err)
			}
			if used != tt.want {
				t.Errorf("Used after refund = %d, want %d", used, tt.want)
			}
			ttl, err := s.client.TTL(ctx, Key(op, window0)).Result()
			if err != nil {
				t.Fatalf("TTL: %v", err)
			}
			switch {
			case tt.before == 0 && ttl != -2*time.Nanosecond:
				t.Errorf("TTL = %v, want the key absent (-2ns from go-redis)", ttl)
			case tt.before > 0 && ttl <= time.Hour:
				t.Errorf("TTL after refund = %v, want the reservation's TTL (about 2h) kept", ttl)
			}
		})
	}
}

func TestUsedMissingKeyIsZero(t *testing.T) {
	_, s := newTestRedis(t)
	used, err := s.Used(testCtx(t), "nobody", window0)
	if err != nil || used != 0 {
		t.Errorf("Used on a missing key = %d, %v; want 0, nil", used, err)
	}
}

func TestReserveReloadsFlushedScript(t *testing.T) {
	_, s := newTestRedis(t)
	ctx := testCtx(t)
	if _, err := s.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1); err != nil {
		t.Fatalf("first Reserve: %v", err)
	}
	// A restarted or failed-over Redis has an empty script cache: EVALSHA
	// answers NOSCRIPT and the script must be sent again with EVAL.
	if err := s.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	if got, err := s.Reserve(ctx, "op", window0, time.Hour, 10_000, 1000, 1); err != nil || got != 1 {
		t.Fatalf("Reserve after SCRIPT FLUSH = %d, %v; want 1, nil", got, err)
	}
	if err := s.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatalf("SCRIPT FLUSH: %v", err)
	}
	if err := s.Refund(ctx, "op", window0, 1000); err != nil {
		t.Fatalf("Refund after SCRIPT FLUSH: %v", err)
	}
	if used, err := s.Used(ctx, "op", window0); err != nil || used != 1000 {
		t.Errorf("Used = %d, %v; want 1000, nil", used, err)
	}
}

func TestCorruptKeyIsAnError(t *testing.T) {
	_, s := newTestRedis(t)
	ctx := testCtx(t)
	if err := s.client.Set(ctx, Key("op", window0), "not a number", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"reserve", func() error { _, err := s.Reserve(ctx, "op", window0, time.Hour, 10, 1, 1); return err }},
		{"refund", func() error { return s.Refund(ctx, "op", window0, 1) }},
		{"used", func() error { _, err := s.Used(ctx, "op", window0); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrUnavailable) {
				t.Errorf("err = %v, want one wrapping ErrUnavailable", err)
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	srv, s := newTestRedis(t)
	ctx := testCtx(t)
	tests := []struct {
		name string
		call func() error
	}{
		{"empty operator", func() error { _, err := s.Reserve(ctx, "", window0, time.Hour, 10, 1, 1); return err }},
		{"open brace", func() error { _, err := s.Reserve(ctx, "a{b", window0, time.Hour, 10, 1, 1); return err }},
		{"close brace", func() error { _, err := s.Reserve(ctx, "a}b", window0, time.Hour, 10, 1, 1); return err }},
		{"zero cost", func() error { _, err := s.Reserve(ctx, "op", window0, time.Hour, 10, 0, 1); return err }},
		{"zero units", func() error { _, err := s.Reserve(ctx, "op", window0, time.Hour, 10, 1, 0); return err }},
		{"zero length", func() error { _, err := s.Reserve(ctx, "op", window0, 0, 10, 1, 1); return err }},
		{"quota above 2^53", func() error { _, err := s.Reserve(ctx, "op", window0, time.Hour, 1<<53+1, 1, 1); return err }},
		{"cost above 2^53", func() error { _, err := s.Reserve(ctx, "op", window0, time.Hour, 10, 1<<53+1, 1); return err }},
		{"refund above 2^53", func() error { return s.Refund(ctx, "op", window0, 1<<53+1) }},
		{"refund brace", func() error { return s.Refund(ctx, "{", window0, 1) }},
		{"used empty", func() error { _, err := s.Used(ctx, "", window0); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("err = %v, want one wrapping ErrInvalidArgument", err)
			}
		})
	}
	keys, err := srv.Client().Keys(ctx, "*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("keys after invalid calls = %v, %v; want none", keys, err)
	}
}

func TestUsedReadsWhatAnotherRelayWrote(t *testing.T) {
	srv, s := newTestRedis(t)
	ctx := testCtx(t)
	if err := srv.Client().Set(ctx, "sluice:budget:{op}:"+strconv.FormatInt(window0.Unix(), 10), 4242, 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if used, err := s.Used(ctx, "op", window0); err != nil || used != 4242 {
		t.Errorf("Used = %d, %v; want 4242, nil", used, err)
	}
	if got, ok := s.lastUsed("op", window0); !ok || got != 4242 {
		t.Errorf("lastUsed = %d, %v; want 4242, true", got, ok)
	}
}

func TestCharge(t *testing.T) {
	_, s := newTestRedis(t)
	ctx := testCtx(t)
	if err := s.charge(ctx, "op", window0, time.Hour, 1500); err != nil {
		t.Fatalf("charge: %v", err)
	}
	// A charge may go above the quota: the units were already sent.
	if err := s.charge(ctx, "op", window0, time.Hour, 1500); err != nil {
		t.Fatalf("charge: %v", err)
	}
	if used, err := s.Used(ctx, "op", window0); err != nil || used != 3000 {
		t.Errorf("Used = %d, %v; want 3000, nil", used, err)
	}
	if got, err := s.Reserve(ctx, "op", window0, time.Hour, 3000, 1, 1); err != nil || got != 0 {
		t.Errorf("Reserve after charges = %d, %v; want 0, nil", got, err)
	}
	ttl, err := s.client.TTL(ctx, Key("op", window0)).Result()
	if err != nil || ttl <= time.Hour {
		t.Errorf("TTL = %v, %v; want about 2h", ttl, err)
	}
}

func TestCloseTwice(t *testing.T) {
	s := newTestStore(t, "redis://"+closedAddr(t), Options{})
	if err := s.Close(); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want the first result (nil)", err)
	}
	_, err := s.Used(testCtx(t), "op", window0)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Used after Close: %v, want ErrUnavailable wrapping redis.ErrClosed", err)
	}
}
