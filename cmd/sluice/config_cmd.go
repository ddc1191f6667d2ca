package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/config"
)

func configCommand() *cli.Command {
	return &cli.Command{
		Name:  "config",
		Usage: "work with the configuration file",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "load the configuration and report every problem (exit status 2 if any)",
			Action: func(c *cli.Context) error {
				path := c.String("config")
				if _, err := config.Load(path); err != nil {
					fmt.Fprintln(c.App.ErrWriter, err)
					return &exitError{code: 2, err: fmt.Errorf("%s has problems", path)}
				}
				fmt.Fprintf(c.App.Writer, "%s: ok\n", path)
				return nil
			},
		}},
	}
}
