// Command sluice is the sluice relay: the daemon (sluice serve) and the
// tools that inspect and steer it. See README.md.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit status to main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	err := newApp().Run(os.Args)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintln(os.Stderr, "sluice:", err)
	os.Exit(code)
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "sluice",
		Usage:   "an SMTP relay that sends to each mailbox operator no faster than it allows",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "config",
				Usage:   "configuration `FILE`",
				EnvVars: []string{"SLUICE_CONFIG"},
				Value:   "/etc/sluice/sluice.toml",
			},
		},
		Commands: []*cli.Command{
			serveCommand(),
			configCommand(),
			queueCommand(),
			quotaCommand(),
			operatorCommand(),
			reloadCommand(),
		},
		HideHelpCommand: true,
		ExitErrHandler:  func(*cli.Context, error) {},
	}
}

// jsonFlag is --json, offered by every reading command.
var jsonFlag = &cli.BoolFlag{Name: "json", Usage: "write JSON instead of text"}
