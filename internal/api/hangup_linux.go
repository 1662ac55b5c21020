package api

import (
	"errors"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// hangups tells when the client of a hijacked stream has gone: the
// kernel's EPOLLHUP on its socket, which a unix socket reports once the
// peer has closed it (not for a half-close: the docker CLI half-closes
// as soon as it has no more stdin to send, and goes on reading), and a
// TCP one once both directions are shut. A stream that writes nothing
// (a silent container's attach) would otherwise never notice, and hold
// its goroutine, its socket and the backend's attach until the container
// printed something or exited. moby's notifyClosed does this for attach
// with a thread per stream; here one epoll set and one goroutine serve
// them all, exec's streams too.
type hangups struct {
	mu      sync.Mutex
	ep      int // the epoll set, once watched is made (startLocked)
	seq     uint32
	watched map[uint32]hangupWatch
}

type hangupWatch struct {
	fd     int // a duplicate of the socket's, closed when the watch ends
	notify func()
}

// watch calls notify once conn's peer has closed it, until stop. A
// connection that has no file descriptor (a test's pipe) is not watched.
func (h *hangups) watch(conn net.Conn) (stop func(), hung <-chan struct{}) {
	done := make(chan struct{})
	nop := func() {}
	sc, ok := unwrapConn(conn).(syscall.Conn)
	if !ok {
		return nop, done
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nop, done
	}
	dup := -1
	if err := rc.Control(func(fd uintptr) { dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || dup < 0 {
		return nop, done
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.startLocked(); err != nil {
		unix.Close(dup)
		return nop, done
	}
	h.seq++
	id := h.seq
	ev := unix.EpollEvent{Events: unix.EPOLLHUP, Fd: int32(id)}
	if err := unix.EpollCtl(h.ep, unix.EPOLL_CTL_ADD, dup, &ev); err != nil {
		unix.Close(dup)
		return nop, done
	}
	var once sync.Once
	h.watched[id] = hangupWatch{fd: dup, notify: func() { once.Do(func() { close(done) }) }}
	return func() { h.end(id) }, done
}

// startLocked makes the epoll set and its goroutine, once.
func (h *hangups) startLocked() error {
	if h.watched != nil {
		return nil
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	h.ep, h.watched = ep, map[uint32]hangupWatch{}
	go h.wait()
	return nil
}

// wait runs for the life of the process, in the one blocking call.
func (h *hangups) wait() {
	events := make([]unix.EpollEvent, 32)
	for {
		n, err := unix.EpollWait(h.ep, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			id := uint32(ev.Fd)
			h.mu.Lock()
			w, ok := h.watched[id]
			h.mu.Unlock()
			if ok {
				w.notify()
				h.end(id)
			}
		}
	}
}

// end stops watching id and closes its descriptor.
func (h *hangups) end(id uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	w, ok := h.watched[id]
	if !ok {
		return
	}
	delete(h.watched, id)
	_ = unix.EpollCtl(h.ep, unix.EPOLL_CTL_DEL, w.fd, nil)
	unix.Close(w.fd)
}

// unwrapConn is the connection a prefixConn wraps.
func unwrapConn(c net.Conn) net.Conn {
	if p, ok := c.(*prefixConn); ok {
		return p.Conn
	}
	return c
}
