// Package clienttest is a fake berth daemon for tests of API clients: an
// HTTP server on a unix socket in a temporary directory that answers
// /_ping like berth, records every call, and serves whatever handlers a
// test registers (canned Docker JSON, hijacked streams). It runs no
// containers and touches nothing outside its directory.
package clienttest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// APIVersion is what the fake advertises in /_ping.
const APIVersion = "1.51"

// Server is a fake daemon.
type Server struct {
	// Host is the address to give a client: unix:///path.
	Host string

	mux *http.ServeMux
	srv *http.Server

	mu    sync.Mutex
	calls []string
}

// New starts a fake daemon; it stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	// A short directory: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "berth-fake-")
	if err != nil {
		t.Fatalf("make socket dir: %v", err)
	}
	sock := filepath.Join(dir, "berth.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("listen on %q: %v", sock, err)
	}
	s := &Server{Host: "unix://" + sock, mux: http.NewServeMux()}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go func() { _ = s.srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.srv.Close()
		_ = os.RemoveAll(dir)
	})
	return s
}

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

// serve answers pings, records the call and strips the version prefix
// before handing the request to the registered handlers.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Ostype", "linux")
	w.Header().Set("Server", "Docker/berth-fake (linux)")
	if r.URL.Path == "/_ping" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Docker-Experimental", "false")
		w.Header().Set("Swarm", "inactive")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("OK"))
		}
		return
	}
	r.URL.Path = "/" + strings.TrimPrefix(versionPrefix.ReplaceAllString(r.URL.Path, "/"), "/")
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		Error(w, http.StatusNotFound, "page not found")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Handle registers h for a Go 1.22 pattern such as
// "GET /containers/{id}/json" (paths without the version prefix).
func (s *Server) Handle(pattern string, h http.HandlerFunc) { s.mux.HandleFunc(pattern, h) }

// JSON registers a handler answering status with body as JSON.
func (s *Server) JSON(pattern string, status int, body any) {
	s.Handle(pattern, func(w http.ResponseWriter, _ *http.Request) { WriteJSON(w, status, body) })
}

// Calls returns the calls so far, "METHOD /path?query", pings excluded.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// WriteJSON writes body as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Error writes Docker's error body.
func Error(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"message": msg})
}

// Hijack takes over the connection the way moby does for attach and exec
// start: the request body (the JSON options) is consumed, then a raw 101
// answer names the stream's media type, then the bare connection is
// returned (with any stdin bytes the client already sent in rw's reader).
func Hijack(w http.ResponseWriter, r *http.Request, mediaType string) (net.Conn, *bufio.ReadWriter, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("response writer cannot hijack")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(rw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", mediaType)
	if err := rw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, rw, nil
}
