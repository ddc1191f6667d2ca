package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/admin"
)

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:  "reload",
		Usage: "make the daemon re-read its configuration, as SIGHUP does (a file with problems is refused)",
		Action: func(c *cli.Context) error {
			return withDaemon(c, func(cl *admin.Client) error {
				err := cl.Reload(c.Context)
				var re *admin.ReloadError
				if errors.As(err, &re) {
					fmt.Fprintln(c.App.ErrWriter, re.Problems)
					return &exitError{code: 2, err: errors.New("configuration not reloaded: the daemon keeps the running one")}
				}
				if err != nil {
					return err
				}
				fmt.Fprintln(c.App.Writer, "Configuration reloaded")
				return nil
			})
		},
	}
}
