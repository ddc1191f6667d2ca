// Command relaybench is `make bench`: it measures how fast sluice accepts
// and relays mail on this machine, next to Postfix doing the same job and
// next to the no-relay upper bound, and prints one table.
//
// Postfix's own smtp-source is the load generator and smtp-sink the
// destination. Three sinks run, one per target:
//
//	smtp-source -> sluice  -> smtp-sink   ([[route]] domains = ["*"])
//	smtp-source -> Postfix -> smtp-sink   (relayhost; a private instance)
//	smtp-source ----------->  smtp-sink   (the upper bound for any relay)
//
// For each case of the matrix (2 KB and 50 KB bodies, 1 and 20 sessions, 1
// and 10 recipients; one connection per message, as smtp-source does by
// default) every target gets the same message count, runs interleaved so
// that a noisy neighbour hits all three alike, and the medians are shown.
// accept is messages / time until smtp-source exited (every message
// answered 250: for sluice, committed with fsync); e2e is messages / time
// until the sink counted the last one, as relay-bench.sh measures them.
//
// The command is a benchmark driver for developers, not part of sluice:
// it starts processes, binds loopback ports and needs Postfix's tools.
// Postfix itself is optional (root and an installed postfix are needed to
// start a private instance); without it those columns stay empty.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line flags.
type options struct {
	SluiceBin  string
	Baseline   string // a second sluice binary measured alongside, for before/after
	Runs       int
	Scale      float64
	Cases      *regexp.Regexp
	Postfix    string // auto, off, require
	RunTimeout time.Duration
	MaxTime    time.Duration
	ProfileDir string
	Markdown   bool
	Keep       bool
	ToolDir    string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("relaybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	var cases string
	fs.StringVar(&o.SluiceBin, "sluice", "", "sluice binary to measure (default: go build ./cmd/sluice into the work directory)")
	fs.StringVar(&o.Baseline, "baseline", "", "a second sluice binary (e.g. built from the last commit) measured in the same rounds, for before/after figures")
	fs.IntVar(&o.Runs, "runs", 3, "measured runs per case and target; the table shows medians")
	fs.Float64Var(&o.Scale, "scale", 1, "multiply every case's message count (e.g. 0.2 for a quick look)")
	fs.StringVar(&cases, "cases", "", "only cases whose name matches this regular expression (e.g. '^2KB/s20')")
	fs.StringVar(&o.Postfix, "postfix", "auto", "measure Postfix: auto (when it can run here), off, require")
	fs.DurationVar(&o.RunTimeout, "run-timeout", 90*time.Second, "limit for one run (smtp-source and the sink count)")
	fs.DurationVar(&o.MaxTime, "max-time", 9*time.Minute, "limit for the whole bench; cases left are reported as not measured")
	fs.StringVar(&o.ProfileDir, "profile", "", "directory for sluice's CPU and allocation profiles (sluice serve --cpuprofile/--memprofile)")
	fs.BoolVar(&o.Markdown, "markdown", false, "print the table as Markdown (for docs/performance.md)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory (logs, queue, Postfix instance)")
	fs.StringVar(&o.ToolDir, "tools", "", "directory holding smtp-source and smtp-sink (default: PATH, then /usr/sbin)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.Runs < 1 || o.Scale <= 0 || o.RunTimeout <= 0 || o.MaxTime <= 0 {
		return nil, errors.New("-runs, -scale, -run-timeout and -max-time must be positive")
	}
	switch o.Postfix {
	case "auto", "off", "require":
	default:
		return nil, fmt.Errorf("-postfix %q: want auto, off or require", o.Postfix)
	}
	re, err := regexp.Compile(cases)
	if err != nil {
		return nil, fmt.Errorf("-cases: %w", err)
	}
	o.Cases = re
	return o, nil
}

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "relaybench:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := setup(ctx, o, log)
	if err != nil {
		fmt.Fprintln(stderr, "relaybench:", err)
		return 2
	}
	rows := b.runAll(ctx)
	if err := b.close(); err != nil {
		log.Warn("teardown", "err", err)
	}
	if err := report(stdout, b, rows, o.Markdown); err != nil {
		fmt.Fprintln(stderr, "relaybench:", err)
		return 1
	}
	if !b.complete(rows) {
		return 1
	}
	return 0
}

// report prints the environment, the table and the goals.
func report(w io.Writer, b *bench, rows []row, markdown bool) error {
	for _, l := range b.environment() {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
	var err error
	cols := columns(b.base != nil)
	if markdown {
		err = writeMarkdown(w, cols, rows)
	} else {
		err = writeText(w, cols, rows)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "msg/s, medians of the runs; acc = until smtp-source exited (all 250), e2e = until the sink counted the last message.")
	fmt.Fprintln(w, "ratio = sluice / Postfix; bound = smtp-source straight into smtp-sink; cpu/msg = relay CPU time (user+system) per message.")
	if b.base != nil {
		fmt.Fprintln(w, "base = the -baseline sluice binary, measured in the same rounds.")
	}
	for _, l := range goalLines(rows) {
		fmt.Fprintln(w, l)
	}
	for _, n := range b.notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}
