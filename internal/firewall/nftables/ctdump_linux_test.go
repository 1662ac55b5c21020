package nftables

import (
	"errors"
	"fmt"
	"github.com/berth-net/berth/internal/nstest"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ctFlow is a flow from client:sport to the host's hostIP:hport, DNATed to
// ctr:cport (the reply from ctr), or not NATed when ctr is invalid.
type ctFlow struct {
	proto        uint8
	client       string
	sport        uint16
	hostIP       string
	hport        uint16
	ctr          string
	cport        uint16
	wantDeletion bool
}

func (c ctFlow) String() string {
	return fmt.Sprintf("%d %s:%d->%s:%d (%s:%d)", c.proto, c.client, c.sport, c.hostIP, c.hport, c.ctr, c.cport)
}

func (c ctFlow) flow() *netlink.ConntrackFlow {
	family := uint8(unix.AF_INET)
	if netip.MustParseAddr(c.client).Is6() {
		family = unix.AF_INET6
	}
	replySrc, replyPort := c.hostIP, c.hport
	if c.ctr != "" {
		replySrc, replyPort = c.ctr, c.cport
	}
	// The library writes an IPv4 address in its 4-byte form only.
	ip := func(s string) net.IP { return netip.MustParseAddr(s).AsSlice() }
	return &netlink.ConntrackFlow{
		FamilyType: family,
		Forward:    netlink.IPTuple{Protocol: c.proto, SrcIP: ip(c.client), DstIP: ip(c.hostIP), SrcPort: c.sport, DstPort: c.hport},
		Reverse:    netlink.IPTuple{Protocol: c.proto, SrcIP: ip(replySrc), DstIP: ip(c.client), SrcPort: replyPort, DstPort: c.sport},
		TimeOut:    600,
	}
}

// conntrackHandle is a netfilter handle in the namespace at ns, closed
// when the test ends.
func conntrackHandle(tb testing.TB, ns string) *netlink.Handle {
	tb.Helper()
	nsh, err := netns.GetFromPath(ns)
	if err != nil {
		tb.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh, unix.NETLINK_NETFILTER)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	return h
}

// ctEntries lists the namespace's conntrack entries of both families as
// their forward tuples.
func ctEntries(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	var out []string
	for _, af := range []netlink.InetFamily{unix.AF_INET, unix.AF_INET6} {
		flows, err := h.ConntrackTableList(netlink.ConntrackTable, af)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			out = append(out, fmt.Sprintf("%d %s:%d->%s:%d", f.Forward.Protocol, f.Forward.SrcIP, f.Forward.SrcPort, f.Forward.DstIP, f.Forward.DstPort))
		}
	}
	slices.Sort(out)
	return out
}

// Withdrawn ports' flows go from the kernel's table, and no other: the
// deletion reads only the flows to those ports (the kernel's filter) when
// there are few, the whole table once when there are many (a range), and
// decides by the same match either way.
func TestForgetConnectionsDeletesOnlyTheWithdrawnPortsFlows(t *testing.T) {
	flows := []ctFlow{
		{unix.IPPROTO_TCP, "192.0.2.10", 40000, "198.51.100.1", 8080, "172.17.0.2", 80, true},
		{unix.IPPROTO_TCP, "192.0.2.11", 40001, "198.51.100.1", 8080, "172.17.0.2", 80, true},
		{unix.IPPROTO_UDP, "192.0.2.10", 40002, "198.51.100.1", 5353, "172.17.0.2", 53, true},
		// The same port, to another container (another mapping's).
		{unix.IPPROTO_TCP, "192.0.2.12", 40003, "198.51.100.1", 8080, "172.17.0.9", 80, false},
		// Another protocol on the port, another port.
		{unix.IPPROTO_UDP, "192.0.2.10", 40004, "198.51.100.1", 8080, "172.17.0.2", 80, false},
		{unix.IPPROTO_TCP, "192.0.2.10", 40005, "198.51.100.1", 8081, "172.17.0.2", 81, false},
		// The host's own flow to the port, not NATed.
		{unix.IPPROTO_TCP, "192.0.2.13", 40006, "198.51.100.1", 8080, "", 0, false},
		{unix.IPPROTO_TCP, "2001:db8::10", 40007, "2001:db8::1", 8080, "fd00::2", 80, true},
		{unix.IPPROTO_TCP, "2001:db8::10", 40008, "2001:db8::1", 8080, "fd00::9", 80, false},
	}
	withdrawn := []firewall.PortMapping{
		{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80},
		{Proto: firewall.UDP, HostPort: 5353, Addr: netip.MustParseAddr("172.17.0.2"), Port: 53},
		{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("fd00::2"), Port: 80},
	}
	// Past maxKeyedDumps, ports that match nothing: the whole table is read.
	var many []firewall.PortMapping
	for p := range uint16(maxKeyedDumps + 1) {
		many = append(many, firewall.PortMapping{Proto: firewall.TCP, HostPort: 20000 + p, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80})
	}
	// Kernels that ignore the filter (older than CTA_FILTER: the whole
	// table comes back) or refuse it.
	ignoring := func(sock *nl.SocketHandle, family uint8, _ *ctKey) ([][]byte, error) {
		return dumpConntrack(sock, family, nil)
	}
	refusing := func(sock *nl.SocketHandle, family uint8, key *ctKey) ([][]byte, error) {
		if key != nil {
			return nil, unix.EOPNOTSUPP
		}
		return dumpConntrack(sock, family, nil)
	}
	for _, tc := range []struct {
		name string
		ms   []firewall.PortMapping
		dump func(*nl.SocketHandle, uint8, *ctKey) ([][]byte, error)
	}{
		{"keyed", withdrawn, dumpConntrack},
		{"whole table", append(many, withdrawn...), dumpConntrack},
		{"a kernel that ignores the filter", withdrawn, ignoring},
		{"a kernel that refuses the filter", withdrawn, refusing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dumpTable = tc.dump
			t.Cleanup(func() { dumpTable = dumpConntrack })
			fw, ns := newTestFirewall(t)
			h := conntrackHandle(t, ns)
			var want []string
			for _, f := range flows {
				fl := f.flow()
				if err := h.ConntrackCreate(netlink.ConntrackTable, netlink.InetFamily(fl.FamilyType), fl); err != nil {
					t.Fatalf("create %s: %v", f, err)
				}
				if !f.wantDeletion {
					want = append(want, fmt.Sprintf("%d %s:%d->%s:%d", f.proto, net.ParseIP(f.client), f.sport, net.ParseIP(f.hostIP), f.hport))
				}
			}
			if got := ctEntries(t, h); len(got) != len(flows) {
				t.Fatalf("%d entries made, want %d: %q", len(got), len(flows), got)
			}
			fw.forgetConnections(tc.ms)
			slices.Sort(want)
			if got := ctEntries(t, h); !slices.Equal(got, want) {
				t.Errorf("entries left %q, want %q", got, want)
			}
		})
	}
}

// The keyed dump returns only the flows of its protocol and port: the
// kernel filters (CTA_FILTER), which is the point of it.
func TestKeyedConntrackDumpIsFilteredByTheKernel(t *testing.T) {
	fw, ns := newTestFirewall(t)
	h := conntrackHandle(t, ns)
	for i := range uint16(50) {
		f := ctFlow{unix.IPPROTO_TCP, "192.0.2.10", 30000 + i, "198.51.100.1", 7000 + i%5, "172.17.0.2", 80, false}
		fl := f.flow()
		if err := h.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, fl); err != nil {
			t.Fatal(err)
		}
	}
	sock, err := fw.ctSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Socket.Close()
	msgs, err := dumpConntrack(sock, unix.AF_INET, &ctKey{unix.IPPROTO_TCP, 7003})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 10 {
		t.Errorf("keyed dump: %d entries, want the 10 to port 7003", len(msgs))
	}
	for _, m := range msgs {
		flow, err := parseConntrack(m)
		if err != nil {
			t.Fatal(err)
		}
		if flow.Forward.DstPort != 7003 || flow.Forward.Protocol != unix.IPPROTO_TCP || flow.Reverse.SrcPort != 80 || !flow.Reverse.SrcIP.Equal(net.ParseIP("172.17.0.2")) {
			t.Errorf("keyed dump gave %+v", flow)
		}
	}
	all, err := dumpConntrack(sock, unix.AF_INET, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 50 {
		t.Errorf("whole dump: %d entries, want 50", len(all))
	}
}

// BenchmarkWithdrawnPortConntrack is the conntrack sweep of one withdrawn
// port with 100,000 other entries in the table: read whole and matched in
// Go (the library's ConntrackDeleteFilters, berth's way before), against
// the kernel's filter.
func BenchmarkWithdrawnPortConntrack(b *testing.B) {
	fw, err := New(nstest.New(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fw.Close() })
	h := conntrackHandle(b, fw.netns)
	for i := range 100000 {
		f := ctFlow{unix.IPPROTO_TCP, fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), 30000, "198.51.100.1", 9000 + uint16(i%1000), "172.17.0.2", 80, false}
		fl := f.flow()
		if err := h.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, fl); err != nil {
			b.Fatal(err)
		}
	}
	m := firewall.PortMapping{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("172.17.0.2"), Port: 80}
	b.Run("whole table", func(b *testing.B) {
		flt := &netlink.ConntrackFilter{}
		if err := errors.Join(flt.AddProtocol(unix.IPPROTO_TCP), flt.AddPort(netlink.ConntrackOrigDstPort, 8080)); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, flt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("kernel filter", func(b *testing.B) {
		for b.Loop() {
			fw.forgetConnections([]firewall.PortMapping{m})
		}
	})
}
