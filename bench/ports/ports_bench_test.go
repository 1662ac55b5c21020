// Package portsbench measures published ports (issue 4): publishing 10,000
// ports, as one container with -p 20000-29999:20000-29999 and as 100
// containers × 100 ports, beside the floor of the same 10,000 map elements
// written in one batch by a bare google/nftables program; the networking
// share (host-port holding and the firewall batch) on its own; and the
// container-to-outside TCP throughput with 0 and 10,000 published ports.
//
// Run it as root in a private namespace (it builds test worlds):
//
//	go build -o /tmp/berth ./cmd/berth
//	BERTH_BIN=/tmp/berth unshare --net --mount --fork -- bash -c \
//	  'ip link set lo up; go test -run "^$" -bench . -benchtime 3x ./bench/ports/'
//
// Figures are printed (b.ReportMetric and a summary), never asserted.
package portsbench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/bench/internal/harness"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/portalloc"
	"github.com/berth-net/berth/internal/testworld"
)

const nPorts = 10000

// BenchmarkFloor writes 10,000 elements into a concatenated-key map in one
// batch with google/nftables and nothing else: the least any nftables
// publisher pays.
func BenchmarkFloor(b *testing.B) {
	ns := nstest.New(b)
	conn := bareConn(b, ns)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		resetBareTable(b, conn)
		b.StartTimer()
		writeBareElements(b, conn, nPorts)
	}
	reportPerPort(b)
}

// BenchmarkNetworking is berth's networking share of publishing 10,000
// ports, both ways: holding the host ports (a bound socket each) and the
// firewall's AddPorts batch, as a container's Join does them — one Hold
// and one AddPorts of 10,000, or 100 of each with 100 ports. Beside it,
// in the same iterations, the floor writes the same 10,000 elements in one
// batch.
//
// As in the daemon, a heal watcher listens to the firewall's namespace
// (the kernel then writes a notification per element, on the batch's
// time), and the ports are held in the process's own namespace when that
// is private already (unshare --net, as this bench runs): an Allocator of
// another namespace enters it on a new thread per Hold, which the daemon
// never does (0.1–0.2 ms a Hold; portalloc's BenchmarkHold/enter-netns).
func BenchmarkNetworking(b *testing.B) {
	for _, tc := range []struct {
		name       string
		containers int
	}{{"one-container-range", 1}, {"100-containers-x-100", 100}} {
		b.Run(tc.name, func(b *testing.B) { benchNetworking(b, tc.containers) })
	}
}

func benchNetworking(b *testing.B, containers int) {
	ns := nstest.New(b)
	fw, err := nftables.New(ns, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer fw.Close()
	bridge := firewall.Network{Bridge: "berth0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), ICC: true, Masquerade: true}
	if err := fw.Rebuild(context.Background(), []firewall.Network{bridge}); err != nil {
		b.Fatal(err)
	}
	watcher, err := nftables.Watch(context.Background(), nftables.WatchConfig{
		NetNSPath: ns,
		OnChange: func(ch nftables.Change) {
			b.Errorf("the heal watcher took berth's own batch for a foreign change: %v", ch)
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer watcher.Close()
	holder := portalloc.New(holderNamespace(b), nil)
	defer holder.Close()
	// The floor is measured in the same iterations, so that the noise of a
	// shared machine weighs on both alike.
	bare := bareConn(b, nstest.New(b))
	reqs, mappings := tenThousand()
	per := nPorts / containers
	var hold, batch, floor time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		resetBareTable(b, bare)
		tf := time.Now()
		writeBareElements(b, bare, nPorts)
		floor += time.Since(tf)
		b.StartTimer()
		var held []network.HostPort
		for c := range containers {
			t0 := time.Now()
			h, err := holder.Hold(reqs[c*per : (c+1)*per])
			if err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if err := fw.AddPorts(context.Background(), mappings[c*per:(c+1)*per]); err != nil {
				b.Fatal(err)
			}
			hold, batch = hold+t1.Sub(t0), batch+time.Since(t1)
			held = append(held, h...)
		}
		b.StopTimer()
		if err := fw.DelPorts(context.Background(), mappings); err != nil {
			b.Fatal(err)
		}
		if err := holder.Release(held); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(hold.Microseconds())/n/1000, "hold-ms/op")
	b.ReportMetric(float64(batch.Microseconds())/n/1000, "nft-ms/op")
	b.ReportMetric(float64((hold+batch).Microseconds())/n/1000, "networking-ms/op")
	b.ReportMetric(float64(floor.Microseconds())/n/1000, "floor-ms/op")
	b.ReportMetric(float64(batch)/float64(floor), "nft/floor")
	reportPerPort(b)
}

// holderNamespace is "" (this process's namespace, as the daemon's
// Allocator has) when that namespace has no interface but lo, as under
// unshare --net, and a new namespace otherwise, so that the bench never
// holds ports on the host.
func holderNamespace(b *testing.B) string {
	ifs, err := net.Interfaces()
	if err == nil && len(ifs) == 1 && ifs[0].Flags&net.FlagLoopback != 0 {
		return ""
	}
	b.Log("holding ports in a namespace of their own: run the bench under unshare --net for the daemon's figures")
	return nstest.New(b)
}

func tenThousand() ([]network.HostPortRequest, []firewall.PortMapping) {
	reqs := make([]network.HostPortRequest, nPorts)
	ms := make([]firewall.PortMapping, nPorts)
	ctr := netip.MustParseAddr("172.17.0.2")
	for i := range nPorts {
		p := uint16(20000 + i)
		reqs[i] = network.HostPortRequest{Proto: "tcp", HostIP: netip.IPv4Unspecified(), Start: p, End: p}
		ms[i] = firewall.PortMapping{Proto: firewall.TCP, HostPort: p, Addr: ctr, Port: p}
	}
	return reqs, ms
}

func reportPerPort(b *testing.B) {
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / nPorts
	b.ReportMetric(per/1000, "µs/port")
}

// BenchmarkPublish publishes 10,000 ports through the CLI and the daemon,
// both ways, and subtracts the same containers' start without ports.
func BenchmarkPublish(b *testing.B) {
	w := testworld.New(b)
	w.Start(b)
	w.Busybox(b)
	sleeper := []string{testworld.BusyboxImage, "sleep", "3600"}
	run := func(name string, opts ...string) {
		args := append(append([]string{"run", "-d", "--name", name}, opts...), sleeper...)
		w.MustBerth(b, args...)
	}
	cases := []struct {
		name       string
		containers int
		ports      func(i int) []string
	}{
		{"one-container-range", 1, func(int) []string { return []string{"-p", "20000-29999:20000-29999"} }},
		{"100-containers-x-100", 100, func(i int) []string {
			lo := 20000 + 100*i
			return []string{"-p", fmt.Sprintf("%d-%d:%d-%d", lo, lo+99, lo, lo+99)}
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			var with, without time.Duration
			for range b.N {
				// Each container without ports is started right before its
				// twin with ports, so that load on a shared machine weighs
				// on both sums alike.
				for i := range tc.containers {
					t0 := time.Now()
					run("bare-" + strconv.Itoa(i))
					t1 := time.Now()
					run("pub-"+strconv.Itoa(i), tc.ports(i)...)
					without, with = without+t1.Sub(t0), with+time.Since(t1)
				}
				b.StopTimer()
				rmAll(b, w, names("pub-", tc.containers))
				rmAll(b, w, names("bare-", tc.containers))
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(with.Milliseconds())/n, "with-ports-ms/op")
			b.ReportMetric(float64(without.Milliseconds())/n, "without-ports-ms/op")
			b.ReportMetric(float64((with-without).Microseconds())/n/nPorts, "µs/port")
		})
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

func rmAll(b *testing.B, w *testworld.World, ns []string) {
	b.Helper()
	for chunk := range slices.Chunk(ns, 50) {
		w.Berth(b, append([]string{"rm", "-f"}, chunk...)...)
	}
}

// BenchmarkThroughput is the TCP throughput from a container to the outside
// server with no published port and with 10,000 published (by another
// container); the ratio is the per-packet cost of the port maps.
func BenchmarkThroughput(b *testing.B) {
	w := testworld.New(b)
	w.Start(b)
	w.Busybox(b)
	w.MustBerth(b, "run", "-d", "--name", "client", testworld.BusyboxImage, "sleep", "3600")
	key := strings.TrimSpace(w.MustBerth(b, "inspect", "--format", "{{.NetworkSettings.SandboxKey}}", "client"))
	clientNS := w.HostPath(key)
	measure := func() float64 {
		var rates []float64
		for range 3 {
			bps, err := harness.Throughput(context.Background(), w.OutsideNS, clientNS, testworld.ServerAddr, 3*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			rates = append(rates, bps)
		}
		slices.Sort(rates)
		return rates[1]
	}
	measure() // warm up: the first run pays for ARP, conntrack and caches
	var none, many float64
	for range b.N {
		none = measure()
		w.MustBerth(b, "run", "-d", "--name", "published", "-p", "20000-29999:20000-29999", testworld.BusyboxImage, "sleep", "3600")
		many = measure()
		b.StopTimer()
		w.MustBerth(b, "rm", "-f", "published")
		b.StartTimer()
	}
	b.ReportMetric(none/1e9, "Gbit/s-0-ports")
	b.ReportMetric(many/1e9, "Gbit/s-10000-ports")
	b.ReportMetric(many/none, "ratio")
}
