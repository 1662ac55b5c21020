package nftables

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/google/go-cmp/cmp"
	nftlib "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The IPv6 ports of firewall's testdata/ports-dual-stack.nft (beside
// goldenPorts, on the dual-stack default bridge dualStack[0]).
var goldenPorts6 = []firewall.PortMapping{
	{Proto: firewall.UDP, HostPort: 5353, Addr: netip.MustParseAddr("fd49:efd7:54aa::3"), Port: 53},
	{Proto: firewall.TCP, HostIP: netip.IPv6Loopback(), HostPort: 8081, Addr: netip.MustParseAddr("fd49:efd7:54aa::3"), Port: 80},
	{Proto: firewall.TCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Addr: netip.MustParseAddr("fd49:efd7:54aa::2"), Port: 80},
	{Proto: firewall.TCP, HostIP: netip.MustParseAddr("2001:db8:1::2"), HostPort: 8081, Addr: netip.MustParseAddr("fd49:efd7:54aa::4"), Port: 8000},
}

// The IPv6 port rules, with what `nft --debug=netlink` shows nft 1.0.6
// sending for the same text: after a 16-byte address the key goes on in
// reg 2 (NFT_REG32_04) and reg 13, and the port comes back in reg 2.
var port6RuleCases = []struct {
	rule  firewall.Rule
	text  string
	debug string
	want  []expr.Any
}{
	{
		rule: baseRule(firewall.ChainNatPrerouting, 2),
		text: "ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @ports6_ip",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 16b @ network header + 8 => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x0000c0ff 0x00000000 0x00000000 0x00000000 ) ^ 0x00000000 0x00000000 0x00000000 0x00000000 ]
		        [ cmp neq reg 1 0x000080fe 0x00000000 0x00000000 0x00000000 ]
		        [ fib daddr type => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ payload load 16b @ network header + 24 => reg 1 ]
		        [ meta load l4proto => reg 2 ]
		        [ payload load 2b @ transport header + 2 => reg 13 ]
		        [ lookup reg 1 set ports6_ip dreg 1 ]
		        [ nat dnat ip6 addr_min reg 1 proto_min reg 2 ]`,
		want: slices.Concat(linkLocalSourceExcluded, fibLocal, []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 2},
			&expr.Payload{DestRegister: 13, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "ports6_ip", SetID: 12},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegProtoMin: 2},
		}),
	},
	{
		rule: baseRule(firewall.ChainNatPrerouting, 3),
		text: "ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6_any",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 16b @ network header + 8 => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x0000c0ff 0x00000000 0x00000000 0x00000000 ) ^ 0x00000000 0x00000000 0x00000000 0x00000000 ]
		        [ cmp neq reg 1 0x000080fe 0x00000000 0x00000000 0x00000000 ]
		        [ fib daddr type => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ meta load l4proto => reg 1 ]
		        [ payload load 2b @ transport header + 2 => reg 9 ]
		        [ lookup reg 1 set ports6_any dreg 1 ]
		        [ nat dnat ip6 addr_min reg 1 proto_min reg 2 ]`,
		want: slices.Concat(linkLocalSourceExcluded, fibLocal, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "ports6_any", SetID: 11},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegProtoMin: 2},
		}),
	},
	{
		rule: baseRule(firewall.ChainNatOutput, 3),
		text: "ip6 daddr != ::1 ip6 saddr != fe80::/10 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6_any",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 16b @ network header + 24 => reg 1 ]
		        [ cmp neq reg 1 0x00000000 0x00000000 0x00000000 0x01000000 ]
		        [ payload load 16b @ network header + 8 => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x0000c0ff 0x00000000 0x00000000 0x00000000 ) ^ 0x00000000 0x00000000 0x00000000 0x00000000 ]
		        [ cmp neq reg 1 0x000080fe 0x00000000 0x00000000 0x00000000 ]
		        [ fib daddr type => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ meta load l4proto => reg 1 ]
		        [ payload load 2b @ transport header + 2 => reg 9 ]
		        [ lookup reg 1 set ports6_any dreg 1 ]
		        [ nat dnat ip6 addr_min reg 1 proto_min reg 2 ]`,
		want: slices.Concat(linkLocalSourceExcluded[:2], []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: netip.IPv6Loopback().AsSlice()},
		}, linkLocalSourceExcluded[2:], fibLocal, []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "ports6_any", SetID: 11},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegProtoMin: 2},
		}),
	},
	{
		rule: firewall.Rule{
			Stmts:   []firewall.Stmt{firewall.AddrMatch{Field: firewall.Saddr, Prefix: netip.MustParsePrefix("fd00:1::/64")}, firewall.CtStatusDNAT{}, firewall.Masquerade{}},
			Comment: "HAIRPIN",
		},
		text: `ip6 saddr fd00:1::/64 ct status dnat masquerade comment "HAIRPIN"`,
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 8b @ network header + 8 => reg 1 ]
		        [ cmp eq reg 1 0x010000fd 0x00000000 ]
		        [ ct load status => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]
		        [ cmp neq reg 1 0x00000000 ]
		        [ masq ]
		        userdata = { \x00\x08HAIRPIN\x00 }`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 8},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0xfd, 0, 0, 1, 0, 0, 0, 0}},
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(0x20), Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
			&expr.Masq{},
		},
	},
}

// baseRule is rule i of the skeleton's chain name, or no rule at all.
func baseRule(name string, i int) firewall.Rule {
	for _, c := range firewall.Base().Chains {
		if c.Name == name && i < len(c.Rules) {
			return c.Rules[i]
		}
	}
	return firewall.Rule{}
}

// linkLocalSourceExcluded is "ip6 saddr != fe80::/10" with its dependency.
var linkLocalSourceExcluded = []expr.Any{
	&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
	&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
	&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: append([]byte{0xff, 0xc0}, make([]byte, 14)...), Xor: make([]byte, 16)},
	&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: append([]byte{0xfe, 0x80}, make([]byte, 14)...)},
}

// fibLocal is "fib daddr type local".
var fibLocal = []expr.Any{
	&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
	&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(2)},
}

func TestPort6RuleTranslation(t *testing.T) {
	ch := &nftlib.Chain{Table: table, Name: "c"}
	for _, tc := range port6RuleCases {
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

// TestPort6Elements checks the element bytes against nft --debug=netlink:
// "element b80d0120 00000100 00000000 02000000 00000006 0000911f :
// 010000fd 00000000 00000000 02000000 00005000" for
// 2001:db8:1::2 . tcp . 8081 : fd00:1::2 . 80.
func TestPort6Elements(t *testing.T) {
	ctr := netip.MustParseAddr("fd00:1::2")
	ctrBytes := ctr.As16()
	tests := []struct {
		name string
		m    firewall.PortMapping
		want nftlib.SetElement
	}{
		{"any address", firewall.PortMapping{Proto: firewall.TCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Addr: ctr, Port: 80},
			nftlib.SetElement{Key: []byte{6, 0, 0, 0, 0x1f, 0x90, 0, 0}, Val: append(ctrBytes[:], 0, 80, 0, 0)}},
		{"one address", firewall.PortMapping{Proto: firewall.TCP, HostIP: netip.MustParseAddr("2001:db8:1::2"), HostPort: 8081, Addr: ctr, Port: 80},
			nftlib.SetElement{
				Key: []byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 6, 0, 0, 0, 0x1f, 0x91, 0, 0},
				Val: append(ctrBytes[:], 0, 80, 0, 0),
			}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, portElement(tc.m, true)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		if e, _ := appendPortElement(nil, tc.m, true); len(e.Key)+len(e.Val) > maxPortElement6Len {
			t.Errorf("%s: %d bytes, more than maxPortElement6Len", tc.name, len(e.Key)+len(e.Val))
		}
	}
}

// TestNewPortsDualStack: a port published for both families is distinct
// (the fast path stays for dual-stack containers); a repeat within IPv6
// is merged.
func TestNewPortsDualStack(t *testing.T) {
	all := func(firewall.PortMapping) bool { return true }
	v4 := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80}
	v6 := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("fd00::2"), Port: 80}
	v6any := v6
	v6any.HostIP = netip.IPv6Unspecified()
	if !distinctHostPorts([]firewall.PortMapping{v4, v6}) {
		t.Error("one port for both families is not distinct")
	}
	if distinctHostPorts([]firewall.PortMapping{v4, v6, v6any}) {
		t.Error("an IPv6 port twice is distinct")
	}
	opts := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	if diff := cmp.Diff([]firewall.PortMapping{v4, v6}, newPorts([]firewall.PortMapping{v4, v6any, v6}, all), opts); diff != "" {
		t.Errorf("newPorts (-want +got):\n%s", diff)
	}
}

// TestRebuildWithPortsDualStackMatchesGolden applies
// testdata/ports-dual-stack.nft through netlink and through nft -f and
// requires the same listing.
func TestRebuildWithPortsDualStackMatchesGolden(t *testing.T) {
	nstest.RequireRoot(t)
	fw, ns := newTestFirewall(t)
	ports := slices.Concat(goldenPorts, goldenPorts6)
	if err := fw.Rebuild(context.Background(), dualStack[:1], ports...); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	matchesGolden(t, ns, "ports-dual-stack")
}

// TestAddAndDelPorts6: both families in one AddPorts, the same host ports
// for each; a second IPv6 claim is a conflict that changes nothing, while
// the IPv4 side never collides with it; DelPorts takes each family's
// elements out of its own maps.
func TestAddAndDelPorts6(t *testing.T) {
	nstest.RequireRoot(t)
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	nets := dualStack[:1]
	if err := fw.Rebuild(ctx, nets); err != nil {
		t.Fatal(err)
	}
	all := slices.Concat(goldenPorts, goldenPorts6)
	if err := fw.AddPorts(ctx, all); err != nil {
		t.Fatalf("AddPorts of both families: %v", err)
	}
	checkPorts(t, ns, "both families", nets, all)
	taken := goldenPorts6[2] // [::]:8080
	taken.Addr = netip.MustParseAddr("fd49:efd7:54aa::9")
	bound := goldenPorts6[3] // [2001:db8:1::2]:8081, under nothing else
	bound.HostPort = 8080
	for _, m := range []firewall.PortMapping{taken, bound} {
		if err := fw.AddPorts(ctx, []firewall.PortMapping{m}); !errdefs.Is(err, errdefs.KindConflict) {
			t.Errorf("AddPorts of %v, a taken IPv6 host port: %v, want a conflict", m, err)
		}
	}
	checkPorts(t, ns, "after conflicts", nets, all)
	if err := fw.DelPorts(ctx, goldenPorts6[1:3]); err != nil {
		t.Fatal(err)
	}
	rest := slices.Concat(goldenPorts, goldenPorts6[:1], goldenPorts6[3:])
	checkPorts(t, ns, "two IPv6 ports deleted", nets, rest)
	if err := fw.AddPorts(ctx, []firewall.PortMapping{taken}); err != nil {
		t.Errorf("AddPorts of [::]:8080 once free: %v", err)
	}
	checkPorts(t, ns, "[::]:8080 again", nets, append(rest, taken))
}

// TestManyPorts6 publishes more IPv6 ports of each kind than one message
// holds, beside as many IPv4 ones on the same host ports, in one AddPorts.
func TestManyPorts6(t *testing.T) {
	nstest.RequireRoot(t)
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	nets := dualStack[:1]
	if err := fw.Rebuild(ctx, nets); err != nil {
		t.Fatal(err)
	}
	v4 := manyPorts(1200)
	v6 := manyPorts6(1200)
	for i := range v6 {
		if i%2 == 0 {
			v6[i].HostIP = netip.MustParseAddr("2001:db8:1::2")
		}
	}
	if err := fw.AddPorts(ctx, slices.Concat(v4, v6)); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "2,400 ports", nets, slices.Concat(v4, v6))
	if got := countElements(t, ns); got != 2400 {
		t.Errorf("kernel holds %d elements, want 2,400", got)
	}
	if err := fw.DelPorts(ctx, v6); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "IPv6 deleted", nets, v4)
}

// manyPorts6 is manyPorts with IPv6 containers.
func manyPorts6(n int) []firewall.PortMapping {
	ps := manyPorts(n)
	for i := range ps {
		b := ps[i].Addr.As4()
		ps[i].Addr = netip.AddrFrom16([16]byte{0xfd, 0x49, 0xef, 0xd7, 0x54, 0xaa, 14: b[2], 15: b[3]})
	}
	return ps
}
