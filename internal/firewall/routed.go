package firewall

import (
	"fmt"

	"github.com/berth-net/berth/internal/errdefs"
)

// A port published on a network whose gateway mode is routed for the
// mapping's family holds no host port and is not DNATed (moby: "Host port
// ignored, because NAT is disabled"): it opens the container's own port
// to traffic routed to the container's address, as moby's
// setPerPortForwarding rule "ip daddr ADDR tcp dport PORT accept" does.
// berth keeps those ports as elements of one set per family,
// ports_routed and ports6_routed, looked up once in the fwd_in chain of
// each network routed for the family: the cost per packet stays flat
// as the ports grow, as for the DNAT maps. A set shared by every network
// is safe: a container's address is routed to its own bridge only, whose
// fwd_in chain is the one that looks it up.

// validateRouted checks a routed mapping: no host side, a plain address.
func validateRouted(m PortMapping) error {
	switch {
	case m.Port == 0:
		return errdefs.Invalid("port mapping %s: ports must be 1 to 65535", m)
	case m.HostPort != 0 || !m.AnyHostIP():
		return errdefs.Invalid("port mapping %s: a routed port has no host address or port", m)
	case !m.Addr.IsValid() || m.Addr.Is4In6() || m.Addr.Zone() != "":
		return errdefs.Invalid("port mapping %s: container address must be a plain IPv4 or IPv6 address", m)
	}
	return nil
}

// routedPortRules accept traffic routed into the network for a routed
// port of each routed family, and for a published port's container side
// in each family that opens direct routing (direct.go). What another of
// berth's bridges sends is dropped before the latter, unless
// n.PeersOpen: Docker 28's DOCKER-ISOLATION chains drop it before its
// per-port accepts (they spare routed networks only), so direct routing
// opens a nat network to the world outside and trusted interfaces, not
// to the host's other networks (a trusted name that matches a bridge
// included).
func routedPortRules(n Network) []Rule {
	var rules []Rule
	for _, f := range families(n) {
		is6 := f.subnet.Addr().Is6()
		switch {
		case f.mode == ModeRouted:
			rules = append(rules, Rule{Stmts: []Stmt{RoutedPortLookup{IPv6: is6}, Verdict{Kind: Accept}}, Comment: "ROUTED PORTS"})
		case n.OpensDirect(f.mode):
			if !n.PeersOpen {
				var family Stmt = NfprotoIPv4{}
				if is6 {
					family = NfprotoIPv6{}
				}
				rules = append(rules, isolationRule(family))
			}
			rules = append(rules, Rule{Stmts: []Stmt{RoutedPortLookup{IPv6: is6}, Verdict{Kind: Accept}}, Comment: "DIRECTLY ROUTED PORTS"})
		}
	}
	return rules
}

// RoutedPortLookup matches a packet whose destination address, protocol
// and port are in ports_routed, or with IPv6 set ports6_routed.
type RoutedPortLookup struct{ IPv6 bool }

func (l RoutedPortLookup) String() string {
	if l.IPv6 {
		return fmt.Sprintf("ip6 daddr . meta l4proto . th dport @%s", MapPorts6Routed)
	}
	return fmt.Sprintf("ip daddr . meta l4proto . th dport @%s", MapPortsRouted)
}

func (RoutedPortLookup) isStmt() {}

// routedKey is a routed mapping's key in a PortIndex: it has no host
// side, and its container side is unique.
type routedKey struct {
	proto Proto
	port  uint16
	addr  [16]byte
	is6   bool
}

func routedKeyOf(m PortMapping) routedKey {
	return routedKey{proto: m.Proto, port: m.Port, addr: m.Addr.As16(), is6: m.Is6()}
}
