package redisbudget

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// LibraryLogger adapts l to go-redis's process-wide logger, which otherwise
// writes to stderr. go-redis logs every failed dial, so while Redis is down
// it would repeat what Fallback already reported once: its lines go to
// Debug. Only cmd/sluice sets process-wide state, so it is the caller:
//
//	redis.SetLogger(redisbudget.LibraryLogger(logger))
func LibraryLogger(l *slog.Logger) *LibraryLog {
	return &LibraryLog{log: l}
}

// LibraryLog implements go-redis's Logging interface on a slog.Logger.
type LibraryLog struct{ log *slog.Logger }

// Printf logs one go-redis line at Debug.
func (a *LibraryLog) Printf(ctx context.Context, format string, v ...any) {
	a.log.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}
