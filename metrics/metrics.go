// Package metrics exports sluice's Prometheus metrics. It implements the
// scheduler's Events hook (deliveries, replies), the queue's commit hook
// and smtpd's inbound hook as counters and histograms, and reads the
// scheduler's state at scrape time for the gauges (queued recipients,
// budgets, suspensions), so that a gauge can never drift from what the
// scheduler knows.
//
// Labels stay bounded: an operator label is the operator's name, a route's
// "route:…" key or "default" for every destination without an operator
// (aggregated); never a sender, a recipient or a queue ID. The package owns
// no sluice state and changes nothing.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-mta/sluice/scheduler"
)

// Inbound results, the values of sluice_inbound_messages_total{result}.
const (
	InboundAccepted = "accepted" // committed, 250 given
	InboundRejected = "rejected" // refused with a 5xx
	InboundTempfail = "tempfail" // refused with a 4xx: the client retries
)

// Snapshotter is the scheduler as the scrape-time collector reads it.
type Snapshotter interface {
	Snapshot(ctx context.Context) (*scheduler.Snapshot, error)
}

// Options configure Metrics.
type Options struct {
	// Source is read at every scrape for the gauges; it may be set later
	// with SetSource (the scheduler is built after the store, whose commit
	// hook already reports here).
	Source Snapshotter
	// SnapshotTimeout bounds the wait for the scheduler at scrape time.
	// Zero means 2s.
	SnapshotTimeout time.Duration
	Logger          *slog.Logger
}

// Metrics holds every sluice metric in its own registry. Its methods are
// safe for concurrent use and never block.
type Metrics struct {
	reg        *prometheus.Registry
	deliveries *prometheus.CounterVec
	replies    *prometheus.CounterVec
	inbound    *prometheus.CounterVec
	deliveryD  prometheus.Histogram
	commitD    prometheus.Histogram
	skew       prometheus.Gauge
	storeDown  prometheus.Gauge
	outages    prometheus.Counter
	state      *stateCollector
}

// New builds the metrics and registers them, with the Go runtime and
// process collectors.
func New(o Options) (*Metrics, error) {
	if o.SnapshotTimeout <= 0 {
		o.SnapshotTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_deliveries_total",
			Help: "Recipient delivery attempts by outcome: sent, deferred, bounced or expired.",
		}, []string{"operator", "status"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_smtp_replies_total",
			Help: "SMTP replies received from remote servers, by reply class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"operator", "class"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_inbound_messages_total",
			Help: "Inbound messages accepted, and MAIL, RCPT or DATA commands refused (rejected: 5xx, tempfail: 4xx).",
		}, []string{"result"}),
		deliveryD: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_delivery_duration_seconds",
			Help:    "Duration of the SMTP transaction (connection setup and transfer) behind each recipient attempt.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12), // 50ms to about 100s
		}),
		commitD: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_queue_commit_duration_seconds",
			Help:    "Duration of each queue commit (one bbolt transaction and fsync, shared by concurrent changes).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms to about 4s
		}),
		skew: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_quota_store_clock_skew_seconds",
			Help: "This relay's clock minus the shared budget store's (Redis TIME), as last measured; window keys come from each relay's clock.",
		}),
		storeDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_quota_store_down",
			Help: "1 while the shared budget store cannot be reached (operators with a quota wait, or use local_share).",
		}),
		outages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_quota_store_outages_total",
			Help: "Outages of the shared budget store since start.",
		}),
		state: &stateCollector{timeout: o.SnapshotTimeout, log: o.Logger, src: o.Source},
	}
	for _, c := range []prometheus.Collector{
		m.deliveries, m.replies, m.inbound, m.deliveryD, m.commitD, m.skew, m.storeDown, m.outages, m.state,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, r := range []string{InboundAccepted, InboundRejected, InboundTempfail} {
		m.inbound.WithLabelValues(r) // present at zero from the start
	}
	return m, nil
}

// ClockSkew records a measured difference between this relay's clock and
// the shared budget store's.
func (m *Metrics) ClockSkew(d time.Duration) { m.skew.Set(d.Seconds()) }

// QuotaStoreDown records the shared budget store going down or coming back.
func (m *Metrics) QuotaStoreDown(down bool) {
	if down {
		m.storeDown.Set(1)
		m.outages.Inc()
		return
	}
	m.storeDown.Set(0)
}

// SetSource sets where the scrape-time gauges come from.
func (m *Metrics) SetSource(s Snapshotter) { m.state.setSource(s) }

// Delivery counts one recipient's attempt (scheduler.Events).
func (m *Metrics) Delivery(operator, status string, d time.Duration) {
	m.deliveries.WithLabelValues(operatorLabel(operator), status).Inc()
	if d > 0 {
		m.deliveryD.Observe(d.Seconds())
	}
}

// Reply counts one remote SMTP reply by its class (scheduler.Events).
func (m *Metrics) Reply(operator string, code int) {
	if code < 200 || code > 599 {
		return
	}
	m.replies.WithLabelValues(operatorLabel(operator), strconv.Itoa(code/100)+"xx").Inc()
}

// Budget is part of scheduler.Events; the budget gauges are read from the
// scheduler at scrape time instead, where the destinations that share the
// "default" label can be added up.
func (m *Metrics) Budget(string, int64, int64, time.Time) {}

// OperatorState is part of scheduler.Events; suspensions are read at
// scrape time too (a suspension also ends by itself when it expires).
func (m *Metrics) OperatorState(string, bool) {}

// Commit observes one queue commit (queue.Options.OnCommit).
func (m *Metrics) Commit(d time.Duration, _ int) { m.commitD.Observe(d.Seconds()) }

// Inbound counts one inbound outcome (smtpd.Options.OnMessage).
func (m *Metrics) Inbound(result string) {
	switch result {
	case InboundAccepted, InboundRejected, InboundTempfail:
		m.inbound.WithLabelValues(result).Inc()
	}
}

// Gatherer returns the registry, for tests and for serving.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// Handler serves the metrics in the Prometheus exposition format. A
// collector that fails leaves the others served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// operatorLabel keeps the label non-empty: the scheduler passes no label
// for recipients an administrator bounced by hand.
func operatorLabel(op string) string {
	if op == "" {
		return "none"
	}
	return op
}

// stateCollector turns a scheduler snapshot into gauges at scrape time.
type stateCollector struct {
	timeout time.Duration
	log     *slog.Logger
	mu      sync.Mutex
	src     Snapshotter
}

func (c *stateCollector) setSource(s Snapshotter) {
	c.mu.Lock()
	c.src = s
	c.mu.Unlock()
}

func (c *stateCollector) source() Snapshotter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.src
}
