package nftables

import (
	"context"
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/google/go-cmp/cmp"
	nftlib "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Gateway modes (firewall/gwmode.go, routed.go) in the kernel: the table
// lists as the model renders it, and the routed ports' sets change with
// AddPorts and DelPorts like the port maps.

func modeNets() []firewall.Network {
	routed6 := withIPv6(firewall.Network{Bridge: "br-gw", Subnet: netip.MustParsePrefix("172.20.0.0/16"),
		Gateway: netip.MustParseAddr("172.20.0.1"), ICC: true, Masquerade: true}, "fd00:20::/64", "fd00:20::1")
	routed6.GatewayMode6 = firewall.ModeRouted
	return []firewall.Network{
		routed6,
		{Bridge: "br-r4", Subnet: netip.MustParsePrefix("10.30.0.0/24"), Gateway: netip.MustParseAddr("10.30.0.1"),
			ICC: true, Masquerade: true, GatewayMode4: firewall.ModeRouted},
		{Bridge: "br-open", Subnet: netip.MustParsePrefix("10.31.0.0/24"), Gateway: netip.MustParseAddr("10.31.0.1"),
			ICC: true, Masquerade: true, GatewayMode4: firewall.ModeNATUnprotected},
		{Bridge: "br-iso", Subnet6: netip.MustParsePrefix("fd00:32::/64"), ICC: true, Internal: true, GatewayMode6: firewall.ModeIsolated},
	}
}

func TestGatewayModesTable(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	nets := modeNets()
	routed := []firewall.PortMapping{
		{Proto: firewall.TCP, Addr: netip.MustParseAddr("fd00:20::2"), Port: 80, Routed: true},
		{Proto: firewall.UDP, Addr: netip.MustParseAddr("fd00:20::2"), Port: 53, Routed: true},
		{Proto: firewall.TCP, Addr: netip.MustParseAddr("10.30.0.2"), Port: 443, Routed: true},
	}
	dnat := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("172.20.0.2"), Port: 80}
	if err := fw.Rebuild(ctx, nets, append(routed[:1:1], dnat)...); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "rebuilt", nets, append(routed[:1:1], dnat))
	if err := fw.AddPorts(ctx, routed); err != nil {
		t.Fatalf("AddPorts of routed ports: %v", err)
	}
	checkPorts(t, ns, "routed ports added", nets, append(routed[:3:3], dnat))
	// Two containers' routed port 80 claim no host port: no conflict
	// with each other, nor with a host port 80.
	more := []firewall.PortMapping{
		{Proto: firewall.TCP, Addr: netip.MustParseAddr("10.30.0.3"), Port: 443, Routed: true},
		{Proto: firewall.TCP, HostPort: 443, Addr: netip.MustParseAddr("172.20.0.3"), Port: 443},
	}
	if err := fw.AddPorts(ctx, more); err != nil {
		t.Fatalf("AddPorts beside routed ones: %v", err)
	}
	if err := fw.DelPorts(ctx, append(routed[1:], more...)); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "routed ports deleted", nets, append(routed[:1:1], dnat))
	// Replacing and deleting a network leaves the shared sets alone.
	if err := fw.AddNetwork(ctx, nets[0]); err != nil {
		t.Fatal(err)
	}
	if err := fw.DelNetwork(ctx, nets[1]); err != nil {
		t.Fatal(err)
	}
	left := []firewall.Network{nets[0], nets[2], nets[3]}
	checkPorts(t, ns, "network replaced and one deleted", left, append(routed[:1:1], dnat))
}

// gwModeRuleCases are ruleCases for the gateway modes' statements; the
// ICMP rule's family match is one nft lists as implied.
var gwModeRuleCases = []struct {
	rule  firewall.Rule
	text  string
	debug string
	want  []expr.Any
}{
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.RoutedPortLookup{}, firewall.Verdict{Kind: firewall.Accept}}},
		text: "ip daddr . meta l4proto . th dport @ports_routed accept",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ payload load 4b @ network header + 16 => reg 1 ]
		        [ meta load l4proto => reg 9 ]
		        [ payload load 2b @ transport header + 2 => reg 10 ]
		        [ lookup reg 1 set ports_routed ]
		        [ immediate reg 0 accept ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
			&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: "ports_routed", SetID: setIDs["ports_routed"]},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.RoutedPortLookup{IPv6: true}, firewall.Verdict{Kind: firewall.Accept}}},
		text: "ip6 daddr . meta l4proto . th dport @ports6_routed accept",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 16b @ network header + 24 => reg 1 ]
		        [ meta load l4proto => reg 2 ]
		        [ payload load 2b @ transport header + 2 => reg 13 ]
		        [ lookup reg 1 set ports6_routed ]
		        [ immediate reg 0 accept ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 2},
			&expr.Payload{DestRegister: 13, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, SetName: "ports6_routed", SetID: setIDs["ports6_routed"]},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	},
	{
		// nft's text for it is "meta nfproto ipv4 meta l4proto icmp …".
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.NfprotoIPv4{Implied: true}, firewall.L4ProtoMatch{Proto: firewall.ProtoICMP}, firewall.Counter{}, firewall.Verdict{Kind: firewall.Accept}}},
		text: "meta l4proto icmp counter accept",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ meta load l4proto => reg 1 ]
		        [ cmp eq reg 1 0x00000001 ]
		        [ counter pkts 0 bytes 0 ]
		        [ immediate reg 0 accept ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	},
	{
		// nat-unprotected's isolation: a key of the verdict map, looked up
		// without a verdict (nft accepts a map where a set may be).
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.IfnameInMap{Dir: firewall.In, Map: firewall.MapHostIn}, firewall.Counter{}, firewall.Verdict{Kind: firewall.Drop}}},
		text: "iifname @host_in counter drop",
		debug: `[ meta load iifname => reg 1 ]
		        [ lookup reg 1 set host_in ]
		        [ counter pkts 0 bytes 0 ]
		        [ immediate reg 0 drop ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: firewall.MapHostIn, SetID: setIDs[firewall.MapHostIn]},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.NfprotoIPv6{}, firewall.Counter{}, firewall.Verdict{Kind: firewall.Accept}}},
		text: "meta nfproto ipv6 counter accept",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ counter pkts 0 bytes 0 ]
		        [ immediate reg 0 accept ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	},
}

func TestGatewayModeExpressions(t *testing.T) {
	ch := &nftlib.Chain{Table: table, Name: "c"}
	for _, tc := range gwModeRuleCases {
		t.Run(tc.text, func(t *testing.T) {
			if got := tc.rule.String(); got != tc.text {
				t.Errorf("model prints %q, want %q", got, tc.text)
			}
			r, err := nftRule(ch, tc.rule)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, r.Exprs); diff != "" {
				t.Errorf("expressions differ from nft's\n%s\n(-want +got):\n%s", tc.debug, diff)
			}
		})
	}
}

// TestRoutedSetElements: a routed port's element is its key alone, the
// container's address . protocol . port, each part padded to 4 bytes.
func TestRoutedSetElements(t *testing.T) {
	m := firewall.PortMapping{Proto: firewall.TCP, Addr: netip.MustParseAddr("10.30.0.2"), Port: 443, Routed: true}
	e := portElement(m, true)
	want := []byte{10, 30, 0, 2, 6, 0, 0, 0, 0x01, 0xbb, 0, 0}
	if diff := cmp.Diff(want, e.Key); diff != "" || e.Val != nil {
		t.Errorf("key (-want +got):\n%s\nval %v", diff, e.Val)
	}
	if s := nftSet(table, firewall.Map{Name: firewall.MapPorts6Routed, Key: firewall.KeyRoutedSet6}); s.IsMap || s.KeyType.Bytes != 16+4+4 {
		t.Errorf("ports6_routed set %+v", s)
	}
}

// TestGatewayModeTraffic runs the gateway modes in the test world of
// traffic6_linux_test.go, whose outside namespace routes the containers'
// subnets through the host: br0 routed for IPv6 and nat-unprotected for
// IPv4. c1 (10.0.1.2, fd00:1::2) serves whoami on ports 80 and 81 of
// both families; only [fd00:1::2]:80 is published, as a routed port.
func TestGatewayModeTraffic(t *testing.T) {
	w := newWorld6(t)
	run(t, w.outside, "ip", "-6", "route", "add", "fd00:1::/64", "via", hostAddr6)
	run(t, w.outside, "ip", "route", "add", "10.0.1.0/24", "via", "198.51.100.2")
	for _, addr := range []string{"[::]:80", "[::]:81", "0.0.0.0:80", "0.0.0.0:81"} {
		listenWhoami(t, w.c1, addr)
	}
	listenWhoami(t, w.outside, "["+server6+"]:9000")
	listenWhoami(t, w.outside, server+":9000")
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	ctx := context.Background()
	modes := br0v6
	modes.GatewayMode4, modes.GatewayMode6 = firewall.ModeNATUnprotected, firewall.ModeRouted
	routed := firewall.PortMapping{Proto: firewall.TCP, Addr: netip.MustParseAddr("fd00:1::2"), Port: 80, Routed: true}
	if err := fw.Rebuild(ctx, []firewall.Network{modes, br1v6}, routed); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, addr, want string }{
		// Routed IPv6: the container's own address, the client's own source.
		{"the outside to the routed port", w.outside, "[fd00:1::2]:80", "2001:db8:1::1"},
		// No masquerade for IPv6: the server sees the container.
		{"c1 out over IPv6", w.c1, "[" + server6 + "]:9000", "fd00:1::2"},
		// IPv4 is NATed still: masqueraded out...
		{"c1 out over IPv4", w.c1, server + ":9000", "198.51.100.2"},
		// ...and, nat-unprotected, every port open to routed traffic.
		{"the outside to an unpublished IPv4 port", w.outside, "10.0.1.2:81", "198.51.100.1"},
	} {
		if got := askWithin(t, tc.from, tc.addr); got != tc.want {
			t.Errorf("%s (%s): answered %q, want %q", tc.name, tc.addr, got, tc.want)
		}
	}
	if !reaches(t, w.outside, "fd00:1::2") {
		t.Error("ICMPv6 routed into a routed network is dropped")
	}
	if got := ask(t, w.outside, "[fd00:1::2]:81"); got != "" {
		t.Errorf("an unpublished port of the routed network answers: %q", got)
	}
	// Withdrawn, the routed port is closed like any other.
	if err := fw.DelPorts(ctx, []firewall.PortMapping{routed}); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, w.outside, "[fd00:1::2]:80"); got != "" {
		t.Errorf("the withdrawn routed port answers: %q", got)
	}
	// Back to nat for both: no direct access at all.
	if err := fw.AddNetwork(ctx, br0v6); err != nil {
		t.Fatal(err)
	}
	if got := ask(t, w.outside, "10.0.1.2:81"); got != "" {
		t.Errorf("in nat mode an unpublished IPv4 port answers: %q", got)
	}
}
