// Package testredis runs a real redis-server on loopback for tests.
//
// Each Server is a child process listening on 127.0.0.1 on a free port, in a
// temporary directory, with persistence off (--save "" --appendonly no): what
// a test writes is gone when the server stops, and Restart brings back an
// empty server on the same port, the way a Redis without persistence comes
// back after a crash. The server is killed when the test ends.
//
// When redis-server is not installed the test is skipped, unless the
// environment variable SLUICE_REQUIRE_SERVERS is "1" (CI sets it): then the
// test fails, so that a missing server cannot silently skip the suite.
//
// Readiness is read from the server's own log ("Ready to accept
// connections") and confirmed with a PING, each wait bounded by a deadline.
// This package is for tests only: production code must not import it.
package testredis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RequireEnv names the environment variable that turns a missing
// redis-server from a skip into a failure.
const RequireEnv = "SLUICE_REQUIRE_SERVERS"

// binary is the server looked up in PATH; fallbackBinary is where Debian
// installs it, for PATHs without /usr/bin.
const (
	binary         = "redis-server"
	fallbackBinary = "/usr/bin/redis-server"
)

// maxStartTries bounds the attempts to start on a fresh port: between
// closing the probe listener and the server binding the port, another
// process may take it.
const maxStartTries = 5

// startTimeout bounds the wait for the server to report it is ready and to
// answer PING; stopTimeout bounds the wait for it to exit once killed.
const (
	startTimeout = 10 * time.Second
	stopTimeout  = 10 * time.Second
)

// readyLine is what redis-server logs once it accepts connections (the
// same text since Redis 2.x; 7.x appends the listener kind).
const readyLine = "Ready to accept connections"

// logTailLines is how many server log lines are kept for failure messages.
const logTailLines = 30

// Server is one redis-server child process. Its methods are safe for
// concurrent use, but Start, Stop and Restart fail the test with t.Fatal,
// so call them from the test's own goroutine.
type Server struct {
	tb   testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	proc *process // nil while stopped
}

// Start runs a redis-server on 127.0.0.1 on a free port and stops it when
// the test ends. It skips the test when redis-server is missing (see
// RequireEnv).
func Start(t testing.TB) *Server {
	t.Helper()
	bin := lookBinary(t)
	s := &Server{tb: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.stopQuietly)
	var lastErr error
	for range maxStartTries {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testredis: %v", err)
		}
		p, err := launch(s.bin, s.dir, port)
		if err == nil {
			s.mu.Lock()
			s.port, s.proc = port, p
			s.mu.Unlock()
			return s
		}
		lastErr = err
	}
	t.Fatalf("testredis: no server after %d tries: %v", maxStartTries, lastErr)
	return nil
}

// lookBinary finds redis-server or skips (or fails) the test.
func lookBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath(binary); err == nil {
		return p
	}
	if st, err := os.Stat(fallbackBinary); err == nil && !st.IsDir() {
		return fallbackBinary
	}
	msg := "testredis: redis-server not found in PATH or at " + fallbackBinary +
		"; install Redis (e.g. apt-get install redis-server) to run this test"
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg + " (" + RequireEnv + "=1 requires it)")
	}
	t.Skip(msg)
	return ""
}

// freePort asks the kernel for a free loopback port. The port is released
// before the server binds it, hence the retries in Start.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("probe for a free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("release probe port: %w", err)
	}
	return port, nil
}

// Addr returns "127.0.0.1:PORT". It stays the same across Restart.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns "redis://127.0.0.1:PORT/0".
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a new go-redis client for the server, closed when the test
// ends.
func (s *Server) Client() *redis.Client {
	c := newClient(s.Addr())
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server and waits for it to exit. Stopping a stopped
// server does nothing.
func (s *Server) Stop() {
	s.tb.Helper()
	if err := s.stop(); err != nil {
		s.tb.Fatalf("testredis: stop: %v", err)
	}
}

// Restart starts an empty server on the same port after Stop (it stops a
// running one first). Nothing written before survives.
func (s *Server) Restart() {
	s.tb.Helper()
	if err := s.stop(); err != nil {
		s.tb.Fatalf("testredis: stop before restart: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := launch(s.bin, s.dir, s.port)
	if err != nil {
		s.tb.Fatalf("testredis: restart on port %d: %v", s.port, err)
	}
	s.proc = p
}

func (s *Server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return nil
	}
	err := s.proc.kill()
	s.proc = nil
	return err
}

// stopQuietly is the cleanup: the test may already be over, so errors go
// to the log rather than failing it twice.
func (s *Server) stopQuietly() {
	if err := s.stop(); err != nil {
		s.tb.Logf("testredis: stop at cleanup: %v", err)
	}
}

func newClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
	})
}

// process is one running redis-server.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
	log    *logTail
}

// launch starts redis-server on port and waits until it is ready and
// answers PING.
func launch(bin, dir string, port int) (*process, error) {
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "",
	)
	cmd.Dir = dir
	setDeathSignal(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), log: &logTail{}}
	ready := make(chan struct{})
	go p.watch(out, ready)
	if err := p.waitReady(port, ready); err != nil {
		_ = p.kill()
		return nil, err
	}
	return p, nil
}

// watch reads the server log until the process ends, signals readiness,
// and then reaps the process.
func (p *process) watch(out io.Reader, ready chan<- struct{}) {
	sc := bufio.NewScanner(out)
	signalled := false
	for sc.Scan() {
		line := sc.Text()
		p.log.add(line)
		if !signalled && strings.Contains(line, readyLine) {
			close(ready)
			signalled = true
		}
	}
	_ = p.cmd.Wait()
	close(p.exited)
}

// waitReady waits for the ready line, then for a PING reply.
func (p *process) waitReady(port int, ready <-chan struct{}) error {
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-p.exited:
		return fmt.Errorf("redis-server exited at start; log:\n%s", p.log.String())
	case <-timer.C:
		return fmt.Errorf("redis-server not ready within %v; log:\n%s", startTimeout, p.log.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c := newClient(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	defer c.Close()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("PING: %w; log:\n%s", err, p.log.String())
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *process) kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return nil
	case <-timer.C:
		return fmt.Errorf("redis-server pid %d still running %v after SIGKILL", p.cmd.Process.Pid, stopTimeout)
	}
}

// logTail keeps the last lines of the server log.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > logTailLines {
		l.lines = l.lines[len(l.lines)-logTailLines:]
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
