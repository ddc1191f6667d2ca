package admin

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fakeBackend records requests and answers from its fields.
type fakeBackend struct {
	mu      sync.Mutex
	filter  ListFilter
	act     Action
	req     ActionRequest
	suspend []any
	resumed string
	err     error // returned by every call when set
	health  error
}

var until = time.Date(2025, 11, 3, 12, 0, 0, 0, time.UTC)

// snapshot returns a copy of what the backend recorded.
func (f *fakeBackend) snapshot() fakeBackend {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeBackend{filter: f.filter, act: f.act, req: f.req, suspend: f.suspend, resumed: f.resumed}
}

func (f *fakeBackend) setErrs(err, health error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err, f.health = err, health
}

func (f *fakeBackend) errs() (error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err, f.health
}

func (f *fakeBackend) List(_ context.Context, lf ListFilter) ([]Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.filter = lf
	return []Message{{QueueID: "ABC", QueueName: "deferred", Recipients: []Recipient{{Address: "a@b"}}}}, f.err
}

func (f *fakeBackend) Show(_ context.Context, id string) (*MessageDetail, error) {
	if id != "ABC" {
		return nil, &NotFoundError{ID: id}
	}
	err, _ := f.errs()
	return &MessageDetail{QueueID: id, Headers: "Subject: x\r\n"}, err
}

func (f *fakeBackend) Raw(_ context.Context, id string) ([]byte, error) {
	if id != "ABC" {
		return nil, &NotFoundError{ID: id}
	}
	err, _ := f.errs()
	return []byte("Subject: x\r\n\r\n\xffbody\r\n"), err
}

func (f *fakeBackend) Quota(context.Context) ([]OperatorStatus, error) {
	err, _ := f.errs()
	return []OperatorStatus{{Name: "bigmail", Quota: 10, UsedMilli: 2500}}, err
}

func (f *fakeBackend) Act(_ context.Context, a Action, req ActionRequest) (*ActionResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.act, f.req = a, req
	if f.err != nil {
		return nil, f.err
	}
	return &ActionResult{Action: a, Count: len(req.IDs), Unknown: []string{"ZZZ"}}, nil
}

func (f *fakeBackend) Suspend(_ context.Context, name string, d time.Duration, reason string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "bigmail" {
		return time.Time{}, &UnknownOperatorError{Name: name}
	}
	f.suspend = []any{name, d, reason}
	return until, nil
}

func (f *fakeBackend) Resume(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if name != "bigmail" {
		return &UnknownOperatorError{Name: name}
	}
	f.resumed = name
	return nil
}

func (f *fakeBackend) Reload(context.Context) error {
	err, _ := f.errs()
	return err
}

func (f *fakeBackend) Healthy(context.Context) error {
	_, h := f.errs()
	return h
}

// newTestServer serves b on a socket in a short temporary directory (unix
// socket paths are limited to about 100 bytes).
func newTestServer(t *testing.T, b Backend) (*Client, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "adm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "admin.sock")
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	s, err := Listen(path, b, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return NewClient(path), path
}

func TestEndpointsRoundTrip(t *testing.T) {
	fb := &fakeBackend{}
	cl, path := newTestServer(t, fb)
	ctx := context.Background()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, %v; want 0660", fi.Mode().Perm(), err)
	}
	t.Run("list passes the filter", func(t *testing.T) {
		msgs, err := cl.List(ctx, ListFilter{Operator: "bigmail", State: "waiting", OlderThan: 90 * time.Minute})
		if err != nil || len(msgs) != 1 || msgs[0].QueueID != "ABC" {
			t.Fatalf("List = %+v, %v", msgs, err)
		}
		if want := (ListFilter{Operator: "bigmail", State: "waiting", OlderThan: 90 * time.Minute}); fb.snapshot().filter != want {
			t.Errorf("the backend got filter %+v, want %+v", fb.snapshot().filter, want)
		}
	})
	t.Run("show and raw", func(t *testing.T) {
		d, err := cl.Show(ctx, "ABC")
		if err != nil || d.Headers != "Subject: x\r\n" {
			t.Errorf("Show = %+v, %v", d, err)
		}
		raw, err := cl.Raw(ctx, "ABC")
		if err != nil || string(raw) != "Subject: x\r\n\r\n\xffbody\r\n" {
			t.Errorf("Raw = %q, %v; want the bytes unchanged", raw, err)
		}
	})
	t.Run("quota", func(t *testing.T) {
		st, err := cl.Quota(ctx)
		if err != nil || len(st) != 1 || st[0].UsedMilli != 2500 {
			t.Errorf("Quota = %+v, %v", st, err)
		}
	})
	for _, a := range Actions {
		t.Run("action "+string(a), func(t *testing.T) {
			res, err := cl.Act(ctx, a, ActionRequest{IDs: []string{"ABC", "ZZZ"}})
			if err != nil || res.Action != a || res.Count != 2 || !reflect.DeepEqual(res.Unknown, []string{"ZZZ"}) {
				t.Errorf("Act(%s) = %+v, %v", a, res, err)
			}
			if got := fb.snapshot().act; got != a {
				t.Errorf("the backend ran %q, want %q", got, a)
			}
		})
	}
	t.Run("action on ALL", func(t *testing.T) {
		if _, err := cl.Act(ctx, ActionHold, ActionRequest{All: true}); err != nil || !fb.snapshot().req.All {
			t.Errorf("Act ALL: %v, backend got %+v", err, fb.snapshot().req)
		}
	})
	t.Run("suspend and resume", func(t *testing.T) {
		got, err := cl.Suspend(ctx, "bigmail", 90*time.Minute, "asked to")
		if err != nil || !got.Equal(until) || !reflect.DeepEqual(fb.snapshot().suspend, []any{"bigmail", 90 * time.Minute, "asked to"}) {
			t.Errorf("Suspend = %v, %v; backend got %v", got, err, fb.snapshot().suspend)
		}
		if err := cl.Resume(ctx, "bigmail"); err != nil || fb.snapshot().resumed != "bigmail" {
			t.Errorf("Resume: %v, backend got %q", err, fb.snapshot().resumed)
		}
	})
	t.Run("reload and health", func(t *testing.T) {
		if err := cl.Reload(ctx); err != nil {
			t.Errorf("Reload: %v", err)
		}
		if err := cl.Healthy(ctx); err != nil {
			t.Errorf("Healthy: %v", err)
		}
	})
}

func TestErrorsComeBackTyped(t *testing.T) {
	fb := &fakeBackend{}
	cl, _ := newTestServer(t, fb)
	ctx := context.Background()
	_, err := cl.Show(ctx, "NOPE")
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.ID != "NOPE" {
		t.Errorf("Show of an unknown ID = %v, want NotFoundError for NOPE", err)
	}
	_, err = cl.Raw(ctx, "NOPE")
	if !errors.As(err, &nf) {
		t.Errorf("Raw of an unknown ID = %v, want NotFoundError", err)
	}
	_, err = cl.Suspend(ctx, "nosuch", time.Hour, "")
	var uo *UnknownOperatorError
	if !errors.As(err, &uo) || uo.Name != "nosuch" {
		t.Errorf("Suspend of an unknown operator = %v, want UnknownOperatorError", err)
	}
	if err := cl.Resume(ctx, "nosuch"); !errors.As(err, &uo) {
		t.Errorf("Resume of an unknown operator = %v, want UnknownOperatorError", err)
	}
	_, err = cl.Act(ctx, ActionDelete, ActionRequest{})
	var bad *BadRequestError
	if !errors.As(err, &bad) {
		t.Errorf("Act without IDs = %v, want BadRequestError", err)
	}
	_, err = cl.Suspend(ctx, "bigmail", -time.Minute, "")
	if !errors.As(err, &bad) {
		t.Errorf("Suspend for a negative duration = %v, want BadRequestError", err)
	}
	fb.setErrs(&ReloadError{Problems: "line 3: unknown key \"x\""}, nil)
	err = cl.Reload(ctx)
	var re *ReloadError
	if !errors.As(err, &re) || re.Problems != `line 3: unknown key "x"` {
		t.Errorf("Reload of a bad file = %v, want ReloadError with the problems", err)
	}
	fb.setErrs(errors.New("disk on fire"), nil)
	if _, err := cl.Quota(ctx); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("a backend failure came back as %v", err)
	}
	fb.setErrs(nil, errors.New("SMTP listener down"))
	if err := cl.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "SMTP listener down") {
		t.Errorf("Healthy of an unhealthy daemon = %v", err)
	}
}

func TestBadRequestBodies(t *testing.T) {
	_, path := newTestServer(t, &fakeBackend{})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	tests := []struct {
		name, path, body string
		code             int
	}{
		{"not JSON", "/v1/queue/delete", "{", http.StatusBadRequest},
		{"unknown field", "/v1/queue/delete", `{"id":["A"]}`, http.StatusBadRequest},
		{"no duration", "/v1/operators/bigmail/suspend", `{}`, http.StatusBadRequest},
		{"unknown action", "/v1/queue/frobnicate", `{"ids":["A"]}`, http.StatusMethodNotAllowed},
		{"older_than", "/v1/queue?older_than=soon", "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := http.MethodPost
			if tt.body == "" {
				method = http.MethodGet
			}
			req, _ := http.NewRequest(method, "http://sluice"+tt.path, strings.NewReader(tt.body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Errorf("%s %s: %s, want %d", method, tt.path, resp.Status, tt.code)
			}
		})
	}
}

func TestNoDaemonAndSecondServer(t *testing.T) {
	dir, err := os.MkdirTemp("", "adm")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "admin.sock")
	if _, err := NewClient(path).Quota(context.Background()); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("a client without a server = %v, want ErrNoDaemon", err)
	}
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, nil))
	s, err := Listen(path, &fakeBackend{}, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	if _, err := Listen(path, &fakeBackend{}, log); err == nil || !strings.Contains(err.Error(), "another sluice daemon") {
		t.Errorf("a second server on a live socket = %v, want refused", err)
	}
	s.Close()
	<-done
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Close left the socket file: %v", err)
	}
}
