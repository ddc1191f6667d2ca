package metrics

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-mta/sluice/scheduler"
)

var (
	descRecipients = prometheus.NewDesc("sluice_queue_recipients",
		"Pending recipients by operator, state and priority. queued: ready to go; waiting: ready but the "+
			"operator's budget is spent or it is suspended; deferred: waiting for a retry.",
		[]string{"operator", "state", "priority"}, nil)
	descUsed = prometheus.NewDesc("sluice_budget_used_units",
		"Budget units used in the operator's current window (a recipient of priority N costs 1/N).",
		[]string{"operator"}, nil)
	descQuota = prometheus.NewDesc("sluice_budget_quota_units",
		"Budget units the operator allows per window.", []string{"operator"}, nil)
	descReset = prometheus.NewDesc("sluice_budget_window_reset_timestamp_seconds",
		"When the operator's current window ends and its budget refills, as a Unix time.", []string{"operator"}, nil)
	descSuspended = prometheus.NewDesc("sluice_operator_suspended",
		"1 while the operator is suspended (by an administrator or a response rule), else 0.", []string{"operator"}, nil)
)

// Describe sends the fixed descriptions of the gauges.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecipients, descUsed, descQuota, descReset, descSuspended} {
		ch <- d
	}
}

// Collect reads the scheduler once, with a timeout, and writes the gauges.
// If the scheduler does not answer in time the gauges are left out of this
// scrape (and a warning logged); the counters are still served.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.source()
	if src == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	snap, err := src.Snapshot(ctx)
	if err != nil {
		c.log.Warn("metrics: cannot read the scheduler's state", "err", err)
		return
	}
	for _, g := range gauges(snap) {
		m, err := prometheus.NewConstMetric(g.desc, prometheus.GaugeValue, g.value, g.labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(g.desc, err)
		}
		ch <- m
	}
}

// gauge is one sample to export.
type gauge struct {
	desc   *prometheus.Desc
	value  float64
	labels []string
}

// opAgg adds up the operators that share a label ("default").
type opAgg struct {
	hasQuota  bool
	usedMilli int64
	quota     int64
	reset     float64
	suspended bool
}

// gauges computes every scrape-time sample from a snapshot, summing the
// destinations that share a label.
func gauges(snap *scheduler.Snapshot) []gauge {
	rcpts, ops := aggregate(snap)
	var out []gauge
	for k, n := range rcpts {
		out = append(out, gauge{descRecipients, float64(n), []string{k[0], k[1], k[2]}})
	}
	for label, a := range ops {
		out = append(out, gauge{descSuspended, boolFloat(a.suspended), []string{label}})
		if a.hasQuota {
			out = append(out,
				gauge{descUsed, float64(a.usedMilli) / 1000, []string{label}},
				gauge{descQuota, float64(a.quota), []string{label}},
				gauge{descReset, a.reset, []string{label}})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.Join(out[i].labels, "\x00") < strings.Join(out[j].labels, "\x00")
	})
	return out
}

// aggregate adds up the snapshot by operator label: recipients by
// (operator, state, priority), and budgets and suspensions by operator.
func aggregate(snap *scheduler.Snapshot) (map[[3]string]int, map[string]*opAgg) {
	rcpts := map[[3]string]int{}
	ops := map[string]*opAgg{}
	for i := range snap.Operators {
		o := &snap.Operators[i]
		label := operatorLabel(o.Label)
		a := ops[label]
		if a == nil {
			a = &opAgg{}
			ops[label] = a
		}
		a.suspended = a.suspended || !o.SuspendedUntil.IsZero()
		if o.Quota > 0 {
			a.hasQuota = true
			a.usedMilli += o.UsedMilli
			a.quota += int64(o.Quota)
			a.reset = max(a.reset, float64(o.WindowEnd.Unix()))
		}
		state := "queued"
		if (o.Quota > 0 && o.Spent) || !o.SuspendedUntil.IsZero() {
			state = "waiting"
		}
		for p, n := range o.QueuedByPriority {
			rcpts[[3]string{label, state, formatPriority(p)}] += n
		}
		for p, n := range o.WaitingByPriority {
			rcpts[[3]string{label, "deferred", formatPriority(p)}] += n
		}
	}
	return rcpts, ops
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// formatPriority writes a priority in milli-units as the header gave it:
// 5000 is "5", 2500 is "2.5".
func formatPriority(milli uint32) string {
	s := strconv.FormatUint(uint64(milli/1000), 10)
	if frac := milli % 1000; frac != 0 {
		s += strings.TrimRight("."+strconv.FormatUint(uint64(1000+frac), 10)[1:], "0")
	}
	return s
}
