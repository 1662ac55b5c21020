package floor

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/nstest"
)

var gateway = netip.MustParsePrefix("10.250.0.1/16")

func newFloor(tb testing.TB, noIPv6 bool) (*Floor, string) {
	tb.Helper()
	host := nstest.New(tb)
	f, err := New(Config{Bridge: "floor0", Gateway: gateway, Table: "floor", HostNS: host, NoIPv6: noIPv6})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := f.Close(); err != nil {
			tb.Errorf("close floor: %v", err)
		}
	})
	return f, host
}

// endpoint is endpoint i on the floor's /16.
func endpoint(i int) Endpoint {
	return Endpoint{
		HostIf:  fmt.Sprintf("vfl%d", i),
		IfName:  "eth0",
		Address: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 250, byte((i + 2) >> 8), byte(i + 2)}), 16),
		MAC:     net.HardwareAddr{0x02, 0x42, 0xfa, 0, byte(i >> 8), byte(i)},
	}
}

func newSandbox(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "sandbox")
	if err := NewNetns(p); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { DropNetns(p) })
	return p
}

func handleAt(tb testing.TB, path string) *netlink.Handle {
	tb.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	return h
}

// TestAttachDetach checks that Attach makes exactly the objects of one
// berth attach and Detach removes the pair, all in the test's namespaces.
func TestAttachDetach(t *testing.T) {
	f, host := newFloor(t, true)
	sb := newSandbox(t)
	ep := endpoint(0)
	if err := f.Attach(sb, ep); err != nil {
		t.Fatal(err)
	}
	hh, sh := handleAt(t, host), handleAt(t, sb)
	hostEnd, err := hh.LinkByName(ep.HostIf)
	if err != nil {
		t.Fatal(err)
	}
	br, err := hh.LinkByName("floor0")
	if err != nil {
		t.Fatal(err)
	}
	if hostEnd.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("%s is not a port of floor0", ep.HostIf)
	}
	peer, err := sh.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if peer.Attrs().Flags&net.FlagUp == 0 || peer.Attrs().HardwareAddr.String() != ep.MAC.String() {
		t.Errorf("eth0 is %v with MAC %s, want up with %s", peer.Attrs().Flags, peer.Attrs().HardwareAddr, ep.MAC)
	}
	for _, l := range []netlink.Link{hostEnd, peer} { // NoIPv6 makes them berth's way
		if a := l.Attrs(); a.NumTxQueues != 1 || a.NumRxQueues != 1 {
			t.Errorf("%s has %d TX and %d RX queues, want 1 and 1", a.Name, a.NumTxQueues, a.NumRxQueues)
		}
	}
	addrs, err := sh.AddrList(peer, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	if diff := cmp.Diff([]string{"10.250.0.2/16"}, got); diff != "" {
		t.Errorf("eth0 addresses (-want +got):\n%s", diff)
	}
	routes, err := sh.RouteList(peer, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "10.250.0.1"
	}) {
		t.Errorf("no default route via 10.250.0.1 in %v", routes)
	}
	if err := f.Detach(ep); err != nil {
		t.Fatal(err)
	}
	if _, err := hh.LinkByName(ep.HostIf); err == nil {
		t.Errorf("%s still exists after Detach", ep.HostIf)
	}
	if _, err := sh.LinkByName("eth0"); err == nil {
		t.Errorf("eth0 still exists in the sandbox after Detach")
	}
}

// BenchmarkAttach is the investigation of the naive attach's growth with
// the bridge: one Attach and Detach into a standing namespace on a bridge
// that already has 0 or 1,000 ports (each in its own namespace, as
// containers would be), with IPv6 address generation on (the naive floor)
// and off before the link gets a carrier (what berth's driver does). It
// logs the median µs of each step.
//
//	go test -run '^$' -bench Attach -benchtime 100x ./bench/internal/floor/
func BenchmarkAttach(b *testing.B) {
	for _, ports := range []int{0, 1000} {
		for _, noIPv6 := range []bool{false, true} {
			b.Run(fmt.Sprintf("ports=%d/ipv6=%v", ports, !noIPv6), func(b *testing.B) {
				f, _ := newFloor(b, noIPv6)
				for i := range ports {
					if err := f.Attach(newSandbox(b), endpoint(i)); err != nil {
						b.Fatal(err)
					}
				}
				sb := newSandbox(b)
				clock := newStepClock()
				f.OnStep = clock.mark
				ep := endpoint(60000)
				var attach time.Duration
				b.ResetTimer()
				for range b.N {
					t0 := time.Now()
					clock.start(t0)
					if err := f.Attach(sb, ep); err != nil {
						b.Fatal(err)
					}
					t1 := time.Now()
					clock.stop(t1)
					attach += t1.Sub(t0)
					if err := f.Detach(ep); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(attach.Microseconds())/float64(b.N)/1000, "attach-ms/op")
				b.Logf("median µs per step: %s", clock)
			})
		}
	}
}

// stepClock records how long Attach spends from one named step to the next.
type stepClock struct {
	last  time.Time
	prev  string
	spans map[string][]time.Duration
	order []string
}

func newStepClock() *stepClock { return &stepClock{spans: map[string][]time.Duration{}} }

func (c *stepClock) start(t time.Time) { c.last, c.prev = t, "begin" }

func (c *stepClock) mark(step string) {
	c.record(time.Now())
	c.prev = step
}

func (c *stepClock) stop(t time.Time) { c.record(t) }

func (c *stepClock) record(now time.Time) {
	if _, ok := c.spans[c.prev]; !ok {
		c.order = append(c.order, c.prev)
	}
	c.spans[c.prev] = append(c.spans[c.prev], now.Sub(c.last))
	c.last = now
}

func (c *stepClock) String() string {
	var s string
	for _, name := range c.order {
		d := slices.Clone(c.spans[name])
		slices.Sort(d)
		s += fmt.Sprintf("%s→ %d  ", name, d[len(d)/2].Microseconds())
	}
	return s
}
