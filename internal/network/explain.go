package network

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/firewall"
)

// ExplainRequest asks what berth's table does to a new connection
// (berth explain): From and To are each a container (name or ID), "host"
// (the host itself), or an address; Port and Proto ("tcp", "udp",
// "icmp"; "" is tcp with a port and icmp without) say what is sent. In
// names the interface a packet from an address arrives on ("" is the
// one the host's route back to it leaves by); IPv6 picks the
// containers' IPv6 addresses.
type ExplainRequest struct {
	From, To string
	Proto    string
	Port     uint16
	In       string
	IPv6     bool
}

// Explanation is firewall.Explain's answer, with the two ends in words
// ("container web (172.17.0.2 on bridge)").
type Explanation struct {
	From string `json:"From"`
	To   string `json:"To"`
	firewall.Explanation
}

// Ruleset is berth's table as the controller wants it: the rules of every
// bridge network and the published ports of every ready endpoint, which
// is what the firewall holds (it writes exactly this at a rebuild, and
// puts it back when someone else changes it).
func (c *Controller) Ruleset() (*firewall.Ruleset, error) {
	return firewall.BuildWithPorts(c.firewallNetworks(), c.publishedPorts())
}

// firewallNetworks are the firewall's view of every bridge network.
func (c *Controller) firewallNetworks() []firewall.Network {
	var nets []firewall.Network
	for _, n := range c.Networks() {
		if n.Driver == DriverBridge {
			nets = append(nets, c.firewallNetwork(n))
		}
	}
	return nets
}

// HostPortUse is one published mapping of a host port, for berth
// explain's notes on a packet the host itself receives: the mapping, the
// container address it goes to, and where the daemon's proxy sends it
// when the proxy serves it (the [::] side of an IPv4-only container, and
// ::1).
type HostPortUse struct {
	Mapping PortMapping
	To      netip.AddrPort
	Proxy   netip.AddrPort // invalid: no proxy
}

// HostPortUses lists the ready endpoints' mappings of host port port/proto.
func (c *Controller) HostPortUses(proto string, port uint16) []HostPortUse {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []HostPortUse
	for _, ep := range c.endpoints {
		if ep.State != EndpointReady {
			continue
		}
		for _, m := range ep.Ports {
			if m.Proto != proto || m.HostPort != port {
				continue
			}
			u := HostPortUse{Mapping: m, To: netip.AddrPortFrom(ep.Address.Addr(), m.Port)}
			if !m.HostIP.Is4() && ep.Address6.IsValid() {
				u.To = netip.AddrPortFrom(ep.Address6.Addr(), m.Port)
			}
			u.Proxy, _ = c.proxyTarget(ep, m)
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b HostPortUse) int { return strings.Compare(a.Mapping.String(), b.Mapping.String()) })
	return out
}
