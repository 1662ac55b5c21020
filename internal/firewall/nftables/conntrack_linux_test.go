package nftables

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// unpublishedFlow matches the UDP flows to a host port that went to the
// host untouched (sent before the port was published), and no flow that
// NAT rewrote: one DNATed to a container, or a container's own flow out.
func TestUnpublishedFlowMatchesOnlyUnNATedFlowsToThePort(t *testing.T) {
	ip := net.ParseIP
	flow := func(proto uint8, src, dst string, sport, dport uint16, rsrc, rdst string, rsport, rdport uint16) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{Protocol: proto, SrcIP: ip(src), DstIP: ip(dst), SrcPort: sport, DstPort: dport},
			Reverse: netlink.IPTuple{Protocol: proto, SrcIP: ip(rsrc), DstIP: ip(rdst), SrcPort: rsport, DstPort: rdport},
		}
	}
	const udp, tcp = unix.IPPROTO_UDP, unix.IPPROTO_TCP
	toHost := flow(udp, "203.0.113.1", "203.0.113.2", 42000, 5700, "203.0.113.2", "203.0.113.1", 5700, 42000)
	for _, tc := range []struct {
		name string
		f    unpublishedFlow
		flow *netlink.ConntrackFlow
		want bool
	}{
		{"to the host, any address", unpublishedFlow{port: 5700}, toHost, true},
		{"to the host, its address", unpublishedFlow{port: 5700, hostIP: netip.MustParseAddr("203.0.113.2")}, toHost, true},
		{"to another host address", unpublishedFlow{port: 5700, hostIP: netip.MustParseAddr("127.0.0.1")}, toHost, false},
		{"another port", unpublishedFlow{port: 5701}, toHost, false},
		{"tcp", unpublishedFlow{port: 5700}, flow(tcp, "203.0.113.1", "203.0.113.2", 42000, 5700, "203.0.113.2", "203.0.113.1", 5700, 42000), false},
		{"DNATed to a container", unpublishedFlow{port: 5700},
			flow(udp, "203.0.113.1", "203.0.113.2", 42000, 5700, "172.17.0.2", "203.0.113.1", 53, 42000), false},
		{"a container's flow out, masqueraded", unpublishedFlow{port: 5700},
			flow(udp, "172.17.0.2", "198.51.100.7", 40000, 5700, "198.51.100.7", "203.0.113.2", 5700, 40000), false},
		{"IPv6 to the host", unpublishedFlow{port: 5700, hostIP: netip.MustParseAddr("2001:db8::2")},
			flow(udp, "2001:db8::1", "2001:db8::2", 42000, 5700, "2001:db8::2", "2001:db8::1", 5700, 42000), true},
	} {
		if got := tc.f.MatchConntrackFlow(tc.flow); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
