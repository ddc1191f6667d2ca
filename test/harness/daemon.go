package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds on waits for the child process.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	cliTimeout   = 30 * time.Second
	logTailBytes = 6000
)

// Daemon is a sluice serve child process on one configuration; it can be
// killed and restarted on the same data. Start, Kill, Stop and Restart fail
// the test with t.Fatal, so call them from the test's goroutine.
type Daemon struct {
	t   testing.TB
	cfg Config
	log *os.File

	mu   sync.Mutex
	proc *process
	addr string
}

// process is one run of the binary.
type process struct {
	cmd     *exec.Cmd
	started chan string   // receives the listen address once
	exited  chan struct{} // closed when the process has been reaped
	waitErr error         // valid after exited
}

// Start writes cfg and starts the daemon on it, waiting for its "sluice
// started" line. The daemon is killed when the test ends, and a failed
// test gets the tail of its log.
func Start(t testing.TB, cfg Config) *Daemon {
	t.Helper()
	if binPath == "" {
		t.Fatal("harness: no binary; call harness.Main from TestMain")
	}
	cfg.Write(t)
	f, err := os.OpenFile(cfg.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{t: t, cfg: cfg, log: f}
	t.Cleanup(d.cleanup)
	d.start()
	return d
}

// Config returns the daemon's configuration.
func (d *Daemon) Config() Config { return d.cfg }

// Addr returns the SMTP address of the current run.
func (d *Daemon) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// PID returns the process ID of the current run, or 0 when stopped.
func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return 0
	}
	return d.proc.cmd.Process.Pid
}

func (d *Daemon) start() {
	d.t.Helper()
	cmd := exec.Command(binPath, "--config", d.cfg.Path(), "serve")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stdout = d.log
	p := &process{cmd: cmd, started: make(chan string, 1), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start sluice: %v", err)
	}
	copied := make(chan struct{})
	go func() { defer close(copied); d.copyLog(stderr, p.started) }()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case addr := <-p.started:
		d.mu.Lock()
		d.proc, d.addr = p, addr
		d.mu.Unlock()
	case <-p.exited:
		d.t.Fatalf("sluice exited before it started: %v%s", p.waitErr, d.Tail())
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-p.exited
		d.t.Fatalf("sluice did not start within %v%s", startTimeout, d.Tail())
	}
}

// copyLog copies the child's log to the file and reports the listen
// address from the "sluice started" line.
func (d *Daemon) copyLog(r io.Reader, started chan<- string) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			_, _ = d.log.WriteString(line)
			if addr, ok := startedAddr(line); ok {
				started <- addr
			}
		}
		if err != nil {
			return
		}
	}
}

// startedAddr parses the first listen address from the daemon's
// {"msg":"sluice started","listen":"[127.0.0.1:2525]"} line.
func startedAddr(line string) (string, bool) {
	if !strings.Contains(line, `"sluice started"`) {
		return "", false
	}
	var rec struct {
		Msg    string `json:"msg"`
		Listen string `json:"listen"`
	}
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "sluice started" {
		return "", false
	}
	f := strings.Fields(strings.Trim(rec.Listen, "[]"))
	if len(f) == 0 {
		return "", false
	}
	return f[0], true
}

// Kill sends SIGKILL and waits until the process is gone.
func (d *Daemon) Kill() {
	d.t.Helper()
	p := d.take()
	if p == nil {
		d.t.Fatal("Kill: sluice is not running")
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	d.waitExit(p, "SIGKILL")
}

// Stop sends SIGTERM and waits for a clean exit (status 0).
func (d *Daemon) Stop() {
	d.t.Helper()
	p := d.take()
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	d.waitExit(p, "SIGTERM")
	if p.waitErr != nil {
		d.t.Errorf("sluice exit after SIGTERM: %v%s", p.waitErr, d.Tail())
	}
}

// Restart starts the daemon again on the same configuration and data.
func (d *Daemon) Restart() {
	d.t.Helper()
	if d.PID() != 0 {
		d.t.Fatal("Restart: sluice is still running")
	}
	d.start()
}

func (d *Daemon) take() *process {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.proc
	d.proc = nil
	return p
}

func (d *Daemon) waitExit(p *process, how string) {
	d.t.Helper()
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		d.t.Fatalf("sluice did not exit within %v of %s%s", stopTimeout, how, d.Tail())
	}
}

func (d *Daemon) cleanup() {
	if p := d.take(); p != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
	if d.t.Failed() {
		d.t.Logf("sluice log (%s):%s", d.cfg.LogPath(), d.Tail())
	}
	d.log.Close()
}

// Tail returns the end of the daemon's log, for failure messages.
func (d *Daemon) Tail() string {
	b, err := os.ReadFile(d.cfg.LogPath())
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return "\n--- sluice log tail ---\n" + string(b)
}

// LogRecords returns the daemon's JSON log records (of every run so far)
// whose msg is msg; an empty msg returns them all. It is safe to call from
// parallel subtests.
func (d *Daemon) LogRecords(msg string) []map[string]any {
	b, err := os.ReadFile(d.cfg.LogPath())
	if err != nil {
		return nil // the file exists from Start on; nothing to report yet
	}
	var out []map[string]any
	for _, line := range bytes.Split(b, []byte("\n")) {
		var rec map[string]any
		if len(line) == 0 || json.Unmarshal(line, &rec) != nil {
			continue
		}
		if msg == "" || rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// CLI runs the binary with --config and args (e.g. "queue", "list",
// "--json") and returns its standard output.
func (d *Daemon) CLI(args ...string) ([]byte, error) {
	return RunCLI(d.cfg.Path(), args...)
}

// RunCLI runs sluice --config path args... bounded by cliTimeout.
func RunCLI(path string, args ...string) ([]byte, error) {
	cmd := exec.Command(binPath, append([]string{"--config", path}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(cliTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return stdout.Bytes(), fmt.Errorf("sluice %s: %w: %s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return stdout.Bytes(), nil
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		return nil, errors.New("sluice " + strings.Join(args, " ") + ": timed out")
	}
}
