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
)

func quotaCommand() *cli.Command {
	return &cli.Command{
		Name:   "quota",
		Usage:  "show each operator's budget: used/quota this window, time to reset, backlog",
		Flags:  []cli.Flag{jsonFlag},
		Action: quotaShow,
	}
}

func quotaShow(c *cli.Context) error {
	return withAPI(c, accessRead, func(x api) error {
		st, err := x.Quota(c.Context)
		if err != nil {
			return err
		}
		if c.Bool("json") {
			return json.NewEncoder(c.App.Writer).Encode(st)
		}
		writeQuota(c.App.Writer, st, time.Now())
		return nil
	})
}

func writeQuota(w io.Writer, st []admin.OperatorStatus, now time.Time) {
	if len(st) == 0 {
		fmt.Fprintln(w, "No operator has had mail yet")
		return
	}
	fmt.Fprintf(w, "%-24s %-21s %-8s %-20s %8s %8s  %s\n", "OPERATOR", "USED/QUOTA", "WINDOW", "RESETS", "QUEUED", "WAITING", "NOTES")
	for _, o := range st {
		used, resets := "-", "-"
		if o.Quota > 0 {
			used = fmt.Sprintf("%d.%03d/%d", o.UsedMilli/1000, o.UsedMilli%1000, o.Quota)
			resets = fmt.Sprintf("%s (in %s)", o.WindowEnd.Local().Format("15:04:05"), o.WindowEnd.Sub(now).Round(time.Second))
		}
		var notes []string
		if len(o.QueuedByPriority) > 0 {
			var ps []string
			for p, n := range o.QueuedByPriority {
				ps = append(ps, fmt.Sprintf("p%s:%d", p, n))
			}
			sort.Strings(ps)
			notes = append(notes, strings.Join(ps, " "))
		}
		if !o.DrainETA.IsZero() && o.Quota > 0 {
			notes = append(notes, "drained by "+o.DrainETA.Local().Format("Jan _2 15:04"))
		}
		if !o.SuspendedUntil.IsZero() {
			notes = append(notes, "SUSPENDED until "+o.SuspendedUntil.Local().Format("15:04:05"))
		}
		if o.UsageError != "" {
			notes = append(notes, "usage is this relay's estimate: "+o.UsageError)
		}
		if o.ThrottleLevel > 0 {
			notes = append(notes, fmt.Sprintf("throttled (level %d)", o.ThrottleLevel))
		}
		window := strings.TrimSuffix(strings.TrimSuffix(o.Window, "0s"), "0m")
		fmt.Fprintf(w, "%-24s %-21s %-8s %-20s %8d %8d  %s\n", o.Name, used, window, resets, o.Queued, o.Waiting, strings.Join(notes, "; "))
	}
	fmt.Fprintf(w, "(usage counted in the %s store)\n", st[0].Backend)
}
