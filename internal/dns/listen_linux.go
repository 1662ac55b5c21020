package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/berth-net/berth/internal/sandbox"
)

// RedirectFunc points 127.0.0.11:53 inside the network namespace of the
// calling thread (one sandbox.Do runs, which made the resolver's sockets
// just before) to those sockets, which listen on Address at udpPort and
// tcpPort (the daemon's is firewall/nftables.RedirectDNSHere).
type RedirectFunc func(resolver netip.Addr, udpPort, tcpPort uint16) error

// RedirectedFunc returns the ports RedirectFunc's redirect in the network
// namespace at path points at, if it is there untouched (the daemon's is
// firewall/nftables.DNSRedirected).
type RedirectedFunc func(path string, resolver netip.Addr) (udpPort, tcpPort uint16, ok bool)

// ListenInNamespace returns the ListenFunc of a real sandbox: it binds UDP
// and TCP on 127.0.0.11 inside the network namespace at path, at ports the
// kernel picks, and has redirect send 127.0.0.11:53 there, as Docker's
// resolver does. Port 53 stays the container's: a DNS server of its own,
// or anything else bound to a wildcard address, can listen on it (with the
// resolver on 127.0.0.11:53 itself, such a bind failed with "address
// already in use"). With a nil redirect it binds 127.0.0.11:53 directly.
//
// Kept sockets (Sandbox.Kept: a stopping daemon handed them on) are
// served as they are. Made again without them (a re-adopted container's
// whose daemon was killed), when redirected (may be nil) finds the
// namespace's redirect from the resolver of the daemon before untouched,
// the new one binds its ports again and leaves the redirect alone: a
// restart with 500 resolvers spent 0.76 s of commits in the namespaces
// rewriting redirects. Ports taken meanwhile (by the container) get new
// ones and a new redirect.
//
// The sockets are made on a thread that entered the namespace for the
// purpose (sandbox.Do) and stay in it, so the goroutines that serve them
// run anywhere. 127.0.0.11 needs no address of its own: all of
// 127.0.0.0/8 is local on the sandbox's lo, which the sandbox brings up.
func ListenInNamespace(redirect RedirectFunc, redirected RedirectedFunc) ListenFunc {
	return func(sb Sandbox) (*net.UDPConn, net.Listener, error) {
		path := sb.Path
		if sb.Kept != nil {
			udp, tcp, err := adoptKept(*sb.Kept)
			if err == nil {
				return udp, tcp, nil
			}
			// Listened for afresh below: the queries that waited are lost.
		}
		if redirect == nil {
			return listenIn(path, netip.AddrPortFrom(Address, 53), netip.AddrPortFrom(Address, 53), nil)
		}
		if sb.Again && redirected != nil {
			if uport, tport, ok := redirected(path, Address); ok {
				udp, tcp, err := listenIn(path, netip.AddrPortFrom(Address, uport), netip.AddrPortFrom(Address, tport), nil)
				if err == nil {
					return udp, tcp, nil
				}
			}
		}
		return listenIn(path, netip.AddrPortFrom(Address, 0), netip.AddrPortFrom(Address, 0), redirect)
	}
}

// adoptKept serves the sockets the resolver of the daemon before left
// (always closing the descriptors given). They are in the namespace
// already, bound where its redirect pointed when that daemon stopped,
// and the redirect is not read again: a daemon that runs does not watch
// it either, and reading it cost a restart with 500 resolvers 130 ms
// (a netlink socket made in each namespace).
func adoptKept(kept Sockets) (*net.UDPConn, net.Listener, error) {
	// The Files own the descriptors now; the conns below hold dups.
	uf, tf := os.NewFile(uintptr(kept.UDP), "dns-udp"), os.NewFile(uintptr(kept.TCP), "dns-tcp")
	defer uf.Close()
	defer tf.Close()
	pc, err := net.FilePacketConn(uf)
	if err != nil {
		return nil, nil, fmt.Errorf("kept UDP socket: %w", err)
	}
	udp, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, nil, fmt.Errorf("kept UDP socket is a %T", pc)
	}
	tcp, err := net.FileListener(tf)
	if err != nil {
		udp.Close()
		return nil, nil, fmt.Errorf("kept TCP socket: %w", err)
	}
	ua, _ := udp.LocalAddr().(*net.UDPAddr)
	ta, _ := tcp.Addr().(*net.TCPAddr)
	if ua == nil || ta == nil || !ua.IP.Equal(Address.AsSlice()) || !ta.IP.Equal(Address.AsSlice()) {
		return nil, nil, errors.Join(fmt.Errorf("kept sockets are bound at %v and %v, not %s", udp.LocalAddr(), tcp.Addr(), Address), udp.Close(), tcp.Close())
	}
	return udp, tcp, nil
}

// listenIn binds the resolver's sockets inside the namespace at path, at
// udpAt and tcpAt, and then, when redirect is not nil, has it point
// 127.0.0.11:53 at them, in the same visit to the namespace (one
// sandbox.Do where there were two: a first connect's resolver was the
// longer of the two things a connect does at once, and took the join's
// CPU).
func listenIn(path string, udpAt, tcpAt netip.AddrPort, redirect RedirectFunc) (*net.UDPConn, net.Listener, error) {
	var (
		udp *net.UDPConn
		tcp net.Listener
	)
	err := sandbox.Do(path, func() error {
		var err error
		if udp, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(udpAt)); err != nil {
			return fmt.Errorf("listen on udp %s: %w", udpAt, err)
		}
		if tcp, err = net.Listen("tcp4", tcpAt.String()); err != nil {
			return errors.Join(fmt.Errorf("listen on tcp %s: %w", tcpAt, err), udp.Close())
		}
		if redirect == nil {
			return nil
		}
		uport, tport := udp.LocalAddr().(*net.UDPAddr).Port, tcp.Addr().(*net.TCPAddr).Port
		if err := redirect(Address, uint16(uport), uint16(tport)); err != nil {
			return errors.Join(err, udp.Close(), tcp.Close())
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return udp, tcp, nil
}
