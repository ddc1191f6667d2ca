package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Envelope addresses smtp-source uses. With -r N it sends N recipients
// "rcpt@example.net", "2rcpt@example.net" ...: one domain, so a relay sends
// one transaction per message.
const (
	benchSender    = "sender@example.org"
	benchRecipient = "rcpt@example.net"
)

// benchCase is one cell of the matrix.
type benchCase struct {
	Name      string
	SizeBytes int // smtp-source -l
	Sessions  int // smtp-source -s
	Rcpts     int // smtp-source -r
	Messages  int // per run, before -scale
}

// defaultCases is the matrix of issue 8: 2 KB and 50 KB, 1 and 20
// sessions, 1 and 10 recipients. Message counts keep each run near a few
// seconds for Postfix, so the whole bench stays well under ten minutes.
var defaultCases = []benchCase{
	{"2KB/s20/r1", 2 << 10, 20, 1, 2000},
	{"2KB/s20/r10", 2 << 10, 20, 10, 2000},
	{"2KB/s1/r1", 2 << 10, 1, 1, 500},
	{"2KB/s1/r10", 2 << 10, 1, 10, 500},
	{"50KB/s20/r1", 50 << 10, 20, 1, 1000},
	{"50KB/s20/r10", 50 << 10, 20, 10, 1000},
	{"50KB/s1/r1", 50 << 10, 1, 1, 300},
	{"50KB/s1/r10", 50 << 10, 1, 10, 300},
}

// warmupCase primes every target (process pools, caches, file layout)
// before anything is measured.
var warmupCase = benchCase{Name: "warm-up", SizeBytes: 2 << 10, Sessions: 20, Rcpts: 1, Messages: 200}

// target is something smtp-source sends to and whose output reaches a sink.
type target struct {
	Name string
	Addr string
	Sink *sink
	// CPU returns the CPU time the relay used so far; nil or false when
	// unknown (the upper bound has no relay).
	CPU func() (time.Duration, bool)
	// failed is set after a run failed: later counts at the sink could
	// include the stragglers of that run, so the target is not measured
	// again.
	failed error
}

// sample is one run's result.
type sample struct {
	Messages  int
	Accept    time.Duration // smtp-source start to exit
	E2E       time.Duration // smtp-source start to the last message at the sink
	CPU       time.Duration // relay CPU time during the run; 0 when unknown
	HaveCPU   bool
	Delivered int64
}

// AcceptRate and E2ERate are messages per second.
func (s sample) AcceptRate() float64 { return rate(s.Messages, s.Accept) }
func (s sample) E2ERate() float64    { return rate(s.Messages, s.E2E) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// runner runs smtp-source.
type runner struct {
	sourceBin  string
	runTimeout time.Duration
}

// measure sends n messages of case c to t and waits for all of them at the
// sink: accept is how long smtp-source took (every message answered 250),
// e2e how long until the sink had counted the last one, as relay-bench.sh
// measures them.
func (r *runner) measure(ctx context.Context, t *target, c benchCase, n int) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, r.runTimeout)
	defer cancel()
	base := t.Sink.Count()
	var cpu0 time.Duration
	haveCPU := false
	if t.CPU != nil {
		cpu0, haveCPU = t.CPU()
	}
	start := time.Now()
	if err := r.source(ctx, c, n, t.Addr); err != nil {
		return sample{}, err
	}
	accept := time.Since(start)
	at, err := t.Sink.WaitFor(ctx, base+int64(n))
	if err != nil {
		return sample{}, fmt.Errorf("%d of %d messages reached the sink: %w", t.Sink.Count()-base, n, err)
	}
	s := sample{Messages: n, Accept: accept, E2E: max(at.Sub(start), accept), Delivered: t.Sink.Count() - base}
	if haveCPU {
		if cpu1, ok := t.CPU(); ok {
			s.CPU, s.HaveCPU = cpu1-cpu0, true
		}
	}
	return s, nil
}

// source runs smtp-source: one new connection per message (its default,
// and what Postfix does when it relays to a relayhost without caching).
func (r *runner) source(ctx context.Context, c benchCase, n int, addr string) error {
	args := sourceArgs(c, n, addr)
	cmd := exec.CommandContext(ctx, r.sourceBin, args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("smtp-source did not finish within %s: %w", r.runTimeout, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("smtp-source %s: %w: %s", strings.Join(args, " "), err, lastLines(out, 3))
	}
	return nil
}

func sourceArgs(c benchCase, n int, addr string) []string {
	return []string{
		"-s", strconv.Itoa(c.Sessions), "-m", strconv.Itoa(n), "-l", strconv.Itoa(c.SizeBytes),
		"-r", strconv.Itoa(c.Rcpts), "-f", benchSender, "-t", benchRecipient, addr,
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

// summary is the median of a case's runs at one target.
type summary struct {
	Runs      int
	Accept    float64 // msg/s
	E2E       float64 // msg/s
	CPUPerMsg time.Duration
	HaveCPU   bool
	Err       error // the target failed before any run completed
}

// summarize takes medians: the machine is noisy, and one slow run (another
// process waking up) must not move the figure.
func summarize(ss []sample) summary {
	if len(ss) == 0 {
		return summary{}
	}
	var acc, e2e, cpu []float64
	for _, s := range ss {
		acc = append(acc, s.AcceptRate())
		e2e = append(e2e, s.E2ERate())
		if s.HaveCPU && s.Messages > 0 {
			cpu = append(cpu, float64(s.CPU)/float64(s.Messages))
		}
	}
	out := summary{Runs: len(ss), Accept: median(acc), E2E: median(e2e)}
	if len(cpu) == len(ss) {
		out.CPUPerMsg, out.HaveCPU = time.Duration(median(cpu)), true
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// errSkipped marks a target not measured for a case (it failed earlier,
// or the time budget ran out).
var errSkipped = errors.New("not measured")
