package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/berth-net/berth/internal/sandbox"
)

// ListenInNamespace binds UDP and TCP 127.0.0.11:53 inside the network
// namespace at path. The sockets are made on a thread that entered the
// namespace for the purpose (sandbox.Do) and stay in it, so the goroutines
// that serve them run anywhere. 127.0.0.11 needs no address of its own: all
// of 127.0.0.0/8 is local on the sandbox's lo, which the sandbox brings up.
func ListenInNamespace(path string) (*net.UDPConn, net.Listener, error) {
	return listenIn(path, netip.AddrPortFrom(Address, 53))
}

func listenIn(path string, at netip.AddrPort) (*net.UDPConn, net.Listener, error) {
	var (
		udp *net.UDPConn
		tcp net.Listener
	)
	err := sandbox.Do(path, func() error {
		var err error
		if udp, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(at)); err != nil {
			return fmt.Errorf("listen on udp %s: %w", at, err)
		}
		if tcp, err = net.Listen("tcp4", at.String()); err != nil {
			return errors.Join(fmt.Errorf("listen on tcp %s: %w", at, err), udp.Close())
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return udp, tcp, nil
}
