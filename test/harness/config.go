package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Config describes a daemon's configuration file. Zero fields take the
// defaults noted; SMTP, DNS, Delivery and Extra are TOML lines added to
// their tables (Extra: after everything, for [[operator]] tables).
type Config struct {
	Dir          string // where the file and the log go (required)
	DataDir      string // default Dir/data
	Listen       string // default "127.0.0.1:0"
	DNSServer    string // host:port of the test DNS server (required)
	DeliveryPort int    // the fake MXes' port (required)
	SMTP         string
	Delivery     string
	Extra        string
}

// Path is where Write puts the file.
func (c Config) Path() string { return filepath.Join(c.Dir, "sluice.toml") }

// LogPath is where Start sends the daemon's log.
func (c Config) LogPath() string { return filepath.Join(c.Dir, "sluice.log") }

func (c Config) dataDir() string {
	if c.DataDir != "" {
		return c.DataDir
	}
	return filepath.Join(c.Dir, "data")
}

// Text renders the configuration. The log is JSON so that tests can read
// it; DNS and delivery timeouts are short and retries come every second.
func (c Config) Text() string {
	listen := c.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = \"relay.test\"\ndata_dir = %q\nshutdown_timeout = \"5s\"\n", c.dataDir())
	fmt.Fprintf(&b, "[smtp]\nlisten = [%q]\n%s\n", listen, c.SMTP)
	fmt.Fprintf(&b, "[dns]\nservers = [%q]\ntimeout = \"500ms\"\n", c.DNSServer)
	fmt.Fprintf(&b, "[delivery]\nport = %d\nallow_private_mx = true\nconnect_timeout = \"2s\"\n", c.DeliveryPort)
	if !strings.Contains(c.Delivery, "retry_schedule") {
		b.WriteString("retry_schedule = [\"1s\"]\n")
	}
	if !strings.Contains(c.Delivery, "command_timeout") {
		b.WriteString("command_timeout = \"5s\"\n")
	}
	if !strings.Contains(c.Delivery, "data_timeout") {
		b.WriteString("data_timeout = \"5s\"\n")
	}
	fmt.Fprintf(&b, "%s\n[bounce]\nfrom = \"MAILER-DAEMON@relay.test\"\n", c.Delivery)
	b.WriteString("[log]\nformat = \"json\"\nlevel = \"info\"\n")
	b.WriteString(c.Extra)
	return b.String()
}

// Write writes the file to Path and returns that path.
func (c Config) Write(t testing.TB) string {
	t.Helper()
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path(), []byte(c.Text()), 0o600); err != nil {
		t.Fatal(err)
	}
	return c.Path()
}
