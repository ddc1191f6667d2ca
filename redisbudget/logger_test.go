package redisbudget

import (
	"context"
	"log/slog"
	"testing"
)

func TestLibraryLoggerLogsAtDebug(t *testing.T) {
	logs := &logCapture{}
	l := LibraryLogger(newTestLogger(t, logs))
	l.Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %v\n", 1, "refused")
	if n := logs.count(slog.LevelDebug, "redis: connection pool: failed to dial after 1 attempts: refused"); n != 1 {
		t.Errorf("%d matching Debug lines, want 1", n)
	}
	if n := logs.count(slog.LevelWarn, ""); n != 0 {
		t.Errorf("%d Warn lines, want 0", n)
	}
}
