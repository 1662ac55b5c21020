package bridge

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// bridgeState is what EnsureBridge promises, as the kernel reports it.
type bridgeState struct {
	Index   int
	Kind    string
	MTU     int
	Alias   string
	Up      bool
	Carrier bool
	Addrs   []netip.Prefix
}

func stateOf(t *testing.T, h *netlink.Handle, name string) bridgeState {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("look up %q: %v", name, err)
	}
	a := l.Attrs()
	return bridgeState{
		Index: a.Index, Kind: l.Type(), MTU: a.MTU, Alias: a.Alias,
		Up:      a.Flags&net.FlagUp != 0,
		Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
		Addrs:   addrsOf(t, h, name),
	}
}

func TestEnsureBridgeIsIdempotent(t *testing.T) {
	w := newWorld(t)
	spec := driverapi.BridgeSpec{Name: "br-test", Gateway: netip.MustParsePrefix("10.88.0.1/24"), MTU: 1400}
	if err := w.d.EnsureBridge(spec, "network:abc"); err != nil {
		t.Fatalf("first EnsureBridge: %v", err)
	}
	first := stateOf(t, w.h, "br-test")
	want := bridgeState{
		Index: first.Index, Kind: "bridge", MTU: 1400, Alias: "berth:network:abc",
		Up: true, Carrier: false, // NO-CARRIER until a port is up, as in the seed
		Addrs: []netip.Prefix{spec.Gateway},
	}
	if diff := cmp.Diff(want, first, netipEqual); diff != "" {
		t.Errorf("after EnsureBridge (-want +got):\n%s", diff)
	}
	if err := w.d.EnsureBridge(spec, "network:abc"); err != nil {
		t.Fatalf("second EnsureBridge: %v", err)
	}
	if diff := cmp.Diff(first, stateOf(t, w.h, "br-test"), netipEqual); diff != "" {
		t.Errorf("second EnsureBridge changed the bridge (-first +second):\n%s", diff)
	}
}

func TestEnsureBridgeFinishesAHalfMadeBridge(t *testing.T) {
	w := newWorld(t)
	// What a crash right after creation leaves: a down, untagged, bare bridge.
	addBareBridge(t, w.h, "br-test")
	spec := w.ensureTestBridge(t)
	got := stateOf(t, w.h, "br-test")
	if !got.Up || got.Alias != "berth:network:test" || !cmp.Equal(got.Addrs, []netip.Prefix{spec.Gateway}, netipEqual) {
		t.Errorf("half-made bridge not finished: %+v", got)
	}
}

// TestEnsureBridgePutsBackTheSubnetRoute: the route to the subnet that
// the kernel made with the gateway's address, deleted by hand, is put
// back as the kernel makes it (scope link, the gateway as the source).
func TestEnsureBridgePutsBackTheSubnetRoute(t *testing.T) {
	w := newWorld(t)
	spec := w.ensureTestBridge(t)
	br, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	subnetRoute := func() *netlink.Route {
		t.Helper()
		routes, err := w.h.RouteList(br, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range routes {
			if r.Dst != nil && prefixOf(r.Dst) == spec.Gateway.Masked() {
				return &r
			}
		}
		return nil
	}
	r := subnetRoute()
	if r == nil {
		t.Fatal("no subnet route after EnsureBridge")
	}
	if err := w.h.RouteDel(r); err != nil {
		t.Fatal(err)
	}
	if subnetRoute() != nil {
		t.Fatal("the route is still there after RouteDel")
	}
	w.ensureTestBridge(t)
	r = subnetRoute()
	if r == nil || r.Scope != netlink.SCOPE_LINK || !r.Src.Equal(spec.Gateway.Addr().AsSlice()) {
		t.Fatalf("after a second EnsureBridge the subnet route is %+v, want it back, scope link, from %s", r, spec.Gateway.Addr())
	}
	// Moved by the administrator to a table of their own: left there.
	moved := &netlink.Route{LinkIndex: br.Attrs().Index, Dst: r.Dst, Src: r.Src, Scope: netlink.SCOPE_LINK, Table: 100}
	if err := w.h.RouteAdd(moved); err != nil {
		t.Fatal(err)
	}
	if err := w.h.RouteDel(r); err != nil {
		t.Fatal(err)
	}
	w.ensureTestBridge(t)
	if r := subnetRoute(); r != nil {
		t.Errorf("EnsureBridge added %+v to the main table, where the administrator moved the route to table 100", r)
	}
}

func TestEnsureBridgeRefusesForeignLinks(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, h *netlink.Handle)
		want  string
	}{
		{"veth of that name", func(t *testing.T, h *netlink.Handle) {
			addVeth(t, h, "br-test")
		}, "not a bridge"},
		{"bridge of another network", func(t *testing.T, h *netlink.Handle) {
			addBridge(t, h, "br-test", "berth:network:other")
		}, "already in use"},
		{"bridge tagged by someone else", func(t *testing.T, h *netlink.Handle) {
			addBridge(t, h, "br-test", "libvirt")
		}, "already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			tt.setup(t, w.h)
			before := linkNames(t, w.h)
			err := w.d.EnsureBridge(driverapi.BridgeSpec{Name: "br-test", Gateway: testGateway}, "network:test")
			if !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EnsureBridge = %v, want a conflict containing %q", err, tt.want)
			}
			if len(addrsOf(t, w.h, "br-test")) != 0 {
				t.Error("EnsureBridge addressed a link it refused")
			}
			if diff := cmp.Diff(before, linkNames(t, w.h)); diff != "" {
				t.Errorf("links changed (-before +after):\n%s", diff)
			}
		})
	}
}

// addVeth adds a veth pair (name, name+"p") that berth did not make.
func addVeth(t testing.TB, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	l := netlink.NewVeth(attrs)
	l.PeerName = name + "p"
	if err := h.LinkAdd(l); err != nil {
		t.Fatalf("add veth %q: %v", name, err)
	}
	return l
}

func addBridge(t testing.TB, h *netlink.Handle, name, alias string) {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("add bridge %q: %v", name, err)
	}
	if alias == "" {
		return
	}
	if err := h.LinkSetAlias(br, alias); err != nil {
		t.Fatalf("alias bridge %q: %v", name, err)
	}
}

func TestDeleteBridgeIsIdempotentAndRefusesForeignLinks(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	for i := range 2 {
		if err := w.d.DeleteBridge("br-test"); err != nil {
			t.Fatalf("DeleteBridge #%d: %v", i+1, err)
		}
	}
	if ok, err := w.d.LinkExists("br-test"); ok || err != nil {
		t.Fatalf("LinkExists after delete = %v, %v", ok, err)
	}
	addVeth(t, w.h, "veth0")
	addBridge(t, w.h, "br-libvirt", "libvirt")
	for _, name := range []string{"veth0", "br-libvirt"} {
		if err := w.d.DeleteBridge(name); !errdefs.Is(err, errdefs.KindConflict) {
			t.Errorf("DeleteBridge(%q) = %v, want a conflict", name, err)
		}
		if ok, _ := w.d.LinkExists(name); !ok {
			t.Errorf("DeleteBridge(%q) deleted a link that is not berth's", name)
		}
	}
	if err := w.d.DeleteBridge("bad/name"); !errdefs.Is(err, errdefs.KindInvalid) {
		t.Errorf("DeleteBridge(bad/name) = %v, want invalid", err)
	}
}

func TestOwnedLinksSeesOnlyTaggedLinks(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	addVeth(t, w.h, "veth0")
	addBridge(t, w.h, "br-libvirt", "libvirt")
	sb := nstest.New(t)
	if err := w.d.Join(sb, endpointSpec(1)); err != nil {
		t.Fatal(err)
	}
	// A veth that Leave cut off is being deleted and is nobody's any more.
	sb2 := nstest.New(t)
	left := endpointSpec(2)
	if err := w.d.Join(sb2, left); err != nil {
		t.Fatal(err)
	}
	host, _ := w.h.LinkByName(left.HostIfName)
	if err := w.h.LinkSetGroup(host, reapGroup); err != nil {
		t.Fatal(err)
	}
	got, err := w.d.OwnedLinks()
	if err != nil {
		t.Fatal(err)
	}
	want := []driverapi.OwnedLink{
		{Name: "br-test", Owner: "network:test"},
		{Name: "vethtest001", Owner: "endpoint:1"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OwnedLinks (-want +got):\n%s", diff)
	}
}

// TestOwnedBridgesAloneAndTheirPorts: OwnedBridges lists berth's bridges
// only (not its veths, not another program's bridge), ports uncounted;
// ForeignPorts counts the links on one that are not berth's.
func TestOwnedBridgesAloneAndTheirPorts(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	addBridge(t, w.h, "br-libvirt", "libvirt")
	sb := nstest.New(t)
	if err := w.d.Join(sb, endpointSpec(1)); err != nil {
		t.Fatal(err)
	}
	got, err := w.d.OwnedBridges()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]driverapi.OwnedLink{{Name: "br-test", Owner: "network:test", ForeignPorts: -1}}, got); diff != "" {
		t.Errorf("OwnedBridges (-want +got):\n%s", diff)
	}
	if n, err := w.d.ForeignPorts(); err != nil || n["br-test"] != 0 {
		t.Errorf("ForeignPorts with berth's port alone: %v, %v", n, err)
	}
	uplink := addVeth(t, w.h, "veth0")
	br, _ := w.h.LinkByName("br-test")
	if err := w.h.LinkSetMaster(uplink, br.(*netlink.Bridge)); err != nil {
		t.Fatal(err)
	}
	if n, err := w.d.ForeignPorts(); err != nil || n["br-test"] != 1 {
		t.Errorf("ForeignPorts with an administrator's uplink: %v, %v; want br-test 1", n, err)
	}
}

func TestHostRoutesListsEveryTableButNotDefaults(t *testing.T) {
	w := newWorld(t)
	dummy := addVeth(t, w.h, "veth0")
	if err := w.h.LinkSetUp(dummy); err != nil {
		t.Fatal(err)
	}
	if err := w.h.AddrAdd(dummy, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix("192.0.2.2/24"))}); err != nil {
		t.Fatal(err)
	}
	routes := []*netlink.Route{
		{LinkIndex: dummy.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("10.50.0.0/16")), Gw: net.ParseIP("192.0.2.1")},
		{LinkIndex: dummy.Attrs().Index, Dst: ipNet(netip.MustParsePrefix("10.60.0.0/16")), Table: 100},
		{LinkIndex: dummy.Attrs().Index, Gw: net.ParseIP("192.0.2.1")}, // default: excluded
	}
	for _, r := range routes {
		if err := w.h.RouteAdd(r); err != nil {
			t.Fatalf("add route %v: %v", r, err)
		}
	}
	got, err := w.d.HostRoutes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"10.50.0.0/16", "10.60.0.0/16", "192.0.2.0/24"} {
		if !containsPrefix(got, netip.MustParsePrefix(p)) {
			t.Errorf("HostRoutes() = %v, missing %s", got, p)
		}
	}
	for _, p := range got {
		if p.Bits() == 0 {
			t.Errorf("HostRoutes() = %v includes a default route", got)
		}
	}
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

func TestEnableIPForwardingOnlyInTheHostNamespace(t *testing.T) {
	w := newWorld(t)
	outsider := nstest.New(t) // stands for every namespace that is not the driver's
	if got := readSysctlIn(t, w.host, ipForwardPath); got != "0" {
		t.Fatalf("fresh namespace has ip_forward=%s", got)
	}
	for i := range 2 {
		if err := w.d.EnableIPForwarding(); err != nil {
			t.Fatalf("EnableIPForwarding #%d: %v", i+1, err)
		}
	}
	if got := readSysctlIn(t, w.host, ipForwardPath); got != "1" {
		t.Errorf("host namespace ip_forward = %s, want 1", got)
	}
	if got := readSysctlIn(t, outsider, ipForwardPath); got != "0" {
		t.Errorf("another namespace's ip_forward = %s, want it untouched (0)", got)
	}
}

func readSysctlIn(t *testing.T, ns, path string) string {
	t.Helper()
	var v string
	err := sandbox.Do(ns, func() error {
		b, err := os.ReadFile(path)
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatalf("read %s in %s: %v", path, ns, err)
	}
	return v
}

// TestBridgeMadeAgainKeepsItsMAC: a bridge deleted behind berth's back and
// made again has the MAC it had, derived from its name, so that the
// neighbour entries its containers hold for the gateway stay right;
// bridges of other names have other MACs.
func TestBridgeMadeAgainKeepsItsMAC(t *testing.T) {
	w := newWorld(t)
	spec := w.ensureTestBridge(t)
	mac := func(name string) string {
		t.Helper()
		l, err := w.h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().HardwareAddr.String()
	}
	first := mac(spec.Name)
	if hw, _ := net.ParseMAC(first); hw[0]&3 != 2 {
		t.Errorf("bridge MAC %s is not unicast and locally administered", first)
	}
	br, err := w.h.LinkByName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkDel(br); err != nil {
		t.Fatal(err)
	}
	if err := w.d.EnsureBridge(spec, "network:test"); err != nil {
		t.Fatalf("EnsureBridge after the delete: %v", err)
	}
	if again := mac(spec.Name); again != first {
		t.Errorf("bridge made again has MAC %s, had %s", again, first)
	}
	other := driverapi.BridgeSpec{Name: "br-other", Gateway: netip.MustParsePrefix("10.99.0.1/24"), MTU: 1500}
	if err := w.d.EnsureBridge(other, "network:other"); err != nil {
		t.Fatal(err)
	}
	if mac(other.Name) == first {
		t.Errorf("two bridges share MAC %s", first)
	}
}

// TestReleaseBridge: an administrator's bridge berth adopted is untagged
// and left, with its port; one berth made itself (its MAC is berth's: an
// adopted bridge deleted by hand and made again by a heal) is deleted,
// unless someone else's port is on it.
func TestReleaseBridge(t *testing.T) {
	w := newWorld(t)
	spec := driverapi.BridgeSpec{Name: "br-admin", Gateway: netip.MustParsePrefix("10.89.0.1/24")}
	addBareBridge(t, w.h, "br-admin")
	if err := w.d.EnsureBridge(spec, "network:admin"); err != nil {
		t.Fatal(err)
	}
	if err := w.d.ReleaseBridge("br-admin"); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, w.h, "br-admin"); got.Alias != "" {
		t.Errorf("the administrator's bridge after release: alias %q, want it untagged and there", got.Alias)
	}

	made := driverapi.BridgeSpec{Name: "br-made", Gateway: netip.MustParsePrefix("10.89.1.1/24")}
	if err := w.d.EnsureBridge(made, "network:made"); err != nil {
		t.Fatal(err)
	}
	if err := w.d.ReleaseBridge("br-made"); err != nil {
		t.Fatal(err)
	}
	if l, _ := linkIfExists(w.h, "br-made"); l != nil {
		t.Error("a bridge berth made outlived its release")
	}

	if err := w.d.EnsureBridge(made, "network:made"); err != nil {
		t.Fatal(err)
	}
	port := netlink.NewLinkAttrs()
	port.Name = "uplink0"
	if err := w.h.LinkAdd(&netlink.Veth{LinkAttrs: port, PeerName: "uplink1"}); err != nil {
		t.Fatal(err)
	}
	br, err := w.h.LinkByName("br-made")
	if err != nil {
		t.Fatal(err)
	}
	up, err := w.h.LinkByName("uplink0")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkSetMaster(up, br); err != nil {
		t.Fatal(err)
	}
	if err := w.d.ReleaseBridge("br-made"); err != nil {
		t.Fatal(err)
	}
	if got := stateOf(t, w.h, "br-made"); got.Alias != "" {
		t.Errorf("berth's bridge with someone else's port after release: alias %q, want it untagged and there", got.Alias)
	}
}

// TestBridgeAddresses: dockerd's --bridge reads the administrator's
// bridge's addresses, each family's apart; a missing device is not
// found, another kind of link a conflict.
func TestBridgeAddresses(t *testing.T) {
	w := newWorld(t)
	br := addBareBridge(t, w.h, "br-lan")
	for _, a := range []string{"10.50.0.1/24", "10.60.0.1/16", "fd00:50::1/64"} {
		if err := w.h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(netip.MustParsePrefix(a))}); err != nil {
			t.Fatal(err)
		}
	}
	v4, v6, err := w.d.BridgeAddresses("br-lan")
	if err != nil {
		t.Fatal(err)
	}
	want4 := []netip.Prefix{netip.MustParsePrefix("10.50.0.1/24"), netip.MustParsePrefix("10.60.0.1/16")}
	if !cmp.Equal(v4, want4, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })) || len(v6) != 1 || v6[0] != netip.MustParsePrefix("fd00:50::1/64") {
		t.Errorf("br-lan's addresses: %v %v", v4, v6)
	}
	if _, _, err := w.d.BridgeAddresses("br-none"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("a missing device: %v, want not found", err)
	}
	veth := netlink.NewLinkAttrs()
	veth.Name = "veth-lan"
	if err := w.h.LinkAdd(&netlink.Veth{LinkAttrs: veth, PeerName: "veth-lan1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.d.BridgeAddresses("veth-lan"); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("a veth: %v, want a conflict", err)
	}
}
