package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/admin"
)

// defaultSuspension is how long sluice operator suspend lasts without
// --for: long enough to look into a block, short enough that a forgotten
// suspension ends by itself.
const defaultSuspension = time.Hour

func operatorCommand() *cli.Command {
	return &cli.Command{
		Name:  "operator",
		Usage: "suspend or resume delivery to one operator (needs the daemon)",
		Subcommands: []*cli.Command{
			{
				Name:      "suspend",
				Usage:     "open no new connection to the operator for a while; its mail waits (no attempt, no backoff)",
				ArgsUsage: "NAME",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.DurationFlag{Name: "for", Value: defaultSuspension, Usage: "how long"},
					&cli.StringFlag{Name: "reason", Usage: "shown by sluice quota and in the log"},
				},
				Action: operatorSuspend,
			},
			{
				Name:      "resume",
				Usage:     "lift a suspension and any throttling at once",
				ArgsUsage: "NAME",
				Flags:     []cli.Flag{jsonFlag},
				Action:    operatorResume,
			},
		},
	}
}

func operatorSuspend(c *cli.Context) error {
	names, err := args(c)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageError("operator suspend needs one operator name (see sluice quota)")
	}
	name, d := names[0], c.Duration("for")
	if d <= 0 {
		return usageError("--for must be a positive duration such as 30m or 2h")
	}
	return withDaemon(c, func(cl *admin.Client) error {
		until, err := cl.Suspend(c.Context, name, d, c.String("reason"))
		if err != nil {
			return operatorError(err)
		}
		if c.Bool("json") {
			return json.NewEncoder(c.App.Writer).Encode(admin.SuspendResult{Operator: name, SuspendedUntil: until})
		}
		fmt.Fprintf(c.App.Writer, "Suspended %s until %s (for %s)\n", name, until.Local().Format("Jan _2 15:04:05"), d)
		return nil
	})
}

func operatorResume(c *cli.Context) error {
	names, err := args(c)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageError("operator resume needs one operator name (see sluice quota)")
	}
	name := names[0]
	return withDaemon(c, func(cl *admin.Client) error {
		if err := cl.Resume(c.Context, name); err != nil {
			return operatorError(err)
		}
		if c.Bool("json") {
			return json.NewEncoder(c.App.Writer).Encode(map[string]string{"operator": name})
		}
		fmt.Fprintf(c.App.Writer, "Resumed %s\n", name)
		return nil
	})
}

// operatorError gives an unknown operator exit status 2, like other usage
// mistakes.
func operatorError(err error) error {
	var uo *admin.UnknownOperatorError
	if errors.As(err, &uo) {
		return &exitError{code: 2, err: err}
	}
	return err
}
