package nftables

import (
	"errors"
	"fmt"

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
			f.log.Warn("delete conntrack entries of withdrawn ports", "family", fam.af, "err", err)
			continue
		}
		if n > 0 {
			f.log.Debug("conntrack entries of withdrawn ports deleted", "entries", n)
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
