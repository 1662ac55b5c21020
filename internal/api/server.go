package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"
)

// Server is the HTTP server in front of a Backend.
type Server struct {
	backend Backend
	log     *slog.Logger
	handler http.Handler
	http    *http.Server
	now     func() time.Time // for docker ps's "Up 5 seconds"

	// stopping ends long polls (wait, logs --follow) at Shutdown, which
	// would otherwise wait for containers to exit.
	stopping     context.Context
	stopLongPoll context.CancelFunc
	hangups      hangups // hijacked streams' clients going away

	mu        sync.Mutex
	hijacked  map[*hijacked]struct{} // streams http.Server.Shutdown does not know about
	direct    map[*directConn]struct{}
	listeners map[net.Listener]struct{}
	shutdown  bool
}

// New returns a server that answers API requests with b. A nil log discards.
func New(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		backend: b, log: log, now: time.Now, hijacked: map[*hijacked]struct{}{},
		direct: map[*directConn]struct{}{}, listeners: map[net.Listener]struct{}{},
	}
	s.stopping, s.stopLongPoll = context.WithCancel(context.Background())
	s.handler = s.middleware(s.routes())
	s.http = &http.Server{
		Handler:           closeAfterAnswer(s.handler),
		ReadHeaderTimeout: 30 * time.Second,
		// It keeps no connection alive (closeAfterAnswer): this only bounds
		// one whose client never sends its request's end.
		IdleTimeout: 2 * time.Minute,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s
}

// closeAfterAnswer is h for the http.Server, whose every connection came
// from the direct loop at a request that is not direct (a stream, a
// hijack, a long poll, a route the loop does not know): its answer says
// "Connection: close", so that a client's next request comes on a fresh
// connection, which starts on the direct loop again. Without it, one such
// request put every later short request of that connection on net/http's
// slower path: berth-bench's client, which imports its image first, did
// all its connects there. A hijacked connection is the handler's, and a
// redial over a unix socket costs little beside the requests that cause it.
func closeAfterAnswer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		h.ServeHTTP(w, r)
	})
}

// Handler returns the server's HTTP handler, with version handling and
// common headers, for use in tests or another http.Server.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on l until Shutdown; it returns nil after a
// clean Shutdown. Each connection starts on the direct loop (see conn.go)
// and goes to the http.Server at its first request that is not direct.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	hl := newHandoffListener(l.Addr())
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		_ = s.http.Serve(hl)
	}()
	sweepDone := make(chan struct{})
	go s.sweepEvery(headerTimeout/2, sweepDone)
	defer func() {
		close(sweepDone)
		hl.Close()
		<-httpDone
	}()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if s.closing() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of descriptors for a moment: wait as net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("api accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		go s.serveConn(c, hl.push)
	}
}

// Shutdown stops accepting connections, ends the hijacked exec/attach
// streams (which the http.Server no longer tracks: their attaches are
// cancelled, execs keep running), closes idle connections and waits for
// ordinary requests to end until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopLongPoll()
	s.mu.Lock()
	s.shutdown = true
	for l := range s.listeners {
		_ = l.Close()
	}
	streams := make([]*hijacked, 0, len(s.hijacked))
	for h := range s.hijacked {
		streams = append(streams, h)
	}
	s.mu.Unlock()
	for _, h := range streams {
		h.cancel()
		h.stopHangup() // its duplicate descriptor would keep the socket open
		_ = h.conn.Close()
	}
	err := s.http.Shutdown(ctx)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for s.sweep(time.Now(), true) > 0 {
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
	return err
}

// longPoll is ctx, also cancelled when the server shuts down.
func (s *Server) longPoll(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.stopping, cancel)
	return ctx, func() { stop(); cancel() }
}

func (s *Server) trackHijacked(h *hijacked, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.hijacked[h] = struct{}{}
	} else {
		delete(s.hijacked, h)
	}
}

// ListenUnix removes a stale socket file at path and listens there with
// mode 0660. A gid >= 0 gives the group of that id access to the socket.
func ListenUnix(path string, gid int) (net.Listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %q: %w", path, err)
	}
	// The listener must not unlink the file on Close: a second daemon that
	// raced us would lose its socket. removeStaleSocket cleans up instead.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o660); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("chmod socket %q: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("chown socket %q to group %d: %w", path, gid, err)
		}
	}
	return l, nil
}

// CheckSocketFree says, before the daemon touches anything, whether
// ListenUnix can take path: an error if another daemon answers there or
// the path is something other than a socket. It changes nothing.
func CheckSocketFree(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat socket %q: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%q exists and is not a socket: remove it or choose another path", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("another daemon is listening on %q", path)
	}
	return nil
}

// removeStaleSocket deletes a socket file nobody listens on; it refuses to
// delete anything that is not a socket, or a socket that still answers.
func removeStaleSocket(path string) error {
	if err := CheckSocketFree(path); err != nil {
		return err
	}
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket %q: %w", path, err)
	}
	return nil
}
