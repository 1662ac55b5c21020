package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
)

// bringUp configures the container end at ifindex in one write of netlink
// messages on the sandbox's own socket (the kernel handles them in order,
// within the one system call, and answers each): IPv6 address generation
// off, the link up, spec's IPv4 address (none on an IPv6-only network)
// and, if spec.Gateway is valid, a
// default route through it; on a network with IPv6, also a link-local
// address, spec.Address6 and, if spec.Gateway6 is valid, an IPv6 default
// route through it. An address already there is success (a Join run
// again); a default route replaces any the sandbox has: the controller
// gives gateways only to the endpoint that is to be its sandbox's gateway.
//
// Address generation goes off before the link is up, so that the kernel
// never gives it an address of its own. On an IPv4-only network IPv6 is
// off on the link already (disable_ipv6, written by configurePeer, as
// Docker does: with IPv6 on, a neighbour's forged router advertisement
// would give it an address and a route), so it has no IPv6 address at
// all and sends nothing of IPv6 into the bridge. A kernel without IPv6
// refuses the address generation message alone.
//
// On a network with IPv6, IPv6 stays on and both addresses are added
// without duplicate-address detection (IFA_F_NODAD, as moby adds
// Address6): the container can use them at once, and IPAM, not probing,
// keeps them unique on the bridge. The link-local one is what the kernel
// would have made (EUI-64 of the MAC: what Docker's containers show), for
// what needs one: every IPv6 interface has one (RFC 4291), and the
// container's neighbour solicitations for a packet whose source is not on
// the link come from it. Such a link still sends what every IPv6 link
// sends into the bridge once up (MLD reports, router solicitations, as
// Docker's containers do), but no duplicate-address probes. The messages
// go in the same write: no round trip more than an IPv4-only join's.
//
// Except where the endpoint's own sysctls set addr_gen_mode: they are the
// user's (moby writes them after its own settings), so generation is left
// as they set it and the kernel makes the link-local address (with
// duplicate-address detection, unless they also turn it off).
//
// The gateway's neighbour entry is seeded too, with gwMAC, the bridge's
// MAC (nil: not known, nothing seeded): see seedGateway.
func (sb *sandboxConn) bringUp(ifindex int, spec driverapi.EndpointSpec, gwMAC net.HardwareAddr) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	// An addr_gen_mode among the endpoint's own sysctls is the user's
	// (written before this): the kernel then makes the link-local
	// address as it says, as it does for moby's containers.
	ownLinkLocal := !setsAddrGenMode(spec.Sysctls)
	steps := make([]batchStep, 0, 7+len(spec.LinkLocal))
	if ownLinkLocal {
		steps = append(steps, batchStep{req: noAddrGen(ifindex), op: "turn off IPv6 address generation", success: isNoIPv6})
	}
	steps = append(steps, batchStep{req: linkUp(ifindex), op: "set link up"})
	if spec.Address.IsValid() { // not on an IPv6-only network
		steps = append(steps, addrStep(ifindex, spec.Address, 0))
	}
	if spec.Gateway.IsValid() {
		steps = append(steps, routeStep(ifindex, spec.Gateway))
		if gwMAC != nil && !spec.ForeignGateway {
			steps = append(steps, seedGateway(ifindex, spec.Gateway, gwMAC))
		}
	}
	if spec.Address6.IsValid() {
		if ownLinkLocal {
			steps = append(steps, addrStep(ifindex, linkLocal(spec.MAC), unix.IFA_F_NODAD))
		}
		steps = append(steps, addrStep(ifindex, spec.Address6, unix.IFA_F_NODAD))
		if spec.Gateway6.IsValid() {
			steps = append(steps, routeStep(ifindex, spec.Gateway6))
			if gwMAC != nil && !spec.ForeignGateway6 { // neighbour solicitations are flooded too
				steps = append(steps, seedGateway(ifindex, spec.Gateway6, gwMAC))
			}
		}
	}
	for _, ll := range spec.LinkLocal {
		steps = append(steps, addrStep(ifindex, ll, 0))
	}
	reqs := make([]*nl.NetlinkRequest, len(steps))
	for i, s := range steps {
		reqs[i] = s.req
	}
	results, _, err := sendBatch(sb.raw, reqs...)
	if err != nil {
		return fmt.Errorf("sandbox netlink: %w", err)
	}
	for i, s := range steps {
		if err := results[i]; err != nil && (s.success == nil || !s.success(err)) {
			return fmt.Errorf("%s on link %d: %w", s, ifindex, err)
		}
	}
	return nil
}

// setsAddrGenMode says whether an endpoint's sysctls
// ("net.ipv6.conf.IFNAME.addr_gen_mode=V") set its IPv6 address
// generation mode.
func setsAddrGenMode(sysctls []string) bool {
	return slices.ContainsFunc(sysctls, func(s string) bool {
		key, _, _ := strings.Cut(s, "=")
		parts := strings.SplitN(key, ".", 5)
		return len(parts) == 5 && parts[0] == "net" && parts[1] == "ipv6" && parts[2] == "conf" && parts[4] == "addr_gen_mode"
	})
}

// batchStep is one message of bringUp's batch: what it does, for an
// error (op, with the address or gateway it is about), and which errors
// mean it is done already (nil: none). The words are put together only
// for an error: a join that succeeds formats nothing.
type batchStep struct {
	req     *nl.NetlinkRequest
	op      string
	addr    netip.Prefix
	gw      netip.Addr
	success func(error) bool
}

func (s batchStep) String() string {
	switch {
	case s.addr.IsValid():
		return s.op + " " + s.addr.String()
	case s.gw.IsValid():
		return s.op + " " + s.gw.String()
	}
	return s.op
}

// addrStep adds addr; an address already there is success (a Join run again).
func addrStep(ifindex int, addr netip.Prefix, flags uint8) batchStep {
	return batchStep{req: newAddr(ifindex, addr, flags), op: "add address", addr: addr, success: isExist}
}

// addrFamily is a's address family: AF_INET or AF_INET6 (netlink's
// FAMILY_V4 and FAMILY_V6).
func addrFamily(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// seedGateway gives the container a neighbour entry for its gateway
// (IPv4 or IPv6), the bridge's MAC, in the state STALE: the container's first
// packets out go at once, with no ARP request for the gateway; the
// kernel then checks the entry with a unicast probe (or confirms it by
// the traffic's own replies), and should the bridge's MAC ever differ,
// that probe fails and it asks afresh. What it saves is a broadcast the
// bridge floods to every port and into every other container: on a
// bridge of 1,000 ports those copies filled the CPU's receive backlog
// (1,000 packets) before the host's reply was queued, the reply was
// dropped, and a new container could not resolve its gateway at all.
func seedGateway(ifindex int, gw netip.Addr, mac net.HardwareAddr) batchStep {
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEIGH, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	req.AddData(&netlink.Ndmsg{Family: uint8(addrFamily(gw)), Index: uint32(ifindex), State: unix.NUD_STALE})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, gw.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.NDA_LLADDR, mac))
	return batchStep{req: req, op: "seed the neighbour entry of gateway", gw: gw}
}

// routeStep makes the default route of gw's family via gw.
func routeStep(ifindex int, gw netip.Addr) batchStep {
	return batchStep{req: defaultRoute(ifindex, gw), op: "default route via", gw: gw}
}

func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }

// isNoIPv6 says a kernel without IPv6 refused an IPv6 setting.
func isNoIPv6(err error) bool {
	return errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP)
}

// noAddrGen turns IPv6 address generation off on the link at ifindex.
func noAddrGen(ifindex int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.AddData(&nl.IfInfomsg{IfInfomsg: unix.IfInfomsg{Family: unix.AF_UNSPEC, Index: int32(ifindex)}})
	mode := nl.NewRtAttr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{byte(nl.IN6_ADDR_GEN_MODE_NONE)})
	inet6 := nl.NewRtAttr(unix.AF_INET6, mode.Serialize())
	req.AddData(nl.NewRtAttr(unix.IFLA_AF_SPEC, inet6.Serialize()))
	return req
}

// linkUp sets the link at ifindex up.
func linkUp(ifindex int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	link := nl.NewIfInfomsg(unix.AF_UNSPEC)
	link.Index = int32(ifindex)
	link.Flags, link.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(link)
	return req
}

// newAddr adds addr, of either family, to the link at ifindex with the
// address flags given (IFA_F_NODAD fits the message's 8 bits), and for
// IPv4 the subnet's broadcast address as ip(8) gives it.
func newAddr(ifindex int, addr netip.Prefix, flags uint8) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	family := addrFamily(addr.Addr())
	am := nl.NewIfAddrmsg(family)
	am.Index = uint32(ifindex)
	am.Prefixlen = uint8(addr.Bits())
	am.Flags = flags
	req.AddData(am)
	a := addr.Addr().AsSlice()
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, a))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, a))
	if family == unix.AF_INET && addr.Bits() < 31 {
		mask := net.CIDRMask(addr.Bits(), 32)
		brd := make(net.IP, 4)
		for i := range brd {
			brd[i] = a[i] | ^mask[i]
		}
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, brd))
	}
	return req
}

// defaultRoute makes the default route of gw's family via gw out of the
// link at ifindex, in place of any the main table has (NLM_F_REPLACE).
func defaultRoute(ifindex int, gw netip.Addr) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	rm := nl.NewRtMsg()
	rm.Family = uint8(addrFamily(gw))
	req.AddData(rm)
	req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, gw.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(ifindex))))
	return req
}
