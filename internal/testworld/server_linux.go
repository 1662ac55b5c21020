package testworld

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"

	"github.com/berth-net/berth/internal/sandbox"
)

// server is the outside world's web server. It answers every HTTP request
// with the caller's source address ("you are 198.51.100.2\n") and records
// the source of every TCP connection, HTTP or not (busybox nc counts too).
type server struct {
	srv  *http.Server
	done chan struct{}

	mu      sync.Mutex
	sources []netip.Addr
}

// startServer listens on port 80 of each of addrs inside the namespace at
// nsPath. The sockets are made on a thread that entered the namespace
// (sandbox.Do), and a socket stays in the namespace it was made in, so
// serving from ordinary goroutines is safe.
func startServer(nsPath string, addrs ...netip.Addr) (*server, error) {
	var ls []net.Listener
	err := sandbox.Do(nsPath, func() error {
		for _, addr := range addrs {
			l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 80).String())
			if err != nil {
				return fmt.Errorf("listen on %s: %w", netip.AddrPortFrom(addr, 80), err)
			}
			ls = append(ls, l)
		}
		return nil
	})
	if err != nil {
		for _, l := range ls {
			l.Close()
		}
		return nil, fmt.Errorf("outside server in %q: %w", nsPath, err)
	}
	s := &server{done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.answer), ConnState: s.record}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { s.srv.Serve(l) }) // returns when close closes it
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *server) answer(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(rw, "you are %s\n", remoteAddr(r.RemoteAddr))
}

func (s *server) record(c net.Conn, state http.ConnState) {
	if state != http.StateNew {
		return
	}
	a := remoteAddr(c.RemoteAddr().String())
	s.mu.Lock()
	s.sources = append(s.sources, a)
	s.mu.Unlock()
}

func (s *server) seen() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.Addr(nil), s.sources...)
}

func (s *server) close() error {
	err := s.srv.Close() // not Shutdown: a silent nc client would hold it up
	<-s.done
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stop outside server: %w", err)
	}
	return nil
}

func remoteAddr(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
