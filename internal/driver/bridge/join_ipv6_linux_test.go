package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/nstest"
)

// dualStackSpec is endpointSpec(n) on a network with IPv6 (testGateway6):
// address fd12:3456::n+1, the sandbox's gateway endpoint in both families.
func dualStackSpec(n int) driverapi.EndpointSpec {
	spec := endpointSpec(n)
	spec.Address6 = netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("fd12:3456::%x", n+1)), 64)
	spec.Gateway6 = testGateway6.Addr()
	return spec
}

// checkPeerIPv6 checks the container end's IPv6: on a network with IPv6,
// on, with a link-local address and spec.Address6, both usable at once
// (no DAD: never tentative); otherwise IPv6 off (disable_ipv6: no
// address, no router advertisement taken, no DAD into the bridge).
func checkPeerIPv6(t *testing.T, sbPath string, sh *netlink.Handle, peer netlink.Link, spec driverapi.EndpointSpec) {
	t.Helper()
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return sh.AddrList(peer, netlink.FAMILY_V6) })
	if err != nil {
		t.Fatalf("list IPv6 addresses of %q: %v", spec.IfName, err)
	}
	got := map[netip.Prefix]int{}
	for _, a := range addrs {
		got[prefixOf(a.IPNet)] = a.Flags
	}
	want := map[netip.Prefix]int{}
	if spec.Address6.IsValid() {
		if v := readSysctlIn(t, sbPath, "/proc/sys/net/ipv6/conf/"+spec.IfName+"/disable_ipv6"); v != "0" {
			t.Errorf("IPv6 on %q: disable_ipv6 = %s, want 0", spec.IfName, v)
		}
		if v := readSysctlIn(t, sbPath, "/proc/sys/net/ipv6/conf/"+spec.IfName+"/accept_ra"); v != "0" {
			t.Errorf("IPv6 on %q: accept_ra = %s, want 0 (its routes are berth's)", spec.IfName, v)
		}
		const flags = unix.IFA_F_NODAD | unix.IFA_F_PERMANENT // and not IFA_F_TENTATIVE
		want[linkLocal(spec.MAC)] = flags
		want[spec.Address6] = flags
	} else if v := readSysctlIn(t, sbPath, "/proc/sys/net/ipv6/conf/"+spec.IfName+"/disable_ipv6"); v != "1" {
		// As moby's setInterfaceIPv6 (CVE-2024-32473): with IPv6 on, a
		// neighbour's forged router advertisement gives the interface an
		// address and a default route, address generation off or not.
		t.Errorf("IPv4-only %q: disable_ipv6 = %s, want 1", spec.IfName, v)
	}
	if diff := cmp.Diff(want, got, netipEqual); diff != "" {
		t.Errorf("IPv6 addresses and their flags on %q (-want +got):\n%s", spec.IfName, diff)
	}
}

// defaultGateways6 lists the gateways of the IPv6 default routes in the main table.
func defaultGateways6(t testing.TB, h *netlink.Handle) []netip.Addr {
	t.Helper()
	routes, err := RetryDump(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V6) })
	if err != nil {
		t.Fatalf("list IPv6 routes: %v", err)
	}
	var gws []netip.Addr
	for _, r := range routes {
		if r.Dst != nil && prefixOf(r.Dst).Bits() != 0 {
			continue
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		gws = append(gws, gw)
	}
	return gws
}

// Two dual-stack containers on one bridge reach the bridge and each other
// over IPv6, and a third on another bridge reaches them through the host
// (IPv6 forwarding); every end is as checkJoined wants it.
func TestDualStackJoinsPingOverIPv6(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	other := driverapi.BridgeSpec{Name: "br-other", Gateway: netip.MustParsePrefix("10.99.0.1/24"),
		Gateway6: netip.MustParsePrefix("fd12:9999::1/64"), MTU: 1500}
	if err := w.d.EnsureBridge(other, "network:other"); err != nil {
		t.Fatal(err)
	}
	a, b, c := nstest.New(t), nstest.New(t), nstest.New(t)
	sa, sb := dualStackSpec(1), dualStackSpec(2)
	sc := driverapi.EndpointSpec{
		Bridge: "br-other", HostIfName: "vethother01", IfName: "eth0", MAC: RandomMAC(),
		Address: netip.MustParsePrefix("10.99.0.2/24"), Gateway: other.Gateway.Addr(),
		Address6: netip.MustParsePrefix("fd12:9999::2/64"), Gateway6: other.Gateway6.Addr(),
		MTU: 1500, Owner: "endpoint:other",
	}
	for _, j := range []struct {
		path string
		spec driverapi.EndpointSpec
	}{{a, sa}, {b, sb}, {c, sc}} {
		if err := w.d.Join(j.path, j.spec); err != nil {
			t.Fatalf("Join %s: %v", j.spec.HostIfName, err)
		}
		checkJoined(t, w, j.path, j.spec)
	}
	checkLinkLocalWithoutDAD(t, w.host, w.h, "br-test")
	for _, p := range []struct {
		from string
		to   netip.Addr
	}{
		{a, testGateway6.Addr()}, {a, sb.Address6.Addr()}, {b, sa.Address6.Addr()},
		{c, sa.Address6.Addr()}, {a, sc.Address6.Addr()}, // across the host
		{a, sb.Address.Addr()}, // and IPv4 as before
	} {
		if err := ping(t, p.from, p.to); err != nil {
			t.Error(err)
		}
	}
}

// checkLinkLocalWithoutDAD waits for the kernel to give the bridge br (in
// the namespace ns) its link-local address (once its first port is up)
// and, once the address is usable, wants no neighbour solicitation to
// have left the bridge: duplicate address detection probes with one (or
// more) before an address can be used, for a second at least
// (RetransTimer), during which the host could not resolve a container's
// address for a packet it forwards into the bridge. Counted, not timed:
// the check once wanted the address usable within 0.5 s, a bound on a
// kernel's timing that a loaded machine could miss.
func checkLinkLocalWithoutDAD(t *testing.T, ns string, h *netlink.Handle, br string) {
	t.Helper()
	l, err := h.LinkByName(br)
	if err != nil {
		t.Fatal(err)
	}
	usable := false
	for deadline := time.Now().Add(10 * time.Second); !usable && time.Now().Before(deadline); sleepBriefly() {
		addrs, err := RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V6) })
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
				usable = true
			}
		}
	}
	if !usable {
		t.Fatalf("bridge %s got no usable link-local address in 10 s", br)
	}
	// Per device, in the namespace of the thread that reads (thread-self:
	// sandbox.Do moves one thread).
	stats := readSysctlIn(t, ns, "/proc/thread-self/net/dev_snmp6/"+br)
	for _, line := range strings.Split(stats, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "Icmp6OutNeighborSolicits" && f[1] != "0" {
			t.Errorf("bridge %s sent %s neighbour solicitations before its link-local address was usable: DAD runs on it", br, f[1])
		}
	}
	if !strings.Contains(stats, "Icmp6OutNeighborSolicits") {
		t.Errorf("no neighbour solicitation count for %s:\n%s", br, stats)
	}
}

// On a network without IPv6 the container end has no IPv6 address even
// in a sandbox whose other interface is dual-stack; and the IPv6 default
// route stays where the dual-stack join put it.
func TestIPv4OnlyJoinNextToADualStackOne(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	v4 := driverapi.BridgeSpec{Name: "br-v4", Gateway: netip.MustParsePrefix("10.99.0.1/24"), MTU: 1500}
	if err := w.d.EnsureBridge(v4, "network:v4"); err != nil {
		t.Fatal(err)
	}
	sb := nstest.New(t)
	dual := dualStackSpec(1)
	only4 := driverapi.EndpointSpec{
		Bridge: "br-v4", HostIfName: "vethv4only01", IfName: "eth1", MAC: RandomMAC(),
		Address: netip.MustParsePrefix("10.99.0.2/24"), MTU: 1500, Owner: "endpoint:v4",
	}
	for _, spec := range []driverapi.EndpointSpec{dual, only4} {
		if err := w.d.Join(sb, spec); err != nil {
			t.Fatalf("Join %s: %v", spec.IfName, err)
		}
	}
	sh := handleIn(t, sb)
	for _, spec := range []driverapi.EndpointSpec{dual, only4} {
		peer, err := sh.LinkByName(spec.IfName)
		if err != nil {
			t.Fatal(err)
		}
		checkPeerIPv6(t, sb, sh, peer, spec)
	}
	if diff := cmp.Diff([]netip.Addr{dual.Gateway6}, defaultGateways6(t, sh), netipEqual); diff != "" {
		t.Errorf("IPv6 default routes (-want +got):\n%s", diff)
	}
}

// The IPv6 default route goes where the controller says, as the IPv4 one
// does (TestDefaultRouteGoesWhereTheControllerSays): a join with Gateway6
// replaces it, SetGateway moves it, and it leaves with its endpoint (the
// kernel drops the routes of a link that goes down, as Leave sets the
// container end).
func TestIPv6DefaultRouteGoesWhereTheControllerSays(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	other := driverapi.BridgeSpec{Name: "br-other", Gateway: netip.MustParsePrefix("10.99.0.1/24"),
		Gateway6: netip.MustParsePrefix("fd12:9999::1/64"), MTU: 1500}
	if err := w.d.EnsureBridge(other, "network:other"); err != nil {
		t.Fatal(err)
	}
	sb := nstest.New(t)
	sh := handleIn(t, sb)
	first := dualStackSpec(1)
	second := driverapi.EndpointSpec{
		Bridge: "br-other", HostIfName: "vethother01", IfName: "eth1", MAC: RandomMAC(),
		Address: netip.MustParsePrefix("10.99.0.2/24"), Address6: netip.MustParsePrefix("fd12:9999::2/64"),
		MTU: 1500, Owner: "endpoint:other",
	}
	gateways := func(when string, want ...netip.Addr) {
		t.Helper()
		if diff := cmp.Diff(want, defaultGateways6(t, sh), netipEqual, cmp.Transformer("", func(a []netip.Addr) []netip.Addr {
			if len(a) == 0 {
				return nil
			}
			return a
		})); diff != "" {
			t.Errorf("IPv6 default gateways %s (-want +got):\n%s", when, diff)
		}
	}
	for _, spec := range []driverapi.EndpointSpec{first, second} {
		if err := w.d.Join(sb, spec); err != nil {
			t.Fatalf("Join %s: %v", spec.IfName, err)
		}
	}
	gateways("after a join without gateways", first.Gateway6)
	second.Gateway, second.Gateway6 = other.Gateway.Addr(), other.Gateway6.Addr()
	if err := w.d.SetGateway(sb, second); err != nil {
		t.Fatal(err)
	}
	gateways("after SetGateway", second.Gateway6)
	if gws := defaultGateways(t, sh); len(gws) != 1 || gws[0] != second.Gateway {
		t.Errorf("IPv4 default gateways after SetGateway = %v, want only %v", gws, second.Gateway)
	}
	if err := w.d.Join(sb, first); err != nil { // run again: takes the routes back
		t.Fatal(err)
	}
	gateways("after a join with gateways", first.Gateway6)
	if err := w.d.Leave(sb, first); err != nil {
		t.Fatal(err)
	}
	gateways("after the gateway endpoint left")
	if err := w.d.SetGateway(sb, second); err != nil {
		t.Fatal(err)
	}
	gateways("after SetGateway to the one left", second.Gateway6)
}

// TestUnsolicitedNAUpdatesNeighbours: an announced dual-stack join also
// sends an unsolicited neighbour advertisement, so that a neighbour that
// cached the IPv6 address with an earlier container's MAC takes the new
// one at once (as the gratuitous ARP does for IPv4).
func TestUnsolicitedNAUpdatesNeighbours(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	a, b := nstest.New(t), nstest.New(t)
	old := dualStackSpec(1)
	for _, j := range []struct {
		path string
		spec driverapi.EndpointSpec
	}{{a, old}, {b, dualStackSpec(2)}} {
		if err := w.d.Join(j.path, j.spec); err != nil {
			t.Fatal(err)
		}
	}
	w.d.Settle()
	if err := ping(t, b, old.Address6.Addr()); err != nil { // b caches a's MAC
		t.Fatal(err)
	}
	if err := w.d.Leave(a, old); err != nil {
		t.Fatal(err)
	}
	repl := old
	repl.HostIfName, repl.MAC, repl.Owner, repl.Announce = "vethtest003", RandomMAC(), "endpoint:3", true
	if err := w.d.Join(nstest.New(t), repl); err != nil {
		t.Fatal(err)
	}
	w.d.Settle()
	bh := handleIn(t, b)
	var got string
	for range 200 { // the advertisement crosses the bridge in softirq
		got = neighMAC6(t, bh, old.Address6.Addr())
		if got == repl.MAC.String() {
			return
		}
		sleepBriefly()
	}
	t.Errorf("b's neighbour entry for %s is %q, want the new MAC %v", old.Address6.Addr(), got, repl.MAC)
}

func neighMAC6(t *testing.T, h *netlink.Handle, ip netip.Addr) string {
	t.Helper()
	neighs, err := h.NeighList(0, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if a, _ := netip.AddrFromSlice(n.IP); a == ip {
			return n.HardwareAddr.String()
		}
	}
	return ""
}

// An IPv6-only network (Docker 28's --ipv4=false): the bridge has its
// IPv6 gateway and no IPv4 address; each container end has its IPv6
// addresses and route and no IPv4 address or route. Two containers
// reach each other and the bridge over IPv6. The joins are announced, as
// every join there is (no MAC derives from an IPv4 address): the
// announcement has only the neighbour advertisement to send.
func TestIPv6OnlyJoinsPingOverIPv6(t *testing.T) {
	w := newWorld(t)
	br := driverapi.BridgeSpec{Name: "br-test", Gateway6: testGateway6, MTU: 1500}
	if err := w.d.EnsureBridge(br, "network:test"); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	if got := addrsOf(t, w.h, "br-test"); len(got) != 0 {
		t.Errorf("IPv4 addresses of an IPv6-only bridge: %v, want none", got)
	}
	if diff := cmp.Diff(map[netip.Prefix]int{testGateway6: unix.IFA_F_NODAD | unix.IFA_F_PERMANENT}, globalAddrs6(t, w.h, "br-test"), netipEqual); diff != "" {
		t.Errorf("bridge IPv6 addresses (-want +got):\n%s", diff)
	}
	a, b := nstest.New(t), nstest.New(t)
	sa, sb := dualStackSpec(1), dualStackSpec(2)
	for _, s := range []*driverapi.EndpointSpec{&sa, &sb} {
		s.Address, s.Gateway, s.Announce = netip.Prefix{}, netip.Addr{}, true
	}
	for _, j := range []struct {
		path string
		spec driverapi.EndpointSpec
	}{{a, sa}, {b, sb}} {
		if err := w.d.Join(j.path, j.spec); err != nil {
			t.Fatalf("Join %s: %v", j.spec.HostIfName, err)
		}
		checkJoined(t, w, j.path, j.spec)
	}
	w.d.Settle()
	for _, p := range []struct {
		from string
		to   netip.Addr
	}{{a, testGateway6.Addr()}, {a, sb.Address6.Addr()}, {b, sa.Address6.Addr()}} {
		if err := ping(t, p.from, p.to); err != nil {
			t.Error(err)
		}
	}
}

// Join refuses an endpoint with no address of either family, and an
// IPv4 gateway without an IPv4 address, before it touches the kernel;
// EnsureBridge refuses a bridge with no gateway of either family.
func TestIPv6OnlySpecsAreChecked(t *testing.T) {
	none := endpointSpec(1)
	none.Address, none.Gateway = netip.Prefix{}, netip.Addr{}
	gwOnly := dualStackSpec(1)
	gwOnly.Address = netip.Prefix{}
	for name, spec := range map[string]driverapi.EndpointSpec{"no address": none, "IPv4 gateway alone": gwOnly} {
		if err := validateEndpointSpec(spec); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := validateBridgeSpec(driverapi.BridgeSpec{Name: "br-test", MTU: 1500}, "network:test"); err == nil {
		t.Error("a bridge with no gateway: accepted")
	}
	v6only := dualStackSpec(1)
	v6only.Address, v6only.Gateway = netip.Prefix{}, netip.Addr{}
	if err := validateEndpointSpec(v6only); err != nil {
		t.Errorf("IPv6-only endpoint: %v", err)
	}
}

// TestJoinKeepsTheUsersAddrGenMode: an endpoint sysctl that sets the
// interface's addr_gen_mode is the user's (moby writes endpoint sysctls
// after its own settings): the kernel makes the link-local address as it
// says (here a random one), where berth otherwise turns generation off
// and adds the MAC's EUI-64 address itself.
func TestJoinKeepsTheUsersAddrGenMode(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	sb := nstest.New(t)
	spec := dualStackSpec(1)
	spec.Sysctls = []string{"net.ipv6.conf.IFNAME.addr_gen_mode=3"}
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	if v := readSysctlIn(t, sb, "/proc/sys/net/ipv6/conf/"+spec.IfName+"/addr_gen_mode"); v != "3" {
		t.Errorf("addr_gen_mode = %s, want the user's 3", v)
	}
	sh := handleIn(t, sb)
	peer, err := sh.LinkByName(spec.IfName)
	if err != nil {
		t.Fatal(err)
	}
	eui := linkLocal(spec.MAC)
	var linkLocals []netip.Prefix
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		addrs, err := RetryDump(func() ([]netlink.Addr, error) { return sh.AddrList(peer, netlink.FAMILY_V6) })
		if err != nil {
			t.Fatal(err)
		}
		linkLocals = nil
		for _, a := range addrs {
			if p := prefixOf(a.IPNet); p.Addr().IsLinkLocalUnicast() {
				linkLocals = append(linkLocals, p)
			}
		}
		if len(linkLocals) > 0 {
			break
		}
	}
	if len(linkLocals) != 1 || linkLocals[0] == eui {
		t.Errorf("link-local addresses %v; want one the kernel made at random, not berth's %v", linkLocals, eui)
	}
}

// --link-local-ip: the container end gets its extra link-local addresses
// beside its own, and they answer across the bridge; on an IPv4-only
// network, where IPv6 is off on the link, an IPv6 one fails the join (as
// moby's setInterfaceLinkLocalIPs does) and the join leaves nothing.
func TestJoinAddsLinkLocalAddresses(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	a, b := nstest.New(t), nstest.New(t)
	sa, sb := dualStackSpec(1), dualStackSpec(2)
	sa.LinkLocal = []netip.Prefix{netip.MustParsePrefix("169.254.1.1/16"), netip.MustParsePrefix("fe80::1:1/64")}
	sb.LinkLocal = []netip.Prefix{netip.MustParsePrefix("169.254.1.2/16")}
	if err := errors.Join(w.d.Join(a, sa), w.d.Join(b, sb)); err != nil {
		t.Fatal(err)
	}
	if got := addrsOf(t, handleIn(t, a), "eth0"); !slices.Contains(got, sa.LinkLocal[0]) || !slices.Contains(got, sa.Address) {
		t.Errorf("a's IPv4 addresses %v, want %v and %v", got, sa.Address, sa.LinkLocal[0])
	}
	ha := handleIn(t, a)
	peer, err := ha.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs6, err := RetryDump(func() ([]netlink.Addr, error) { return ha.AddrList(peer, netlink.FAMILY_V6) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(addrs6, func(x netlink.Addr) bool { return prefixOf(x.IPNet) == sa.LinkLocal[1] }) {
		t.Errorf("a's IPv6 addresses %v, want %v among them", addrs6, sa.LinkLocal[1])
	}
	if err := ping(t, b, sa.LinkLocal[0].Addr()); err != nil {
		t.Error(err)
	}

	c := nstest.New(t)
	sc := endpointSpec(3) // IPv4 only, on the same bridge
	sc.LinkLocal = []netip.Prefix{netip.MustParsePrefix("fe80::3/64")}
	if err := w.d.Join(c, sc); err == nil || !strings.Contains(err.Error(), "fe80::3/64") {
		t.Errorf("an IPv6 link-local address on an IPv4-only link: %v", err)
	}
	if ports := portsOf(t, w.h, "br-test"); slices.Contains(ports, sc.HostIfName) {
		t.Errorf("a failed join left %s on the bridge: %v", sc.HostIfName, ports)
	}
}
