package harness

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

// The outside world's addresses, from documentation ranges as in
// internal/testworld: the host is 198.51.100.2 on its eth0, the outside
// router 198.51.100.1, and the server 203.0.113.10 behind it.
var (
	HostAddr   = netip.MustParsePrefix("198.51.100.2/24")
	RouterAddr = netip.MustParsePrefix("198.51.100.1/24")
	ServerAddr = netip.MustParseAddr("203.0.113.10")
)

// MakeOutside makes the outside world: a namespace bound at path, joined to
// the caller's namespace (the bench's private host) by a veth whose host
// end is eth0, with the server address on the outside's lo, and the host's
// default route through it.
func MakeOutside(path string) error {
	if err := sandbox.NewBound(path); err != nil {
		return fmt.Errorf("create outside namespace: %w", err)
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer ns.Close()
	oh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer oh.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.Flags = "eth0", net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns)}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create outside veth: %w", err)
	}
	host, err := netlink.LinkByName("eth0")
	if err != nil {
		return err
	}
	peer, err := oh.LinkByName("eth0")
	if err != nil {
		return err
	}
	lo, err := oh.LinkByName("lo")
	if err != nil {
		return err
	}
	return errors.Join(
		netlink.AddrAdd(host, &netlink.Addr{IPNet: ipNet(HostAddr)}),
		oh.AddrAdd(peer, &netlink.Addr{IPNet: ipNet(RouterAddr)}),
		oh.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ServerAddr, 32))}),
		oh.LinkSetUp(peer),
		netlink.RouteAdd(&netlink.Route{Gw: RouterAddr.Addr().AsSlice(), LinkIndex: host.Attrs().Index}),
	)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
