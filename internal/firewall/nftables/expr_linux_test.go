package nftables

import (
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/google/go-cmp/cmp"
	nftlib "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Each case is a rule in the model, the text the model prints for it, what
// `nft --debug=netlink add rule inet berth c <text>` shows nft 1.0.6 sending,
// and the expressions berth sends. The debug text is the reference the
// expressions were written against; the kernel tests then check that both
// forms list identically.
var ruleCases = []struct {
	rule  firewall.Rule
	text  string
	debug string
	want  []expr.Any
}{
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.IfnameMatch{Dir: firewall.In, Name: "berth0"}, firewall.Verdict{Kind: firewall.Accept}}, Comment: "ICC"},
		text: `iifname "berth0" accept comment "ICC"`,
		debug: `[ meta load iifname => reg 1 ]
		        [ cmp eq reg 1 0x74726562 0x00003068 0x00000000 0x00000000 ]
		        [ immediate reg 0 accept ]
		        userdata = { \x00\x04ICC\x00 }`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("berth0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.CtEstablishedRelated{}, firewall.Verdict{Kind: firewall.Accept}}},
		text: "ct state established,related accept",
		debug: `[ ct load state => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]
		        [ cmp neq reg 1 0x00000000 ]
		        [ immediate reg 0 accept ]`,
		want: []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(6), Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{
			firewall.IfnameMatch{Dir: firewall.Out, Negate: true, Name: "berth0"},
			firewall.AddrMatch{Field: firewall.Saddr, Prefix: netip.MustParsePrefix("172.17.0.0/16")},
			firewall.Masquerade{},
		}},
		text: `oifname != "berth0" ip saddr 172.17.0.0/16 masquerade`,
		debug: `[ meta load oifname => reg 1 ]
		        [ cmp neq reg 1 0x74726562 0x00003068 0x00000000 0x00000000 ]
		        [ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ payload load 2b @ network header + 12 => reg 1 ]
		        [ cmp eq reg 1 0x000011ac ]
		        [ masq ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte("berth0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{172, 17}},
			&expr.Masq{},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{
			firewall.AddrMatch{Field: firewall.Saddr, Prefix: netip.MustParsePrefix("192.168.16.0/20")},
			firewall.AddrMatch{Field: firewall.Daddr, Negate: true, Prefix: netip.MustParsePrefix("10.0.0.1/32")},
			firewall.Verdict{Kind: firewall.Return},
		}},
		text: "ip saddr 192.168.16.0/20 ip daddr != 10.0.0.1 return",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ payload load 4b @ network header + 12 => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x00f0ffff ) ^ 0x00000000 ]
		        [ cmp eq reg 1 0x0010a8c0 ]
		        [ payload load 4b @ network header + 16 => reg 1 ]
		        [ cmp neq reg 1 0x0100000a ]
		        [ immediate reg 0 return ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte{255, 255, 240, 0}, Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{192, 168, 16, 0}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{10, 0, 0, 1}},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.VmapLookup{Key: firewall.LookupDaddr, Map: firewall.MapDirect}}},
		text: "ip daddr vmap @direct",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ payload load 4b @ network header + 16 => reg 1 ]
		        [ lookup reg 1 set direct dreg 0 ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: "direct", SetID: setIDs["direct"]},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.VmapLookup{Key: firewall.LookupOifname, Map: firewall.MapFwdIn}}},
		text: "oifname vmap @fwd_in",
		debug: `[ meta load oifname => reg 1 ]
		        [ lookup reg 1 set fwd_in dreg 0 ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: "fwd_in", SetID: setIDs["fwd_in"]},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{
			firewall.IfnameMatch{Dir: firewall.In, Negate: true, Name: "lo"},
			firewall.Counter{},
			firewall.Verdict{Kind: firewall.Drop},
		}},
		text: `iifname != "lo" counter drop`,
		debug: `[ meta load iifname => reg 1 ]
		        [ cmp neq reg 1 0x00006f6c 0x00000000 0x00000000 0x00000000 ]
		        [ counter pkts 0 bytes 0 ]
		        [ immediate reg 0 drop ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte("lo\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictDrop},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{
			firewall.IfnameMatch{Dir: firewall.Out, Negate: true, Name: "br0"},
			firewall.AddrMatch{Field: firewall.Saddr, Prefix: netip.MustParsePrefix("fd00:1::/64")},
			firewall.Masquerade{},
		}},
		text: `oifname != "br0" ip6 saddr fd00:1::/64 masquerade`,
		debug: `[ meta load oifname => reg 1 ]
		        [ cmp neq reg 1 0x00307262 0x00000000 0x00000000 0x00000000 ]
		        [ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 8b @ network header + 8 => reg 1 ]
		        [ cmp eq reg 1 0x010000fd 0x00000000 ]
		        [ masq ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte("br0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 8},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0xfd, 0, 0, 1, 0, 0, 0, 0}},
			&expr.Masq{},
		},
	},
	{
		// An unaligned IPv6 prefix loads all 16 bytes and masks them; the
		// IPv6 dependency comes once however many addresses the rule reads.
		rule: firewall.Rule{Stmts: []firewall.Stmt{
			firewall.AddrMatch{Field: firewall.Saddr, Prefix: netip.MustParsePrefix("fd00:1::/60")},
			firewall.AddrMatch{Field: firewall.Daddr, Negate: true, Prefix: netip.MustParsePrefix("fd00:1::1/128")},
			firewall.Verdict{Kind: firewall.Return},
		}},
		text: "ip6 saddr fd00:1::/60 ip6 daddr != fd00:1::1 return",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 16b @ network header + 8 => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0xffffffff 0xf0ffffff 0x00000000 0x00000000 ) ^ 0x00000000 0x00000000 0x00000000 0x00000000 ]
		        [ cmp eq reg 1 0x010000fd 0x00000000 0x00000000 0x00000000 ]
		        [ payload load 16b @ network header + 24 => reg 1 ]
		        [ cmp neq reg 1 0x010000fd 0x00000000 0x00000000 0x01000000 ]
		        [ immediate reg 0 return ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16,
				Mask: []byte{255, 255, 255, 255, 255, 255, 255, 240, 0, 0, 0, 0, 0, 0, 0, 0}, Xor: make([]byte, 16)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.VmapLookup{Key: firewall.LookupDaddr6, Map: firewall.MapDirect6}}},
		text: "ip6 daddr vmap @direct6",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x0000000a ]
		        [ payload load 16b @ network header + 24 => reg 1 ]
		        [ lookup reg 1 set direct6 dreg 0 ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16},
			&expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: "direct6", SetID: setIDs["direct6"]},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.L4ProtoMatch{Proto: firewall.ProtoICMPv6}, firewall.Verdict{Kind: firewall.Accept}}},
		text: "meta l4proto ipv6-icmp accept",
		debug: `[ meta load l4proto => reg 1 ]
		        [ cmp eq reg 1 0x0000003a ]
		        [ immediate reg 0 accept ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{58}},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.Counter{}, firewall.RejectAdminProhibited{}}},
		text: "counter reject with icmpx admin-prohibited",
		debug: `[ counter pkts 0 bytes 0 ]
		        [ reject type 2 code 3 ]`,
		want: []expr.Any{
			&expr.Counter{},
			&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.ClampMSS{}}},
		text: "tcp flags syn / syn,rst tcp option maxseg size set rt mtu",
		debug: `[ meta load l4proto => reg 1 ]
		        [ cmp eq reg 1 0x00000006 ]
		        [ payload load 1b @ transport header + 13 => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x00000006 ) ^ 0x00000000 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ rt load tcpmss => reg 1 ]
		        [ byteorder reg 1 = hton(reg 1, 2, 2) ]
		        [ exthdr write tcpopt reg 1 => 2b @ 2 + 2 ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{6}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{6}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{2}},
			&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
			&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 2, Size: 2},
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: 2, Offset: 2, Len: 2, SourceRegister: 1},
		},
	},
}

func TestRuleTranslation(t *testing.T) {
	ch := &nftlib.Chain{Table: table, Name: "c"}
	for _, tc := range ruleCases {
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

func TestRuleComment(t *testing.T) {
	r, err := nftRule(&nftlib.Chain{Table: table, Name: "c"}, ruleCases[0].rule)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]byte("\x00\x04ICC\x00"), r.UserData); diff != "" {
		t.Errorf("comment userdata (-nft +berth):\n%s", diff)
	}
}

func TestElements(t *testing.T) {
	jump := &expr.Verdict{Kind: expr.VerdictJump, Chain: "x"}
	tests := []struct {
		name string
		el   firewall.Element
		want []nftlib.SetElement
	}{
		{"ifname", firewall.Element{Ifname: "br0", Jump: "x"},
			[]nftlib.SetElement{{Key: []byte("br0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), VerdictData: jump}}},
		{"prefix", firewall.Element{Prefix: netip.MustParsePrefix("172.17.0.0/16"), Jump: "x"},
			[]nftlib.SetElement{{Key: []byte{172, 17, 0, 0}, VerdictData: jump}, {Key: []byte{172, 18, 0, 0}, IntervalEnd: true}}},
		{"prefix at the top", firewall.Element{Prefix: netip.MustParsePrefix("255.255.255.0/24"), Jump: "x"},
			[]nftlib.SetElement{{Key: []byte{255, 255, 255, 0}, VerdictData: jump}}},
		{"unaligned prefix", firewall.Element{Prefix: netip.MustParsePrefix("10.0.0.0/23"), Jump: "x"},
			[]nftlib.SetElement{{Key: []byte{10, 0, 0, 0}, VerdictData: jump}, {Key: []byte{10, 0, 2, 0}, IntervalEnd: true}}},
		{"ipv6 prefix", firewall.Element{Prefix: netip.MustParsePrefix("fd00:1::/64"), Jump: "x"},
			[]nftlib.SetElement{
				{Key: []byte{0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, VerdictData: jump},
				{Key: []byte{0xfd, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, IntervalEnd: true},
			}},
		{"unaligned ipv6 prefix", firewall.Element{Prefix: netip.MustParsePrefix("fd00:aa:bb:c0::/58"), Jump: "x"},
			[]nftlib.SetElement{
				{Key: []byte{0xfd, 0, 0, 0xaa, 0, 0xbb, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0}, VerdictData: jump},
				{Key: []byte{0xfd, 0, 0, 0xaa, 0, 0xbb, 1, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}, IntervalEnd: true},
			}},
		{"ipv6 prefix at the top", firewall.Element{Prefix: netip.MustParsePrefix("ffff:ffff:ffff:ffff::/64"), Jump: "x"},
			[]nftlib.SetElement{{Key: []byte{255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0}, VerdictData: jump}}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, nftElements(tc.el, true)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestUntranslatableRules(t *testing.T) {
	tests := map[string]firewall.Stmt{
		"unknown verdict": firewall.Verdict{Kind: firewall.VerdictKind(99)},
		"unknown map":     firewall.VmapLookup{Key: firewall.LookupIifname, Map: "nope"},
		"unknown key":     firewall.VmapLookup{Key: firewall.LookupKey(99), Map: firewall.MapFwdIn},
		"4in6 prefix":     firewall.AddrMatch{Prefix: netip.MustParsePrefix("::ffff:10.0.0.0/104")},
		"zero-bit prefix": firewall.AddrMatch{Prefix: netip.MustParsePrefix("0.0.0.0/0")},
		"zero-bit ipv6":   firewall.AddrMatch{Prefix: netip.MustParsePrefix("::/0")},
		"invalid prefix":  firewall.AddrMatch{},
	}
	for name, s := range tests {
		r := firewall.Rule{Stmts: []firewall.Stmt{s}}
		if _, err := nftRule(&nftlib.Chain{Table: table, Name: "c"}, r); err == nil {
			t.Errorf("%s: translated without error", name)
		}
	}
}
