package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// sink is a running smtp-sink whose -c counter is followed from its
// standard output. smtp-sink writes "sess=N quit=N mesg=N" records ended by
// CR, flushed as each event happens, so the moment the count reaches a
// target is known to well under a millisecond (relay-bench.sh polls a file
// every 20 ms instead).
type sink struct {
	addr string
	cmd  *exec.Cmd

	mu      sync.Mutex
	count   int64
	watches []*watch
	exited  chan struct{}
}

// watch is a wait for the count to reach at.
type watch struct {
	at    int64
	fired chan time.Time // buffered; receives when the count reached at
}

// startSink runs smtp-sink on addr and waits until it accepts connections.
func startSink(ctx context.Context, bin, addr string) (*sink, error) {
	args := []string{"-c"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody") // smtp-sink refuses to run as root otherwise
	}
	args = append(args, addr, "1024")
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start smtp-sink: %w", err)
	}
	s := &sink{addr: addr, cmd: cmd, exited: make(chan struct{})}
	go s.follow(out)
	if err := waitListening(ctx, addr, 10*time.Second, s.exited); err != nil {
		s.stop()
		return nil, fmt.Errorf("smtp-sink on %s: %w: %s", addr, err, stderr.String())
	}
	return s, nil
}

// follow reads the counter until smtp-sink exits.
func (s *sink) follow(r io.Reader) {
	defer close(s.exited)
	sc := bufio.NewScanner(r)
	sc.Split(splitCounter)
	for sc.Scan() {
		if n, ok := parseMesg(sc.Bytes()); ok {
			s.update(n, time.Now())
		}
	}
}

func (s *sink) update(n int64, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= s.count {
		return
	}
	s.count = n
	keep := s.watches[:0]
	for _, w := range s.watches {
		if n >= w.at {
			w.fired <- at
			continue
		}
		keep = append(keep, w)
	}
	s.watches = keep
}

// Count returns the messages received so far.
func (s *sink) Count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// errSinkDied means smtp-sink exited while a run waited for it.
var errSinkDied = errors.New("smtp-sink exited")

// WaitFor returns when the count reached n, or an error when ctx ends
// or the sink dies first.
func (s *sink) WaitFor(ctx context.Context, n int64) (time.Time, error) {
	w := &watch{at: n, fired: make(chan time.Time, 1)}
	s.mu.Lock()
	if s.count >= n {
		s.mu.Unlock()
		return time.Now(), nil
	}
	s.watches = append(s.watches, w)
	s.mu.Unlock()
	select {
	case at := <-w.fired:
		return at, nil
	case <-s.exited:
		return time.Time{}, errSinkDied
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// stop ends smtp-sink and waits for it.
func (s *sink) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill() // a sink holds nothing worth a clean exit
	}
	_ = s.cmd.Wait()
}

// splitCounter splits smtp-sink's output at CR or LF.
func splitCounter(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// parseMesg extracts N from a "sess=.. quit=.. mesg=N" record.
func parseMesg(rec []byte) (int64, bool) {
	i := bytes.Index(rec, []byte("mesg="))
	if i < 0 {
		return 0, false
	}
	digits := rec[i+len("mesg="):]
	end := 0
	for end < len(digits) && digits[end] >= '0' && digits[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(string(digits[:end]), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}
