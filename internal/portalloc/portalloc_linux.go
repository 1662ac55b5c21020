// Package portalloc holds published host ports, as Docker 28 does: for each
// mapping it binds a socket on HostIP:HostPort in the daemon's network
// namespace and keeps it open until the port is released. A port that a
// host process already uses is refused with Docker's words, and no process
// can take a published port later. Its socket never accepts anything —
// a TCP one is bound without listen, a UDP one drops every datagram —
// because nftables DNATs the port's traffic before it could reach it;
// except the IPv6 ports the proxy serves (HostPortRequest.Proxied, then
// Forward, internal/portproxy): TCP ones listen from the bind on (a
// client's handshake waits in the backlog until Forward starts
// accepting), UDP ones drop datagrams until then. A daemon that stops
// hands its sockets on to the next (Detach, Adopt): a proxied one queues
// connections and datagrams meanwhile.
package portalloc

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"sync"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/portproxy"
	"github.com/berth-net/berth/internal/sandbox"
	"golang.org/x/sys/unix"
)

// Allocator implements network.PortHolder with bound sockets.
type Allocator struct {
	netns string
	log   *slog.Logger
	// syscallsOnly makes Hold bind without io_uring, as where the kernel
	// has none (tests use it to cover both ways).
	syscallsOnly bool
	// rings are the io_uring instances of the threads Hold binds on (see
	// batch_linux.go), made on first use and kept until Close: setting one
	// up costs more than binding a hundred ports through it.
	rings   []*ring
	noRings error // why io_uring cannot be used here, once known

	mu   sync.Mutex
	held map[network.HostPort]int // the socket holding each port
	// proxies forward the ports Forward was asked to (IPv6 ones, to an
	// IPv4 container); Release stops them before it closes the socket.
	proxies map[network.HostPort]*portproxy.Proxy
	// adopted are sockets a process before this one held (Adopt), which
	// Hold takes for their ports instead of binding new ones, and
	// adoptedConns the connections and UDP flows its proxies carried,
	// which Forward carries on.
	adopted      map[network.HostPort]int
	adoptedConns map[network.HostPort]portproxy.Kept
	// next says where the search of each range (and of the ephemeral
	// range) for a free port starts.
	next cursors
}

var _ network.PortHolder = (*Allocator)(nil)

// New returns an Allocator that binds in the network namespace at
// netnsPath, or in the caller's own when netnsPath is "".
func New(netnsPath string, log *slog.Logger) *Allocator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Allocator{netns: netnsPath, log: log, held: map[network.HostPort]int{}, proxies: map[network.HostPort]*portproxy.Proxy{},
		next: cursors{}}
}

// Hold binds one port per request, all or none: on any failure the ports
// bound so far by this call are released. A request with Start 0 gets a
// port of the ephemeral range (ip_local_port_range, less
// ip_local_reserved_ports), a range one of its own: as moby's port
// allocator, the first free port after the one the range gave last (from
// its start at first, wrapping at its end), so that ports are handed out
// in order and one just let go is not at once given to another container.
func (a *Allocator) Hold(reqs []network.HostPortRequest) ([]network.HostPort, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]network.HostPort, len(reqs))
	fds := make([]int, len(reqs))
	for i := range fds {
		fds[i] = -1
	}
	// Exact ports do not depend on one another and are bound in batches
	// through io_uring (batch_linux.go), on several threads when there are
	// many; ranges and ephemeral ports come after, one by one, so that they
	// skip what is taken.
	var exact, rest []int
	for i, r := range reqs {
		if fd, ok := a.takeAdoptedLocked(r); ok {
			out[i], fds[i] = network.HostPort{Proto: r.Proto, HostIP: anyIfInvalid(r.HostIP), Port: r.Start}, fd
			continue
		}
		// The batches bind IPv4 sockets that never accept; IPv6 ones and
		// those the proxy serves (few) go one by one.
		if r.Start != 0 && r.Start == r.End && anyIfInvalid(r.HostIP).Is4() && !r.Proxied {
			exact = append(exact, i)
		} else {
			rest = append(rest, i)
		}
	}
	err := a.holdParallel(reqs, exact, out, fds)
	if rerr := (*ringError)(nil); errors.As(err, &rerr) {
		// The ring failed, not a bind: again, one by one.
		a.dropRings(rerr)
		for _, i := range exact {
			if fds[i] >= 0 {
				unix.Close(fds[i])
				fds[i] = -1
			}
		}
		err = a.inNetns(func() error { return holdEach(reqs, exact, out, fds, nil) })
	}
	if err == nil && len(rest) > 0 {
		pick := &picker{next: a.next, held: a.held}
		err = a.inNetns(func() error { return holdEach(reqs, rest, out, fds, pick) })
	}
	if err != nil {
		a.closeAll(slices.DeleteFunc(fds, func(fd int) bool { return fd < 0 }))
		return nil, a.word(err, reqs, out)
	}
	for i, hp := range out {
		a.held[hp] = fds[i]
	}
	return out, nil
}

// parallelMin is the number of exact ports from which Hold binds them on
// several threads.
const parallelMin = 256

// holdParallel binds the requests at idx, on up to GOMAXPROCS threads when
// there are many, each with its own ring. Each worker writes only its own
// slots of out and fds.
func (a *Allocator) holdParallel(reqs []network.HostPortRequest, idx []int, out []network.HostPort, fds []int) error {
	if len(idx) == 0 {
		return nil
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), len(idx)/parallelMin))
	rings := a.ringsFor(workers)
	ringOf := func(w int) *ring {
		if rings == nil {
			return nil
		}
		return rings[w]
	}
	if workers == 1 {
		return a.inNetns(func() error { return holdExact(ringOf(0), reqs, idx, out, fds) })
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		part := idx[w*len(idx)/workers : (w+1)*len(idx)/workers]
		wg.Go(func() {
			errs[w] = a.inNetns(func() error { return holdExact(ringOf(w), reqs, part, out, fds) })
		})
	}
	wg.Wait()
	// A ring's own failure first: Hold drops the rings and binds again.
	for _, err := range errs {
		if rerr := (*ringError)(nil); errors.As(err, &rerr) {
			return err
		}
	}
	// The first worker's error, not all of them joined: Hold reports the
	// same port whether it ran on one thread or several.
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// holdEach binds the requests at idx in order, with a few system calls
// each; pick chooses the ports of ranges and ephemeral requests (nil: idx
// has exact ports alone).
func holdEach(reqs []network.HostPortRequest, idx []int, out []network.HostPort, fds []int, pick *picker) error {
	for _, i := range idx {
		hp, fd, err := holdOne(reqs[i], pick)
		if err != nil {
			var f *bindFailure
			if errors.As(err, &f) {
				f.i = i
			}
			return err
		}
		out[i], fds[i] = hp, fd
	}
	return nil
}

// Release closes the sockets of ps; ports not held are not an error. It
// stops their forwarding first, outside the lock: a proxy's Stop waits
// for its connections to end. The ports stop being held at once, with
// their proxies: a Forward meanwhile found a held port without a proxy
// and started one that outlived the Release.
func (a *Allocator) Release(ps []network.HostPort) error {
	a.mu.Lock()
	var stopping []*portproxy.Proxy
	var fds []int
	var which []network.HostPort
	for _, hp := range ps {
		hp.HostIP = anyIfInvalid(hp.HostIP)
		if p := a.proxies[hp]; p != nil {
			stopping = append(stopping, p)
			delete(a.proxies, hp)
		}
		if fd, ok := a.held[hp]; ok {
			delete(a.held, hp)
			fds, which = append(fds, fd), append(which, hp)
		}
	}
	a.mu.Unlock()
	for _, p := range stopping {
		p.Stop()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for i, err := range a.closeAll(fds) {
		if err != nil {
			hp := which[i]
			errs = append(errs, fmt.Errorf("close socket of %s: %w", hp, err))
		}
	}
	return errors.Join(errs...)
}

// Forward makes the process forward the traffic of held port hp to
// target itself (portproxy): the IPv6 side of a port published to a
// container that has IPv4 only. Forwarding a port already forwarded is a
// no-op; Release stops it.
func (a *Allocator) Forward(hp network.HostPort, target netip.AddrPort) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	hp.HostIP = anyIfInvalid(hp.HostIP)
	fd, ok := a.held[hp]
	if !ok {
		return fmt.Errorf("forward %s: the port is not held", hp)
	}
	if a.proxies[hp] != nil {
		return nil
	}
	kept := a.adoptedConns[hp] // carried on by the proxy, or closed if it cannot start
	delete(a.adoptedConns, hp)
	p, err := portproxy.Start(fd, hp.Proto, target, kept, a.log)
	if err != nil {
		return fmt.Errorf("forward %s to %s: %w", hp, target, err)
	}
	a.proxies[hp] = p
	return nil
}

// IPv6Listenable reports whether IPv6 sockets can be bound in the
// allocator's namespace (moby's IsV6Listenable): where not, ports are
// published on IPv4 alone.
func (a *Allocator) IPv6Listenable() bool {
	ok := false
	_ = a.inNetns(func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		defer unix.Close(fd)
		ok = unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}) == nil
		return nil
	})
	return ok
}

// Held returns how many ports are held.
func (a *Allocator) Held() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.held)
}

// Close releases every port, closes the adopted sockets no Hold took and
// frees the rings.
func (a *Allocator) Close() error {
	a.mu.Lock()
	ps := make([]network.HostPort, 0, len(a.held))
	for hp := range a.held {
		ps = append(ps, hp)
	}
	a.mu.Unlock()
	err := a.Release(ps)
	a.DropAdopted()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.rings {
		r.close()
	}
	a.rings = nil
	return err
}

func (a *Allocator) inNetns(fn func() error) error {
	if a.netns == "" {
		return fn()
	}
	return sandbox.Do(a.netns, fn)
}

// socketType validates r and returns the type of the socket that holds it.
func socketType(r network.HostPortRequest) (int, error) {
	if ip := anyIfInvalid(r.HostIP); !ip.Is4() && (!ip.Is6() || ip.Is4In6() || ip.Zone() != "") {
		return 0, errdefs.Invalid("cannot publish on %s: not an IPv4 or IPv6 address", ip)
	}
	switch r.Proto {
	case "tcp":
		return unix.SOCK_STREAM, nil
	case "udp":
		return unix.SOCK_DGRAM, nil
	}
	return 0, errdefs.Invalid("cannot hold a %q port", r.Proto)
}

// holdOne binds r's port: its own, or the first free one pick finds in
// its range (or the ephemeral range). A failed bind is a *bindFailure
// (without its index), which Hold words.
func holdOne(r network.HostPortRequest, pick *picker) (hp network.HostPort, fd int, err error) {
	typ, err := socketType(r)
	if err != nil {
		return network.HostPort{}, -1, err
	}
	defer func() {
		var sf *socketFailure
		if errors.As(err, &sf) {
			err = socketError(r, sf.err)
		}
	}()
	ip := anyIfInvalid(r.HostIP)
	if r.Start != 0 && r.Start == r.End {
		fd, port, err := bindPort(typ, ip, r.Start, r.Proxied)
		if err != nil {
			return network.HostPort{}, -1, err
		}
		return network.HostPort{Proto: r.Proto, HostIP: ip, Port: port}, fd, nil
	}
	if pick == nil {
		pick = &picker{next: cursors{}}
	}
	span := portSpan{lo: r.Start, hi: r.End}
	if r.Start == 0 {
		var ok bool
		if span, ok = pick.ephemeral(); !ok {
			// No range to read (no /proc): the kernel's own pick.
			fd, port, err := bindPort(typ, ip, 0, r.Proxied)
			if err != nil {
				return network.HostPort{}, -1, err
			}
			return network.HostPort{Proto: r.Proto, HostIP: ip, Port: port}, fd, nil
		}
	}
	key := cursorKey{proto: r.Proto, ip: ip, lo: span.lo, hi: span.hi, ephemeral: r.Start == 0}
	from := pick.next.from(key)
	lastTried := uint16(0)
	for p := range span.from(from) {
		if span.reserved[p] || pick.taken(r.Proto, ip, p) {
			continue
		}
		fd, port, err := bindPort(typ, ip, p, r.Proxied)
		if errors.Is(err, unix.EADDRINUSE) {
			lastTried = p
			continue
		}
		if err != nil {
			var f *bindFailure
			if errors.As(err, &f) {
				f.span, f.from = span, from
			}
			return network.HostPort{}, -1, err
		}
		pick.next.gave(key, port)
		return network.HostPort{Proto: r.Proto, HostIP: ip, Port: port}, fd, nil
	}
	return network.HostPort{}, -1, &bindFailure{port: lastTried, err: unix.EADDRINUSE, inUse: true, span: span, from: from}
}

// bindPort binds a socket of type typ — without SO_REUSEADDR, so that no
// other socket, with or without it, can bind the port — and returns it
// with its port; a failed bind is a *bindFailure. Docker 28 sets
// SO_REUSEADDR and so must also listen on TCP ports; berth's sockets keep
// others out without listening, except the TCP ones the proxy serves
// (proxied), which set it and listen (see below).
func bindPort(typ int, ip netip.Addr, port uint16, proxied bool) (int, uint16, error) {
	family := unix.AF_INET
	if ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, 0, &socketFailure{err}
	}
	if family == unix.AF_INET6 {
		// [::]:PORT holds the IPv6 port alone, beside 0.0.0.0:PORT, as
		// Docker's IPv6 sockets do.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("set IPV6_V6ONLY: %w", err)
		}
	}
	// A TCP port's connections leave TIME_WAIT sockets behind, which
	// keep a bind without SO_REUSEADDR off the port for a minute: those
	// of a proxied port (portproxy serves it) after the container goes or
	// the daemon restarts, those of a host service that stopped (nginx,
	// then docker run -p 80:80). Docker's sockets set it, so berth's do
	// too. A proxied port's socket listens at once (below): Linux lets
	// no other socket bind a port that one listens on. The others clear
	// it after the bind, so that no other socket can share the port.
	listens := proxied && typ == unix.SOCK_STREAM
	reuse := typ == unix.SOCK_STREAM
	if reuse {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("set SO_REUSEADDR: %w", err)
		}
	}
	if typ == unix.SOCK_DGRAM {
		if err := attachDropFilter(fd); err != nil {
			unix.Close(fd)
			return -1, 0, err
		}
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, 0, &bindFailure{port: port, err: err}
	}
	if reuse && !listens {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 0); err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("clear SO_REUSEADDR: %w", err)
		}
	}
	if listens {
		if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
			unix.Close(fd)
			return -1, 0, &bindFailure{port: port, err: err}
		}
	}
	if port == 0 {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return -1, 0, fmt.Errorf("getsockname: %w", err)
		}
		switch a := sa.(type) {
		case *unix.SockaddrInet4:
			port = uint16(a.Port)
		case *unix.SockaddrInet6:
			port = uint16(a.Port)
		}
	}
	return fd, port, nil
}

// socketFailure is a socket(2) that failed in bindPort; holdOne words it
// with its request (socketError).
type socketFailure struct{ err error }

func (e *socketFailure) Error() string { return "socket: " + e.err.Error() }
func (e *socketFailure) Unwrap() error { return e.err }

// socketError is moby's wording of a socket that could not be made for
// r (bindTCPOrUDP's), whichever way Hold made it.
func socketError(r network.HostPortRequest, err error) error {
	return fmt.Errorf("failed to create socket for userland proxy for %s: %w", mappingString(r), err)
}

// bindReusing binds the TCP socket fd to sa with SO_REUSEADDR set for the
// bind alone (see bindPort): the retry of a batched bind that a host
// service's TIME_WAIT sockets refused.
func bindReusing(fd int, sa unix.Sockaddr) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 0)
}

// attachDropFilter makes a UDP socket drop at once a datagram that is not
// DNATed (none should be) instead of queueing it in a buffer nobody reads.
func attachDropFilter(fd int) error {
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &dropAll); err != nil {
		return fmt.Errorf("attach drop filter: %w", err)
	}
	return nil
}

// dropAll is the classic BPF program "ret #0": accept no bytes of any packet.
var dropAll = unix.SockFprog{Len: 1, Filter: &[]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}[0]}

func anyIfInvalid(ip netip.Addr) netip.Addr {
	if !ip.IsValid() {
		return netip.IPv4Unspecified()
	}
	return ip
}

// Detach, as the daemon stops, stops every forwarding and hands over the
// sockets of the held ports and the connections and UDP flows the
// proxies carried (portproxy.Proxy.Detach), with the adopted ones no Hold
// or Forward took yet, which the caller then owns: the Allocator holds
// nothing after it. A proxied TCP socket goes on listening, so a client's
// handshake waits in its backlog for the next process to serve it
// (Adopt, then Forward); a proxied UDP socket queues datagrams, and a
// flow's socket the container's replies.
func (a *Allocator) Detach() (map[network.HostPort]int, map[network.HostPort]portproxy.Kept) {
	a.mu.Lock()
	stopping := a.proxies
	a.proxies = map[network.HostPort]*portproxy.Proxy{}
	held := a.held // with the proxies, as Release: no Forward starts one now
	a.held = map[network.HostPort]int{}
	a.mu.Unlock()
	conns := map[network.HostPort]portproxy.Kept{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for hp, p := range stopping {
		wg.Go(func() { // each may wait for a dial (portproxy's handOverWait)
			if kept := p.Detach(); kept.Len() > 0 {
				mu.Lock()
				conns[hp] = kept
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	// What a process before this one left and nothing took yet (a start
	// that failed half way) goes on to the next.
	for hp, fd := range a.adopted {
		if _, ok := held[hp]; ok {
			unix.Close(fd)
			continue
		}
		held[hp] = fd
	}
	for hp, k := range a.adoptedConns {
		conns[hp] = conns[hp].Join(k)
	}
	a.adopted, a.adoptedConns = nil, nil
	return held, conns
}

// Adopt gives the Allocator the sockets of ports a process before it held
// and the connections and UDP flows its proxies carried (Detach, by way
// of the daemon's reaper), which it then owns: Hold takes an adopted
// socket for an exact request of its port, so that a port stays held
// across a daemon restart and a proxied one's clients wait in its backlog
// rather than being refused, and Forward carries the port's connections
// and flows on. DropAdopted closes what neither took.
func (a *Allocator) Adopt(fds map[network.HostPort]int, conns map[network.HostPort]portproxy.Kept) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.adopted == nil {
		a.adopted = map[network.HostPort]int{}
	}
	if a.adoptedConns == nil {
		a.adoptedConns = map[network.HostPort]portproxy.Kept{}
	}
	for hp, fd := range fds {
		hp.HostIP = anyIfInvalid(hp.HostIP)
		if old, ok := a.adopted[hp]; ok {
			unix.Close(old)
		}
		a.adopted[hp] = fd
	}
	for hp, k := range conns {
		hp.HostIP = anyIfInvalid(hp.HostIP)
		a.adoptedConns[hp] = a.adoptedConns[hp].Join(k)
	}
}

// DropAdopted closes the adopted sockets no Hold took (ports no longer
// published) and the connections and flows no Forward carried on, and
// returns how many sockets it closed.
func (a *Allocator) DropAdopted() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.adopted)
	for _, fd := range a.adopted {
		unix.Close(fd)
	}
	a.adopted = nil
	for _, k := range a.adoptedConns {
		k.Close()
	}
	a.adoptedConns = nil
	return n
}

// takeAdoptedLocked (a.mu held) returns the adopted socket of r's port,
// made ready for r, if r asks for one port exactly and there is one. A
// socket that cannot be made what r needs is closed, and r bound anew.
func (a *Allocator) takeAdoptedLocked(r network.HostPortRequest) (int, bool) {
	if len(a.adopted) == 0 || r.Start == 0 || r.Start != r.End {
		return -1, false
	}
	hp := network.HostPort{Proto: r.Proto, HostIP: anyIfInvalid(r.HostIP), Port: r.Start}
	fd, ok := a.adopted[hp]
	if !ok {
		return -1, false
	}
	delete(a.adopted, hp)
	if err := readyAdopted(fd, r); err != nil {
		a.log.Warn("a held port's socket from before the restart cannot serve; binding the port anew", "port", hp.String(), "err", err)
		unix.Close(fd)
		return -1, false
	}
	return fd, true
}

// readyAdopted makes an adopted socket what bindPort would have made for
// r: a proxied TCP port listens (it may not have been proxied before), a
// TCP port that is not proxied must not (a listener nobody accepts on
// would take connections and leave them hanging, so it is refused), and
// a UDP port that is not proxied drops every datagram again (the proxy
// took the filter off).
func readyAdopted(fd int, r network.HostPortRequest) error {
	typ, err := socketType(r)
	if err != nil {
		return err
	}
	got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("socket type: %w", err)
	}
	if got != typ {
		return fmt.Errorf("socket type %d, want %d", got, typ)
	}
	switch {
	case typ == unix.SOCK_STREAM && r.Proxied:
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("set SO_REUSEADDR: %w", err)
		}
		return unix.Listen(fd, unix.SOMAXCONN)
	case typ == unix.SOCK_STREAM:
		listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if err != nil {
			return fmt.Errorf("read SO_ACCEPTCONN: %w", err)
		}
		if listening != 0 {
			return errors.New("it listens, and the port is no longer proxied")
		}
	case !r.Proxied:
		if err := attachDropFilter(fd); err != nil {
			return err
		}
		// Datagrams queued while the socket was proxied and handed over
		// would stay in its buffer for good.
		buf := make([]byte, 1)
		for {
			if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT|unix.MSG_TRUNC); err != nil {
				break
			}
		}
	}
	return nil
}
