package network

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestGatewayModeOptions(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	opts := map[string]string{OptGatewayModeIPv4: "nat-unprotected", OptGatewayModeIPv6: "routed"}
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "gw", EnableIPv6: true, Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if n.Bridge.GatewayMode4 != firewall.ModeNATUnprotected || n.Bridge.GatewayMode6 != firewall.ModeRouted {
		t.Errorf("modes %v, %v", n.Bridge.GatewayMode4, n.Bridge.GatewayMode6)
	}
	if diff := cmp.Diff(opts, n.Options); diff != "" {
		t.Errorf("options shown (-want +got):\n%s", diff)
	}
	fn := r.fw.nets[n.Bridge.Name]
	if fn.GatewayMode4 != firewall.ModeNATUnprotected || fn.GatewayMode6 != firewall.ModeRouted || fn.Gateway != n.IPv4.Gateway {
		t.Errorf("firewall network %+v", fn)
	}
	br, err := r.c.Network("bridge")
	if err != nil {
		t.Fatal(err)
	}
	if br.Bridge.GatewayMode4 != firewall.ModeNAT || br.Bridge.GatewayMode6 != firewall.ModeNAT {
		t.Errorf("default bridge modes %v, %v; want nat", br.Bridge.GatewayMode4, br.Bridge.GatewayMode6)
	}

	for _, tc := range []struct {
		opts     map[string]string
		internal bool
		want     string
	}{
		{map[string]string{OptGatewayModeIPv4: "bogus"}, false,
			"failed to parse com.docker.network.bridge.gateway_mode_ipv4 value: bogus (unknown gateway mode bogus)"},
		{map[string]string{OptGatewayModeIPv6: "NAT"}, false,
			"failed to parse com.docker.network.bridge.gateway_mode_ipv6 value: NAT (unknown gateway mode NAT)"},
		{map[string]string{OptGatewayModeIPv4: "isolated"}, false, "gateway mode 'isolated' can only be used for an internal network"},
		{map[string]string{OptGatewayModeIPv6: "isolated"}, false, "gateway mode 'isolated' can only be used for an internal network"},
	} {
		_, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "bad", EnableIPv6: true, Internal: tc.internal, Options: tc.opts})
		if errdefs.KindOf(err) != errdefs.KindInvalid || err.Error() != tc.want {
			t.Errorf("%v: %v; want invalid %q", tc.opts, err, tc.want)
		}
	}
}

// An isolated family gives the bridge no address in it, and IPAM keeps
// no gateway for it (moby's GetSkipGwAlloc); the other family is as it
// was.
func TestIsolatedFamilyHasNoBridgeAddress(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	n, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "iso", Internal: true, EnableIPv6: true,
		IPAM:    []IPAMRequest{{Subnet: mustPrefix("10.70.0.0/24")}, {Subnet: mustPrefix("fd00:70::/64")}},
		Options: map[string]string{OptGatewayModeIPv4: "isolated"}})
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv4.Gateway.IsValid() || n.IPv6.Gateway != netip.MustParseAddr("fd00:70::1") {
		t.Errorf("gateways %v, %v; want none, fd00:70::1", n.IPv4.Gateway, n.IPv6.Gateway)
	}
	spec := r.drv.bridges[n.Bridge.Name]
	if spec.Gateway.IsValid() || spec.Gateway6 != mustPrefix("fd00:70::1/64") || !spec.Isolated {
		t.Errorf("bridge spec %+v", spec)
	}
	if fn := r.fw.nets[n.Bridge.Name]; fn.Gateway.IsValid() || fn.GatewayMode4 != firewall.ModeIsolated {
		t.Errorf("firewall network %+v", fn)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "iso", JoinRequest{ContainerID: "c1", Name: "c1"})
	if !ep.Address.IsValid() || ep.Gateway.IsValid() || ep.Gateway6.IsValid() {
		t.Errorf("endpoint %v gw %v gw6 %v; want an address and no default route", ep.Address, ep.Gateway, ep.Gateway6)
	}

	// Isolated in both families: a bridge with no address at all.
	both, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "iso2", Internal: true, EnableIPv6: true,
		Options: map[string]string{OptGatewayModeIPv4: "isolated", OptGatewayModeIPv6: "isolated"}})
	if err != nil {
		t.Fatal(err)
	}
	if spec := r.drv.bridges[both.Bridge.Name]; spec.Gateway.IsValid() || spec.Gateway6.IsValid() || !spec.Isolated {
		t.Errorf("bridge spec %+v", spec)
	}
	// A restart keeps the modes and the missing gateway.
	r.restart(t)
	again, err := r.c.Network("iso")
	if err != nil {
		t.Fatal(err)
	}
	if again.Bridge.GatewayMode4 != firewall.ModeIsolated || again.IPv4.Gateway.IsValid() {
		t.Errorf("after a restart: mode %v gateway %v", again.Bridge.GatewayMode4, again.IPv4.Gateway)
	}
}

// routedRig is a port rig with IPv6 ports and a dual-stack network whose
// gateway modes are m4 and m6.
func routedRig(t *testing.T, m4, m6 string) *portRig {
	t.Helper()
	r := newPortRigWith(t, true, false)
	opts := map[string]string{}
	if m4 != "" {
		opts[OptGatewayModeIPv4] = m4
	}
	if m6 != "" {
		opts[OptGatewayModeIPv6] = m6
	}
	if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "net", EnableIPv6: true, Options: opts,
		IPAM: []IPAMRequest{{Subnet: mustPrefix("10.80.0.0/24")}, {Subnet: mustPrefix("fd00:80::/64")}}}); err != nil {
		t.Fatal(err)
	}
	return r
}

var (
	routedCtr  = netip.MustParseAddr("10.80.0.2")
	routedCtr6 = netip.MustParseAddr("fd00:80::2")
)

// Routed IPv6: the IPv4 side of each port is NATed as before (no IPv6
// twin held or forwarded), the IPv6 side holds no host port: [::]:0.
func TestRoutedIPv6Ports(t *testing.T) {
	r := routedRig(t, "", "routed")
	ctx := context.Background()
	v6any := netip.IPv6Unspecified()
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "net", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "udp", Port: 53},
		{Proto: "tcp", Port: 81, HostIP: netip.IPv6Loopback(), HostPortStart: 8081, HostPortEnd: 8081},
		{Proto: "tcp", Port: 82, HostIP: localIP, HostPortStart: 8082, HostPortEnd: 8082},
	}})
	want := []PortMapping{
		{Proto: "tcp", HostIP: anyIP, HostPort: 8080, Port: 80},
		{Proto: "udp", HostIP: anyIP, HostPort: 32768, Port: 53},
		{Proto: "tcp", HostIP: localIP, HostPort: 8082, Port: 82},
		{Proto: "tcp", HostIP: v6any, Port: 80},
		{Proto: "udp", HostIP: v6any, Port: 53},
		{Proto: "tcp", HostIP: v6any, Port: 81}, // ::1 ignored: NAT is off
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Fatalf("ports (-want +got):\n%s", diff)
	}
	if got := r.ports.count(); got != 3 || len(r.ports.forwarded) != 0 {
		t.Errorf("%d host ports held, %d forwarded; want the 3 IPv4 ones, none", got, len(r.ports.forwarded))
	}
	wantFW := []firewall.PortMapping{
		{Proto: firewall.TCP, Addr: routedCtr6, Port: 80, Routed: true},
		{Proto: firewall.UDP, Addr: routedCtr6, Port: 53, Routed: true},
		{Proto: firewall.TCP, Addr: routedCtr6, Port: 81, Routed: true},
		{Proto: firewall.TCP, HostPort: 8080, Addr: routedCtr, Port: 80},
		{Proto: firewall.TCP, HostIP: localIP, HostPort: 8082, Addr: routedCtr, Port: 82},
		{Proto: firewall.UDP, HostPort: 32768, Addr: routedCtr, Port: 53},
	}
	byString := cmpopts.SortSlices(func(a, b firewall.PortMapping) bool { return a.String() < b.String() })
	if diff := cmp.Diff(wantFW, r.fw.portList(), cmpAddr, byString); diff != "" {
		t.Errorf("firewall ports (-want +got):\n%s", diff)
	}
	// A restart holds the NATed ports again, and nothing for the routed.
	h := newFakeHolder()
	r.restartWith(t, h)
	if got := h.count(); got != 3 || len(h.forwarded) != 0 {
		t.Errorf("after a restart: %d held, %d forwarded", got, len(h.forwarded))
	}
	if err := r.c.Leave(ctx, sb.ID, "net"); err != nil {
		t.Fatal(err)
	}
	if n := len(r.fw.portList()); n != 0 || h.count() != 0 {
		t.Errorf("after Leave: %d firewall ports, %d held", n, h.count())
	}
}

// Routed IPv4: 0.0.0.0:0 whatever host address or port was asked for;
// the IPv6 side of a port on every address is NATed, held on [::] alone.
func TestRoutedIPv4Ports(t *testing.T) {
	r := routedRig(t, "routed", "")
	v6any := netip.IPv6Unspecified()
	ep := r.join(t, r.sandbox(t, "c1"), "net", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
		{Proto: "tcp", Port: 82, HostIP: localIP, HostPortStart: 8082, HostPortEnd: 8082},
	}})
	want := []PortMapping{
		{Proto: "tcp", HostIP: v6any, HostPort: 8080, Port: 80},
		{Proto: "tcp", HostIP: anyIP, Port: 80},
		{Proto: "tcp", HostIP: anyIP, Port: 82},
	}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Fatalf("ports (-want +got):\n%s", diff)
	}
	if got := r.ports.count(); got != 1 {
		t.Errorf("%d host ports held, want [::]:8080 alone", got)
	}
	fw := r.fw.portList()
	var routed []string
	for _, m := range fw {
		if m.Routed {
			routed = append(routed, m.String())
		}
	}
	slices.Sort(routed)
	if got := strings.Join(routed, " "); got != "routed->10.80.0.2:80/tcp routed->10.80.0.2:82/tcp" {
		t.Errorf("routed firewall ports %q", got)
	}
	if len(fw) != 3 {
		t.Errorf("firewall ports %v, want 2 routed and [::]:8080", fw)
	}
}

// Routed in both families: no host port at all.
func TestRoutedBothFamiliesHoldNothing(t *testing.T) {
	r := routedRig(t, "routed", "routed")
	ep := r.join(t, r.sandbox(t, "c1"), "net", JoinRequest{ContainerID: "c1", Name: "web", Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
	}})
	want := []PortMapping{{Proto: "tcp", HostIP: anyIP, Port: 80}, {Proto: "tcp", HostIP: netip.IPv6Unspecified(), Port: 80}}
	if diff := cmp.Diff(want, ep.Ports, cmpAddr); diff != "" {
		t.Fatalf("ports (-want +got):\n%s", diff)
	}
	if got := r.ports.count(); got != 0 {
		t.Errorf("%d host ports held", got)
	}
	if got := len(r.fw.portList()); got != 2 {
		t.Errorf("%d firewall ports, want 2 routed", got)
	}
}

// A dual-stack network routed in both families that is the IPv6 gateway
// alone (an IPv4-only network of higher priority is the IPv4 one) opens
// its IPv6 side only; the IPv4 network NATs the IPv4 side. When the
// IPv4-only network leaves, the routed network takes the IPv4 side too,
// routed.
func TestRoutedFamilyOnItsGatewayOnly(t *testing.T) {
	r := routedRig(t, "routed", "routed")
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "four"}); err != nil {
		t.Fatal(err)
	}
	sb := r.sandbox(t, "c1")
	r.join(t, sb, "four", JoinRequest{ContainerID: "c1", Name: "web", GwPriority: 10, Ports: []PortRequest{
		{Proto: "tcp", Port: 80, HostPortStart: 8080, HostPortEnd: 8080},
	}})
	r.join(t, sb, "net", JoinRequest{ContainerID: "c1", Name: "web"})
	want := map[string][]string{"four": {"0.0.0.0:8080->80/tcp"}, "net": {":::0->80/tcp"}}
	if diff := cmp.Diff(want, portsOn(t, r, sb)); diff != "" {
		t.Errorf("both joined (-want +got):\n%s", diff)
	}
	if err := r.c.Leave(ctx, sb.ID, "four"); err != nil {
		t.Fatal(err)
	}
	want = map[string][]string{"net": {"0.0.0.0:0->80/tcp", ":::0->80/tcp"}}
	if diff := cmp.Diff(want, portsOn(t, r, sb)); diff != "" {
		t.Errorf("the IPv4-only network left (-want +got):\n%s", diff)
	}
}
