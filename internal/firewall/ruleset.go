package firewall

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// The table berth owns. Nothing outside it is ever touched.
const (
	TableFamily = "inet"
	TableName   = "berth"
)

// Verdict maps: one lookup per packet dispatches to the chains of the network
// that owns the key, so per-packet cost does not grow with the number of networks.
const (
	MapFwdIn  = "fwd_in"  // oifname → chain for traffic routed into a bridge
	MapFwdOut = "fwd_out" // iifname → chain for traffic routed out of a bridge
	MapNatOut = "nat_out" // iifname → chain that masquerades a bridge's traffic
	MapDirect = "direct"  // subnet → chain that drops direct access from elsewhere
	// MapDirect6 is MapDirect for IPv6 subnets: a map has one key type.
	MapDirect6 = "direct6"
)

// Base chains.
const (
	ChainForward       = "forward"
	ChainPostrouting   = "postrouting"
	ChainRawPrerouting = "raw_prerouting"
)

// Per-network chain names: the prefix, two underscores, the bridge.
func chainFwdIn(br string) string   { return "fwd_in__" + br }
func chainFwdOut(br string) string  { return "fwd_out__" + br }
func chainNatOut(br string) string  { return "nat_out__" + br }
func chainDirect(br string) string  { return "direct__" + br }
func chainDirect6(br string) string { return "direct6__" + br }

// Ruleset is the complete content of berth's table.
type Ruleset struct {
	Maps   []Map
	Chains []Chain
}

// NetworkRules is what one network adds to the table: its own chains and its
// entries in the dispatch maps. Removing exactly these removes the network.
type NetworkRules struct {
	Bridge   string
	Chains   []Chain
	Elements []Element
}

// Build returns the ruleset for nets, or an error if a network is invalid or
// two networks collide. Networks are ordered by bridge name, so the result
// does not depend on the order of nets.
func Build(nets []Network) (*Ruleset, error) {
	sorted, err := validateAll(nets)
	if err != nil {
		return nil, err
	}
	rs := &Ruleset{Maps: baseMaps(), Chains: baseChains()}
	for _, n := range sorted {
		nr := rulesFor(n)
		rs.Chains = append(rs.Chains, nr.Chains...)
		for _, e := range nr.Elements {
			i := slices.IndexFunc(rs.Maps, func(m Map) bool { return m.Name == e.Map })
			rs.Maps[i].Elements = append(rs.Maps[i].Elements, e)
		}
	}
	return rs, nil
}

// Validate checks nets as Build does, without building any rules: each
// network on its own, and that no two share a bridge or overlapping subnets.
func Validate(nets []Network) error {
	_, err := validateAll(nets)
	return err
}

// RulesFor returns the chains and map elements of one network.
func RulesFor(n Network) (NetworkRules, error) {
	n, err := validate(n)
	if err != nil {
		return NetworkRules{}, err
	}
	return rulesFor(n), nil
}

// Base returns the table's skeleton: the maps (empty) and the base chains.
func Base() *Ruleset { return &Ruleset{Maps: baseMaps(), Chains: baseChains()} }

func baseMaps() []Map {
	maps := make([]Map, 0, 8+len(portMaps))
	maps = append(maps,
		Map{Name: MapFwdIn, Key: KeyIfname},
		Map{Name: MapFwdOut, Key: KeyIfname},
		Map{Name: MapNatOut, Key: KeyIfname},
		Map{Name: MapDirect, Key: KeyIPv4Prefix},
		Map{Name: MapDirect6, Key: KeyIPv6Prefix},
		Map{Name: MapNatIn, Key: KeyIfname},
		Map{Name: MapFwdInternal, Key: KeyIfname},
		Map{Name: MapHostIn, Key: KeyIfname},
	)
	return append(maps, portMaps[:]...)
}

// baseChains hook into the packet path at Docker 29's nftables priorities.
func baseChains() []Chain {
	return []Chain{
		{
			Name: ChainForward,
			Base: &BaseChain{Type: TypeFilter, Hook: HookForward, Priority: PriorityFilter},
			Rules: []Rule{
				// Out of an internal network first: nothing leaves it, not
				// even to a published port (ports.go).
				{Stmts: []Stmt{VmapLookup{Key: LookupIifname, Map: MapFwdInternal}}},
				// Into a bridge next: that chain decides isolation, ICC and
				// inbound drops; it never falls through.
				{Stmts: []Stmt{VmapLookup{Key: LookupOifname, Map: MapFwdIn}}},
				{Stmts: []Stmt{VmapLookup{Key: LookupIifname, Map: MapFwdOut}}},
			},
		},
		{
			Name: ChainPostrouting,
			Base: &BaseChain{Type: TypeNAT, Hook: HookPostrouting, Priority: PrioritySrcNAT},
			Rules: []Rule{
				{Stmts: []Stmt{VmapLookup{Key: LookupIifname, Map: MapNatOut}}},
				{Stmts: []Stmt{VmapLookup{Key: LookupOifname, Map: MapNatIn}}},
				localhostMasqueradeRule(),
			},
		},
		{
			// Raw runs before conntrack: replies to masqueraded connections
			// are still addressed to the host here, so they never match.
			Name: ChainRawPrerouting,
			Base: &BaseChain{Type: TypeFilter, Hook: HookPrerouting, Priority: PriorityRaw},
			Rules: []Rule{
				loopbackFromOutsideRule(),
				{Stmts: []Stmt{VmapLookup{Key: LookupDaddr, Map: MapDirect}}},
				{Stmts: []Stmt{VmapLookup{Key: LookupDaddr6, Map: MapDirect6}}},
			},
		},
		natChains()[0], natChains()[1],
		inputChain(),
	}
}

// rulesFor builds one validated network's chains, mirroring Docker 29's
// nftables backend (nftabler/network.go) for gateway mode "nat", and
// Docker 28's isolation where the two differ (nat-unprotected keeps the
// other networks out: unprotectedRules). A network
// with an IPv6 subnet gets the IPv6 twin of each rule that matches an
// address, as Docker 28's ip6tables rules mirror its iptables rules
// (iptabler/network.go, endpoint.go); the rules that match only
// interfaces or conntrack state serve both families as they are, since
// the table is inet.
func rulesFor(n Network) NetworkRules {
	br := n.Bridge
	nr := NetworkRules{Bridge: br}
	add := func(name, m string, key Element, rules []Rule) {
		nr.Chains = append(nr.Chains, Chain{Name: name, Rules: rules})
		key.Map, key.Jump = m, name
		nr.Elements = append(nr.Elements, key)
	}
	byIf := Element{Ifname: br}
	add(chainHostIn(br), MapHostIn, byIf, hostInRules(n))
	if n.Internal {
		add(chainFwdIn(br), MapFwdIn, byIf, internalInRules(n))
		// Looked up before fwd_in: a published port's accept there must not
		// let an internal network out through a DNAT to its gateway address.
		add(chainFwdOut(br), MapFwdInternal, byIf, internalOutRules(n))
		return nr
	}
	add(chainFwdIn(br), MapFwdIn, byIf, inRules(n))
	// Docker puts "ct state established,related accept" first here too;
	// before an unconditional accept it changes nothing, so berth leaves it out.
	add(chainFwdOut(br), MapFwdOut, byIf, []Rule{clampMSSRule(), accept("OUTGOING")})
	add(chainNatIn(br), MapNatIn, byIf, hairpinRules(n))
	if n.Masquerade {
		// A routed family is not masqueraded (moby's "Masquerade &&
		// !Routed"); a network routed in both has no nat_out chain.
		var masq []Rule
		for _, f := range families(n) {
			if f.mode.nat() {
				masq = append(masq, masqueradeRule(br, f.subnet, f.snat))
			}
		}
		if len(masq) > 0 {
			add(chainNatOut(br), MapNatOut, byIf, masq)
		}
	}
	// Docker drops direct access in nat mode, masquerading or not: in
	// routed mode the subnet is meant to be routed to, and the forward
	// chain still drops unsolicited inbound traffic; nat-unprotected
	// opens every port (moby's filterDirectAccess skips internal,
	// unprotected and routed networks only).
	// The daemon's --allow-direct-routing lifts it (direct.go).
	if n.Subnet.IsValid() && n.GatewayMode4 == ModeNAT && !n.DirectRouting {
		add(chainDirect(br), MapDirect, Element{Prefix: n.Subnet}, []Rule{directAccessRule(n, n.Gateway)})
	}
	if n.Subnet6.IsValid() && n.GatewayMode6 == ModeNAT && !n.DirectRouting {
		add(chainDirect6(br), MapDirect6, Element{Prefix: n.Subnet6}, []Rule{directAccessRule(n, n.Gateway6)})
	}
	return nr
}

// family is one address family of a network: its subnet and gateway mode.
type family struct {
	subnet netip.Prefix
	mode   GatewayMode
	snat   netip.Addr // invalid: masquerade
}

// families returns the families n has, IPv4 first.
func families(n Network) []family {
	out := make([]family, 0, 2)
	if n.Subnet.IsValid() {
		out = append(out, family{n.Subnet, n.GatewayMode4, n.SNAT4})
	}
	if n.Subnet6.IsValid() {
		out = append(out, family{n.Subnet6, n.GatewayMode6, n.SNAT6})
	}
	return out
}

// inRules decide traffic routed into the bridge. Docker 29 dropped the
// pairwise ISOLATION chains: the final drop isolates berth networks from one
// another and from the outside without a rule per pair.
func inRules(n Network) []Rule {
	rules := []Rule{{Stmts: []Stmt{CtEstablishedRelated{}, Verdict{Kind: Accept}}}}
	if n.AcceptMark != 0 {
		// Docker 29's rule group, right after the conntrack accept.
		rules = append(rules, Rule{Stmts: []Stmt{MarkMatch{Mark: n.AcceptMark, Mask: n.AcceptMask}, Counter{}, Verdict{Kind: Accept}}, Comment: "ALLOW FW MARK"})
	}
	rules = append(rules, routedICMPRules(n)...)
	rules = append(rules, publishedPortRules(n)...)
	rules = append(rules, iccRule(n, IfnameMatch{Dir: In, Name: n.Bridge}))
	// After the ICC rule, as Docker's port rules come after its ICC
	// group: with ICC off, a routed port is not a way between the
	// network's own containers.
	rules = append(rules, routedPortRules(n)...)
	rules = append(rules, unprotectedRules(n)...)
	// Always last, even when every family is nat-unprotected: the
	// unprotected accepts match their family, and nothing routed in may
	// fall through to the fwd_out lookup and the forward policy.
	return append(rules, drop("INBOUND DROP"))
}

// Internal networks: nothing in from elsewhere, nothing out to elsewhere;
// ICC still decides traffic between its own containers.
func internalInRules(n Network) []Rule {
	return []Rule{
		{Stmts: []Stmt{CtEstablishedRelated{}, Verdict{Kind: Accept}}},
		{
			Stmts:   []Stmt{IfnameMatch{Dir: In, Negate: true, Name: n.Bridge}, Counter{}, Verdict{Kind: Drop}},
			Comment: "INTERNAL NETWORK INGRESS",
		},
		iccRule(n),
	}
}

func internalOutRules(n Network) []Rule {
	return []Rule{
		{Stmts: []Stmt{CtEstablishedRelated{}, Verdict{Kind: Accept}}},
		{
			Stmts:   []Stmt{IfnameMatch{Dir: Out, Negate: true, Name: n.Bridge}, Counter{}, Verdict{Kind: Drop}},
			Comment: "INTERNAL NETWORK EGRESS",
		},
	}
}

// iccRule accepts or drops traffic between containers of the network. It
// only sees such traffic when bridged packets go through netfilter
// (br_netfilter with net.bridge.bridge-nf-call-iptables=1 in the host
// namespace, as Docker sets up when ICC is off); otherwise the bridge
// forwards it at layer 2 and ICC=false has no effect.
func iccRule(n Network, match ...Stmt) Rule {
	if n.ICC {
		return Rule{Stmts: append(match, Verdict{Kind: Accept}), Comment: "ICC"}
	}
	return Rule{Stmts: append(match, Counter{}, Verdict{Kind: Drop}), Comment: "ICC"}
}

// masqueradeRule NATs what the subnet (IPv4 or IPv6) sends out of any
// other interface: Docker's "-s SUBNET ! -o BRIDGE -j MASQUERADE", in
// iptables and ip6tables alike; or, with snat, its "-j SNAT --to-source
// ADDR" (com.docker.network.host_ipv4, host_ipv6).
func masqueradeRule(br string, subnet netip.Prefix, snat netip.Addr) Rule {
	stmts := []Stmt{
		IfnameMatch{Dir: Out, Negate: true, Name: br},
		AddrMatch{Field: Saddr, Prefix: subnet},
	}
	if snat.IsValid() {
		return Rule{Stmts: append(stmts, SNAT{Addr: snat}), Comment: "SNAT"}
	}
	return Rule{Stmts: append(stmts, Masquerade{}), Comment: "MASQUERADE"}
}

// directAccessRule drops packets for the subnet's containers that arrive on
// any interface but the bridge and n's trusted ones (direct.go). Loopback
// is spared as Docker spares it, and so is the gateway gw (IPv4 or IPv6; invalid: none): it is one of the
// host's addresses, as reachable as any other (Docker's raw drop names
// container addresses only). Dropping it too broke a published port
// reached through another network's gateway address, and the replies to
// the host's own connections from that address into a container of
// another bridge. Neighbour discovery is untouched: its packets for the
// containers come from the bridge, and those from elsewhere are for
// link-local or multicast addresses, outside the subnet.
func directAccessRule(n Network, gw netip.Addr) Rule {
	// The interface tests come first: a packet from the network's own
	// bridge (every container-to-container packet, when br_netfilter
	// passes bridged traffic through this hook) stops at the first one.
	stmts := []Stmt{
		IfnameMatch{Dir: In, Negate: true, Name: n.Bridge},
		IfnameMatch{Dir: In, Negate: true, Name: "lo"},
	}
	for _, name := range n.TrustedIfaces() {
		stmts = append(stmts, trustedMatch(name))
	}
	if gw.IsValid() {
		stmts = append(stmts, AddrMatch{Field: Daddr, Negate: true, Prefix: netip.PrefixFrom(gw, gw.BitLen())})
	}
	stmts = append(stmts, Counter{}, Verdict{Kind: Drop})
	return Rule{Stmts: stmts, Comment: "DIRECT ACCESS DROP"}
}

// loopbackFromOutsideRule drops IPv4 packets for 127.0.0.0/8 that arrive
// on any interface but lo: a LAN neighbour's or a container's, sent to the
// host's MAC with a raw socket. The kernel calls them martians only at
// routing, after NAT: a port published on 127.0.0.1 (or on every address)
// was DNATed to its container first (moby#45610, which Docker 28 closes
// with a raw drop per loopback port), and the bridges' route_localnet,
// which published 127.0.0.1 ports need, let a container reach what the
// host serves on 127.0.0.1 (CVE-2020-8558's class). Nothing legitimate
// arrives so: the host's own 127.0.0.1 traffic comes in on lo, and the
// replies to its masqueraded 127.0.0.1 connections still carry the
// bridge's address here, before conntrack turns it back. IPv6 needs no
// twin: the kernel drops ::1 from any other interface on receipt.
func loopbackFromOutsideRule() Rule {
	return Rule{
		Stmts: []Stmt{
			AddrMatch{Field: Daddr, Prefix: netip.MustParsePrefix("127.0.0.0/8")},
			IfnameMatch{Dir: In, Negate: true, Name: "lo"},
			Counter{},
			Verdict{Kind: Drop},
		},
		Comment: "LOOPBACK FROM OUTSIDE",
	}
}

func accept(comment string) Rule {
	return Rule{Stmts: []Stmt{Verdict{Kind: Accept}}, Comment: comment}
}

func drop(comment string) Rule {
	return Rule{Stmts: []Stmt{Counter{}, Verdict{Kind: Drop}}, Comment: comment}
}

// validate checks one network and returns it with its subnet masked.
func validate(n Network) (Network, error) {
	if err := validateBridge(n.Bridge); err != nil {
		return n, err
	}
	n, err := validateTrusted(n)
	if err != nil {
		return n, err
	}
	if n.AcceptMark&^n.AcceptMask != 0 {
		// A zero mask among them: the rule could match no packet.
		return n, errdefs.Invalid("bridge %q: accepted mark %#x has bits outside its mask %#x", n.Bridge, n.AcceptMark, n.AcceptMask)
	}
	if !n.Subnet.IsValid() {
		// An IPv6-only network: no IPv4 rules.
		if !n.Subnet6.IsValid() {
			return n, errdefs.Invalid("bridge %q has no subnet", n.Bridge)
		}
		if n.Gateway.IsValid() {
			return n, errdefs.Invalid("bridge %q: gateway %s needs an IPv4 subnet", n.Bridge, n.Gateway)
		}
		if err := validateModes(n); err != nil {
			return n, err
		}
		return validate6(n)
	}
	if !n.Subnet.Addr().Is4() {
		return n, errdefs.Invalid("bridge %q: subnet %q is not an IPv4 prefix", n.Bridge, n.Subnet)
	}
	if n.Subnet.Bits() == 0 {
		return n, errdefs.Invalid("bridge %q: subnet %s covers every address", n.Bridge, n.Subnet)
	}
	n.Subnet = n.Subnet.Masked()
	if err := validateModes(n); err != nil {
		return n, err
	}
	if n.Gateway.IsValid() && !n.Subnet.Contains(n.Gateway) {
		return n, errdefs.Invalid("bridge %q: gateway %s is not in subnet %s", n.Bridge, n.Gateway, n.Subnet)
	}
	if n.SNAT4.IsValid() && !n.SNAT4.Is4() {
		return n, errdefs.Invalid("bridge %q: IPv4 source address %s is not IPv4", n.Bridge, n.SNAT4)
	}
	return validate6(n)
}

// validate6 checks the IPv6 side of a network, if it has one, and masks
// its subnet.
func validate6(n Network) (Network, error) {
	if !n.Subnet6.IsValid() {
		if n.Gateway6.IsValid() {
			return n, errdefs.Invalid("bridge %q: IPv6 gateway %s needs an IPv6 subnet", n.Bridge, n.Gateway6)
		}
		return n, nil
	}
	if a := n.Subnet6.Addr(); !a.Is6() || a.Is4In6() {
		return n, errdefs.Invalid("bridge %q: IPv6 subnet %q is not an IPv6 prefix", n.Bridge, n.Subnet6)
	}
	if n.Subnet6.Bits() == 0 {
		return n, errdefs.Invalid("bridge %q: IPv6 subnet %s covers every address", n.Bridge, n.Subnet6)
	}
	n.Subnet6 = n.Subnet6.Masked()
	if n.Gateway6.IsValid() && !n.Subnet6.Contains(n.Gateway6) {
		return n, errdefs.Invalid("bridge %q: IPv6 gateway %s is not in subnet %s", n.Bridge, n.Gateway6, n.Subnet6)
	}
	if a := n.SNAT6; a.IsValid() && (!a.Is6() || a.Is4In6()) {
		return n, errdefs.Invalid("bridge %q: IPv6 source address %s is not IPv6", n.Bridge, a)
	}
	return n, nil
}

// validateBridge accepts Linux interface names made of the characters that
// are also safe in nft chain names, which berth derives from them.
func validateBridge(br string) error {
	if br == "" || len(br) > 15 {
		return errdefs.Invalid("bridge name %q must be 1 to 15 characters", br)
	}
	if br == "lo" {
		return errdefs.Invalid("bridge name %q is the loopback interface", br)
	}
	ok := func(r rune) bool {
		return r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
	}
	if strings.IndexFunc(br, func(r rune) bool { return !ok(r) }) >= 0 || br == "." || br == ".." {
		return errdefs.Invalid("bridge name %q: use only letters, digits, '-', '_' and '.'", br)
	}
	return nil
}

// validateAll checks every network and that no two share a bridge or
// overlapping subnets, then returns them sorted by bridge.
func validateAll(nets []Network) ([]Network, error) {
	out := make([]Network, 0, len(nets))
	for _, n := range nets {
		v, err := validate(n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Network) int { return cmp.Compare(a.Bridge, b.Bridge) })
	for i := 1; i < len(out); i++ {
		if out[i].Bridge == out[i-1].Bridge {
			return nil, errdefs.Conflict("bridge %q is given twice", out[i].Bridge)
		}
	}
	if err := checkOverlaps(out, func(n Network) netip.Prefix { return n.Subnet }); err != nil {
		return nil, err
	}
	if err := checkOverlaps(out, func(n Network) netip.Prefix { return n.Subnet6 }); err != nil {
		return nil, err
	}
	return out, nil
}

// checkOverlaps returns a conflict if the subnets that subnet picks from
// nets overlap; networks whose pick is invalid are left out.
func checkOverlaps(nets []Network, subnet func(Network) netip.Prefix) error {
	type owned struct {
		subnet netip.Prefix
		bridge string
	}
	var byAddr []owned // nil while no network has the family: no allocation
	for _, n := range nets {
		if p := subnet(n); p.IsValid() {
			if byAddr == nil {
				byAddr = make([]owned, 0, len(nets))
			}
			byAddr = append(byAddr, owned{p, n.Bridge})
		}
	}
	slices.SortFunc(byAddr, func(a, b owned) int { return a.subnet.Addr().Compare(b.subnet.Addr()) })
	for i := 1; i < len(byAddr); i++ {
		// Sorted by start address, a prefix can only overlap its predecessor
		// if the predecessor contains its start.
		if a, b := byAddr[i-1], byAddr[i]; a.subnet.Overlaps(b.subnet) {
			return errdefs.Conflict("subnet %s of bridge %q overlaps bridge %q (%s)", b.subnet, b.bridge, a.bridge, a.subnet)
		}
	}
	return nil
}
