package config

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones for timezone tests on machines without zoneinfo
)

// mustParse parses d as the file /etc/sluice/sluice.toml and fails the test
// on any problem.
func mustParse(t *testing.T, d string) *Config {
	t.Helper()
	cfg, err := Parse([]byte(d), "/etc/sluice/sluice.toml")
	if err != nil {
		t.Fatalf("Parse failed:\n%v\ndocument:\n%s", err, d)
	}
	return cfg
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, doc(`hostname = "relay.example."`))
	tests := []struct {
		name      string
		got, want any
	}{
		{"hostname without trailing dot", cfg.Hostname, "relay.example"},
		{"data_dir", cfg.DataDir, "/var/lib/sluice"},
		{"shutdown_timeout", cfg.ShutdownTimeout, 30 * time.Second},
		{"path", cfg.Path, "/etc/sluice/sluice.toml"},
		{"smtp.listen", cfg.SMTP.Listen, []string{"127.0.0.1:2525"}},
		{"smtp.trusted_networks", cfg.SMTP.TrustedNetworks,
			[]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		{"smtp.max_message_bytes", cfg.SMTP.MaxMessageBytes, int64(10240000)},
		{"smtp.max_recipients", cfg.SMTP.MaxRecipients, 1000},
		{"smtp.max_line_length", cfg.SMTP.MaxLineLength, 2000},
		{"smtp.max_connections", cfg.SMTP.MaxConnections, 100},
		{"smtp.read_timeout", cfg.SMTP.ReadTimeout, 10 * time.Minute},
		{"smtp.write_timeout", cfg.SMTP.WriteTimeout, time.Minute},
		{"smtp.priority_header", cfg.SMTP.PriorityHeader, "X-Relay-Priority"},
		{"smtp.max_priority", cfg.SMTP.MaxPriorityMilli, uint32(10000)},
		{"smtp.strip_priority_header", cfg.SMTP.StripPriorityHeader, true},
		{"smtp.tls_cert_file", cfg.SMTP.TLSCertFile, ""},
		{"smtp.tls certificate", cfg.SMTP.TLSCertificate == nil, true},
		{"dns.servers", len(cfg.DNS.Servers), 0},
		{"dns.timeout", cfg.DNS.Timeout, 5 * time.Second},
		{"delivery.port", cfg.Delivery.Port, 25},
		{"delivery.helo", cfg.Delivery.HELO, "relay.example"},
		{"delivery.connect_timeout", cfg.Delivery.ConnectTimeout, 30 * time.Second},
		{"delivery.command_timeout", cfg.Delivery.CommandTimeout, 5 * time.Minute},
		{"delivery.data_timeout", cfg.Delivery.DataTimeout, 10 * time.Minute},
		{"delivery.retry_schedule", cfg.Delivery.RetrySchedule,
			[]time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour}},
		{"delivery.max_queue_lifetime", cfg.Delivery.MaxQueueLifetime, 5 * 24 * time.Hour},
		{"delivery.delay_warning_after", cfg.Delivery.DelayWarningAfter, 4 * time.Hour},
		{"delivery.allow_private_mx", cfg.Delivery.AllowPrivateMX, false},
		{"delivery.max_connections", cfg.Delivery.MaxConnections, 100},
		{"delivery.max_mx_hosts", cfg.Delivery.MaxMXHosts, 5},
		{"bounce.from", cfg.Bounce.From, "MAILER-DAEMON@relay.example"},
		{"bounce.max_returned_bytes", cfg.Bounce.MaxReturnedBytes, int64(262144)},
		{"admin.socket", cfg.Admin.Socket, "/var/lib/sluice/admin.sock"},
		{"admin.metrics_listen", cfg.Admin.MetricsListen, ""},
		{"log.format", cfg.Log.Format, LogFormatLogfmt},
		{"log.level", cfg.Log.Level, slog.LevelInfo},
		{"quota_store.backend", cfg.QuotaStore.Backend, BackendLocal},
		{"quota_store.redis_url", cfg.QuotaStore.RedisURL, ""},
		{"quota_store.on_store_error", cfg.QuotaStore.OnStoreError, OnStoreErrorPause},
		{"quota_store.expected_relays", cfg.QuotaStore.ExpectedRelays, 2},
		{"quota_store.max_clock_skew", cfg.QuotaStore.MaxClockSkew, 2 * time.Second},
		{"quota_store.timeout", cfg.QuotaStore.Timeout, 200 * time.Millisecond},
		{"default limits", cfg.Default, defaultLimits(10)},
		{"operators", len(cfg.Operators), 0},
		{"routes", len(cfg.Routes), 0},
		{"dkim", len(cfg.DKIM), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

// defaultLimits is what an operator, [default] or route gets with no limit
// keys set.
func defaultLimits(maxConnections int) Limits {
	return Limits{
		Window:                      time.Hour,
		Timezone:                    "UTC",
		Location:                    time.UTC,
		MaxConnections:              maxConnections,
		MaxRecipientsPerTransaction: 50,
		MaxMessagesPerConnection:    100,
		WindowGuard:                 time.Second,
		TLS:                         TLSOpportunistic,
	}
}

func TestOperatorAndRouteDefaults(t *testing.T) {
	cfg := mustParse(t, doc(
		`hostname = "relay.example"`,
		`[[operator]]`,
		`name = "bigmail"`,
		`domains = ["BigMail.COM.", "*.BigMail.de"]`,
		`mx_patterns = ["*.MX.bigmail.net"]`,
		`[[route]]`,
		`domains = ["fast.example"]`,
		`relay = "[192.0.2.1]:25"`,
		`[[route]]`,
		`domains = ["slow.example"]`,
		`relay = "smarthost.example:587"`,
		`quota = 100`,
	))
	op := cfg.Operators[0]
	if want := (Operator{Name: "bigmail", Domains: []string{"bigmail.com", "*.bigmail.de"},
		MXPatterns: []string{"*.mx.bigmail.net"}, Limits: defaultLimits(10)}); !reflect.DeepEqual(op, want) {
		t.Errorf("operator = %+v, want %+v", op, want)
	}
	fast := Route{Domains: []string{"fast.example"}, Relay: "[192.0.2.1]:25", Limits: defaultLimits(20)}
	if !reflect.DeepEqual(cfg.Routes[0], fast) {
		t.Errorf("route without limits = %+v, want %+v", cfg.Routes[0], fast)
	}
	slow := Route{Domains: []string{"slow.example"}, Relay: "smarthost.example:587", HasLimits: true, Limits: defaultLimits(10)}
	slow.Quota = 100
	if !reflect.DeepEqual(cfg.Routes[1], slow) {
		t.Errorf("route with a quota = %+v, want %+v", cfg.Routes[1], slow)
	}
}

func TestValues(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  string
		get  func(*Config) any
		want any
	}{
		{"size in MB", doc(`[smtp]`, `max_message_bytes = "10MB"`), func(c *Config) any { return c.SMTP.MaxMessageBytes }, int64(10_000_000)},
		{"size in MiB", doc(`[smtp]`, `max_message_bytes = "10MiB"`), func(c *Config) any { return c.SMTP.MaxMessageBytes }, int64(10 << 20)},
		{"size in kB", doc(`[bounce]`, `max_returned_bytes = "512kB"`), func(c *Config) any { return c.Bounce.MaxReturnedBytes }, int64(512_000)},
		{"size in bytes string", doc(`[bounce]`, `max_returned_bytes = "100B"`), func(c *Config) any { return c.Bounce.MaxReturnedBytes }, int64(100)},
		{"max_priority integer", doc(`[smtp]`, `max_priority = 5`), func(c *Config) any { return c.SMTP.MaxPriorityMilli }, uint32(5000)},
		{"max_priority decimal", doc(`[smtp]`, `max_priority = 2.5`), func(c *Config) any { return c.SMTP.MaxPriorityMilli }, uint32(2500)},
		{"max_priority 3 decimals", doc(`[smtp]`, `max_priority = 2.125`), func(c *Config) any { return c.SMTP.MaxPriorityMilli }, uint32(2125)},
		{"max_priority 1", doc(`[smtp]`, `max_priority = 1.0`), func(c *Config) any { return c.SMTP.MaxPriorityMilli }, uint32(1000)},
		{"max_priority 1000", doc(`[smtp]`, `max_priority = 1000`), func(c *Config) any { return c.SMTP.MaxPriorityMilli }, uint32(1_000_000)},
		{"trusted single addresses", doc(`[smtp]`, `trusted_networks = ["192.0.2.7", "2001:db8::1", "10.1.2.3/8"]`),
			func(c *Config) any { return c.SMTP.TrustedNetworks },
			[]netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("10.0.0.0/8")}},
		{"no trusted networks", doc(`[smtp]`, `trusted_networks = []`), func(c *Config) any { return len(c.SMTP.TrustedNetworks) }, 0},
		{"listen port 0", doc(`[smtp]`, `listen = ["127.0.0.1:0", "[::1]:0"]`), func(c *Config) any { return c.SMTP.Listen },
			[]string{"127.0.0.1:0", "[::1]:0"}},
		{"delay warnings off", doc(`[delivery]`, `delay_warning_after = "0"`), func(c *Config) any { return c.Delivery.DelayWarningAfter }, time.Duration(0)},
		{"helo and bounce.from follow hostname", doc(`hostname = "mx1.example"`),
			func(c *Config) any { return []string{c.Delivery.HELO, c.Bounce.From} }, []string{"mx1.example", "MAILER-DAEMON@mx1.example"}},
		{"relative data_dir", doc(`data_dir = "data"`), func(c *Config) any { return []string{c.DataDir, c.Admin.Socket} },
			[]string{"/etc/sluice/data", "/etc/sluice/data/admin.sock"}},
		{"relative socket", doc(`[admin]`, `socket = "run/sluice.sock"`), func(c *Config) any { return c.Admin.Socket }, "/etc/sluice/run/sluice.sock"},
		{"absolute data_dir", doc(`data_dir = "/srv/sluice"`), func(c *Config) any { return c.DataDir }, "/srv/sluice"},
		{"debug level", doc(`[log]`, `level = "debug"`), func(c *Config) any { return c.Log.Level }, slog.LevelDebug},
		{"redis", doc(`[quota_store]`, `backend = "redis"`, `redis_url = "rediss://:pw@redis.example:6380/1"`),
			func(c *Config) any { return []string{c.QuotaStore.Backend, c.QuotaStore.RedisURL} },
			[]string{"redis", "rediss://:pw@redis.example:6380/1"}},
		{"time zone", doc(`[default]`, `timezone = "Europe/Paris"`), func(c *Config) any { return []any{c.Default.Timezone, c.Default.Location} },
			[]any{"Europe/Paris", paris}},
		{"guard for a 2s window", doc(`[default]`, `window = "2s"`), func(c *Config) any { return c.Default.WindowGuard }, 250 * time.Millisecond},
		{"guard for an 8s window", doc(`[default]`, `window = "8s"`), func(c *Config) any { return c.Default.WindowGuard }, time.Second},
		{"guard for a day", doc(`[default]`, `window = "24h"`), func(c *Config) any { return c.Default.WindowGuard }, time.Second},
		{"guard off", doc(`[default]`, `window = "2s"`, `window_guard = "0s"`), func(c *Config) any { return c.Default.WindowGuard }, time.Duration(0)},
		{"explicit guard", doc(`[default]`, `window = "1m"`, `window_guard = "14s"`), func(c *Config) any { return c.Default.WindowGuard }, 14 * time.Second},
		{"priority aging", doc(`[default]`, `priority_aging = "10m"`), func(c *Config) any { return c.Default.PriorityAging }, 10 * time.Minute},
		{"no response rules", doc(`[default]`), func(c *Config) any { return c.Default.ResponseRulesSet }, false},
		{"empty response rules", doc(`[default]`, `response_rule = []`),
			func(c *Config) any { return []any{c.Default.ResponseRulesSet, len(c.Default.ResponseRules)} }, []any{true, 0}},
		{"inline response rules", doc(`[default]`, `response_rule = [{code = "421", action = "throttle", duration = "5m"}]`),
			func(c *Config) any { return []any{c.Default.ResponseRulesSet, c.Default.ResponseRules} },
			[]any{true, []ResponseRule{{Code: "421", Action: ActionThrottle, Duration: 5 * time.Minute}}}},
		{"verp", doc(`[default]`, `envelope_from = "bounces@relay.example"`, `verp = true`),
			func(c *Config) any { return []any{c.Default.EnvelopeFrom, c.Default.VERP} }, []any{"bounces@relay.example", true}},
		{"route with only a rule has limits", doc(`[[route]]`, `domains = ["*"]`, `relay = "a.example:25"`,
			`[[route.response_rule]]`, `code = "421"`, `action = "suspend"`, `duration = "1m"`),
			func(c *Config) any { return []any{c.Routes[0].HasLimits, c.Routes[0].MaxConnections} }, []any{true, 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.doc
			if !strings.HasPrefix(d, "hostname") {
				d = doc(`hostname = "relay.example"`) + d
			}
			got := tt.get(mustParse(t, d))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestHostnameDefault(t *testing.T) {
	h, err := os.Hostname()
	if err != nil || checkDomain(h) != nil {
		t.Skipf("os.Hostname() = %q, %v: not a usable default here", h, err)
	}
	cfg := mustParse(t, "")
	if cfg.Hostname != h || cfg.Delivery.HELO != h || cfg.Bounce.From != "MAILER-DAEMON@"+h {
		t.Errorf("hostname, helo, bounce.from = %q, %q, %q; want %q from os.Hostname",
			cfg.Hostname, cfg.Delivery.HELO, cfg.Bounce.From, h)
	}
}

func TestLoadResolvesAgainstTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.toml")
	if err := os.WriteFile(path, []byte(doc(`hostname = "relay.example"`, `data_dir = "./q"`)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "q"); cfg.DataDir != want || cfg.Path != path {
		t.Errorf("DataDir, Path = %q, %q; want %q, %q", cfg.DataDir, cfg.Path, want, path)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Errorf("Load of a missing file succeeded")
	}
}
