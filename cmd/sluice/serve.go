package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/clock"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/delivery"
	"github.com/sluice-mta/sluice/metrics"
	"github.com/sluice-mta/sluice/queue"
	"github.com/sluice-mta/sluice/redisbudget"
	"github.com/sluice-mta/sluice/scheduler"
	"github.com/sluice-mta/sluice/smtpd"
)

func serveCommand() *cli.Command {
	return withProfiling(&cli.Command{
		Name:  "serve",
		Usage: "run the relay daemon (SIGHUP re-reads the configuration, SIGTERM stops it cleanly)",
		Action: func(c *cli.Context) error {
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				fmt.Fprintln(c.App.ErrWriter, err)
				return &exitError{code: 2, err: errors.New("not started: fix the configuration (sluice config check)")}
			}
			tuneGC()
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			logs := newLogControl(cfg)
			log := newLogger(os.Stderr, cfg.Log.Format, logs)
			return runDaemon(ctx, cfg, deps{Logger: log, Logs: logs, Hangup: hup, Notifier: newNotifier()})
		},
	})
}

// tuneGC lets the heap grow to five times what is live before a
// collection (GOGC=400) unless GOGC is set: the daemon's live heap is small
// (the index is about 40 bytes per queued recipient), and collecting less
// often saves about a tenth of the CPU per relayed message (see
// docs/performance.md).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// deps are what a test may replace when running the daemon in-process.
type deps struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// Started, if set, receives the daemon once it accepts mail.
	Started func(*daemon)
	// Logs, if set, is the logger's level and configuration, which a
	// reload updates.
	Logs *logControl
	// Hangup delivers SIGHUP: each one reloads the configuration.
	Hangup <-chan os.Signal
	// Notifier tells systemd about readiness, reloads and stopping.
	Notifier notifier
}

// daemon is one running relay.
type daemon struct {
	cfg    *config.Config
	log    *slog.Logger
	clock  clock.Clock
	store  *queue.Store
	sched  *scheduler.Scheduler
	smtp   *smtpd.Server
	admin  *admin.Server
	client *delivery.Client
	redis  *redisbudget.Store // nil unless quota_store.backend = "redis"

	metrics    *metrics.Metrics
	metricsSrv *metrics.Server // nil unless admin.metrics_listen is set
	cur        atomic.Pointer[config.Config]
	reloadMu   sync.Mutex
	logs       *logControl
	notifier   notifier
	accepting  atomic.Bool
}

// SMTPAddrs returns the addresses the SMTP listeners are bound to.
func (d *daemon) SMTPAddrs() []net.Addr { return d.smtp.Addrs() }

// runDaemon runs the relay until ctx is cancelled, then shuts it down in
// order: stop accepting mail, let deliveries in flight finish (up to
// shutdown_timeout), stop the admin socket, close the store.
func runDaemon(ctx context.Context, cfg *config.Config, dp deps) error {
	d, err := startDaemon(cfg, dp)
	if err != nil {
		return err
	}
	schedCtx, stopSched := context.WithCancel(context.Background())
	defer stopSched()
	schedDone := make(chan error, 1)
	go func() { schedDone <- d.sched.Run(schedCtx, cfg.ShutdownTimeout) }()
	select {
	case <-d.sched.Ready():
	case err := <-schedDone:
		d.closeAll()
		return err
	}
	if err := d.smtp.Start(); err != nil {
		stopSched()
		<-schedDone
		d.closeAll()
		return err
	}
	adminDone, metricsDone := d.serveControl()
	if d.redis != nil {
		monCtx, stopMon := context.WithCancel(context.Background())
		defer stopMon()
		go d.redis.MonitorClock(monCtx, cfg.QuotaStore.MaxClockSkew, 0, d.metrics.ClockSkew)
	}
	d.accepting.Store(true)
	d.log.Info("sluice started", "version", version, "listen", fmt.Sprint(d.smtp.Addrs()), "admin_socket", cfg.Admin.Socket)
	d.sdNotify(sdReady)
	if dp.Started != nil {
		dp.Started(d)
	}
	runErr := d.wait(ctx, dp.Hangup, adminDone, metricsDone, schedDone)
	d.accepting.Store(false)
	d.sdNotify(sdStopping)
	d.log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	if err := d.smtp.Shutdown(sctx); err != nil {
		d.log.Warn("SMTP sessions cut at shutdown", "err", err)
	}
	cancel()
	stopSched()
	if err := <-schedDone; err != nil && runErr == nil {
		runErr = err
	}
	d.closeAll()
	d.log.Info("sluice stopped")
	return runErr
}

// serveControl serves the admin socket and, if configured, the metrics
// listener; each channel reports its server's end (metricsDone is nil
// without a metrics listener).
func (d *daemon) serveControl() (adminDone, metricsDone chan error) {
	adminDone = make(chan error, 1)
	go func() { adminDone <- d.admin.Serve() }()
	if d.metricsSrv != nil {
		metricsDone = make(chan error, 1)
		go func() { metricsDone <- d.metricsSrv.Serve() }()
		d.log.Info("serving metrics", "addr", d.metricsSrv.Addr().String())
	}
	return adminDone, metricsDone
}

// wait runs until ctx ends (SIGTERM, SIGINT) or a part of the daemon fails,
// reloading the configuration at each SIGHUP.
func (d *daemon) wait(ctx context.Context, hup <-chan os.Signal, adminDone, metricsDone, schedDone chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			d.log.Info("SIGHUP: reloading the configuration", "path", d.config().Path)
			if err := d.reload(ctx); err != nil {
				var re *admin.ReloadError
				if !errors.As(err, &re) { // a refused file is logged by reload
					d.log.Error("reload failed", "err", err)
				}
			}
		case err := <-adminDone:
			d.log.Error("admin socket failed", "err", err)
			return err
		case err := <-metricsDone:
			d.log.Error("metrics listener failed", "err", err)
			return err
		case err := <-schedDone:
			d.log.Error("scheduler stopped", "err", err)
			schedDone <- err
			return err
		}
	}
}

func (d *daemon) closeAll() {
	if d.metricsSrv != nil {
		d.metricsSrv.Close()
	}
	if d.admin != nil {
		d.admin.Close()
	}
	if d.smtp != nil {
		d.smtp.Close()
	}
	if d.redis != nil {
		d.redis.Close()
	}
	if err := d.store.Close(); err != nil {
		d.log.Error("closing the queue", "err", err)
	}
}

// startDaemon opens the store and builds every component; nothing listens
// yet except the admin socket, which is bound here so that a second daemon
// on the same data is refused before it touches anything.
func startDaemon(cfg *config.Config, dp deps) (*daemon, error) {
	log := dp.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	clk := dp.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	d := &daemon{cfg: cfg, log: log, clock: clk, logs: dp.Logs, notifier: dp.Notifier}
	d.cur.Store(cfg)
	m, err := metrics.New(metrics.Options{Logger: log.With("component", "metrics")})
	if err != nil {
		return nil, err
	}
	d.metrics = m
	store, err := queue.Open(queue.Options{
		Path:     filepath.Join(cfg.DataDir, "queue.db"),
		Logger:   log.With("component", "queue"),
		OnCommit: m.Commit,
	})
	if err != nil {
		return nil, err
	}
	d.store = store
	if err := d.build(); err != nil {
		store.Close()
		return nil, err
	}
	return d, nil
}

func (d *daemon) build() error {
	cfg := d.cfg
	res, err := delivery.NewResolver(delivery.ResolverOptions{
		Servers: cfg.DNS.Servers, Timeout: cfg.DNS.Timeout, Logger: d.log.With("component", "dns"), Now: d.clock.Now,
	})
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	d.client = delivery.New(delivery.Options{
		Helo: cfg.Delivery.HELO, Port: cfg.Delivery.Port,
		ConnectTimeout: cfg.Delivery.ConnectTimeout, CommandTimeout: cfg.Delivery.CommandTimeout,
		DataTimeout: cfg.Delivery.DataTimeout, Resolver: res, MaxMXHosts: cfg.Delivery.MaxMXHosts,
		OwnAddrs: ownAddrs(cfg.SMTP.Listen), AllowPrivateMX: cfg.Delivery.AllowPrivateMX,
		DKIM: dkimKeys(cfg.DKIM), Logger: d.log.With("component", "delivery"),
	})
	budget, err := d.budget()
	if err != nil {
		return err
	}
	verpKey, err := loadVERPKey(filepath.Join(cfg.DataDir, "verp.key"))
	if err != nil {
		return err
	}
	d.sched, err = scheduler.New(scheduler.Options{
		Config: cfg, Clock: d.clock, Store: d.store, Budget: budget,
		Deliverer: scheduler.ClientDeliverer(d.client), MX: res,
		Logger: d.log.With("component", "scheduler"), VERPKey: verpKey, Events: d.metrics,
	})
	if err != nil {
		return err
	}
	d.metrics.SetSource(d.sched)
	var tlsConfig *tls.Config
	if cfg.SMTP.TLSCertificate != nil {
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{*cfg.SMTP.TLSCertificate}, MinVersion: tls.VersionTLS12}
	}
	d.smtp, err = smtpd.New(smtpd.Options{
		Hostname: cfg.Hostname, Listen: cfg.SMTP.Listen, TrustedNetworks: cfg.SMTP.TrustedNetworks,
		MaxMessageBytes: cfg.SMTP.MaxMessageBytes, MaxRecipients: cfg.SMTP.MaxRecipients,
		MaxLineLength: cfg.SMTP.MaxLineLength, MaxConnections: cfg.SMTP.MaxConnections,
		ReadTimeout: cfg.SMTP.ReadTimeout, WriteTimeout: cfg.SMTP.WriteTimeout,
		PriorityHeader: cfg.SMTP.PriorityHeader, MaxPriorityMilli: cfg.SMTP.MaxPriorityMilli,
		StripPriorityHeader: cfg.SMTP.StripPriorityHeader, TLSConfig: tlsConfig,
		Now: d.clock.Now, Logger: d.log.With("component", "smtpd"),
		Enqueuer: enqueuer{store: d.store, sched: d.sched}, Admitter: d.sched, Intake: d.sched,
		OnMessage: d.metrics.Inbound,
	})
	if err != nil {
		return err
	}
	return d.listenControl()
}

// listenControl binds the metrics listener (if configured) and the admin
// socket, so that a port in use or a second daemon is found before any
// mail is taken.
func (d *daemon) listenControl() error {
	cfg := d.cfg
	var err error
	if cfg.Admin.MetricsListen != "" {
		d.metricsSrv, err = metrics.Listen(cfg.Admin.MetricsListen, d.metrics, d.healthy, d.log.With("component", "metrics"))
		if err != nil {
			return err
		}
	}
	d.admin, err = admin.Listen(cfg.Admin.Socket, &backend{d: d}, d.log.With("component", "admin"))
	if err != nil && d.metricsSrv != nil {
		d.metricsSrv.Close()
	}
	return err
}

// budget returns where operator usage is counted: the queue file, or Redis
// (with the queue file as the local_share fallback) when several relays
// share one budget.
func (d *daemon) budget() (scheduler.Budget, error) {
	qs := d.cfg.QuotaStore
	if qs.Backend != config.BackendRedis {
		return d.store, nil
	}
	log := d.log.With("component", "quota_store")
	redis.SetLogger(redisbudget.LibraryLogger(log))
	rs, err := redisbudget.New(redisbudget.Options{URL: qs.RedisURL, Timeout: qs.Timeout, Logger: log, Now: d.clock.Now})
	if err != nil {
		return nil, fmt.Errorf("quota_store: %w", err)
	}
	d.redis = rs
	return redisbudget.WithFallback(rs, d.store, redisbudget.FallbackOptions{
		Policy: qs.OnStoreError, ExpectedRelays: qs.ExpectedRelays, Logger: log, OnOutage: d.metrics.QuotaStoreDown,
	}), nil
}

// enqueuer commits accepted mail and tells the scheduler.
type enqueuer struct {
	store *queue.Store
	sched *scheduler.Scheduler
}

func (e enqueuer) NewID() (uint64, string) { return e.store.NewID() }

func (e enqueuer) Enqueue(ctx context.Context, m *queue.Message, body []byte) error {
	if err := e.store.Enqueue(ctx, m, body); err != nil {
		return err
	}
	e.sched.Add(m)
	return nil
}

// ownAddrs lists the addresses and ports sluice listens on, so delivery
// can refuse an MX or relay that would loop back to it. A wildcard
// listener means every address of the machine on that port. Port 0 (tests)
// is resolved from the bound listeners by the caller when known.
func ownAddrs(listen []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range listen {
		host, portStr, err := net.SplitHostPort(l)
		if err != nil {
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			continue
		}
		var addrs []netip.Addr
		a, err := netip.ParseAddr(host)
		switch {
		case host == "" || (err == nil && a.IsUnspecified()):
			addrs = interfaceAddrs()
		case err == nil:
			addrs = []netip.Addr{a}
		default:
			ips, _ := net.LookupIP(host)
			for _, ip := range ips {
				if a, ok := netip.AddrFromSlice(ip); ok {
					addrs = append(addrs, a)
				}
			}
		}
		for _, a := range addrs {
			out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
		}
	}
	return out
}

func interfaceAddrs() []netip.Addr {
	var out []netip.Addr
	ias, _ := net.InterfaceAddrs()
	for _, ia := range ias {
		if p, err := netip.ParsePrefix(ia.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

func dkimKeys(ks []config.DKIM) []delivery.DKIMKey {
	out := make([]delivery.DKIMKey, 0, len(ks))
	for _, k := range ks {
		out = append(out, delivery.DKIMKey{Domain: k.Domain, Selector: k.Selector, Signer: k.Signer})
	}
	return out
}
