package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// ErrNoDaemon means nothing answers on the admin socket.
var ErrNoDaemon = errors.New("admin: the sluice daemon is not running (nothing answers on the admin socket)")

// Timeouts for one request: reading requests answer quickly; a queue
// action over ALL of a large queue commits once per message.
const (
	readTimeout   = time.Minute
	actionTimeout = 15 * time.Minute
)

// Client talks to a running daemon over its admin socket. It implements
// Reader and Controller.
type Client struct {
	path string
	http *http.Client
}

var (
	_ Reader     = (*Client)(nil)
	_ Controller = (*Client)(nil)
)

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{path: path, http: &http.Client{Transport: tr}}
}

// List is sluice queue list.
func (c *Client) List(ctx context.Context, f ListFilter) ([]Message, error) {
	q := url.Values{}
	if f.Operator != "" {
		q.Set("operator", f.Operator)
	}
	if f.State != "" {
		q.Set("state", f.State)
	}
	if f.OlderThan > 0 {
		q.Set("older_than", f.OlderThan.String())
	}
	var out []Message
	err := c.call(ctx, http.MethodGet, "/v1/queue?"+q.Encode(), nil, &out)
	return out, err
}

// Show is sluice queue show.
func (c *Client) Show(ctx context.Context, id string) (*MessageDetail, error) {
	var out MessageDetail
	if err := c.call(ctx, http.MethodGet, "/v1/queue/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Raw is sluice queue cat.
func (c *Client) Raw(ctx context.Context, id string) ([]byte, error) {
	var out []byte
	err := c.call(ctx, http.MethodGet, "/v1/queue/"+url.PathEscape(id)+"/raw", nil, &out)
	return out, err
}

// Quota is sluice quota.
func (c *Client) Quota(ctx context.Context) ([]OperatorStatus, error) {
	var out []OperatorStatus
	err := c.call(ctx, http.MethodGet, "/v1/quota", nil, &out)
	return out, err
}

// Act is sluice queue delete|hold|release|retry|bounce.
func (c *Client) Act(ctx context.Context, a Action, req ActionRequest) (*ActionResult, error) {
	var out ActionResult
	if err := c.call(ctx, http.MethodPost, "/v1/queue/"+string(a), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Suspend is sluice operator suspend.
func (c *Client) Suspend(ctx context.Context, operator string, d time.Duration, reason string) (time.Time, error) {
	var out SuspendResult
	err := c.call(ctx, http.MethodPost, "/v1/operators/"+url.PathEscape(operator)+"/suspend",
		SuspendRequest{For: d.String(), Reason: reason}, &out)
	return out.SuspendedUntil, err
}

// Resume is sluice operator resume.
func (c *Client) Resume(ctx context.Context, operator string) error {
	return c.call(ctx, http.MethodPost, "/v1/operators/"+url.PathEscape(operator)+"/resume", nil, nil)
}

// Reload is sluice reload.
func (c *Client) Reload(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/v1/reload", nil, nil)
}

// Healthy asks /healthz.
func (c *Client) Healthy(ctx context.Context) error {
	var out []byte
	return c.call(ctx, http.MethodGet, "/healthz", nil, &out)
}

// call sends one request. in, if not nil, is sent as JSON; out receives
// the JSON reply, or the raw reply when it is a *[]byte.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	timeout := readTimeout
	var body io.Reader
	if method == http.MethodPost {
		timeout = actionTimeout
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("admin: encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://sluice"+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req, out)
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return ErrNoDaemon
		}
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("admin: no permission to use %s: run as root or as a member of the socket's group: %w", c.path, err)
		}
		return fmt.Errorf("admin: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return fmt.Errorf("admin: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return replyError(resp, body)
	}
	switch v := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*v = body
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("admin: decode reply: %w", err)
	}
	return nil
}

// replyError rebuilds the typed error a failed request carries.
func replyError(resp *http.Response, body []byte) error {
	var e Error
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		msg := string(bytes.TrimSpace(body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return fmt.Errorf("admin: %s: %s", resp.Status, msg)
	}
	switch e.Kind {
	case kindNotFound:
		return &NotFoundError{ID: e.Detail}
	case kindUnknownOperator:
		return &UnknownOperatorError{Name: e.Detail}
	case kindReload:
		return &ReloadError{Problems: e.Detail}
	case kindBadRequest:
		return &BadRequestError{Msg: e.Detail}
	}
	return fmt.Errorf("admin: the daemon failed: %s", e.Error)
}
