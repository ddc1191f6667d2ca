package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sluice-mta/sluice/admin"
	"github.com/sluice-mta/sluice/config"
)

func TestArgsTakeFlagsAfterArguments(t *testing.T) {
	tests := []struct {
		name     string
		argv     []string
		wantArgs []string
		wantFor  time.Duration
		wantJSON bool
		wantErr  string
	}{
		{"flags first", []string{"--for", "2h", "--json", "bigmail"}, []string{"bigmail"}, 2 * time.Hour, true, ""},
		{"flags after", []string{"bigmail", "--for", "2h", "--json"}, []string{"bigmail"}, 2 * time.Hour, true, ""},
		{"flag with =", []string{"bigmail", "--for=30m"}, []string{"bigmail"}, 30 * time.Minute, false, ""},
		{"single dash", []string{"bigmail", "-for", "1m"}, []string{"bigmail"}, time.Minute, false, ""},
		{"bool with =", []string{"a", "--json=false"}, []string{"a"}, time.Hour, false, ""},
		{"after --", []string{"a", "--", "--json"}, []string{"a", "--json"}, time.Hour, false, ""},
		{"a lone dash is an argument", []string{"-"}, []string{"-"}, time.Hour, false, ""},
		{"unknown flag", []string{"a", "--fro", "1h"}, nil, 0, false, "unknown flag --fro"},
		{"missing value", []string{"a", "--for"}, nil, 0, false, "flag --for needs a value"},
		{"bad value", []string{"a", "--for", "soon"}, nil, 0, false, "flag --for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			var gotFor time.Duration
			var gotJSON bool
			var gotErr error
			app := &cli.App{
				Name: "sluice", Writer: &bytes.Buffer{}, ErrWriter: &bytes.Buffer{},
				Commands: []*cli.Command{{
					Name:  "suspend",
					Flags: []cli.Flag{jsonFlag, &cli.DurationFlag{Name: "for", Value: time.Hour}},
					Action: func(c *cli.Context) error {
						got, gotErr = args(c)
						gotFor, gotJSON = c.Duration("for"), c.Bool("json")
						return nil
					},
				}},
			}
			if err := app.Run(append([]string{"sluice", "suspend"}, tt.argv...)); err != nil {
				t.Fatalf("run: %v", err)
			}
			if tt.wantErr != "" {
				if gotErr == nil || !strings.Contains(gotErr.Error(), tt.wantErr) {
					t.Errorf("error %v, want one containing %q", gotErr, tt.wantErr)
				}
				return
			}
			if gotErr != nil || !reflect.DeepEqual(got, tt.wantArgs) || gotFor != tt.wantFor || gotJSON != tt.wantJSON {
				t.Errorf("got args %q, for %v, json %v, err %v; want %q, %v, %v", got, gotFor, gotJSON, gotErr, tt.wantArgs, tt.wantFor, tt.wantJSON)
			}
		})
	}
}

func TestActionRequest(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    admin.ActionRequest
		wantErr bool
	}{
		{"IDs", []string{"A1", "B2"}, "", admin.ActionRequest{IDs: []string{"A1", "B2"}}, false},
		{"ALL", []string{"ALL"}, "", admin.ActionRequest{All: true}, false},
		{"ALL wins", []string{"A1", "ALL"}, "", admin.ActionRequest{All: true}, false},
		{"stdin", []string{"-"}, "A1\nB2 C3\n\n", admin.ActionRequest{IDs: []string{"A1", "B2", "C3"}}, false},
		{"stdin and args", []string{"Z9", "-"}, "A1\n", admin.ActionRequest{IDs: []string{"Z9", "A1"}}, false},
		{"nothing", nil, "", admin.ActionRequest{}, true},
		{"empty stdin", []string{"-"}, "\n", admin.ActionRequest{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := actionRequest(tt.args, strings.NewReader(tt.stdin))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func testConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.toml")
	if err := os.WriteFile(path, []byte("data_dir = \".\"\n"+text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func TestRestartOnly(t *testing.T) {
	base := "[delivery]\nport = 25\n[[operator]]\nname = \"big\"\ndomains = [\"big.test\"]\nquota = 10\n"
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"same file", base, nil},
		{"quota is live", strings.Replace(base, "quota = 10", "quota = 20", 1), nil},
		{"retry schedule is live", strings.Replace(base, "port = 25", "port = 25\nretry_schedule = [\"1m\"]", 1), nil},
		{"log level is live", base + "[log]\nlevel = \"debug\"\n", nil},
		{"delivery port needs a restart", strings.Replace(base, "port = 25", "port = 2525", 1), []string{"delivery"}},
		{"listeners need a restart", base + "[smtp]\nlisten = [\"127.0.0.1:2526\"]\n", []string{"smtp"}},
		{"log format and metrics", base + "[log]\nformat = \"json\"\n[admin]\nmetrics_listen = \"127.0.0.1:9125\"\n", []string{"admin", "log.format"}},
	}
	old := testConfig(t, base)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, tt.text)
			cfg.DataDir = old.DataDir // each file sits in its own directory
			cfg.Admin.Socket = strings.Replace(cfg.Admin.Socket, filepath.Dir(cfg.Path), filepath.Dir(old.Path), 1)
			if got := restartOnly(old, cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("restartOnly = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRelayPort(t *testing.T) {
	cfg := testConfig(t, "[delivery]\nport = 2525\n[[route]]\ndomains = [\"corp.test\", \"*.corp.test\"]\nrelay = \"10.0.0.5:587\"\n"+
		"[[route]]\ndomains = [\"other.test\"]\nrelay = \"smarthost.test:26\"\n")
	tests := []struct {
		key  string
		want int
	}{
		{"bigmail", 2525},
		{"default:x.test", 2525},
		{"route:corp.test,*.corp.test", 587},
		{"route:other.test", 26},
		{"admin", 0},
		{"", 0},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := relayPort(cfg, tt.key); got != tt.want {
				t.Errorf("relayPort(%q) = %d, want %d", tt.key, got, tt.want)
			}
		})
	}
}

func TestNotifierSendsDatagrams(t *testing.T) {
	n, ch := notifySocket(t)
	for _, state := range []string{sdReady, sdReloading, sdStopping} {
		if err := n.notify(state); err != nil {
			t.Fatalf("notify %s: %v", state, err)
		}
		expectNotify(t, ch, state)
	}
	if err := (notifier{}).notify(sdReady); err != nil {
		t.Errorf("without NOTIFY_SOCKET notify failed: %v", err)
	}
	err := notifier{addr: filepath.Join(t.TempDir(), "missing.sock")}.notify(sdReady)
	var opErr *net.OpError
	if err == nil || !errors.As(err, &opErr) {
		t.Errorf("notify to a missing socket = %v, want a network error", err)
	}
}
