package redisbudget

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestNewAcceptsURLs(t *testing.T) {
	const timeout = 150 * time.Millisecond
	tests := []struct {
		name     string
		url      string
		wantKind string // "single", "cluster"
	}{
		{"redis", "redis://127.0.0.1:6379/0", "single"},
		{"redis with password and db", "redis://user:pw@127.0.0.1:6379/3", "single"},
		{"rediss", "rediss://redis.example:6380/1", "single"},
		{"unix socket", "unix:///run/redis/redis.sock?db=2", "single"},
		{"URL timeouts are overridden", "redis://127.0.0.1/0?read_timeout=30s&dial_timeout=9&max_retries=7", "single"},
		{"sentinel", "redis-sentinel://127.0.0.1:26379/0?master_name=mymaster&addr=127.0.0.2:26379", "single"},
		{"sentinel over TLS", "rediss-sentinel://:spw@127.0.0.1:26379?master_name=m&password=mpw", "single"},
		{"cluster", "redis-cluster://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", "cluster"},
		{"cluster over TLS", "rediss-cluster://u:p@127.0.0.1:7000?max_redirects=8", "cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Options{URL: tt.url, Timeout: timeout})
			if err != nil {
				t.Fatalf("New(%q): %v", tt.url, err)
			}
			defer s.Close()
			switch c := s.client.(type) {
			case *redis.Client:
				if tt.wantKind != "single" {
					t.Fatalf("client is %T, want a %s client", c, tt.wantKind)
				}
				checkSingleOptions(t, c.Options(), timeout)
			case *redis.ClusterClient:
				if tt.wantKind != "cluster" {
					t.Fatalf("client is %T, want a %s client", c, tt.wantKind)
				}
				checkClusterOptions(t, c.Options(), timeout)
			default:
				t.Fatalf("client is %T", c)
			}
		})
	}
}

// checkSingleOptions checks what newClient forces, after go-redis's own
// defaults (which turn MaxRetries -1 into 0).
func checkSingleOptions(t *testing.T, o *redis.Options, timeout time.Duration) {
	t.Helper()
	got := []time.Duration{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout}
	for i, d := range got {
		if d != timeout {
			t.Errorf("timeout %d of dial/read/write/pool = %v, want %v", i, d, timeout)
		}
	}
	if !o.ContextTimeoutEnabled || o.MaxRetries != 0 || o.DialerRetries != 1 {
		t.Errorf("ContextTimeoutEnabled %v, MaxRetries %d, DialerRetries %d; want true, 0, 1",
			o.ContextTimeoutEnabled, o.MaxRetries, o.DialerRetries)
	}
}

func checkClusterOptions(t *testing.T, o *redis.ClusterOptions, timeout time.Duration) {
	t.Helper()
	got := []time.Duration{o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout}
	for i, d := range got {
		if d != timeout {
			t.Errorf("timeout %d of dial/read/write/pool = %v, want %v", i, d, timeout)
		}
	}
	// go-redis keeps -1 (no retries) for cluster node clients.
	if !o.ContextTimeoutEnabled || o.MaxRetries != -1 || o.MaxRedirects != 0 {
		t.Errorf("ContextTimeoutEnabled %v, MaxRetries %d, MaxRedirects %d; want true, -1, 0",
			o.ContextTimeoutEnabled, o.MaxRetries, o.MaxRedirects)
	}
}

func TestNewRejects(t *testing.T) {
	const secret = "s3cr3t-pa55"
	tests := []struct {
		name string
		o    Options
		want error
		says string // the reason the error must still give
	}{
		{"http scheme", Options{URL: "http://u:" + secret + "@host/"}, ErrBadURL, `scheme "http" is not one of`},
		{"no scheme", Options{URL: "127.0.0.1:6379"}, ErrBadURL, "bad redis url"},
		{"empty", Options{URL: ""}, ErrBadURL, "bad redis url"},
		{"malformed with password", Options{URL: "redis://u:" + secret + "@host:port:bad/%zz"}, ErrBadURL, "bad redis url: invalid"},
		{"bad db", Options{URL: "redis://u:" + secret + "@host/x"}, ErrBadURL, "bad redis url: invalid database number"},
		{"unknown option", Options{URL: "redis://u:" + secret + "@host/0?frobnicate=1"}, ErrBadURL, "bad redis url: unexpected option"},
		{"path after empty userinfo", Options{URL: "redis://:/" + secret + "@/0"}, ErrBadURL, "bad redis url: invalid URL path"},
		{"sentinel without master", Options{URL: "redis-sentinel://u:" + secret + "@host:26379"}, ErrBadURL, "master_name"},
		{"cluster bad addr", Options{URL: "redis-cluster://u:" + secret + "@host?addr=nope"}, ErrBadURL, "bad redis url: unable to parse addr param"},
		{"negative timeout", Options{URL: "redis://host", Timeout: -1}, nil, "negative timeout -1ns"},
		{"negative grace", Options{URL: "redis://host", KeyTTLGrace: -1}, nil, "key TTL grace -1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.o)
			if err == nil {
				s.Close()
				t.Fatalf("New(%q) succeeded, want an error", tt.o.URL)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want one wrapping %v", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error repeats the password: %v", err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %v, want it to say %q", err, tt.says)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	s, err := New(Options{URL: "redis://127.0.0.1/0"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer s.Close()
	if s.timeout != DefaultTimeout || s.grace != DefaultKeyTTLGrace || s.now == nil || s.log == nil {
		t.Errorf("timeout %v, grace %v, now set %v, log set %v; want %v, %v, true, true",
			s.timeout, s.grace, s.now != nil, s.log != nil, DefaultTimeout, DefaultKeyTTLGrace)
	}
}
