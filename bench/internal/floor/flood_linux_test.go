package floor

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/sandbox"
)

// BenchmarkGatewayAtScale shows why a container on a bridge with 1,000
// ports (the kernel allows 1,024) cannot resolve its gateway: its ARP request is flooded to
// every port, each copy queued on the CPU's backlog (netdev_max_backlog,
// 1,000 by default) within one softirq, and the host's reply, made while
// that softirq still runs, finds the backlog full and is dropped. With GRO
// on the container ends, each veth receives on NAPI queues of its own and
// the reply gets through. It reports gateway-ok 1 or 0 (not a timing).
//
//	go test -run '^$' -bench GatewayAtScale -benchtime 1x ./bench/internal/floor/
func BenchmarkGatewayAtScale(b *testing.B) {
	for _, ports := range []int{100, 1000} {
		for _, gro := range []bool{false, true} {
			b.Run(fmt.Sprintf("ports=%d/gro=%v", ports, gro), func(b *testing.B) {
				f, _ := newFloor(b, true)
				f.cfg.GRO = gro
				for i := range ports {
					if err := f.Attach(newSandbox(b), endpoint(i)); err != nil {
						b.Fatal(err)
					}
				}
				sb := newSandbox(b)
				if err := f.Attach(sb, endpoint(ports)); err != nil {
					b.Fatal(err)
				}
				ok := 0.0
				for range b.N {
					if gatewayResolves(b, sb, f.Gateway().String()) {
						ok = 1
					}
				}
				b.ReportMetric(ok, "gateway-ok")
			})
		}
	}
}

// gatewayResolves sends a UDP datagram to gw from the namespace at sb every
// half second for up to 5 s (past the bridge port's carrier delay and three
// ARP tries) and reports whether the gateway's MAC was learned.
func gatewayResolves(b *testing.B, sb, gw string) bool {
	b.Helper()
	h := handleAt(b, sb)
	var last string
	for range 10 {
		err := sandbox.Do(sb, func() error {
			c, err := net.Dial("udp4", gw+":9")
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("x"))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		neighs, err := h.NeighList(0, unix.AF_INET)
		if err != nil {
			b.Fatal(err)
		}
		for _, n := range neighs {
			if n.IP.String() == gw {
				last = neighState(n.State)
				if n.HardwareAddr != nil && n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE) != 0 {
					return true
				}
			}
		}
	}
	b.Logf("gateway %s never resolved; last state %s", gw, last)
	return false
}

func neighState(s int) string {
	for bit, name := range map[int]string{netlink.NUD_INCOMPLETE: "INCOMPLETE", netlink.NUD_REACHABLE: "REACHABLE",
		netlink.NUD_STALE: "STALE", netlink.NUD_DELAY: "DELAY", netlink.NUD_PROBE: "PROBE", netlink.NUD_FAILED: "FAILED"} {
		if s&bit != 0 {
			return name
		}
	}
	return fmt.Sprint(s)
}
