package bridge

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// waitOperUp waits, up to 5 s, for the link called name to be
// operationally up (its carrier seen by the kernel's link watch).
func waitOperUp(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		l, err := h.LinkByName(name)
		if err != nil {
			t.Fatalf("look up %q: %v", name, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q is still %v after 5 s, want up", name, l.Attrs().OperState)
		}
	}
}

// checkJoined checks what Join promises on both sides of one endpoint.
func checkJoined(t *testing.T, w *testWorld, sbPath string, spec driverapi.EndpointSpec) {
	t.Helper()
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatalf("host end %q: %v", spec.HostIfName, err)
	}
	br, _ := w.h.LinkByName(spec.Bridge)
	if host.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("host end %q is not a port of %q", spec.HostIfName, spec.Bridge)
	}
	if got, want := host.Attrs().Alias, "berth:"+spec.Owner; got != want {
		t.Errorf("host end alias = %q, want %q", got, want)
	}
	if g := host.Attrs().Group; g != 0 {
		t.Errorf("host end group = %#x, want 0 (out of the pending group once tagged)", g)
	}
	if host.Attrs().Flags&net.FlagUp == 0 || host.Attrs().MTU != spec.MTU {
		t.Errorf("host end flags %v MTU %d, want up and %d", host.Attrs().Flags, host.Attrs().MTU, spec.MTU)
	}
	// IPv6 is off on the host end before it has a carrier: it never gets
	// an IPv6 address, nor the ff00::/8 route the kernel gives every IPv6
	// link once its carrier is on (the kernel's link watch turns that on
	// asynchronously: wait for it, then look).
	if got := readSysctlIn(t, w.host, "/proc/sys/net/ipv6/conf/"+spec.HostIfName+"/disable_ipv6"); got != "1" {
		t.Errorf("IPv6 on host end right after Join: disable_ipv6 = %s, want 1", got)
	}
	waitOperUp(t, w.h, spec.HostIfName)
	if addrs, err := w.h.AddrList(host, netlink.FAMILY_V6); err != nil || len(addrs) != 0 {
		t.Errorf("IPv6 addresses on host end: %v (err %v), want none", addrs, err)
	}
	routes, err := w.h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{LinkIndex: host.Attrs().Index, Table: unix.RT_TABLE_UNSPEC},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil || len(routes) != 0 {
		t.Errorf("IPv6 routes through the host end: %v (err %v), want none", routes, err)
	}
	if pi, err := w.h.LinkGetProtinfo(host); err != nil || !pi.Hairpin {
		t.Errorf("host end hairpin mode = %v (err %v), want on (a container reaching its own published port)", pi.Hairpin, err)
	}
	sh := handleIn(t, sbPath)
	if diff := cmp.Diff([]string{spec.IfName, "lo"}, linkNames(t, sh)); diff != "" {
		t.Errorf("sandbox links (-want +got):\n%s", diff)
	}
	peer, err := sh.LinkByName(spec.IfName)
	if err != nil {
		t.Fatal(err)
	}
	if peer.Attrs().HardwareAddr.String() != spec.MAC.String() || peer.Attrs().MTU != spec.MTU {
		t.Errorf("peer MAC %v MTU %d, want %v and %d", peer.Attrs().HardwareAddr, peer.Attrs().MTU, spec.MAC, spec.MTU)
	}
	if peer.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("peer %q is down", spec.IfName)
	}
	// One queue each way on both ends, asked for at creation: a veth
	// created without them gets one per possible CPU and then shrinks to
	// one active queue, and each shrink waits for an RCU grace period under
	// the RTNL lock (see createVeth).
	for _, l := range []netlink.Link{host, peer} {
		if a := l.Attrs(); a.NumTxQueues != 1 || a.NumRxQueues != 1 {
			t.Errorf("%q has %d TX and %d RX queues, want 1 and 1", a.Name, a.NumTxQueues, a.NumRxQueues)
		}
	}
	checkPeerIPv6(t, sbPath, sh, peer, spec)
	if lo, _ := sh.LinkByName("lo"); lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("lo is down in the sandbox")
	}
	var want4 []netip.Prefix // none on an IPv6-only network
	if spec.Address.IsValid() {
		want4 = []netip.Prefix{spec.Address}
	}
	if diff := cmp.Diff(want4, addrsOf(t, sh, spec.IfName), netipEqual); diff != "" {
		t.Errorf("peer addresses (-want +got):\n%s", diff)
	}
	if v6, _ := w.h.AddrList(host, netlink.FAMILY_V6); len(v6) != 0 {
		t.Errorf("host end %q has IPv6 addresses %v; a bridge port needs none", spec.HostIfName, v6)
	}
	var wantGW, wantGW6 []netip.Addr
	if spec.Gateway.IsValid() {
		wantGW = []netip.Addr{spec.Gateway}
	}
	if diff := cmp.Diff(wantGW, defaultGateways(t, sh), netipEqual); diff != "" {
		t.Errorf("sandbox default routes (-want +got):\n%s", diff)
	}
	if spec.Gateway6.IsValid() {
		wantGW6 = []netip.Addr{spec.Gateway6}
	}
	if diff := cmp.Diff(wantGW6, defaultGateways6(t, sh), netipEqual); diff != "" {
		t.Errorf("sandbox IPv6 default routes (-want +got):\n%s", diff)
	}
}

func TestJoinTwoSandboxesThatPingEachOther(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	a, b := nstest.New(t), nstest.New(t)
	sa, sbSpec := endpointSpec(1), endpointSpec(2)
	sbSpec.MAC = RandomMAC()
	for _, j := range []struct {
		path string
		spec driverapi.EndpointSpec
	}{{a, sa}, {b, sbSpec}} {
		if err := w.d.Join(j.path, j.spec); err != nil {
			t.Fatalf("Join %s: %v", j.spec.HostIfName, err)
		}
		checkJoined(t, w, j.path, j.spec)
	}
	if diff := cmp.Diff([]string{sa.HostIfName, sbSpec.HostIfName}, portsOf(t, w.h, "br-test")); diff != "" {
		t.Errorf("bridge ports (-want +got):\n%s", diff)
	}
	w.d.Settle() // the ports forward once the announcements went out
	if err := ping(t, a, sbSpec.Address.Addr()); err != nil {
		t.Error(err)
	}
	if err := ping(t, b, sa.Address.Addr()); err != nil {
		t.Error(err)
	}
	if err := ping(t, a, testGateway.Addr()); err != nil {
		t.Errorf("sandbox cannot reach its gateway: %v", err)
	}
}

// TestJoinNamedWithSysctls: an endpoint's own name and sysctls (Docker
// 28's endpoint driver options) are what the container sees, the
// sysctls set before the interface came up; one the kernel has not
// fails the join and leaves nothing behind.
func TestJoinNamedWithSysctls(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	sb := nstest.New(t)
	spec := endpointSpec(1)
	spec.IfName = "lan.7"
	spec.Sysctls = []string{"net.ipv4.conf.IFNAME.log_martians=1", "net.ipv4.conf.ifname.arp_announce=2", "net.ipv6.neigh.IFNAME.retrans_time_ms=2500"}
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	checkJoined(t, w, sb, spec)
	for path, want := range map[string]string{
		"/proc/sys/net/ipv4/conf/lan.7/log_martians":     "1",
		"/proc/sys/net/ipv4/conf/lan.7/arp_announce":     "2",
		"/proc/sys/net/ipv6/neigh/lan.7/retrans_time_ms": "2500",
		"/proc/sys/net/ipv4/conf/default/log_martians":   "0",
	} {
		if got := readSysctlIn(t, sb, path); got != want {
			t.Errorf("%s = %s, want %s", path, got, want)
		}
	}
	sb2 := nstest.New(t)
	bad := endpointSpec(2)
	bad.Sysctls = []string{"net.ipv4.conf.IFNAME.no_such_sysctl=1"}
	if err := w.d.Join(sb2, bad); err == nil || !strings.Contains(err.Error(), "sysctl net.ipv4.conf."+bad.IfName+".no_such_sysctl does not exist") ||
		strings.Contains(err.Error(), "no such file") {
		t.Errorf("a sysctl the kernel has not: %v", err)
	}
	if _, err := w.h.LinkByName(bad.HostIfName); err == nil {
		t.Errorf("the failed join left %s behind", bad.HostIfName)
	}
}

func TestJoinWithoutGatewayAddsNoDefaultRoute(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	sb := nstest.New(t)
	spec := endpointSpec(1)
	spec.Gateway = netip.Addr{}
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	checkJoined(t, w, sb, spec)
}

func TestJoinTwiceIsIdempotent(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	sb := nstest.New(t)
	spec := endpointSpec(1)
	for i := range 2 {
		if err := w.d.Join(sb, spec); err != nil {
			t.Fatalf("Join #%d: %v", i+1, err)
		}
	}
	checkJoined(t, w, sb, spec)
}

// TestDefaultRouteGoesWhereTheControllerSays: a join with a gateway
// gives the sandbox its default route in place of the one it has, one
// without adds none, and SetGateway moves it: the controller decides
// which endpoint is the gateway.
func TestDefaultRouteGoesWhereTheControllerSays(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	other := driverapi.BridgeSpec{Name: "br-other", Gateway: netip.MustParsePrefix("10.99.0.1/24")}
	if err := w.d.EnsureBridge(other, "network:other"); err != nil {
		t.Fatal(err)
	}
	sb := nstest.New(t)
	first := endpointSpec(1)
	second := driverapi.EndpointSpec{
		Bridge: "br-other", HostIfName: "vethother01", IfName: "eth1", MAC: RandomMAC(),
		Address: netip.MustParsePrefix("10.99.0.2/24"), Owner: "endpoint:other",
	}
	sh := handleIn(t, sb)
	gateways := func(when string, want netip.Addr) {
		t.Helper()
		if gws := defaultGateways(t, sh); len(gws) != 1 || gws[0] != want {
			t.Errorf("default gateways %s = %v, want only %v", when, gws, want)
		}
	}
	for _, spec := range []driverapi.EndpointSpec{first, second} {
		if err := w.d.Join(sb, spec); err != nil {
			t.Fatalf("Join %s: %v", spec.IfName, err)
		}
	}
	if diff := cmp.Diff([]string{"eth0", "eth1", "lo"}, linkNames(t, sh)); diff != "" {
		t.Errorf("sandbox links (-want +got):\n%s", diff)
	}
	gateways("after a join without a gateway", first.Gateway)
	second.Gateway = other.Gateway.Addr()
	if err := w.d.SetGateway(sb, second); err != nil {
		t.Fatal(err)
	}
	gateways("after SetGateway", second.Gateway)
	// The new gateway's neighbour entry is seeded, as a join seeds it.
	otherBr, err := w.h.LinkByName("br-other")
	if err != nil {
		t.Fatal(err)
	}
	seeded := ""
	if neighs, err := sh.NeighList(0, netlink.FAMILY_V4); err == nil {
		for _, n := range neighs {
			if n.IP.Equal(second.Gateway.AsSlice()) {
				seeded = n.HardwareAddr.String()
			}
		}
	}
	if seeded != otherBr.Attrs().HardwareAddr.String() {
		t.Errorf("neighbour entry for the moved gateway %s: %q, want br-other's MAC %s", second.Gateway, seeded, otherBr.Attrs().HardwareAddr)
	}
	if err := w.d.Leave(sb, first); err != nil {
		t.Fatal(err)
	}
	gateways("after the first left", second.Gateway)
	// A join with a gateway takes the route over.
	if err := w.d.Join(sb, first); err != nil {
		t.Fatal(err)
	}
	gateways("after a join with a gateway", first.Gateway)
}

func TestJoinRefusesTakenNames(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	sb := nstest.New(t)

	spec := endpointSpec(1)
	addVeth(t, w.h, spec.HostIfName) // someone else's link with our random name
	err := w.d.Join(sb, spec)
	if !errors.Is(err, ErrHostIfNameTaken) || !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("Join with a taken host name = %v, want ErrHostIfNameTaken as a conflict", err)
	}
	if l, _ := w.h.LinkByName(spec.HostIfName); l == nil || l.Type() != "veth" || l.Attrs().Alias != "" {
		t.Errorf("Join touched the link that owned the name: %v", l)
	}

	addVeth(t, handleIn(t, sb), "eth0") // the container side name is taken
	spec = endpointSpec(2)
	if err := w.d.Join(sb, spec); !errdefs.Is(err, errdefs.KindConflict) {
		t.Fatalf("Join with a taken container name = %v, want a conflict", err)
	}
	if ok, _ := w.d.LinkExists(spec.HostIfName); ok {
		t.Errorf("failed Join left %q behind", spec.HostIfName)
	}
}

func TestJoinFailuresLeaveNothingBehind(t *testing.T) {
	steps := []string{"create veth", "set up port", "loopback up", "peer up"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			w := newWorld(t)
			w.ensureTestBridge(t)
			sb := nstest.New(t)
			before := linkNames(t, w.h)
			injected := errors.New("injected failure")
			w.d.failAt = func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}
			if err := w.d.Join(sb, endpointSpec(1)); !errors.Is(err, injected) {
				t.Fatalf("Join = %v, want the injected failure", err)
			}
			checkNothingLeft(t, w, sb, before)
		})
	}
	t.Run("bridge missing", func(t *testing.T) {
		w := newWorld(t)
		sb := nstest.New(t)
		before := linkNames(t, w.h)
		if err := w.d.Join(sb, endpointSpec(1)); !errdefs.Is(err, errdefs.KindNotFound) {
			t.Fatalf("Join = %v, want not found", err)
		}
		checkNothingLeft(t, w, sb, before)
	})
	t.Run("bridge is not a bridge", func(t *testing.T) {
		w := newWorld(t)
		addVeth(t, w.h, "br-test")
		sb := nstest.New(t)
		before := linkNames(t, w.h)
		if err := w.d.Join(sb, endpointSpec(1)); !errdefs.Is(err, errdefs.KindConflict) {
			t.Fatalf("Join = %v, want a conflict", err)
		}
		if diff := cmp.Diff(before, linkNames(t, w.h)); diff != "" {
			t.Errorf("host links changed (-before +after):\n%s", diff)
		}
	})
	t.Run("sandbox missing", func(t *testing.T) {
		w := newWorld(t)
		w.ensureTestBridge(t)
		before := linkNames(t, w.h)
		if err := w.d.Join(t.TempDir()+"/gone", endpointSpec(1)); err == nil {
			t.Fatal("Join into a missing sandbox succeeded")
		}
		checkNothingLeft(t, w, "", before)
	})
}

// checkNothingLeft checks that the host has exactly the links it had before
// and the sandbox (if any) only lo.
func checkNothingLeft(t *testing.T, w *testWorld, sbPath string, hostBefore []string) {
	t.Helper()
	if diff := cmp.Diff(hostBefore, linkNames(t, w.h)); diff != "" {
		t.Errorf("host links changed (-before +after):\n%s", diff)
	}
	if ports := portsOf(t, w.h, "br-test"); len(ports) != 0 {
		t.Errorf("bridge still has ports %v", ports)
	}
	if sbPath != "" && sandbox.IsNamespace(sbPath) {
		if diff := cmp.Diff([]string{"lo"}, linkNames(t, handleIn(t, sbPath))); diff != "" {
			t.Errorf("sandbox links (-want +got):\n%s", diff)
		}
	}
}

func TestLeaveIsIdempotentAndLeavesNothing(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	before := linkNames(t, w.h)
	sb := nstest.New(t)
	spec := endpointSpec(1)
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := w.d.Leave(sb, spec); err != nil {
			t.Fatalf("Leave #%d: %v", i+1, err)
		}
		w.d.Settle()
		checkNothingLeft(t, w, sb, before)
	}
}

func TestLeaveCutsOffAtOnceAndRejoinParksTheDyingPeer(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	a, b := nstest.New(t), nstest.New(t)
	sa, sb := endpointSpec(1), endpointSpec(2)
	for _, j := range []struct {
		path string
		spec driverapi.EndpointSpec
	}{{a, sa}, {b, sb}} {
		if err := w.d.Join(j.path, j.spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.d.Leave(a, sa); err != nil {
		t.Fatal(err)
	}
	// Before the reaper runs, the pair may still exist, but cut off.
	if host, err := linkIfExists(w.h, sa.HostIfName); err != nil || (host != nil && host.Attrs().RawFlags&unix.IFF_LOWER_UP != 0) {
		t.Errorf("host end after Leave = %v, %v; want gone or without carrier", host, err)
	}
	if peer, err := linkIfExists(handleIn(t, a), sa.IfName); err != nil || (peer != nil && peer.Attrs().Flags&net.FlagUp != 0) {
		t.Errorf("container end after Leave = %v, %v; want gone or down", peer, err)
	}
	if err := ping(t, b, sa.Address.Addr()); err == nil {
		t.Error("the left endpoint still answers")
	}
	// Joining again at once under the same container name moves the dying
	// peer's name aside; under the same host name, waits for the reaper.
	if err := w.d.Join(a, sa); err != nil {
		t.Fatalf("Join after Leave: %v", err)
	}
	w.d.Settle()
	checkJoined(t, w, a, sa)
	again := sa
	again.HostIfName = "vethtest099"
	if err := w.d.Leave(a, sa); err != nil {
		t.Fatal(err)
	}
	if err := w.d.Join(a, again); err != nil {
		t.Fatalf("Join under a new host name after Leave: %v", err)
	}
	w.d.Settle()
	checkJoined(t, w, a, again)
	// The ping that found a cut off left b resolving the address: its
	// last ARP probe goes out some 2 s after that ping began, while a may
	// be cut off again (between Leave and Join just above), and a packet
	// queued on a resolution that fails is dropped. Start afresh.
	forgetNeighbour(t, b, sb.IfName, sa.Address.Addr())
	if err := ping(t, b, sa.Address.Addr()); err != nil {
		t.Error(err)
	}
}

// forgetNeighbour deletes the IPv4 neighbour entry for addr on ifName in
// the namespace at path, if there is one.
func forgetNeighbour(t *testing.T, path, ifName string, addr netip.Addr) {
	t.Helper()
	h := handleIn(t, path)
	l, err := h.LinkByName(ifName)
	if err != nil {
		t.Fatalf("look up %q in %q: %v", ifName, path, err)
	}
	err = h.NeighDel(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: netlink.FAMILY_V4, IP: addr.AsSlice()})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		t.Fatalf("delete neighbour %s on %q in %q: %v", addr, ifName, path, err)
	}
}

func TestLeaveWithoutTheSandboxCutsOffTheHostEnd(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	sb := nstest.New(t)
	spec := endpointSpec(1)
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	// As the orphan sweep calls it: only the host name is known.
	if err := w.d.Leave("", driverapi.EndpointSpec{HostIfName: spec.HostIfName}); err != nil {
		t.Fatal(err)
	}
	if host, err := linkIfExists(w.h, spec.HostIfName); err != nil || (host != nil && host.Attrs().Flags&net.FlagUp != 0) {
		t.Errorf("host end after Leave = %v, %v; want gone or down", host, err)
	}
	w.d.Settle()
	if ok, _ := w.d.LinkExists(spec.HostIfName); ok {
		t.Errorf("%q still exists after Settle", spec.HostIfName)
	}
	if diff := cmp.Diff([]string{"lo"}, linkNames(t, handleIn(t, sb))); diff != "" {
		t.Errorf("sandbox links (-want +got):\n%s", diff)
	}
}

func TestLeaveDeletesAtOnceWhenTheReaperCannotTakeIt(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	before := linkNames(t, w.h)
	sb := nstest.New(t)
	spec := endpointSpec(1)
	for _, step := range []string{"cut off", "mark for reaping"} {
		if err := w.d.Join(sb, spec); err != nil {
			t.Fatal(err)
		}
		w.d.failAt = func(s string) error {
			if s == step {
				return errors.New("injected failure")
			}
			return nil
		}
		if err := w.d.Leave(sb, spec); err != nil {
			t.Fatalf("Leave failing at %q: %v", step, err)
		}
		w.d.failAt = nil
		checkNothingLeft(t, w, sb, before) // no Settle: the delete was synchronous
	}
}

func TestNewDeletesVethsAnEarlierRunLeftMarked(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(t *testing.T, w *testWorld, sb string, spec driverapi.EndpointSpec)
	}{{
		name: "killed between Leave and the reaper",
		leave: func(t *testing.T, w *testWorld, sb string, spec driverapi.EndpointSpec) {
			if err := w.d.Join(sb, spec); err != nil {
				t.Fatal(err)
			}
			host, _ := w.h.LinkByName(spec.HostIfName)
			if err := w.h.LinkSetGroup(host, reapGroup); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		// The pair exists, untagged: nothing names it if the endpoint's
		// record is lost (see pendingGroup).
		name: "killed in Join before the host end was tagged",
		leave: func(t *testing.T, w *testWorld, sb string, spec driverapi.EndpointSpec) {
			conn, err := w.d.acquire(sb)
			if err != nil {
				t.Fatal(err)
			}
			defer w.d.release(conn, false)
			brIndex, err := w.d.bridgeIndex(spec.Bridge, false)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := w.d.port.createVeth(spec, brIndex, int(conn.ns)); err != nil {
				t.Fatal(err)
			}
			host, err := w.h.LinkByName(spec.HostIfName)
			if err != nil {
				t.Fatal(err)
			}
			if host.Attrs().Group != pendingGroup || host.Attrs().Alias != "" {
				t.Fatalf("fresh host end: group %#x alias %q, want %#x and none", host.Attrs().Group, host.Attrs().Alias, pendingGroup)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.ensureTestBridge(t)
			before := linkNames(t, w.h)
			sb := nstest.New(t)
			tc.leave(t, w, sb, endpointSpec(1))
			d, err := New(w.host, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkNothingLeft(t, w, sb, before)
		})
	}
}

func TestLeaveAfterTheSandboxIsGone(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	before := linkNames(t, w.h)
	sb, spec := w.joinUnboundable(t, 1)
	if err := sandbox.Unbind(sb); err != nil {
		t.Fatal(err)
	}
	// The kernel reaps the pair with the namespace in the background; Leave
	// must succeed whether or not it has got there yet.
	for i := range 2 {
		if err := w.d.Leave(sb, spec); err != nil {
			t.Fatalf("Leave #%d: %v", i+1, err)
		}
	}
	w.d.Settle()
	checkNothingLeft(t, w, "", before)
}

func TestLeaveSparesOtherEndpointsLinks(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	sb := nstest.New(t)
	spec := endpointSpec(1)
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	stale := spec
	stale.Owner = "endpoint:stale" // an old record naming a link that is now someone else's
	if err := w.d.Leave(sb, stale); err != nil {
		t.Fatalf("Leave with a stale owner: %v", err)
	}
	checkJoined(t, w, sb, spec)

	addBridge(t, w.h, "br-foreign", "")
	notVeth := endpointSpec(2)
	notVeth.HostIfName = "br-foreign"
	if err := w.d.Leave(sb, notVeth); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("Leave of a bridge = %v, want a conflict", err)
	}
	if ok, _ := w.d.LinkExists("br-foreign"); !ok {
		t.Error("Leave deleted a bridge")
	}
}

// replaceNeighbour joins endpoints 1 and 2 in two sandboxes, lets 2 cache
// 1's MAC, then takes 1 away and joins a third sandbox with 1's address, a
// new MAC and the given Announce; it returns 2's sandbox and the old and
// new specs.
func replaceNeighbour(t *testing.T, w *testWorld, announce bool) (b string, old, repl driverapi.EndpointSpec) {
	t.Helper()
	w.ensureTestBridge(t)
	a, b := nstest.New(t), nstest.New(t)
	old, sbSpec := endpointSpec(1), endpointSpec(2)
	for _, j := range []struct {
		path string
		spec driverapi.EndpointSpec
	}{{a, old}, {b, sbSpec}} {
		if err := w.d.Join(j.path, j.spec); err != nil {
			t.Fatal(err)
		}
	}
	w.d.Settle()
	if err := ping(t, b, old.Address.Addr()); err != nil { // b caches a's MAC
		t.Fatal(err)
	}
	// a's container goes away and a new one gets its address and a new MAC.
	if err := w.d.Leave(a, old); err != nil {
		t.Fatal(err)
	}
	repl = old
	repl.HostIfName, repl.MAC, repl.Owner, repl.Announce = "vethtest003", RandomMAC(), "endpoint:3", announce
	if err := w.d.Join(nstest.New(t), repl); err != nil {
		t.Fatal(err)
	}
	w.d.Settle() // the announcement, if any, has been sent
	return b, old, repl
}

func TestGratuitousARPUpdatesNeighbours(t *testing.T) {
	w := newWorld(t)
	b, old, repl := replaceNeighbour(t, w, true)
	bh := handleIn(t, b)
	var got net.HardwareAddr
	for range 200 { // the ARP crosses the bridge in softirq, after Join returns
		got = neighMAC(t, bh, old.Address.Addr())
		if got.String() == repl.MAC.String() {
			return
		}
		sleepBriefly()
	}
	t.Errorf("b's neighbour entry for %s is %v, want the new MAC %v", old.Address.Addr(), got, repl.MAC)
}

// Without Announce (the MAC is the address's own, as a neighbour already
// has it) Join floods nothing: a neighbour's entry is left alone.
func TestJoinWithoutAnnounceSendsNoGratuitousARP(t *testing.T) {
	w := newWorld(t)
	b, old, _ := replaceNeighbour(t, w, false)
	time.Sleep(200 * time.Millisecond) // what was sent has crossed the bridge by now
	if got := neighMAC(t, handleIn(t, b), old.Address.Addr()); got.String() != old.MAC.String() {
		t.Errorf("b's neighbour entry for %s is %v, want the old %v left alone (no announcement asked)", old.Address.Addr(), got, old.MAC)
	}
}

func neighMAC(t *testing.T, h *netlink.Handle, ip netip.Addr) net.HardwareAddr {
	t.Helper()
	neighs, err := h.NeighList(0, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if a, _ := netip.AddrFromSlice(n.IP); a.Unmap() == ip {
			return n.HardwareAddr
		}
	}
	return nil
}

func TestCloseDeletesWhatLeaveLeftToTheReaper(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	before := linkNames(t, w.h)
	d, err := New(w.host, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	sb := nstest.New(t)
	spec := endpointSpec(1)
	if err := d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Leave(sb, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, w, sb, before)
}

// The driver keeps a sandbox's namespace open from Join on (its netlink and
// packet sockets); ReleaseSandbox lets it go, so that unbinding the
// namespace file then ends the namespace and the kernel deletes the pair.
func TestReleaseSandboxLetsTheNamespaceGo(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	sb, spec := w.joinUnboundable(t, 1)
	w.d.Settle() // the announcement has used (and given back) the conn
	w.d.conns.mu.Lock()
	held := w.d.conns.m[sb]
	w.d.conns.mu.Unlock()
	if held == nil || held.arpFD < 0 {
		t.Fatalf("after Join and its announcement the driver holds %+v, want the sandbox's conn with its packet socket", held)
	}
	w.d.ReleaseSandbox(sb)
	if err := sandbox.Unbind(sb); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := linkIfExists(w.h, spec.HostIfName)
		if err != nil {
			t.Fatal(err)
		}
		if l == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("veth %s still exists 10 s after its released sandbox was unbound", spec.HostIfName)
		}
	}
}

// joinSettled joins endpoint n on the test bridge in a new sandbox and
// waits for the driver's background work.
func (w *testWorld) joinSettled(t *testing.T, n int) driverapi.EndpointSpec {
	t.Helper()
	w.ensureTestBridge(t)
	spec := endpointSpec(n)
	if err := w.d.Join(nstest.New(t), spec); err != nil {
		t.Fatal(err)
	}
	w.d.Settle()
	return spec
}

// joinUnboundable joins endpoint n in a new sandbox that the test may
// unbind itself (it is unbound at the end otherwise).
func (w *testWorld) joinUnboundable(t *testing.T, n int) (string, driverapi.EndpointSpec) {
	t.Helper()
	sb := t.TempDir() + "/sandbox"
	if err := sandbox.NewBound(sb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sandbox.Unbind(sb) })
	spec := endpointSpec(n)
	spec.Announce = true // all the driver holds for a sandbox, packet socket included
	if err := w.d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	return sb, spec
}

// Join attaches ports by the bridge's remembered index; when the bridge was
// deleted and made again behind the driver's back (a new index), Join finds
// the new one by name instead of failing.
func TestJoinFindsABridgeMadeAgain(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	old, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkDel(old); err != nil {
		t.Fatal(err)
	}
	again := addBareBridge(t, w.h, "br-test")
	if again.Attrs().Index == old.Attrs().Index {
		t.Fatalf("the bridge made again kept index %d", again.Attrs().Index)
	}
	_, spec := w.joinUnboundable(t, 1)
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if host.Attrs().MasterIndex != again.Attrs().Index {
		t.Fatalf("%s is a port of ifindex %d, want the new bridge's %d", spec.HostIfName, host.Attrs().MasterIndex, again.Attrs().Index)
	}
}

// Adopt finds an endpoint's host end and disables IPv6 on it again (a
// daemon that died right after Join never ran the background part); a
// missing one is reported, not made.
func TestAdoptDisablesIPv6OnTheHostEnd(t *testing.T) {
	w := newWorld(t)
	spec := w.joinSettled(t, 1)
	path := "/proc/sys/net/ipv6/conf/" + spec.HostIfName + "/disable_ipv6"
	if err := sandbox.Do(w.host, func() error { return os.WriteFile(path, []byte("0"), 0o644) }); err != nil {
		t.Fatal(err)
	}
	if ok, err := w.d.Adopt("", spec); !ok || err != nil {
		t.Fatalf("Adopt = %v, %v; want true", ok, err)
	}
	if got := readSysctlIn(t, w.host, path); got != "1" {
		t.Errorf("disable_ipv6 after Adopt = %s, want 1", got)
	}
	missing := endpointSpec(2)
	if ok, err := w.d.Adopt("", missing); ok || err != nil {
		t.Errorf("Adopt of a missing host end = %v, %v; want false, nil", ok, err)
	}
	if ok, _ := w.d.LinkExists(missing.HostIfName); ok {
		t.Error("Adopt made a missing host end")
	}
}

// Adopt puts an endpoint's host end back on its bridge when the bridge
// was deleted and made again while no daemon ran (the daemon's start
// makes missing bridges first): the veth outlived its bridge, and was
// left outside the new one, the container's network silently gone.
func TestAdoptReattachesToABridgeMadeAgain(t *testing.T) {
	w := newWorld(t)
	spec := w.joinSettled(t, 1)
	old, err := w.h.LinkByName(spec.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.h.LinkDel(old); err != nil {
		t.Fatal(err)
	}
	w.ensureTestBridge(t)
	again, err := w.h.LinkByName(spec.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := w.d.Adopt("", spec); !ok || err != nil {
		t.Fatalf("Adopt = %v, %v; want true", ok, err)
	}
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatal(err)
	}
	if host.Attrs().MasterIndex != again.Attrs().Index || host.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s after Adopt: master %d up %v, want the new bridge's %d and up", spec.HostIfName, host.Attrs().MasterIndex, host.Attrs().Flags&net.FlagUp != 0, again.Attrs().Index)
	}
	if host.Attrs().Alias != ownerAlias(spec.Owner) {
		t.Errorf("alias %q, want %q", host.Attrs().Alias, ownerAlias(spec.Owner))
	}
	// On its bridge already: nothing to do.
	if ok, err := w.d.Adopt("", spec); !ok || err != nil {
		t.Fatalf("Adopt again = %v, %v", ok, err)
	}
}

// TestJoinSeedsTheGatewaysNeighbour: a joined container already knows
// its gateway's MAC, the bridge's, without asking: the join's batch left a
// neighbour entry for it (STALE, checked by the kernel on first use), so
// its first packet out goes without an ARP broadcast flooded to every
// port. A join that gets no default route seeds nothing.
func TestJoinSeedsTheGatewaysNeighbour(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	br, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := nstest.New(t), nstest.New(t), nstest.New(t)
	sa, sb, sc := endpointSpec(1), endpointSpec(2), endpointSpec(3)
	sb.Gateway = netip.Addr{}
	sc.ForeignGateway = true // inhibit_ipv4: the gateway is a router's on the bridge
	for _, j := range []struct {
		path string
		spec driverapi.EndpointSpec
	}{{a, sa}, {b, sb}, {c, sc}} {
		if err := w.d.Join(j.path, j.spec); err != nil {
			t.Fatal(err)
		}
	}
	if mac, _ := neighbourOf(t, c, testGateway.Addr()); mac != "" {
		t.Errorf("c, whose gateway is not the bridge, has the gateway's entry seeded with %s", mac)
	}
	// Nor when its route moves there later (SetGateway: a disconnect of
	// its gateway network, a start settling the choice).
	e := nstest.New(t)
	se := endpointSpec(4)
	se.Gateway = netip.Addr{}
	if err := w.d.Join(e, se); err != nil {
		t.Fatal(err)
	}
	se.Gateway, se.ForeignGateway = testGateway.Addr(), true
	if err := w.d.SetGateway(e, se); err != nil {
		t.Fatal(err)
	}
	if mac, _ := neighbourOf(t, e, testGateway.Addr()); mac != "" {
		t.Errorf("a gateway moved to a router on the bridge was seeded with %s", mac)
	}
	if mac, state := neighbourOf(t, a, testGateway.Addr()); mac != br.Attrs().HardwareAddr.String() || state&(unix.NUD_STALE|unix.NUD_DELAY|unix.NUD_PROBE|unix.NUD_REACHABLE) == 0 {
		t.Errorf("a's neighbour entry for the gateway: %q state %#x, want the bridge's MAC %s", mac, state, br.Attrs().HardwareAddr)
	}
	if mac, _ := neighbourOf(t, b, testGateway.Addr()); mac != "" {
		t.Errorf("b, with no default route, has a seeded gateway entry %s", mac)
	}
	if err := ping(t, a, testGateway.Addr()); err != nil {
		t.Error(err)
	}
}

// The same for the IPv6 gateway of a dual-stack join.
func TestJoinSeedsTheIPv6GatewaysNeighbour(t *testing.T) {
	w := newWorld(t)
	w.ensureDualStackBridge(t)
	br, err := w.h.LinkByName("br-test")
	if err != nil {
		t.Fatal(err)
	}
	a := nstest.New(t)
	if err := w.d.Join(a, dualStackSpec(1)); err != nil {
		t.Fatal(err)
	}
	if found, _ := neighbourOf(t, a, testGateway6.Addr()); found != br.Attrs().HardwareAddr.String() {
		t.Errorf("neighbour entry for the IPv6 gateway: %q, want the bridge's MAC %s", found, br.Attrs().HardwareAddr)
	}
	if err := ping(t, a, testGateway6.Addr()); err != nil {
		t.Error(err)
	}
}

// TestJoinSeedsNothingOnAnAdoptedBridge: a bridge the administrator made
// has a MAC the kernel may change as ports come and go (the lowest of
// theirs): a MAC seeded from it would go stale, so none is (QA round 22).
func TestJoinSeedsNothingOnAnAdoptedBridge(t *testing.T) {
	w := newWorld(t)
	if err := w.h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br-test"}}); err != nil {
		t.Fatal(err)
	}
	w.ensureTestBridge(t)
	a := nstest.New(t)
	if err := w.d.Join(a, endpointSpec(1)); err != nil {
		t.Fatal(err)
	}
	if mac, state := neighbourOf(t, a, testGateway.Addr()); state&unix.NUD_STALE != 0 {
		t.Errorf("a gateway entry was seeded on an adopted bridge: %s %#x", mac, state)
	}
	if err := ping(t, a, testGateway.Addr()); err != nil {
		t.Error(err)
	}
}

// TestJoinReturnsWithThePortForwarding: a join that seeds the gateway's
// neighbour entry returns with its bridge port forwarding, so that the
// container's first packet, which goes out at once to the seeded MAC, is
// not dropped at a port the kernel's link-watch worker has not enabled
// yet (10 of 100 host ends were not up right after Join before, measured
// here; a ping sent at once failed in CI).
func TestJoinReturnsWithThePortForwarding(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	const joins = 100
	names := map[string]bool{}
	for i := range joins {
		spec := endpointSpec(i + 1)
		if err := w.d.Join(nstest.New(t), spec); err != nil {
			t.Fatal(err)
		}
		names[spec.HostIfName] = true
		// A dump, which (unlike a GET of one link) does not run pending
		// link-watch events: it shows the port as Join left it.
		links, err := w.h.LinkList()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if l.Attrs().Name == spec.HostIfName && l.Attrs().OperState != netlink.OperUp {
				t.Errorf("join %d: host end %s is %v right after Join, want up (forwarding)", i, spec.HostIfName, l.Attrs().OperState)
			}
		}
	}
}

// neighbourOf is the sandbox's neighbour entry for addr: its MAC and
// state, or "" and 0 when there is none.
func neighbourOf(t *testing.T, sandbox string, addr netip.Addr) (string, int) {
	t.Helper()
	family := netlink.FAMILY_V4
	if addr.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := handleIn(t, sandbox).NeighList(0, family)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range neighs {
		if n.IP.Equal(addr.AsSlice()) {
			return n.HardwareAddr.String(), n.State
		}
	}
	return "", 0
}

// TestNewSparesAnotherProcesssJoinsInFlight: berth-cni and the daemon may
// run on one host, and several berth-cni calls at once. A driver's start
// deletes the pairs an earlier run of its own kind left in mid-Join (the
// daemon's) and never another kind's, nor, for berth-cni, those of a
// concurrent call: they are Joins in flight.
func TestNewSparesAnotherProcesssJoinsInFlight(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	cni, err := NewWithGroups(w.host, CNIGroups, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer cni.Close()
	sb := nstest.New(t)
	spec := endpointSpec(1)
	conn, err := cni.acquire(sb)
	if err != nil {
		t.Fatal(err)
	}
	brIndex, err := cni.bridgeIndex(spec.Bridge, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cni.port.createVeth(spec, brIndex, int(conn.ns)); err != nil {
		t.Fatal(err)
	}
	cni.release(conn, false)
	for _, groups := range []Groups{DaemonGroups, CNIGroups} {
		d, err := NewWithGroups(w.host, groups, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		d.Close()
		host, err := w.h.LinkByName(spec.HostIfName)
		if err != nil {
			t.Fatalf("a driver start with groups %+v deleted berth-cni's pair in flight: %v", groups, err)
		}
		if host.Attrs().Group != CNIGroups.Pending {
			t.Fatalf("in-flight host end is in group %#x, want %#x", host.Attrs().Group, CNIGroups.Pending)
		}
	}
}

// TestLeaveMarkedLeavesTheDeleteToAnotherProcess: a driver with
// Groups.LeaveMarked (berth-cni's) cuts a pair off and returns; nothing
// deletes it until DeleteGroup (the process berth-cni starts for it, or
// its GC), not even the next driver's start, and a Join that needs the
// container end's name meanwhile gets it at once.
func TestLeaveMarkedLeavesTheDeleteToAnotherProcess(t *testing.T) {
	w := newWorld(t)
	w.ensureTestBridge(t)
	before := linkNames(t, w.h)
	d, err := NewWithGroups(w.host, CNIGroups, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	sb := nstest.New(t)
	spec := endpointSpec(1)
	if err := d.Join(sb, spec); err != nil {
		t.Fatal(err)
	}
	if err := d.Leave(sb, spec); err != nil {
		t.Fatal(err)
	}
	d.Close()
	host, err := w.h.LinkByName(spec.HostIfName)
	if err != nil {
		t.Fatalf("the pair is gone before anyone deleted it: %v", err)
	}
	if host.Attrs().Group != CNIGroups.Reap {
		t.Fatalf("left pair in group %#x, want %#x", host.Attrs().Group, CNIGroups.Reap)
	}
	// The container end gave its name back at once: another plugin may
	// add an eth0 there before anything deletes the pair.
	if names := linkNames(t, handleIn(t, sb)); slices.Contains(names, spec.IfName) {
		t.Errorf("the sandbox still has %q after the Leave: %v", spec.IfName, names)
	}

	// A new driver (the next call) joins the same container end name at
	// once: the marked pair gave it back, and is still there to delete.
	d2, err := NewWithGroups(w.host, CNIGroups, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	spec2 := spec
	spec2.HostIfName = "vethtest900"
	if err := d2.Join(sb, spec2); err != nil {
		t.Fatalf("Join after a marked Leave: %v", err)
	}
	if _, err := w.h.LinkByName(spec.HostIfName); err != nil {
		t.Errorf("the next driver's start deleted the marked pair (it must leave it to DeleteGroup): %v", err)
	}
	// Within one driver, a Leave then a Join of the same host name: the
	// Join waits for a delete that it runs itself (nothing else would).
	if err := d2.Leave(sb, spec2); err != nil {
		t.Fatal(err)
	}
	joined := make(chan error, 1)
	go func() { joined <- d2.Join(sb, spec2) }()
	select {
	case err := <-joined:
		if err != nil {
			t.Fatalf("Join after a Leave in the same driver: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Join after a Leave in the same driver still waits after 10 s")
	}
	if err := d2.Leave(sb, spec2); err != nil {
		t.Fatal(err)
	}
	d2.Close()
	if err := DeleteGroup(w.host, CNIGroups.Reap); err != nil {
		t.Fatal(err)
	}
	checkNothingLeft(t, w, sb, before)
}
