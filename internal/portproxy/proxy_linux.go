// Package portproxy forwards a published port's IPv6 side to a container
// that has IPv4 only, as Docker 28's userland proxy (docker-proxy) does
// for the [::]:PORT binding it adds to every port published on all
// addresses: nftables can rewrite an address but not translate one family
// into the other, so the daemon accepts on the IPv6 socket that holds the
// port and connects to the container itself. One goroutine a socket,
// three a TCP connection (its carry and one a direction), one a UDP
// flow; no process per port (Docker: one docker-proxy each). Connections
// reach the container from the bridge's gateway address, as through
// docker-proxy.
package portproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/fdutil"
)

// UDPFlowTimeout is how long a UDP client's flow lives without traffic,
// docker-proxy's UDPConnTrackTimeout.
// (A variable for the tests.)
var UDPFlowTimeout = 90 * time.Second

// maxUDPFlows bounds the flows of one port (a socket and a goroutine
// each). docker-proxy has no bound; at this one a new client takes the
// place of the flow whose last traffic is oldest, so that every client is
// served (at 1,024, with clients beyond it dropped, 76 of 1,100 got no
// answer; review of session 30).
var maxUDPFlows = 4096 // a variable for the tests

// dialTimeout bounds a connection to the container; a var for the test
// that proves Stop does not wait for a dial to time out.
var dialTimeout = 10 * time.Second

// Proxy forwards one socket's traffic until Stop or Detach.
type Proxy struct {
	closer io.Closer
	ctx    context.Context // ends with Stop or Detach: a dial to the container gives up at once
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	flows  map[*flow]struct{} // open UDP flows, each counted in wg
	closed bool
	// pipes are the TCP connections being carried (carry_linux.go);
	// detaching, set by Detach, makes each hand itself over to kept
	// instead of ending, until detached, once Detach has returned.
	pipes               map[*pipe]struct{}
	detaching, detached bool
	kept                []KeptConn
	keptFlows           []KeptFlow
	log                 *slog.Logger
	// A UDP port's socket, where its container's address is, and its
	// flows by client (udpLoop, resumeFlows); nil for TCP.
	uc       *net.UDPConn
	target   netip.AddrPort
	fmu      sync.Mutex // guards byClient and each flow's last; taken before mu
	byClient map[netip.AddrPort]*flow
}

// Start forwards the traffic of the bound socket fd (TCP or UDP, which
// stays the caller's: Start works on a duplicate) to target. A TCP socket
// is made to listen; a UDP socket loses any filter it had.
//
// It first carries on kept, the connections and flows a proxy of the
// port handed over (Detach), which it then owns (closing them if it
// fails): before it reads the socket, so that a client whose datagrams
// waited in it meanwhile goes on in its own flow rather than a new one.
func Start(fd int, proto string, target netip.AddrPort, kept Kept, log *slog.Logger) (_ *Proxy, err error) {
	defer func() {
		if err != nil {
			kept.Close()
		}
	}()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("duplicate socket: %w", err)
	}
	f := os.NewFile(uintptr(dup), "proxy")
	defer f.Close() // net.File* take duplicates of their own
	p := &Proxy{flows: map[*flow]struct{}{}, pipes: map[*pipe]struct{}{}, log: log, target: target}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	switch proto {
	case "tcp":
		if err := unix.Listen(dup, unix.SOMAXCONN); err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		l, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("listener: %w", err)
		}
		p.closer = l
		p.resume(kept)
		p.wg.Add(1)
		go p.acceptLoop(l, target, log)
	case "udp":
		// Each datagram's destination address, for the replies' source
		// (a socket on [::] would otherwise answer from whichever address
		// the route picks, which a connected client drops), as
		// docker-proxy does.
		if err := unix.SetsockoptInt(dup, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return nil, fmt.Errorf("set IPV6_RECVPKTINFO: %w", err)
		}
		pc, err := net.FilePacketConn(f)
		if err != nil {
			return nil, fmt.Errorf("packet conn: %w", err)
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return nil, fmt.Errorf("not a UDP socket")
		}
		// Last, as nothing can fail after it: the holder's filter drops
		// every datagram (nothing should reach a socket that nftables
		// DNATs around), and a Start that failed leaves it on.
		if err := unix.SetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_DETACH_FILTER, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			pc.Close()
			return nil, fmt.Errorf("detach filter: %w", err)
		}
		p.closer, p.uc, p.byClient = uc, uc, map[netip.AddrPort]*flow{}
		p.resume(kept)
		p.wg.Add(1)
		go p.udpLoop()
	default:
		return nil, fmt.Errorf("cannot proxy %q", proto)
	}
	return p, nil
}

// Stop closes the socket's duplicate and every connection and flow, and
// waits for the goroutines. The caller's socket stays open.
func (p *Proxy) Stop() {
	p.cancel()
	p.mu.Lock()
	p.closeLocked((*pipe).cutOff)
	p.mu.Unlock()
	p.wg.Wait()
}

// closeLocked (p.mu held) ends every UDP flow (Detach keeps a duplicate
// of each flow's socket first), stops accepting and does each to every
// TCP connection carried: Stop cuts them, Detach pauses them. The port's
// socket is closed after the flows: a flow writing a reply to it
// meanwhile would end for want of it, before Detach kept it.
func (p *Proxy) closeLocked(each func(*pipe)) {
	p.closed = true
	for fl := range p.flows {
		if p.detaching {
			// A flow ended meanwhile (evicted, timed out) has its socket
			// closed already: it is not handed over.
			if fd, err := fdutil.Dup(fl.conn); err == nil {
				p.keptFlows = append(p.keptFlows, KeptFlow{Client: fl.client, To: fl.to, Backend: fd})
			} else if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("proxy: a UDP flow not handed over", "client", fl.client, "err", err)
			}
		}
		fl.conn.Close()
	}
	p.closer.Close()
	for pp := range p.pipes {
		each(pp)
	}
}

// track adds fl to what Stop closes and counts its goroutine, which the
// caller then starts; false if Stop or Detach has begun.
func (p *Proxy) track(fl *flow) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.flows[fl] = struct{}{}
	p.wg.Add(1) // under mu, so that a Stop after it waits for the flow
	return true
}

func (p *Proxy) untrack(fl *flow) {
	p.mu.Lock()
	delete(p.flows, fl)
	p.mu.Unlock()
}

func (p *Proxy) acceptLoop(l net.Listener, target netip.AddrPort, log *slog.Logger) {
	defer p.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			log.Warn("proxy accept", "target", target, "err", err)
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: do not spin
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c.(*net.TCPConn), target, log)
		}()
	}
}

// flow is one UDP client's connection to the container: its socket
// connected to the container, the client's address and the address it
// sent to.
type flow struct {
	conn   *net.UDPConn
	client netip.AddrPort
	to     netip.Addr
	reply  []byte    // the IPV6_PKTINFO control message that sends from to
	last   time.Time // guarded by the proxy's fmu
}

// KeptFlow is a UDP client's flow a proxy had, handed over by Detach for
// another process to carry on (Start): the client's address, the
// address it sent to (the replies' source; invalid if unknown) and the
// flow's socket connected to the container, in which the container's
// replies wait meanwhile. The container goes on seeing the client at one
// source port, as a stateful protocol over UDP (QUIC, WireGuard, a game's
// session) needs.
type KeptFlow struct {
	Client  netip.AddrPort
	To      netip.Addr
	Backend int
}

// Kept is what a proxy hands over: its TCP connections and its UDP flows.
type Kept struct {
	Conns []KeptConn
	Flows []KeptFlow
}

// Len is how many connections and flows k holds.
func (k Kept) Len() int { return len(k.Conns) + len(k.Flows) }

// Join is k's connections and flows, then o's.
func (k Kept) Join(o Kept) Kept {
	return Kept{Conns: slices.Concat(k.Conns, o.Conns), Flows: slices.Concat(k.Flows, o.Flows)}
}

// Close closes every descriptor k holds.
func (k Kept) Close() {
	for _, c := range k.Conns {
		c.Close()
	}
	for _, f := range k.Flows {
		unix.Close(f.Backend)
	}
}

// dstOf reads the destination address out of a datagram's control
// messages (IPV6_PKTINFO); invalid if there is none.
func dstOf(oob []byte) netip.Addr {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo {
			var a [16]byte
			copy(a[:], m.Data[:16])
			return netip.AddrFrom16(a)
		}
	}
	return netip.Addr{}
}

// pktinfo is the control message that sends a datagram from src.
func pktinfo(src netip.Addr) []byte {
	if !src.IsValid() {
		return nil
	}
	b := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	pi.Addr = src.As16()
	return b
}

func (p *Proxy) udpLoop() {
	defer p.wg.Done()
	buf, oob := make([]byte, 65535), make([]byte, 128)
	for {
		n, oobn, _, from, err := p.uc.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Debug("proxy read", "target", p.target, "err", err)
			continue
		}
		p.fmu.Lock()
		fl := p.byClient[from]
		if fl == nil {
			c, err := net.DialUDP(family("udp", p.target), nil, net.UDPAddrFromAddrPort(p.target))
			if err != nil {
				p.fmu.Unlock()
				p.log.Debug("proxy dial", "target", p.target, "err", err)
				continue
			}
			to := dstOf(oob[:oobn])
			fl = &flow{conn: c, client: from, to: to, reply: pktinfo(to)}
			if !p.startFlowLocked(fl) {
				p.fmu.Unlock()
				c.Close()
				return
			}
		}
		fl.last = time.Now()
		p.fmu.Unlock()
		if err := sendDatagram(fl.conn, buf[:n]); err != nil {
			p.log.Debug("proxy write", "target", p.target, "err", err)
		}
	}
}

// startFlowLocked (p.fmu held) makes fl its client's flow, in place of
// the flow idle longest if the port has maxUDPFlows, and starts carrying
// the container's replies to the client; false, with nothing done, if
// the proxy is stopping.
func (p *Proxy) startFlowLocked(fl *flow) bool {
	if !p.track(fl) {
		return false
	}
	if len(p.byClient) >= maxUDPFlows {
		evictOldest(p.byClient)
	}
	fl.last = time.Now()
	p.byClient[fl.client] = fl
	go p.carryFlow(fl)
	return true
}

// carryFlow writes the container's replies on fl to its client until the
// flow ends: UDPFlowTimeout after its last traffic either way, or its
// socket closed (Stop, Detach, eviction).
func (p *Proxy) carryFlow(fl *flow) {
	defer p.wg.Done()
	defer p.untrack(fl)
	defer fl.conn.Close()
	reply := make([]byte, 65535)
	for {
		p.fmu.Lock()
		deadline := fl.last.Add(UDPFlowTimeout) // the flow ends that long after the client's last datagram
		p.fmu.Unlock()
		_ = fl.conn.SetReadDeadline(deadline)
		m, err := fl.conn.Read(reply)
		if err != nil {
			var ne net.Error
			p.fmu.Lock()
			// A timeout while the flow still had traffic lately keeps
			// it, and so does a container port that refused a datagram
			// (ICMP), as docker-proxy's; anything else ends it.
			keep := errors.As(err, &ne) && ne.Timeout() && time.Since(fl.last) < UDPFlowTimeout ||
				errors.Is(err, syscall.ECONNREFUSED)
			if !keep {
				if p.byClient[fl.client] == fl { // not a newer flow of the client's (evicted)
					delete(p.byClient, fl.client)
				}
				p.fmu.Unlock()
				return
			}
			p.fmu.Unlock()
			continue
		}
		// The container's traffic keeps the flow too, as docker-proxy's
		// read deadline moves with each reply: a client that asked once
		// and then only receives was cut off after 90 s.
		p.fmu.Lock()
		fl.last = time.Now()
		p.fmu.Unlock()
		if _, _, err := p.uc.WriteMsgUDPAddrPort(reply[:m], fl.reply, fl.client); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// resumeFlows carries on the UDP flows another proxy handed over, which
// it then owns (a TCP proxy closes them). A flow to another address than
// the proxy's target (the container came back elsewhere, and its old
// address may be another's now) is closed, and so is a second flow of
// one client.
func (p *Proxy) resumeFlows(flows []KeptFlow) {
	for i, k := range flows {
		if p.uc == nil {
			unix.Close(k.Backend)
			continue
		}
		c, err := fileConn[*net.UDPConn](k.Backend)
		if err != nil {
			p.log.Warn("proxy: carry on a UDP flow from before the restart", "client", k.Client, "err", err)
			continue
		}
		if !p.isTarget(c.RemoteAddr()) {
			c.Close()
			continue
		}
		fl := &flow{conn: c, client: k.Client, to: k.To, reply: pktinfo(k.To)}
		p.fmu.Lock()
		ok := p.byClient[k.Client] == nil && p.startFlowLocked(fl)
		p.fmu.Unlock()
		if !ok {
			c.Close()
			if p.isClosed() {
				for _, rest := range flows[i+1:] {
					unix.Close(rest.Backend)
				}
				return
			}
		}
	}
}

// isTarget reports whether a is the proxy's target (an IPv4 address
// given as IPv4-mapped IPv6 counts as the same).
func (p *Proxy) isTarget(a net.Addr) bool {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()) == netip.AddrPortFrom(p.target.Addr().Unmap(), p.target.Port())
}

func (p *Proxy) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// sendDatagram writes b to a flow's connected socket. A write that fails
// with ECONNREFUSED has not sent b: the error is the ICMP port-unreachable
// an earlier datagram drew (nothing listened then), which the kernel
// reports on the socket's next call, whichever it is; the flow's reader
// usually takes it first, but not always. b is sent again, as
// docker-proxy does since Docker 29.5 (moby 28810d88d1); each pending
// error is reported once, so a third refusal is the answer.
func sendDatagram(w io.Writer, b []byte) error {
	for try := 1; ; try++ {
		_, err := w.Write(b)
		if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || try == 3 {
			return err
		}
	}
}

// evictOldest ends the flow whose last traffic is the oldest (the caller
// holds the proxy's fmu): its socket is closed, so its goroutine ends.
func evictOldest(flows map[netip.AddrPort]*flow) {
	var oldest netip.AddrPort
	var of *flow
	for k, fl := range flows {
		if of == nil || fl.last.Before(of.last) {
			oldest, of = k, fl
		}
	}
	if of != nil {
		delete(flows, oldest)
		of.conn.Close()
	}
}

// family is the network to dial target on: the container's IPv4
// address, or its IPv6 one on a network with IPv6.
func family(proto string, target netip.AddrPort) string {
	if target.Addr().Is4() {
		return proto + "4"
	}
	return proto + "6"
}
