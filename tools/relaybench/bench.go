package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/internal/postfixinst"
)

// bench owns everything one relaybench run starts.
type bench struct {
	o       *options
	log     *slog.Logger
	work    string
	runner  runner
	sinks   []*sink
	sluice  *sluiceRelay
	baseRel *sluiceRelay // the -baseline binary; nil without one
	postfix *postfixRelay
	bound   *target
	sl      *target
	pf      *target // nil when Postfix is not measured
	base    *target // nil without -baseline
	notes   []string
	started time.Time
	deadln  time.Time
	slBin   string
	load0   string // /proc/loadavg at the start: other work on the machine skews the figures
}

// setup starts the sinks, sluice and (when it can run) Postfix. On error
// whatever started is stopped again.
func setup(ctx context.Context, o *options, log *slog.Logger) (b *bench, err error) {
	b = &bench{o: o, log: log, started: time.Now(), load0: loadAverage()}
	b.deadln = b.started.Add(o.MaxTime)
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	source, sinkBin, err := findTools(o.ToolDir)
	if err != nil {
		return nil, err
	}
	b.runner = runner{sourceBin: source, runTimeout: o.RunTimeout}
	if b.work, err = os.MkdirTemp("", "relaybench-"); err != nil {
		return nil, err
	}
	if b.slBin, err = sluiceBinary(ctx, o.SluiceBin, b.work); err != nil {
		return nil, err
	}
	newSink := func() (*sink, error) {
		port, err := postfixinst.FreePort()
		if err != nil {
			return nil, err
		}
		s, err := startSink(ctx, sinkBin, fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			b.sinks = append(b.sinks, s)
		}
		return s, err
	}
	boundSink, err := newSink()
	if err != nil {
		return nil, err
	}
	b.bound = &target{Name: "bound", Addr: boundSink.addr, Sink: boundSink}
	if b.o.ProfileDir != "" {
		if b.o.ProfileDir, err = filepath.Abs(b.o.ProfileDir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(b.o.ProfileDir, 0o755); err != nil {
			return nil, err
		}
	}
	if b.sluice, b.sl, err = b.startSluice(ctx, newSink, "sluice", b.slBin, b.o.ProfileDir); err != nil {
		return nil, err
	}
	if o.Baseline != "" {
		bin, err := filepath.Abs(o.Baseline)
		if err != nil {
			return nil, err
		}
		if b.baseRel, b.base, err = b.startSluice(ctx, newSink, "baseline", bin, ""); err != nil {
			return nil, err
		}
	}
	return b, b.startPostfix(newSink)
}

// startSluice starts one sluice binary in its own directory, relaying to
// its own sink.
func (b *bench) startSluice(ctx context.Context, newSink func() (*sink, error), name, bin, profileDir string) (*sluiceRelay, *target, error) {
	s, err := newSink()
	if err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(b.work, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, err
	}
	r, err := startSluice(ctx, bin, dir, s.addr, profileDir)
	if err != nil {
		return nil, nil, err
	}
	return r, &target{Name: name, Addr: r.addr, Sink: s, CPU: r.cpu}, nil
}

// startPostfix starts the Postfix instance unless told not to; with
// -postfix=auto a Postfix that cannot run here is a note, not an error.
func (b *bench) startPostfix(newSink func() (*sink, error)) error {
	if b.o.Postfix == "off" {
		b.notes = append(b.notes, "Postfix not measured (-postfix=off)")
		return nil
	}
	if err := postfixinst.Check(); err != nil {
		if b.o.Postfix == "require" {
			return err
		}
		b.notes = append(b.notes, fmt.Sprintf("Postfix not measured: %v", err))
		return nil
	}
	s, err := newSink()
	if err != nil {
		return err
	}
	b.postfix, err = startPostfix(filepath.Join(b.work, "postfix"), s.addr)
	if err != nil {
		if b.o.Postfix == "require" {
			return err
		}
		b.notes = append(b.notes, fmt.Sprintf("Postfix not measured: %v", err))
		return nil
	}
	b.pf = &target{Name: "postfix", Addr: b.postfix.in.SMTPAddr, Sink: s, CPU: b.postfix.cpu}
	return nil
}

// targets in the order each run visits them.
func (b *bench) targets() []*target {
	ts := []*target{b.bound, b.sl}
	if b.base != nil {
		ts = append(ts, b.base)
	}
	if b.pf != nil {
		ts = append(ts, b.pf)
	}
	return ts
}

// runAll warms every target up, then measures the selected cases, runs
// interleaved across targets, until done or out of time.
func (b *bench) runAll(ctx context.Context) []row {
	ctx, cancel := context.WithDeadline(ctx, b.deadln)
	defer cancel()
	for _, t := range b.targets() {
		if _, err := b.runner.measure(ctx, t, warmupCase, warmupCase.Messages); err != nil {
			t.failed = fmt.Errorf("warm-up: %w", err)
			b.log.Error("warm-up failed; target left out", "target", t.Name, "err", err)
		}
	}
	var rows []row
	for _, c := range defaultCases {
		if !b.o.Cases.MatchString(c.Name) {
			continue
		}
		rows = append(rows, b.runCase(ctx, c))
	}
	return rows
}

// runCase measures one case: Runs rounds, each visiting every target.
func (b *bench) runCase(ctx context.Context, c benchCase) row {
	n := max(1, int(math.Round(float64(c.Messages)*b.o.Scale)))
	samples := map[*target][]sample{}
	for i := range b.o.Runs {
		for _, t := range b.targets() {
			if t.failed != nil || ctx.Err() != nil {
				continue
			}
			s, err := b.runner.measure(ctx, t, c, n)
			if err != nil {
				t.failed = fmt.Errorf("%s run %d: %w", c.Name, i+1, err)
				b.log.Error("run failed; target left out from now on", "target", t.Name, "case", c.Name, "err", err)
				continue
			}
			samples[t] = append(samples[t], s)
			b.log.Info("run", "case", c.Name, "target", t.Name, "run", i+1, "messages", n,
				"accept_msg_s", fmt.Sprintf("%.0f", s.AcceptRate()), "e2e_msg_s", fmt.Sprintf("%.0f", s.E2ERate()))
		}
	}
	r := row{Case: c, Messages: n, Sluice: b.summary(b.sl, samples), Bound: b.summary(b.bound, samples)}
	if b.pf != nil {
		r.Postfix = b.summary(b.pf, samples)
	}
	if b.base != nil {
		r.Base = b.summary(b.base, samples)
	}
	return r
}

// summary is a target's medians, or why it has none. A target that
// failed mid-case keeps the runs it completed before.
func (b *bench) summary(t *target, samples map[*target][]sample) summary {
	ss := samples[t]
	if len(ss) == 0 {
		err := t.failed
		if err == nil {
			err = errSkipped
		}
		return summary{Err: err}
	}
	return summarize(ss)
}

// complete reports whether every selected case was measured at every
// target that runs here.
func (b *bench) complete(rows []row) bool {
	for _, r := range rows {
		if !measured(r.Sluice) || !measured(r.Bound) || (b.pf != nil && !measured(r.Postfix)) ||
			(b.base != nil && !measured(r.Base)) {
			return false
		}
	}
	return len(rows) > 0
}

// close stops everything and removes the work directory unless -keep.
func (b *bench) close() error {
	var errs []error
	for _, r := range []**sluiceRelay{&b.sluice, &b.baseRel} {
		if *r == nil {
			continue
		}
		if err := (*r).stop(); err != nil {
			errs = append(errs, fmt.Errorf("sluice: %w", err))
		}
		*r = nil
	}
	if b.postfix != nil {
		if err := b.postfix.stop(); err != nil {
			errs = append(errs, fmt.Errorf("postfix: %w", err))
		}
		b.postfix = nil
	}
	for _, s := range b.sinks {
		s.stop()
	}
	b.sinks = nil
	for _, t := range []*target{b.bound, b.sl, b.base, b.pf} {
		if t != nil && t.failed != nil {
			b.notes = append(b.notes, fmt.Sprintf("%s failed: %v", t.Name, t.failed))
		}
	}
	if b.work != "" {
		if b.o.Keep {
			b.notes = append(b.notes, "work directory kept: "+b.work)
		} else if err := os.RemoveAll(b.work); err != nil {
			errs = append(errs, err)
		}
		b.work = ""
	}
	return errors.Join(errs...)
}

// environment describes the machine and the software measured.
func (b *bench) environment() []string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	out := []string{
		fmt.Sprintf("relaybench %s: %d CPUs, Linux %s, %s, elapsed %s",
			b.started.UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), strings.TrimSpace(string(kernel)),
			runtime.Version(), time.Since(b.started).Round(time.Second)),
		"sluice: " + commandLine(b.slBin, "--version"),
		fmt.Sprintf("runs per case and target: %d, message count scale %g, one connection per message", b.o.Runs, b.o.Scale),
		fmt.Sprintf("load average (1, 5, 15 min) at start: %s, at end: %s", b.load0, loadAverage()),
	}
	if b.base != nil {
		out = append(out, "baseline: "+commandLine(b.o.Baseline, "--version"))
	}
	if b.pf != nil {
		out = append(out, "postfix: "+strings.TrimPrefix(commandLine("postconf", "-d", "mail_version"), "mail_version = "))
	}
	if b.o.ProfileDir != "" {
		out = append(out, "profiles: "+b.o.ProfileDir)
	}
	return out
}

// loadAverage returns the three load averages of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func commandLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// findTools locates smtp-source and smtp-sink.
func findTools(dir string) (source, sinkBin string, err error) {
	find := func(name string) (string, error) {
		if dir != "" {
			return exec.LookPath(filepath.Join(dir, name))
		}
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/libexec/postfix"} {
			if p, err := exec.LookPath(filepath.Join(d, name)); err == nil {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s not found (Debian: apt-get install postfix; or use -tools DIR)", name)
	}
	if source, err = find("smtp-source"); err != nil {
		return "", "", err
	}
	sinkBin, err = find("smtp-sink")
	return source, sinkBin, err
}

// sluiceBinary returns bin, or builds sluice into dir when bin is empty.
func sluiceBinary(ctx context.Context, bin, dir string) (string, error) {
	if bin != "" {
		return filepath.Abs(bin)
	}
	out := filepath.Join(dir, "sluice")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "github.com/sluice-mta/sluice/cmd/sluice")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build sluice: %w: %s", err, msg)
	}
	return out, nil
}
