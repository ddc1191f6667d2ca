package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/config"
)

// api is what the queue and quota verbs need: the running daemon's admin
// client or, when no daemon runs, the queue file itself.
type api interface {
	admin.Reader
	Act(ctx context.Context, a admin.Action, req admin.ActionRequest) (*admin.ActionResult, error)
}

// access says what a verb may do without a daemon.
type access int

const (
	accessRead   access = iota // read the queue file (read-only open)
	accessWrite                // change the queue file (delete, hold, release)
	accessDaemon               // nothing: the verb needs the scheduler
)

// withAPI runs fn against the daemon's admin socket. Only when nothing
// answers there does it open the queue file (never while the daemon runs:
// the daemon holds its lock, and the socket is how to reach it), says so
// on standard error, and runs fn against the file.
func withAPI(c *cli.Context, acc access, fn func(api) error) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	err = fn(admin.NewClient(cfg.Admin.Socket))
	if !errors.Is(err, admin.ErrNoDaemon) {
		return err
	}
	if acc == accessDaemon {
		return noDaemon(c, cfg)
	}
	verb := "reading"
	if acc == accessWrite {
		verb = "changing"
	}
	fmt.Fprintf(c.App.ErrWriter, "sluice: the daemon is not running; %s the queue file directly\n", verb)
	off, err := openOffline(cfg, acc == accessWrite)
	if err != nil {
		return err
	}
	defer off.Close()
	return fn(off)
}

// withDaemon runs fn against the daemon's admin socket; the verb cannot
// work without the daemon.
func withDaemon(c *cli.Context, fn func(*admin.Client) error) error {
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	err = fn(admin.NewClient(cfg.Admin.Socket))
	if errors.Is(err, admin.ErrNoDaemon) {
		return noDaemon(c, cfg)
	}
	return err
}

func noDaemon(c *cli.Context, cfg *config.Config) error {
	return fmt.Errorf("sluice %s needs the running daemon, and nothing answers on %s: start it (systemctl start sluice, or sluice serve)",
		commandPath(c), cfg.Admin.Socket)
}

// commandPath names the verb being run, e.g. "queue retry".
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

func loadConfig(c *cli.Context) (*config.Config, error) {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		fmt.Fprintln(c.App.ErrWriter, err)
		return nil, &exitError{code: 2, err: fmt.Errorf("%s has problems (see sluice config check)", c.String("config"))}
	}
	return cfg, nil
}

// usageError is a command used wrongly: exit status 2.
func usageError(msg string) error { return &exitError{code: 2, err: errors.New(msg)} }
