package testredis

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const callTimeout = 5 * time.Second

func TestStartServesOnLoopback(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
		t.Errorf("Addr() = %q, want 127.0.0.1:PORT", s.Addr())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Errorf("URL() = %q, want %q", s.URL(), want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	c := s.Client()
	if got, err := c.Ping(ctx).Result(); err != nil || got != "PONG" {
		t.Fatalf("PING = %q, %v; want PONG, nil", got, err)
	}
	cfg, err := c.ConfigGet(ctx, "save").Result()
	if err != nil {
		t.Fatalf("CONFIG GET save: %v", err)
	}
	if got := cfg["save"]; got != "" {
		t.Errorf("save = %q, want \"\" (no snapshots)", got)
	}
}

func TestRestartKeepsPortAndLosesData(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := s.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	s.Stop()
	if c, err := net.DialTimeout("tcp", addr, callTimeout); err == nil {
		c.Close()
		t.Fatalf("dial %s after Stop succeeded, want connection refused", addr)
	}
	s.Stop() // a second Stop is harmless
	s.Restart()
	if s.Addr() != addr {
		t.Errorf("Addr() after Restart = %q, want %q", s.Addr(), addr)
	}
	_, err := s.Client().Get(ctx, "k").Result()
	if !errors.Is(err, redis.Nil) {
		t.Errorf("GET k after Restart: err = %v, want redis.Nil (nothing persisted)", err)
	}
}

func TestRestartWhileRunning(t *testing.T) {
	s := Start(t)
	s.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := s.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Restart: %v", err)
	}
}

func TestTwoServersAreIndependent(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers on %s, want different ports", a.Addr())
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := a.Client().Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatalf("SET on a: %v", err)
	}
	if _, err := b.Client().Get(ctx, "k").Result(); !errors.Is(err, redis.Nil) {
		t.Errorf("GET k on b: err = %v, want redis.Nil", err)
	}
}
