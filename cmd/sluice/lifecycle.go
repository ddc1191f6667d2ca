package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/queue"
)

// config returns the configuration in force: the one started with, or the
// last one reloaded.
func (d *daemon) config() *config.Config { return d.cur.Load() }

// reload re-reads the configuration file (SIGHUP, sluice reload). A file
// with problems is refused: they are logged and returned in an
// *admin.ReloadError, and the running configuration stays. Operators,
// quotas, windows, routes, rules, retry and bounce settings and the log
// level change at once, without dropping a connection or the current
// window's usage; settings read only at start are named in a warning.
func (d *daemon) reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.sdNotify(sdReloading)
	defer d.sdNotify(sdReady)
	old := d.config()
	cfg, err := config.Load(old.Path)
	if err != nil {
		d.log.Error("configuration not reloaded; the running one stays", "path", old.Path, "err", err)
		return &admin.ReloadError{Problems: err.Error()}
	}
	if err := d.sched.Reconfigure(ctx, cfg); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	d.cur.Store(cfg)
	if d.logs != nil {
		d.logs.update(cfg)
	}
	for _, key := range restartOnly(old, cfg) {
		d.log.Warn("setting changed in the file; it takes effect when sluice restarts", "key", key)
	}
	return nil
}

// restartOnly names the settings that differ between old and cfg but are
// read only at start: the listeners, the delivery client, the DNS
// resolver, the admin and metrics sockets, the log format, the budget
// store and the DKIM keys.
func restartOnly(old, cfg *config.Config) []string {
	var out []string
	check := func(key string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			out = append(out, key)
		}
	}
	check("hostname", old.Hostname, cfg.Hostname)
	check("data_dir", old.DataDir, cfg.DataDir)
	check("shutdown_timeout", old.ShutdownTimeout, cfg.ShutdownTimeout)
	oldSMTP, newSMTP := old.SMTP, cfg.SMTP
	oldSMTP.TLSCertificate, newSMTP.TLSCertificate = nil, nil
	check("smtp", oldSMTP, newSMTP)
	check("dns", old.DNS, cfg.DNS)
	check("delivery", startDelivery(old.Delivery), startDelivery(cfg.Delivery))
	check("admin", old.Admin, cfg.Admin)
	check("log.format", old.Log.Format, cfg.Log.Format)
	check("quota_store", old.QuotaStore, cfg.QuotaStore)
	check("dkim", dkimFiles(old.DKIM), dkimFiles(cfg.DKIM))
	return out
}

// startDelivery keeps the [delivery] settings the delivery client reads at
// start; the retry schedule, lifetimes and connection cap are live.
func startDelivery(d config.Delivery) config.Delivery {
	d.RetrySchedule, d.MaxQueueLifetime, d.DelayWarningAfter, d.MaxConnections = nil, 0, 0, 0
	return d
}

func dkimFiles(ks []config.DKIM) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Domain+"/"+k.Selector+"/"+k.PrivateKeyFile)
	}
	return out
}

// healthy reports whether the daemon can take mail: the store answers, and
// every SMTP listener accepts a connection.
func (d *daemon) healthy(ctx context.Context) error {
	if _, err := d.store.Get(0); !errors.Is(err, queue.ErrNotFound) {
		return fmt.Errorf("queue store: %v", err)
	}
	if !d.accepting.Load() {
		return errors.New("not accepting mail: starting or shutting down")
	}
	for _, a := range d.smtp.Addrs() {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var dialer net.Dialer
		c, err := dialer.DialContext(ctx, "tcp", a.String())
		cancel()
		if err != nil {
			return fmt.Errorf("SMTP listener %s: %w", a, err)
		}
		c.Close()
	}
	return nil
}

// sdNotify tells systemd about a state change; a failure is only logged.
func (d *daemon) sdNotify(state string) {
	if err := d.notifier.notify(state); err != nil {
		d.log.Warn("cannot notify systemd", "state", state, "err", err)
	}
}

// relayPort is the port delivery uses for an operator key: a route's
// relay port, or delivery.port (for the postfix log format's relay field).
func relayPort(cfg *config.Config, key string) int {
	if name, ok := strings.CutPrefix(key, "route:"); ok {
		for _, r := range cfg.Routes {
			if strings.Join(r.Domains, ",") != name {
				continue
			}
			if _, p, err := net.SplitHostPort(r.Relay); err == nil {
				if n, err := strconv.Atoi(p); err == nil {
					return n
				}
			}
			return cfg.Delivery.Port
		}
	}
	if slices.Contains([]string{"", "admin"}, key) {
		return 0
	}
	return cfg.Delivery.Port
}
