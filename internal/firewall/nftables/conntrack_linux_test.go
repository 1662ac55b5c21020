package nftables

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// unpublishedFlows matches the UDP flows to a published host port that
// went to one of the host's addresses untouched (sent before the port
// was published), and no other flow: one NAT rewrote (DNATed to a
// container, a container's flow out), the host's own flow out to that
// port, a flow forwarded past the host.
func TestUnpublishedFlowsMatchOnlyUnNATedFlowsToTheHost(t *testing.T) {
	ip := net.ParseIP
	flow := func(proto uint8, src, dst string, sport, dport uint16, rsrc, rdst string, rsport, rdport uint16) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{Protocol: proto, SrcIP: ip(src), DstIP: ip(dst), SrcPort: sport, DstPort: dport},
			Reverse: netlink.IPTuple{Protocol: proto, SrcIP: ip(rsrc), DstIP: ip(rdst), SrcPort: rsport, DstPort: rdport},
		}
	}
	const udp, tcp = unix.IPPROTO_UDP, unix.IPPROTO_TCP
	local := map[netip.Addr]bool{}
	for _, a := range []string{"203.0.113.2", "127.0.0.1", "172.17.0.1", "2001:db8::2"} {
		local[netip.MustParseAddr(a)] = true
	}
	on := func(port uint16, addrs ...string) unpublishedFlows {
		u := unpublishedFlows{ports: map[uint16][]netip.Addr{port: nil}, local: local}
		if len(addrs) == 0 {
			u.ports[port] = []netip.Addr{{}}
		}
		for _, a := range addrs {
			u.ports[port] = append(u.ports[port], netip.MustParseAddr(a))
		}
		return u
	}
	toHost := flow(udp, "203.0.113.1", "203.0.113.2", 42000, 5700, "203.0.113.2", "203.0.113.1", 5700, 42000)
	for _, tc := range []struct {
		name string
		f    unpublishedFlows
		flow *netlink.ConntrackFlow
		want bool
	}{
		{"to the host, any address", on(5700), toHost, true},
		{"to the host, its address", on(5700, "203.0.113.2"), toHost, true},
		{"to another host address", on(5700, "127.0.0.1"), toHost, false},
		{"to the host from a container, through the gateway", on(5700),
			flow(udp, "172.17.0.3", "172.17.0.1", 41000, 5700, "172.17.0.1", "172.17.0.3", 5700, 41000), true},
		{"another port", on(5701), toHost, false},
		{"tcp", on(5700), flow(tcp, "203.0.113.1", "203.0.113.2", 42000, 5700, "203.0.113.2", "203.0.113.1", 5700, 42000), false},
		{"DNATed to a container", on(5700),
			flow(udp, "203.0.113.1", "203.0.113.2", 42000, 5700, "172.17.0.2", "203.0.113.1", 53, 42000), false},
		{"a container's flow out, masqueraded", on(5700),
			flow(udp, "172.17.0.2", "198.51.100.7", 40000, 5700, "198.51.100.7", "203.0.113.2", 5700, 40000), false},
		{"the host's own query out to that port", on(53),
			flow(udp, "203.0.113.2", "203.0.113.53", 40000, 53, "203.0.113.53", "203.0.113.2", 53, 40000), false},
		{"container to container on a bridge", on(53),
			flow(udp, "172.17.0.2", "172.17.0.3", 40000, 53, "172.17.0.3", "172.17.0.2", 53, 40000), false},
		{"IPv6 to the host", on(5700, "2001:db8::2"),
			flow(udp, "2001:db8::1", "2001:db8::2", 42000, 5700, "2001:db8::2", "2001:db8::1", 5700, 42000), true},
	} {
		if got := tc.f.MatchConntrackFlow(tc.flow); got != tc.want {
			t.Errorf("%s: match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
