package portalloc

import (
	"fmt"
	"testing"

	"github.com/berth-net/berth/internal/nstest"
	"github.com/berth-net/berth/internal/sandbox"
)

// BenchmarkHold is one Hold (and, outside the timer, its Release) of 100
// or 10,000 exact TCP ports, batched through io_uring and one by one.
// Each Hold enters the test's namespace on a new thread, which the daemon
// (an Allocator of its own namespace) does not: "enter-netns" is that cost
// alone.
func BenchmarkHold(b *testing.B) {
	ns := nstest.New(b)
	b.Run("enter-netns", func(b *testing.B) {
		for b.Loop() {
			if err := sandbox.Do(ns, func() error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{16, 100, 1000, 10000} {
		for _, syscallsOnly := range []bool{false, true} {
			mode := map[bool]string{false: "io_uring", true: "syscalls"}[syscallsOnly]
			b.Run(fmt.Sprintf("ports=%d/%s", n, mode), func(b *testing.B) {
				a := New(ns, nil)
				a.syscallsOnly = syscallsOnly
				reqs := exactReqs("tcp", anyIP, 20000, n)
				for b.Loop() {
					held, err := a.Hold(reqs)
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if err := a.Release(held); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n)/1000, "µs/port")
			})
		}
	}
}

func BenchmarkRingSetup(b *testing.B) {
	for _, n := range []int{16, 128, 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				r, err := newRing(n, opSocket, opBind)
				if err != nil {
					b.Fatal(err)
				}
				r.close()
			}
		})
	}
}
