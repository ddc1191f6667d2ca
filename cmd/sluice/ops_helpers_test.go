package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/config"
)

// daemonOpts are what the operations tests add to startTestDaemon.
type daemonOpts struct {
	// logs receives the daemon's log besides t.Log.
	logs io.Writer
	// newLogger builds the logger instead of the logfmt default.
	newLogger func(w io.Writer, cfg *config.Config) *slog.Logger
	hangup    <-chan os.Signal
	notifier  notifier
}

// startOpsDaemon runs sluice in-process with the configuration written to
// dir/sluice.toml and the extras of o.
func startOpsDaemon(t testing.TB, dir, cfgText string, o daemonOpts) *running {
	t.Helper()
	path := filepath.Join(dir, "sluice.toml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	var w io.Writer = testLogWriter{t}
	if o.logs != nil {
		w = io.MultiWriter(w, o.logs)
	}
	logs := newLogControl(cfg)
	logs.level.Set(slog.LevelDebug)
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: &logs.level}))
	if o.newLogger != nil {
		log = o.newLogger(w, cfg)
	}
	r := &running{t: t, cfg: cfg, done: make(chan error, 1)}
	started := make(chan *daemon, 1)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	dp := deps{Logger: log, Logs: logs, Hangup: o.hangup, Notifier: o.notifier, Started: func(d *daemon) { started <- d }}
	go func() { r.done <- runDaemon(ctx, cfg, dp) }()
	select {
	case r.d = <-started:
	case err := <-r.done:
		t.Fatalf("daemon did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not start in time")
	}
	t.Cleanup(r.stop)
	return r
}

// slowRetryConfig is the world's daemon configuration with an hour between
// retries, so that deferred mail stays deferred while a test looks at it.
func slowRetryConfig(w *world, dataDir, extra string) string {
	return strings.Replace(w.daemonConfig(dataDir, extra), `retry_schedule = ["1s"]`, `retry_schedule = ["1h"]`, 1)
}

// runCLIInput runs the sluice command line in-process with stdin as its
// standard input and returns its output and exit status.
func runCLIInput(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter, app.Reader = &out, &errOut, strings.NewReader(stdin)
	err := app.Run(append([]string{"sluice"}, args...))
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errOut.WriteString(err.Error())
	}
	return out.String(), errOut.String(), code
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond until it holds, for at most timeout (and a
// bounded number of rounds), and fails the test with what otherwise.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for range 10000 {
		if cond() {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
	t.Fatalf("gave up waiting for %s", what)
}
