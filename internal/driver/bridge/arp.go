package bridge

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// garpPayload is an ARP announcement (RFC 5227): a request whose sender and
// target protocol addresses are both addr. Linux updates existing neighbour
// entries on it whatever arp_accept says.
func garpPayload(mac net.HardwareAddr, addr netip.Addr) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint16(b[0:], 1)      // hardware: Ethernet
	binary.BigEndian.PutUint16(b[2:], 0x0800) // protocol: IPv4
	b[4], b[5] = 6, 4                         // address lengths
	binary.BigEndian.PutUint16(b[6:], 1)      // op: request
	ip := addr.As4()
	copy(b[8:14], mac)
	copy(b[14:18], ip[:])
	// b[18:24], the target hardware address, stays zero.
	copy(b[24:28], ip[:])
	return b
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// unsolicitedNA is the IPv6 counterpart of garpPayload (RFC 4861 7.2.6):
// an IPv6 packet from addr to all-nodes (ff02::1), hop limit 255, with a
// neighbour advertisement for addr, the Override flag set and mac as the
// target link-layer address. A Linux neighbour that has an entry for addr
// takes the new MAC from it (ndisc_recv_na), as Docker's containers
// announce their addresses (libnetwork's advertiseAddrNS).
func unsolicitedNA(mac net.HardwareAddr, addr netip.Addr) []byte {
	const icmpLen = 32 // type, code, checksum, flags, target, one option
	b := make([]byte, 40+icmpLen)
	b[0] = 6 << 4                              // version 6
	binary.BigEndian.PutUint16(b[4:], icmpLen) // payload length
	b[6], b[7] = 58, 255                       // next header ICMPv6, hop limit
	src, dst := addr.As16(), allNodes.As16()
	copy(b[8:24], src[:])
	copy(b[24:40], dst[:])
	m := b[40:]
	m[0] = 136                                    // neighbour advertisement
	binary.BigEndian.PutUint32(m[4:], 0x20000000) // Override
	copy(m[8:24], src[:])
	m[24], m[25] = 2, 1 // option: target link-layer address, 8 bytes
	copy(m[26:32], mac)
	binary.BigEndian.PutUint16(m[2:], icmp6Checksum(src, dst, m))
	return b
}

// allNodes is the link-local all-nodes multicast address, and
// allNodesMAC its Ethernet address (RFC 2464: 33:33 and the low 32 bits).
var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = [8]byte{0x33, 0x33, 0, 0, 0, 1}
)

// icmp6Checksum is the ICMPv6 checksum of msg (its checksum field zero)
// over the IPv6 pseudo-header (RFC 8200 8.1).
func icmp6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += uint32(len(msg)) + 58
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
