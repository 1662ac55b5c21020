package nftables

import (
	"errors"
	"fmt"
	"net/netip"

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
		if m.Is6() {
			filters6 = append(filters6, flt)
		} else {
			filters = append(filters, flt)
		}
	}
	f.deleteConntrack(filters, filters6, "withdrawn ports")
}

// forgetUnpublished deletes the conntrack entries of UDP flows that
// reached a host port before it was published, as moby's
// clearConntrackEntries does after adding port mappings (moby#8795,
// #44688, #44742): the kernel delivered those datagrams to the host
// itself (to no one, or to the socket that holds the port), and since
// every later datagram of the flow refreshes its entry, a client that
// keeps its socket (a DNS forwarder, syslog, statsd) would never be
// DNATed to the container (QA round 25: cut off for good). Only entries
// neither DNATed nor SNATed go: a container's own flow out to that port
// somewhere else is masqueraded, and is left alone (Docker's filter, on
// the port alone, drops those too). TCP needs nothing: a new connection
// is a new entry.
func (f *Firewall) forgetUnpublished(ms []firewall.PortMapping) {
	var filters, filters6 []netlink.CustomConntrackFilter
	for _, m := range ms {
		if m.Proto != firewall.UDP || m.Routed {
			continue
		}
		flt := unpublishedFlow{port: m.HostPort}
		if !m.AnyHostIP() {
			flt.hostIP = m.HostIP
		}
		if m.Is6() {
			filters6 = append(filters6, flt)
		} else {
			filters = append(filters, flt)
		}
	}
	f.deleteConntrack(filters, filters6, "flows to ports before they were published")
}

// unpublishedFlow matches a UDP flow to port (on hostIP, when valid) that
// went to the host as it was sent: its reply tuple is its own tuple
// reversed, so no NAT rewrote either end.
type unpublishedFlow struct {
	port   uint16
	hostIP netip.Addr
}

func (u unpublishedFlow) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	fw, rv := flow.Forward, flow.Reverse
	if fw.Protocol != unix.IPPROTO_UDP || fw.DstPort != u.port {
		return false
	}
	if !rv.SrcIP.Equal(fw.DstIP) || rv.SrcPort != fw.DstPort || !rv.DstIP.Equal(fw.SrcIP) || rv.DstPort != fw.SrcPort {
		return false // NATed: DNATed to a container already, or a container's flow out
	}
	if u.hostIP.IsValid() {
		dst, ok := netip.AddrFromSlice(fw.DstIP)
		return ok && dst.Unmap() == u.hostIP.Unmap()
	}
	return true
}

// deleteConntrack deletes the entries that match any of the filters, per
// family; what names them in the log. A failure is logged: the ports
// change either way.
func (f *Firewall) deleteConntrack(filters, filters6 []netlink.CustomConntrackFilter, what string) {
	if len(filters) == 0 && len(filters6) == 0 {
		return
	}
	h, err := f.conntrackHandle()
	if err != nil {
		f.log.Warn("open conntrack", "err", err)
		return
	}
	defer h.Close()
	for _, fam := range []struct {
		af      netlink.InetFamily
		filters []netlink.CustomConntrackFilter
	}{{unix.AF_INET, filters}, {unix.AF_INET6, filters6}} {
		if len(fam.filters) == 0 {
			continue
		}
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam.af, fam.filters...)
		if err != nil {
			f.log.Warn("delete conntrack entries of "+what, "family", fam.af, "err", err)
			continue
		}
		if n > 0 {
			f.log.Debug("conntrack entries of "+what+" deleted", "entries", n)
		}
	}
}

func (f *Firewall) conntrackHandle() (*netlink.Handle, error) {
	if f.netns == "" {
		return netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	ns, err := netns.GetFromPath(f.netns)
	if err != nil {
		return nil, fmt.Errorf("open netns %q: %w", f.netns, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
}
