package firewall

import (
	"net/netip"
	"slices"
	"testing"
)

// TestEveryNetworkClosesHostAccess: each network, internal or not, gets a
// host_in element and a chain that accepts only replies, ICMP and DNS
// before its final drop; the input base chain dispatches through the map.
func TestEveryNetworkClosesHostAccess(t *testing.T) {
	for _, n := range []Network{
		{Bridge: "br-a", Subnet: netip.MustParsePrefix("10.1.0.0/24"), ICC: true, Masquerade: true},
		{Bridge: "br-int", Subnet: netip.MustParsePrefix("10.2.0.0/24"), Internal: true},
		{Bridge: "br-nomasq", Subnet: netip.MustParsePrefix("10.3.0.0/24"), ICC: false},
	} {
		t.Run(n.Bridge, func(t *testing.T) {
			nr, err := RulesFor(n)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(nr.Elements, func(e Element) bool { return e.Map == MapHostIn })
			if i < 0 || nr.Elements[i].Ifname != n.Bridge || nr.Elements[i].Jump != "host_in__"+n.Bridge {
				t.Fatalf("no host_in element for %s: %+v", n.Bridge, nr.Elements)
			}
			c := slices.IndexFunc(nr.Chains, func(c Chain) bool { return c.Name == "host_in__"+n.Bridge })
			if c < 0 {
				t.Fatalf("no host_in chain for %s", n.Bridge)
			}
			var got []string
			for _, r := range nr.Chains[c].Rules {
				got = append(got, r.String())
			}
			want := []string{
				"ct state established,related accept",
				"meta l4proto icmp accept",
				`udp dport 53 accept comment "DNS"`,
				`tcp dport 53 accept comment "DNS"`,
				`counter reject with icmpx admin-prohibited comment "HOST ACCESS REFUSED"`,
			}
			if !slices.Equal(got, want) {
				t.Errorf("host_in chain of %s:\n%q\nwant\n%q", n.Bridge, got, want)
			}
		})
	}
	base := Base()
	i := slices.IndexFunc(base.Chains, func(c Chain) bool { return c.Name == ChainInput })
	if i < 0 || base.Chains[i].Base == nil || base.Chains[i].Base.Hook != HookInput {
		t.Fatalf("no input base chain in %+v", base.Chains)
	}
	if got := base.Chains[i].Rules[0].String(); got != "iifname vmap @host_in" {
		t.Errorf("input chain rule = %q", got)
	}
}

// TestHostAccessOpensTheHost: a network with HostAccess (Docker's way)
// accepts whatever its containers send to the host.
func TestHostAccessOpensTheHost(t *testing.T) {
	nr, err := RulesFor(Network{Bridge: "br-dev", Subnet: netip.MustParsePrefix("10.4.0.0/24"), ICC: true, Masquerade: true, HostAccess: true})
	if err != nil {
		t.Fatal(err)
	}
	c := slices.IndexFunc(nr.Chains, func(c Chain) bool { return c.Name == "host_in__br-dev" })
	if c < 0 {
		t.Fatal("no host_in chain")
	}
	var got []string
	for _, r := range nr.Chains[c].Rules {
		got = append(got, r.String())
	}
	if want := []string{`counter accept comment "HOST ACCESS OPEN"`}; !slices.Equal(got, want) {
		t.Errorf("host_in chain with HostAccess: %q, want %q", got, want)
	}
}

func TestL4Strings(t *testing.T) {
	for _, tc := range []struct {
		s    Stmt
		want string
	}{
		{L4ProtoMatch{Proto: ProtoICMP}, "meta l4proto icmp"},
		{DportMatch{Proto: ProtoUDP, Port: 53}, "udp dport 53"},
		{DportMatch{Proto: ProtoTCP, Port: 8080}, "tcp dport 8080"},
		{L4ProtoMatch{Proto: 132}, "meta l4proto 132"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.s, got, tc.want)
		}
	}
}
