package config

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Config is a loaded, defaulted and validated configuration file. Every
// duration is a time.Duration; sizes are bytes.
type Config struct {
	// Path is the file the configuration came from: the absolute path for
	// Load, the name given to Parse.
	Path string

	Hostname        string
	DataDir         string // resolved against the configuration file's directory
	ShutdownTimeout time.Duration

	SMTP       SMTP
	DNS        DNS
	Delivery   Delivery
	Bounce     Bounce
	Admin      Admin
	Log        Log
	QuotaStore QuotaStore

	Operators []Operator
	Default   Limits // for recipient domains that match no operator
	Routes    []Route
	DKIM      []DKIM
}

// SMTP is the [smtp] table: the inbound side.
type SMTP struct {
	Listen              []string // host:port each
	TrustedNetworks     []netip.Prefix
	MaxMessageBytes     int64
	MaxRecipients       int
	MaxLineLength       int
	MaxConnections      int
	ReadTimeout         time.Duration // bounds each command and the whole DATA
	WriteTimeout        time.Duration
	PriorityHeader      string
	MaxPriorityMilli    uint32 // max_priority × 1000
	StripPriorityHeader bool

	// TLSCertFile and TLSKeyFile are resolved against the configuration
	// file's directory; both empty when STARTTLS is off.
	TLSCertFile string
	TLSKeyFile  string
	// TLSCertificate is the pair loaded from those files, nil when off.
	TLSCertificate *tls.Certificate
}

// DNS is the [dns] table.
type DNS struct {
	Servers []string // ip:port each; empty means the system's resolv.conf
	Timeout time.Duration
}

// Delivery is the [delivery] table: the outbound side.
type Delivery struct {
	Port              int
	HELO              string
	ConnectTimeout    time.Duration
	CommandTimeout    time.Duration // each SMTP command's reply
	DataTimeout       time.Duration // the body and the reply to the final dot
	RetrySchedule     []time.Duration
	MaxQueueLifetime  time.Duration
	DelayWarningAfter time.Duration // 0 means no delay warnings
	AllowPrivateMX    bool
	MaxConnections    int // all outbound connections together
	MaxMXHosts        int // MX hosts tried per attempt
}

// RetryAfter returns how long to wait after failed attempt number n
// (1 for the first): the nth entry of RetrySchedule, whose last entry
// repeats.
func (d *Delivery) RetryAfter(n int) time.Duration {
	if len(d.RetrySchedule) == 0 {
		return 0
	}
	n = max(n, 1)
	return d.RetrySchedule[min(n, len(d.RetrySchedule))-1]
}

// Bounce is the [bounce] table.
type Bounce struct {
	From             string
	MaxReturnedBytes int64 // RET=FULL returns at most this much of the message
}

// Admin is the [admin] table.
type Admin struct {
	Socket        string // unix socket path
	MetricsListen string // host:port; empty means no metrics listener
}

// Log formats.
const (
	LogFormatLogfmt  = "logfmt"
	LogFormatJSON    = "json"
	LogFormatPostfix = "postfix"
)

// Log is the [log] table.
type Log struct {
	Format string // LogFormatLogfmt, LogFormatJSON or LogFormatPostfix
	Level  slog.Level
}

// Quota store backends and store-error policies.
const (
	BackendLocal = "local"
	BackendRedis = "redis"

	OnStoreErrorPause      = "pause"
	OnStoreErrorLocalShare = "local_share"
)

// QuotaStore is the [quota_store] table: where budget usage is kept.
type QuotaStore struct {
	Backend        string // BackendLocal or BackendRedis
	RedisURL       string
	OnStoreError   string // OnStoreErrorPause or OnStoreErrorLocalShare
	ExpectedRelays int
	MaxClockSkew   time.Duration
	Timeout        time.Duration
}

// DKIM is one [[dkim]] signing key.
type DKIM struct {
	Domain         string
	Selector       string
	PrivateKeyFile string        // resolved against the configuration file's directory
	Signer         crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
}

// Load reads and parses the file at path. Relative paths inside it are
// resolved against the file's directory. Problems in the file are returned
// as *Errors; a file that cannot be read gives the error from reading it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parse(data, path, filepath.Dir(abs))
	if err != nil {
		return nil, err
	}
	cfg.Path = abs
	return cfg, nil
}

// Parse parses a configuration held in memory. name appears in error
// messages and relative paths are resolved against filepath.Dir(name), so
// name should be where the data came from. Problems are returned as *Errors.
func Parse(data []byte, name string) (*Config, error) {
	cfg, err := parse(data, name, filepath.Dir(name))
	if err != nil {
		return nil, err
	}
	cfg.Path = name
	return cfg, nil
}

// parse indexes the document for lines, decodes it into the raw schema and
// checks every value, collecting all problems.
func parse(data []byte, name, baseDir string) (*Config, error) {
	idx, serr := buildIndex(data)
	if serr != nil {
		serr.File = name
		return nil, &Errors{List: []*Error{serr}}
	}
	c := &checker{file: name, idx: idx, baseDir: baseDir}
	var raw rawConfig
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil && !c.decodeError(err) {
		return nil, c.result()
	}
	cfg := c.config(&raw)
	if err := c.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeError records what go-toml reported. It returns true when decoding
// went through to the end (only unknown keys), so that checking can go on.
func (c *checker) decodeError(err error) bool {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		for i := range strict.Errors {
			de := &strict.Errors[i]
			line, _ := de.Position()
			key := c.idx.find(de.Key(), line)
			msg := msgUnknownKey
			if c.idx.tables[key] {
				msg = msgUnknownTable
			}
			c.add(&Error{Line: line, Key: key, Msg: msg})
		}
		return true
	}
	e := &Error{Msg: err.Error()}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		e.Line, _ = de.Position()
		e.Key = c.idx.find(de.Key(), e.Line)
		e.Msg = shapeMessage(de.Key())
		if e.Msg == "" {
			e.Msg = strings.TrimPrefix(de.Error(), "toml: ")
		}
	}
	c.add(e)
	return false
}
