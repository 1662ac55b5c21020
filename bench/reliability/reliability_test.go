package reliability

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/testworld"
)

// The bench mode: one big run of each storm in its own test world, with
// the figures printed. Run as root, in a private namespace, e.g.
//
//	go build -o /tmp/berth ./cmd/berth
//	BERTH_BIN=/tmp/berth BERTH_CRASH_KILLS=200 unshare --net --mount --fork -- \
//	  bash -c 'ip link set lo up; go test ./bench/reliability -run "^$" -bench . -benchtime 1x -timeout 2h'
//
// They measure; the assertions live in test/e2e (crash_test.go,
// concurrency_test.go), which run the same code small.

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, s)
	}
	return n
}

func BenchmarkCrashStorm(b *testing.B) {
	kills := envInt(b, "BERTH_CRASH_KILLS", 200)
	for range b.N {
		w := testworld.New(b)
		d := w.Start(b)
		w.Busybox(b)
		_, rep := CrashStorm(b, w, d, StormConfig{
			Kills: kills, MaxDelay: 150 * time.Millisecond, Seed: uint64(time.Now().UnixNano()),
			Network: "storm", Subnet: "10.99.0.0/24",
		})
		rep.Print(os.Stdout)
		b.ReportMetric(float64(rep.Kills), "kills")
		b.ReportMetric(float64(len(rep.Leaks)), "leaks")
		b.ReportMetric(float64(Percentile(rep.Restarts, 50).Milliseconds()), "restart-p50-ms")
		if len(rep.Leaks) > 0 {
			b.Errorf("%d disagreements between store and kernel", len(rep.Leaks))
		}
	}
}

func BenchmarkConcurrency(b *testing.B) {
	n := envInt(b, "BERTH_CONCURRENCY", 100)
	for range b.N {
		w := testworld.New(b)
		w.Start(b)
		w.Busybox(b)
		c := NewClient(w.Socket)
		if err := c.CreateNetwork("conc", "10.97.0.0/22"); err != nil {
			b.Fatal(err)
		}
		rep := Concurrency(b, c, ConcurrencyConfig{Containers: n, Network: "conc", Image: testworld.BusyboxImage})
		rep.Print(os.Stdout, n)
		b.ReportMetric(float64(Percentile(rep.ListLatency, 99).Microseconds())/1000, "ls-p99-ms")
		b.ReportMetric(float64(Percentile(rep.ListLatency, 50).Microseconds())/1000, "ls-p50-ms")
		b.ReportMetric(rep.RunWall.Seconds(), "run-all-s")
		b.ReportMetric(rep.RemoveWall.Seconds(), "rm-all-s")
		if _, leaks := Settled(b, w, c); len(leaks) > 0 {
			b.Errorf("after the removals: %q", leaks)
		}
	}
}
