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

// sandboxConn holds what Join and Leave need inside one sandbox: the
// namespace fd (to create the veth peer straight into it) and a netlink
// handle bound to it.
type sandboxConn struct {
	path string
	ns   netns.NsHandle
	h    *netlink.Handle
}

// openSandbox opens the namespace at path and a route-netlink socket in it
// (netlink.NewHandleAt: the socket is made in the namespace and used from
// any thread afterwards).
func openSandbox(path string) (*sandboxConn, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open sandbox %q: %w", path, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("open netlink in sandbox %q: %w", path, err)
	}
	return &sandboxConn{path: path, ns: ns, h: h}, nil
}

func (sb *sandboxConn) close() {
	sb.h.Close()
	sb.ns.Close()
}

// loopbackIndex is lo's ifindex in every network namespace: the kernel
// registers it first and pins the number (LOOPBACK_IFINDEX).
const loopbackIndex = 1

// ensureLoopbackUp brings lo up: a fresh namespace has it down, and
// programs in the container expect 127.0.0.1 to work. Setting an up link
// up changes nothing, so there is no need to look first.
func (sb *sandboxConn) ensureLoopbackUp() error {
	lo := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: loopbackIndex, Name: "lo"}}
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

// sendGratuitousARP announces addr at mac on the link with ifindex in the
// sandbox at path, so that neighbours that cached the address for an
// earlier container (addresses are reused and MACs are random) update at
// once instead of after a timeout. The AF_PACKET socket must be made inside
// the sandbox, hence a throwaway thread there (sandbox.Do).
func sendGratuitousARP(path string, ifindex int, mac net.HardwareAddr, addr netip.Addr) error {
	return sandbox.Do(path, func() error {
		// Protocol 0: the socket only sends, so the kernel queues nothing to it.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open packet socket: %w", err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{
			Protocol: htons(unix.ETH_P_ARP),
			Ifindex:  ifindex,
			Halen:    6,
			Addr:     [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		}
		return unix.Sendto(fd, garpPayload(mac, addr), 0, to)
	})
}
