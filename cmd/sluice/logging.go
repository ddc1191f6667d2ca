package main

import (
	"io"
	"log/slog"

	"github.com/sluice-mta/sluice/config"
)

// newLogger builds the daemon's logger from [log]. The postfix format
// writes logfmt lines until its own handler lands (issue 5).
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
