package network

import (
	"context"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/google/go-cmp/cmp"
)

// TestIPv6NetworkAddresses: a network with IPv6 gets an IPv6 subnet (the
// user's, or a /64 of the ULA pool) and its endpoints an IPv6 address
// and gateway beside the IPv4 ones; the driver and the firewall are told.
func TestIPv6NetworkAddresses(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	auto, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "auto6", EnableIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	if auto.IPv6 == nil || auto.IPv6.Subnet.Bits() != 64 || !r.c.cfg.Pools6[0].Base.Contains(auto.IPv6.Subnet.Addr()) {
		t.Fatalf("auto6 IPv6 = %+v, want a /64 of %v", auto.IPv6, r.c.cfg.Pools6[0])
	}
	if want := auto.IPv6.Subnet.Addr().Next(); auto.IPv6.Gateway != want || auto.IPv6.UserSubnet {
		t.Errorf("auto6 gateway %v user %v, want %v, false", auto.IPv6.Gateway, auto.IPv6.UserSubnet, want)
	}
	second, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "auto6b", EnableIPv6: true})
	if err != nil {
		t.Fatal(err)
	}
	if second.IPv6.Subnet.Overlaps(auto.IPv6.Subnet) {
		t.Errorf("second IPv6 subnet %v overlaps the first %v", second.IPv6.Subnet, auto.IPv6.Subnet)
	}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "dual", EnableIPv6: true, IPAM: []IPAMRequest{
		{Subnet: mustPrefix("fd00:db8:1::/64")}, {Subnet: mustPrefix("10.20.0.0/24")}}})
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv4.Subnet != mustPrefix("10.20.0.0/24") || n.IPv6.Subnet != mustPrefix("fd00:db8:1::/64") || !n.IPv6.UserSubnet {
		t.Fatalf("dual: IPv4 %+v IPv6 %+v", n.IPv4, n.IPv6)
	}
	if got := r.drv.bridges[n.Bridge.Name].Gateway6; got != mustPrefix("fd00:db8:1::1/64") {
		t.Errorf("bridge Gateway6 = %v, want fd00:db8:1::1/64", got)
	}
	if fn := r.fw.nets[n.Bridge.Name]; fn.Subnet6 != n.IPv6.Subnet || fn.Gateway6 != n.IPv6.Gateway {
		t.Errorf("firewall network %+v: want the IPv6 subnet and gateway", fn)
	}

	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "dual", JoinRequest{ContainerID: "c1", Name: "web"})
	if ep.Address != mustPrefix("10.20.0.2/24") || ep.Address6 != mustPrefix("fd00:db8:1::2/64") || ep.Gateway6 != netip.MustParseAddr("fd00:db8:1::1") {
		t.Fatalf("endpoint %v %v gw6 %v", ep.Address, ep.Address6, ep.Gateway6)
	}
	spec := r.drv.veths[ep.HostIfName]
	if spec.Address6 != ep.Address6 || spec.Gateway6 != ep.Gateway6 {
		t.Errorf("driver spec Address6 %v Gateway6 %v", spec.Address6, spec.Gateway6)
	}
	if got, _ := r.c.Resolve(sb.ID, "web"); !slices.Equal(got, []netip.Addr{ep.Address.Addr(), ep.Address6.Addr()}) {
		t.Errorf("Resolve(web) = %v, want both addresses", got)
	}
	if got, ok := r.c.ResolveAddr(sb.ID, ep.Address6.Addr()); !ok || got != "web.dual" {
		t.Errorf("ResolveAddr(%v) = %q %v", ep.Address6.Addr(), got, ok)
	}
	if got := r.c.Addresses(sb.ID); !slices.Equal(got, []netip.Addr{ep.Address.Addr(), ep.Address6.Addr()}) {
		t.Errorf("Addresses = %v", got)
	}

	// A static --ip6, then an address given back and handed out again.
	sb2 := r.sandbox(t, "c2")
	ep2 := r.join(t, sb2, "dual", JoinRequest{ContainerID: "c2", Name: "db", IPv6: netip.MustParseAddr("fd00:db8:1::99")})
	if ep2.Address6 != mustPrefix("fd00:db8:1::99/64") || !ep2.StaticIP6 {
		t.Errorf("static: %v %v", ep2.Address6, ep2.StaticIP6)
	}
	sb3 := r.sandbox(t, "c3")
	if _, err := r.c.Join(ctx, sb3.ID, "dual", JoinRequest{ContainerID: "c3", Name: "dup", IPv6: netip.MustParseAddr("fd00:db8:1::99")}); errdefs.KindOf(err) != errdefs.KindForbidden {
		t.Errorf("second --ip6 of a held address: %v, want Forbidden", err)
	}
	if err := r.c.Leave(ctx, sb.ID, "dual"); err != nil {
		t.Fatal(err)
	}
	again := r.join(t, sb3, "dual", JoinRequest{ContainerID: "c3", Name: "again"})
	if again.Address6 != ep.Address6 {
		t.Errorf("after leave: %v, want %v back", again.Address6, ep.Address6)
	}

	// A restart keeps the addresses held: the next is ::3, not ::2 or ::99.
	r.restart(t)
	sb4 := r.sandbox(t, "c4")
	next := r.join(t, sb4, "dual", JoinRequest{ContainerID: "c4", Name: "next"})
	if next.Address6 != mustPrefix("fd00:db8:1::3/64") {
		t.Errorf("after restart: %v, want fd00:db8:1::3/64", next.Address6)
	}
}

// TestIPv6Refusals: --ip6 where it cannot be, an IPv6 subnet that
// overlaps another network's, and IPv6 --subnet entries without --ipv6,
// which Docker ignores.
func TestIPv6Refusals(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "v4only", IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:9::/64")}, {Subnet: mustPrefix("10.30.0.0/24")}}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := r.c.Network("v4only"); n.IPv6 != nil {
		t.Errorf("v4only has IPv6 %+v without EnableIPv6", n.IPv6)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "auto6", EnableIPv6: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "user6", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:7::/64")}}}); err != nil {
		t.Fatal(err)
	}
	_, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "clash", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:7::/80")}}})
	if errdefs.KindOf(err) != errdefs.KindForbidden {
		t.Errorf("overlapping IPv6 subnet: %v, want Forbidden", err)
	}
	sb := r.sandbox(t, "c1")
	for _, tc := range []struct {
		net  string
		ip6  string
		kind errdefs.Kind
	}{
		{"v4only", "fd00:9::5", errdefs.KindInvalid},
		{"auto6", "fd00:8::5", errdefs.KindInvalid}, // outside the subnet from the pools
		{"bridge", "fd00:7::5", errdefs.KindInvalid},
		{"user6", "fd00:8::5", errdefs.KindInvalid},
	} {
		ip6 := tc.ip6
		if _, err := r.c.Join(ctx, sb.ID, tc.net, JoinRequest{ContainerID: "c1", Name: "c1", IPv6: netip.MustParseAddr(ip6)}); errdefs.KindOf(err) != tc.kind {
			t.Errorf("--ip6 %s on %s: %v, want kind %v", ip6, tc.net, err, tc.kind)
		}
	}
	if eps := r.c.Endpoints(mustNetworkID(t, r, "user6")); len(eps) != 0 {
		t.Errorf("refused joins left endpoints: %v", eps)
	}
	// Docker 29.1: one in a subnet from the pools is taken.
	n, _ := r.c.Network("auto6")
	ip6 := n.IPv6.Subnet.Addr().Next().Next().Next()
	if ep := r.join(t, sb, "auto6", JoinRequest{ContainerID: "c1", Name: "c1", IPv6: ip6}); ep.Address6.Addr() != ip6 || !ep.StaticIP6 {
		t.Errorf("--ip6 %s on auto6: %v static %v", ip6, ep.Address6, ep.StaticIP6)
	}
}

// TestIPv6GatewaySelection: each family's gateway is the first endpoint
// with that family's gateway, ranked by priority, then dual stack, then
// name, as Docker 29.4.1's getGatewayEndpoint: an IPv4-only network of
// higher priority keeps the IPv4 route and ports beside dual-stack
// networks, which take the IPv6 ones; at the same priority a dual-stack
// network is the gateway of both. Routes and ports move per family as
// gateways leave.
func TestIPv6GatewaySelection(t *testing.T) {
	r := newPortRigWith(t, true, false)
	ctx := context.Background()
	for _, req := range []CreateRequest{
		{Name: "a-v4", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.40.0.0/24")}}},
		{Name: "b-dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:b::/64")}, {Subnet: mustPrefix("10.41.0.0/24")}}},
		{Name: "c-dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:c::/64")}, {Subnet: mustPrefix("10.42.0.0/24")}}},
	} {
		if _, err := r.c.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	routes := func(ep *Endpoint, want4, want6 string) {
		t.Helper()
		r.drv.mu.Lock()
		s := r.drv.veths[ep.HostIfName]
		r.drv.mu.Unlock()
		if got4, got6 := addrOrNone(s.Gateway), addrOrNone(s.Gateway6); got4 != want4 || got6 != want6 {
			t.Errorf("join of %s: Gateway %s Gateway6 %s, want %s %s", ep.IfName, got4, got6, want4, want6)
		}
	}
	// ports checks which network's endpoint publishes each side of 8080.
	ports := func(sb *Sandbox, when, on4, on6 string) {
		t.Helper()
		for _, a := range r.c.Attachments(sb.ID) {
			var want []string
			if a.Network.Name == on4 {
				want = append(want, "0.0.0.0:8080->80/tcp")
			}
			if a.Network.Name == on6 {
				want = append(want, ":::8080->80/tcp")
			}
			var got []string
			for _, m := range a.Endpoint.Ports {
				got = append(got, m.String())
			}
			slices.Sort(got) // "0.0.0.0" before ":::"
			if !slices.Equal(got, want) {
				t.Errorf("%s: %s publishes %q, want %q", when, a.Network.Name, got, want)
			}
		}
	}
	sb := r.sandbox(t, "c1")
	a := r.join(t, sb, "a-v4", JoinRequest{ContainerID: "c1", Name: "c1", GwPriority: 10,
		Ports: []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080}}})
	routes(a, "10.40.0.1", "none")
	ports(sb, "a-v4 alone", "a-v4", "a-v4") // [::] proxied to its IPv4 address
	c := r.join(t, sb, "c-dual", JoinRequest{ContainerID: "c1", Name: "c1"})
	routes(c, "none", "fd00:c::1") // a-v4's priority keeps the IPv4 route
	ports(sb, "c-dual joined", "a-v4", "c-dual")
	b := r.join(t, sb, "b-dual", JoinRequest{ContainerID: "c1", Name: "c1"})
	routes(b, "none", "fd00:b::1") // b sorts before c
	ports(sb, "b-dual joined", "a-v4", "b-dual")
	if got := r.ports.forwarded[HostPort{Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 8080}]; got.Addr() != b.Address6.Addr() {
		t.Errorf("[::]:8080 forwarded to %v, want b-dual's %v", got, b.Address6.Addr())
	}
	r.drv.gateways = nil
	if err := r.c.Leave(ctx, sb.ID, "b-dual"); err != nil {
		t.Fatal(err)
	}
	if want := []string{c.IfName + " via fd00:c::1"}; !slices.Equal(r.drv.gateways, want) {
		t.Errorf("after b-dual left: SetGateway %v, want %v", r.drv.gateways, want)
	}
	ports(sb, "b-dual left", "a-v4", "c-dual")
	r.drv.gateways = nil
	if err := r.c.Leave(ctx, sb.ID, "a-v4"); err != nil {
		t.Fatal(err)
	}
	if want := []string{c.IfName + " via 10.42.0.1"}; !slices.Equal(r.drv.gateways, want) {
		t.Errorf("after a-v4 left: SetGateway %v, want %v", r.drv.gateways, want)
	}
	ports(sb, "a-v4 left", "c-dual", "c-dual")
	r.drv.gateways = nil
	if err := r.c.Leave(ctx, sb.ID, "c-dual"); err != nil {
		t.Fatal(err)
	}
	if len(r.drv.gateways) != 0 {
		t.Errorf("the last gateway left: SetGateway %v, want none", r.drv.gateways)
	}
	if n := r.ports.count(); n != 0 || len(r.fw.portList()) != 0 {
		t.Errorf("after the last leave: %d host ports held, firewall %v", n, r.fw.portList())
	}

	// At the same priority a dual-stack network is the gateway of both,
	// though a-v4 sorts first by name.
	sb2 := r.sandbox(t, "c2")
	r.join(t, sb2, "a-v4", JoinRequest{ContainerID: "c2", Name: "c2"})
	routes(r.join(t, sb2, "c-dual", JoinRequest{ContainerID: "c2", Name: "c2"}), "10.42.0.1", "fd00:c::1")
}

func addrOrNone(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}

func mustNetworkID(t *testing.T, r *rig, name string) string {
	t.Helper()
	n, err := r.c.Network(name)
	if err != nil {
		t.Fatal(err)
	}
	return n.ID
}

// TestIPv6TurnedOffInTheContainer: a container with IPv6 off gets no
// IPv6 address or route on a network with IPv6, as moby's
// CreateOptionDisableIPv6, and its name answers no AAAA.
func TestIPv6TurnedOffInTheContainer(t *testing.T) {
	r := newRig(t)
	if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "dual", EnableIPv6: true}); err != nil {
		t.Fatal(err)
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "dual", JoinRequest{ContainerID: "c1", Name: "off", NoIPv6: true})
	if ep.Address6.IsValid() || ep.Gateway6.IsValid() || !ep.Address.IsValid() {
		t.Errorf("endpoint %v %v gw6 %v: want IPv4 only", ep.Address, ep.Address6, ep.Gateway6)
	}
	if s := r.drv.veths[ep.HostIfName]; s.Address6.IsValid() || s.Gateway6.IsValid() {
		t.Errorf("driver spec has IPv6: %v %v", s.Address6, s.Gateway6)
	}
	if got, _ := r.c.Resolve(sb.ID, "off"); !slices.Equal(got, []netip.Addr{ep.Address.Addr()}) {
		t.Errorf("Resolve(off) = %v, want its IPv4 address only", got)
	}
}

// TestFirewallPortsPerFamily: a dual-stack endpoint's IPv6 mappings go
// to the firewall with its IPv6 address (DNAT, as Docker's ip6tables);
// an IPv4-only endpoint's IPv6 mappings stay the forwarder's alone.
func TestFirewallPortsPerFamily(t *testing.T) {
	any4, any6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	ports := []PortMapping{
		{Proto: "tcp", HostIP: any4, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: any6, HostPort: 8080, Port: 80},
		{Proto: "udp", HostIP: netip.MustParseAddr("2001:db8::5"), HostPort: 5353, Port: 53},
	}
	dual := &Endpoint{Address: mustPrefix("10.1.0.2/24"), Address6: mustPrefix("fd00:1::2/64"), Ports: ports}
	got := firewallPorts(dual, portFamilies{})
	want := []firewall.PortMapping{
		{Proto: firewall.TCP, HostIP: any4, HostPort: 8080, Addr: netip.MustParseAddr("10.1.0.2"), Port: 80},
		{Proto: firewall.TCP, HostIP: any6, HostPort: 8080, Addr: netip.MustParseAddr("fd00:1::2"), Port: 80},
		{Proto: firewall.UDP, HostIP: netip.MustParseAddr("2001:db8::5"), HostPort: 5353, Addr: netip.MustParseAddr("fd00:1::2"), Port: 53},
	}
	if !slices.Equal(got, want) {
		t.Errorf("dual stack: %v, want %v", got, want)
	}
	v4 := &Endpoint{Address: mustPrefix("10.1.0.3/24"), Ports: ports}
	if got := firewallPorts(v4, portFamilies{}); len(got) != 1 || got[0].Addr != netip.MustParseAddr("10.1.0.3") {
		t.Errorf("IPv4 only: %v, want the IPv4 mapping alone", got)
	}

	// With direct routing open in IPv4: each container side once, as a
	// routed element, however many host ports lead to it; none in IPv6.
	dual.Ports = append(ports, PortMapping{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 9090, Port: 80})
	got = firewallPorts(dual, portFamilies{v4: true})
	side := firewall.PortMapping{Proto: firewall.TCP, Addr: netip.MustParseAddr("10.1.0.2"), Port: 80, Routed: true}
	if n := len(got); n != 5 || got[n-1] != side || slices.Contains(got[:n-1], side) {
		t.Errorf("direct routing in IPv4: %v, want the four mappings and %v once", got, side)
	}
	got = firewallPorts(dual, portFamilies{v6: true})
	if n := len(got); n != 6 || !got[4].Routed || got[4].Addr != netip.MustParseAddr("fd00:1::2") || got[4].Proto != firewall.TCP ||
		!got[5].Routed || got[5].Proto != firewall.UDP || got[5].Port != 53 {
		t.Errorf("direct routing in IPv6: %v, want the four mappings and the two IPv6 container sides", got)
	}
}

// TestUnpairedIPv6AddressAnnounces: an --ip6 that is not the address the
// endpoint's IPv4 address pairs with breaks the MAC-per-address rule for
// IPv6 neighbours, so that join and every later one on the network
// announce (gratuitous ARP and unsolicited NA), as a MAC of the user's does.
func TestUnpairedIPv6AddressAnnounces(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "dual", EnableIPv6: true, IPAM: []IPAMRequest{
		{Subnet: mustPrefix("10.50.0.0/24")}, {Subnet: mustPrefix("fd00:50::/64")}}}); err != nil {
		t.Fatal(err)
	}
	paired := r.join(t, r.sandbox(t, "c1"), "dual", JoinRequest{ContainerID: "c1", Name: "c1"})
	if paired.Address6 != mustPrefix("fd00:50::2/64") || paired.Announce {
		t.Errorf("paired join: %v announce %v, want fd00:50::2/64 without announcing", paired.Address6, paired.Announce)
	}
	unpaired := r.join(t, r.sandbox(t, "c2"), "dual", JoinRequest{ContainerID: "c2", Name: "c2", IPv6: netip.MustParseAddr("fd00:50::99")})
	if !unpaired.Announce {
		t.Error("an unpaired --ip6 join does not announce")
	}
	if n, _ := r.c.Network("dual"); n.MACsFromAddresses {
		t.Error("the network still counts on MACs from addresses")
	}
	later := r.join(t, r.sandbox(t, "c3"), "dual", JoinRequest{ContainerID: "c3", Name: "c3"})
	if !later.Announce {
		t.Error("a later paired join does not announce, though a neighbour may hold a stale entry")
	}
	if !pairedAddress6(&Network{}, &Endpoint{}) {
		t.Error("an endpoint without IPv6 counts as unpaired")
	}
}

// TestDefaultBridgeIPv6: the daemon's --ipv6 and --fixed-cidr-v6 are
// applied to the default bridge at every start, as dockerd makes its
// default bridge again from its options: on, a subnet of the user's, off.
func TestDefaultBridgeIPv6(t *testing.T) {
	r := newRig(t)
	bridge := func() *Network {
		t.Helper()
		n, err := r.c.Network("bridge")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if bridge().IPv6 != nil {
		t.Fatal("the default bridge has IPv6 without --ipv6")
	}
	r.tweak = func(c *Config) { c.DefaultBridgeIPv6 = true }
	r.restart(t)
	n := bridge()
	if n.IPv6 == nil || n.IPv6.Subnet.Bits() != 64 || n.IPv6.UserSubnet {
		t.Fatalf("--ipv6: default bridge IPv6 %+v, want a /64 of the pool", n.IPv6)
	}
	if got := r.drv.bridges[n.Bridge.Name].Gateway6; got.Addr() != n.IPv6.Gateway {
		t.Errorf("bridge spec Gateway6 %v, want %v", got, n.IPv6.Gateway)
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "bridge", JoinRequest{ContainerID: "c1", Name: "c1"})
	if !n.IPv6.Subnet.Contains(ep.Address6.Addr()) || ep.Gateway6 != n.IPv6.Gateway {
		t.Errorf("endpoint on the default bridge: %v via %v", ep.Address6, ep.Gateway6)
	}
	if _, err := r.c.Join(context.Background(), r.sandbox(t, "c2").ID, "bridge", JoinRequest{ContainerID: "c2", Name: "c2", IPv6: n.IPv6.Subnet.Addr().Next().Next().Next()}); errdefs.KindOf(err) != errdefs.KindInvalid {
		t.Errorf("--ip6 on the default bridge: %v, want Invalid", err)
	}
	auto := n.IPv6.Subnet

	r.restart(t) // the same options: nothing changes, the address stays held
	if got := bridge().IPv6.Subnet; got != auto {
		t.Errorf("a restart moved the default bridge from %v to %v", auto, got)
	}
	if ep3 := r.join(t, r.sandbox(t, "c3"), "bridge", JoinRequest{ContainerID: "c3", Name: "c3"}); ep3.Address6 == ep.Address6 {
		t.Errorf("after a restart %v was handed out twice", ep.Address6)
	}

	// While containers are on it, the bridge keeps its settings, as
	// dockerd does with live sandboxes: their addresses rest on them.
	r.tweak = func(c *Config) { c.DefaultBridgeIPv6, c.DefaultBridgeSubnet6 = true, mustPrefix("fd00:dead::/64") }
	r.restart(t)
	if got := bridge().IPv6; got == nil || got.Subnet != auto {
		t.Errorf("--fixed-cidr-v6 with containers on the bridge: %+v, want %v kept", got, auto)
	}
	for _, sb := range r.c.sandboxesOf("c1", "c3") {
		if err := r.c.DeleteSandbox(context.Background(), sb); err != nil {
			t.Fatal(err)
		}
	}
	r.restart(t)
	if got := bridge().IPv6; got == nil || got.Subnet != mustPrefix("fd00:dead::/64") || got.Gateway != netip.MustParseAddr("fd00:dead::1") || got.IPRange != got.Subnet {
		t.Errorf("--fixed-cidr-v6: %+v, want fd00:dead::/64 as subnet and ip-range", got)
	}
	// --fixed-cidr-v6 dropped: the subnet and gateway stay, the range
	// goes (dockerd's selectBIP takes the bridge's address alone).
	r.tweak = func(c *Config) { c.DefaultBridgeIPv6 = true }
	r.restart(t)
	if got := bridge().IPv6; got == nil || got.Subnet != mustPrefix("fd00:dead::/64") || got.Gateway != netip.MustParseAddr("fd00:dead::1") || got.IPRange.IsValid() {
		t.Errorf("--fixed-cidr-v6 dropped: %+v, want fd00:dead::/64 with no ip-range", got)
	}

	r.tweak = nil
	r.restart(t)
	if got := bridge().IPv6; got != nil {
		t.Errorf("without --ipv6 the default bridge kept %+v", got)
	}
	if fn := r.fw.nets[bridge().Bridge.Name]; fn.Subnet6.IsValid() {
		t.Errorf("the firewall still has %v for the default bridge", fn.Subnet6)
	}
}

// TestDefaultBridgeBIP6: dockerd's --bip6 is the default bridge's IPv6
// subnet and its own address on it; --fixed-cidr-v6 then the range its
// containers get addresses from (getDefaultBridgeIPAMConf).
func TestDefaultBridgeBIP6(t *testing.T) {
	r := newRig(t)
	r.tweak = func(c *Config) { c.DefaultBridgeIPv6, c.DefaultBridgeBIP6 = true, mustPrefix("fd00:66::fe/64") }
	r.restart(t)
	n, err := r.c.Network("bridge")
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv6 == nil || n.IPv6.Subnet != mustPrefix("fd00:66::/64") || n.IPv6.Gateway != netip.MustParseAddr("fd00:66::fe") || n.IPv6.IPRange.IsValid() {
		t.Fatalf("--bip6: default bridge IPv6 %+v", n.IPv6)
	}
	if got := r.drv.bridges[n.Bridge.Name].Gateway6; got != mustPrefix("fd00:66::fe/64") {
		t.Errorf("bridge spec Gateway6 %v, want fd00:66::fe/64", got)
	}
	r.restart(t) // the same options: nothing changes
	if again, _ := r.c.Network("bridge"); !sameIPConfig(again.IPv6, n.IPv6) {
		t.Errorf("a restart changed %+v to %+v", n.IPv6, again.IPv6)
	}
	r.tweak = func(c *Config) {
		c.DefaultBridgeIPv6, c.DefaultBridgeBIP6, c.DefaultBridgeSubnet6 = true, mustPrefix("fd00:66::fe/64"), mustPrefix("fd00:66::100/120")
	}
	r.restart(t)
	n, _ = r.c.Network("bridge")
	if n.IPv6 == nil || n.IPv6.Subnet != mustPrefix("fd00:66::/64") || n.IPv6.IPRange != mustPrefix("fd00:66::100/120") || n.IPv6.Gateway != netip.MustParseAddr("fd00:66::fe") {
		t.Fatalf("--bip6 with --fixed-cidr-v6: %+v", n.IPv6)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "c1"})
	if !n.IPv6.IPRange.Contains(ep.Address6.Addr()) || ep.Address6.Bits() != 64 || ep.Gateway6 != n.IPv6.Gateway {
		t.Errorf("endpoint %v via %v, want one of fd00:66::100/120 as a /64, via fd00:66::fe", ep.Address6, ep.Gateway6)
	}
	for _, sb := range r.c.sandboxesOf("c1") {
		if err := r.c.DeleteSandbox(context.Background(), sb); err != nil {
			t.Fatal(err)
		}
	}
	// --bip6 dropped, as dockerd's selectBIP takes the bridge's address:
	// a --fixed-cidr-v6 inside its subnet is the range alone; a larger
	// one widens the subnet, the address staying; none drops the range.
	for _, tc := range []struct {
		fixed           string
		subnet, ipRange string
		gateway         string
	}{
		{"fd00:66::100/120", "fd00:66::/64", "fd00:66::100/120", "fd00:66::fe"},
		{"fd00:66::/64", "fd00:66::/64", "fd00:66::/64", "fd00:66::fe"},
		{"fd00:66::/56", "fd00:66::/56", "fd00:66::/56", "fd00:66::fe"},
		{"", "fd00:66::/56", "", "fd00:66::fe"},
	} {
		r.tweak = func(c *Config) {
			c.DefaultBridgeIPv6 = true
			if tc.fixed != "" {
				c.DefaultBridgeSubnet6 = mustPrefix(tc.fixed)
			}
		}
		r.restart(t)
		got, _ := r.c.Network("bridge")
		want := &IPConfig{Subnet: mustPrefix(tc.subnet), Gateway: netip.MustParseAddr(tc.gateway)}
		if tc.ipRange != "" {
			want.IPRange = mustPrefix(tc.ipRange)
		}
		if !sameIPConfig(got.IPv6, want) {
			t.Errorf("--fixed-cidr-v6 %q after --bip6: %s, want %s", tc.fixed, ipConfigString(got.IPv6), ipConfigString(want))
		}
	}
}

// sandboxesOf returns the IDs of the sandboxes of the given containers.
func (c *Controller) sandboxesOf(containers ...string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for id, sb := range c.sandboxes {
		if slices.Contains(containers, sb.ContainerID) {
			out = append(out, id)
		}
	}
	return out
}

// TestDefaultBridgeIPv6Edges: settings that cannot be applied (the
// subnet overlaps a user network's) leave the bridge as it was and the
// daemon working; endpoints whose namespaces are gone (a reboot) do not
// hold a change back; a priority at the ends of int still ranks right.
func TestDefaultBridgeIPv6Edges(t *testing.T) {
	r := newRig(t)
	r.tweak = func(c *Config) { c.DefaultBridgeIPv6 = true }
	r.restart(t)
	if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "web", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:1::/64")}}}); err != nil {
		t.Fatal(err)
	}
	before, _ := r.c.Network("bridge")
	r.tweak = func(c *Config) { c.DefaultBridgeIPv6, c.DefaultBridgeSubnet6 = true, mustPrefix("fd00:1::/64") }
	r.restart(t)
	after, _ := r.c.Network("bridge")
	if after.IPv6 == nil || after.IPv6.Subnet != before.IPv6.Subnet {
		t.Errorf("an overlapping --fixed-cidr-v6 changed the bridge: %+v, want %v kept", after.IPv6, before.IPv6.Subnet)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "bridge", JoinRequest{ContainerID: "c1", Name: "c1"}) // no panic: the space is there
	if !before.IPv6.Subnet.Contains(ep.Address6.Addr()) {
		t.Errorf("join after a refused change: %v", ep.Address6)
	}

	// A "reboot": the namespaces are gone, the records are not.
	r.sbs.mu.Lock()
	clear(r.sbs.ids)
	r.sbs.mu.Unlock()
	r.tweak = func(c *Config) { c.DefaultBridgeIPv6, c.DefaultBridgeSubnet6 = true, mustPrefix("fd00:2::/64") }
	r.restart(t)
	if got, _ := r.c.Network("bridge"); got.IPv6 == nil || got.IPv6.Subnet != mustPrefix("fd00:2::/64") {
		t.Errorf("after a reboot the change waited for dead containers: %+v", got.IPv6)
	}
	if spec := r.drv.bridges[after.Bridge.Name]; !slices.Contains(spec.StaleGateways, netip.PrefixFrom(before.IPv6.Gateway, 64)) {
		t.Errorf("the driver was not told to drop the old gateway: %+v", spec)
	}

	// gw-priority at the ends of int (moby takes any int).
	r2 := newRig(t)
	for _, name := range []string{"low", "high"} {
		if _, err := r2.c.CreateNetwork(context.Background(), CreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	sb := r2.sandbox(t, "c1")
	r2.join(t, sb, "low", JoinRequest{ContainerID: "c1", Name: "c1", GwPriority: math.MinInt})
	high := r2.join(t, sb, "high", JoinRequest{ContainerID: "c1", Name: "c1", GwPriority: 5})
	if s := r2.drv.veths[high.HostIfName]; !s.Gateway.IsValid() {
		t.Error("priority 5 lost to math.MinInt (overflow in the ranking)")
	}
}

// TestIPv6OnlyNetwork: --ipv4=false with --ipv6 makes a network with no
// IPv4 subnet (an IPv4 --subnet is ignored, as libnetwork allocates no
// pool), a bridge with no IPv4 gateway and IPv6 rules alone. Its
// endpoints get an IPv6 address, gateway and route and no IPv4 ones, a
// random MAC that every join announces, names that answer AAAA alone;
// --ip is refused in moby's words, and so is a container with IPv6 off.
// IPv4 off without IPv6 is refused as the bridge driver refuses it.
func TestIPv6OnlyNetwork(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "nofamily", NoIPv4: true}); errdefs.KindOf(err) != errdefs.KindInvalid {
		t.Errorf("IPv4 off, IPv6 off: %v, want Invalid", err)
	}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "six", NoIPv4: true, EnableIPv6: true, IPAM: []IPAMRequest{
		{Subnet: mustPrefix("10.60.0.0/24")}, {Subnet: mustPrefix("fd00:60::/64")}}})
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv4 != nil || n.IPv6 == nil || n.IPv6.Subnet != mustPrefix("fd00:60::/64") || n.MACsFromAddresses {
		t.Fatalf("six: IPv4 %+v IPv6 %+v MACsFromAddresses %v", n.IPv4, n.IPv6, n.MACsFromAddresses)
	}
	if br := r.drv.bridges[n.Bridge.Name]; br.Gateway.IsValid() || br.Gateway6 != mustPrefix("fd00:60::1/64") {
		t.Errorf("bridge spec %+v", br)
	}
	if fn := r.fw.nets[n.Bridge.Name]; fn.Subnet.IsValid() || fn.Subnet6 != n.IPv6.Subnet {
		t.Errorf("firewall network %+v", fn)
	}
	// The IPv4 subnet it was given stays free for another network.
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "four", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.60.0.0/24")}}}); err != nil {
		t.Errorf("the ignored IPv4 subnet is taken: %v", err)
	}

	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "six", JoinRequest{ContainerID: "c1", Name: "web"})
	if ep.Address.IsValid() || ep.Gateway.IsValid() || ep.Address6 != mustPrefix("fd00:60::2/64") || ep.Gateway6 != netip.MustParseAddr("fd00:60::1") {
		t.Fatalf("endpoint %v gw %v, %v gw6 %v", ep.Address, ep.Gateway, ep.Address6, ep.Gateway6)
	}
	if len(ep.MAC) != 6 || ep.MAC[0]&3 != 2 || !ep.Announce {
		t.Errorf("MAC %v announce %v, want a random unicast local MAC, announced", ep.MAC, ep.Announce)
	}
	spec := r.drv.veths[ep.HostIfName]
	if spec.Address.IsValid() || spec.Gateway.IsValid() || spec.Address6 != ep.Address6 || spec.Gateway6 != ep.Gateway6 || !spec.Announce {
		t.Errorf("driver spec %+v", spec)
	}
	if got, _ := r.c.Resolve(sb.ID, "web"); !slices.Equal(got, []netip.Addr{ep.Address6.Addr()}) {
		t.Errorf("Resolve(web) = %v, want the IPv6 address alone", got)
	}
	sb2 := r.sandbox(t, "c2")
	if _, err := r.c.Join(ctx, sb2.ID, "six", JoinRequest{ContainerID: "c2", Name: "c2", IPv4: netip.MustParseAddr("10.60.0.5")}); errdefs.KindOf(err) != errdefs.KindInvalid {
		t.Errorf("--ip on an IPv6-only network: %v, want Invalid", err)
	}
	if _, err := r.c.Join(ctx, sb2.ID, "six", JoinRequest{ContainerID: "c2", Name: "c2", NoIPv6: true}); errdefs.KindOf(err) != errdefs.KindInvalid {
		t.Errorf("a container with IPv6 off: %v, want Invalid", err)
	}
	ep2 := r.join(t, sb2, "six", JoinRequest{ContainerID: "c2", Name: "c2"})
	if ep2.Address6 != mustPrefix("fd00:60::3/64") || slices.Equal(ep2.MAC, ep.MAC) {
		t.Errorf("second endpoint %v MAC %v (first's %v)", ep2.Address6, ep2.MAC, ep.MAC)
	}
	if eps := r.c.Endpoints(n.ID); len(eps) != 2 || eps[0].ID != ep.ID {
		t.Errorf("Endpoints not sorted by IPv6 address: %v", eps)
	}

	// A restart keeps it IPv6-only and its addresses held.
	r.restart(t)
	if again, err := r.c.Network("six"); err != nil || again.IPv4 != nil || again.IPv6 == nil {
		t.Fatalf("after a restart: %+v %v", again, err)
	}
	sb3 := r.sandbox(t, "c3")
	if ep3 := r.join(t, sb3, "six", JoinRequest{ContainerID: "c3", Name: "c3"}); ep3.Address6 != mustPrefix("fd00:60::4/64") {
		t.Errorf("after a restart: %v, want fd00:60::4/64", ep3.Address6)
	}
}

// TestSubnetOfASizeFromThePools: --subnet 0.0.0.0/26 and ::/120 ask the
// default pools for a subnet of that size (Docker 29, moby ea0d934ff2):
// the network gets the first free one, which it keeps across a restart,
// with the gateway the daemon picks; 0.0.0.0/0 is the pools' own size; a
// gateway, range or aux address with it, and a size no pool holds, are
// refused.
func TestSubnetOfASizeFromThePools(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	first, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "first"})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "small", EnableIPv6: true,
		IPAM: []IPAMRequest{{Subnet: mustPrefix("0.0.0.0/26")}, {Subnet: mustPrefix("::/120")}}})
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv4.Subnet.Bits() != 26 || n.IPv4.Subnet.Addr().IsUnspecified() || n.IPv4.Subnet.Overlaps(first.IPv4.Subnet) || n.IPv4.UserSubnet {
		t.Errorf("0.0.0.0/26 gave %+v beside first's %v", n.IPv4, first.IPv4.Subnet)
	}
	if n.IPv4.Gateway != n.IPv4.Subnet.Addr().Next() {
		t.Errorf("0.0.0.0/26: gateway %v in %v", n.IPv4.Gateway, n.IPv4.Subnet)
	}
	if n.IPv6 == nil || n.IPv6.Subnet.Bits() != 120 || n.IPv6.Subnet.Addr().IsUnspecified() || !n.IPv6.Subnet.Addr().IsPrivate() {
		t.Errorf("::/120 gave %+v", n.IPv6)
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "small", JoinRequest{ContainerID: "c1", Name: "c1"})
	if !n.IPv4.Subnet.Contains(ep.Address.Addr()) || !n.IPv6.Subnet.Contains(ep.Address6.Addr()) {
		t.Errorf("endpoint %v %v outside %v %v", ep.Address, ep.Address6, n.IPv4.Subnet, n.IPv6.Subnet)
	}
	next, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "next", IPAM: []IPAMRequest{{Subnet: mustPrefix("0.0.0.0/26")}}})
	if err != nil {
		t.Fatal(err)
	}
	if next.IPv4.Subnet.Overlaps(n.IPv4.Subnet) || next.IPv4.Subnet.Bits() != 26 {
		t.Errorf("a second 0.0.0.0/26 gave %v beside %v", next.IPv4.Subnet, n.IPv4.Subnet)
	}
	whole, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "whole", IPAM: []IPAMRequest{{Subnet: mustPrefix("0.0.0.0/0")}}})
	if err != nil {
		t.Fatal(err)
	}
	if whole.IPv4.Subnet.Bits() != first.IPv4.Subnet.Bits() {
		t.Errorf("0.0.0.0/0 gave %v, want the pools' own size like %v", whole.IPv4.Subnet, first.IPv4.Subnet)
	}
	r.restart(t)
	if again, err := r.c.Network("small"); err != nil || again.IPv4.Subnet != n.IPv4.Subnet || again.IPv6.Subnet != n.IPv6.Subnet {
		t.Errorf("after a restart small has %+v, %v; want %v and %v", again, err, n.IPv4.Subnet, n.IPv6.Subnet)
	}
	for _, tc := range []struct {
		name string
		ir   IPAMRequest
	}{
		{"gateway", IPAMRequest{Subnet: mustPrefix("0.0.0.0/24"), Gateway: netip.MustParseAddr("0.0.0.1")}},
		{"range", IPAMRequest{Subnet: mustPrefix("0.0.0.0/24"), IPRange: mustPrefix("0.0.0.0/25")}},
		{"aux", IPAMRequest{Subnet: mustPrefix("0.0.0.0/24"), AuxAddresses: map[string]netip.Addr{"a": netip.MustParseAddr("0.0.0.5")}}},
		{"size no pool holds", IPAMRequest{Subnet: mustPrefix("0.0.0.0/4")}},
		{"a /32", IPAMRequest{Subnet: mustPrefix("0.0.0.0/32")}},
	} {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "bad", IPAM: []IPAMRequest{tc.ir}}); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), tc.ir.Subnet.String()) && !strings.HasPrefix(err.Error(), "invalid address pool") {
			t.Errorf("%s: %v, want an invalid-request error naming %v", tc.name, err, tc.ir.Subnet)
		}
	}
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "bad6", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("::/127")}}}); !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "::/127") {
		t.Errorf("::/127: %v, want an invalid-request error naming it", err)
	}
}

// TestStartSettlesAnOlderGatewayChoice: a daemon that chose gateways as
// Docker 28 (the dual-stack network took both families, and the ports,
// over an IPv4-only one of higher priority) left records that this one
// chooses otherwise: the start moves the IPv4 ports and the IPv4 route
// to the IPv4-only network.
func TestStartSettlesAnOlderGatewayChoice(t *testing.T) {
	r := newPortRigWith(t, true, false)
	ctx := context.Background()
	for _, req := range []CreateRequest{
		{Name: "a-v4", IPAM: []IPAMRequest{{Subnet: mustPrefix("10.40.0.0/24")}}},
		{Name: "c-dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:c::/64")}, {Subnet: mustPrefix("10.42.0.0/24")}}},
	} {
		if _, err := r.c.CreateNetwork(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	sb := r.sandbox(t, "c1")
	a := r.join(t, sb, "a-v4", JoinRequest{ContainerID: "c1", Name: "c1", GwPriority: 10,
		Ports: []PortRequest{{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080}}})
	c := r.join(t, sb, "c-dual", JoinRequest{ContainerID: "c1", Name: "c1"})
	r.c.flushReady()
	olda, oldc := cloneEndpoint(endpointOf(t, r.rig, a.ID)), cloneEndpoint(endpointOf(t, r.rig, c.ID))
	olda.Ports = nil
	oldc.Ports = []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: netip.IPv6Unspecified(), HostPort: 8080, Port: 80},
	}
	putEndpoints(t, r.rig, olda, oldc)
	r.drv.gateways = nil
	r.restartWith(t, newFakeHolder())
	want := map[string][]string{"a-v4": {"0.0.0.0:8080->80/tcp"}, "c-dual": {":::8080->80/tcp"}}
	if diff := cmp.Diff(want, portsOn(t, r, sb)); diff != "" {
		t.Errorf("after the start (-want +got):\n%s", diff)
	}
	if route := a.IfName + " via 10.40.0.1"; !slices.Contains(r.drv.gateways, route) {
		t.Errorf("SetGateway calls at the start %q, want %q", r.drv.gateways, route)
	}
}

// TestUnusedSubnetsKept: a --subnet of a family the network has off (an
// IPv6 one without --ipv6) allocates nothing and is kept, across a
// restart, for inspect to show, as libnetwork keeps it.
func TestUnusedSubnetsKept(t *testing.T) {
	r := newRig(t)
	n, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "nov6", IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:3::/64")}}})
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv6 != nil || n.IPv4 == nil || len(n.UnusedIPAM) != 1 || n.UnusedIPAM[0].Subnet != mustPrefix("fd00:3::/64") {
		t.Fatalf("network %+v, IPv4 %+v, IPv6 %+v", n, n.IPv4, n.IPv6)
	}
	r.restart(t)
	if n, _ = r.c.Network("nov6"); len(n.UnusedIPAM) != 1 {
		t.Errorf("after a restart: unused %+v", n.UnusedIPAM)
	}
}
