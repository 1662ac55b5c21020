package firewall

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// DefaultBridge is the network Docker calls docker0, as berth configures it.
var defaultBridge = Network{Bridge: "berth0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), Gateway: netip.MustParseAddr("172.17.0.1"), ICC: true, Masquerade: true}

// GoldenCases are the rulesets whose nft text is kept under testdata/.
var goldenCases = []struct {
	name string
	nets []Network
}{
	{"empty", nil},
	{"default-bridge", []Network{defaultBridge}},
	{"user-network-icc-false", []Network{
		defaultBridge,
		{Bridge: "br-0123456789ab", Subnet: netip.MustParsePrefix("172.18.0.0/16"), ICC: false, Masquerade: true},
	}},
	{"internal", []Network{
		defaultBridge,
		{Bridge: "br-internal", Subnet: netip.MustParsePrefix("172.19.0.0/16"), ICC: true, Masquerade: true, Internal: true},
	}},
	{"masquerade-off", []Network{
		defaultBridge,
		{Bridge: "br-nomasq", Subnet: netip.MustParsePrefix("192.168.16.0/20"), ICC: true},
	}},
	{"dual-stack", dualStack},
	{"snat", snatNets},
}

// snatNets: a dual-stack network with source addresses of its own
// (com.docker.network.host_ipv4, host_ipv6) beside the default bridge.
var snatNets = []Network{defaultBridge, {
	Bridge: "br-snat", Subnet: netip.MustParsePrefix("172.20.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:20::/64"),
	ICC: true, Masquerade: true, SNAT4: netip.MustParseAddr("198.51.100.42"), SNAT6: netip.MustParseAddr("2001:db8::42"),
}}

func TestBuildGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Build(tc.nets)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			checkGolden(t, filepath.Join("testdata", tc.name+".nft"), rs.String())
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("ruleset differs from %s (-want +got):\n%s", path, diff)
	}
}

func TestBuildIgnoresOrderAndMasksSubnets(t *testing.T) {
	a := Network{Bridge: "br-a", Subnet: netip.MustParsePrefix("10.1.0.1/24"), ICC: true, Masquerade: true}
	b := Network{Bridge: "br-b", Subnet: netip.MustParsePrefix("10.2.0.0/24")}
	one, err := Build([]Network{a, b})
	if err != nil {
		t.Fatal(err)
	}
	two, err := Build([]Network{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(one.String(), two.String()); diff != "" {
		t.Errorf("order changed the ruleset (-ab +ba):\n%s", diff)
	}
	nr, err := RulesFor(a)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := nr.Elements[len(nr.Elements)-1].Prefix, netip.MustParsePrefix("10.1.0.0/24"); got != want {
		t.Errorf("direct element key = %s, want %s", got, want)
	}
}

func TestRulesForMatchesBuild(t *testing.T) {
	nets := goldenCases[len(goldenCases)-2].nets
	rs, err := Build(nets)
	if err != nil {
		t.Fatal(err)
	}
	// Base plus each network's own part, in bridge order, is the whole ruleset.
	want := Base()
	for _, n := range sortedBridges(nets) {
		nr, err := RulesFor(n)
		if err != nil {
			t.Fatal(err)
		}
		if nr.Bridge != n.Bridge {
			t.Errorf("RulesFor(%q).Bridge = %q", n.Bridge, nr.Bridge)
		}
		want.Chains = append(want.Chains, nr.Chains...)
		for _, e := range nr.Elements {
			for i := range want.Maps {
				if want.Maps[i].Name == e.Map {
					want.Maps[i].Elements = append(want.Maps[i].Elements, e)
				}
			}
		}
	}
	if diff := cmp.Diff(want, rs, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("Base + RulesFor differs from Build (-want +got):\n%s", diff)
	}
}

func sortedBridges(nets []Network) []Network {
	out, err := validateAll(nets)
	if err != nil {
		panic(err)
	}
	return out
}

func TestInternalNetworkHasNoWayOut(t *testing.T) {
	nr, err := RulesFor(Network{Bridge: "br-int", Subnet: netip.MustParsePrefix("10.9.0.0/24"), ICC: true, Masquerade: true, Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	var maps []string
	for _, e := range nr.Elements {
		maps = append(maps, e.Map)
	}
	if diff := cmp.Diff([]string{MapHostIn, MapFwdIn, MapFwdInternal}, maps); diff != "" {
		t.Errorf("internal network's map entries (-want +got):\n%s", diff)
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	ok := Network{Bridge: "br-ok", Subnet: p("10.0.0.0/24")}
	tests := []struct {
		name string
		nets []Network
		kind errdefs.Kind
	}{
		{"empty bridge", []Network{{Subnet: p("10.0.0.0/24")}}, errdefs.KindInvalid},
		{"bridge too long", []Network{{Bridge: "br-0123456789abcd", Subnet: p("10.0.0.0/24")}}, errdefs.KindInvalid},
		{"bridge with space", []Network{{Bridge: "br 1", Subnet: p("10.0.0.0/24")}}, errdefs.KindInvalid},
		{"bridge with slash", []Network{{Bridge: "br/1", Subnet: p("10.0.0.0/24")}}, errdefs.KindInvalid},
		{"bridge with quote", []Network{{Bridge: `br"1`, Subnet: p("10.0.0.0/24")}}, errdefs.KindInvalid},
		{"bridge dot", []Network{{Bridge: ".", Subnet: p("10.0.0.0/24")}}, errdefs.KindInvalid},
		{"bridge lo", []Network{{Bridge: "lo", Subnet: p("10.0.0.0/24")}}, errdefs.KindInvalid},
		{"no subnet", []Network{{Bridge: "br-1"}}, errdefs.KindInvalid},
		{"ipv6 subnet", []Network{{Bridge: "br-1", Subnet: p("fd00::/64")}}, errdefs.KindInvalid},
		{"whole address space", []Network{{Bridge: "br-1", Subnet: p("0.0.0.0/0")}}, errdefs.KindInvalid},
		{"ipv6 snat4", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Masquerade: true, SNAT4: a("2001:db8::1")}}, errdefs.KindInvalid},
		{"ipv4 snat6", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("fd00:1::/64"), Masquerade: true, SNAT6: a("10.0.0.9")}}, errdefs.KindInvalid},
		{"duplicate bridge", []Network{ok, {Bridge: "br-ok", Subnet: p("10.1.0.0/24")}}, errdefs.KindConflict},
		{"same subnet", []Network{ok, {Bridge: "br-2", Subnet: p("10.0.0.0/24")}}, errdefs.KindConflict},
		{"subnet inside another", []Network{ok, {Bridge: "br-2", Subnet: p("10.0.0.128/25")}}, errdefs.KindConflict},
		{"subnet around another", []Network{ok, {Bridge: "br-2", Subnet: p("10.0.0.0/8")}}, errdefs.KindConflict},
		{"ipv4 subnet6", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("10.1.0.0/24")}}, errdefs.KindInvalid},
		{"4in6 subnet6", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("::ffff:10.1.0.0/120")}}, errdefs.KindInvalid},
		{"whole ipv6 space", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("::/0")}}, errdefs.KindInvalid},
		{"gateway6 outside subnet6", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("fd00:1::/64"), Gateway6: a("fd00:2::1")}}, errdefs.KindInvalid},
		{"ipv4 gateway6", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("fd00:1::/64"), Gateway6: a("10.0.0.1")}}, errdefs.KindInvalid},
		{"gateway6 without subnet6", []Network{{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Gateway6: a("fd00:1::1")}}, errdefs.KindInvalid},
		{"no subnet", []Network{{Bridge: "br-1"}}, errdefs.KindInvalid},
		{"ipv6 only with an ipv4 gateway", []Network{{Bridge: "br-1", Gateway: a("10.0.0.1"), Subnet6: p("fd00:1::/64")}}, errdefs.KindInvalid},
		{"same subnet6", []Network{
			{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("fd00:1::/64")},
			{Bridge: "br-2", Subnet: p("10.0.1.0/24"), Subnet6: p("fd00:1::/64")},
		}, errdefs.KindConflict},
		{"subnet6 inside another", []Network{
			{Bridge: "br-1", Subnet: p("10.0.0.0/24"), Subnet6: p("fd00:1::/48")},
			{Bridge: "br-2", Subnet: p("10.0.1.0/24")}, // no IPv6: left out of the check
			{Bridge: "br-3", Subnet: p("10.0.2.0/24"), Subnet6: p("fd00:1:0:5::/64")},
		}, errdefs.KindConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.nets)
			if err == nil {
				t.Fatal("Build accepted bad input")
			}
			if got := errdefs.KindOf(err); got != tc.kind {
				t.Errorf("Build: %v: kind %v, want %v", err, got, tc.kind)
			}
		})
	}
}

func TestStatementText(t *testing.T) {
	tests := []struct {
		stmt Stmt
		want string
	}{
		{IfnameMatch{Dir: In, Name: "berth0"}, `iifname "berth0"`},
		{IfnameMatch{Dir: Out, Negate: true, Name: "berth0"}, `oifname != "berth0"`},
		{CtEstablishedRelated{}, "ct state established,related"},
		{AddrMatch{Field: Saddr, Prefix: netip.MustParsePrefix("172.17.0.0/16")}, "ip saddr 172.17.0.0/16"},
		{AddrMatch{Field: Daddr, Negate: true, Prefix: netip.MustParsePrefix("10.0.0.1/32")}, "ip daddr != 10.0.0.1"},
		{VmapLookup{Key: LookupDaddr, Map: MapDirect}, "ip daddr vmap @direct"},
		{AddrMatch{Field: Saddr, Prefix: netip.MustParsePrefix("fd00:1::/64")}, "ip6 saddr fd00:1::/64"},
		{AddrMatch{Field: Daddr, Negate: true, Prefix: netip.MustParsePrefix("fd00:1::1/128")}, "ip6 daddr != fd00:1::1"},
		{VmapLookup{Key: LookupDaddr6, Map: MapDirect6}, "ip6 daddr vmap @direct6"},
		{L4ProtoMatch{Proto: ProtoICMPv6}, "meta l4proto ipv6-icmp"},
		{Counter{}, "counter"},
		{Masquerade{}, "masquerade"},
		{Verdict{Kind: Jump, Chain: "x"}, "jump x"},
		{Verdict{Kind: Return}, "return"},
	}
	for _, tc := range tests {
		if got := tc.stmt.String(); got != tc.want {
			t.Errorf("%#v prints %q, want %q", tc.stmt, got, tc.want)
		}
	}
}

func BenchmarkBuild100(b *testing.B) {
	nets := manyNetworks(100)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(nets); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildAndRender100(b *testing.B) {
	nets := manyNetworks(100)
	b.ReportAllocs()
	for b.Loop() {
		rs, err := Build(nets)
		if err != nil {
			b.Fatal(err)
		}
		_ = rs.String()
	}
}

// manyNetworks returns n user networks on 10.x.y.0/24 with varied options.
func manyNetworks(n int) []Network {
	nets := make([]Network, n)
	for i := range nets {
		nets[i] = Network{
			Bridge:     fmt.Sprintf("br-%012x", i),
			Subnet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
			ICC:        i%2 == 0,
			Masquerade: i%3 != 0,
			Internal:   i%7 == 0,
		}
	}
	return nets
}
