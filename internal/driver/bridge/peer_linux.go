package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// bringUp turns IPv6 address generation off on the container end at
// ifindex, sets it up, gives it addr and, if gw is valid, a default route
// through gw, in one write of four netlink messages on the sandbox's own
// socket (the kernel handles them in order, within the one system call,
// and answers each): three round trips fewer than a request each. An
// address already there is success (a Join run again); the default route
// replaces any the sandbox has: the controller gives gw only to the
// endpoint that is to be its sandbox's gateway.
//
// Address generation goes off before the link is up, so that it never
// gets an IPv6 link-local address: endpoints are IPv4-only (Docker, too,
// turns IPv6 off on a container's interface on an IPv4-only network), and
// the address is not free: each new interface would send duplicate-address
// probes, router solicitations and MLD reports that the bridge floods to
// every port. A kernel without IPv6 refuses that message alone.
func (sb *sandboxConn) bringUp(ifindex int, addr netip.Prefix, gw netip.Addr) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	noAutoconf := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	noAutoconf.AddData(&nl.IfInfomsg{IfInfomsg: unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(ifindex)}})
	mode := nl.NewRtAttr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{byte(nl.IN6_ADDR_GEN_MODE_NONE)})
	inet6 := nl.NewRtAttr(unix.AF_INET6, mode.Serialize())
	noAutoconf.AddData(nl.NewRtAttr(unix.IFLA_AF_SPEC, inet6.Serialize()))

	up := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	link := nl.NewIfInfomsg(unix.AF_UNSPEC)
	link.Index = int32(ifindex)
	link.Flags, link.Change = unix.IFF_UP, unix.IFF_UP
	up.AddData(link)

	a := addr.Addr().As4()
	newAddr := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	am := nl.NewIfAddrmsg(unix.AF_INET)
	am.Index = uint32(ifindex)
	am.Prefixlen = uint8(addr.Bits())
	newAddr.AddData(am)
	newAddr.AddData(nl.NewRtAttr(unix.IFA_LOCAL, a[:]))
	newAddr.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, a[:]))
	if addr.Bits() < 31 {
		mask := net.CIDRMask(addr.Bits(), 32)
		brd := make(net.IP, 4)
		for i := range brd {
			brd[i] = a[i] | ^mask[i]
		}
		newAddr.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, brd))
	}

	reqs := []*nl.NetlinkRequest{noAutoconf, up, newAddr}
	if gw.IsValid() {
		route := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
		rm := nl.NewRtMsg()
		rm.Family = unix.AF_INET
		route.AddData(rm)
		g := gw.As4()
		route.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, g[:]))
		route.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(ifindex))))
		reqs = append(reqs, route)
	}
	results, _, err := sendBatch(sb.raw, reqs...)
	if err != nil {
		return fmt.Errorf("sandbox netlink: %w", err)
	}
	if err := results[0]; err != nil && !errors.Is(err, unix.EAFNOSUPPORT) && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("turn off IPv6 address generation on link %d: %w", ifindex, err)
	}
	if err := results[1]; err != nil {
		return fmt.Errorf("set link %d up: %w", ifindex, err)
	}
	if err := results[2]; err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add address %s to link %d: %w", addr, ifindex, err)
	}
	if gw.IsValid() && results[3] != nil {
		return fmt.Errorf("default route via %s on link %d: %w", gw, ifindex, results[3])
	}
	return nil
}
