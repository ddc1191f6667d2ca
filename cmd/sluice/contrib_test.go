package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-mta/sluice/config"
)

const contribDir = "../../contrib"

// needTool finds a Postfix or systemd tool; without it the test skips, or
// fails under SLUICE_REQUIRE_SERVERS=1 when required is set.
func needTool(t *testing.T, name string, required bool) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if required && os.Getenv("SLUICE_REQUIRE_SERVERS") == "1" {
		t.Fatalf("%s is not installed", name)
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// postfixDir makes a Postfix configuration directory from one snippet
// directory of contrib/postfix: its main.cf and tables, with
// /etc/postfix/ pointing at the new directory, and the distribution's
// master.cf with the snippet's master.cf appended.
func postfixDir(t *testing.T, snippet string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(contribDir, "postfix", snippet)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	master, err := os.ReadFile("/usr/share/postfix/master.cf.dist")
	if err != nil {
		master = []byte("smtp      inet  n       -       y       -       -       smtpd\n")
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/etc/postfix/"), []byte(dir+"/"))
		if e.Name() == "master.cf" {
			master = append(master, b...)
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "master.cf"), master, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs a Postfix tool and fails on an error or any warning.
func runPostfixTool(t *testing.T, bin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, out.String(), errOut.String())
	}
	if errOut.Len() > 0 {
		t.Errorf("%s %s warned:\n%s", filepath.Base(bin), strings.Join(args, " "), errOut.String())
	}
	return out.String()
}

// TestPostfixSnippets checks every main.cf snippet with postconf -n (no
// warning, such as an unknown parameter), the master.cf service with
// postconf -M and -P, and each lookup table with postmap -q.
func TestPostfixSnippets(t *testing.T) {
	postconf := needTool(t, "postconf", true)
	postmap := needTool(t, "postmap", true)
	type query struct{ table, key, want string }
	tests := []struct {
		snippet string
		params  []string // lines postconf -n must print
		hash    []string // tables to build with postmap first
		queries []query
		master  string // a service postconf -M must list
	}{
		{snippet: "relayhost", params: []string{"relayhost = [127.0.0.1]:2525"}},
		{snippet: "transport", params: []string{"transport_maps = hash:"}, hash: []string{"sluice_transport"},
			queries: []query{{"hash:sluice_transport", "bigmail.de", "smtp:[127.0.0.1]:2525"}, {"hash:sluice_transport", ".bigmail.com", "smtp:[127.0.0.1]:2525"}}},
		{snippet: "ha-pair", params: []string{"relayhost = [10.0.0.11]:2525, [10.0.0.12]:2525"}},
		{snippet: "priority-by-sender", params: []string{"header_checks = regexp:", "smtpd_sender_restrictions = check_sender_access hash:"},
			hash: []string{"sluice_sender_priority"},
			queries: []query{
				{"regexp:sluice_priority", "From: Billing <invoices@example.org>", "PREPEND X-Relay-Priority: 10"},
				{"regexp:sluice_priority", "From: <newsletter@example.org>", "PREPEND X-Relay-Priority: 5"},
				{"regexp:sluice_priority", "X-Relay-Priority: 99", "IGNORE"},
				{"hash:sluice_sender_priority", "alerts@example.org", "PREPEND X-Relay-Priority: 20"},
			}},
		{snippet: "priority-by-transport", params: []string{"sender_dependent_default_transport_maps = hash:"},
			hash: []string{"sluice_bulk_transport"}, master: "sluice-bulk/unix",
			queries: []query{
				{"hash:sluice_bulk_transport", "@news.example.org", "sluice-bulk:[127.0.0.1]:2525"},
				{"regexp:sluice_bulk_priority", "From: News <news@news.example.org>", "PREPEND X-Relay-Priority: 5"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.snippet, func(t *testing.T) {
			t.Parallel() // each postconf run takes a second or two
			dir := postfixDir(t, tt.snippet)
			out := runPostfixTool(t, postconf, "-c", dir, "-n")
			for _, p := range tt.params {
				if !strings.Contains(out, p) {
					t.Errorf("postconf -n lacks %q:\n%s", p, out)
				}
			}
			if tt.master != "" {
				if m := runPostfixTool(t, postconf, "-c", dir, "-M", tt.master); !strings.Contains(m, "smtp") {
					t.Errorf("postconf -M %s = %q", tt.master, m)
				}
				if p := runPostfixTool(t, postconf, "-c", dir, "-P", tt.master+"/smtp_header_checks"); !strings.Contains(p, "regexp:") {
					t.Errorf("postconf -P %s = %q", tt.master, p)
				}
			}
			for _, h := range tt.hash {
				runPostfixTool(t, postmap, "-c", dir, "hash:"+filepath.Join(dir, h))
			}
			for _, q := range tt.queries {
				kind, name, _ := strings.Cut(q.table, ":")
				got := strings.TrimSpace(runPostfixTool(t, postmap, "-c", dir, "-q", q.key, kind+":"+filepath.Join(dir, name)))
				if got != q.want {
					t.Errorf("postmap -q %q %s = %q, want %q", q.key, q.table, got, q.want)
				}
			}
		})
	}
}

// TestSluiceRouteBackSnippet loads the sluice side of the Postfix
// snippets into a configuration and checks the route.
func TestSluiceRouteBackSnippet(t *testing.T) {
	snippet, err := os.ReadFile(filepath.Join(contribDir, "postfix", "sluice-route-back.toml"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sluice.toml")
	if err := os.WriteFile(path, append([]byte("data_dir = \".\"\n"), snippet...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the snippet does not load: %v", err)
	}
	for _, dom := range []string{"example.org", "mail.example.org"} {
		if r, ok := cfg.RouteFor(dom); !ok || r.Relay != "10.0.0.5:25" {
			t.Errorf("RouteFor(%s) = %+v, %v; want the internal Postfix", dom, r, ok)
		}
	}
	if _, ok := cfg.RouteFor("bigmail.com"); ok {
		t.Errorf("an outside domain is routed back")
	}
}

// TestSystemdUnit runs systemd-analyze verify on the unit, with the binary
// path pointed at one that exists here.
func TestSystemdUnit(t *testing.T) {
	bin := needTool(t, "systemd-analyze", false)
	unit, err := os.ReadFile(filepath.Join(contribDir, "systemd", "sluice.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type=notify", "User=sluice", "StateDirectory=sluice", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
		"ExecReload=/usr/local/bin/sluice --config /etc/sluice/sluice.toml reload", "NoNewPrivileges=yes", "ProtectSystem=strict"} {
		if !bytes.Contains(unit, []byte(want+"\n")) {
			t.Errorf("the unit lacks %s", want)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sluice.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/sluice"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
