package nftables

import (
	"context"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/google/go-cmp/cmp"
	nftlib "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The ports of firewall's testdata/ports.nft.
var goldenPorts = []firewall.PortMapping{
	{Proto: firewall.UDP, HostPort: 5353, Addr: netip.MustParseAddr("172.17.0.3"), Port: 53},
	{Proto: firewall.TCP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8081, Addr: netip.MustParseAddr("172.17.0.3"), Port: 80},
	{Proto: firewall.TCP, HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80},
	{Proto: firewall.TCP, HostIP: netip.MustParseAddr("198.51.100.2"), HostPort: 8081, Addr: netip.MustParseAddr("172.17.0.4"), Port: 8000},
}

// The port rules, with what `nft --debug=netlink` shows nft 1.0.6 sending
// for the same text.
var portRuleCases = []struct {
	rule  firewall.Rule
	text  string
	debug string
	want  []expr.Any
}{
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.NfprotoIPv4{Implied: true}, firewall.FibDaddrLocal{}, firewall.DNATPortMap{ByAddr: true}}},
		text: "fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_ip",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ fib daddr type => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ payload load 4b @ network header + 16 => reg 1 ]
		        [ meta load l4proto => reg 9 ]
		        [ payload load 2b @ transport header + 2 => reg 10 ]
		        [ lookup reg 1 set ports_ip dreg 1 ]
		        [ nat dnat ip addr_min reg 1 proto_min reg 9 ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(2)},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 9},
			&expr.Payload{DestRegister: 10, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "ports_ip", SetID: 6},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.NfprotoIPv4{}, firewall.FibDaddrLocal{}, firewall.DNATPortMap{}}},
		text: "meta nfproto ipv4 fib daddr type local dnat ip to meta l4proto . th dport map @ports_any",
		debug: `[ meta load nfproto => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ fib daddr type => reg 1 ]
		        [ cmp eq reg 1 0x00000002 ]
		        [ meta load l4proto => reg 1 ]
		        [ payload load 2b @ transport header + 2 => reg 9 ]
		        [ lookup reg 1 set ports_any dreg 1 ]
		        [ nat dnat ip addr_min reg 1 proto_min reg 9 ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(2)},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Payload{DestRegister: 9, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: "ports_any", SetID: 5},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 9},
		},
	},
	{
		rule: firewall.Rule{Stmts: []firewall.Stmt{firewall.IfnameMatch{Dir: firewall.Out, Name: "berth0"}, firewall.CtStatusDNAT{}, firewall.Masquerade{}}},
		text: `oifname "berth0" ct status dnat masquerade`,
		debug: `[ meta load oifname => reg 1 ]
		        [ cmp eq reg 1 0x74726562 0x00003068 0x00000000 0x00000000 ]
		        [ ct load status => reg 1 ]
		        [ bitwise reg 1 = ( reg 1 & 0x00000020 ) ^ 0x00000000 ]
		        [ cmp neq reg 1 0x00000000 ]
		        [ masq ]`,
		want: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte("berth0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(0x20), Xor: []byte{0, 0, 0, 0}},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
			&expr.Masq{},
		},
	},
}

func TestPortRuleTranslation(t *testing.T) {
	ch := &nftlib.Chain{Table: table, Name: "c"}
	for _, tc := range portRuleCases {
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

// TestPortElements checks the element bytes against nft --debug=netlink:
// "element 00000006 0000901f : 020011ac 00005000" for tcp . 8080 : 172.17.0.2 . 80.
func TestPortElements(t *testing.T) {
	ctr := netip.MustParseAddr("172.17.0.2")
	tests := []struct {
		name string
		m    firewall.PortMapping
		want nftlib.SetElement
	}{
		{"any address", firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: ctr, Port: 80},
			nftlib.SetElement{Key: []byte{6, 0, 0, 0, 0x1f, 0x90, 0, 0}, Val: []byte{172, 17, 0, 2, 0, 80, 0, 0}}},
		{"one address", firewall.PortMapping{Proto: firewall.UDP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 53, Addr: ctr, Port: 5353},
			nftlib.SetElement{Key: []byte{127, 0, 0, 1, 17, 0, 0, 0, 0, 53, 0, 0}, Val: []byte{172, 17, 0, 2, 0x14, 0xe9, 0, 0}}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, portElement(tc.m, true)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
		if got := portElement(tc.m, false); got.Val != nil {
			t.Errorf("%s: a deletion carries data %v", tc.name, got.Val)
		}
	}
}

// TestPortElementsShareABuffer: elements appended to one buffer have the
// bytes portElement gives each alone, and none can grow into the next.
func TestPortElementsShareABuffer(t *testing.T) {
	ms := append(manyPorts(3), goldenPorts...)
	var buf []byte
	var got []nftlib.SetElement
	for _, m := range ms {
		var e nftlib.SetElement
		e, buf = appendPortElement(buf, m, true)
		got = append(got, e)
	}
	for i, e := range got {
		_ = append(e.Key, 0xff) // must copy, not overwrite the value behind it
		_ = append(e.Val, 0xff)
		if diff := cmp.Diff(portElement(ms[i], true), e); diff != "" {
			t.Errorf("%v (-alone +shared):\n%s", ms[i], diff)
		}
	}
}

// TestNewPorts: the distinct mappings of a batch, normalised, in order;
// an identical repeat is merged whichever way newPorts finds it.
func TestNewPorts(t *testing.T) {
	ctr := netip.MustParseAddr("172.17.0.2")
	tcp := func(host string, port uint16) firewall.PortMapping {
		m := firewall.PortMapping{Proto: firewall.TCP, HostPort: port, Addr: ctr, Port: 80}
		if host != "" {
			m.HostIP = netip.MustParseAddr(host)
		}
		return m
	}
	udp8080 := tcp("", 8080)
	udp8080.Proto = firewall.UDP
	all := func(firewall.PortMapping) bool { return true }
	tests := []struct {
		name     string
		in, want []firewall.PortMapping
		distinct bool
		keep     func(firewall.PortMapping) bool
	}{
		{"distinct", []firewall.PortMapping{tcp("0.0.0.0", 8080), udp8080, tcp("127.0.0.1", 8081)},
			[]firewall.PortMapping{tcp("", 8080), udp8080, tcp("127.0.0.1", 8081)}, true, all},
		{"identical repeat", []firewall.PortMapping{tcp("", 8080), tcp("0.0.0.0", 8080)},
			[]firewall.PortMapping{tcp("", 8080)}, false, all},
		{"one port on two addresses", []firewall.PortMapping{tcp("127.0.0.1", 8080), tcp("198.51.100.2", 8080)},
			[]firewall.PortMapping{tcp("127.0.0.1", 8080), tcp("198.51.100.2", 8080)}, false, all},
		{"keep decides", []firewall.PortMapping{tcp("", 8080), tcp("", 8081)},
			[]firewall.PortMapping{tcp("", 8081)}, true, func(m firewall.PortMapping) bool { return m.HostPort != 8080 }},
		{"keep decides, slow way", []firewall.PortMapping{tcp("", 8080), tcp("", 8080), tcp("", 8081)},
			[]firewall.PortMapping{tcp("", 8081)}, false, func(m firewall.PortMapping) bool { return m.HostPort != 8080 }},
		{"other protocol", []firewall.PortMapping{{Proto: 132, HostPort: 9, Addr: ctr, Port: 9}},
			[]firewall.PortMapping{{Proto: 132, HostPort: 9, Addr: ctr, Port: 9}}, false, all},
	}
	for _, tc := range tests {
		if got := distinctHostPorts(tc.in); got != tc.distinct {
			t.Errorf("%s: distinctHostPorts = %v, want %v", tc.name, got, tc.distinct)
		}
		if diff := cmp.Diff(tc.want, newPorts(tc.in, tc.keep), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("%s: newPorts (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestManyMixedPorts adds, in one AddPorts, more ports than one message
// holds, on every address and on one, and requires exactly the listing nft
// gives for the same ruleset; DelPorts of half of them leaves the rest.
func TestManyMixedPorts(t *testing.T) {
	nstest.RequireRoot(t)
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	nets := []firewall.Network{defaultBridge}
	if err := fw.Rebuild(ctx, nets); err != nil {
		t.Fatal(err)
	}
	ps := manyPorts(1200)
	for i := range ps {
		if i%3 == 0 {
			ps[i].HostIP = netip.MustParseAddr("127.0.0.1")
		}
	}
	if err := fw.AddPorts(ctx, ps); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "1,200 ports", nets, ps)
	if err := fw.DelPorts(ctx, ps[:600]); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "600 deleted", nets, ps[600:])
}

// TestRebuildWithPortsMatchesGolden applies testdata/ports.nft through
// netlink and through nft -f and requires the same listing.
func TestRebuildWithPortsMatchesGolden(t *testing.T) {
	nstest.RequireRoot(t)
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(context.Background(), []firewall.Network{defaultBridge}, goldenPorts...); err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	matchesGolden(t, ns, "ports")
}

// checkPorts compares the kernel's table with Build for nets and ports.
func checkPorts(t *testing.T, ns, step string, nets []firewall.Network, ports []firewall.PortMapping) {
	t.Helper()
	rs, err := firewall.BuildWithPorts(nets, ports)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalize(rs.String()), normalize(listTable(t, ns))); diff != "" {
		t.Errorf("%s: table differs (-want +kernel):\n%s", step, diff)
	}
}

func TestAddAndDelPorts(t *testing.T) {
	nstest.RequireRoot(t)
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	nets := []firewall.Network{defaultBridge}
	// Before any Rebuild: AddPorts asserts the skeleton in its own batch.
	if err := fw.AddPorts(ctx, goldenPorts[:2]); err != nil {
		t.Fatalf("AddPorts on an empty namespace: %v", err)
	}
	checkPorts(t, ns, "add before rebuild", nil, goldenPorts[:2])
	if err := fw.AddNetwork(ctx, defaultBridge); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "add network keeps ports", nets, goldenPorts[:2])
	if err := fw.AddPorts(ctx, goldenPorts); err != nil {
		t.Fatalf("AddPorts with two already there: %v", err)
	}
	checkPorts(t, ns, "add all", nets, goldenPorts)
	taken := goldenPorts[2]
	taken.Addr = netip.MustParseAddr("172.17.0.9")
	if err := fw.AddPorts(ctx, []firewall.PortMapping{taken}); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("AddPorts of a taken host port = %v, want a conflict", err)
	}
	checkPorts(t, ns, "after conflict", nets, goldenPorts)
	if err := fw.DelPorts(ctx, goldenPorts[1:3]); err != nil {
		t.Fatal(err)
	}
	remaining := []firewall.PortMapping{goldenPorts[0], goldenPorts[3]}
	checkPorts(t, ns, "delete two", nets, remaining)
	if err := fw.DelPorts(ctx, goldenPorts[1:3]); err != nil {
		t.Errorf("deleting them again: %v", err)
	}
	if err := fw.DelNetwork(ctx, defaultBridge); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "delete network keeps ports", nil, remaining)
	if err := fw.Rebuild(ctx, nets); err != nil {
		t.Fatal(err)
	}
	checkPorts(t, ns, "rebuild without ports", nets, nil)
	if err := fw.DelPorts(ctx, remaining); err != nil {
		t.Errorf("deleting ports a rebuild dropped: %v", err)
	}
}

// goldenFirewall is a Firewall whose table holds the default bridge and
// goldenPorts, and its namespace.
func goldenFirewall(t *testing.T) (*Firewall, string, []firewall.Network) {
	t.Helper()
	nstest.RequireRoot(t)
	fw, ns := newTestFirewall(t)
	nets := []firewall.Network{defaultBridge}
	if err := fw.Rebuild(context.Background(), nets, goldenPorts...); err != nil {
		t.Fatal(err)
	}
	return fw, ns, nets
}

// TestPortsSurviveRepair: when a port batch fails because the table was
// changed behind berth's back, the table is rebuilt from what berth knows.
func TestPortsSurviveRepair(t *testing.T) {
	ctx := context.Background()
	fw, ns, nets := goldenFirewall(t)
	run(t, ns, "nft", "delete", "element", "inet", "berth", "ports_any", "{ udp . 5353 }")
	run(t, ns, "nft", "delete", "element", "inet", "berth", "ports_ip", "{ 127.0.0.1 . tcp . 8081 }")
	// The kernel refuses to delete a missing element, which fails the batch.
	if err := fw.DelPorts(ctx, goldenPorts[:1]); err != nil {
		t.Fatalf("DelPorts on a damaged table: %v", err)
	}
	checkPorts(t, ns, "repaired", nets, goldenPorts[1:])
}

// TestFailedDeleteKeepsPorts: when a delete's batch and the rebuild that
// follows both fail (the kernel refuses every change: here another
// process owns a table of the same name), nothing changed in the kernel,
// and the Firewall keeps the ports as its caller does: the next repair
// puts them back rather than dropping them. The refusals (EPERM) leave
// the Firewall's socket usable (it is reopened: google/nftables stops
// reading a batch's answers at a permission error, and the next batch
// read the rest as its own).
func TestFailedDeleteKeepsPorts(t *testing.T) {
	ctx := context.Background()
	fw, ns, nets := goldenFirewall(t)
	// Another process's table in its place, owned by its socket (it
	// goes when the socket closes): nft's interactive mode keeps one.
	run(t, ns, "nft", "delete", "table", "inet", "berth")
	owner := exec.Command("nsenter", "--net="+ns, "--", "nft", "-i")
	stdin, err := owner.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	release := func() {
		stdin.Close()
		owner.Wait()
	}
	defer release()
	if _, err := stdin.Write([]byte("add table inet berth { flags owner; }\n")); err != nil {
		t.Fatal(err)
	}
	for i := 0; !strings.Contains(output(t, ns, "nft", "list", "tables"), "inet berth"); i++ {
		if i == 100 {
			t.Fatal("the owned table never appeared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := fw.DelPorts(ctx, goldenPorts[:1]); err == nil {
		t.Fatal("DelPorts succeeded in a table another process owns")
	}
	release()
	for i := 0; strings.Contains(output(t, ns, "nft", "list", "tables"), "inet berth"); i++ {
		if i == 100 {
			t.Fatal("the owned table outlived its owner")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The table is gone with its owner: the next delete's batch fails
	// and its repair rebuilds from what the Firewall knows.
	if err := fw.DelPorts(ctx, goldenPorts[1:2]); err != nil {
		t.Fatalf("DelPorts after the owner left: %v", err)
	}
	checkPorts(t, ns, "repaired", nets, append([]firewall.PortMapping{goldenPorts[0]}, goldenPorts[2:]...))
}

// TestTenThousandPorts publishes 10,000 ports in one AddPorts, which needs
// chunked element messages and big socket buffers, and removes them in one
// DelPorts.
func TestTenThousandPorts(t *testing.T) {
	nstest.RequireRoot(t)
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	ps := manyPorts(10000)
	if err := fw.AddPorts(ctx, ps); err != nil {
		t.Fatalf("AddPorts: %v", err)
	}
	if got := countElements(t, ns); got != len(ps) {
		t.Errorf("kernel holds %d elements, want %d", got, len(ps))
	}
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge}, ps...); err != nil {
		t.Fatalf("Rebuild with 10,000 ports: %v", err)
	}
	if got := countElements(t, ns); got != len(ps) {
		t.Errorf("after Rebuild the kernel holds %d elements, want %d", got, len(ps))
	}
	if err := fw.DelPorts(ctx, ps); err != nil {
		t.Fatalf("DelPorts: %v", err)
	}
	if got := countElements(t, ns); got != 0 {
		t.Errorf("kernel holds %d elements after DelPorts", got)
	}
}

// manyPorts returns n mappings: host ports 20000… on every address to
// 100 ports each of n/100 containers.
func manyPorts(n int) []firewall.PortMapping {
	ps := make([]firewall.PortMapping, n)
	for i := range ps {
		ctr := netip.AddrFrom4([4]byte{172, 17, byte(1 + i/100/250), byte(2 + i/100%250)})
		ps[i] = firewall.PortMapping{Proto: firewall.TCP, HostPort: uint16(20000 + i), Addr: ctr, Port: uint16(8000 + i%100)}
	}
	return ps
}

func countElements(t *testing.T, ns string) int {
	t.Helper()
	n := 0
	for _, m := range portMaps {
		out := output(t, ns, "nft", "list", "map", "inet", "berth", m)
		n += strings.Count(out, " : ")
	}
	return n - len(portMaps) // each map's "type … : …" line
}
