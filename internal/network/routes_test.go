package network

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNoteHostRouteWarnsAboutOverlaps(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	web, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web", IPAM: []IPAMRequest{{Subnet: netip.MustParsePrefix("172.18.0.0/16")}}})
	if err != nil {
		t.Fatal(err)
	}
	vpn := HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/24"), Dev: "eth0", Table: 254}
	got := r.c.NoteHostRoute(vpn)
	want := []string{`route 172.18.0.0/24 dev eth0 overlaps network "web" (172.18.0.0/16): traffic for those addresses may not reach its containers; remove the route or move the network to another subnet`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NoteHostRoute (-want +got):\n%s", diff)
	}
	n, _ := r.c.Network("web")
	if diff := cmp.Diff(want, n.Warnings); diff != "" {
		t.Errorf("web's warnings (-want +got):\n%s", diff)
	}
	// Seen twice (a dump after an event): still one warning, not new.
	if again := r.c.NoteHostRoute(vpn); again != nil {
		t.Errorf("the same route again gave %q, want nothing new", again)
	}
	if n, _ := r.c.Network("web"); len(n.Warnings) != 1 {
		t.Errorf("warnings after the same route twice = %q, want one", n.Warnings)
	}
	// Warnings are not state: a restart starts without them.
	r.restart(t)
	if n, _ := r.c.Network(web.ID); n.Warnings != nil {
		t.Errorf("warnings survived a restart: %q", n.Warnings)
	}
	r.c.NoteHostRoute(vpn)
	if cleared := r.c.ForgetHostRoute(vpn); !slices.Equal(cleared, []string{"web"}) {
		t.Errorf("ForgetHostRoute cleared %q, want [web]", cleared)
	}
	if n, _ := r.c.Network("web"); n.Warnings != nil {
		t.Errorf("warnings after the route went = %q", n.Warnings)
	}
	// A route whose link went first is deleted without a device.
	tun := HostRoute{Dst: netip.MustParsePrefix("172.18.5.0/24"), Dev: "tun0", Table: 100}
	r.c.NoteHostRoute(tun)
	r.c.NoteHostRoute(HostRoute{Dst: netip.MustParsePrefix("172.18.5.0/24"), Dev: "tun1", Table: 254})
	if cleared := r.c.ForgetHostRoute(HostRoute{Dst: tun.Dst, Table: 100}); !slices.Equal(cleared, []string{"web"}) {
		t.Errorf("ForgetHostRoute without a device cleared %q, want [web]", cleared)
	}
	if n, _ := r.c.Network("web"); len(n.Warnings) != 1 || !strings.Contains(n.Warnings[0], "dev tun1") {
		t.Errorf("warnings left = %q, want only the main table's route via tun1", n.Warnings)
	}
}

func TestNoteHostRouteIgnoresHarmlessRoutes(t *testing.T) {
	r := newRig(t)
	bridge, err := r.c.Network(NameBridge)
	if err != nil {
		t.Fatal(err)
	}
	sub := bridge.IPv4.Subnet
	for _, tc := range []struct {
		name string
		r    HostRoute
	}{
		{"own bridge", HostRoute{Dst: sub, Dev: bridge.Bridge.Name, Table: 254}},
		{"local table", HostRoute{Dst: netip.PrefixFrom(bridge.IPv4.Gateway, 32), Dev: bridge.Bridge.Name, Table: 255}},
		{"local table, other device", HostRoute{Dst: netip.PrefixFrom(sub.Addr(), 32), Dev: "eth0", Table: 255}},
		{"default route", HostRoute{Dst: netip.MustParsePrefix("0.0.0.0/0"), Dev: "eth0", Table: 254}},
		{"elsewhere", HostRoute{Dst: netip.MustParsePrefix("10.9.0.0/16"), Dev: "eth0", Table: 254}},
		{"IPv6, and the network has none", HostRoute{Dst: netip.MustParsePrefix("fd00::/64"), Dev: "eth0", Table: 254}},
		{"invalid", HostRoute{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.c.NoteHostRoute(tc.r); got != nil {
				t.Errorf("NoteHostRoute(%v) = %q, want nothing", tc.r, got)
			}
		})
	}
	// A route in another table that covers the bridge's subnet does warn.
	got := r.c.NoteHostRoute(HostRoute{Dst: netip.MustParsePrefix("172.16.0.0/12"), Dev: "tun0", Table: 100})
	if len(got) != 1 || !strings.HasPrefix(got[0], `route 172.16.0.0/12 dev tun0 table 100 overlaps network "bridge"`) {
		t.Errorf("route in table 100 gave %q", got)
	}
}

// TestNoteHostRouteIPv6: an IPv6 route that overlaps a network's IPv6
// subnet warns as an IPv4 one does; the network's own bridge route, the
// IPv6 default route, link-local and multicast routes and routes of the
// other family never do.
func TestNoteHostRouteIPv6(t *testing.T) {
	r := newRig(t)
	if _, err := r.c.CreateNetwork(context.Background(), CreateRequest{Name: "six", EnableIPv6: true, IPAM: []IPAMRequest{
		{Subnet: netip.MustParsePrefix("fd00:77::/64")}, {Subnet: netip.MustParsePrefix("10.77.0.0/24")}}}); err != nil {
		t.Fatal(err)
	}
	n, _ := r.c.Network("six")
	for _, h := range []HostRoute{
		{Dst: netip.MustParsePrefix("fd00:77::/64"), Dev: n.Bridge.Name, Table: 254},
		{Dst: netip.MustParsePrefix("::/0"), Dev: "eth0", Table: 254},
		{Dst: netip.MustParsePrefix("fe80::/64"), Dev: "eth0", Table: 254},
		{Dst: netip.MustParsePrefix("ff00::/8"), Dev: "eth0", Table: 255},
		{Dst: netip.MustParsePrefix("fd00:78::/64"), Dev: "eth0", Table: 254},
		{Dst: netip.MustParsePrefix("10.78.0.0/24"), Dev: "eth0", Table: 254},
	} {
		if got := r.c.NoteHostRoute(h); got != nil {
			t.Errorf("%s: %q, want no warning", h, got)
		}
	}
	vpn := HostRoute{Dst: netip.MustParsePrefix("fd00:77::/48"), Dev: "wg0", Table: 254}
	want := []string{`route fd00:77::/48 dev wg0 overlaps network "six" (fd00:77::/64): traffic for those addresses may not reach its containers; remove the route or move the network to another subnet`}
	if diff := cmp.Diff(want, r.c.NoteHostRoute(vpn)); diff != "" {
		t.Errorf("NoteHostRoute (-want +got):\n%s", diff)
	}
	if cleared := r.c.ForgetHostRoute(vpn); !slices.Equal(cleared, []string{"six"}) {
		t.Errorf("ForgetHostRoute cleared %q, want [six]", cleared)
	}
}

func TestForgetRoutesViaAGoneInterface(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	for _, nw := range []struct{ name, subnet string }{{"web", "172.18.0.0/16"}, {"db", "10.9.0.0/16"}} {
		if _, err := r.c.CreateNetwork(ctx, CreateRequest{Name: nw.name, IPAM: []IPAMRequest{{Subnet: netip.MustParsePrefix(nw.subnet)}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A VPN's tun0 carries routes into both networks, in two tables; a
	// device whose name starts the same (tun01) and a route without a
	// device stay.
	r.c.NoteHostRoute(HostRoute{Dst: netip.MustParsePrefix("172.18.1.0/24"), Dev: "tun0", Table: 254})
	r.c.NoteHostRoute(HostRoute{Dst: netip.MustParsePrefix("10.9.0.0/24"), Dev: "tun0", Table: 100})
	r.c.NoteHostRoute(HostRoute{Dst: netip.MustParsePrefix("172.18.2.0/24"), Dev: "tun01", Table: 254})
	r.c.NoteHostRoute(HostRoute{Dst: netip.MustParsePrefix("172.18.3.0/24"), Table: 254})
	if cleared := r.c.ForgetRoutesVia("tun0"); !slices.Equal(cleared, []string{"db", "web"}) {
		t.Errorf("ForgetRoutesVia(tun0) cleared %q, want [db web]", cleared)
	}
	if n, _ := r.c.Network("db"); n.Warnings != nil {
		t.Errorf("db's warnings = %q, want none", n.Warnings)
	}
	n, _ := r.c.Network("web")
	var left []string
	for _, w := range n.Warnings {
		left = append(left, strings.SplitN(w, " overlaps ", 2)[0])
	}
	want := []string{"route 172.18.2.0/24 dev tun01", "route 172.18.3.0/24"}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("web's warnings left (-want +got):\n%s", diff)
	}
	if cleared := r.c.ForgetRoutesVia("eth7"); cleared != nil {
		t.Errorf("an interface without routes cleared %q", cleared)
	}
}

func TestSubnetRouteOwner(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	web, err := r.c.CreateNetwork(ctx, CreateRequest{Name: "web", IPAM: []IPAMRequest{{Subnet: netip.MustParsePrefix("172.18.0.0/16")}}})
	if err != nil {
		t.Fatal(err)
	}
	br := web.Bridge.Name
	for _, tc := range []struct {
		route HostRoute
		want  string
	}{
		{HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/16"), Dev: br, Table: 254}, web.ID},
		{HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/16"), Dev: br}, web.ID},
		{HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/16"), Dev: br, Table: 100}, ""}, // another table: someone else's
		{HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/24"), Dev: br, Table: 254}, ""}, // not the subnet
		{HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/16"), Dev: "eth0", Table: 254}, ""},
		{HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/16"), Table: 254}, ""},
	} {
		if got, _ := r.c.SubnetRouteOwner(tc.route); got != tc.want {
			t.Errorf("SubnetRouteOwner(%s) = %q, want %q", tc.route, got, tc.want)
		}
	}
}
