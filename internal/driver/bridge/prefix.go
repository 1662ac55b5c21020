package bridge

import (
	"net"
	"net/netip"
)

// routePrefix converts a route destination; nil and 0.0.0.0/0 are defaults.
func routePrefix(dst *net.IPNet) (netip.Prefix, bool) {
	if dst == nil {
		return netip.Prefix{}, false
	}
	addr, ok := netip.AddrFromSlice(dst.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := dst.Mask.Size()
	p := netip.PrefixFrom(addr.Unmap(), bits).Masked()
	if !p.Addr().Is4() || p.Bits() == 0 {
		return netip.Prefix{}, false
	}
	return p, true
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// ipNet converts a prefix that keeps its host bits (172.17.0.1/16).
func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// prefixOf is the inverse of ipNet; it returns the zero prefix for nil.
func prefixOf(n *net.IPNet) netip.Prefix {
	if n == nil {
		return netip.Prefix{}
	}
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), bits)
}
