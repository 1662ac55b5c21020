package bridge

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/driverapi"
)

// BenchmarkJoinLeave measures one Join and one Leave of a sandbox on a
// bridge that already has 0, 100, 800 or 1,000 other ports (each in its own
// sandbox, as containers would be), in a private host namespace. It
// reports the two halves separately, the time the background reaper then
// takes to delete the pair (Settle; not part of Leave's latency), and the
// median time of Join's and Leave's named steps, to show where a cost
// grows with the bridge.
//
//	go test -run '^$' -bench JoinLeave -benchtime 200x ./internal/driver/bridge/
func BenchmarkJoinLeave(b *testing.B) {
	for _, ports := range []int{0, 100, 800, 1000} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			w := newWorld(b)
			w.d.log = discardLogger()
			w.ensureBenchBridge(b)
			for i := range ports {
				w.joinBackground(b, i)
			}
			sb := newBenchSandbox(b)
			steps, leaveSteps := newStepClock(), newStepClock()
			w.d.failAt = steps.mark
			var join, leave, reap []time.Duration
			b.ResetTimer()
			for i := range b.N {
				spec := sampleSpec(i)
				t0 := time.Now()
				steps.start(t0)
				if err := w.d.Join(sb, spec); err != nil {
					b.Fatalf("Join #%d: %v", i, err)
				}
				t1 := time.Now()
				steps.stop(t1)
				leaveSteps.start(t1)
				w.d.failAt = leaveSteps.mark
				if err := w.d.Leave(sb, spec); err != nil {
					b.Fatalf("Leave #%d: %v", i, err)
				}
				t2 := time.Now()
				leaveSteps.stop(t2)
				w.d.failAt = steps.mark
				// The reaper's batch would otherwise overlap the next
				// Join (it holds the RTNL lock while it unregisters).
				w.d.Settle()
				join = append(join, t1.Sub(t0))
				leave = append(leave, t2.Sub(t1))
				reap = append(reap, time.Since(t2))
			}
			b.StopTimer()
			// Medians and p90s: these machines are noisy, and a mean
			// follows the worst stalls.
			reportPercentiles(b, "join", join)
			reportPercentiles(b, "leave", leave)
			reportPercentiles(b, "reap", reap)
			b.Logf("ports=%d median µs of Join steps: %s", ports, steps)
			b.Logf("ports=%d median µs of Leave steps: %s", ports, leaveSteps)
		})
	}
}

// BenchmarkLeaveBySyncDelete is the plain alternative Leave does not take:
// deleting the host end with RTM_DELLINK and waiting for the kernel.
func BenchmarkLeaveBySyncDelete(b *testing.B) {
	w := newWorld(b)
	w.d.log = discardLogger()
	w.ensureBenchBridge(b)
	sb := newBenchSandbox(b)
	var leave time.Duration
	for range b.N {
		spec := benchSpec(60000)
		spec.HostIfName = RandomHostIfName()
		if err := w.d.Join(sb, spec); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := w.d.deleteVethIfExists(spec.HostIfName); err != nil {
			b.Fatal(err)
		}
		leave += time.Since(t0)
	}
	b.ReportMetric(float64(leave.Microseconds())/float64(b.N)/1000, "delete-ms/op")
}

func reportPercentiles(b *testing.B, name string, ds []time.Duration) {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ds[len(ds)/2]), name+"-p50-ms")
	b.ReportMetric(ms(ds[len(ds)*9/10]), name+"-p90-ms")
}

// BenchmarkReconnect is a disconnect followed at once by a connect of the
// same container: Leave, then Join under the same container-side name
// while the reaper may still hold the old pair (Join renames it aside).
func BenchmarkReconnect(b *testing.B) {
	w := newWorld(b)
	w.d.log = discardLogger()
	w.ensureBenchBridge(b)
	sb := newBenchSandbox(b)
	spec := benchSpec(60000)
	if err := w.d.Join(sb, spec); err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	steps := newStepClock()
	w.d.failAt = steps.mark
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		steps.start(t0)
		if err := w.d.Leave(sb, spec); err != nil {
			b.Fatal(err)
		}
		_ = steps.mark("join")
		spec.HostIfName = RandomHostIfName()
		if err := w.d.Join(sb, spec); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		steps.stop(t1)
		took = append(took, t1.Sub(t0))
	}
	b.StopTimer()
	w.d.Settle()
	reportPercentiles(b, "leave+join", took)
	b.Logf("median µs of steps: %s", steps)
}

func (w *testWorld) ensureBenchBridge(b *testing.B) {
	b.Helper()
	spec := driverapi.BridgeSpec{Name: "br-test", Gateway: netip.MustParsePrefix("10.80.0.1/16"), MTU: 1500}
	if err := w.d.EnsureBridge(spec, "network:bench"); err != nil {
		b.Fatal(err)
	}
}

// benchSpec is endpoint n on the /16 of ensureBenchBridge.
// sampleSpec is the ith timed attach's spec: fresh host and container
// names (re-using eth0 would make Join wait for the reaper to delete the
// previous pair), an address of the 60000s.
func sampleSpec(i int) driverapi.EndpointSpec {
	spec := benchSpec(60000 + i%1000)
	spec.HostIfName = RandomHostIfName()
	spec.IfName = fmt.Sprintf("eth%d", i+1)
	return spec
}

func benchSpec(n int) driverapi.EndpointSpec {
	return driverapi.EndpointSpec{
		Bridge:     "br-test",
		HostIfName: fmt.Sprintf("vethb%06d", n),
		IfName:     "eth0",
		MAC:        RandomMAC(),
		Address:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 80, byte((n + 2) >> 8), byte(n + 2)}), 16),
		Gateway:    netip.MustParseAddr("10.80.0.1"),
		MTU:        1500,
		Owner:      fmt.Sprintf("endpoint:%d", n),
	}
}

// joinBackground joins a new sandbox as the bridge's port number i.
func (w *testWorld) joinBackground(b *testing.B, i int) {
	b.Helper()
	if err := w.d.Join(newBenchSandbox(b), benchSpec(i)); err != nil {
		b.Fatalf("background Join %d: %v", i, err)
	}
}

// stepClock records, through the driver's step hook, how long Join spends
// from one named step to the next.
type stepClock struct {
	last  time.Time
	prev  string
	spans map[string][]time.Duration
	order []string
}

func newStepClock() *stepClock { return &stepClock{spans: map[string][]time.Duration{}} }

func (c *stepClock) start(t time.Time) { c.last, c.prev = t, "begin" }

func (c *stepClock) mark(step string) error {
	c.record(time.Now())
	c.prev = step
	return nil
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

// BenchmarkJoinBurst joins 10 running sandboxes one after another, as a
// compose project or berth-bench's probes do, then takes them all off and
// lets the reaper finish. Unlike JoinLeave it lets what each Join leaves
// running in the kernel (the link watch's carrier events, an
// announcement) overlap the next Join, which is where that work costs.
//
//	go test -run '^$' -bench JoinBurst -benchtime 50x ./internal/driver/bridge/
func BenchmarkJoinBurst(b *testing.B) { joinBurst(b, false) }

// BenchmarkJoinBurstDualStack is BenchmarkJoinBurst on a network with
// IPv6: each Join's batch also carries the link-local address, the IPv6
// address and the IPv6 default route, and the kernel does their work
// (prefix routes, multicast groups) within it.
func BenchmarkJoinBurstDualStack(b *testing.B) { joinBurst(b, true) }

func joinBurst(b *testing.B, dualStack bool) {
	const burst = 10
	w := newWorld(b)
	w.d.log = discardLogger()
	w.ensureBenchBridge(b)
	if dualStack {
		spec := driverapi.BridgeSpec{Name: "br-test", Gateway: netip.MustParsePrefix("10.80.0.1/16"),
			Gateway6: netip.MustParsePrefix("fd80::1/64"), MTU: 1500}
		if err := w.d.EnsureBridge(spec, "network:bench"); err != nil {
			b.Fatal(err)
		}
	}
	sbs := make([]string, burst)
	for i := range sbs {
		sbs[i] = newBenchSandbox(b)
	}
	var join []time.Duration
	b.ResetTimer()
	for i := range b.N {
		specs := make([]driverapi.EndpointSpec, burst)
		for k, sb := range sbs {
			specs[k] = benchSpec(1000 + k)
			if dualStack {
				specs[k].Address6 = netip.PrefixFrom(netip.MustParseAddr(fmt.Sprintf("fd80::%x", 1000+k+2)), 64)
				specs[k].Gateway6 = netip.MustParseAddr("fd80::1")
			}
			specs[k].HostIfName = RandomHostIfName()
			specs[k].IfName = fmt.Sprintf("eth%d", i+1)
			t0 := time.Now()
			if err := w.d.Join(sb, specs[k]); err != nil {
				b.Fatalf("Join %d.%d: %v", i, k, err)
			}
			join = append(join, time.Since(t0))
		}
		for k, sb := range sbs {
			if err := w.d.Leave(sb, specs[k]); err != nil {
				b.Fatalf("Leave %d.%d: %v", i, k, err)
			}
		}
		w.d.Settle()
	}
	b.StopTimer()
	reportPercentiles(b, "join", join)
}

// BenchmarkListBridges measures a start's listing of berth's bridges with
// a thousand veth pairs on the host (the bench's 1,000 ports): the full
// listing (OwnedLinks, what a start used twice) against the kernel's
// listing of bridges alone (OwnedBridges).
//
//	go test -run '^$' -bench ListBridges ./internal/driver/bridge/
func BenchmarkListBridges(b *testing.B) {
	w := newWorld(b)
	w.d.log = discardLogger()
	w.ensureBenchBridge(b)
	for i := range 1000 {
		addVeth(b, w.h, fmt.Sprintf("vb%d", i))
	}
	b.Run("OwnedLinks", func(b *testing.B) {
		for b.Loop() {
			if _, err := w.d.OwnedLinks(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OwnedBridges", func(b *testing.B) {
		for b.Loop() {
			if _, err := w.d.OwnedBridges(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
