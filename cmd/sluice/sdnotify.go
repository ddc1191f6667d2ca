package main

import (
	"fmt"
	"net"
	"os"
	"time"
)

// notifier tells systemd how the daemon is doing, as sd_notify(3) does: a
// datagram with "STATE=value" lines to the unix socket named by
// $NOTIFY_SOCKET (a leading "@" names an abstract socket, which Go's net
// package maps itself). Without $NOTIFY_SOCKET it does nothing, so the
// same binary runs under systemd's Type=notify and anywhere else.
type notifier struct{ addr string }

// newNotifier reads $NOTIFY_SOCKET.
func newNotifier() notifier { return notifier{addr: os.Getenv("NOTIFY_SOCKET")} }

// Notify states (systemd's sd_notify(3)).
const (
	sdReady     = "READY=1"
	sdReloading = "RELOADING=1"
	sdStopping  = "STOPPING=1"
)

// notify sends state. Failure is returned for the caller to log: systemd
// then times the start out, which says more than anything we could do.
func (n notifier) notify(state string) error {
	if n.addr == "" {
		return nil
	}
	c, err := net.DialTimeout("unixgram", n.addr, time.Second)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
