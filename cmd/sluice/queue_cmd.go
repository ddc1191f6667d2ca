package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/config"
)

func queueCommand() *cli.Command {
	return &cli.Command{
		Name:  "queue",
		Usage: "inspect and steer the mail queue",
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "list queued mail, like mailq",
				Flags: []cli.Flag{
					jsonFlag,
					&cli.StringFlag{Name: "operator", Usage: "only mail for this operator"},
					&cli.StringFlag{Name: "state", Usage: "only recipients in this state: queued, deferred, hold, waiting, active"},
					&cli.DurationFlag{Name: "older-than", Usage: "only mail that arrived longer ago than this"},
				},
				Action: queueList,
			},
			{
				Name:      "show",
				Usage:     "show one message: envelope, recipients, attempts, headers",
				ArgsUsage: "QUEUE_ID",
				Flags:     []cli.Flag{jsonFlag},
				Action:    queueShow,
			},
		},
	}
}

// adminClient returns a client for the daemon named by the configuration.
func adminClient(c *cli.Context) (*admin.Client, error) {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return nil, err
	}
	return admin.NewClient(cfg.Admin.Socket), nil
}

func queueList(c *cli.Context) error {
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	msgs, err := cl.List(c.Context, admin.ListFilter{
		Operator: c.String("operator"), State: c.String("state"), OlderThan: c.Duration("older-than"),
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		for _, m := range msgs {
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	}
	writeMailq(c.App.Writer, msgs)
	return nil
}

// writeMailq prints messages in Postfix's mailq layout, with sluice's
// priority and operator after the sender.
func writeMailq(w io.Writer, msgs []admin.Message) {
	if len(msgs) == 0 {
		fmt.Fprintln(w, "Mail queue is empty")
		return
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].ArrivalTime < msgs[j].ArrivalTime })
	fmt.Fprintln(w, "-Queue ID-    --Size-- ----Arrival Time---- -Sender/Recipient-------")
	var total int64
	for _, m := range msgs {
		mark := " "
		switch m.QueueName {
		case "active":
			mark = "*"
		case "hold":
			mark = "!"
		}
		sender := m.Sender
		if sender == "" {
			sender = "MAILER-DAEMON"
		}
		arrival := time.Unix(m.ArrivalTime, 0).Format("Mon Jan _2 15:04:05")
		fmt.Fprintf(w, "%-13s%s %8d %s  %s  (priority %s, operator %s)\n", m.QueueID, mark, m.MessageSize, arrival,
			sender, strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", m.Priority), "0"), "."), m.Operator)
		lastReason := ""
		for _, r := range m.Recipients {
			if r.DelayReason != "" && r.DelayReason != lastReason {
				fmt.Fprintf(w, "%46s(%s)\n", "", r.DelayReason)
				lastReason = r.DelayReason
			}
			fmt.Fprintf(w, "%46s%s\n", "", r.Address)
		}
		fmt.Fprintln(w)
		total += m.MessageSize
	}
	plural := "s"
	if len(msgs) == 1 {
		plural = ""
	}
	fmt.Fprintf(w, "-- %d Kbytes in %d Request%s.\n", (total+1023)/1024, len(msgs), plural)
}

func queueShow(c *cli.Context) error {
	if c.NArg() != 1 {
		return fmt.Errorf("queue show needs one queue ID (see sluice queue list)")
	}
	cl, err := adminClient(c)
	if err != nil {
		return err
	}
	d, err := cl.Show(c.Context, c.Args().First())
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(d)
	}
	writeShow(c.App.Writer, d)
	return nil
}

func writeShow(w io.Writer, d *admin.MessageDetail) {
	sender := d.Sender
	if sender == "" {
		sender = "<>"
	}
	fmt.Fprintf(w, "Queue ID:  %s\nSender:    %s\nArrival:   %s\nSize:      %d\nPriority:  %g\n",
		d.QueueID, sender, d.ArrivalTime.Format(time.RFC1123Z), d.MessageSize, d.Priority)
	if d.Held {
		fmt.Fprintln(w, "Held:      yes")
	}
	if d.ClientIP != "" {
		fmt.Fprintf(w, "Client:    %s (%s)\n", d.ClientHelo, d.ClientIP)
	}
	if d.Ret != "" || d.EnvID != "" {
		fmt.Fprintf(w, "DSN:       RET=%s ENVID=%s\n", d.Ret, d.EnvID)
	}
	fmt.Fprintln(w, "\nRecipients:")
	for _, r := range d.Recipients {
		fmt.Fprintf(w, "  %s\n    state: %s, operator: %s, attempts: %d\n", r.Address, r.State, r.Operator, r.Attempts)
		if !r.LastAttempt.IsZero() {
			fmt.Fprintf(w, "    last attempt: %s\n", r.LastAttempt.Format(time.RFC3339))
		}
		if r.LastReply != "" {
			fmt.Fprintf(w, "    last reply: %s\n", r.LastReply)
		}
		if !r.NextAttempt.IsZero() && (r.State == "deferred" || r.State == "queued") {
			fmt.Fprintf(w, "    next attempt: %s\n", r.NextAttempt.Format(time.RFC3339))
		}
		if !r.ETA.IsZero() {
			fmt.Fprintf(w, "    estimated send: %s\n", r.ETA.Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, "\nHeaders:\n%s", strings.ReplaceAll(d.Headers, "\r\n", "\n"))
}
