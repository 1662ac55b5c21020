package network

import (
	"net/netip"

	"github.com/berth-net/berth/internal/firewall"
)

// A port published on a network whose gateway mode is routed for a
// family is not NATed in that family, and holds no host port (moby's
// attemptBindHostPorts: "Host port ignored, because NAT is disabled"):
// its mapping keeps the container port, with HostPort 0 and the host
// address 0.0.0.0 or [::] (configurePortBindingIPv4 and IPv6: "Using
// address 0.0.0.0 because NAT is disabled"), and the firewall opens
// the container's port to traffic routed to its address. No forwarder
// serves it.

// routedPorts splits reqs, for ep on n publishing fam, into the mappings
// of the routed families and the requests left to NAT. A request's side in a routed
// family becomes a routed mapping; its other side, if any, is kept as
// a request of that family alone: an explicit host address 0.0.0.0 (no
// IPv6 twin) when its IPv6 side is routed, or [::] when its IPv4 side is.
func (c *Controller) routedPorts(n *Network, ep *Endpoint, reqs []PortRequest, fam portFamilies) ([]PortMapping, []PortRequest) {
	routed4 := fam.v4 && n.Bridge.GatewayMode4 == firewall.ModeRouted && ep.Address.IsValid()
	routed6 := fam.v6 && n.Bridge.GatewayMode6 == firewall.ModeRouted && ep.Address6.IsValid()
	if !routed4 && !routed6 {
		return nil, reqs
	}
	var ms []PortMapping
	nat := make([]PortRequest, 0, len(reqs))
	routed := func(r PortRequest, any netip.Addr) {
		ms = append(ms, PortMapping{Proto: r.Proto, HostIP: any, Port: r.Port})
	}
	for _, r := range reqs {
		has4, has6 := c.portSides(n, ep, r)
		has4, has6 = has4 && fam.v4, has6 && fam.v6
		switch {
		case has4 && routed4:
			routed(r, netip.IPv4Unspecified())
			if has6 && routed6 {
				routed(r, netip.IPv6Unspecified())
			} else if has6 {
				r.HostIP = netip.IPv6Unspecified()
				nat = append(nat, r)
			}
		case has6 && routed6:
			routed(r, netip.IPv6Unspecified())
			if has4 {
				r.HostIP = netip.IPv4Unspecified()
				nat = append(nat, r)
			}
		default:
			nat = append(nat, r)
		}
	}
	return ms, nat
}

// portSides says which families r publishes ep's port in, as
// holdNATPorts and holdPorts6 decide it: IPv4 for an IPv4 host address
// or none, when ep has IPv4; IPv6 for an IPv6 host address, or none
// when the host has IPv6 ports and the network's default host address
// is 0.0.0.0 or IPv6.
func (c *Controller) portSides(n *Network, ep *Endpoint, r PortRequest) (has4, has6 bool) {
	if r.HostIP.IsValid() {
		return r.HostIP.Is4() && ep.Address.IsValid(), r.HostIP.Is6() && c.reaches6(ep)
	}
	def := n.Bridge.HostBindingIPv4
	every := !def.IsValid() || def == netip.IPv4Unspecified()
	has4 = ep.Address.IsValid() && (every || def.Is4())
	has6 = c.cfg.IPv6Ports && (every || def.Is6()) && c.reaches6(ep)
	return has4, has6
}
