package nftables

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
)

// The benchmarks print what one batch costs as the number of networks
// grows: Rebuild is linear by nature, Add and Del should stay flat.

func BenchmarkRebuild(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("networks=%d", n), func(b *testing.B) {
			fw := benchFirewall(b)
			nets := manyNetworks(n)
			for b.Loop() {
				if err := fw.Rebuild(context.Background(), nets); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAddDelNetwork(b *testing.B) {
	extra := firewall.Network{Bridge: "br-extra", Subnet: netip.MustParsePrefix("192.168.0.0/24"), ICC: true, Masquerade: true}
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("networks=%d", n), func(b *testing.B) {
			fw := benchFirewall(b)
			ctx := context.Background()
			if err := fw.Rebuild(ctx, manyNetworks(n)); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := fw.AddNetwork(ctx, extra); err != nil {
					b.Fatal(err)
				}
				if err := fw.DelNetwork(ctx, extra); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchFirewall(b *testing.B) *Firewall {
	b.Helper()
	fw, err := New(nstest.New(b), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { fw.Close() })
	return fw
}

// manyNetworks returns n masquerading networks on 10.x.y.0/24.
func manyNetworks(n int) []firewall.Network {
	nets := make([]firewall.Network, n)
	for i := range nets {
		nets[i] = firewall.Network{
			Bridge:     fmt.Sprintf("br-%06d", i),
			Subnet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
			ICC:        true,
			Masquerade: true,
		}
	}
	return nets
}

// BenchmarkAddPorts publishes 10,000 ports (removed again outside the
// timer) in one AddPorts, or in 100 of 100 ports as 100 containers do: the
// batches bench/ports compares with a bare program's.
func BenchmarkAddPorts(b *testing.B) {
	for _, batches := range []int{1, 100} {
		b.Run(fmt.Sprintf("batches=%d", batches), func(b *testing.B) {
			fw := benchFirewall(b)
			ctx := context.Background()
			if err := fw.Rebuild(ctx, manyNetworks(1)); err != nil {
				b.Fatal(err)
			}
			ps := manyPorts(10000)
			per := len(ps) / batches
			b.ReportAllocs()
			for b.Loop() {
				for i := range batches {
					if err := fw.AddPorts(ctx, ps[i*per:(i+1)*per]); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if err := fw.DelPorts(ctx, ps); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
