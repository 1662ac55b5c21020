package firewall

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Explain answers "what does berth's table do to this packet, and which
// rule decides it" (user-pain 19: Docker 28's hardening cut set-ups off
// with nothing to say why). It walks the first packet of a new
// connection through the base chains of a Ruleset in the kernel's order
// (hook by hook, by priority within a hook), evaluating the statements
// the model has as nftables does: a match that fails ends the rule, a
// verdict-map miss goes on with the next rule, a jump returns at the end
// of its chain, an accept ends the chain's hook, a drop or a reject ends
// the packet, a NAT statement ends its chain with an accept. The routing
// decisions between the hooks, and what the host's other tables do to a
// forwarded packet, come from a Host: the kernel in the daemon, a fake
// in tests. Everything here is pure: the
// evaluation is checked against the kernel's own by the end-to-end test
// that sends each packet it explains.

// Packet is the first packet of a connection, as it reaches the host.
type Packet struct {
	// Proto is tcp, udp, or icmp (for IPv6 traffic icmp and ipv6-icmp
	// are one).
	Proto    L4Proto
	Src, Dst netip.Addr
	// Dport is the destination port of a tcp or udp packet.
	Dport uint16
	// Iif is the interface the packet arrives on; "" for a packet the
	// host itself sends.
	Iif string
	// Switched: the sender reaches Dst on its own link, so the bridge it
	// arrives on switches it whatever the host's routes say (an isolated
	// network, where the host has no address and no route).
	Switched bool
}

func (p Packet) is6() bool { return p.Dst.Is6() && !p.Dst.Is4In6() }

// HasPorts reports whether p is tcp or udp, whose Dport counts.
func (p Packet) HasPorts() bool { return p.Proto == ProtoTCP || p.Proto == ProtoUDP }

func (p Packet) String() string {
	dst := p.Dst.String()
	if p.HasPorts() {
		dst = netip.AddrPortFrom(p.Dst, p.Dport).String()
	}
	src := "?"
	if p.Src.IsValid() {
		src = p.Src.String()
	}
	s := fmt.Sprintf("%s %s → %s", p.Proto, src, dst)
	if p.Iif != "" {
		s += " in on " + p.Iif
	} else {
		s += " from the host"
	}
	return s
}

// Route is the kernel's routing decision for a destination.
type Route struct {
	// Oif is the interface the packet leaves by ("lo" for the host's own
	// addresses).
	Oif string
	// Local: the destination is one of the host's own addresses.
	Local bool
}

// Host is what Explain asks of the kernel.
type Host interface {
	// Route is the route to dst (the main table's: policy routing is
	// not modelled).
	Route(dst netip.Addr) (Route, error)
	// BridgeNetfilter reports whether packets bridged between two ports
	// of one bridge go through the IP hooks (net.bridge.bridge-nf-call-
	// iptables, or -ip6tables with ipv6).
	BridgeNetfilter(ipv6 bool) bool
	// Forwarding reports whether the host routes packets between its
	// interfaces (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding).
	Forwarding(ipv6 bool) bool
	// OtherForward says what the host's other tables' forward chains do
	// to p (after any DNAT, dnat saying whether there was one) on its way
	// out of oif: "" when they let it through, Dropped, or Undecided
	// when a rule's match reads what the packet does not say; the step
	// names the chain and the rule. A drop anywhere is final, whatever
	// berth's table accepts.
	OtherForward(p Packet, oif string, dnat bool) (Step, Outcome)
	// OtherInput is OtherForward for a packet to the host itself: the
	// other tables' input chains, and output chains for the answer.
	OtherInput(p Packet) (Step, Outcome)
	// OtherPrerouting is OtherForward for the packet on the prerouting
	// hook, in the other tables' filter chains: pre as it arrives, post
	// after berth's DNAT (dnat says whether there was one).
	OtherPrerouting(pre, post Packet, dnat bool) (Step, Outcome)
	// IsBridge reports whether the interface is a bridge: a packet that
	// comes in and goes out by one is switched, not routed.
	IsBridge(name string) bool
}

// Outcome is what becomes of the packet.
type Outcome string

// Outcomes.
const (
	Delivered Outcome = "delivered" // accepted, to the host itself (input) or out of an interface
	Dropped   Outcome = "dropped"
	Rejected  Outcome = "rejected" // dropped with an ICMP error to the sender
	NoRoute   Outcome = "no route"
	// Undecided: another table's rule matches on what explain does not
	// read (a mark, a source port, an interval set, an xtables match).
	Undecided Outcome = "undecided"
)

// Step is one rule that acted on the packet, or a decision between two
// hooks (Chain "").
type Step struct {
	Hook  string `json:"Hook"`
	Chain string `json:"Chain,omitempty"`
	Rule  string `json:"Rule,omitempty"`
	// Effect is what the rule did: "jump fwd_in__berth0", "accept",
	// "drop", "DNAT to 172.17.0.2:80", "masquerade", "no rule matched:
	// policy accept", or the decision ("routed out of eth0").
	Effect string `json:"Effect"`
}

// Explanation is the packet's way through berth's table.
type Explanation struct {
	Packet  string  `json:"Packet"`
	Outcome Outcome `json:"Outcome"`
	// Decision is the step that decided the outcome: the drop or reject,
	// or for a delivered packet the last accept on its way.
	Decision *Step  `json:"Decision,omitempty"`
	Steps    []Step `json:"Steps"`
	// DNAT is the address the packet was sent on to, if a published port
	// took it; Masquerade: its source was replaced by the host's.
	DNAT       netip.AddrPort `json:"DNAT,omitzero"`
	Masquerade bool           `json:"Masquerade,omitempty"`
	// Iif and Oif are the interfaces the packet came in and leaves by;
	// Forwarded: the host routed it (the forward hook saw it), so other
	// tables' forward chains decide it too; Bridged: it went between two
	// ports of one bridge.
	Iif       string `json:"Iif,omitempty"`
	Oif       string `json:"Oif,omitempty"`
	Forwarded bool   `json:"Forwarded,omitempty"`
	Bridged   bool   `json:"Bridged,omitempty"`
	// Notes say what the table does not decide (layer 2, a sysctl).
	Notes []string `json:"Notes,omitempty"`
}

// Explain walks p through rs.
func Explain(rs *Ruleset, p Packet, r Host) Explanation {
	if p.Proto == ProtoICMP && p.is6() {
		p.Proto = ProtoICMPv6
	}
	w := &walker{rs: rs, p: p, r: r, maps: map[string]*Map{}, chains: map[string]*Chain{}}
	for i := range rs.Maps {
		w.maps[rs.Maps[i].Name] = &rs.Maps[i]
	}
	for i := range rs.Chains {
		w.chains[rs.Chains[i].Name] = &rs.Chains[i]
	}
	w.ex = Explanation{Packet: p.String(), Iif: p.Iif}
	w.walk()
	return w.ex
}

type walker struct {
	rs     *Ruleset
	p      Packet // rewritten by DNAT
	r      Host
	maps   map[string]*Map
	chains map[string]*Chain
	ex     Explanation
	oif    string
	dnat   bool
	// accept is the last accept of a filter rule: what let a delivered
	// packet through.
	accept *Step
	route  *Step // the last routing decision
	// marked says a rule would have accepted the packet had another
	// firewall marked it (--bridge-accept-fwmark's): explain cannot read
	// marks, so a drop after it is undecided.
	marked bool
}

// result of a chain: the packet goes on (an accept, or the chain's end
// with its policy accept), or ends there.
type result int

const (
	goOn result = iota
	ended
)

func (w *walker) walk() {
	p := w.p
	if p.Iif == "" {
		w.fromHost()
		return
	}
	first, err := w.r.Route(p.Dst)
	if p.Switched {
		first, err = Route{Oif: p.Iif}, nil
	}
	if err != nil {
		w.noRoute(err)
		return
	}
	if p.Switched || !first.Local && first.Oif == p.Iif && w.r.IsBridge(p.Iif) {
		// Between two ports of one bridge: the bridge switches it, and the
		// IP hooks see it only through br_netfilter, which gives both
		// interfaces as the bridge.
		w.ex.Bridged = true
		if !w.r.BridgeNetfilter(p.is6()) {
			w.ex.Oif = p.Iif
			w.end(Delivered, Step{Hook: "bridge", Effect: "switched by " + p.Iif + " at layer 2"})
			w.ex.Notes = append(w.ex.Notes, "bridge-nf-call-ip(6)tables is off: no netfilter hook sees traffic between ports of one bridge")
			return
		}
	}
	if w.hook(HookPrerouting, "") == ended || w.other(w.r.OtherPrerouting(p, w.p, w.dnat)) {
		return
	}
	rt := first
	if w.dnat {
		if rt, err = w.r.Route(w.p.Dst); err != nil {
			w.noRoute(err)
			return
		}
	}
	if rt.Local {
		w.decide(Step{Hook: "routing", Effect: "for the host itself"})
		w.ex.Oif = ""
		if w.hook(HookInput, "") == ended || w.other(w.r.OtherInput(w.p)) {
			return
		}
		w.deliver()
		return
	}
	w.oif = rt.Oif
	w.ex.Oif = rt.Oif
	// Sent back out of the bridge it came from by a DNAT (hairpin), a
	// packet br_netfilter passes is bridged too (br_nf_pre_routing_finish's
	// "bridged_dnat": no ip_forward needed, no input interface after).
	hairpin := w.dnat && rt.Oif == p.Iif && w.r.IsBridge(p.Iif) && w.r.BridgeNetfilter(p.is6())
	bridged := w.ex.Bridged && !w.dnat || hairpin
	if bridged {
		w.decide(Step{Hook: "bridge", Effect: "switched by " + rt.Oif + " (br_netfilter passes it through the IP hooks)"})
	} else {
		w.decide(Step{Hook: "routing", Effect: "routed out of " + rt.Oif})
		if !w.r.Forwarding(p.is6()) {
			w.end(Dropped, Step{Hook: "routing", Effect: "forwarding is off in the host (net.ipv4.ip_forward / net.ipv6.conf.all.forwarding)"})
			return
		}
	}
	w.ex.Forwarded = true
	w.ex.Bridged = bridged
	if w.hook(HookForward, "") == ended {
		return
	}
	if w.other(w.r.OtherForward(w.p, rt.Oif, w.dnat)) {
		return
	}
	if bridged {
		w.p.Iif = "" // br_netfilter's postrouting has no input interface
	}
	if w.hook(HookPostrouting, "") == ended {
		return
	}
	w.deliver()
}

// fromHost is the way of a packet the host sends: output, the routing
// decision, postrouting; a packet to one of the host's addresses then
// comes back in on lo.
func (w *walker) fromHost() {
	p := w.p
	rt, err := w.r.Route(p.Dst)
	if err != nil {
		w.noRoute(err)
		return
	}
	w.oif = rt.Oif
	if w.hook(HookOutput, "") == ended {
		return
	}
	if w.dnat {
		if rt, err = w.r.Route(w.p.Dst); err != nil {
			w.noRoute(err)
			return
		}
		w.oif = rt.Oif
	}
	w.decide(Step{Hook: "routing", Effect: "out of " + rt.Oif})
	w.ex.Oif = rt.Oif
	if w.hook(HookPostrouting, "") == ended {
		return
	}
	if rt.Local {
		// Looped back: the prerouting and input hooks see it on lo; its
		// connection's NAT was decided in output.
		w.p.Iif = "lo"
		w.oif = ""
		w.ex.Oif = "" // for the host itself
		w.decide(Step{Hook: "routing", Effect: "back in on lo, for the host itself"})
		if w.hook(HookPrerouting, "nat") == ended || w.hook(HookInput, "") == ended || w.other(w.r.OtherInput(w.p)) {
			return
		}
	}
	w.deliver()
}

// other ends the walk with another table's verdict, if it has one.
func (w *walker) other(s Step, o Outcome) bool {
	if o == "" {
		return false
	}
	// Whether or not berth's ALLOW FW MARK rule took the packet, another
	// table's verdict comes after it and holds.
	w.marked = false
	w.end(o, s)
	return true
}

func (w *walker) noRoute(err error) {
	w.end(NoRoute, Step{Hook: "routing", Effect: err.Error()})
}

func (w *walker) deliver() {
	w.ex.Outcome = Delivered
	switch {
	case w.accept != nil:
		w.ex.Decision = w.accept
	case w.route != nil:
		w.ex.Decision = w.route // no rule decided it: the chains' policy accept
	}
}

func (w *walker) end(o Outcome, s Step) {
	if w.marked && (o == Dropped || o == Rejected) {
		o = Undecided
		s.Effect += " (unless another firewall marked the packet for the ALLOW FW MARK rule above)"
	}
	w.ex.Steps = append(w.ex.Steps, s)
	w.ex.Outcome = o
	w.ex.Decision = &s
}

// decide records a routing step; the packet goes on.
func (w *walker) decide(s Step) {
	w.ex.Steps = append(w.ex.Steps, s)
	w.route = &s
}

// hook runs the base chains on h in priority order; skipType names a
// chain type to leave out ("nat" for a looped-back packet).
func (w *walker) hook(h Hook, skipType string) result {
	var bases []*Chain
	for i := range w.rs.Chains {
		c := &w.rs.Chains[i]
		if c.Base != nil && c.Base.Hook == h && c.Base.Type.String() != skipType {
			bases = append(bases, c)
		}
	}
	slices.SortStableFunc(bases, func(a, b *Chain) int { return cmp.Compare(a.Base.Priority.Value, b.Base.Priority.Value) })
	for _, c := range bases {
		if w.chain(h, c, 0) == ended {
			return ended
		}
	}
	return goOn
}

// outcome of one chain's rules.
type chainEnd int

const (
	fellThrough chainEnd = iota // end of the chain, or return
	accepted
	stopped // dropped or rejected: the packet is gone
)

func (w *walker) chain(h Hook, c *Chain, depth int) result {
	if w.rules(h, c, depth) == stopped {
		return ended
	}
	return goOn
}

func (w *walker) rules(h Hook, c *Chain, depth int) chainEnd {
	if depth > 16 {
		return fellThrough // nft refuses deeper jumps; berth's table has two levels
	}
	for _, r := range c.Rules {
		end, acted := w.rule(h, c, r, depth)
		if acted {
			return end
		}
	}
	return fellThrough
}

// rule evaluates one rule; acted reports a verdict that ends the chain
// (end says which), and false means the packet goes on to the next rule.
func (w *walker) rule(h Hook, c *Chain, r Rule, depth int) (end chainEnd, acted bool) {
	step := func(effect string) Step {
		return Step{Hook: h.String(), Chain: c.Name, Rule: r.String(), Effect: effect}
	}
	var notes []string
	for _, s := range r.Stmts {
		switch s := s.(type) {
		case Counter:
		case ClampMSS:
			if w.p.Proto == ProtoTCP {
				notes = append(notes, "MSS clamped to the route's MTU")
			}
		case Verdict:
			switch s.Kind {
			case Accept:
				st := step(join("accept", notes))
				w.act(st)
				w.accept = &st
				return accepted, true
			case Drop:
				w.end(Dropped, step("drop"))
				return stopped, true
			case Return:
				w.act(step("return"))
				return fellThrough, true
			case Jump:
				if e := w.jumpFrom(step(join("jump "+s.Chain, notes)), h, s.Chain, depth); e != fellThrough {
					return e, true
				}
				return fellThrough, false // back from the jump: the next rule
			}
		case RejectAdminProhibited:
			w.end(Rejected, step("reject (ICMP administratively prohibited)"))
			return stopped, true
		case Masquerade:
			w.ex.Masquerade = true
			w.act(step("masquerade: the source becomes an address of " + w.oif))
			return accepted, true
		case SNAT:
			w.ex.Masquerade = true
			w.act(step("snat: the source becomes " + s.Addr.String()))
			return accepted, true
		case DNATPortMap:
			to, ok := w.portMapLookup(s)
			if !ok {
				return fellThrough, false
			}
			w.p.Dst, w.p.Dport, w.dnat = to.Addr(), to.Port(), true
			w.ex.DNAT = to
			w.act(step("DNAT to " + to.String()))
			return accepted, true
		case MarkMatch:
			// The packet's mark is another firewall's to set, which
			// explain does not read: the rule's accept is a maybe.
			w.marked = true
			w.act(step("accept if another firewall marked the packet so (explain reads no marks); else the next rule"))
			return fellThrough, false
		case VmapLookup:
			target, ok := w.vmapLookup(s)
			if !ok {
				return fellThrough, false
			}
			if e := w.jumpFrom(step(join("jump "+target, notes)), h, target, depth); e != fellThrough {
				return e, true
			}
			return fellThrough, false
		default:
			if !w.matches(s) {
				return fellThrough, false
			}
		}
	}
	if len(notes) > 0 {
		w.act(step(join("", notes)))
	}
	return fellThrough, false
}

func (w *walker) act(s Step) { w.ex.Steps = append(w.ex.Steps, s) }

// jumpFrom records the jumping step s and runs chain name; a chain in
// which no rule acted says so on that step, and the packet goes on after
// the jump.
func (w *walker) jumpFrom(s Step, h Hook, name string, depth int) chainEnd {
	w.act(s)
	at := len(w.ex.Steps) - 1
	c, ok := w.chains[name]
	if !ok {
		return fellThrough // nft refuses a jump to a missing chain; a ruleset from Build has none
	}
	e := w.rules(h, c, depth+1)
	if e == fellThrough && len(w.ex.Steps) == at+1 {
		w.ex.Steps[at].Effect += ": no rule there matched, back"
	}
	return e
}

func join(s string, notes []string) string {
	if len(notes) == 0 {
		return s
	}
	if s == "" {
		return strings.Join(notes, "; ")
	}
	return s + " (" + strings.Join(notes, "; ") + ")"
}

// matches evaluates a match statement.
func (w *walker) matches(s Stmt) bool {
	p := w.p
	switch s := s.(type) {
	case IfnameMatch:
		name := p.Iif
		if s.Dir == Out {
			name = w.oif
		}
		return s.Matches(name) != s.Negate
	case IfnameInMap:
		name := p.Iif
		if s.Dir == Out {
			name = w.oif
		}
		if m := w.maps[s.Map]; m != nil && name != "" {
			for _, e := range m.Elements {
				if e.Ifname == name {
					return true
				}
			}
		}
		return false
	case CtEstablishedRelated:
		return false // the first packet of a connection
	case CtStatusDNAT:
		return w.dnat
	case AddrMatch:
		if s.Prefix.Addr().Is6() != p.is6() {
			return false // "ip saddr" needs an IPv4 packet, negated or not
		}
		a := p.Src
		if s.Field == Daddr {
			a = p.Dst
		}
		return s.Prefix.Contains(a.Unmap()) != s.Negate
	case NfprotoIPv4:
		return !p.is6()
	case NfprotoIPv6:
		return p.is6()
	case FibDaddrLocal:
		rt, err := w.r.Route(p.Dst)
		return err == nil && rt.Local
	case L4ProtoMatch:
		return p.Proto == s.Proto
	case DportMatch:
		return p.Proto == s.Proto && p.Dport == s.Port
	case RoutedPortLookup:
		if s.IPv6 != p.is6() || !p.HasPorts() {
			return false
		}
		name := MapPortsRouted
		if s.IPv6 {
			name = MapPorts6Routed
		}
		m := w.maps[name]
		if m == nil {
			return false
		}
		for _, e := range m.Elements {
			if e.Port.Routed && e.Port.Addr == p.Dst && uint8(e.Port.Proto) == uint8(p.Proto) && e.Port.Port == p.Dport {
				return true
			}
		}
		return false
	}
	return false
}

// portMapLookup finds the published port the packet is for, in the map
// the DNAT statement reads.
func (w *walker) portMapLookup(d DNATPortMap) (netip.AddrPort, bool) {
	p := w.p
	if d.IPv6 != p.is6() || !p.HasPorts() {
		return netip.AddrPort{}, false
	}
	name := map[[2]bool]string{{false, false}: MapPortsAny, {false, true}: MapPortsIP, {true, false}: MapPorts6Any, {true, true}: MapPorts6IP}[[2]bool{d.IPv6, d.ByAddr}]
	m := w.maps[name]
	if m == nil {
		return netip.AddrPort{}, false
	}
	for _, e := range m.Elements {
		pm := e.Port
		if uint8(pm.Proto) != uint8(p.Proto) || pm.HostPort != p.Dport || pm.Routed {
			continue
		}
		if d.ByAddr && pm.HostIP != p.Dst {
			continue
		}
		return netip.AddrPortFrom(pm.Addr, pm.Port), true
	}
	return netip.AddrPort{}, false
}

// vmapLookup finds the chain a verdict map holds for the packet's key.
func (w *walker) vmapLookup(v VmapLookup) (string, bool) {
	m := w.maps[v.Map]
	if m == nil {
		return "", false
	}
	p := w.p
	for _, e := range m.Elements {
		switch v.Key {
		case LookupIifname:
			if p.Iif != "" && e.Ifname == p.Iif {
				return e.Jump, true
			}
		case LookupOifname:
			if w.oif != "" && e.Ifname == w.oif {
				return e.Jump, true
			}
		case LookupDaddr:
			if !p.is6() && e.Prefix.IsValid() && e.Prefix.Contains(p.Dst.Unmap()) {
				return e.Jump, true
			}
		case LookupDaddr6:
			if p.is6() && e.Prefix.IsValid() && e.Prefix.Contains(p.Dst) {
				return e.Jump, true
			}
		}
	}
	return "", false
}
