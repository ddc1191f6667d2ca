package config

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// config checks the whole document.
func (c *checker) config(raw *rawConfig) *Config {
	cfg := &Config{}
	hostname, hostOK := c.hostname(raw.Hostname)
	cfg.Hostname = hostname
	cfg.DataDir = c.filePath("data_dir", raw.DataDir, "/var/lib/sluice")
	if cfg.DataDir == "" {
		c.errorf("data_dir", "must not be empty")
	}
	cfg.ShutdownTimeout = c.positive("shutdown_timeout", raw.ShutdownTimeout, 30*time.Second)
	cfg.SMTP = c.smtp(&raw.SMTP)
	cfg.DNS = c.dns(&raw.DNS)
	cfg.Delivery = c.delivery(&raw.Delivery, cfg.Hostname)
	cfg.Bounce = c.bounce(&raw.Bounce, cfg.Hostname, hostOK)
	cfg.Admin = c.admin(&raw.Admin, cfg.DataDir)
	cfg.Log = c.log(&raw.Log)
	cfg.QuotaStore = c.quotaStore(&raw.QuotaStore)
	cfg.Default = c.limits("default", &raw.Default, limitDefaults{maxConnections: 10})
	cfg.Operators = c.operators(raw.Operators)
	cfg.Routes = c.routes(raw.Routes)
	cfg.DKIM = c.dkims(raw.DKIM)
	return cfg
}

// hostname checks `hostname`, defaulting to os.Hostname(). ok tells whether
// the result is valid, so that defaults derived from it can be trusted.
func (c *checker) hostname(v any) (string, bool) {
	h, given := c.str("hostname", v, "")
	if v != nil && !given {
		return "", false
	}
	origin := ""
	if !given {
		var err error
		if h, err = os.Hostname(); err != nil {
			c.errorf("hostname", "is not set and os.Hostname failed (%v): set it", err)
			return "", false
		}
		origin = " (from os.Hostname; set hostname)"
	}
	h = strings.TrimSuffix(h, ".")
	if err := checkDomain(h); err != nil {
		c.errorf("hostname", "%q%s is not a valid domain name: it %v", h, origin, err)
		return h, false
	}
	return h, true
}

// smtp checks [smtp].
func (c *checker) smtp(r *rawSMTP) SMTP {
	s := SMTP{
		Listen:              c.listenList("smtp.listen", r.Listen),
		TrustedNetworks:     c.prefixes("smtp.trusted_networks", r.TrustedNetworks),
		MaxMessageBytes:     c.size("smtp.max_message_bytes", r.MaxMessageBytes, 10240000),
		MaxRecipients:       c.count("smtp.max_recipients", r.MaxRecipients, 1000, 1),
		MaxConnections:      c.count("smtp.max_connections", r.MaxConnections, 100, 1),
		ReadTimeout:         c.positive("smtp.read_timeout", r.ReadTimeout, 10*time.Minute),
		WriteTimeout:        c.positive("smtp.write_timeout", r.WriteTimeout, time.Minute),
		MaxPriorityMilli:    c.maxPriority("smtp.max_priority", r.MaxPriority),
		StripPriorityHeader: c.boolean("smtp.strip_priority_header", r.StripPriorityHeader, true),
	}
	// RFC 5321 section 4.5.3.1.6: a text line may be 1000 octets with CRLF,
	// and a server must accept at least that.
	s.MaxLineLength = c.count("smtp.max_line_length", r.MaxLineLength, 2000, 1000)
	s.PriorityHeader, _ = c.str("smtp.priority_header", r.PriorityHeader, "X-Relay-Priority")
	if err := checkFieldName(s.PriorityHeader); err != nil {
		c.errorf("smtp.priority_header", "%q is not a header field name: it %v", s.PriorityHeader, err)
	}
	c.tlsPair(r, &s)
	return s
}

// listenList checks a list of listen addresses (port 0 allowed).
func (c *checker) listenList(key string, v any) []string {
	list, given := c.strList(key, v, []string{"127.0.0.1:2525"})
	if given && len(list) == 0 {
		c.errorf(key, "must list at least one address")
	}
	seen := map[string]bool{}
	for i, a := range list {
		if _, err := checkHostPort(a, 0); err != nil {
			c.errorf(elemPath(key, i), "%v", err)
		} else if seen[a] {
			c.errorf(elemPath(key, i), "%q is listed twice", a)
		}
		seen[a] = true
	}
	return list
}

// prefixes checks a list of CIDR prefixes or single IP addresses.
func (c *checker) prefixes(key string, v any) []netip.Prefix {
	list, _ := c.strList(key, v, []string{"127.0.0.0/8", "::1/128"})
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := parsePrefix(s)
		if err != nil {
			c.errorf(elemPath(key, i), "%q is neither a CIDR prefix nor an IP address", s)
			continue
		}
		out = append(out, p)
	}
	return out
}

// parsePrefix parses "10.0.0.0/8" or a single address ("10.1.2.3", "::1"),
// returning the masked prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// tlsPair checks tls_cert_file and tls_key_file: both or neither, and the
// pair must load.
func (c *checker) tlsPair(r *rawSMTP, s *SMTP) {
	s.TLSCertFile = c.filePath("smtp.tls_cert_file", r.TLSCertFile, "")
	s.TLSKeyFile = c.filePath("smtp.tls_key_file", r.TLSKeyFile, "")
	switch {
	case s.TLSCertFile == "" && s.TLSKeyFile == "":
		return
	case s.TLSCertFile == "":
		c.errorf("smtp.tls_cert_file", "is required when tls_key_file is set")
		return
	case s.TLSKeyFile == "":
		c.errorf("smtp.tls_key_file", "is required when tls_cert_file is set")
		return
	}
	cert, err := loadKeyPair(s.TLSCertFile, s.TLSKeyFile)
	if err != nil {
		c.errorf("smtp.tls_cert_file", "cannot load the pair %s and %s: %v", s.TLSCertFile, s.TLSKeyFile, err)
		return
	}
	s.TLSCertificate = cert
}

// loadKeyPair is tls.LoadX509KeyPair with bounded reads of regular files.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := readSmallFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	keyPEM, err := readSmallFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &cert, nil
}

// dns checks [dns]. Servers must be IP addresses: resolving the resolver's
// own name would need a resolver.
func (c *checker) dns(r *rawDNS) DNS {
	d := DNS{Timeout: c.positive("dns.timeout", r.Timeout, 5*time.Second)}
	d.Servers, _ = c.strList("dns.servers", r.Servers, nil)
	for i, s := range d.Servers {
		host, err := checkHostPort(s, 1)
		if err == nil {
			if _, perr := netip.ParseAddr(host); perr != nil {
				err = errNotIPPort(s)
			}
		}
		if err != nil {
			c.errorf(elemPath("dns.servers", i), "%v", err)
		}
	}
	return d
}

// errNotIPPort is the error for a DNS server that is not ip:port.
type errNotIPPort string

func (e errNotIPPort) Error() string {
	return strconv.Quote(string(e)) + ` must be ip:port, such as "127.0.0.1:53"`
}

// delivery checks [delivery].
func (c *checker) delivery(r *rawDelivery, hostname string) Delivery {
	d := Delivery{
		Port:              int(c.intRange("delivery.port", r.Port, 25, 1, 65535)),
		ConnectTimeout:    c.positive("delivery.connect_timeout", r.ConnectTimeout, 30*time.Second),
		CommandTimeout:    c.positive("delivery.command_timeout", r.CommandTimeout, 5*time.Minute),
		DataTimeout:       c.positive("delivery.data_timeout", r.DataTimeout, 10*time.Minute),
		RetrySchedule:     c.retrySchedule("delivery.retry_schedule", r.RetrySchedule),
		MaxQueueLifetime:  c.positive("delivery.max_queue_lifetime", r.MaxQueueLifetime, 5*24*time.Hour),
		AllowPrivateMX:    c.boolean("delivery.allow_private_mx", r.AllowPrivateMX, false),
		MaxConnections:    c.count("delivery.max_connections", r.MaxConnections, 100, 1),
		MaxMXHosts:        c.count("delivery.max_mx_hosts", r.MaxMXHosts, 5, 1),
		DelayWarningAfter: 4 * time.Hour,
	}
	if w, ok := c.duration("delivery.delay_warning_after", r.DelayWarningAfter, 4*time.Hour); ok {
		d.DelayWarningAfter = w
	}
	if d.DelayWarningAfter > 0 && d.DelayWarningAfter >= d.MaxQueueLifetime {
		c.errorf("delivery.delay_warning_after", "must be shorter than max_queue_lifetime (%s), or \"0\" for no warnings",
			Duration(d.MaxQueueLifetime))
	}
	d.HELO = c.hostField("delivery.helo", r.HELO, hostname)
	return d
}

// hostField checks a domain-name key that defaults to the hostname; the
// default is already checked.
func (c *checker) hostField(key string, v any, hostname string) string {
	s, given := c.str(key, v, hostname)
	if !given {
		return hostname
	}
	s = strings.TrimSuffix(s, ".")
	if err := checkDomain(s); err != nil {
		c.errorf(key, "%q is not a valid domain name: it %v", s, err)
	}
	return s
}

// retrySchedule checks the list of waits between attempts.
func (c *checker) retrySchedule(key string, v any) []time.Duration {
	def := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour}
	list, given := c.strList(key, v, nil)
	if !given {
		return def
	}
	if len(list) == 0 {
		c.errorf(key, "must list at least one duration (the last one repeats)")
		return def
	}
	out := make([]time.Duration, 0, len(list))
	for i, s := range list {
		d, ok := c.duration(elemPath(key, i), s, 0)
		if ok && d <= 0 {
			c.errorf(elemPath(key, i), "must be greater than 0")
		}
		out = append(out, d)
	}
	return out
}

// bounce checks [bounce].
func (c *checker) bounce(r *rawBounce, hostname string, hostOK bool) Bounce {
	b := Bounce{MaxReturnedBytes: c.size("bounce.max_returned_bytes", r.MaxReturnedBytes, 262144)}
	from, given := c.str("bounce.from", r.From, "")
	switch {
	case given:
		if err := checkMailbox(from); err != nil {
			c.errorf("bounce.from", "%q %v", from, err)
		}
		b.From = from
	case hostOK:
		b.From = "MAILER-DAEMON@" + hostname
	}
	return b
}

// maxSocketPath is the longest unix socket path the kernel takes: sun_path
// is 108 bytes on Linux and 104 on the BSDs, with a terminating NUL.
func maxSocketPath() int {
	if runtime.GOOS == "linux" {
		return 107
	}
	return 103
}

// admin checks [admin].
func (c *checker) admin(r *rawAdmin, dataDir string) Admin {
	a := Admin{Socket: c.filePath("admin.socket", r.Socket, "")}
	if r.Socket == nil {
		a.Socket = filepath.Join(dataDir, "admin.sock")
	}
	switch {
	case a.Socket == "":
		c.errorf("admin.socket", "must not be empty")
	case len(a.Socket) > maxSocketPath():
		c.errorf("admin.socket", "%q is %d bytes long; a unix socket path may have at most %d",
			a.Socket, len(a.Socket), maxSocketPath())
	}
	a.MetricsListen, _ = c.str("admin.metrics_listen", r.MetricsListen, "")
	if a.MetricsListen != "" {
		if _, err := checkHostPort(a.MetricsListen, 0); err != nil {
			c.errorf("admin.metrics_listen", "%v", err)
		}
	}
	return a
}

// log checks [log].
func (c *checker) log(r *rawLog) Log {
	l := Log{Format: c.enum("log.format", r.Format, LogFormatLogfmt, LogFormatLogfmt, LogFormatJSON, LogFormatPostfix)}
	levels := map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
	}
	l.Level = levels[c.enum("log.level", r.Level, "info", "debug", "info", "warn", "error")]
	return l
}

// quotaStore checks [quota_store].
func (c *checker) quotaStore(r *rawQuotaStore) QuotaStore {
	q := QuotaStore{
		Backend:        c.enum("quota_store.backend", r.Backend, BackendLocal, BackendLocal, BackendRedis),
		OnStoreError:   c.enum("quota_store.on_store_error", r.OnStoreError, OnStoreErrorPause, OnStoreErrorPause, OnStoreErrorLocalShare),
		ExpectedRelays: c.count("quota_store.expected_relays", r.ExpectedRelays, 2, 1),
		MaxClockSkew:   2 * time.Second,
		Timeout:        c.positive("quota_store.timeout", r.Timeout, 200*time.Millisecond),
	}
	if d, ok := c.duration("quota_store.max_clock_skew", r.MaxClockSkew, 0); ok {
		q.MaxClockSkew = d
	}
	q.RedisURL, _ = c.str("quota_store.redis_url", r.RedisURL, "")
	switch {
	case q.RedisURL != "":
		c.redisURL("quota_store.redis_url", q.RedisURL)
	case q.Backend == BackendRedis:
		c.errorf("quota_store.redis_url", "is required when backend is %q", BackendRedis)
	}
	return q
}

// redisURL checks the scheme and host of a Redis URL. The URL may hold a
// password, so messages never repeat it.
func (c *checker) redisURL(key, s string) {
	u, err := url.Parse(s)
	if err != nil {
		c.errorf(key, "is not a valid URL")
		return
	}
	switch u.Scheme {
	case "redis", "rediss", "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster":
	case "unix":
		if u.Path == "" {
			c.errorf(key, "has no socket path")
		}
		return
	default:
		c.errorf(key, "must use the redis, rediss, unix, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster scheme, not %q", u.Scheme)
		return
	}
	if u.Host == "" {
		c.errorf(key, "has no host")
	}
}
