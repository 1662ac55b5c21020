package firewall

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// fakeRouter is a host with eth0 (192.0.2.10, 2001:db8::10; the default
// route) and one bridge per subnet.
type fakeRouter struct {
	bridges   map[netip.Prefix]string
	local     []netip.Addr
	brnf      bool
	noForward bool
	// dropsOut: another table's forward chain drops what leaves this bridge.
	dropsOut string
	// dropsIn: another table's input chain drops what comes in on eth0.
	dropsIn bool
}

func (r *fakeRouter) Route(dst netip.Addr) (Route, error) {
	for _, a := range r.local {
		if a == dst {
			return Route{Oif: "lo", Local: true}, nil
		}
	}
	if dst.IsLoopback() {
		return Route{Oif: "lo", Local: true}, nil
	}
	for p, br := range r.bridges {
		if p.Contains(dst) {
			return Route{Oif: br}, nil
		}
	}
	if dst == netip.MustParseAddr("203.0.113.99") {
		return Route{}, errors.New("network is unreachable")
	}
	return Route{Oif: "eth0"}, nil
}

func (r *fakeRouter) BridgeNetfilter(bool) bool { return r.brnf }
func (r *fakeRouter) Forwarding(bool) bool      { return !r.noForward }

func (r *fakeRouter) IsBridge(name string) bool {
	for _, br := range r.bridges {
		if br == name {
			return true
		}
	}
	return false
}

func (r *fakeRouter) OtherPrerouting(_, _ Packet, _ bool) (Step, Outcome) { return Step{}, "" }

func (r *fakeRouter) OtherInput(p Packet) (Step, Outcome) {
	if r.dropsIn && p.Iif == "eth0" {
		return Step{Hook: "input", Chain: "table inet filter, chain input", Rule: "policy drop", Effect: "drop"}, Dropped
	}
	return Step{}, ""
}

func (r *fakeRouter) OtherForward(p Packet, _ string, _ bool) (Step, Outcome) {
	if r.dropsOut != "" && p.Iif == r.dropsOut {
		return Step{Hook: "forward", Chain: "table ip filter, chain FORWARD", Rule: "policy drop", Effect: "drop"}, Dropped
	}
	return Step{}, ""
}

func explainWorld(t *testing.T) (*Ruleset, *fakeRouter) {
	t.Helper()
	nets := []Network{
		{Bridge: "berth0", Subnet: mustPrefix("172.17.0.0/16"), Gateway: mustAddr("172.17.0.1"),
			Subnet6: mustPrefix("fd00:1::/64"), Gateway6: mustAddr("fd00:1::1"), ICC: true, Masquerade: true},
		{Bridge: "br-b", Subnet: mustPrefix("172.18.0.0/16"), Gateway: mustAddr("172.18.0.1"), ICC: false, Masquerade: true},
		{Bridge: "br-i", Subnet: mustPrefix("172.19.0.0/16"), Gateway: mustAddr("172.19.0.1"), ICC: true, Internal: true},
		{Bridge: "br-r", Subnet: mustPrefix("172.20.0.0/16"), Gateway: mustAddr("172.20.0.1"), ICC: true, Masquerade: true, GatewayMode4: ModeRouted},
	}
	ports := []PortMapping{
		{Proto: TCP, HostPort: 8080, Addr: mustAddr("172.17.0.2"), Port: 80},
		{Proto: TCP, HostIP: mustAddr("127.0.0.1"), HostPort: 8081, Addr: mustAddr("172.17.0.3"), Port: 80},
		{Proto: UDP, HostPort: 5353, Addr: mustAddr("172.18.0.2"), Port: 53},
		{Proto: TCP, HostPort: 8080, Addr: mustAddr("fd00:1::2"), Port: 80},
		{Proto: TCP, Addr: mustAddr("172.20.0.2"), Port: 80, Routed: true},
	}
	rs, err := BuildWithPorts(nets, ports)
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRouter{
		bridges: map[netip.Prefix]string{mustPrefix("172.17.0.0/16"): "berth0", mustPrefix("fd00:1::/64"): "berth0",
			mustPrefix("172.18.0.0/16"): "br-b", mustPrefix("172.19.0.0/16"): "br-i", mustPrefix("172.20.0.0/16"): "br-r"},
		local: []netip.Addr{mustAddr("192.0.2.10"), mustAddr("2001:db8::10"), mustAddr("172.17.0.1"), mustAddr("fd00:1::1"),
			mustAddr("172.18.0.1"), mustAddr("172.19.0.1"), mustAddr("172.20.0.1")},
		brnf: true,
	}
	return rs, r
}

func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestExplain(t *testing.T) {
	tcp := func(src, iif, dst string, port uint16) Packet {
		return Packet{Proto: ProtoTCP, Src: mustAddr(src), Dst: mustAddr(dst), Dport: port, Iif: iif}
	}
	udp := func(src, iif, dst string, port uint16) Packet {
		p := tcp(src, iif, dst, port)
		p.Proto = ProtoUDP
		return p
	}
	icmp := func(src, iif, dst string) Packet {
		return Packet{Proto: ProtoICMP, Src: mustAddr(src), Dst: mustAddr(dst), Iif: iif}
	}
	for _, tc := range []struct {
		name string
		p    Packet
		set  func(*fakeRouter)
		// want: the outcome, the deciding chain and what its rule says
		// (a comment, or part of the rule), where it went and its NAT.
		outcome    Outcome
		chain, why string
		oif        string
		dnat       string
		masquerade bool
		bridged    bool
	}{
		{name: "outside to a published port", p: tcp("198.51.100.7", "eth0", "192.0.2.10", 8080),
			outcome: Delivered, chain: "fwd_in__berth0", why: "PUBLISHED PORTS", oif: "berth0", dnat: "172.17.0.2:80"},
		{name: "outside straight to a container", p: tcp("198.51.100.7", "eth0", "172.17.0.2", 80),
			outcome: Dropped, chain: "direct__berth0", why: "DIRECT ACCESS DROP"},
		{name: "outside to the bridge's gateway address", p: tcp("198.51.100.7", "eth0", "172.17.0.1", 22),
			outcome: Delivered, chain: "", why: "for the host itself"},
		{name: "outside to a port nobody published", p: tcp("198.51.100.7", "eth0", "192.0.2.10", 9999),
			outcome: Delivered, why: "for the host itself"},
		{name: "container out", p: tcp("172.17.0.2", "berth0", "198.51.100.7", 443),
			outcome: Delivered, chain: "fwd_out__berth0", why: "OUTGOING", oif: "eth0", masquerade: true},
		{name: "container to the host's sshd", p: tcp("172.17.0.2", "berth0", "172.17.0.1", 22),
			outcome: Rejected, chain: "host_in__berth0", why: "HOST ACCESS REFUSED"},
		{name: "container to the host's sshd by another address", p: tcp("172.17.0.2", "berth0", "192.0.2.10", 22),
			outcome: Rejected, chain: "host_in__berth0", why: "HOST ACCESS REFUSED"},
		{name: "container to the host's DNS", p: udp("172.17.0.2", "berth0", "172.17.0.1", 53),
			outcome: Delivered, chain: "host_in__berth0", why: "DNS"},
		{name: "container pings its gateway", p: icmp("172.17.0.2", "berth0", "172.17.0.1"),
			outcome: Delivered, chain: "host_in__berth0", why: "meta l4proto icmp"},
		// Dropped before the forward hook: it arrives on another bridge.
		{name: "container to another network", p: tcp("172.17.0.2", "berth0", "172.18.0.2", 80),
			outcome: Dropped, chain: "direct__br-b", why: "DIRECT ACCESS DROP"},
		{name: "container to another network's gateway address", p: tcp("172.17.0.2", "berth0", "172.18.0.1", 80),
			outcome: Rejected, chain: "host_in__berth0", why: "HOST ACCESS REFUSED"},
		{name: "container to another network's published port", p: udp("172.17.0.2", "berth0", "192.0.2.10", 5353),
			outcome: Delivered, chain: "fwd_in__br-b", why: "PUBLISHED PORTS", oif: "br-b", dnat: "172.18.0.2:53", masquerade: true},
		{name: "icc on", p: tcp("172.17.0.2", "berth0", "172.17.0.3", 80),
			outcome: Delivered, chain: "fwd_in__berth0", why: "ICC", oif: "berth0", bridged: true},
		{name: "icc off", p: tcp("172.18.0.3", "br-b", "172.18.0.2", 80),
			outcome: Dropped, chain: "fwd_in__br-b", why: "ICC", oif: "br-b", bridged: true},
		{name: "icc off without br_netfilter", p: tcp("172.18.0.3", "br-b", "172.18.0.2", 80), set: func(r *fakeRouter) { r.brnf = false },
			outcome: Delivered, why: "at layer 2", oif: "br-b", bridged: true},
		{name: "icc off, through a published port", p: udp("172.18.0.3", "br-b", "192.0.2.10", 5353),
			outcome: Delivered, chain: "fwd_in__br-b", why: "PUBLISHED PORTS", oif: "br-b", dnat: "172.18.0.2:53", masquerade: true, bridged: true},
		{name: "hairpin", p: tcp("172.17.0.3", "berth0", "192.0.2.10", 8080),
			outcome: Delivered, chain: "fwd_in__berth0", why: "PUBLISHED PORTS", oif: "berth0", dnat: "172.17.0.2:80", masquerade: true, bridged: true},
		{name: "internal network out", p: tcp("172.19.0.2", "br-i", "198.51.100.7", 443),
			outcome: Dropped, chain: "fwd_out__br-i", why: "INTERNAL NETWORK EGRESS", oif: "eth0"},
		{name: "internal network to a published port", p: tcp("172.19.0.2", "br-i", "192.0.2.10", 8080),
			outcome: Dropped, chain: "fwd_out__br-i", why: "INTERNAL NETWORK EGRESS", oif: "berth0", dnat: "172.17.0.2:80"},
		{name: "outside to a port published on 127.0.0.1", p: tcp("198.51.100.7", "eth0", "127.0.0.1", 8081),
			outcome: Dropped, chain: "raw_prerouting", why: "LOOPBACK FROM OUTSIDE"},
		{name: "container to the host's 127.0.0.1", p: udp("172.17.0.2", "berth0", "127.0.0.1", 53),
			outcome: Dropped, chain: "raw_prerouting", why: "LOOPBACK FROM OUTSIDE"},
		{name: "host to a localhost port", p: tcp("127.0.0.1", "", "127.0.0.1", 8081),
			outcome: Delivered, why: "out of berth0", oif: "berth0", dnat: "172.17.0.3:80", masquerade: true},
		{name: "host to its own address's port", p: tcp("192.0.2.10", "", "192.0.2.10", 8080),
			outcome: Delivered, oif: "berth0", why: "out of berth0", dnat: "172.17.0.2:80"},
		{name: "host straight to a container", p: tcp("172.17.0.1", "", "172.17.0.2", 80),
			outcome: Delivered, oif: "berth0", why: "out of berth0"},
		{name: "host to itself", p: tcp("127.0.0.1", "", "127.0.0.1", 22),
			outcome: Delivered, oif: "", why: "back in on lo, for the host itself"},
		{name: "routed network, a routed port", p: tcp("198.51.100.7", "eth0", "172.20.0.2", 80),
			outcome: Delivered, chain: "fwd_in__br-r", why: "ROUTED PORTS", oif: "br-r"},
		{name: "routed network, another port", p: tcp("198.51.100.7", "eth0", "172.20.0.2", 22),
			outcome: Dropped, chain: "fwd_in__br-r", why: "INBOUND DROP", oif: "br-r"},
		{name: "routed network, ping", p: icmp("198.51.100.7", "eth0", "172.20.0.2"),
			outcome: Delivered, chain: "fwd_in__br-r", why: "ICMP", oif: "br-r"},
		{name: "routed network out is not masqueraded", p: tcp("172.20.0.2", "br-r", "198.51.100.7", 443),
			outcome: Delivered, chain: "fwd_out__br-r", why: "OUTGOING", oif: "eth0"},
		{name: "forwarding off", p: tcp("172.17.0.2", "berth0", "198.51.100.7", 443), set: func(r *fakeRouter) { r.noForward = true },
			outcome: Dropped, why: "forwarding is off", oif: "eth0"},
		{name: "another table drops it", p: tcp("172.17.0.2", "berth0", "198.51.100.7", 443), set: func(r *fakeRouter) { r.dropsOut = "berth0" },
			outcome: Dropped, chain: "table ip filter, chain FORWARD", why: "policy drop", oif: "eth0"},
		{name: "another table's input chain", p: tcp("198.51.100.7", "eth0", "192.0.2.10", 22), set: func(r *fakeRouter) { r.dropsIn = true },
			outcome: Dropped, chain: "table inet filter, chain input", why: "policy drop"},
		{name: "in and out of eth0 is routed, not switched", p: tcp("198.51.100.7", "eth0", "198.51.100.8", 22), set: func(r *fakeRouter) { r.brnf = false },
			outcome: Delivered, why: "routed out of eth0", oif: "eth0"},
		{name: "hairpin without forwarding: bridged by br_netfilter", p: tcp("172.17.0.3", "berth0", "192.0.2.10", 8080), set: func(r *fakeRouter) { r.noForward = true },
			outcome: Delivered, chain: "fwd_in__berth0", why: "PUBLISHED PORTS", oif: "berth0", dnat: "172.17.0.2:80", masquerade: true, bridged: true},
		{name: "hairpin without br_netfilter is routed", p: tcp("172.17.0.3", "berth0", "192.0.2.10", 8080), set: func(r *fakeRouter) { r.brnf = false },
			outcome: Delivered, chain: "fwd_in__berth0", why: "PUBLISHED PORTS", oif: "berth0", dnat: "172.17.0.2:80", masquerade: true},
		{name: "switched on a link the host has no route to (isolated)", p: Packet{Proto: ProtoTCP, Src: mustAddr("10.9.0.2"), Dst: mustAddr("10.9.0.3"), Dport: 80, Iif: "berth0", Switched: true},
			outcome: Delivered, chain: "fwd_in__berth0", why: "ICC", oif: "berth0", bridged: true},
		{name: "no route", p: tcp("172.17.0.2", "berth0", "203.0.113.99", 443),
			outcome: NoRoute, why: "unreachable"},
		{name: "IPv6 published port", p: tcp("2001:db8::7", "eth0", "2001:db8::10", 8080),
			outcome: Delivered, chain: "fwd_in__berth0", why: "PUBLISHED PORTS", oif: "berth0", dnat: "[fd00:1::2]:80"},
		{name: "IPv6 straight to a container", p: tcp("2001:db8::7", "eth0", "fd00:1::2", 80),
			outcome: Dropped, chain: "direct6__berth0", why: "DIRECT ACCESS DROP"},
		{name: "IPv6 from a link-local address is not DNATed", p: tcp("fe80::7", "eth0", "2001:db8::10", 8080),
			outcome: Delivered, why: "for the host itself"},
		{name: "IPv6 container out", p: tcp("fd00:1::2", "berth0", "2001:db8::7", 443),
			outcome: Delivered, chain: "fwd_out__berth0", why: "OUTGOING", oif: "eth0", masquerade: true},
		{name: "IPv6 ping of the gateway", p: icmp("fd00:1::2", "berth0", "fd00:1::1"),
			outcome: Delivered, chain: "host_in__berth0", why: "ipv6-icmp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, r := explainWorld(t)
			if tc.set != nil {
				tc.set(r)
			}
			ex := Explain(rs, tc.p, r)
			dump := func() string {
				var b strings.Builder
				for _, s := range ex.Steps {
					b.WriteString("\n\t" + s.Hook + " " + s.Chain + ": " + s.Rule + " → " + s.Effect)
				}
				return b.String()
			}
			if ex.Outcome != tc.outcome {
				t.Fatalf("outcome %q, want %q; steps:%s", ex.Outcome, tc.outcome, dump())
			}
			if ex.Decision == nil {
				t.Fatalf("no decision; steps:%s", dump())
			}
			if d := ex.Decision; d.Chain != tc.chain || !strings.Contains(d.Rule+" "+d.Effect, tc.why) {
				t.Errorf("decided by %s: %s → %s, want chain %q and %q; steps:%s", d.Chain, d.Rule, d.Effect, tc.chain, tc.why, dump())
			}
			if ex.Oif != tc.oif && tc.outcome != Rejected && tc.outcome != NoRoute && !(tc.outcome == Dropped && tc.oif == "") {
				t.Errorf("out of %q, want %q", ex.Oif, tc.oif)
			}
			dnat := ""
			if ex.DNAT.IsValid() {
				dnat = ex.DNAT.String()
			}
			if dnat != tc.dnat || ex.Masquerade != tc.masquerade || ex.Bridged != tc.bridged {
				t.Errorf("DNAT %q masquerade %t bridged %t, want %q %t %t; steps:%s", dnat, ex.Masquerade, ex.Bridged, tc.dnat, tc.masquerade, tc.bridged, dump())
			}
		})
	}
}

// TestExplainFollowsTheRules: a ruleset changed by hand is explained as
// it stands, not as Build would make it: the walker evaluates rules, it
// does not know berth's cases.
func TestExplainFollowsTheRules(t *testing.T) {
	rs, r := explainWorld(t)
	for i := range rs.Chains {
		if rs.Chains[i].Name == "fwd_in__berth0" {
			// "ct status dnat accept" gone: a published port is dropped.
			rules := rs.Chains[i].Rules
			for j, rule := range rules {
				if rule.Comment == "PUBLISHED PORTS" {
					rs.Chains[i].Rules = append(rules[:j:j], rules[j+1:]...)
					break
				}
			}
		}
	}
	p := Packet{Proto: ProtoTCP, Src: mustAddr("198.51.100.7"), Dst: mustAddr("192.0.2.10"), Dport: 8080, Iif: "eth0"}
	ex := Explain(rs, p, r)
	if ex.Outcome != Dropped || !strings.Contains(ex.Decision.Rule, "INBOUND DROP") {
		t.Fatalf("got %s by %+v", ex.Outcome, ex.Decision)
	}
}

// TestExplainSaysWhenAJumpFindsNothing: a verdict map's jump into a chain
// where no rule acts is marked so, and the packet goes on after it.
func TestExplainSaysWhenAJumpFindsNothing(t *testing.T) {
	rs, r := explainWorld(t)
	// To the gateway: raw_prerouting jumps to direct__berth0, which spares it.
	p := Packet{Proto: ProtoTCP, Src: mustAddr("198.51.100.7"), Dst: mustAddr("172.17.0.1"), Dport: 22, Iif: "eth0"}
	ex := Explain(rs, p, r)
	if len(ex.Steps) == 0 || ex.Steps[0].Effect != "jump direct__berth0: no rule there matched, back" {
		t.Fatalf("steps %+v", ex.Steps)
	}
	if ex.Outcome != Delivered {
		t.Errorf("outcome %s", ex.Outcome)
	}
}

// TestExplainSNAT: a network with a source address of its own says so.
func TestExplainSNAT(t *testing.T) {
	_, r := explainWorld(t)
	rs, err := Build([]Network{{Bridge: "berth0", Subnet: mustPrefix("172.17.0.0/16"), Gateway: mustAddr("172.17.0.1"),
		ICC: true, Masquerade: true, SNAT4: mustAddr("192.0.2.10")}})
	if err != nil {
		t.Fatal(err)
	}
	ex := Explain(rs, Packet{Proto: ProtoTCP, Src: mustAddr("172.17.0.2"), Dst: mustAddr("198.51.100.7"), Dport: 443, Iif: "berth0"}, r)
	found := false
	for _, s := range ex.Steps {
		found = found || strings.Contains(s.Effect, "snat: the source becomes 192.0.2.10")
	}
	if ex.Outcome != Delivered || !ex.Masquerade || !found {
		t.Errorf("outcome %s, masquerade %v, steps %+v", ex.Outcome, ex.Masquerade, ex.Steps)
	}
}

// TestExplainUnprotectedIsolation: a nat-unprotected network takes what
// the world outside routes to any port, and drops what another of berth's
// bridges sends (Docker 28's isolation), by the map lookup's rule.
func TestExplainUnprotectedIsolation(t *testing.T) {
	_, r := explainWorld(t)
	rs, err := Build([]Network{
		{Bridge: "berth0", Subnet: mustPrefix("172.17.0.0/16"), Gateway: mustAddr("172.17.0.1"), ICC: true, Masquerade: true},
		{Bridge: "br-u", Subnet: mustPrefix("172.21.0.0/16"), Gateway: mustAddr("172.21.0.1"), ICC: true, Masquerade: true, GatewayMode4: ModeNATUnprotected},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.bridges[mustPrefix("172.21.0.0/16")] = "br-u"
	for _, tc := range []struct {
		name    string
		src     string
		iif     string
		outcome Outcome
		why     string
	}{
		{"from outside", "198.51.100.7", "eth0", Delivered, "UNPROTECTED"},
		{"from another network", "172.17.0.2", "berth0", Dropped, "ISOLATION"},
	} {
		ex := Explain(rs, Packet{Proto: ProtoTCP, Src: mustAddr(tc.src), Dst: mustAddr("172.21.0.2"), Dport: 81, Iif: tc.iif}, r)
		if ex.Outcome != tc.outcome || ex.Decision == nil || ex.Decision.Chain != "fwd_in__br-u" || !strings.Contains(ex.Decision.Rule, tc.why) {
			t.Errorf("%s: %s by %+v, want %s by fwd_in__br-u's %s", tc.name, ex.Outcome, ex.Decision, tc.outcome, tc.why)
		}
	}
}
