package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one case's result at every target.
type row struct {
	Case     benchCase
	Messages int // per run, after -scale
	Sluice   summary
	Postfix  summary
	Bound    summary // smtp-source straight into smtp-sink
	Base     summary // the -baseline sluice, when there is one
}

// Goals from issue 8, checked on the 2 KB / 20 sessions / 1 recipient row.
const (
	goalCase        = "2KB/s20/r1"
	goalAcceptRatio = 5.0  // sluice accept >= 5x Postfix accept
	goalE2ERatio    = 3.0  // sluice e2e >= 3x Postfix e2e
	goalBoundShare  = 0.40 // sluice e2e >= 40% of the no-relay e2e
)

// column is one column of the table.
type column struct {
	title string
	cell  func(r row) string // "-" stands for what was not measured
}

// columns lists the table's columns; the baseline's only when there is one.
func columns(withBase bool) []column {
	cols := []column{
		{"case", func(r row) string { return r.Case.Name }},
		{"msgs", func(r row) string { return fmt.Sprint(r.Messages) }},
		{"sluice acc", func(r row) string { return rateCell(r.Sluice, r.Sluice.Accept) }},
		{"sluice e2e", func(r row) string { return rateCell(r.Sluice, r.Sluice.E2E) }},
		{"postfix acc", func(r row) string { return rateCell(r.Postfix, r.Postfix.Accept) }},
		{"postfix e2e", func(r row) string { return rateCell(r.Postfix, r.Postfix.E2E) }},
		{"acc ratio", func(r row) string { return ratioCell(r.Sluice, r.Postfix, r.Sluice.Accept, r.Postfix.Accept) }},
		{"e2e ratio", func(r row) string { return ratioCell(r.Sluice, r.Postfix, r.Sluice.E2E, r.Postfix.E2E) }},
		{"bound acc", func(r row) string { return rateCell(r.Bound, r.Bound.Accept) }},
		{"bound e2e", func(r row) string { return rateCell(r.Bound, r.Bound.E2E) }},
		{"e2e/bound", func(r row) string { return shareCell(r.Sluice, r.Bound) }},
		{"sluice cpu/msg", func(r row) string { return cpuCell(r.Sluice) }},
		{"postfix cpu/msg", func(r row) string { return cpuCell(r.Postfix) }},
	}
	if withBase {
		cols = append(cols,
			column{"base acc", func(r row) string { return rateCell(r.Base, r.Base.Accept) }},
			column{"base e2e", func(r row) string { return rateCell(r.Base, r.Base.E2E) }},
			column{"base cpu/msg", func(r row) string { return cpuCell(r.Base) }})
	}
	return cols
}

func measured(s summary) bool { return s.Runs > 0 && s.Err == nil }

func rateCell(s summary, v float64) string {
	if !measured(s) {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func ratioCell(a, b summary, va, vb float64) string {
	if !measured(a) || !measured(b) || vb <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fx", va/vb)
}

func shareCell(s, bound summary) string {
	if !measured(s) || !measured(bound) || bound.E2E <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*s.E2E/bound.E2E)
}

func cpuCell(s summary) string {
	if !measured(s) || !s.HaveCPU {
		return "-"
	}
	return fmt.Sprintf("%.2f ms", float64(s.CPUPerMsg)/float64(time.Millisecond))
}

// writeText writes the table aligned in columns.
func writeText(w io.Writer, cols []column, rows []row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, line := range tableLines(cols, rows) {
		fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
	}
	return tw.Flush()
}

// writeMarkdown writes the table for docs/performance.md.
func writeMarkdown(w io.Writer, cols []column, rows []row) error {
	var b strings.Builder
	for i, line := range tableLines(cols, rows) {
		b.WriteString("| " + strings.Join(line, " | ") + " |\n")
		if i == 0 {
			b.WriteString("|" + strings.Repeat("---:|", len(cols)) + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tableLines is the header line and one line per row.
func tableLines(cols []column, rows []row) [][]string {
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = c.title
	}
	out := [][]string{head}
	for _, r := range rows {
		line := make([]string, len(cols))
		for i, c := range cols {
			line[i] = c.cell(r)
		}
		out = append(out, line)
	}
	return out
}

// goalLines checks the targets of issue 8 on the goal row.
func goalLines(rows []row) []string {
	for _, r := range rows {
		if r.Case.Name != goalCase {
			continue
		}
		var out []string
		if measured(r.Sluice) && measured(r.Postfix) && r.Postfix.Accept > 0 && r.Postfix.E2E > 0 {
			out = append(out,
				goalLine("accept >= 5x Postfix", r.Sluice.Accept/r.Postfix.Accept, goalAcceptRatio, "%.1fx"),
				goalLine("e2e >= 3x Postfix", r.Sluice.E2E/r.Postfix.E2E, goalE2ERatio, "%.1fx"))
		}
		if measured(r.Sluice) && measured(r.Bound) && r.Bound.E2E > 0 {
			out = append(out, goalLine("e2e >= 40% of the no-relay bound", r.Sluice.E2E/r.Bound.E2E, goalBoundShare, "%.2f"))
		}
		return out
	}
	return nil
}

func goalLine(what string, got, want float64, format string) string {
	verdict := "met"
	if got < want {
		verdict = "NOT met"
	}
	return fmt.Sprintf("goal %s (%s): "+format+" — %s", goalCase, what, got, verdict)
}
