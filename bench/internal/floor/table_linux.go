package floor

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ensureTable replaces the floor's table with:
//
//	table inet <Table> {
//		set ports { type ifname; }
//		chain forward { type filter hook forward priority filter; policy accept;
//			iifname @ports accept }
//		chain postrouting { type nat hook postrouting priority srcnat; policy accept;
//			oifname != "<Bridge>" ip saddr <subnet> masquerade }
//	}
func (f *Floor) ensureTable(host netns.NsHandle) error {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if host.IsOpen() {
		opts = append(opts, nftables.WithNetNSFd(int(host)))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("open nftables: %w", err)
	}
	f.nft = conn
	f.table = &nftables.Table{Family: nftables.TableFamilyINet, Name: f.cfg.Table}
	conn.AddTable(f.table)
	conn.DelTable(f.table) // start from nothing, whatever an earlier run left
	conn.AddTable(f.table)
	f.ports = &nftables.Set{Table: f.table, ID: 1, Name: "ports", KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
	if err := conn.AddSet(f.ports, nil); err != nil {
		return fmt.Errorf("add set: %w", err)
	}
	accept := nftables.ChainPolicyAccept
	fwd := conn.AddChain(&nftables.Chain{
		Table: f.table, Name: "forward", Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	conn.AddRule(&nftables.Rule{Table: f.table, Chain: fwd, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: f.ports.Name, SetID: f.ports.ID},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	post := conn.AddChain(&nftables.Chain{
		Table: f.table, Name: "postrouting", Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept,
	})
	conn.AddRule(&nftables.Rule{Table: f.table, Chain: post, Exprs: masquerade(f.cfg.Bridge, f.cfg.Gateway.Masked())})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("create table %q: %w", f.cfg.Table, err)
	}
	return nil
}

// masquerade is `oifname != bridge ip saddr subnet masquerade`.
func masquerade(bridge string, subnet netip.Prefix) []expr.Any {
	mask := netipMask(subnet)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifnameKey(bridge)},
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: subnet.Addr().AsSlice()},
		&expr.Masq{},
	}
}

func netipMask(p netip.Prefix) []byte {
	m := make([]byte, 4)
	for i := range p.Bits() {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}
