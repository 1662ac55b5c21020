package bridge

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/sandbox"
)

// BenchmarkSysctlWrite pairs the two ways of writing a host end's
// disable_ipv6: by its path from /proc/sys, and relative to the host's
// ipv6/conf directory held open (disableHostIPv6), with 0 and 1,000 other
// namespaces that have looked under /proc/sys/net, as each container's
// would. procfs keeps one /proc/sys/net entry per namespace and a lookup
// from /proc/sys compares them one by one (proc_sys_compare), so the
// first way grows with the machine's containers and the second does not.
//
//	go test -run '^$' -bench SysctlWrite -benchtime 2000x ./internal/driver/bridge/
func BenchmarkSysctlWrite(b *testing.B) {
	for _, others := range []int{0, 1000} {
		b.Run(fmt.Sprintf("namespaces=%d", others), func(b *testing.B) {
			w := newWorld(b)
			w.d.log = discardLogger()
			for range others {
				if err := sandbox.Do(newBenchSandbox(b), func() error {
					_, err := os.ReadFile("/proc/sys/net/ipv6/conf/lo/disable_ipv6")
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			w.ensureBenchBridge(b)
			spec := benchSpec(1)
			if err := w.d.Join(newBenchSandbox(b), spec); err != nil {
				b.Fatal(err)
			}
			w.d.Settle()
			name := spec.HostIfName
			byPath := func() error {
				return writeSysctl("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", "1")
			}
			byDir := func() error { return writeSysctlAt(w.d.ipv6Conf, name+"/disable_ipv6", "1") }
			var path, dir []time.Duration
			b.ResetTimer()
			for i := range b.N {
				for k := range 2 {
					took, f := &path, byPath
					if (i+k)%2 == 1 {
						took, f = &dir, byDir
					}
					t0 := time.Now()
					if err := w.d.hostThread.do(f); err != nil {
						b.Fatal(err)
					}
					*took = append(*took, time.Since(t0))
				}
			}
			b.StopTimer()
			for _, s := range []*[]time.Duration{&path, &dir} {
				slices.Sort(*s)
			}
			b.ReportMetric(float64(path[len(path)/2].Nanoseconds())/1000, "by-path-p50-µs")
			b.ReportMetric(float64(dir[len(dir)/2].Nanoseconds())/1000, "by-dir-p50-µs")
		})
	}
}
