package nftables

import (
	"github.com/berth-net/berth/internal/firewall"
	nftlib "github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The IPv6 port maps (firewall/ports6.go) hold the same keys as the IPv4
// ones with 16-byte addresses, so the registers after an address move:
// nft puts the part after a 16-byte address in NFT_REG_2 (the 32-bit
// register NFT_REG32_04) and the next in NFT_REG32_05 (nft --debug=netlink).
const (
	regAfterAddr6     = 2  // NFT_REG_2
	regAfterAddr6Next = 13 // NFT_REG32_05
)

var (
	addr6ProtoPortType = nftlib.MustConcatSetType(nftlib.TypeIP6Addr, nftlib.TypeInetProto, nftlib.TypeInetService)
	addr6PortType      = nftlib.MustConcatSetType(nftlib.TypeIP6Addr, nftlib.TypeInetService)
)

// dnatPortMap6 is dnatPortMap for the IPv6 maps. Every lookup has a
// destination register (a lookup without one in a map needs Linux 6.5).
// The IPv6 dependency comes from the rule's "ip6 saddr" match, before.
func (tr *translation) dnatPortMap6(d firewall.DNATPortMap) []expr.Any {
	var exprs []expr.Any
	protoReg, portReg, set := uint32(regKey), uint32(regAfterKey), firewall.MapPorts6Any
	if d.ByAddr {
		exprs = append(tr.ipv6Only(), &expr.Payload{
			DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: addr6Offset(firewall.Daddr), Len: 16,
		})
		protoReg, portReg, set = regAfterAddr6, regAfterAddr6Next, firewall.MapPorts6IP
	}
	return append(exprs,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: regKey, DestRegister: regKey, IsDestRegSet: true, SetName: set, SetID: setIDs[set]},
		// The data is address . port: the port follows the 16 bytes.
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: regKey, RegProtoMin: regAfterAddr6},
	)
}
