package firewall

import (
	"net/netip"

	"github.com/berth-net/berth/internal/errdefs"
)

// Published ports over IPv6 mirror Docker 28's ip6tables rules for a
// container with an IPv6 address (moby libnetwork/drivers/bridge/internal/
// iptabler: addNATJumpRules in network.go, setPerPortNAT in port.go):
//   - nat PREROUTING and OUTPUT jump to the DNAT rules for a destination of
//     type LOCAL, as for IPv4; here the lookup in ports6_ip, then ports6_any;
//   - "! -s fe80::/10" on each DNAT: a link-local source cannot be routed
//     to the container's subnet, so such a client is left to the userland
//     proxy that holds [::]:PORT;
//   - OUTPUT "! -d ::1/128": IPv6 has no route_localnet, so a packet from
//     ::1 never leaves lo, and ::1:PORT is the proxy's too (Docker's, with
//     its default userland-proxy, is the same). A mapping bound to ::1 is
//     kept in ports6_ip, for its claim on the port, and never matches.
//     The host's other addresses are DNATed in OUTPUT as in PREROUTING;
//   - the hairpin masquerade (ports.go) for the network's IPv6 subnet too.
// Forwarding needs nothing new: fwd_in's "ct status dnat accept" matches
// conntrack, whatever the family.

var (
	loopback6  = netip.PrefixFrom(netip.IPv6Loopback(), 128)
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
)

// natPrerouting6 and natOutput6 are made once: every Build shares them
// (rules are never changed once built), so that the IPv6 rules cost an
// IPv4-only Build nothing but their room in the chains.
var (
	natPrerouting6 = natRules6(HookPrerouting)
	natOutput6     = natRules6(HookOutput)
)

// natRules6 are the IPv6 rules of the nat chain on hook h (prerouting or
// output), ports6_ip first as for IPv4. The "ip6 daddr" and "ip6 saddr"
// matches carry the IPv6 dependency, so nft lists none.
func natRules6(h Hook) []Rule {
	var match []Stmt
	if h == HookOutput {
		match = append(match, AddrMatch{Field: Daddr, Negate: true, Prefix: loopback6})
	}
	match = append(match, AddrMatch{Field: Saddr, Negate: true, Prefix: linkLocal6}, FibDaddrLocal{})
	rule := func(byAddr bool) Rule {
		stmts := make([]Stmt, 0, len(match)+1)
		return Rule{Stmts: append(append(stmts, match...), DNATPortMap{ByAddr: byAddr, IPv6: true})}
	}
	return []Rule{rule(true), rule(false)}
}

// validatePort6 checks the addresses of an IPv6 mapping: a host address of
// the other family is the userland proxy's business, not the firewall's.
func validatePort6(m PortMapping) error {
	if m.Addr.Is4In6() || m.Addr.Zone() != "" {
		return errdefs.Invalid("port mapping %s: container address must be a plain IPv4 or IPv6 address", m)
	}
	if m.HostIP.IsValid() && (!m.HostIP.Is6() || m.HostIP.Is4In6() || m.HostIP.Zone() != "") {
		return errdefs.Invalid("port mapping %s: host address must be IPv6, as the container's is", m)
	}
	return nil
}
