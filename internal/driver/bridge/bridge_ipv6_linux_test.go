package bridge

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// writeSysctlIn writes a sysctl in the namespace at ns, as an
// administrator (or an earlier daemon) would have.
func writeSysctlIn(t *testing.T, ns, path, value string) {
	t.Helper()
	if err := sandbox.Do(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		t.Fatalf("write %s in %s: %v", path, ns, err)
	}
}

// Every bridge berth makes, IPv4-only ones too, refuses router
// advertisements: a container could forge one and become the host's
// default router (CVE-2020-13401). Only the bridge's own sysctl changes.
// A bridge of the administrator's that berth adopts is left alone, as
// moby sets it only on bridges it creates.
func TestEnsureBridgeRefusesRouterAdvertisements(t *testing.T) {
	w := newWorld(t)
	outsider := nstest.New(t)
	w.ensureTestBridge(t)
	if got := readSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/br-test/accept_ra"); got != "0" {
		t.Errorf("accept_ra on the bridge = %s, want 0", got)
	}
	for _, p := range []string{"/proc/sys/net/ipv6/conf/all/accept_ra", "/proc/sys/net/ipv6/conf/default/accept_ra", "/proc/sys/net/ipv6/conf/lo/accept_ra"} {
		if got := readSysctlIn(t, w.host, p); got != "1" {
			t.Errorf("%s = %s, want it untouched (1)", p, got)
		}
		if got := readSysctlIn(t, outsider, p); got != "1" {
			t.Errorf("another namespace's %s = %s, want 1", p, got)
		}
	}
	addBridge(t, w.h, "br-admin", "")
	const adopted = "/proc/sys/net/ipv6/conf/br-admin/accept_ra"
	writeSysctlIn(t, w.host, adopted, "2")
	if err := w.d.EnsureBridge(driverapi.BridgeSpec{Name: "br-admin", Gateway: netip.MustParsePrefix("10.89.0.1/24"), MTU: 1500}, "network:admin"); err != nil {
		t.Fatal(err)
	}
	if got := readSysctlIn(t, w.host, adopted); got != "2" {
		t.Errorf("accept_ra on an adopted bridge = %s, want the administrator's 2", got)
	}
}

var testGateway6 = netip.MustParsePrefix("fd12:3456::1/64")

// ensureDualStackBridge makes "br-test" with testGateway and testGateway6.
func (w *testWorld) ensureDualStackBridge(t testing.TB) driverapi.BridgeSpec {
	t.Helper()
	spec := driverapi.BridgeSpec{Name: "br-test", Gateway: testGateway, Gateway6: testGateway6, MTU: 1500}
	if err := w.d.EnsureBridge(spec, "network:test"); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	return spec
}

// globalAddrs6 lists the IPv6 addresses of the link called name other
// than link-local ones, with their flags.
func globalAddrs6(t testing.TB, h *netlink.Handle, name string) map[netip.Prefix]int {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("look up %q: %v", name, err)
	}
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V6) })
	if err != nil {
		t.Fatalf("list IPv6 addresses of %q: %v", name, err)
	}
	out := map[netip.Prefix]int{}
	for _, a := range addrs {
		if p := prefixOf(a.IPNet); !p.Addr().IsLinkLocalUnicast() {
			out[p] = a.Flags
		}
	}
	return out
}

// A bridge of a network with IPv6 gets its gateway address without DAD
// and IPv6 on even where the host's default turns it off; the host
// namespace forwards IPv6, no other namespace changes, and an IPv4-only
// bridge changes none of it.
func TestEnsureBridgeWithGateway6(t *testing.T) {
	w := newWorld(t)
	outsider := nstest.New(t)
	const forwarding = "/proc/sys/net/ipv6/conf/all/forwarding"
	w.ensureTestBridge(t) // IPv4 only
	if got := readSysctlIn(t, w.host, forwarding); got != "0" {
		t.Errorf("IPv4-only bridge: IPv6 forwarding = %s, want 0", got)
	}
	if got := globalAddrs6(t, w.h, "br-test"); len(got) != 0 {
		t.Errorf("IPv4-only bridge has IPv6 addresses %v", got)
	}
	if err := w.d.DeleteBridge("br-test"); err != nil {
		t.Fatal(err)
	}
	writeSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/default/disable_ipv6", "1")

	for i := range 2 { // the second changes nothing
		w.ensureDualStackBridge(t)
		if diff := cmp.Diff(map[netip.Prefix]int{testGateway6: unix.IFA_F_NODAD | unix.IFA_F_PERMANENT}, globalAddrs6(t, w.h, "br-test"), netipEqual); diff != "" {
			t.Errorf("EnsureBridge #%d: IPv6 addresses of the bridge (-want +got):\n%s", i+1, diff)
		}
		for sysctl, want := range map[string]string{"disable_ipv6": "0", "accept_dad": "0", "accept_ra": "0"} {
			if got := readSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/br-test/"+sysctl); got != want {
				t.Errorf("EnsureBridge #%d: %s on the bridge = %s, want %s", i+1, sysctl, got, want)
			}
		}
		if got := readSysctlIn(t, w.host, forwarding); got != "1" {
			t.Errorf("EnsureBridge #%d: host namespace's IPv6 forwarding = %s, want 1", i+1, got)
		}
	}
	if got := readSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/default/disable_ipv6"); got != "1" {
		t.Errorf("the host's default disable_ipv6 = %s, want it untouched (1)", got)
	}
	if got := readSysctlIn(t, outsider, forwarding); got != "0" {
		t.Errorf("another namespace's IPv6 forwarding = %s, want it untouched (0)", got)
	}
}

// A bridge found at a restart gets its IPv6 gateway address back, as it
// gets its IPv4 one.
func TestEnsureBridgeRestoresTheIPv6Gateway(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	br, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.AddrDel(br, &netlink.Addr{IPNet: ipNet(testGateway6)}); err != nil {
		t.Fatal(err)
	}
	d2, err := New(w.host, discardLogger()) // a daemon that starts again
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := d2.EnsureBridge(driverapi.BridgeSpec{Name: "br-test", Gateway: testGateway, Gateway6: testGateway6, MTU: 1500}, "network:test"); err != nil {
		t.Fatal(err)
	}
	if got := globalAddrs6(t, w.h, "br-test"); len(got) != 1 || got[testGateway6] == 0 {
		t.Errorf("IPv6 addresses after EnsureBridge at a restart = %v, want %v", got, testGateway6)
	}
}

// Turning IPv6 forwarding on makes the host ignore router advertisements
// on interfaces with accept_ra=1: EnsureBridge says so for each that has
// an IPv6 default route from them, and changes none of them.
func TestEnsureBridgeWarnsOfRouterAdvertisementsIgnored(t *testing.T) {
	w := newWorld(t)
	for i, up := range []struct{ name, acceptRA string }{{"uplink0", "1"}, {"uplink1", "2"}} {
		addVeth(t, w.h, up.name) // the kernel here has no dummy links
		var l netlink.Link
		for _, name := range []string{up.name + "p", up.name} {
			var err error
			if l, err = w.h.LinkByName(name); err != nil {
				t.Fatal(err)
			}
			if err := w.h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
		}
		writeSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/"+up.name+"/accept_ra", up.acceptRA)
		route := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP("fe80::1"), Protocol: unix.RTPROT_RA, Priority: 1024 + i}
		if err := w.h.RouteAdd(route); err != nil {
			t.Fatalf("add a default route from a router advertisement on %s: %v", up.name, err)
		}
	}
	var logged bytes.Buffer
	w.d.log = slog.New(slog.NewTextHandler(&logged, nil))
	w.ensureDualStackBridge(t)
	if !strings.Contains(logged.String(), "interface=uplink0") {
		t.Errorf("no warning for uplink0 (accept_ra=1); log:\n%s", logged.String())
	}
	if strings.Contains(logged.String(), "interface=uplink1") {
		t.Errorf("a warning for uplink1, whose accept_ra=2 keeps it taking them; log:\n%s", logged.String())
	}
	for name, want := range map[string]string{"uplink0": "1", "uplink1": "2"} {
		if got := readSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/"+name+"/accept_ra"); got != want {
			t.Errorf("%s accept_ra = %s, want it untouched (%s)", name, got, want)
		}
	}
	logged.Reset()
	w.ensureDualStackBridge(t) // forwarding is on already: nothing to say again
	if strings.Contains(logged.String(), "uplink0") {
		t.Errorf("the warning again when forwarding was on already; log:\n%s", logged.String())
	}
}

// TestEnsureBridgeDropsAnOldIPv6Gateway: when a network's IPv6 subnet
// changes or goes (the default bridge's --fixed-cidr-v6, --ipv6), the
// bridge loses the old gateway it is told of (StaleGateways) and keeps
// every other address, an administrator's among them.
func TestEnsureBridgeDropsAnOldIPv6Gateway(t *testing.T) {
	w := newWorld(t)
	spec := w.ensureDualStackBridge(t)
	admin := netip.MustParsePrefix("2001:db8:77::5/64")
	br, err := w.h.LinkByName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(admin), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatal(err)
	}
	spec.StaleGateways, spec.Gateway6 = []netip.Prefix{spec.Gateway6}, netip.MustParsePrefix("fd00:beef::1/64")
	if err := w.d.EnsureBridge(spec, "network:test"); err != nil {
		t.Fatal(err)
	}
	got := globalAddrs6(t, w.h, spec.Name)
	_, hasNew := got[spec.Gateway6]
	_, hasAdmin := got[admin]
	if !hasNew || !hasAdmin || len(got) != 2 {
		t.Errorf("after the subnet changed: %v, want %v and the administrator's %v", got, spec.Gateway6, admin)
	}
	spec.StaleGateways, spec.Gateway6 = []netip.Prefix{spec.Gateway6}, netip.Prefix{}
	if err := w.d.EnsureBridge(spec, "network:test"); err != nil {
		t.Fatal(err)
	}
	if got := globalAddrs6(t, w.h, spec.Name); len(got) != 1 {
		t.Errorf("after IPv6 was dropped: %v, want only the administrator's %v", got, admin)
	}
}

// TestIsolatedIPv6BridgeHasNoIPv6: a bridge whose network is isolated in
// IPv6 has IPv6 off, so it has no address of that family at all, not even
// the link-local one the kernel gives a link once a port is up (moby's
// setupBridgeIPv6 for gateway mode isolated).
func TestIsolatedIPv6BridgeHasNoIPv6(t *testing.T) {
	w := newWorld(t)
	spec := driverapi.BridgeSpec{Name: "br-test", Gateway: testGateway, MTU: 1500, Isolated: true, Isolated6: true}
	if err := w.d.EnsureBridge(spec, "network:test"); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	if got := readSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/br-test/disable_ipv6"); got != "1" {
		t.Errorf("disable_ipv6 on the bridge = %s, want 1", got)
	}
	ep := endpointSpec(1)
	ep.Gateway = netip.Addr{} // an internal network's endpoint
	if err := w.d.Join(nstest.New(t), ep); err != nil {
		t.Fatal(err)
	}
	waitOperUp(t, w.h, "br-test")
	br, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	if addrs, err := w.h.AddrList(br, netlink.FAMILY_V6); err != nil || len(addrs) != 0 {
		t.Errorf("IPv6 addresses on an IPv6-isolated bridge: %v (err %v), want none", addrs, err)
	}
}
