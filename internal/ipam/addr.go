package ipam

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an address as a 128-bit number. An IPv4 address is held in its
// IPv4-mapped form (::ffff:a.b.c.d), so arithmetic within an IPv4 subnet
// never leaves the IPv4 space and one set of helpers serves both families.
type u128 struct{ hi, lo uint64 }

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// addr turns n back into an address of the family is4 says.
func (n u128) addr(is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], n.hi)
	binary.BigEndian.PutUint64(b[8:], n.lo)
	a := netip.AddrFrom16(b)
	if is4 {
		return a.Unmap()
	}
	return a
}

// v4num returns an IPv4 address as a number.
func v4num(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func v4addr(n uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b)
}

// add returns n + x, wrapping at 2^128.
func (n u128) add(x uint64) u128 {
	lo, carry := bits.Add64(n.lo, x, 0)
	return u128{n.hi + carry, lo}
}

// sub returns n - m, wrapping at 2^128.
func (n u128) sub(m u128) u128 {
	lo, borrow := bits.Sub64(n.lo, m.lo, 0)
	hi, _ := bits.Sub64(n.hi, m.hi, borrow)
	return u128{hi, lo}
}

func (n u128) less(m u128) bool { return n.hi < m.hi || n.hi == m.hi && n.lo < m.lo }

// hostMask has the low hostBits bits set (0 ≤ hostBits ≤ 128).
func hostMask(hostBits int) u128 {
	if hostBits >= 64 {
		// A shift by 64 gives 0, so hostBits 128 gives all ones.
		return u128{uint64(1)<<(hostBits-64) - 1, ^uint64(0)}
	}
	return u128{0, uint64(1)<<hostBits - 1}
}

// hostBits is the number of host bits of p: 32 - bits for IPv4, 128 - bits
// for IPv6.
func hostBits(p netip.Prefix) int { return p.Addr().BitLen() - p.Bits() }

// lastAddr returns the last address of p (the broadcast address of an IPv4
// subnet), in p's family.
func lastAddr(p netip.Prefix) netip.Addr {
	if p.Addr().Is4() {
		return v4addr(v4num(p.Addr()) | uint32(hostMask(hostBits(p)).lo))
	}
	n := u128Of(p.Masked().Addr())
	m := hostMask(hostBits(p))
	return u128{n.hi | m.hi, n.lo | m.lo}.addr(p.Addr().Is4())
}

// family names the family of a as Docker's API does: an IPv4-mapped IPv6
// address counts as IPv6 (netip's Is6), as in moby's ValidateIPAM.
func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
