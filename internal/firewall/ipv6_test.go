package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// DualStack is the golden case dual-stack: each kind of network with an
// IPv6 subnet as well, with and without an IPv6 gateway, with a
// byte-aligned and an unaligned IPv6 prefix.
var dualStack = []Network{
	withIPv6(defaultBridge, "fd49:efd7:54aa::/64", "fd49:efd7:54aa::1"),
	{Bridge: "br-v6noicc", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:18::/64"), Masquerade: true},
	{Bridge: "br-v6int", Subnet: netip.MustParsePrefix("172.19.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:19::/64"), Gateway6: netip.MustParseAddr("fd00:19::1"), ICC: true, Masquerade: true, Internal: true},
	{Bridge: "br-v6nomasq", Subnet: netip.MustParsePrefix("192.168.16.0/20"), Subnet6: netip.MustParsePrefix("2001:db8:16::/56"), ICC: true},
	{
		Bridge: "br-v6open", Subnet: netip.MustParsePrefix("10.10.0.0/24"), Gateway: netip.MustParseAddr("10.10.0.1"),
		Subnet6: netip.MustParsePrefix("fd00:aa:bb:c0::/58"), Gateway6: netip.MustParseAddr("fd00:aa:bb:c0::1"),
		ICC: true, Masquerade: true, HostAccess: true,
	},
}

func withIPv6(n Network, subnet, gw string) Network {
	n.Subnet6 = netip.MustParsePrefix(subnet)
	if gw != "" {
		n.Gateway6 = netip.MustParseAddr(gw)
	}
	return n
}

// TestIPv6MirrorsIPv4 is the rule the IPv6 rules follow: for every rule
// of a dual-stack network that matches its IPv4 subnet or gateway, the
// same rule with the IPv6 subnet and gateway is there too (Docker 28's
// ip6tables mirror its iptables), the hairpin masquerade of published
// ports included.
func TestIPv6MirrorsIPv4(t *testing.T) {
	for _, n := range dualStack {
		t.Run(n.Bridge, func(t *testing.T) {
			nr, err := RulesFor(n)
			if err != nil {
				t.Fatal(err)
			}
			var all []string
			for _, c := range nr.Chains {
				for _, r := range c.Rules {
					all = append(all, r.String())
				}
			}
			v4 := strings.NewReplacer("ip saddr "+n.Subnet.String(), "ip6 saddr "+n.Subnet6.String())
			if n.Gateway.IsValid() && n.Gateway6.IsValid() {
				v4 = strings.NewReplacer("ip saddr "+n.Subnet.String(), "ip6 saddr "+n.Subnet6.String(),
					"ip daddr != "+n.Gateway.String(), "ip6 daddr != "+n.Gateway6.String())
			}
			for _, r := range all {
				if !strings.Contains(r, "ip saddr") && !strings.Contains(r, "ip daddr") && !strings.HasPrefix(r, chainDirect(n.Bridge)+": ") {
					continue
				}
				if !n.Gateway6.IsValid() && strings.Contains(r, "ip daddr != ") {
					// Without an IPv6 gateway there is nothing to spare.
					r = strings.Replace(r, " ip daddr != "+n.Gateway.String(), "", 1)
				}
				if want := v4.Replace(r); !slices.Contains(all, want) {
					t.Errorf("rule %q has no IPv6 twin %q in\n%s", r, want, strings.Join(all, "\n"))
				}
			}
			// The direct access drop has a chain of its own per family,
			// reached through direct6 by the IPv6 subnet.
			rules := func(name string) (out []string) {
				for _, c := range nr.Chains {
					if c.Name == name {
						for _, r := range c.Rules {
							out = append(out, v4.Replace(r.String()))
						}
					}
				}
				return out
			}
			i := slices.IndexFunc(nr.Elements, func(e Element) bool { return e.Map == MapDirect6 })
			if n.Internal { // masquerading or not, as moby's filterDirectAccess
				if i >= 0 || rules("direct6__"+n.Bridge) != nil {
					t.Errorf("direct access drop for IPv6 on an internal network: %+v", nr)
				}
				return
			}
			if i < 0 || nr.Elements[i].Prefix != n.Subnet6.Masked() || nr.Elements[i].Jump != "direct6__"+n.Bridge {
				t.Fatalf("no direct6 element for %s to direct6__%s: %+v", n.Subnet6, n.Bridge, nr.Elements)
			}
			want := rules("direct__" + n.Bridge)
			if !n.Gateway6.IsValid() && n.Gateway.IsValid() {
				want = []string{fmt.Sprintf(`iifname != %q iifname != "lo" counter drop comment "DIRECT ACCESS DROP"`, n.Bridge)}
			}
			if diff := cmp.Diff(want, rules("direct6__"+n.Bridge)); diff != "" || want == nil {
				t.Errorf("direct6__%s is not direct__%s for IPv6 (-want +got):\n%s", n.Bridge, n.Bridge, diff)
			}
		})
	}
}

// TestIPv4OnlyUnchanged: a network without IPv6 gets no IPv6 rule and no
// element in direct6; the only IPv6 in its table is the skeleton's: the
// direct6 lookup and the DNAT rules of ports6_ip and ports6_any.
func TestIPv4OnlyUnchanged(t *testing.T) {
	rs := mustBuild(t, []Network{defaultBridge, {Bridge: "br-int", Subnet: netip.MustParsePrefix("10.9.0.0/24"), Internal: true}})
	text := rs.String()
	if got, want := strings.Count(text, "ip6 "), strings.Count(Base().String(), "ip6 "); got != want || want != 13 {
		t.Errorf("%d IPv6 words in an IPv4-only ruleset, want the skeleton's %d:\n%s", got, want, text)
	}
	if strings.Contains(text, "ipv6-icmp") || strings.Contains(text, "direct6__") {
		t.Errorf("IPv6 rules in an IPv4-only ruleset:\n%s", text)
	}
}

// TestIPv6HostIn: a dual-stack network closed to the host accepts ICMPv6
// (neighbour and router discovery: conntrack leaves neighbour discovery
// "invalid", so the established rule does not let it in).
func TestIPv6HostIn(t *testing.T) {
	common := []string{
		"ct state established,related accept",
		"meta l4proto icmp accept",
		"meta l4proto ipv6-icmp accept",
	}
	tail := []string{
		`udp dport 53 accept comment "DNS"`,
		`tcp dport 53 accept comment "DNS"`,
		`counter reject with icmpx admin-prohibited comment "HOST ACCESS REFUSED"`,
	}
	for _, tc := range []struct {
		n    Network
		want []string
	}{
		{dualStack[0], slices.Concat(common, tail)},
		{dualStack[2], slices.Concat(common, tail)},
		{dualStack[4], []string{`counter accept comment "HOST ACCESS OPEN"`}},
	} {
		nr, err := RulesFor(tc.n)
		if err != nil {
			t.Fatal(err)
		}
		c := slices.IndexFunc(nr.Chains, func(c Chain) bool { return c.Name == "host_in__"+tc.n.Bridge })
		var got []string
		for _, r := range nr.Chains[c].Rules {
			got = append(got, r.String())
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("host_in__%s (-want +got):\n%s", tc.n.Bridge, diff)
		}
	}
}

// TestIPv6ForwardRulesAreInterfaceRules: the forward chains (ICC,
// isolation, the inbound drop, the internal network's confinement) match
// interfaces and conntrack only, so the same rules hold for IPv6; a
// dual-stack network's forward chains are its IPv4-only twin's.
func TestIPv6ForwardRulesAreInterfaceRules(t *testing.T) {
	for _, n := range dualStack {
		v4 := n
		v4.Subnet6, v4.Gateway6 = netip.Prefix{}, netip.Addr{}
		both, err := RulesFor(n)
		if err != nil {
			t.Fatal(err)
		}
		only4, err := RulesFor(v4)
		if err != nil {
			t.Fatal(err)
		}
		forward := func(nr NetworkRules) []Chain {
			return slices.DeleteFunc(slices.Clone(nr.Chains), func(c Chain) bool {
				return !strings.HasPrefix(c.Name, "fwd_")
			})
		}
		if diff := cmp.Diff(forward(only4), forward(both), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
			t.Errorf("%s: forward chains differ with IPv6 (-v4 +dual):\n%s", n.Bridge, diff)
		}
		for _, c := range forward(both) {
			for _, r := range c.Rules {
				if s := r.String(); strings.Contains(s, "ip ") || strings.Contains(s, "ip6 ") {
					t.Errorf("%s: forward rule %q matches addresses", c.Name, s)
				}
			}
		}
	}
}

func TestFakeKeepsIPv6(t *testing.T) {
	ctx := context.Background()
	f := NewFake()
	n := withIPv6(Network{Bridge: "br-6", Subnet: netip.MustParsePrefix("10.6.0.0/24"), Masquerade: true}, "fd00:6::7/64", "fd00:6::1")
	if err := f.Rebuild(ctx, []Network{n}); err != nil {
		t.Fatal(err)
	}
	clash := withIPv6(Network{Bridge: "br-7", Subnet: netip.MustParsePrefix("10.7.0.0/24")}, "fd00:6::/48", "")
	if err := f.AddNetwork(ctx, clash); !isConflict(err) {
		t.Errorf("AddNetwork of an overlapping IPv6 subnet: %v, want a conflict", err)
	}
	want := n
	want.Subnet6 = netip.MustParsePrefix("fd00:6::/64")
	if diff := cmp.Diff([]Network{want}, f.Networks(), cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.Ruleset().String(), "ip6 saddr fd00:6::/64 masquerade") {
		t.Errorf("the fake's ruleset lacks the IPv6 masquerade:\n%s", f.Ruleset())
	}
	if got := n.Masked(); got.Subnet6 != want.Subnet6 || got.Gateway6 != n.Gateway6 {
		t.Errorf("Masked() = %+v", got)
	}
}

func BenchmarkBuild100DualStack(b *testing.B) {
	nets := manyNetworks(100)
	for i := range nets {
		nets[i] = withIPv6(nets[i], fmt.Sprintf("fd00:%x::/64", i), fmt.Sprintf("fd00:%x::1", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(nets); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIPv6OnlyNetworkHasTheIPv6RulesAlone: an IPv6-only network (no
// IPv4 subnet) gets exactly the rules of its dual-stack twin less those
// that match the IPv4 subnet or gateway and the IPv4 direct-access chain
// and element; the rules that match interfaces or conntrack stay.
func TestIPv6OnlyNetworkHasTheIPv6RulesAlone(t *testing.T) {
	for _, n := range dualStack {
		t.Run(n.Bridge, func(t *testing.T) {
			dual, err := RulesFor(n)
			if err != nil {
				t.Fatal(err)
			}
			only := n
			only.Subnet, only.Gateway = netip.Prefix{}, netip.Addr{}
			got, err := RulesFor(only)
			if err != nil {
				t.Fatal(err)
			}
			flat := func(nr NetworkRules) (rules, elems []string) {
				for _, c := range nr.Chains {
					for _, r := range c.Rules {
						rules = append(rules, c.Name+": "+r.String())
					}
				}
				for _, e := range nr.Elements {
					elems = append(elems, e.Map+" "+e.KeyString()+" : jump "+e.Jump)
				}
				return rules, elems
			}
			dualRules, dualElems := flat(dual)
			var want []string
			for _, r := range dualRules {
				if !strings.Contains(r, "ip saddr") && !strings.Contains(r, "ip daddr") && !strings.HasPrefix(r, chainDirect(n.Bridge)+": ") {
					want = append(want, r)
				}
			}
			wantElems := slices.DeleteFunc(dualElems, func(e string) bool { return strings.HasPrefix(e, MapDirect+" ") })
			gotRules, gotElems := flat(got)
			if d := cmp.Diff(want, gotRules); d != "" {
				t.Errorf("rules (-want +got):\n%s", d)
			}
			if d := cmp.Diff(wantElems, gotElems); d != "" {
				t.Errorf("elements (-want +got):\n%s", d)
			}
			for _, r := range gotRules {
				if strings.Contains(r, n.Subnet.Addr().String()) {
					t.Errorf("rule names the IPv4 subnet: %s", r)
				}
			}
		})
	}
}
