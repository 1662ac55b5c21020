package firewall

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseGatewayMode(t *testing.T) {
	for s, want := range map[string]GatewayMode{
		"nat": ModeNAT, "nat-unprotected": ModeNATUnprotected, "routed": ModeRouted, "isolated": ModeIsolated,
	} {
		got, err := ParseGatewayMode(s)
		if err != nil || got != want || got.String() != s {
			t.Errorf("ParseGatewayMode(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, bad := range []string{"", "NAT", "route", "nat_unprotected"} {
		_, err := ParseGatewayMode(bad)
		if !isInvalid(err) || err.Error() != "unknown gateway mode "+bad {
			t.Errorf("ParseGatewayMode(%q) = %v; want moby's invalid \"unknown gateway mode %s\"", bad, err, bad)
		}
	}
}

func TestGatewayModeText(t *testing.T) {
	var m GatewayMode
	if err := m.UnmarshalText([]byte("routed")); err != nil || m != ModeRouted {
		t.Fatalf("UnmarshalText(routed) = %v, %v", m, err)
	}
	if b, _ := ModeNATUnprotected.MarshalText(); string(b) != "nat-unprotected" {
		t.Errorf("MarshalText = %q", b)
	}
	if err := m.UnmarshalText([]byte("bogus")); err == nil {
		t.Error("UnmarshalText(bogus) succeeded")
	}
}

func TestIsolatedNeedsInternal(t *testing.T) {
	n := Network{Bridge: "br-iso", Subnet: netip.MustParsePrefix("10.5.0.0/24"), GatewayMode4: ModeIsolated}
	_, err := RulesFor(n)
	if !isInvalid(err) || !strings.Contains(err.Error(), "gateway mode 'isolated' can only be used for an internal network") {
		t.Fatalf("RulesFor(isolated, not internal) = %v", err)
	}
	n6 := Network{Bridge: "br-iso6", Subnet6: netip.MustParsePrefix("fd00:5::/64"), GatewayMode6: ModeIsolated}
	if _, err := RulesFor(n6); !isInvalid(err) {
		t.Fatalf("RulesFor(IPv6-only isolated, not internal) = %v", err)
	}
	// Internal and isolated: the internal network's rules, unchanged.
	n.Internal, n6.Internal = true, true
	for _, iso := range []Network{n, n6} {
		plain := iso
		plain.GatewayMode4, plain.GatewayMode6 = ModeNAT, ModeNAT
		if diff := cmp.Diff(chainRules(t, plain), chainRules(t, iso)); diff != "" {
			t.Errorf("%s: isolated internal rules differ from internal ones (-want +got):\n%s", iso.Bridge, diff)
		}
	}
}

// chainRules renders one network's chains as "chain: rule" lines.
func chainRules(t *testing.T, n Network) map[string][]string {
	t.Helper()
	nr, err := RulesFor(n)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range nr.Chains {
		out[c.Name] = []string{}
		for _, r := range c.Rules {
			out[c.Name] = append(out[c.Name], r.String())
		}
	}
	return out
}

var (
	modeSubnet  = netip.MustParsePrefix("172.20.0.0/16")
	modeGateway = netip.MustParseAddr("172.20.0.1")
	modeSubnet6 = netip.MustParsePrefix("fd00:20::/64")
	modeGw6     = netip.MustParseAddr("fd00:20::1")
)

func modeNet(m4, m6 GatewayMode) Network {
	return Network{
		Bridge: "br-gw", Subnet: modeSubnet, Gateway: modeGateway, Subnet6: modeSubnet6, Gateway6: modeGw6,
		ICC: true, Masquerade: true, GatewayMode4: m4, GatewayMode6: m6,
	}
}

func TestGatewayModeRules(t *testing.T) {
	const (
		est       = `ct state established,related accept`
		published = `ct status dnat accept comment "PUBLISHED PORTS"`
		icc       = `iifname "br-gw" accept comment "ICC"`
		iccOff    = `iifname "br-gw" counter drop comment "ICC"`
		dropIn    = `counter drop comment "INBOUND DROP"`
		masq4     = `oifname != "br-gw" ip saddr 172.20.0.0/16 masquerade comment "MASQUERADE"`
		masq6     = `oifname != "br-gw" ip6 saddr fd00:20::/64 masquerade comment "MASQUERADE"`
		direct4   = `iifname != "br-gw" iifname != "lo" ip daddr != 172.20.0.1 counter drop comment "DIRECT ACCESS DROP"`
		direct6   = `iifname != "br-gw" iifname != "lo" ip6 daddr != fd00:20::1 counter drop comment "DIRECT ACCESS DROP"`
		icmp4     = `meta l4proto icmp counter accept comment "ICMP"` // nfproto ipv4 implied
		icmp6     = `meta l4proto ipv6-icmp counter accept comment "ICMP"`
		routed4   = `ip daddr . meta l4proto . th dport @ports_routed accept comment "ROUTED PORTS"`
		routed6   = `ip6 daddr . meta l4proto . th dport @ports6_routed accept comment "ROUTED PORTS"`
		unprot4   = `meta nfproto ipv4 counter accept comment "UNPROTECTED"`
		unprot6   = `meta nfproto ipv6 counter accept comment "UNPROTECTED"`
		isolation = `iifname @host_in counter drop comment "ISOLATION"`
	)
	for _, tc := range []struct {
		name    string
		n       Network
		in, nat []string // fwd_in__br-gw, nat_out__br-gw (nil: no chain)
		direct  []string // direct__br-gw, direct6__br-gw that exist
	}{
		{"nat", modeNet(ModeNAT, ModeNAT),
			[]string{est, published, icc, dropIn}, []string{masq4, masq6}, []string{"direct__br-gw", "direct6__br-gw"}},
		{"routed6", modeNet(ModeNAT, ModeRouted),
			[]string{est, icmp6, published, icc, routed6, dropIn}, []string{masq4}, []string{"direct__br-gw"}},
		{"routed4", modeNet(ModeRouted, ModeNAT),
			[]string{est, icmp4, published, icc, routed4, dropIn}, []string{masq6}, []string{"direct6__br-gw"}},
		{"routed both", modeNet(ModeRouted, ModeRouted),
			[]string{est, icmp4, icmp6, published, icc, routed4, routed6, dropIn}, nil, nil},
		{"nat-unprotected4", modeNet(ModeNATUnprotected, ModeNAT),
			[]string{est, published, icc, isolation, unprot4, dropIn}, []string{masq4, masq6}, []string{"direct6__br-gw"}},
		{"nat-unprotected both", modeNet(ModeNATUnprotected, ModeNATUnprotected),
			[]string{est, published, icc, isolation, unprot4, unprot6, dropIn}, []string{masq4, masq6}, nil},
		// berth-cni's networks: open to one another, as the bridge
		// plugin leaves them.
		{"nat-unprotected peers open", func() Network {
			n := modeNet(ModeNATUnprotected, ModeNATUnprotected)
			n.PeersOpen = true
			return n
		}(),
			[]string{est, published, icc, unprot4, unprot6, dropIn}, []string{masq4, masq6}, nil},
		// ICC off: the drop of the network's own traffic comes before the
		// routed ports, as in Docker (QA round 21).
		{"routed6 icc off", func() Network { n := modeNet(ModeNAT, ModeRouted); n.ICC = false; return n }(),
			[]string{est, icmp6, published, iccOff, routed6, dropIn}, []string{masq4}, []string{"direct__br-gw"}},
		{"routed4 unprotected6", modeNet(ModeRouted, ModeNATUnprotected),
			[]string{est, icmp4, published, icc, routed4, isolation, unprot6, dropIn}, []string{masq6}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := chainRules(t, tc.n)
			if diff := cmp.Diff(tc.in, got["fwd_in__br-gw"]); diff != "" {
				t.Errorf("fwd_in (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.nat, got["nat_out__br-gw"]); diff != "" {
				t.Errorf("nat_out (-want +got):\n%s", diff)
			}
			for _, c := range []string{"direct__br-gw", "direct6__br-gw"} {
				_, has := got[c]
				if want := slices.Contains(tc.direct, c); has != want {
					t.Errorf("chain %s present %v, want %v", c, has, want)
				}
			}
			if d, ok := got["direct__br-gw"]; ok && d[0] != direct4 {
				t.Errorf("direct = %q", d)
			}
			if d, ok := got["direct6__br-gw"]; ok && d[0] != direct6 {
				t.Errorf("direct6 = %q", d)
			}
		})
	}
}

// A family the network lacks has no rules of its mode: an IPv4-only
// network routed for IPv6 has the nat network's rules.
func TestGatewayModeOfAbsentFamily(t *testing.T) {
	n := defaultBridge
	want := chainRules(t, n)
	n.GatewayMode6 = ModeRouted
	if diff := cmp.Diff(want, chainRules(t, n)); diff != "" {
		t.Errorf("(-nat +routed6 on IPv4 only):\n%s", diff)
	}
}

// routedPorts are a routed container's ports on the gateway-modes golden
// networks: a routed IPv6 port beside a DNATed IPv4 one, and routed IPv4.
var routedPorts = []PortMapping{
	{Proto: TCP, HostPort: 8080, Addr: netip.MustParseAddr("172.20.0.2"), Port: 80},
	{Proto: TCP, Addr: netip.MustParseAddr("fd00:20::2"), Port: 80, Routed: true},
	{Proto: UDP, Addr: netip.MustParseAddr("fd00:20::2"), Port: 53, Routed: true},
	{Proto: TCP, Addr: netip.MustParseAddr("10.30.0.2"), Port: 443, Routed: true},
}

func TestGatewayModesGolden(t *testing.T) {
	nets := []Network{
		modeNet(ModeNAT, ModeRouted),
		{Bridge: "br-r4", Subnet: netip.MustParsePrefix("10.30.0.0/24"), Gateway: netip.MustParseAddr("10.30.0.1"), ICC: true, Masquerade: true, GatewayMode4: ModeRouted},
		{Bridge: "br-open", Subnet: netip.MustParsePrefix("10.31.0.0/24"), Gateway: netip.MustParseAddr("10.31.0.1"), ICC: true, Masquerade: true, GatewayMode4: ModeNATUnprotected},
		{Bridge: "br-iso", Subnet6: netip.MustParsePrefix("fd00:32::/64"), ICC: true, Internal: true, GatewayMode6: ModeIsolated},
	}
	rs, err := BuildWithPorts(nets, routedPorts)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "gateway-modes.nft"), rs.String())
}

func TestRoutedPorts(t *testing.T) {
	es, err := PortElements(routedPorts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Map+": "+e.KeyString())
	}
	want := []string{
		"ports6_routed: fd00:20::2 . tcp . 80",
		"ports6_routed: fd00:20::2 . udp . 53",
		"ports_any: tcp . 8080",
		"ports_routed: 10.30.0.2 . tcp . 443",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("elements (-want +got):\n%s", diff)
	}
	// Routed ports claim no host port: two containers' routed port 80
	// and a DNATed host port 80 do not collide.
	ok := []PortMapping{
		{Proto: TCP, Addr: netip.MustParseAddr("10.30.0.2"), Port: 80, Routed: true},
		{Proto: TCP, Addr: netip.MustParseAddr("10.30.0.3"), Port: 80, Routed: true},
		{Proto: TCP, HostPort: 80, Addr: netip.MustParseAddr("172.20.0.2"), Port: 80},
	}
	if err := ValidatePorts(ok); err != nil {
		t.Errorf("ValidatePorts(routed beside DNATed) = %v", err)
	}
	for _, bad := range []PortMapping{
		{Proto: TCP, HostPort: 80, Addr: netip.MustParseAddr("10.30.0.2"), Port: 80, Routed: true},
		{Proto: TCP, HostIP: netip.MustParseAddr("127.0.0.1"), Addr: netip.MustParseAddr("10.30.0.2"), Port: 80, Routed: true},
		{Proto: TCP, Addr: netip.MustParseAddr("10.30.0.2"), Routed: true},
		{Proto: TCP, Addr: netip.MustParseAddr("::ffff:10.30.0.2"), Port: 80, Routed: true},
		{Proto: 132, Addr: netip.MustParseAddr("10.30.0.2"), Port: 80, Routed: true},
	} {
		if err := ValidatePorts([]PortMapping{bad}); !isInvalid(err) {
			t.Errorf("ValidatePorts(%s) = %v, want invalid", bad, err)
		}
	}
	if got := routedPorts[1].String(); got != "routed->[fd00:20::2]:80/tcp" {
		t.Errorf("String = %q", got)
	}
}

func TestFakeRoutedPorts(t *testing.T) {
	f := NewFake()
	ctx := t.Context()
	if err := f.AddPorts(ctx, routedPorts); err != nil {
		t.Fatal(err)
	}
	if err := f.AddPorts(ctx, routedPorts[1:2]); err != nil {
		t.Fatalf("AddPorts again: %v", err)
	}
	if got := len(f.Ports()); got != len(routedPorts) {
		t.Errorf("Ports = %d, want %d", got, len(routedPorts))
	}
	if err := f.DelPorts(ctx, routedPorts[1:]); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(routedPorts[:1], f.Ports(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("Ports after DelPorts (-want +got):\n%s", diff)
	}
}
