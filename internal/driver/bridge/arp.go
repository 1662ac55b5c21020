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
