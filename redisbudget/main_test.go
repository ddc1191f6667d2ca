package redisbudget

import (
	"log/slog"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestMain silences go-redis's process-wide logger, which would otherwise
// print every refused dial of the outage tests to stderr.
func TestMain(m *testing.M) {
	redis.SetLogger(LibraryLogger(slog.New(slog.DiscardHandler)))
	os.Exit(m.Run())
}
