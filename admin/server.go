package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Server serves the admin API on a unix socket.
type Server struct {
	backend Backend
	log     *slog.Logger
	http    *http.Server
	ln      net.Listener
	path    string
}

// Listen creates the socket at path (removing a stale one left by a crash,
// but refusing to steal one a live daemon answers on) and returns a server
// ready to Serve.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("admin: create socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("admin: %s is in use: another sluice daemon is running", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin: listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: chmod %s: %w", path, err)
	}
	s := &Server{backend: b, log: log, ln: ln, path: path}
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	return s, nil
}

// Serve answers requests until Close.
func (s *Server) Serve() error {
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the server and removes the socket.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/queue", s.handleList)
	mux.HandleFunc("GET /v1/queue/{id}", s.handleShow)
	mux.HandleFunc("GET /v1/quota", s.handleQuota)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := ListFilter{Operator: q.Get("operator"), State: q.Get("state")}
	if v := q.Get("older_than"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("older_than: %w", err))
			return
		}
		f.OlderThan = d
	}
	msgs, err := s.backend.List(r.Context(), f)
	s.reply(w, msgs, err)
}

func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	d, err := s.backend.Show(r.Context(), r.PathValue("id"))
	s.reply(w, d, err)
}

func (s *Server) handleQuota(w http.ResponseWriter, r *http.Request) {
	st, err := s.backend.Quota(r.Context())
	s.reply(w, st, err)
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		var nf *NotFoundError
		if errors.As(err, &nf) {
			writeError(w, http.StatusNotFound, err)
			return
		}
		s.log.Warn("admin request failed", "err", err)
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(Error{Error: err.Error()})
}
