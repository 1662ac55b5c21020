package nftables

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/firewall"
)

// inputStmt translates the matches of the host-access rules (firewall/input.go)
// as nft does: "meta l4proto P" loads the protocol and compares it; "udp
// dport N" adds the same protocol dependency, then reads the port from the
// transport header (offset 2, network byte order).
func inputStmt(s firewall.Stmt) ([]expr.Any, error) {
	switch s := s.(type) {
	case firewall.L4ProtoMatch:
		return l4proto(s.Proto), nil
	case firewall.DportMatch:
		if s.Proto != firewall.ProtoTCP && s.Proto != firewall.ProtoUDP {
			return nil, fmt.Errorf("dport match on protocol %s", s.Proto)
		}
		return append(l4proto(s.Proto),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, s.Port)},
		), nil
	case firewall.RejectAdminProhibited:
		return []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}}, nil
	}
	return nil, fmt.Errorf("statement %T has no netlink form", s)
}

func l4proto(p firewall.L4Proto) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{byte(p)}},
	}
}
