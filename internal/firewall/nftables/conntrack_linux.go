package nftables

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// forgetConnections deletes the conntrack entries the withdrawn ports
// DNATed. Without this a client that keeps sending (UDP above all: every
// datagram refreshes the entry) would still reach the container's address
// after the port is gone, and so a later container given the same address.
// A failure is logged: the ports are withdrawn either way.
func (f *Firewall) forgetConnections(ms []firewall.PortMapping) {
	// Conntrack is dumped per family: one filter list for each.
	var filters, filters6 []netlink.CustomConntrackFilter
	var keys, keys6 []ctKey
	for _, m := range ms {
		flt := &netlink.ConntrackFilter{}
		port := m.HostPort
		if m.Routed { // not NATed: the connection is to the container's port
			port = m.Port
		}
		err := errors.Join(
			flt.AddProtocol(uint8(m.Proto)),
			flt.AddPort(netlink.ConntrackOrigDstPort, port),
			flt.AddIP(netlink.ConntrackReplySrcIP, m.Addr.AsSlice()),
		)
		if err != nil {
			f.log.Warn("conntrack filter", "port", m.String(), "err", err)
			return
		}
		key := ctKey{uint8(m.Proto), port}
		if m.Is6() {
			filters6, keys6 = append(filters6, flt), appendKey(keys6, key)
		} else {
			filters, keys = append(filters, flt), appendKey(keys, key)
		}
	}
	f.deleteConntrack(filters, filters6, keys, keys6, "withdrawn ports")
}

// forgetUnpublished deletes the conntrack entries of UDP flows that
// reached a host port before it was published, as moby's
// clearConntrackEntries does after adding port mappings (moby#8795,
// #44688, #44742): the kernel delivered those datagrams to the host
// itself (to no one, or to the socket that holds the port), and since
// every later datagram of the flow refreshes its entry, a client that
// keeps its socket (a DNS forwarder, syslog, statsd) would never be
// DNATed to the container (QA round 25: cut off for good). TCP needs
// nothing: a new connection is a new entry.
//
// Only such flows go: to one of the host's own addresses (the mapping's,
// when it has one), with neither end rewritten. Docker's filter, on the
// port alone, also drops the entries of the host's own queries to that
// port elsewhere (its upstream resolver's 53), of containers' flows to
// it, masqueraded or not, and of traffic forwarded past the host, whose
// next replies then count as new and are dropped by stateful rules.
func (f *Firewall) forgetUnpublished(ms []firewall.PortMapping) {
	flt4, flt6 := unpublishedFlows{ports: map[uint16][]netip.Addr{}}, unpublishedFlows{ports: map[uint16][]netip.Addr{}}
	for _, m := range ms {
		if m.Proto != firewall.UDP || m.Routed {
			continue
		}
		flt := &flt4
		if m.Is6() {
			flt = &flt6
		}
		if m.AnyHostIP() {
			flt.ports[m.HostPort] = append(flt.ports[m.HostPort], netip.Addr{})
		} else {
			flt.ports[m.HostPort] = append(flt.ports[m.HostPort], m.HostIP.Unmap())
		}
	}
	if len(flt4.ports) == 0 && len(flt6.ports) == 0 {
		return
	}
	local, err := f.localAddrs()
	if err != nil {
		f.log.Warn("list the host's addresses for conntrack", "err", err)
		return
	}
	flt4.local, flt6.local = local, local
	var filters, filters6 []netlink.CustomConntrackFilter
	var keys, keys6 []ctKey
	if len(flt4.ports) > 0 {
		filters, keys = append(filters, flt4), flt4.keys()
	}
	if len(flt6.ports) > 0 {
		filters6, keys6 = append(filters6, flt6), flt6.keys()
	}
	f.deleteConntrack(filters, filters6, keys, keys6, "flows to ports before they were published")
}

// localAddrs is every address of the host namespace's links.
func (f *Firewall) localAddrs() (map[netip.Addr]bool, error) {
	h, err := f.handle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	local := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			local[ip.Unmap()] = true
		}
	}
	return local, nil
}

// unpublishedFlows matches a UDP flow that went to one of the host's own
// addresses (local) on a port of ports as it was sent: to any of them
// for an invalid address in the port's list, else to one listed; and
// whose reply tuple is its own reversed, so no NAT rewrote either end.
type unpublishedFlows struct {
	ports map[uint16][]netip.Addr
	local map[netip.Addr]bool
}

// keys are the flows u can match: UDP to each of its ports.
func (u unpublishedFlows) keys() []ctKey {
	keys := make([]ctKey, 0, len(u.ports))
	for p := range u.ports {
		keys = append(keys, ctKey{unix.IPPROTO_UDP, p})
	}
	return keys
}

func (u unpublishedFlows) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	fw, rv := flow.Forward, flow.Reverse
	if fw.Protocol != unix.IPPROTO_UDP {
		return false
	}
	want, ok := u.ports[fw.DstPort]
	if !ok {
		return false
	}
	if !rv.SrcIP.Equal(fw.DstIP) || rv.SrcPort != fw.DstPort || !rv.DstIP.Equal(fw.SrcIP) || rv.DstPort != fw.SrcPort {
		return false // NATed: DNATed to a container already, or a container's flow out
	}
	dst, ok := netip.AddrFromSlice(fw.DstIP)
	if !ok || !u.local[dst.Unmap()] {
		return false // not to the host: forwarded, or the host's own flow out
	}
	for _, a := range want {
		if !a.IsValid() || a == dst.Unmap() {
			return true
		}
	}
	return false
}

// deleteConntrack deletes the entries that match any of the filters, per
// family, reading only the flows of keys (deleteFamily); what names them
// in the log. A failure is logged: the ports change either way.
func (f *Firewall) deleteConntrack(filters, filters6 []netlink.CustomConntrackFilter, keys, keys6 []ctKey, what string) {
	if len(filters) == 0 && len(filters6) == 0 {
		return
	}
	sock, err := f.ctSocket()
	if err != nil {
		f.log.Warn("open conntrack", "err", err)
		return
	}
	defer sock.Socket.Close()
	for _, fam := range []struct {
		af      uint8
		filters []netlink.CustomConntrackFilter
		keys    []ctKey
	}{{unix.AF_INET, filters, keys}, {unix.AF_INET6, filters6, keys6}} {
		if len(fam.filters) == 0 {
			continue
		}
		n, err := deleteFamily(sock, fam.af, fam.keys, fam.filters)
		if err != nil {
			f.log.Warn("delete conntrack entries of "+what, "family", fam.af, "err", err)
		}
		if n > 0 {
			f.log.Debug("conntrack entries of "+what+" deleted", "entries", n)
		}
	}
}

// appendKey appends k to keys unless it is there.
func appendKey(keys []ctKey, k ctKey) []ctKey {
	if slices.Contains(keys, k) {
		return keys
	}
	return append(keys, k)
}

// handle opens a netlink handle of protocol proto (NETLINK_NETFILTER for
// conntrack, NETLINK_ROUTE for addresses) in the table's namespace.
func (f *Firewall) handle(proto int) (*netlink.Handle, error) {
	if f.netns == "" {
		return netlink.NewHandle(proto)
	}
	ns, err := netns.GetFromPath(f.netns)
	if err != nil {
		return nil, fmt.Errorf("open netns %q: %w", f.netns, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns, proto)
}
