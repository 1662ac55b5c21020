package ipam

import (
	"net/netip"
	"testing"
)

// BenchmarkAllocateRelease16 measures one Allocate+Release pair on a /16
// that is half full, so the search starts deep inside the bitmap.
func BenchmarkAllocateRelease16(b *testing.B) {
	s, err := NewSpace(netip.MustParsePrefix("172.18.0.0/16"), netip.Prefix{}, netip.MustParseAddr("172.18.0.1"))
	if err != nil {
		b.Fatal(err)
	}
	for range 1 << 15 {
		if _, err := s.Allocate(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		a, err := s.Allocate()
		if err != nil {
			b.Fatal(err)
		}
		s.Release(a)
	}
}

// BenchmarkAllocateRelease64 is the same on an IPv6 /64 with 2^15
// addresses in use: the cost follows the addresses in use, not the 2^64.
func BenchmarkAllocateRelease64(b *testing.B) {
	s, err := NewSpace(netip.MustParsePrefix("fd00::/64"), netip.Prefix{}, netip.MustParseAddr("fd00::1"))
	if err != nil {
		b.Fatal(err)
	}
	for range 1 << 15 {
		if _, err := s.Allocate(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		a, err := s.Allocate()
		if err != nil {
			b.Fatal(err)
		}
		s.Release(a)
	}
}

// BenchmarkAllocateScattered releases a spread of addresses in a full /16
// and allocates them again: the lowest-free search has to skip full chunks.
func BenchmarkAllocateScattered(b *testing.B) {
	s, err := NewSpace(netip.MustParsePrefix("172.18.0.0/16"), netip.Prefix{}, netip.MustParseAddr("172.18.0.1"))
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, err := s.Allocate(); err != nil {
			break
		}
	}
	holes := []netip.Addr{netip.MustParseAddr("172.18.250.3"), netip.MustParseAddr("172.18.128.9"), netip.MustParseAddr("172.18.7.7")}
	b.ReportAllocs()
	for b.Loop() {
		for _, h := range holes {
			s.Release(h)
		}
		for range holes {
			if _, err := s.Allocate(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSelectSubnet picks a subnet when most default pools are taken.
func BenchmarkSelectSubnet(b *testing.B) {
	var used []netip.Prefix
	for range 25 {
		p, err := SelectSubnet(DefaultPools(), used, nil)
		if err != nil {
			b.Fatal(err)
		}
		used = append(used, p)
	}
	reserved := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.0/24")}
	pools := DefaultPools()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SelectSubnet(pools, used, reserved); err != nil {
			b.Fatal(err)
		}
	}
}
