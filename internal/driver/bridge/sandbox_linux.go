package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/sandbox"
)

// sandboxConn holds what Join needs inside one sandbox: the namespace fd
// (to create the veth peer straight into it), a netlink handle bound to it
// and an AF_PACKET socket for the gratuitous ARP.
type sandboxConn struct {
	path   string
	ns     netns.NsHandle
	h      *netlink.Handle
	packet int // -1 when not opened
}

// openSandbox opens the namespace at path. Both sockets are created on one
// throwaway thread inside the namespace (sandbox.Do), so they belong to it
// for their whole life and no shared thread ever changes namespace.
func openSandbox(path string, withPacket bool) (*sandboxConn, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open sandbox %q: %w", path, err)
	}
	sb := &sandboxConn{path: path, ns: ns, packet: -1}
	err = sandbox.Do(path, func() error {
		var err error
		if sb.h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
			return fmt.Errorf("open netlink: %w", err)
		}
		if !withPacket {
			return nil
		}
		// Protocol 0: the socket only sends, so the kernel queues nothing to it.
		sb.packet, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open packet socket: %w", err)
		}
		return nil
	})
	if err != nil {
		sb.close()
		return nil, fmt.Errorf("open sandbox %q: %w", path, err)
	}
	return sb, nil
}

func (sb *sandboxConn) close() {
	if sb.h != nil {
		sb.h.Close()
	}
	if sb.packet >= 0 {
		unix.Close(sb.packet)
	}
	sb.ns.Close()
}

// ensureLoopbackUp brings lo up: a fresh namespace has it down, and
// programs in the container expect 127.0.0.1 to work.
func (sb *sandboxConn) ensureLoopbackUp() error {
	lo, err := sb.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo: %w", err)
	}
	if lo.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	if err := sb.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// ensureAddr adds addr to the link unless it is there already.
func (sb *sandboxConn) ensureAddr(l netlink.Link, addr netip.Prefix) error {
	err := sb.h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(addr)})
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s to %q: %w", addr, l.Attrs().Name, err)
	}
	return nil
}

// ensureDefaultRoute adds a default route via gw on the link. When the
// sandbox already has one (the container joined another network first), it
// is kept: like Docker, the first network with a gateway keeps the default.
func (sb *sandboxConn) ensureDefaultRoute(l netlink.Link, gw netip.Addr) (added bool, err error) {
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IP(gw.AsSlice())}
	err = sb.h.RouteAdd(r)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return false, nil
	}
	return false, fmt.Errorf("add default route via %s on %q: %w", gw, l.Attrs().Name, err)
}

// sendGratuitousARP announces addr at mac on the link with ifindex, through
// an AF_PACKET socket of the sandbox, so that neighbours that cached the
// address for an earlier container (addresses are reused and MACs are
// random) update at once instead of after a timeout.
func sendGratuitousARP(packetFd, ifindex int, mac net.HardwareAddr, addr netip.Addr) error {
	to := &unix.SockaddrLinklayer{
		Protocol: htons(unix.ETH_P_ARP),
		Ifindex:  ifindex,
		Halen:    6,
		Addr:     [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	return unix.Sendto(packetFd, garpPayload(mac, addr), 0, to)
}
