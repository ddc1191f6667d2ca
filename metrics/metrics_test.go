package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluice-mta/sluice/scheduler"
)

var _ scheduler.Events = (*Metrics)(nil)

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
}

// fakeSource answers Snapshot with a fixed snapshot, or blocks until the
// context ends when block is set.
type fakeSource struct {
	snap  *scheduler.Snapshot
	block bool
}

func (f fakeSource) Snapshot(ctx context.Context) (*scheduler.Snapshot, error) {
	if f.block {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return f.snap, nil
}

var reset = time.Date(2025, 11, 3, 11, 0, 0, 0, time.UTC)

func testSnapshot() *scheduler.Snapshot {
	return &scheduler.Snapshot{Operators: []scheduler.OperatorStatus{
		{Key: "bigmail", Label: "bigmail", Quota: 100, UsedMilli: 12500, WindowEnd: reset,
			QueuedByPriority: map[uint32]int{1000: 3, 5000: 2}, Waiting: 4, WaitingByPriority: map[uint32]int{1000: 3, 2000: 1}},
		{Key: "default:a.test", Label: "default", Quota: 10, UsedMilli: 10000, Spent: true, WindowEnd: reset,
			QueuedByPriority: map[uint32]int{1000: 1}},
		{Key: "default:b.test", Label: "default", Quota: 10, UsedMilli: 2000, WindowEnd: reset,
			QueuedByPriority: map[uint32]int{2500: 1}},
		{Key: "route:corp.test", Label: "route:corp.test", SuspendedUntil: reset,
			QueuedByPriority: map[uint32]int{1000: 7}},
	}}
}

// scrape fetches /metrics through the handler and parses it with the
// Prometheus text parser.
func scrape(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s\n%s", resp.Status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	return fams
}

// value finds the sample of family name whose labels include want.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestEventsMoveTheCounters(t *testing.T) {
	m, err := New(Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	m.Delivery("bigmail", "sent", 300*time.Millisecond)
	m.Delivery("bigmail", "sent", 200*time.Millisecond)
	m.Delivery("bigmail", "bounced", 100*time.Millisecond)
	m.Delivery("", "bounced", 0) // an administrator's bounce: no transaction
	m.Reply("bigmail", 250)
	m.Reply("bigmail", 550)
	m.Reply("bigmail", 0) // no reply code: not counted
	m.Commit(2*time.Millisecond, 3)
	m.Inbound(InboundAccepted)
	m.Inbound(InboundTempfail)
	m.Inbound("something else")
	fams := scrape(t, m)
	tests := []struct {
		name   string
		family string
		labels map[string]string
		want   float64
	}{
		{"sent", "sluice_deliveries_total", map[string]string{"operator": "bigmail", "status": "sent"}, 2},
		{"bounced", "sluice_deliveries_total", map[string]string{"operator": "bigmail", "status": "bounced"}, 1},
		{"bounced by hand", "sluice_deliveries_total", map[string]string{"operator": "none", "status": "bounced"}, 1},
		{"2xx replies", "sluice_smtp_replies_total", map[string]string{"operator": "bigmail", "class": "2xx"}, 1},
		{"5xx replies", "sluice_smtp_replies_total", map[string]string{"operator": "bigmail", "class": "5xx"}, 1},
		{"accepted", "sluice_inbound_messages_total", map[string]string{"result": "accepted"}, 1},
		{"tempfail", "sluice_inbound_messages_total", map[string]string{"result": "tempfail"}, 1},
		{"rejected at zero", "sluice_inbound_messages_total", map[string]string{"result": "rejected"}, 0},
		{"delivery durations observed", "sluice_delivery_duration_seconds", nil, 3},
		{"commits observed", "sluice_queue_commit_duration_seconds", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := value(fams, tt.family, tt.labels)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.family, tt.labels, got, ok, tt.want)
			}
		})
	}
	if n := len(fams["sluice_inbound_messages_total"].GetMetric()); n != 3 {
		t.Errorf("sluice_inbound_messages_total has %d series, want 3 (an unknown result is not a label)", n)
	}
	if fams["go_goroutines"] == nil || fams["process_cpu_seconds_total"] == nil {
		t.Errorf("the Go and process collectors are missing")
	}
}

func TestGaugesFromTheSnapshot(t *testing.T) {
	m, err := New(Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	m.SetSource(fakeSource{snap: testSnapshot()})
	fams := scrape(t, m)
	rc := "sluice_queue_recipients"
	tests := []struct {
		name   string
		family string
		labels map[string]string
		want   float64
	}{
		{"ready p1", rc, map[string]string{"operator": "bigmail", "state": "queued", "priority": "1"}, 3},
		{"ready p5", rc, map[string]string{"operator": "bigmail", "state": "queued", "priority": "5"}, 2},
		{"deferred p1", rc, map[string]string{"operator": "bigmail", "state": "deferred", "priority": "1"}, 3},
		{"deferred p2", rc, map[string]string{"operator": "bigmail", "state": "deferred", "priority": "2"}, 1},
		{"default spent: waiting", rc, map[string]string{"operator": "default", "state": "waiting", "priority": "1"}, 1},
		{"default with budget: queued", rc, map[string]string{"operator": "default", "state": "queued", "priority": "2.5"}, 1},
		{"suspended route: waiting", rc, map[string]string{"operator": "route:corp.test", "state": "waiting", "priority": "1"}, 7},
		{"used", "sluice_budget_used_units", map[string]string{"operator": "bigmail"}, 12.5},
		{"quota", "sluice_budget_quota_units", map[string]string{"operator": "bigmail"}, 100},
		{"default used, summed", "sluice_budget_used_units", map[string]string{"operator": "default"}, 12},
		{"default quota, summed", "sluice_budget_quota_units", map[string]string{"operator": "default"}, 20},
		{"reset", "sluice_budget_window_reset_timestamp_seconds", map[string]string{"operator": "bigmail"}, float64(reset.Unix())},
		{"suspended", "sluice_operator_suspended", map[string]string{"operator": "route:corp.test"}, 1},
		{"not suspended", "sluice_operator_suspended", map[string]string{"operator": "bigmail"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := value(fams, tt.family, tt.labels)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.family, tt.labels, got, ok, tt.want)
			}
		})
	}
	if _, ok := value(fams, "sluice_budget_quota_units", map[string]string{"operator": "route:corp.test"}); ok {
		t.Errorf("a route without a quota has a quota gauge")
	}
}

func TestSlowSchedulerLeavesTheCounters(t *testing.T) {
	m, err := New(Options{Logger: testLogger(t), SnapshotTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.SetSource(fakeSource{block: true})
	m.Delivery("bigmail", "sent", time.Second)
	fams := scrape(t, m)
	if fams["sluice_queue_recipients"] != nil {
		t.Errorf("gauges exported although the scheduler did not answer")
	}
	if got, _ := value(fams, "sluice_deliveries_total", nil); got != 1 {
		t.Errorf("sluice_deliveries_total = %v, want 1", got)
	}
}

func TestFormatPriority(t *testing.T) {
	for milli, want := range map[uint32]string{1000: "1", 5000: "5", 2500: "2.5", 1250: "1.25", 10001: "10.001"} {
		if got := formatPriority(milli); got != want {
			t.Errorf("formatPriority(%d) = %q, want %q", milli, got, want)
		}
	}
}

func TestHealthHandler(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		body string
	}{
		{"healthy", nil, http.StatusOK, "ok\n"},
		{"unhealthy", errors.New("store closed"), http.StatusServiceUnavailable, "unhealthy: store closed\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			HealthHandler(func(context.Context) error { return tt.err }).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			if rec.Code != tt.code || rec.Body.String() != tt.body {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tt.code, tt.body)
			}
		})
	}
}

func TestServerServesMetricsAndHealth(t *testing.T) {
	m, err := New(Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen("127.0.0.1:0", m, func(context.Context) error { return nil }, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "sluice_inbound_messages_total"} {
		resp, err := http.Get("http://" + s.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %s, body lacks %q", path, resp.Status, want)
		}
	}
}

func TestQuotaStoreGauges(t *testing.T) {
	m, err := New(Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	m.ClockSkew(-1500 * time.Millisecond)
	m.QuotaStoreDown(true)
	m.QuotaStoreDown(false)
	m.QuotaStoreDown(true)
	fams := scrape(t, m)
	for name, want := range map[string]float64{
		"sluice_quota_store_clock_skew_seconds": -1.5,
		"sluice_quota_store_down":               1,
		"sluice_quota_store_outages_total":      2,
	} {
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Errorf("%s missing", name)
			continue
		}
		mt := f.GetMetric()[0]
		got := mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
