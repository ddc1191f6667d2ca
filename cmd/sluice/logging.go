package main

import (
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/sluice-mta/sluice/config"
	"github.com/sluice-mta/sluice/postfixlog"
)

// logControl holds what a reload may change in the daemon's logger: the
// level, and the configuration the postfix format reads relay ports from.
type logControl struct {
	level slog.LevelVar
	cfg   atomic.Pointer[config.Config]
}

func newLogControl(cfg *config.Config) *logControl {
	lc := &logControl{}
	lc.update(cfg)
	return lc
}

func (lc *logControl) update(cfg *config.Config) {
	lc.level.Set(cfg.Log.Level)
	lc.cfg.Store(cfg)
}

// newLogger builds the daemon's logger from [log]: logfmt (slog's text
// handler), JSON, or Postfix's mail log layout (package postfixlog).
func newLogger(w io.Writer, format string, lc *logControl) *slog.Logger {
	switch format {
	case config.LogFormatJSON:
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: &lc.level}))
	case config.LogFormatPostfix:
		return slog.New(postfixlog.New(w, postfixlog.Options{
			Level:     &lc.level,
			RelayPort: func(op string) int { return relayPort(lc.cfg.Load(), op) },
		}))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: &lc.level}))
}
