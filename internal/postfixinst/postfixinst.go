// Package postfixinst runs a private Postfix instance for tests and
// benchmarks: its own configuration, queue and data directories under one
// folder, smtpd on a loopback address, a relayhost, optional header_checks.
// It never touches the system's /etc/postfix. Postfix must be installed
// (Debian: apt-get install postfix, "No configuration") and the caller must
// be root, as postfix start requires.
package postfixinst

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"time"
)

// ErrUnavailable means Postfix cannot run here; the error says why.
var ErrUnavailable = errors.New("postfix unavailable")

// Options describe an instance.
type Options struct {
	Dir       string // instance root (created if needed); must be reachable by the postfix user
	SMTPAddr  string // where its smtpd listens, "127.0.0.1:PORT"
	Relayhost string // next hop for everything, e.g. "[127.0.0.1]:2525"
	// HeaderChecks are regexp: table lines for header_checks, e.g.
	// `/^From:.*<vip@example\.org>/ PREPEND X-Relay-Priority: 5`.
	HeaderChecks []string
	// Main holds extra main.cf settings, applied last.
	Main map[string]string
}

// Instance is a running Postfix.
type Instance struct {
	Dir      string
	ConfDir  string
	Maillog  string
	SMTPAddr string
	postfix  string
}

// Check reports whether Postfix can run here.
func Check() error {
	if _, err := exec.LookPath("postfix"); err != nil {
		if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
			return fmt.Errorf("%w: the postfix binary is not installed", ErrUnavailable)
		}
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: postfix start needs root", ErrUnavailable)
	}
	if _, err := user.Lookup("postfix"); err != nil {
		return fmt.Errorf("%w: no postfix user: %v", ErrUnavailable, err)
	}
	if _, err := os.Stat("/usr/share/postfix/master.cf.dist"); err != nil {
		return fmt.Errorf("%w: /usr/share/postfix/master.cf.dist is missing", ErrUnavailable)
	}
	return nil
}

// Start writes the instance's configuration and starts it. Stop it with
// Stop, whatever happens afterwards.
func Start(o Options) (*Instance, error) {
	if err := Check(); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath("postfix")
	if err != nil {
		bin = "/usr/sbin/postfix"
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	in := &Instance{Dir: dir, ConfDir: filepath.Join(dir, "conf"), Maillog: filepath.Join(dir, "maillog"), SMTPAddr: o.SMTPAddr, postfix: bin}
	if err := in.write(o); err != nil {
		return nil, err
	}
	if out, err := in.run("post-install", "create-missing"); err != nil {
		return nil, fmt.Errorf("postfix post-install: %v: %s", err, out)
	}
	if out, err := in.run("start"); err != nil {
		return nil, fmt.Errorf("postfix start: %v: %s%s", err, out, in.tail())
	}
	if err := waitListening(o.SMTPAddr, 15*time.Second); err != nil {
		in.Stop()
		return nil, fmt.Errorf("postfix smtpd on %s: %v%s", o.SMTPAddr, err, in.tail())
	}
	return in, nil
}

func (in *Instance) write(o Options) error {
	for _, d := range []string{in.ConfDir, filepath.Join(in.Dir, "queue"), filepath.Join(in.Dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// The postfix user must reach the instance; t.TempDir parents are 0700.
	for p := in.Dir; p != "/" && p != "."; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o011 == 0 {
			os.Chmod(p, st.Mode().Perm()|0o711)
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return err
	}
	var uid, gid int
	fmt.Sscan(pf.Uid, &uid)
	fmt.Sscan(pf.Gid, &gid)
	if err := os.Chown(filepath.Join(in.Dir, "data"), uid, gid); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(in.ConfDir, "main.cf"), []byte(in.mainCF(o)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(in.ConfDir, "header_checks"), []byte(strings.Join(o.HeaderChecks, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	master, err := masterCF(o.SMTPAddr)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(in.ConfDir, "master.cf"), []byte(master), 0o644)
}

func (in *Instance) mainCF(o Options) string {
	settings := [][2]string{
		{"compatibility_level", "3.6"},
		{"queue_directory", filepath.Join(in.Dir, "queue")},
		{"data_directory", filepath.Join(in.Dir, "data")},
		{"maillog_file", in.Maillog},
		{"maillog_file_prefixes", in.Dir},
		{"inet_interfaces", "127.0.0.1"},
		{"inet_protocols", "ipv4"},
		{"myhostname", "postfix.test"},
		{"mydestination", ""},
		{"mynetworks", "127.0.0.0/8"},
		{"relayhost", o.Relayhost},
		{"smtp_dns_support_level", "disabled"},
		{"smtp_tls_security_level", "none"},
		{"smtpd_relay_restrictions", "permit_mynetworks, reject"},
		{"alias_maps", ""},
		{"alias_database", ""},
		{"header_checks", "regexp:" + filepath.Join(in.ConfDir, "header_checks")},
		{"default_process_limit", "100"},
		{"queue_run_delay", "1s"},
		{"minimal_backoff_time", "2s"},
		{"maximal_backoff_time", "4s"},
		{"bounce_queue_lifetime", "1h"},
	}
	var b strings.Builder
	for _, kv := range settings {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], kv[1])
	}
	for k, v := range o.Main {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	return b.String()
}

// masterCF is Debian's master.cf with the smtp inet service moved to addr
// and no service chrooted (a private instance has no chroot tree).
func masterCF(addr string) (string, error) {
	dist, err := os.ReadFile("/usr/share/postfix/master.cf.dist")
	if err != nil {
		return "", err
	}
	var out []string
	for _, line := range strings.Split(string(dist), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
			if f[0] == "smtp" && f[1] == "inet" {
				f[0] = addr
			}
			if f[4] == "y" || f[4] == "-" {
				f[4] = "n"
			}
			line = strings.Join(f, " ")
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), nil
}

func (in *Instance) run(args ...string) ([]byte, error) {
	cmd := exec.Command(in.postfix, append([]string{"-c", in.ConfDir}, args...)...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+in.ConfDir)
	return cmd.CombinedOutput()
}

// Stop stops the instance (postfix stop; abort if that fails).
func (in *Instance) Stop() error {
	if _, err := in.run("stop"); err != nil {
		out, err2 := in.run("abort")
		if err2 != nil {
			return fmt.Errorf("postfix stop: %v; abort: %v: %s", err, err2, out)
		}
	}
	return nil
}

// Flush asks the queue manager to retry deferred mail now.
func (in *Instance) Flush() error {
	_, err := in.run("flush")
	return err
}

// Log returns the instance's mail log.
func (in *Instance) Log() string {
	b, _ := os.ReadFile(in.Maillog)
	return string(b)
}

func (in *Instance) tail() string {
	b, _ := os.ReadFile(in.Maillog)
	if i := bytes.LastIndex(b[:max(len(b)-1, 0)], []byte("\n")); len(b) > 2000 && i > 0 {
		b = b[len(b)-2000:]
	}
	if len(b) == 0 {
		return ""
	}
	return "\npostfix log:\n" + string(b)
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || i > 300 {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
