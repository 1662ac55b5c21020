package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// Published ports are two maps per family and two base chains, whatever
// their number: each packet to a local address does one lookup in ports_ip
// (ports bound to one host address) and, failing that, one in ports_any
// (ports bound to every address), or in their IPv6 twins ports6_ip and
// ports6_any. Docker and netavark add a rule per port instead, so their
// per-packet cost and their batch size grow with the ports (moby#53466).
const (
	MapPortsAny = "ports_any" // l4proto . dport → container addr . port
	MapPortsIP  = "ports_ip"  // daddr . l4proto . dport → container addr . port
	// MapPorts6Any and MapPorts6IP are the IPv6 twins of the two maps
	// (ports6.go): a map has one key and one data type.
	MapPorts6Any = "ports6_any"
	MapPorts6IP  = "ports6_ip"
	// MapPortsRouted and MapPorts6Routed are sets, not maps: the container
	// address . l4proto . port of each port published on a network whose
	// gateway mode is routed for the family (routed.go).
	MapPortsRouted  = "ports_routed"
	MapPorts6Routed = "ports6_routed"
	MapNatIn        = "nat_in" // oifname → chain that masquerades hairpin traffic into a bridge
	// MapFwdInternal: iifname → the egress chain of an internal network,
	// consulted before fwd_in (ruleset.go).
	MapFwdInternal = "fwd_internal"

	ChainNatPrerouting = "nat_prerouting"
	ChainNatOutput     = "nat_output"
)

// Proto is a published port's transport protocol, as its IP protocol number.
type Proto uint8

// The protocols berth publishes.
const (
	TCP Proto = 6
	UDP Proto = 17
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto-%d", uint8(p))
}

// ParseProto reads "tcp" or "udp"; "" means tcp, as in Docker's "80" for "80/tcp".
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "", "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, errdefs.Invalid("invalid proto %q: berth publishes tcp and udp ports", s)
}

// PortMapping is one published port: traffic for HostIP:HostPort goes to
// Addr:Port. An invalid or unspecified HostIP means every local address.
// The container's address decides the family: a mapping to an IPv6
// address is an IPv6 mapping, whose HostIP is invalid, "::" or an IPv6
// address of the host; the same host port may be published once per
// family (ports6.go).
//
// A Routed mapping has no host side (HostIP and HostPort zero): it opens
// Addr:Port to traffic routed into its network, as a port published on a
// network whose gateway mode is routed for the family (routed.go).
type PortMapping struct {
	Proto    Proto
	HostIP   netip.Addr
	HostPort uint16
	Addr     netip.Addr // the container's address
	Port     uint16
	Routed   bool
}

// AnyHostIP reports whether the mapping is published on every local address.
func (m PortMapping) AnyHostIP() bool { return !m.HostIP.IsValid() || m.HostIP.IsUnspecified() }

// Is6 reports whether m is an IPv6 mapping: its container address is IPv6.
func (m PortMapping) Is6() bool { return m.Addr.Is6() }

func (m PortMapping) String() string {
	if m.Routed {
		return fmt.Sprintf("routed->%s/%s", netip.AddrPortFrom(m.Addr, m.Port), m.Proto)
	}
	if m.Is6() {
		return fmt.Sprintf("%s->%s/%s", netip.AddrPortFrom(m.hostIP(), m.HostPort), netip.AddrPortFrom(m.Addr, m.Port), m.Proto)
	}
	return fmt.Sprintf("%s:%d->%s:%d/%s", m.hostIP(), m.HostPort, m.Addr, m.Port, m.Proto)
}

// hostIP is the host address as Docker prints it: 0.0.0.0 or :: for
// every address of the mapping's family.
func (m PortMapping) hostIP() netip.Addr {
	switch {
	case !m.AnyHostIP():
		return m.HostIP
	case m.Is6():
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// mapName is the map that holds the mapping's element.
func (m PortMapping) mapName() string {
	switch every := m.AnyHostIP(); {
	case m.Routed && m.Is6():
		return MapPorts6Routed
	case m.Routed:
		return MapPortsRouted
	case m.Is6() && every:
		return MapPorts6Any
	case m.Is6():
		return MapPorts6IP
	case every:
		return MapPortsAny
	}
	return MapPortsIP
}

// keyString is the element key in nft syntax.
func (m PortMapping) keyString() string {
	if m.Routed {
		return fmt.Sprintf("%s . %s . %d", m.Addr, m.Proto, m.Port)
	}
	if m.AnyHostIP() {
		return fmt.Sprintf("%s . %d", m.Proto, m.HostPort)
	}
	return fmt.Sprintf("%s . %s . %d", m.HostIP, m.Proto, m.HostPort)
}

// dataString is the element's data in nft syntax.
func (m PortMapping) dataString() string { return fmt.Sprintf("%s . %d", m.Addr, m.Port) }

// validatePort checks one mapping on its own.
func validatePort(m PortMapping) error {
	if m.Proto != TCP && m.Proto != UDP {
		return errdefs.Invalid("port mapping %s: protocol must be tcp or udp", m)
	}
	if m.Routed {
		return validateRouted(m)
	}
	if m.HostPort == 0 || m.Port == 0 {
		return errdefs.Invalid("port mapping %s: ports must be 1 to 65535", m)
	}
	if m.Is6() {
		return validatePort6(m)
	}
	if !m.Addr.Is4() {
		return errdefs.Invalid("port mapping %s: container address must be IPv4 or IPv6", m)
	}
	if m.HostIP.IsValid() && !m.HostIP.Is4() {
		return errdefs.Invalid("port mapping %s: host address must be IPv4, as the container's is", m)
	}
	return nil
}

// ValidatePorts checks each mapping and that no two claim the same host
// address, port and protocol; a port on every address also collides with
// the same port on one address, as binding it would.
func ValidatePorts(ps []PortMapping) error { return NewPortClaims().Check(ps) }

// PortElements returns the map elements of ps, sorted by map and key, after
// ValidatePorts.
func PortElements(ps []PortMapping) ([]Element, error) {
	if err := ValidatePorts(ps); err != nil {
		return nil, err
	}
	out := ElementsOf(ps)
	slices.SortFunc(out, compareElements)
	return out, nil
}

// ElementsOf returns the map elements of ps as they are, unchecked and
// unsorted, for callers that checked them with PortClaims.
func ElementsOf(ps []PortMapping) []Element {
	out := make([]Element, 0, len(ps))
	for _, m := range ps {
		if m.AnyHostIP() {
			m.HostIP = netip.Addr{} // one spelling of "every address"
		}
		out = append(out, Element{Map: m.mapName(), Port: m})
	}
	return out
}

func compareElements(a, b Element) int {
	return cmp.Or(
		cmp.Compare(a.Map, b.Map),
		a.Port.HostIP.Compare(b.Port.HostIP),
		cmp.Compare(a.Port.Proto, b.Port.Proto),
		cmp.Compare(a.Port.HostPort, b.Port.HostPort),
		a.Port.Addr.Compare(b.Port.Addr), // routed elements: no host side
		cmp.Compare(a.Port.Port, b.Port.Port),
	)
}

// BuildWithPorts is Build plus the published ports' map elements.
func BuildWithPorts(nets []Network, ports []PortMapping) (*Ruleset, error) {
	rs, err := Build(nets)
	if err != nil {
		return nil, err
	}
	es, err := PortElements(ports)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		i := slices.IndexFunc(rs.Maps, func(m Map) bool { return m.Name == e.Map })
		rs.Maps[i].Elements = append(rs.Maps[i].Elements, e)
	}
	return rs, nil
}

// portMaps are the port maps, empty; Build copies them.
var portMaps = [...]Map{
	{Name: MapPortsAny, Key: KeyProtoPort},
	{Name: MapPortsIP, Key: KeyAddrProtoPort},
	{Name: MapPorts6Any, Key: KeyProtoPort6},
	{Name: MapPorts6IP, Key: KeyAddrProtoPort6},
	{Name: MapPortsRouted, Key: KeyRoutedSet},
	{Name: MapPorts6Routed, Key: KeyRoutedSet6},
}

// natChains DNAT packets for a local address through the port maps, both
// arriving (prerouting) and sent by the host itself (output), so that
// 127.0.0.1:PORT and the host's own addresses work without a proxy. ports_ip
// is looked up first: a port bound to one address wins over none at all.
// The IPv6 rules (ports6.go) come after the IPv4 ones, which end with the
// DNAT when they match: an IPv4 packet pays for them only when no port
// took it, two failed nfproto compares, and a nat chain sees only the
// first packet of each connection.
func natChains() []Chain {
	rules := func(r6 []Rule) []Rule {
		return append(append(make([]Rule, 0, 2+len(r6)),
			// nft lists the IPv4 dependency of "ip daddr" implicitly.
			Rule{Stmts: []Stmt{NfprotoIPv4{Implied: true}, FibDaddrLocal{}, DNATPortMap{ByAddr: true}}},
			Rule{Stmts: []Stmt{NfprotoIPv4{}, FibDaddrLocal{}, DNATPortMap{}}},
		), r6...)
	}
	return []Chain{
		{Name: ChainNatPrerouting, Base: &BaseChain{Type: TypeNAT, Hook: HookPrerouting, Priority: PriorityDstNAT}, Rules: rules(natPrerouting6)},
		// nft 1.0 names -100 "dstnat" on prerouting only and lists the number here.
		{Name: ChainNatOutput, Base: &BaseChain{Type: TypeNAT, Hook: HookOutput, Priority: Priority{Name: "-100", Value: -100}}, Rules: rules(natOutput6)},
	}
}

// localhostMasqueradeRule gives DNATed connections from 127.0.0.0/8 a
// source the container can answer (the bridge's address). The kernel only
// routes such packets out of the bridge with route_localnet=1 on it, which
// the bridge driver sets.
func localhostMasqueradeRule() Rule {
	return Rule{
		Stmts:   []Stmt{AddrMatch{Field: Saddr, Prefix: netip.MustParsePrefix("127.0.0.0/8")}, CtStatusDNAT{}, Masquerade{}},
		Comment: "LOCALHOST PORTS",
	}
}

func chainNatIn(br string) string { return "nat_in__" + br }

// hairpinRules, in the chain the nat_in map picks by output bridge,
// masquerades DNATed traffic from the bridge's own subnet: a container that
// reaches a neighbour, or itself, through a host address. Without it the
// target would answer from an address the client never talked to, and a
// container would get packets from its own address. It matches by source
// address, not input interface, because with br_netfilter such packets are
// bridged rather than routed and postrouting sees no input interface.
// A network with IPv6 gets the same rule for its IPv6 subnet, as Docker's
// ip6tables masquerade hairpin traffic as its iptables do.
func hairpinRules(n Network) []Rule {
	rule := func(subnet netip.Prefix) Rule {
		return Rule{
			Stmts:   []Stmt{AddrMatch{Field: Saddr, Prefix: subnet}, CtStatusDNAT{}, Masquerade{}},
			Comment: "HAIRPIN",
		}
	}
	var rules []Rule
	for _, sub := range []netip.Prefix{n.Subnet, n.Subnet6} {
		if sub.IsValid() {
			rules = append(rules, rule(sub))
		}
	}
	return rules
}

// publishedPortRules accept traffic into the network that a port map
// DNATed. They sit before the ICC rule: a published port is meant for
// everyone, including neighbours that reach it through a host address
// while ICC is off.
func publishedPortRules(Network) []Rule {
	return []Rule{{Stmts: []Stmt{CtStatusDNAT{}, Verdict{Kind: Accept}}, Comment: "PUBLISHED PORTS"}}
}

// NfprotoIPv4 matches IPv4 packets ("meta nfproto ipv4"). Implied marks the
// dependency that nft adds and lists silently before "ip daddr" reads.
type NfprotoIPv4 struct{ Implied bool }

func (n NfprotoIPv4) String() string {
	if n.Implied {
		return ""
	}
	return "meta nfproto ipv4"
}

// FibDaddrLocal matches packets for an address of the host.
type FibDaddrLocal struct{}

func (FibDaddrLocal) String() string { return "fib daddr type local" }

// CtStatusDNAT matches connections whose destination was NATed.
type CtStatusDNAT struct{}

func (CtStatusDNAT) String() string { return "ct status dnat" }

// DNATPortMap rewrites the destination to the address and port a port map
// holds for the packet: ports_ip keyed by daddr too when ByAddr is set,
// ports_any otherwise, or with IPv6 set their IPv6 twins. A packet whose
// key is not there goes on unchanged.
type DNATPortMap struct{ ByAddr, IPv6 bool }

func (d DNATPortMap) String() string {
	switch {
	case d.IPv6 && d.ByAddr:
		return "dnat ip6 to ip6 daddr . meta l4proto . th dport map @" + MapPorts6IP
	case d.IPv6:
		return "dnat ip6 to meta l4proto . th dport map @" + MapPorts6Any
	case d.ByAddr:
		return "dnat ip to ip daddr . meta l4proto . th dport map @" + MapPortsIP
	}
	return "dnat ip to meta l4proto . th dport map @" + MapPortsAny
}

func (NfprotoIPv4) isStmt()   {}
func (FibDaddrLocal) isStmt() {}
func (CtStatusDNAT) isStmt()  {}
func (DNATPortMap) isStmt()   {}
