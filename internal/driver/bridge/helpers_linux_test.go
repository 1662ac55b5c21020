package bridge

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/nstest"
)

// testWorld is a private host namespace with a driver bound to it.
type testWorld struct {
	host string
	d    *Driver
	h    *netlink.Handle // for the test's own look-ups in host
}

func newWorld(t testing.TB) *testWorld {
	t.Helper()
	nstest.RequireRoot(t)
	host := nstest.New(t)
	d, err := New(host, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New(%q): %v", host, err)
	}
	t.Cleanup(func() { d.Close() })
	return &testWorld{host: host, d: d, h: handleIn(t, host)}
}

// testWriter sends the driver's log to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// handleIn returns a netlink handle in the namespace at path, closed at test end.
// addBareBridge makes a bridge the way an administrator (or a crash
// right after creation) leaves one: down, untagged, no address; it
// returns the link as the kernel has it.
func addBareBridge(t testing.TB, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = name
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		t.Fatal(err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func handleIn(t testing.TB, path string) *netlink.Handle {
	t.Helper()
	h, err := openHandle(path)
	if err != nil {
		t.Fatalf("netlink handle in %q: %v", path, err)
	}
	t.Cleanup(h.Close)
	return h
}

var testGateway = netip.MustParsePrefix("10.88.0.1/24")

// ensureTestBridge makes bridge "br-test" with testGateway.
func (w *testWorld) ensureTestBridge(t testing.TB) driverapi.BridgeSpec {
	t.Helper()
	spec := driverapi.BridgeSpec{Name: "br-test", Gateway: testGateway, MTU: 1500}
	if err := w.d.EnsureBridge(spec, "network:test"); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	return spec
}

// endpointSpec returns a spec for the nth endpoint on br-test (address .n+1).
func endpointSpec(n int) driverapi.EndpointSpec {
	return driverapi.EndpointSpec{
		Bridge:     "br-test",
		HostIfName: fmt.Sprintf("vethtest%03d", n),
		IfName:     "eth0",
		MAC:        net.HardwareAddr{0x02, 0xbe, 0x27, 0x00, byte(n >> 8), byte(n)},
		Address:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 88, 0, byte(n + 1)}), 24),
		Gateway:    testGateway.Addr(),
		MTU:        1500,
		Owner:      fmt.Sprintf("endpoint:%d", n),
	}
}

func linkNames(t testing.TB, h *netlink.Handle) []string {
	t.Helper()
	links, err := RetryDump(h.LinkList)
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

// portsOf lists the names of the links whose master is the bridge br.
func portsOf(t testing.TB, h *netlink.Handle, br string) []string {
	t.Helper()
	b, err := h.LinkByName(br)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("look up bridge %q: %v", br, err)
	}
	links, err := RetryDump(h.LinkList)
	if err != nil {
		t.Fatalf("list links: %v", err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == b.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	slices.Sort(ports)
	return ports
}

func addrsOf(t testing.TB, h *netlink.Handle, name string) []netip.Prefix {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("look up %q: %v", name, err)
	}
	addrs, err := RetryDump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		t.Fatalf("list addresses of %q: %v", name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		out = append(out, prefixOf(a.IPNet))
	}
	return out
}

// defaultGateways lists the gateways of the IPv4 default routes in the main table.
func defaultGateways(t testing.TB, h *netlink.Handle) []netip.Addr {
	t.Helper()
	routes, err := RetryDump(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		t.Fatalf("list routes: %v", err)
	}
	var gws []netip.Addr
	for _, r := range routes {
		if _, ok := routePrefix(r.Dst); ok {
			continue
		}
		gw, _ := netip.AddrFromSlice(r.Gw)
		gws = append(gws, gw.Unmap())
	}
	return gws
}

// ping sends one echo request from the namespace at path.
func ping(t testing.TB, path string, to netip.Addr) error {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+path, "busybox", "ping", "-c1", "-W2", to.String()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v\n%s", to, path, err, out)
	}
	return nil
}

// sleepBriefly paces a poll for something the kernel finishes in softirq.
func sleepBriefly() { time.Sleep(10 * time.Millisecond) }

// netipEqual lets go-cmp compare netip values, whose fields are unexported.
var netipEqual = cmp.Options{
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
