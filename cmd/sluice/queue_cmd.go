package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/admin"
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
			{
				Name:      "cat",
				Usage:     "write one message as stored, headers and body",
				ArgsUsage: "QUEUE_ID",
				Flags:     []cli.Flag{jsonFlag},
				Action:    queueCat,
			},
			actionCommand(admin.ActionDelete, "remove messages without any report (postsuper -d)", accessWrite),
			actionCommand(admin.ActionHold, "put messages on hold: nothing is sent until release (postsuper -h)", accessWrite),
			actionCommand(admin.ActionRelease, "take messages off hold (postsuper -H)", accessWrite),
			actionCommand(admin.ActionRetry, "make deferred recipients due now; budgets still apply (needs the daemon)", accessDaemon),
			actionCommand(admin.ActionBounce, "fail the pending recipients and report to the sender (needs the daemon)", accessDaemon),
		},
	}
}

func queueList(c *cli.Context) error {
	f := admin.ListFilter{Operator: c.String("operator"), State: c.String("state"), OlderThan: c.Duration("older-than")}
	return withAPI(c, accessRead, func(x api) error {
		msgs, err := x.List(c.Context, f)
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
	})
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
	ids, err := args(c)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return usageError("queue show needs one queue ID (see sluice queue list)")
	}
	return withAPI(c, accessRead, func(x api) error {
		d, err := x.Show(c.Context, ids[0])
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return json.NewEncoder(c.App.Writer).Encode(d)
		}
		writeShow(c.App.Writer, d)
		return nil
	})
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
	for _, b := range d.Returned {
		fmt.Fprintf(w, "\nReturned later: %s\n  at %s from %s: %s %s\n", b.Recipient, b.At.Format(time.RFC3339), b.Client, b.Action, b.Status)
		if b.Diagnostic != "" {
			fmt.Fprintf(w, "  diagnostic: %s\n", b.Diagnostic)
		}
	}
	if d.Completed {
		fmt.Fprintln(w, "\n(no longer queued: remembered for late bounces)")
	}
	fmt.Fprintf(w, "\nHeaders:\n%s", strings.ReplaceAll(d.Headers, "\r\n", "\n"))
}

// catJSON is sluice queue cat --json: the message as text when it is
// valid UTF-8, else in base64 (encoding/json would replace bad bytes).
type catJSON struct {
	QueueID       string `json:"queue_id"`
	Size          int    `json:"size"`
	Message       string `json:"message,omitempty"`
	MessageBase64 []byte `json:"message_base64,omitempty"`
}

func queueCat(c *cli.Context) error {
	ids, err := args(c)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return usageError("queue cat needs one queue ID (see sluice queue list)")
	}
	id := ids[0]
	return withAPI(c, accessRead, func(x api) error {
		raw, err := x.Raw(c.Context, id)
		if err != nil {
			return err
		}
		if !c.Bool("json") {
			_, err := c.App.Writer.Write(raw)
			return err
		}
		out := catJSON{QueueID: id, Size: len(raw)}
		if utf8.Valid(raw) {
			out.Message = string(raw)
		} else {
			out.MessageBase64 = raw
		}
		return json.NewEncoder(c.App.Writer).Encode(out)
	})
}

// actionCommand builds one of sluice queue delete|hold|release|retry|bounce.
func actionCommand(a admin.Action, usage string, acc access) *cli.Command {
	return &cli.Command{
		Name:      string(a),
		Usage:     usage,
		ArgsUsage: "QUEUE_ID... | ALL | - (IDs from standard input)",
		Flags:     []cli.Flag{jsonFlag},
		Action: func(c *cli.Context) error {
			ids, err := args(c)
			if err != nil {
				return err
			}
			req, err := actionRequest(ids, c.App.Reader)
			if err != nil {
				return err
			}
			return withAPI(c, acc, func(x api) error {
				res, err := x.Act(c.Context, a, req)
				if errors.Is(err, errNeedsDaemon) {
					return fmt.Errorf("sluice queue %s needs the running daemon: start it (systemctl start sluice)", a)
				}
				if err != nil {
					return err
				}
				return writeActionResult(c, res)
			})
		},
	}
}

// actionRequest reads the IDs an action applies to, as postsuper does: ALL
// for every message, - for IDs on standard input (separated by white
// space, so mailq-style lists can be piped in).
func actionRequest(args []string, stdin io.Reader) (admin.ActionRequest, error) {
	var req admin.ActionRequest
	if len(args) == 0 {
		return req, usageError("give queue IDs, ALL, or - to read IDs from standard input")
	}
	for _, a := range args {
		switch a {
		case "ALL":
			req.All = true
		case "-":
			sc := bufio.NewScanner(stdin)
			sc.Split(bufio.ScanWords)
			for sc.Scan() {
				req.IDs = append(req.IDs, sc.Text())
			}
			if err := sc.Err(); err != nil {
				return req, fmt.Errorf("reading queue IDs from standard input: %w", err)
			}
		default:
			req.IDs = append(req.IDs, a)
		}
	}
	if req.All {
		req.IDs = nil
	} else if len(req.IDs) == 0 {
		return req, usageError("no queue IDs on standard input")
	}
	return req, nil
}

// actionWords are postsuper's words for what an action did.
var actionWords = map[admin.Action]string{
	admin.ActionDelete:  "Deleted",
	admin.ActionHold:    "Placed on hold",
	admin.ActionRelease: "Released from hold",
	admin.ActionRetry:   "Requeued",
	admin.ActionBounce:  "Bounced",
}

func writeActionResult(c *cli.Context, res *admin.ActionResult) error {
	for _, id := range res.Unknown {
		fmt.Fprintf(c.App.ErrWriter, "sluice: %s: no such message in the queue\n", id)
	}
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(res)
	}
	plural := "s"
	if res.Count == 1 {
		plural = ""
	}
	fmt.Fprintf(c.App.Writer, "%s: %d message%s\n", actionWords[res.Action], res.Count, plural)
	return nil
}
