package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// Opt-in profiling for `sluice serve`, so that a benchmark run (make bench,
// docs/performance.md) can show where the daemon spends its time. Nothing
// is profiled unless a flag names a file.

// profileFlags are the flags withProfiling adds.
func profileFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cpuprofile", Usage: "write a CPU profile (go tool pprof) to `FILE` when the daemon stops"},
		&cli.StringFlag{Name: "memprofile", Usage: "write an allocation profile (go tool pprof) to `FILE` when the daemon stops"},
		&cli.StringFlag{Name: "mutexprofile", Usage: "write a mutex contention profile to `FILE` when the daemon stops"},
	}
}

// withProfiling adds the profiling flags to cmd and wraps its action so
// that the profiles cover exactly the action's run.
func withProfiling(cmd *cli.Command) *cli.Command {
	cmd.Flags = append(cmd.Flags, profileFlags()...)
	action := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		p, err := startProfiles(profileFiles{
			CPU: c.String("cpuprofile"), Mem: c.String("memprofile"), Mutex: c.String("mutexprofile"),
		})
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		err = action(c)
		if perr := p.stop(); perr != nil {
			fmt.Fprintln(c.App.ErrWriter, "sluice:", perr)
			if err == nil {
				err = perr
			}
		}
		return err
	}
	return cmd
}

// profileFiles names where each profile goes; empty means not wanted.
type profileFiles struct {
	CPU, Mem, Mutex string
}

// profiles is a running set of profiles.
type profiles struct {
	files profileFiles
	cpu   *os.File
}

// mutexFraction samples one contention event in this many: enough to see
// the hot locks, cheap enough to leave the figures alone.
const mutexFraction = 5

// startProfiles starts the CPU profile and turns on the sampling the other
// profiles need. Files are created up front, so a bad path fails at once
// rather than after a long run.
func startProfiles(f profileFiles) (*profiles, error) {
	p := &profiles{files: f}
	for _, path := range []string{f.Mem, f.Mutex} {
		if path == "" {
			continue
		}
		fh, err := os.Create(path)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		fh.Close()
	}
	if f.CPU != "" {
		fh, err := os.Create(f.CPU)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		if err := pprof.StartCPUProfile(fh); err != nil {
			fh.Close()
			return nil, fmt.Errorf("profile: start CPU profile: %w", err)
		}
		p.cpu = fh
	}
	if f.Mutex != "" {
		runtime.SetMutexProfileFraction(mutexFraction)
	}
	return p, nil
}

// stop ends the CPU profile and writes the others.
func (p *profiles) stop() error {
	var errs []error
	if p.cpu != nil {
		pprof.StopCPUProfile()
		errs = append(errs, p.cpu.Close())
	}
	if p.files.Mem != "" {
		runtime.GC() // up-to-date figures for what is still live
		errs = append(errs, writeProfile("allocs", p.files.Mem))
	}
	if p.files.Mutex != "" {
		errs = append(errs, writeProfile("mutex", p.files.Mutex))
		runtime.SetMutexProfileFraction(0)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

func writeProfile(name, path string) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	werr := pprof.Lookup(name).WriteTo(fh, 0)
	return errors.Join(werr, fh.Close())
}
