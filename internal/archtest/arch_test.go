// Package archtest holds the test that keeps STYLE.md section 1 true: it
// reads every package's import list (go list) and fails on a forbidden
// edge.
package archtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/sluice-mta/sluice"

// rule forbids a package's non-test files to import any of deny (an entry
// ending in "/..." covers everything below it).
type rule struct {
	pkg  string
	deny []string
	why  string
}

var rules = []rule{
	{"clock", []string{module + "/..."}, "the clock is a leaf"},
	{"config", []string{module + "/..."}, "config imports no sluice package"},
	{"dsn", []string{module + "/...", "os", "net", "net/http", "log", "log/slog", "time/tzdata"},
		"dsn builds and parses reports: no I/O, no logging"},
	{"verp", []string{module + "/...", "os", "net"}, "verp is pure"},
	{"queue", []string{module + "/...", "github.com/emersion/go-smtp", "github.com/miekg/dns", "github.com/pelletier/go-toml/v2"},
		"the queue knows no SMTP, DNS or TOML"},
	{"smtpd", []string{module + "/scheduler", module + "/delivery", "go.etcd.io/bbolt"},
		"smtpd hands mail to an interface; it never schedules or delivers"},
	{"delivery", []string{module + "/queue", module + "/scheduler", module + "/smtpd", "go.etcd.io/bbolt"},
		"delivery never touches the store"},
	{"scheduler", []string{"go.etcd.io/bbolt", "github.com/emersion/go-smtp", "github.com/miekg/dns",
		"github.com/redis/go-redis/v9", module + "/smtpd", module + "/redisbudget", module + "/admin", module + "/cmd/..."},
		"the scheduler speaks no SMTP and uses the interfaces it declares"},
	{"redisbudget", []string{module + "/..."}, "the Redis store is a leaf; the scheduler never imports a Redis client"},
	{"admin", []string{module + "/queue", module + "/scheduler", "go.etcd.io/bbolt"}, "admin owns no state: it talks to a Backend"},
	{"metrics", []string{module + "/queue", "go.etcd.io/bbolt"}, "metrics observe; they do not read the store"},
	{"postfixlog", []string{module + "/..."}, "a log handler is a leaf"},
}

// testOnly are packages no production code may import.
var testOnly = []string{module + "/internal/testdns", module + "/internal/testmx", module + "/internal/testredis", module + "/test/..."}

func TestImportRules(t *testing.T) {
	imports := goList(t)
	for _, r := range rules {
		pkg := module + "/" + r.pkg
		deps, ok := imports[pkg]
		if !ok {
			t.Errorf("package %s not found by go list", pkg)
			continue
		}
		for _, d := range deps {
			for _, bad := range r.deny {
				if matches(d, bad) && d != pkg {
					t.Errorf("%s imports %s: %s", r.pkg, d, r.why)
				}
			}
		}
	}
	for pkg, deps := range imports {
		if strings.HasPrefix(pkg, module+"/internal/test") || strings.HasPrefix(pkg, module+"/test/") {
			continue
		}
		for _, d := range deps {
			for _, bad := range testOnly {
				if matches(d, bad) {
					t.Errorf("%s imports the test helper %s", strings.TrimPrefix(pkg, module+"/"), d)
				}
			}
		}
	}
}

// matches reports whether import path p is pattern, or below it for a
// pattern ending in "/...".
func matches(p, pattern string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

// goList returns each package's imports (non-test files), from the module
// root.
func goList(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	res := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			res[f[0]] = f[1:]
		}
	}
	return res
}

// TestDSNReadsNoClock: dsn takes every date as an argument.
func TestDSNReadsNoClock(t *testing.T) {
	files, err := filepath.Glob("../../dsn/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no dsn sources: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(src, []byte("time.Now(")) {
			t.Errorf("%s reads the clock; dates must come from arguments", filepath.Base(f))
		}
	}
}

// The rules must be able to fail: a made-up edge is caught.
func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		p, pattern string
		want       bool
	}{
		{module + "/queue", module + "/...", true},
		{module, module + "/...", true},
		{module + "x/queue", module + "/...", false},
		{"os", "os", true},
		{"os/exec", "os", false},
	} {
		if got := matches(tc.p, tc.pattern); got != tc.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tc.p, tc.pattern, got, tc.want)
		}
	}
}
