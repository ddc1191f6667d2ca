package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/urfave/cli/v2"
)

// runProfiled runs a command wrapped by withProfiling with args, and
// reports whether its action ran.
func runProfiled(t *testing.T, args ...string) (ran bool, err error) {
	t.Helper()
	cmd := withProfiling(&cli.Command{
		Name: "work",
		Action: func(*cli.Context) error {
			ran = true
			// Something to sample and allocate.
			var sink []byte
			for i := range 2000 {
				sink = append(sink, bytes.Repeat([]byte{byte(i)}, 64)...)
			}
			_ = sink
			return nil
		},
	})
	app := &cli.App{Name: "sluice", Commands: []*cli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard,
		ExitErrHandler: func(*cli.Context, error) {}}
	err = app.Run(append([]string{"sluice", "work"}, args...))
	return ran, err
}

func TestProfilesWritten(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"--cpuprofile":   filepath.Join(dir, "cpu.pprof"),
		"--memprofile":   filepath.Join(dir, "mem.pprof"),
		"--mutexprofile": filepath.Join(dir, "mutex.pprof"),
	}
	var args []string
	for flag, path := range files {
		args = append(args, flag, path)
	}
	ran, err := runProfiled(t, args...)
	if err != nil || !ran {
		t.Fatalf("run: ran %v, err %v; want ran, nil", ran, err)
	}
	for flag, path := range files {
		t.Run(flag, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// pprof profiles are gzip-compressed protocol buffers.
			if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("%s: got %d bytes starting %x, want a gzip stream", path, len(b), b[:min(len(b), 2)])
			}
		})
	}
}

func TestProfileBadPath(t *testing.T) {
	cases := []struct {
		name string
		flag string
	}{
		{name: "cpu profile", flag: "--cpuprofile"},
		{name: "allocation profile", flag: "--memprofile"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(t.TempDir(), "no-such-dir", "p.pprof")
			ran, err := runProfiled(t, tc.flag, bad)
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Errorf("error: got %v, want an exit status 2", err)
			}
			if ran {
				t.Error("the command ran although its profile cannot be written")
			}
		})
	}
}

func TestNoProfileByDefault(t *testing.T) {
	ran, err := runProfiled(t)
	if err != nil || !ran {
		t.Fatalf("run: ran %v, err %v; want ran, nil", ran, err)
	}
}
