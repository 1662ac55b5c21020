package network

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

// TestEndpointIfnameAndSysctls: an endpoint's driver options name its
// interface (the next join still takes the lowest free ethN) and give
// it sysctls, which reach the driver with the name; a name the container
// already has, or a bad sysctl, fails the join and holds nothing.
func TestEndpointIfnameAndSysctls(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, name := range []string{"lan", "wan"} {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	sb := r.sandbox(t, "c1")
	ep := r.join(t, sb, "lan", JoinRequest{ContainerID: "c1", Name: "one", DriverOpts: map[string]string{
		OptEndpointIfname: "lan0", OptEndpointSysctls: "net.ipv4.conf.IFNAME.log_martians=1,net.ipv6.conf.IFNAME.accept_ra=0",
	}})
	if ep.IfName != "lan0" {
		t.Errorf("interface %q, want lan0", ep.IfName)
	}
	spec := r.drv.veths[ep.HostIfName]
	if spec.IfName != "lan0" || !slices.Equal(spec.Sysctls, []string{"net.ipv4.conf.IFNAME.log_martians=1", "net.ipv6.conf.IFNAME.accept_ra=0"}) {
		t.Errorf("driver spec: ifname %q, sysctls %q", spec.IfName, spec.Sysctls)
	}
	ep2 := r.join(t, sb, "wan", JoinRequest{ContainerID: "c1", Name: "one"})
	if ep2.IfName != "eth0" {
		t.Errorf("next interface %q, want eth0", ep2.IfName)
	}
	r.restart(t)
	if got := r.c.endpoints[ep.ID]; got == nil || got.IfName != "lan0" || len(got.Sysctls) != 2 {
		t.Errorf("after a restart the endpoint is %+v", got)
	}

	wan, err := r.c.Network("wan")
	if err != nil {
		t.Fatal(err)
	}
	wanID := wan.ID
	sb2 := r.sandbox(t, "c2")
	r.join(t, sb2, "lan", JoinRequest{ContainerID: "c2", Name: "two"})
	held := r.c.spaces[wanID].Free()
	_, err = r.c.Join(ctx, sb2.ID, "wan", JoinRequest{ContainerID: "c2", Name: "two", DriverOpts: map[string]string{OptEndpointIfname: "eth0"}})
	if !errdefs.Is(err, errdefs.KindForbidden) || !strings.Contains(err.Error(), "interface name eth0 is already in use") {
		t.Errorf("a name the container has: %v", err)
	}
	_, err = r.c.Join(ctx, sb2.ID, "wan", JoinRequest{ContainerID: "c2", Name: "two", DriverOpts: map[string]string{OptEndpointSysctls: "net.ipv4.conf.eth0.forwarding=1"}})
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("a sysctl naming eth0: %v, want invalid", err)
	}
	if got := r.c.spaces[wanID].Free(); got != held {
		t.Errorf("refused joins left %d addresses held", held-got)
	}
}

// TestEndpointIfnameReserved: a name another endpoint of the container
// asks for is skipped by the automatic ethN, so the order of the joins
// does not matter (moby's random order made it fail at times).
func TestEndpointIfnameReserved(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, name := range []string{"na", "nb"} {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	sb := r.sandbox(t, "c1")
	a := r.join(t, sb, "na", JoinRequest{ContainerID: "c1", Name: "one", ReservedIfNames: []string{"eth0"}})
	b := r.join(t, sb, "nb", JoinRequest{ContainerID: "c1", Name: "one", DriverOpts: map[string]string{OptEndpointIfname: "eth0"}})
	if a.IfName != "eth1" || b.IfName != "eth0" {
		t.Errorf("interfaces %s and %s, want eth1 (eth0 reserved) and eth0", a.IfName, b.IfName)
	}
}

// TestEndpointSysctlDisablesIPv6: an interface whose sysctls turn IPv6
// off gets no IPv6 address on a dual-stack network (moby drops the one
// it loses), and the address is not held.
func TestEndpointSysctlDisablesIPv6(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "dual", EnableIPv6: true, IPAM: []IPAMRequest{{Subnet: mustPrefix("fd00:64::/64")}}}); err != nil {
		t.Fatal(err)
	}
	ep := r.join(t, r.sandbox(t, "c1"), "dual", JoinRequest{ContainerID: "c1", Name: "one",
		DriverOpts: map[string]string{OptEndpointSysctls: "net.ipv6.conf.IFNAME.disable_ipv6=1"}})
	if ep.Address6.IsValid() || !ep.Address.IsValid() {
		t.Errorf("addresses %v and %v, want IPv4 alone", ep.Address, ep.Address6)
	}
	ep2 := r.join(t, r.sandbox(t, "c2"), "dual", JoinRequest{ContainerID: "c2", Name: "two"})
	if got := ep2.Address6.Addr(); got != netip.MustParseAddr("fd00:64::2") {
		t.Errorf("the next container's IPv6 address %s, want fd00:64::2 (none held for the first)", got)
	}
}

// --link-local-ip: each address reaches the driver with libnetwork's mask
// (/16, /64) and stays in the endpoint's record, so that a heal or a
// restart makes the interface with it again; an address that is not
// link-local is refused in moby's words, as is any on a network without
// a bridge (berth's rule for addresses there).
func TestLinkLocalAddresses(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web"}); err != nil {
		t.Fatal(err)
	}
	sb := r.sandbox(t, "x")
	lls := []netip.Addr{netip.MustParseAddr("169.254.9.9"), netip.MustParseAddr("fe80::9"), netip.MustParseAddr("169.254.9.9")} // once each
	ep := r.join(t, sb, "web", JoinRequest{Name: "x", LinkLocal: lls})
	want := []netip.Prefix{mustPrefix("169.254.9.9/16"), mustPrefix("fe80::9/64")}
	if !slices.Equal(ep.LinkLocal, want) {
		t.Errorf("endpoint's link-local addresses %v, want %v", ep.LinkLocal, want)
	}
	r.drv.mu.Lock()
	got := r.drv.veths[ep.HostIfName].LinkLocal
	r.drv.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("driver was given %v, want %v", got, want)
	}
	r.restart(t)
	if eps := r.c.Endpoints(ep.NetworkID); len(eps) != 1 || !slices.Equal(eps[0].LinkLocal, want) {
		t.Errorf("after a restart: %+v", eps)
	}
	for _, tc := range []struct {
		net  string
		addr string
		err  string
	}{
		{"web", "10.0.0.5", "invalid link local IP address: 10.0.0.5"},
		{"web", "fd00::5", "invalid link local IP address: fd00::5"},
		{"none", "169.254.0.5", "user specified IP address is supported on user defined networks only"},
	} {
		sb := r.sandbox(t, "y-"+tc.addr)
		_, err := r.c.Join(ctx, sb.ID, tc.net, JoinRequest{Name: "y", LinkLocal: []netip.Addr{netip.MustParseAddr(tc.addr)}})
		if !errdefs.Is(err, errdefs.KindInvalid) || err.Error() != tc.err {
			t.Errorf("join %s with %s = %v, want %q", tc.net, tc.addr, err, tc.err)
		}
	}
}
