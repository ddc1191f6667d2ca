package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sluice-mta/sluice/config"
)

func TestParseMesg(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		want   int64
		wantOK bool
	}{
		{name: "counter record", in: "sess=3 quit=3 mesg=42", want: 42, wantOK: true},
		{name: "large count", in: "sess=1 quit=0 mesg=1234567", want: 1234567, wantOK: true},
		{name: "no mesg field", in: "sess=3 quit=3", wantOK: false},
		{name: "empty value", in: "mesg=", wantOK: false},
		{name: "trailing junk", in: "mesg=7x", want: 7, wantOK: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseMesg([]byte(tc.in))
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Errorf("parseMesg(%q): got %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestSinkFollowsCounter(t *testing.T) {
	pr, pw := io.Pipe()
	s := &sink{exited: make(chan struct{})}
	go s.follow(pr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reached := make(chan error, 1)
	go func() {
		_, err := s.WaitFor(ctx, 3)
		reached <- err
	}()
	// smtp-sink separates records with CR; a record may arrive in pieces.
	for _, chunk := range []string{"sess=0 quit=0 mesg=1\r", "sess=1 quit=1 me", "sg=2\rsess=2 quit=2 mesg=3\r"} {
		if _, err := io.WriteString(pw, chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-reached; err != nil {
		t.Fatalf("WaitFor(3): %v", err)
	}
	if got := s.Count(); got != 3 {
		t.Errorf("Count: got %d, want 3", got)
	}
	if _, err := s.WaitFor(ctx, 2); err != nil {
		t.Errorf("WaitFor a count already reached: %v", err)
	}
	pw.Close()
	if _, err := s.WaitFor(ctx, 10); !errors.Is(err, errSinkDied) {
		t.Errorf("WaitFor after the sink's output ended: got %v, want errSinkDied", err)
	}
}

func TestParseProcStat(t *testing.T) {
	// Fields after the command: state ppid pgrp session tty tpgid flags
	// minflt cminflt majflt cmajflt utime stime cutime cstime ...
	rest := " S 77 100 100 0 -1 4194560 500 0 0 0 250 120 30 4 20 0 3 0"
	cases := []struct {
		name   string
		line   string
		want   procStat
		wantOK bool
	}{
		{name: "plain command", line: "1234 (sluice)" + rest, want: procStat{ppid: 77, utime: 250, stime: 120, cutime: 30, cstime: 4}, wantOK: true},
		{name: "command with spaces and parentheses", line: "1234 (a (b) c)" + rest, want: procStat{ppid: 77, utime: 250, stime: 120, cutime: 30, cstime: 4}, wantOK: true},
		{name: "truncated", line: "1234 (sluice) S 77 100", wantOK: false},
		{name: "no command", line: "garbage", wantOK: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseProcStat([]byte(tc.line))
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Errorf("parseProcStat: got %+v, %v; want %+v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestSummarizeTakesMedians(t *testing.T) {
	ss := []sample{
		{Messages: 100, Accept: time.Second, E2E: 2 * time.Second, CPU: 100 * time.Millisecond, HaveCPU: true},
		{Messages: 100, Accept: 500 * time.Millisecond, E2E: time.Second, CPU: 300 * time.Millisecond, HaveCPU: true},
		{Messages: 100, Accept: 250 * time.Millisecond, E2E: 250 * time.Millisecond, CPU: 200 * time.Millisecond, HaveCPU: true},
	}
	got := summarize(ss)
	want := summary{Runs: 3, Accept: 200, E2E: 100, CPUPerMsg: 2 * time.Millisecond, HaveCPU: true}
	if got != want {
		t.Errorf("summarize: got %+v, want %+v", got, want)
	}
	if got := summarize(ss[:2]); got.Accept != 150 {
		t.Errorf("median of two: got %v, want 150", got.Accept)
	}
	ss[1].HaveCPU = false
	if got := summarize(ss); got.HaveCPU {
		t.Errorf("CPU reported although one run had none: %+v", got)
	}
}

func TestTable(t *testing.T) {
	full := row{
		Case: defaultCases[0], Messages: 2000,
		Sluice:  summary{Runs: 3, Accept: 2000, E2E: 1500, CPUPerMsg: 500 * time.Microsecond, HaveCPU: true},
		Postfix: summary{Runs: 3, Accept: 400, E2E: 300, CPUPerMsg: 5 * time.Millisecond, HaveCPU: true},
		Bound:   summary{Runs: 3, Accept: 4000, E2E: 4000},
	}
	noPostfix := full
	noPostfix.Case = defaultCases[1]
	noPostfix.Postfix = summary{Err: errSkipped}
	cases := []struct {
		name     string
		markdown bool
		want     []string
	}{
		{name: "text", want: []string{
			"2KB/s20/r1  2000  2000  1500  400  300  5.0x  5.0x  4000  4000  38%  0.50 ms  5.00 ms",
			"2KB/s20/r10  2000  2000  1500  -  -  -  -  4000  4000  38%  0.50 ms  -",
		}},
		{name: "markdown", markdown: true, want: []string{
			"| case | msgs | sluice acc |",
			"|---:|---:|",
			"| 2KB/s20/r1 | 2000 | 2000 | 1500 | 400 | 300 | 5.0x | 5.0x | 4000 | 4000 | 38% | 0.50 ms | 5.00 ms |",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			write := writeText
			if tc.markdown {
				write = writeMarkdown
			}
			if err := write(&b, columns(false), []row{full, noPostfix}); err != nil {
				t.Fatal(err)
			}
			// Column alignment is tabwriter's business: compare with runs
			// of spaces collapsed.
			got := strings.Join(strings.Fields(b.String()), " ")
			for _, w := range tc.want {
				if !strings.Contains(got, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("table lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestGoalLines(t *testing.T) {
	r := row{
		Case:    benchCase{Name: goalCase},
		Sluice:  summary{Runs: 1, Accept: 1900, E2E: 1800},
		Postfix: summary{Runs: 1, Accept: 400, E2E: 300},
		Bound:   summary{Runs: 1, Accept: 5000, E2E: 4000},
	}
	got := strings.Join(goalLines([]row{r}), "\n")
	for _, want := range []string{
		"accept >= 5x Postfix): 4.8x — NOT met",
		"e2e >= 3x Postfix): 6.0x — met",
		"e2e >= 40% of the no-relay bound): 0.45 — met",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("goal lines lack %q:\n%s", want, got)
		}
	}
	if got := goalLines([]row{{Case: benchCase{Name: "other"}}}); got != nil {
		t.Errorf("goal lines without the goal case: got %q, want none", got)
	}
}

func TestSluiceConfigIsValid(t *testing.T) {
	cfg, err := config.Parse([]byte(sluiceConfig("/tmp/relaybench-test/data", "127.0.0.1:2525", "127.0.0.1:2526")), "bench.toml")
	if err != nil {
		t.Fatalf("the bench configuration does not load: %v", err)
	}
	r, ok := cfg.RouteFor("anything.example")
	if !ok || r.Relay != "127.0.0.1:2526" {
		t.Errorf("route for every domain: got %+v, %v; want relay 127.0.0.1:2526", r, ok)
	}
}

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantErr bool
	}{
		{name: "defaults", args: nil},
		{name: "quick look", args: []string{"-scale", "0.2", "-runs", "1", "-cases", "^2KB/s20"}},
		{name: "zero runs", args: []string{"-runs", "0"}, wantErr: true},
		{name: "bad postfix mode", args: []string{"-postfix", "maybe"}, wantErr: true},
		{name: "bad case pattern", args: []string{"-cases", "("}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if (err != nil) != tc.wantErr {
				t.Errorf("parseFlags(%q): got error %v, want error %v", tc.args, err, tc.wantErr)
			}
		})
	}
}
