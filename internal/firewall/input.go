package firewall

import "fmt"

// Containers and the host's own services.
//
// Docker (and netavark) leave every service of the host open to every
// container: a container reaches sshd, a database or a metrics endpoint
// listening on 0.0.0.0 through its gateway address, or through any other
// address of the host, because such packets go to the INPUT hook, which
// neither touches. berth closes that door: packets that come in from a
// berth bridge and are addressed to the host itself are refused, except
//   - replies to connections the host opened (ct state established,related),
//   - ICMP (ping the gateway, path MTU discovery, errors), and on a network
//     with IPv6 ICMPv6 too, which also carries neighbour discovery (a
//     container resolving its gateway's address), router solicitations
//     and multicast listener reports: IPv6 on the bridge stops without it,
//   - DNS (udp and tcp port 53), for a resolver on the host.
// Refused, not dropped: an ICMP "administratively prohibited" makes the
// client fail at once ("host is unreachable"), where a drop left
// `wget host.docker.internal:8080` hanging until its timeout. A network
// created with the option berth.bridge.host_access=true (or the default
// bridge with the daemon's --bridge-host-access) opens the door again, as
// Docker has it, for development set-ups that reach a service on the host.
// Published ports are unaffected: their DNAT (prerouting) rewrites the
// destination to the container before the routing decision, so they are
// forwarded, never delivered to the host. The dispatch is one more
// per-interface verdict map, so the cost stays flat as networks grow.

// MapHostIn maps a bridge (iifname) to the chain that decides its
// containers' packets for the host itself.
const MapHostIn = "host_in"

// ChainInput is the base chain on the input hook.
const ChainInput = "input"

func chainHostIn(br string) string { return "host_in__" + br }

// inputChain dispatches packets for the host by input interface; packets
// from anywhere but a berth bridge do not match and go on untouched.
func inputChain() Chain {
	return Chain{
		Name:  ChainInput,
		Base:  &BaseChain{Type: TypeFilter, Hook: HookInput, Priority: PriorityFilter},
		Rules: []Rule{{Stmts: []Stmt{VmapLookup{Key: LookupIifname, Map: MapHostIn}}}},
	}
}

// hostInRules decide what a network's containers may send to the host.
func hostInRules(n Network) []Rule {
	if n.HostAccess {
		return []Rule{{Stmts: []Stmt{Counter{}, Verdict{Kind: Accept}}, Comment: "HOST ACCESS OPEN"}}
	}
	rules := make([]Rule, 0, 6)
	rules = append(rules,
		Rule{Stmts: []Stmt{CtEstablishedRelated{}, Verdict{Kind: Accept}}},
		Rule{Stmts: []Stmt{L4ProtoMatch{Proto: ProtoICMP}, Verdict{Kind: Accept}}},
	)
	if n.Subnet6.IsValid() {
		// Conntrack does not track neighbour discovery (its ct state is
		// "invalid"), so the established rule above does not let it in.
		rules = append(rules, Rule{Stmts: []Stmt{L4ProtoMatch{Proto: ProtoICMPv6}, Verdict{Kind: Accept}}})
	}
	// DNS and the refusal match the transport header or nothing: both families.
	return append(rules,
		Rule{Stmts: []Stmt{DportMatch{Proto: ProtoUDP, Port: 53}, Verdict{Kind: Accept}}, Comment: "DNS"},
		Rule{Stmts: []Stmt{DportMatch{Proto: ProtoTCP, Port: 53}, Verdict{Kind: Accept}}, Comment: "DNS"},
		Rule{Stmts: []Stmt{Counter{}, RejectAdminProhibited{}}, Comment: "HOST ACCESS REFUSED"},
	)
}

// RejectAdminProhibited ends a rule by refusing the packet with an ICMP
// (or ICMPv6) "administratively prohibited" ("reject with icmpx
// admin-prohibited").
type RejectAdminProhibited struct{}

func (RejectAdminProhibited) String() string { return "reject with icmpx admin-prohibited" }

func (RejectAdminProhibited) isStmt() {}

// L4Proto is an IP protocol number berth's rules name.
type L4Proto uint8

// The protocols berth's rules name.
const (
	ProtoICMP   L4Proto = 1
	ProtoTCP    L4Proto = 6
	ProtoUDP    L4Proto = 17
	ProtoICMPv6 L4Proto = 58
)

func (p L4Proto) String() string {
	switch p {
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoICMPv6:
		return "ipv6-icmp" // nft's name, from /etc/protocols
	}
	return fmt.Sprint(uint8(p))
}

// L4ProtoMatch matches the transport protocol ("meta l4proto icmp").
type L4ProtoMatch struct{ Proto L4Proto }

func (m L4ProtoMatch) String() string { return "meta l4proto " + m.Proto.String() }

// DportMatch matches a TCP or UDP destination port ("udp dport 53").
type DportMatch struct {
	Proto L4Proto
	Port  uint16
}

func (m DportMatch) String() string { return fmt.Sprintf("%s dport %d", m.Proto, m.Port) }

func (L4ProtoMatch) isStmt() {}
func (DportMatch) isStmt()   {}
