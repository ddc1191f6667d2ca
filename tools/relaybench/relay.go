package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-mta/sluice/internal/postfixinst"
)

// stopTimeout bounds a relay's orderly stop; sluice's own shutdown_timeout
// defaults to 30s and nothing is in flight when the bench stops it.
const stopTimeout = 40 * time.Second

// sluiceRelay is a sluice daemon started from its binary, as an
// administrator would run it.
type sluiceRelay struct {
	addr string
	cmd  *exec.Cmd
	done chan error
}

// sluiceConfig is the configuration under test: defaults everywhere, and
// one route sending every domain to the sink.
func sluiceConfig(dataDir, listen, sinkAddr string) string {
	return fmt.Sprintf(`# written by relaybench
hostname = "relay.bench"
data_dir = %q

[smtp]
listen = [%q]

[[route]]
domains = ["*"]
relay = %q
`, dataDir, listen, sinkAddr)
}

// startSluice writes the configuration under dir and starts sluice serve,
// logging to dir/sluice.log at the default level (info: one line per
// accepted message and one per delivery, as in production).
func startSluice(ctx context.Context, bin, dir, sinkAddr, profileDir string) (*sluiceRelay, error) {
	port, err := postfixinst.FreePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfgPath := filepath.Join(dir, "sluice.toml")
	cfg := sluiceConfig(filepath.Join(dir, "data"), addr, sinkAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "sluice.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	args := []string{"--config", cfgPath, "serve"}
	if profileDir != "" {
		args = append(args,
			"--cpuprofile", filepath.Join(profileDir, "sluice-cpu.pprof"),
			"--memprofile", filepath.Join(profileDir, "sluice-mem.pprof"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sluice: %w", err)
	}
	r := &sluiceRelay{addr: addr, cmd: cmd, done: make(chan error, 1)}
	exited := make(chan struct{})
	go func() { r.done <- cmd.Wait(); close(exited) }()
	if err := waitListening(ctx, addr, 30*time.Second, exited); err != nil {
		r.stop()
		return nil, fmt.Errorf("sluice on %s: %w (log: %s)", addr, err, logFile.Name())
	}
	return r, nil
}

// cpu returns the CPU time sluice used so far.
func (r *sluiceRelay) cpu() (time.Duration, bool) {
	return processCPU(r.cmd.Process.Pid, false)
}

// stop asks sluice to shut down (SIGTERM) and waits, killing it after
// stopTimeout. A profile is written during the orderly shutdown.
func (r *sluiceRelay) stop() error {
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-r.done:
		return err
	case <-time.After(stopTimeout):
		_ = r.cmd.Process.Kill()
		<-r.done
		return errors.New("sluice did not stop in time and was killed")
	}
}

// postfixRelay is a private Postfix instance relaying everything to the
// sink (internal/postfixinst, as in the end-to-end test).
type postfixRelay struct {
	in *postfixinst.Instance
}

func startPostfix(dir, sinkAddr string) (*postfixRelay, error) {
	port, err := postfixinst.FreePort()
	if err != nil {
		return nil, err
	}
	in, err := postfixinst.Start(postfixinst.Options{
		Dir:       dir,
		SMTPAddr:  fmt.Sprintf("127.0.0.1:%d", port),
		Relayhost: "[" + strings.Replace(sinkAddr, ":", "]:", 1),
	})
	if err != nil {
		return nil, err
	}
	return &postfixRelay{in: in}, nil
}

// cpu returns the CPU time of the whole instance: the master and every
// live daemon, plus the daemons that already exited (the master's
// children time). Daemons come and go between two readings; the sum stays
// consistent because an exiting daemon's time moves into the master's.
func (p *postfixRelay) cpu() (time.Duration, bool) {
	b, err := os.ReadFile(filepath.Join(p.in.Dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0, false
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	total, ok := processCPU(master, true)
	if !ok {
		return 0, false
	}
	for _, pid := range childrenOf(master) {
		if d, ok := processCPU(pid, false); ok {
			total += d
		}
	}
	return total, true
}

func (p *postfixRelay) stop() error { return p.in.Stop() }

// waitListening dials addr until it answers, the process exits, or the
// timeout passes.
func waitListening(ctx context.Context, addr string, timeout time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited before listening")
		case <-ctx.Done():
			return fmt.Errorf("not listening: %w", err)
		case <-tick.C:
		}
	}
}
