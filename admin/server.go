package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// maxRequestBytes bounds a request body: a list of a million queue IDs
// fits.
const maxRequestBytes = 32 << 20

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /v1/queue", s.handleList)
	mux.HandleFunc("GET /v1/queue/{id}", s.handleShow)
	mux.HandleFunc("GET /v1/queue/{id}/raw", s.handleRaw)
	for _, a := range Actions {
		mux.HandleFunc("POST /v1/queue/"+string(a), func(w http.ResponseWriter, r *http.Request) { s.handleAction(w, r, a) })
	}
	mux.HandleFunc("GET /v1/quota", s.handleQuota)
	mux.HandleFunc("POST /v1/operators/{name}/suspend", s.handleSuspend)
	mux.HandleFunc("POST /v1/operators/{name}/resume", s.handleResume)
	mux.HandleFunc("POST /v1/reload", s.handleReload)
	return mux
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.backend.Healthy(r.Context()); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %v\n", err)
		return
	}
	w.Write([]byte("ok\n"))
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := ListFilter{Operator: q.Get("operator"), State: q.Get("state")}
	if v := q.Get("older_than"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.reply(w, nil, &BadRequestError{Msg: fmt.Sprintf("older_than: %v", err)})
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

func (s *Server) handleRaw(w http.ResponseWriter, r *http.Request) {
	body, err := s.backend.Raw(r.Context(), r.PathValue("id"))
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	w.Header().Set("Content-Type", "message/rfc822")
	w.Write(body)
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request, a Action) {
	var req ActionRequest
	if !s.decode(w, r, &req) {
		return
	}
	if !req.All && len(req.IDs) == 0 {
		s.reply(w, nil, &BadRequestError{Msg: "no queue IDs given (and not all)"})
		return
	}
	res, err := s.backend.Act(r.Context(), a, req)
	if err == nil {
		s.log.Info("queue "+string(a), "count", res.Count, "all", req.All, "requested", len(req.IDs))
	}
	s.reply(w, res, err)
}

func (s *Server) handleQuota(w http.ResponseWriter, r *http.Request) {
	st, err := s.backend.Quota(r.Context())
	s.reply(w, st, err)
}

func (s *Server) handleSuspend(w http.ResponseWriter, r *http.Request) {
	var req SuspendRequest
	if !s.decode(w, r, &req) {
		return
	}
	d, err := time.ParseDuration(req.For)
	if err != nil || d <= 0 {
		s.reply(w, nil, &BadRequestError{Msg: fmt.Sprintf("suspend for %q: want a positive duration such as 30m or 2h", req.For)})
		return
	}
	name := r.PathValue("name")
	until, err := s.backend.Suspend(r.Context(), name, d, req.Reason)
	s.reply(w, &SuspendResult{Operator: name, SuspendedUntil: until}, err)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := s.backend.Resume(r.Context(), name)
	s.reply(w, map[string]string{"operator": name}, err)
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	err := s.backend.Reload(r.Context())
	s.reply(w, map[string]bool{"reloaded": err == nil}, err)
}

// decode reads a JSON request body into v; an empty body leaves v as it
// is. It answers 400 itself and returns false on a bad body.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		s.reply(w, nil, &BadRequestError{Msg: fmt.Sprintf("request body: %v", err)})
		return false
	}
	return true
}

func (s *Server) reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		code, e := classify(err)
		if code == http.StatusInternalServerError {
			s.log.Warn("admin request failed", "err", err)
		}
		writeError(w, code, e)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// classify maps an error to its HTTP status and the body from which the
// client rebuilds the typed error.
func classify(err error) (int, Error) {
	var (
		nf  *NotFoundError
		uo  *UnknownOperatorError
		re  *ReloadError
		bad *BadRequestError
	)
	e := Error{Error: err.Error()}
	switch {
	case errors.As(err, &nf):
		e.Kind, e.Detail = kindNotFound, nf.ID
		return http.StatusNotFound, e
	case errors.As(err, &uo):
		e.Kind, e.Detail = kindUnknownOperator, uo.Name
		return http.StatusNotFound, e
	case errors.As(err, &re):
		e.Kind, e.Detail = kindReload, re.Problems
		return http.StatusUnprocessableEntity, e
	case errors.As(err, &bad):
		e.Kind, e.Detail = kindBadRequest, bad.Msg
		return http.StatusBadRequest, e
	}
	return http.StatusInternalServerError, e
}

func writeError(w http.ResponseWriter, code int, e Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(e)
}
