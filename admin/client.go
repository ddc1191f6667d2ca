package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	pathpkg "path"
	"syscall"
	"time"
)

// ErrNoDaemon means nothing answers on the admin socket.
var ErrNoDaemon = errors.New("admin: the sluice daemon is not running (nothing answers on the admin socket)")

// Client talks to a running daemon over its admin socket.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{path: path, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
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
	err := c.get(ctx, "/v1/queue?"+q.Encode(), &out)
	return out, err
}

// Show is sluice queue show.
func (c *Client) Show(ctx context.Context, id string) (*MessageDetail, error) {
	var out MessageDetail
	if err := c.get(ctx, "/v1/queue/"+url.PathEscape(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Quota is sluice quota.
func (c *Client) Quota(ctx context.Context) ([]OperatorStatus, error) {
	var out []OperatorStatus
	err := c.get(ctx, "/v1/quota", &out)
	return out, err
}

func (c *Client) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sluice"+path, nil)
	if err != nil {
		return err
	}
	return c.do(req, v)
}

func (c *Client) do(req *http.Request, v any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return ErrNoDaemon
		}
		return fmt.Errorf("admin: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("admin: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusNotFound {
				return &NotFoundError{ID: pathpkg.Base(req.URL.Path)}
			}
			return errors.New(e.Error)
		}
		return fmt.Errorf("admin: %s", resp.Status)
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("admin: decode reply: %w", err)
	}
	return nil
}
