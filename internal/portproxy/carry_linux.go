package portproxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/fdutil"
)

// A TCP connection is carried both ways by splice(2) through a pipe of
// its own for each direction, as Go's io.Copy between two TCPConns does,
// but with the pipe in the proxy's hands: a daemon that stops hands each
// connection over with what it had read and not yet written still in its
// pipe, so no byte is lost and no connection waits on a slow reader.

// pipeSize is the capacity asked for each direction's pipe, as Go's
// splice asks (its maxSpliceSize): large enough that a splice moves as
// much as a socket buffer holds.
const pipeSize = 1 << 20

// KeptConn is a TCP connection the proxy carried, handed over by Detach
// for another process to carry on (Start): the client's socket and the
// container's, which of the two streams had ended (and been passed on as
// a half close), and for each direction the pipe holding bytes read and
// not yet written (both its ends; -1 when empty).
type KeptConn struct {
	Client, Backend         int
	ClientDone, BackendDone bool
	ToClient, ToBackend     [2]int
}

// NoPipe is a KeptConn direction with nothing pending.
var NoPipe = [2]int{-1, -1}

// Fds are k's descriptors in a fixed order: the client's, the
// container's, then each pending pipe's two ends (to the client, then to
// the container).
func (k KeptConn) Fds() []int {
	fds := []int{k.Client, k.Backend}
	for _, p := range [][2]int{k.ToClient, k.ToBackend} {
		if p[0] >= 0 {
			fds = append(fds, p[0], p[1])
		}
	}
	return fds
}

// Close closes k's descriptors.
func (k KeptConn) Close() {
	for _, fd := range k.Fds() {
		unix.Close(fd)
	}
}

// pipe is a TCP connection the proxy carries: the client's end and the
// container's, and the two directions.
type pipe struct {
	client, backend *net.TCPConn
	up, down        *stream     // client → container, container → client
	cut             atomic.Bool // both ends closed: nothing to hand over
}

// cutOff ends the connection both ways at once.
func (pp *pipe) cutOff() {
	pp.cut.Store(true)
	pp.client.Close()
	pp.backend.Close()
}

// stream is one direction of a connection: bytes spliced from src into
// the pipe, then from the pipe into dst.
type stream struct {
	src, dst *net.TCPConn
	r, w     int  // the pipe's ends; -1 until made
	pending  int  // bytes in the pipe
	done     bool // src ended; dst's writing side is shut next (a failure there cuts the connection)
}

// run copies until src ends (nil, with dst's writing side shut) or an
// error: a deadline Detach set (the stream is paused, what it read in its
// pipe) or a failure of either socket.
func (s *stream) run() error {
	if s.done {
		return nil
	}
	srcRC, err := s.src.SyscallConn()
	if err != nil {
		return err
	}
	dstRC, err := s.dst.SyscallConn()
	if err != nil {
		return err
	}
	if s.r < 0 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return fmt.Errorf("pipe: %w", err)
		}
		s.r, s.w = p[0], p[1]
		_, _ = unix.FcntlInt(uintptr(s.w), unix.F_SETPIPE_SZ, pipeSize) // a smaller pipe works too
	}
	// The two system calls, made once (a closure a call would be an
	// allocation a call).
	var n int64
	var serr error
	write := func(fd uintptr) bool {
		for {
			n, serr = unix.Splice(s.r, nil, int(fd), nil, s.pending, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			if serr != unix.EINTR {
				return serr != unix.EAGAIN
			}
		}
	}
	read := func(fd uintptr) bool {
		for {
			n, serr = unix.Splice(int(fd), nil, s.w, nil, pipeSize, unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
			if serr != unix.EINTR {
				return serr != unix.EAGAIN
			}
		}
	}
	for {
		for s.pending > 0 {
			if err := dstRC.Write(write); err != nil {
				return err
			}
			if serr != nil {
				return fmt.Errorf("write: %w", serr)
			}
			if n <= 0 { // bytes pending that the pipe does not give: never loop on it
				return fmt.Errorf("write: the pipe gave %d of %d pending bytes", n, s.pending)
			}
			s.pending -= int(n)
		}
		if err := srcRC.Read(read); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("read: %w", serr)
		}
		if n == 0 {
			s.done = true
			return s.dst.CloseWrite()
		}
		s.pending += int(n)
	}
}

// release closes the stream's pipe.
func (s *stream) release() {
	if s.r >= 0 {
		unix.Close(s.r)
		unix.Close(s.w)
		s.r, s.w = -1, -1
	}
}

// kept is the stream's pipe for a KeptConn, duplicated, or NoPipe when
// nothing is pending.
func (s *stream) kept() ([2]int, error) {
	if s.pending == 0 {
		return NoPipe, nil
	}
	r, err := unix.FcntlInt(uintptr(s.r), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return NoPipe, err
	}
	w, err := unix.FcntlInt(uintptr(s.w), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Close(r)
		return NoPipe, err
	}
	return [2]int{r, w}, nil
}

// serve carries a client's connection to a new connection to the
// container.
func (p *Proxy) serve(client *net.TCPConn, target netip.AddrPort, log *slog.Logger) {
	d := net.Dialer{Timeout: dialTimeout}
	bc, err := d.DialContext(p.ctx, family("tcp", target), target.String())
	if err != nil {
		client.Close()
		log.Debug("proxy dial", "target", target, "err", err)
		return
	}
	backend := bc.(*net.TCPConn)
	p.carry(&pipe{client: client, backend: backend,
		up:   &stream{src: client, dst: backend, r: -1, w: -1},
		down: &stream{src: backend, dst: client, r: -1, w: -1}})
}

// carry copies both ways until both streams have ended, one fails, or
// Detach pauses them: then it hands the connection over (kept) instead of
// closing it.
func (p *Proxy) carry(pp *pipe) {
	defer pp.up.release()
	defer pp.down.release()
	p.mu.Lock()
	if p.closed && !p.detaching || p.detached {
		p.mu.Unlock()
		pp.cutOff()
		return
	}
	p.pipes[pp] = struct{}{}
	if p.detaching {
		pp.pause()
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range []*stream{pp.up, pp.down} {
		wg.Go(func() {
			err := s.run()
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) && p.isDetaching() {
				return // ended, or paused: handed over below
			}
			// A reset or a Stop: end both directions at once.
			pp.cutOff()
		})
	}
	wg.Wait()
	p.mu.Lock()
	delete(p.pipes, pp)
	if p.detaching && !pp.cut.Load() && !(pp.up.done && pp.down.done) {
		if k, err := pp.handOver(); err == nil {
			p.kept = append(p.kept, k)
		} else {
			p.log.Warn("proxy: hand a connection over", "err", err)
		}
	}
	p.mu.Unlock()
	pp.client.Close()
	pp.backend.Close()
}

// pause makes both sockets' reads and writes return at once.
func (pp *pipe) pause() {
	now := time.Now()
	pp.client.SetDeadline(now)
	pp.backend.SetDeadline(now)
}

// handOver duplicates the sockets and the pipes that hold bytes, for a
// KeptConn the caller owns.
func (pp *pipe) handOver() (k KeptConn, err error) {
	k = KeptConn{Client: -1, Backend: -1, ToClient: NoPipe, ToBackend: NoPipe, ClientDone: pp.up.done, BackendDone: pp.down.done}
	defer func() {
		if err != nil {
			k.Close()
		}
	}()
	if k.Client, err = fdutil.Dup(pp.client); err != nil {
		return k, err
	}
	if k.Backend, err = fdutil.Dup(pp.backend); err != nil {
		return k, err
	}
	if k.ToClient, err = pp.down.kept(); err != nil {
		return k, err
	}
	k.ToBackend, err = pp.up.kept()
	return k, err
}

func (p *Proxy) isDetaching() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.detaching
}

// handOverWait bounds how long Detach waits for a dial to the container
// in progress (its connection is then handed over too) before it gives
// the dial up and cuts the client.
const handOverWait = 500 * time.Millisecond

// Detach, as the daemon stops, stops the proxy as Stop does but hands its
// TCP connections and UDP flows over instead of ending them: each stops
// reading and writing at once and is returned, its sockets and its
// pending bytes' pipes duplicated, for the next process's Start. Dials
// to the container not made within handOverWait end. The caller's socket
// stays open.
func (p *Proxy) Detach() Kept {
	p.mu.Lock()
	p.detaching = true
	p.closeLocked((*pipe).pause)
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(handOverWait):
		p.cancel()
		<-done
	}
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detached = true
	kept := Kept{Conns: p.kept, Flows: p.keptFlows}
	p.kept, p.keptFlows = nil, nil
	return kept
}

// resume carries on the connections and flows another proxy handed over
// (Detach), which it then owns, until they end or the proxy stops. A TCP
// proxy closes UDP flows, and the other way round.
func (p *Proxy) resume(k Kept) {
	p.resumeConns(k.Conns)
	p.resumeFlows(k.Flows)
}

// resumeConns carries on kept TCP connections; one to another address
// than the proxy's target is cut.
func (p *Proxy) resumeConns(conns []KeptConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.uc != nil {
		for _, k := range conns {
			k.Close()
		}
		return
	}
	for _, k := range conns {
		pp, err := resumed(k)
		if err != nil {
			p.log.Warn("proxy: carry on a connection from before the restart", "err", err)
			continue
		}
		if !p.isTarget(pp.backend.RemoteAddr()) {
			pp.up.release()
			pp.down.release()
			pp.cutOff()
			continue
		}
		p.wg.Go(func() { p.carry(pp) })
	}
}

// resumed makes the pipe of a KeptConn, which it then owns (closing it all
// on failure).
func resumed(k KeptConn) (*pipe, error) {
	client, err1 := fileConn[*net.TCPConn](k.Client)
	backend, err2 := fileConn[*net.TCPConn](k.Backend)
	if err := errors.Join(err1, err2); err != nil {
		closeIf(client)
		closeIf(backend)
		for _, p := range [][2]int{k.ToClient, k.ToBackend} {
			if p[0] >= 0 {
				unix.Close(p[0])
				unix.Close(p[1])
			}
		}
		return nil, err
	}
	pp := &pipe{client: client, backend: backend,
		up:   &stream{src: client, dst: backend, r: k.ToBackend[0], w: k.ToBackend[1], done: k.ClientDone},
		down: &stream{src: backend, dst: client, r: k.ToClient[0], w: k.ToClient[1], done: k.BackendDone}}
	for _, s := range []*stream{pp.up, pp.down} {
		if s.r >= 0 {
			n, err := unix.IoctlGetInt(s.r, unix.TIOCINQ) // FIONREAD: bytes in the pipe
			if err != nil {
				pp.up.release()
				pp.down.release()
				client.Close()
				backend.Close()
				return nil, fmt.Errorf("bytes pending in a kept pipe: %w", err)
			}
			s.pending = n
		}
	}
	return pp, nil
}

// fileConn makes a conn of type C (*net.TCPConn, *net.UDPConn) of socket
// fd, which it closes (the conn has a duplicate).
func fileConn[C net.Conn](fd int) (C, error) {
	var none C
	f := os.NewFile(uintptr(fd), "kept")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return none, err
	}
	tc, ok := c.(C)
	if !ok {
		c.Close()
		return none, fmt.Errorf("socket %d is a %T, not a %T", fd, c, none)
	}
	return tc, nil
}

func closeIf(c *net.TCPConn) {
	if c != nil {
		c.Close()
	}
}
