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

// linkLocal returns the IPv6 link-local address the kernel gives a link
// with the Ethernet address mac (EUI-64: RFC 4291, appendix A), in its /64.
func linkLocal(mac net.HardwareAddr) netip.Prefix {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}
