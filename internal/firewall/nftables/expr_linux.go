package nftables

import (
	"fmt"
	"net/netip"

	"github.com/berth-net/berth/internal/firewall"
	nftlib "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// This file translates firewall's model into google/nftables values. Each
// statement becomes the expressions nft itself emits for the same text
// (checked against `nft --debug=netlink`, see expr_linux_test.go), so the
// kernel lists exactly the text the model renders.

// table is berth's own table, the daemon's; berth-cni has another (NewTable).
var table = &nftlib.Table{Family: nftlib.TableFamilyINet, Name: firewall.TableName}

// setIDs name the maps inside a batch; any distinct non-zero values do.
// Fixed IDs also keep us off google/nftables' unsynchronised global counter.
var setIDs = map[string]uint32{
	firewall.MapFwdIn:       1,
	firewall.MapFwdOut:      2,
	firewall.MapNatOut:      3,
	firewall.MapDirect:      4,
	firewall.MapDirect6:     10,
	firewall.MapNatIn:       7,
	firewall.MapFwdInternal: 9,
	firewall.MapHostIn:      8,
	firewall.MapPortsAny:    5,
	firewall.MapPortsIP:     6,
	firewall.MapPorts6Any:   11,
	firewall.MapPorts6IP:    12,
	// The routed ports' sets (firewall/routed.go).
	firewall.MapPortsRouted:  13,
	firewall.MapPorts6Routed: 14,
}

func nftSet(t *nftlib.Table, m firewall.Map) *nftlib.Set {
	if isPortMap(m.Key) {
		return portSet(t, m)
	}
	s := &nftlib.Set{
		Table:    t,
		ID:       setIDs[m.Name],
		Name:     m.Name,
		IsMap:    true,
		KeyType:  nftlib.TypeIFName,
		DataType: nftlib.TypeVerdict,
		// nft reads string keys in host order; without this it lists the
		// names as "".
		KeyByteOrder: binaryutil.NativeEndian,
	}
	switch m.Key {
	case firewall.KeyIPv4Prefix:
		s.KeyType = nftlib.TypeIPAddr
		s.KeyByteOrder = binaryutil.BigEndian
		s.Interval = true
	case firewall.KeyIPv6Prefix:
		s.KeyType = nftlib.TypeIP6Addr
		s.KeyByteOrder = binaryutil.BigEndian
		s.Interval = true
	}
	return s
}

// setByName returns the set an element or lookup refers to. Only the name and
// ID matter to the kernel once the set exists.
func setByName(t *nftlib.Table, name string) *nftlib.Set {
	return &nftlib.Set{Table: t, ID: setIDs[name], Name: name, IsMap: true}
}

// nftElements returns the kernel elements of e: one for an ifname key, two
// (start, and end marked IntervalEnd) for a prefix. When withData is false the
// verdict is left out, as a deletion needs only keys.
func nftElements(e firewall.Element, withData bool) []nftlib.SetElement {
	if e.Port.HostPort != 0 || e.Port.Routed {
		return []nftlib.SetElement{portElement(e.Port, withData)}
	}
	var v *expr.Verdict
	if withData {
		v = &expr.Verdict{Kind: expr.VerdictJump, Chain: e.Jump}
	}
	if !e.Prefix.IsValid() {
		return []nftlib.SetElement{{Key: ifname(e.Ifname), VerdictData: v}}
	}
	start := e.Prefix.Masked().Addr()
	out := []nftlib.SetElement{{Key: start.AsSlice(), VerdictData: v}}
	// The end is exclusive: the first address after the prefix. A prefix
	// that ends at the last address (255.255.255.255, or all ones in
	// IPv6) has none, and nft sends none either.
	if end, ok := afterPrefix(e.Prefix); ok {
		out = append(out, nftlib.SetElement{Key: end.AsSlice(), IntervalEnd: true})
	}
	return out
}

// afterPrefix returns the first address after p, if there is one: the
// last address of p (its host bits set) plus one.
func afterPrefix(p netip.Prefix) (netip.Addr, bool) {
	last := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(last)*8; i++ {
		last[i/8] |= 0x80 >> (i % 8)
	}
	end, _ := netip.AddrFromSlice(last)
	end = end.Next()
	return end, end.IsValid()
}

func nftChain(t *nftlib.Table, c firewall.Chain) *nftlib.Chain {
	ch := &nftlib.Chain{Table: t, Name: c.Name}
	if c.Base == nil {
		return ch
	}
	accept := nftlib.ChainPolicyAccept
	prio := nftlib.ChainPriority(c.Base.Priority.Value)
	ch.Type = map[firewall.ChainType]nftlib.ChainType{
		firewall.TypeFilter: nftlib.ChainTypeFilter,
		firewall.TypeNAT:    nftlib.ChainTypeNAT,
	}[c.Base.Type]
	ch.Hooknum = map[firewall.Hook]*nftlib.ChainHook{
		firewall.HookPrerouting:  nftlib.ChainHookPrerouting,
		firewall.HookForward:     nftlib.ChainHookForward,
		firewall.HookPostrouting: nftlib.ChainHookPostrouting,
		firewall.HookOutput:      nftlib.ChainHookOutput,
		firewall.HookInput:       nftlib.ChainHookInput,
	}[c.Base.Hook]
	ch.Priority = &prio
	ch.Policy = &accept
	return ch
}

// nftRule translates one rule of chain ch.
func nftRule(ch *nftlib.Chain, r firewall.Rule) (*nftlib.Rule, error) {
	var exprs []expr.Any
	var tr translation
	for _, s := range r.Stmts {
		e, err := tr.stmt(s)
		if err != nil {
			return nil, fmt.Errorf("chain %q, rule %q: %w", ch.Name, r, err)
		}
		exprs = append(exprs, e...)
	}
	nr := &nftlib.Rule{Table: ch.Table, Chain: ch, Exprs: exprs}
	if r.Comment != "" {
		nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
	}
	return nr, nil
}

// translation carries what a rule has already established, as nft does:
// the IPv4 or IPv6 dependency is emitted once per rule, not once per
// address match.
type translation struct {
	ipv4, ipv6 bool
}

func (tr *translation) stmt(s firewall.Stmt) ([]expr.Any, error) {
	switch s := s.(type) {
	case firewall.IfnameMatch:
		return []expr.Any{
			&expr.Meta{Key: ifnameKey(s.Dir), Register: 1},
			&expr.Cmp{Op: cmpOp(s.Negate), Register: 1, Data: ifnameMatch(s)},
		}, nil
	case firewall.CtEstablishedRelated:
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{
				SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
				Xor:  make([]byte, 4),
			},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}, nil
	case firewall.MarkMatch:
		exprs := []expr.Any{&expr.Meta{Key: expr.MetaKeyMARK, Register: 1}}
		if s.Mask != ^uint32(0) {
			exprs = append(exprs, &expr.Bitwise{
				SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: binaryutil.NativeEndian.PutUint32(s.Mask), Xor: make([]byte, 4),
			})
		}
		return append(exprs, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(s.Mark)}), nil
	case firewall.AddrMatch:
		return tr.addrMatch(s)
	case firewall.VmapLookup:
		return tr.vmapLookup(s)
	case firewall.IfnameInMap:
		id, ok := setIDs[s.Map]
		if !ok {
			return nil, fmt.Errorf("unknown map %q", s.Map)
		}
		// No destination register: the kernel checks the key is there.
		return []expr.Any{
			&expr.Meta{Key: ifnameKey(s.Dir), Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: s.Map, SetID: id},
		}, nil
	case firewall.Counter:
		return []expr.Any{&expr.Counter{}}, nil
	case firewall.Masquerade:
		return []expr.Any{&expr.Masq{}}, nil
	case firewall.SNAT:
		family := uint32(unix.NFPROTO_IPV4)
		if !s.Addr.Is4() {
			family = unix.NFPROTO_IPV6
		}
		return []expr.Any{
			&expr.Immediate{Register: 1, Data: s.Addr.AsSlice()},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: family, RegAddrMin: 1},
		}, nil
	case firewall.Verdict:
		return verdict(s)
	case firewall.L4ProtoMatch, firewall.DportMatch, firewall.RejectAdminProhibited:
		return inputStmt(s)
	case firewall.ClampMSS:
		return clampMSS(), nil
	}
	return tr.portStmt(s)
}

// addrMatch compares the address field against the prefix the way nft
// does: a byte-aligned prefix loads only its bytes; any other loads the
// whole address (4 bytes, or 16 for IPv6) and masks it.
func (tr *translation) addrMatch(m firewall.AddrMatch) ([]expr.Any, error) {
	a := m.Prefix.Addr()
	if !m.Prefix.IsValid() || a.Is4In6() {
		return nil, fmt.Errorf("prefix %s is neither IPv4 nor IPv6", m.Prefix)
	}
	bits := m.Prefix.Bits()
	if bits <= 0 {
		return nil, fmt.Errorf("prefix %s matches every address", m.Prefix)
	}
	size := uint32(a.BitLen() / 8)
	n := size
	if bits%8 == 0 {
		n = uint32(bits / 8)
	}
	var exprs []expr.Any
	if a.Is4() {
		exprs = append(tr.ipv4Only(), &expr.Payload{
			DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOffset(m.Field), Len: n,
		})
	} else {
		exprs = append(tr.ipv6Only(), &expr.Payload{
			DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addr6Offset(m.Field), Len: n,
		})
	}
	if bits%8 != 0 {
		exprs = append(exprs, &expr.Bitwise{
			SourceRegister: 1, DestRegister: 1, Len: n, Mask: netMask(bits, int(size)), Xor: make([]byte, n),
		})
	}
	addr := m.Prefix.Masked().Addr().AsSlice()[:n]
	return append(exprs, &expr.Cmp{Op: cmpOp(m.Negate), Register: 1, Data: addr}), nil
}

func (tr *translation) vmapLookup(v firewall.VmapLookup) ([]expr.Any, error) {
	var load []expr.Any
	switch v.Key {
	case firewall.LookupIifname:
		load = []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}}
	case firewall.LookupOifname:
		load = []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}}
	case firewall.LookupDaddr:
		load = append(tr.ipv4Only(), &expr.Payload{
			DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addrOffset(firewall.Daddr), Len: 4,
		})
	case firewall.LookupDaddr6:
		load = append(tr.ipv6Only(), &expr.Payload{
			DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: addr6Offset(firewall.Daddr), Len: 16,
		})
	default:
		return nil, fmt.Errorf("unknown lookup key %d", v.Key)
	}
	id, ok := setIDs[v.Map]
	if !ok {
		return nil, fmt.Errorf("unknown map %q", v.Map)
	}
	// Destination register 0 is the verdict register: that makes it a vmap.
	return append(load, &expr.Lookup{SourceRegister: 1, DestRegister: 0, IsDestRegSet: true, SetName: v.Map, SetID: id}), nil
}

func verdict(v firewall.Verdict) ([]expr.Any, error) {
	switch v.Kind {
	case firewall.Accept:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}, nil
	case firewall.Drop:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, nil
	case firewall.Jump:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: v.Chain}}, nil
	case firewall.Return:
		return []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}, nil
	}
	return nil, fmt.Errorf("unknown verdict %d", v.Kind)
}

// ipv4Only is the dependency nft adds before the first read of an IPv4
// header field in an inet table: IPv6 packets must not be read as IPv4.
func (tr *translation) ipv4Only() []expr.Any {
	if tr.ipv4 {
		return nil
	}
	tr.ipv4 = true
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ipv6Only is ipv4Only for IPv6 header fields.
func (tr *translation) ipv6Only() []expr.Any {
	if tr.ipv6 {
		return nil
	}
	tr.ipv6 = true
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
	}
}

// addrOffset is the field's offset in the IPv4 header.
func addrOffset(f firewall.AddrField) uint32 {
	if f == firewall.Daddr {
		return 16
	}
	return 12
}

// addr6Offset is the field's offset in the IPv6 header.
func addr6Offset(f firewall.AddrField) uint32 {
	if f == firewall.Daddr {
		return 24
	}
	return 8
}

func ifnameKey(d firewall.Dir) expr.MetaKey {
	if d == firewall.Out {
		return expr.MetaKeyOIFNAME
	}
	return expr.MetaKeyIIFNAME
}

func cmpOp(negate bool) expr.CmpOp {
	if negate {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

// ifnameMatch is the data an interface match compares: the whole name,
// padded, or a wildcard's prefix alone (a shorter compare, as nft makes
// for "eth*").
func ifnameMatch(m firewall.IfnameMatch) []byte {
	if m.Wildcard {
		return []byte(m.Name)
	}
	return ifname(m.Name)
}

// ifname is an interface name as the kernel compares it: IFNAMSIZ
// bytes, zero padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// netMask is the network mask of a prefix length, size bytes long (4 for
// IPv4, 16 for IPv6).
func netMask(bits, size int) []byte {
	m := make([]byte, size)
	for i := range bits {
		m[i/8] |= 0x80 >> (i % 8)
	}
	return m
}

// clampMSS is "tcp flags syn / syn,rst tcp option maxseg size set rt
// mtu" as nft 1.0.6 sends it: the flags byte (transport header + 13)
// masked with SYN|RST must be SYN; the route's MSS, in network order,
// is written over the option's two size bytes (the kernel skips the
// write when it would raise the option).
func clampMSS() []expr.Any {
	const flagsOffset, syn, rst = 13, 0x02, 0x04
	const maxsegKind, maxsegSizeOffset = 2, 2
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: flagsOffset, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{syn | rst}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{syn}},
		&expr.Rt{Register: 1, Key: expr.RtTCPMSS},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 2, Size: 2},
		&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: maxsegKind, Offset: maxsegSizeOffset, Len: 2, SourceRegister: 1},
	}
}
