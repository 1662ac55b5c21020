package nftables

import (
	nftlib "github.com/google/nftables"
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
