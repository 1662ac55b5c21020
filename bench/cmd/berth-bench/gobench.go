package main

import (
	"flag"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/ipam"
)

// goBenchResult is ns per operation of the pure hot paths.
type goBenchResult struct {
	ipam, rules time.Duration
}

// goBenches runs the pure hot paths through testing.Benchmark, the same
// work as BenchmarkAllocateRelease16 (internal/ipam) and BenchmarkBuild100
// (internal/firewall), so the table carries them without a test build.
func goBenches(benchtime time.Duration) (goBenchResult, error) {
	var res goBenchResult
	space, err := ipam.NewSpace(netip.MustParsePrefix("172.18.0.0/16"), netip.Prefix{}, netip.MustParseAddr("172.18.0.1"))
	if err != nil {
		return res, err
	}
	for range 1 << 15 { // half full: the search starts deep in the bitmap
		if _, err := space.Allocate(); err != nil {
			return res, err
		}
	}
	r := benchFor(benchtime, func() error {
		a, err := space.Allocate()
		if err == nil {
			space.Release(a)
		}
		return err
	})
	if r.err != nil {
		return res, fmt.Errorf("ipam: %w", r.err)
	}
	res.ipam = r.per
	nets := manyNetworks(100)
	r = benchFor(benchtime, func() error {
		_, err := firewall.Build(nets)
		return err
	})
	if r.err != nil {
		return res, fmt.Errorf("ruleset: %w", r.err)
	}
	res.rules = r.per
	return res, nil
}

type benchOutcome struct {
	per time.Duration
	err error
}

// benchFor runs op under testing.Benchmark for about d.
func benchFor(d time.Duration, op func() error) benchOutcome {
	testing.Init() // registers -test.benchtime, which Benchmark reads
	flag.Set("test.benchtime", d.String())
	var out benchOutcome
	r := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if err := op(); err != nil {
				out.err = err
				b.SkipNow()
			}
		}
	})
	if r.N > 0 {
		out.per = r.T / time.Duration(r.N)
	}
	return out
}

// manyNetworks is n user networks on 10.x.y.0/24 with varied options, as
// internal/firewall's benchmark builds them.
func manyNetworks(n int) []firewall.Network {
	nets := make([]firewall.Network, n)
	for i := range nets {
		nets[i] = firewall.Network{
			Bridge:     fmt.Sprintf("br-%012x", i),
			Subnet:     netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
			ICC:        i%2 == 0,
			Masquerade: i%3 != 0,
			Internal:   i%7 == 0,
		}
	}
	return nets
}
