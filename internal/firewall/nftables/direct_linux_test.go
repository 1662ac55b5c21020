package nftables

import (
	"context"
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
)

// TestDirectRoutingTraffic: the outside routes the container subnet
// through the host's eth0. A published port's container side answers it
// when the network trusts eth0 (by name or by a wildcard) or the daemon
// allows direct routing, with the client's own source address; an
// unpublished port never does; an interface the network does not trust
// is dropped in raw prerouting; and the published port still answers
// on the host's address throughout.
func TestDirectRoutingTraffic(t *testing.T) {
	w := newWorld(t)
	run(t, w.outside, "ip", "route", "add", "10.0.1.0/24", "via", "198.51.100.2")
	for _, addr := range []string{"0.0.0.0:80", "0.0.0.0:81"} {
		listenWhoami(t, w.c1, addr)
	}
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	ctx := context.Background()
	ports := []firewall.PortMapping{
		{Proto: firewall.TCP, HostPort: 8080, Addr: netip.MustParseAddr("10.0.1.2"), Port: 80},
		{Proto: firewall.TCP, Addr: netip.MustParseAddr("10.0.1.2"), Port: 80, Routed: true},
	}
	for _, tc := range []struct {
		name    string
		trusted string
		allow   bool
		open    bool
	}{
		{"nothing trusted", "", false, false},
		{"another interface trusted", "eth1", false, false},
		{"eth0 trusted", "eth1:eth0", false, true},
		{"eth0 trusted by a wildcard", "et+", false, true},
		{"direct routing allowed", "", true, true},
	} {
		n := br0
		n.Trusted, n.DirectRouting = tc.trusted, tc.allow
		if err := fw.Rebuild(ctx, []firewall.Network{n, br1}, ports...); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := ""
		if tc.open {
			want = "198.51.100.1"
		}
		if got := ask(t, w.outside, "10.0.1.2:80"); got != want {
			t.Errorf("%s: the published port's container side answered %q, want %q", tc.name, got, want)
		}
		if got := ask(t, w.outside, "10.0.1.2:81"); got != "" {
			t.Errorf("%s: an unpublished port answered %q", tc.name, got)
		}
		if got := askWithin(t, w.outside, "198.51.100.2:8080"); got != "198.51.100.1" {
			t.Errorf("%s: the published port on the host's address answered %q", tc.name, got)
		}
	}
}

// TestDirectRoutingMatchesGolden: firewall's direct-routing golden (a
// trusted wildcard among the drop's interface tests, the container sides
// in ports_routed) is what the kernel lists after a rebuild through
// netlink, and what nft -f of the text makes.
func TestDirectRoutingMatchesGolden(t *testing.T) {
	fw, ns := newTestFirewall(t)
	addr, prefix := netip.MustParseAddr, netip.MustParsePrefix
	nets := []firewall.Network{
		{Bridge: "br-trust", Subnet: prefix("172.22.0.0/16"), Gateway: addr("172.22.0.1"),
			Subnet6: prefix("fd00:22::/64"), Gateway6: addr("fd00:22::1"), ICC: true, Masquerade: true, Trusted: "eth1:wg+"},
		{Bridge: "br-allow", Subnet: prefix("172.23.0.0/16"), Gateway: addr("172.23.0.1"), ICC: true, Masquerade: true, DirectRouting: true},
	}
	ports := []firewall.PortMapping{
		{Proto: firewall.TCP, HostPort: 8080, Addr: addr("172.22.0.2"), Port: 80},
		{Proto: firewall.TCP, Addr: addr("172.22.0.2"), Port: 80, Routed: true},
		{Proto: firewall.TCP, HostPort: 8081, Addr: addr("172.23.0.2"), Port: 80},
		{Proto: firewall.TCP, Addr: addr("172.23.0.2"), Port: 80, Routed: true},
	}
	if err := fw.Rebuild(context.Background(), nets, ports...); err != nil {
		t.Fatal(err)
	}
	matchesGolden(t, ns, "direct-routing")
}

// TestAcceptFwMarkMatchesGolden: the --bridge-accept-fwmark rules (a
// whole mark, a mark under a mask) are what the kernel lists after a
// rebuild through netlink, and what nft -f of the text makes.
func TestAcceptFwMarkMatchesGolden(t *testing.T) {
	fw, ns := newTestFirewall(t)
	addr, prefix := netip.MustParseAddr, netip.MustParsePrefix
	nets := []firewall.Network{
		{Bridge: "br-mark", Subnet: prefix("172.24.0.0/16"), Gateway: addr("172.24.0.1"), ICC: true, Masquerade: true, AcceptMark: 2, AcceptMask: ^uint32(0)},
		{Bridge: "br-ts", Subnet: prefix("172.25.0.0/16"), Gateway: addr("172.25.0.1"), ICC: true, Masquerade: true, AcceptMark: 0x40000, AcceptMask: 0xff0000},
		{Bridge: "br-int", Subnet: prefix("172.26.0.0/16"), Gateway: addr("172.26.0.1"), ICC: true, Internal: true, AcceptMark: 2, AcceptMask: ^uint32(0)},
	}
	if err := fw.Rebuild(context.Background(), nets); err != nil {
		t.Fatal(err)
	}
	matchesGolden(t, ns, "accept-fwmark")
}
