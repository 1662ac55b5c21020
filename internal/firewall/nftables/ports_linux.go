package nftables

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/berth-net/berth/internal/firewall"
	nftlib "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Published ports are elements of two maps per family (see firewall/ports.go
// and ports6.go). Adding or removing a container's ports is one batch that
// touches only its elements, so it costs the same with 10 or 10,000 other
// ports in the table.

// elementsPerMessage bounds the elements of one NEWSETELEM/DELSETELEM
// message: google/nftables nests them all in one attribute, whose length
// field is 16 bits. An element of ports_ip takes about 60 bytes, one of
// ports6_ip about 90.
const elementsPerMessage = 512

// The registers nft uses for the port lookups (nft --debug=netlink): the key
// is assembled from the 32-bit register that starts NFT_REG_1 onwards, and
// the data (address, then port) comes back in the same registers.
const (
	regKey      = 1 // NFT_REG_1; its first 32 bits are NFT_REG32_00
	regAfterKey = 9 // NFT_REG32_01
	regThird    = 10
	ipsDstNAT   = 1 << 5 // IPS_DST_NAT in ct status
	rtnLocal    = 2      // RTN_LOCAL, fib's address type of a local address
)

var (
	protoPortType     = nftlib.MustConcatSetType(nftlib.TypeInetProto, nftlib.TypeInetService)
	addrProtoPortType = nftlib.MustConcatSetType(nftlib.TypeIPAddr, nftlib.TypeInetProto, nftlib.TypeInetService)
	addrPortType      = nftlib.MustConcatSetType(nftlib.TypeIPAddr, nftlib.TypeInetService)
)

// portSet is the netlink form of a port map.
func portSet(t *nftlib.Table, m firewall.Map) *nftlib.Set {
	s := &nftlib.Set{
		Table: t, ID: setIDs[m.Name], Name: m.Name, IsMap: true,
		KeyType: protoPortType, DataType: addrPortType, KeyByteOrder: binaryutil.BigEndian,
	}
	switch m.Key {
	case firewall.KeyAddrProtoPort:
		s.KeyType = addrProtoPortType
	case firewall.KeyRoutedSet:
		s.IsMap, s.KeyType, s.DataType = false, addrProtoPortType, nftlib.SetDatatype{}
	case firewall.KeyRoutedSet6:
		s.IsMap, s.KeyType, s.DataType = false, addr6ProtoPortType, nftlib.SetDatatype{}
	case firewall.KeyProtoPort6:
		s.DataType = addr6PortType
	case firewall.KeyAddrProtoPort6:
		s.KeyType, s.DataType = addr6ProtoPortType, addr6PortType
	}
	return s
}

func isPortMap(k firewall.KeyType) bool {
	switch k {
	case firewall.KeyProtoPort, firewall.KeyAddrProtoPort, firewall.KeyProtoPort6, firewall.KeyAddrProtoPort6,
		firewall.KeyRoutedSet, firewall.KeyRoutedSet6:
		return true
	}
	return false
}

// portElement is the kernel form of a port map element: each part of a
// concatenation padded to 4 bytes, as the registers hold it.
func portElement(m firewall.PortMapping, withData bool) nftlib.SetElement {
	e, _ := appendPortElement(nil, m, withData)
	return e
}

// maxPortElementLen is the most bytes appendPortElement appends for an
// IPv4 mapping: an address . protocol . port key (12) and an address . port
// value (8); maxPortElement6Len for an IPv6 one (24 and 20). A routed
// mapping's element is a key alone, of the same layout.
const (
	maxPortElementLen  = 20
	maxPortElement6Len = 44
)

// appendPortElement appends m's key and (with withData) value to buf and
// returns the element, whose Key and Val are capped slices of buf, and the
// grown buf. A batch's elements share one buffer: 10,000 ports cost one
// allocation instead of three or four each.
func appendPortElement(buf []byte, m firewall.PortMapping, withData bool) (nftlib.SetElement, []byte) {
	start := len(buf)
	if m.Routed {
		buf = appendAddr(buf, m.Addr)
		buf = append(buf, byte(m.Proto), 0, 0, 0)
		buf = binary.BigEndian.AppendUint16(buf, m.Port)
		buf = append(buf, 0, 0)
		return nftlib.SetElement{Key: buf[start:len(buf):len(buf)]}, buf
	}
	if !m.AnyHostIP() {
		buf = appendAddr(buf, m.HostIP)
	}
	buf = append(buf, byte(m.Proto), 0, 0, 0)
	buf = binary.BigEndian.AppendUint16(buf, m.HostPort)
	buf = append(buf, 0, 0)
	e := nftlib.SetElement{Key: buf[start:len(buf):len(buf)]}
	if withData {
		start = len(buf)
		buf = appendAddr(buf, m.Addr)
		buf = binary.BigEndian.AppendUint16(buf, m.Port)
		buf = append(buf, 0, 0)
		e.Val = buf[start:len(buf):len(buf)]
	}
	return e, buf
}

// appendAddr appends a's bytes without the allocation of AsSlice.
func appendAddr(buf []byte, a netip.Addr) []byte {
	if a.Is4() {
		b := a.As4()
		return append(buf, b[:]...)
	}
	b := a.As16()
	return append(buf, b[:]...)
}

// portStmt translates the statements of firewall/ports.go.
func (tr *translation) portStmt(s firewall.Stmt) ([]expr.Any, error) {
	switch s := s.(type) {
	case firewall.NfprotoIPv4:
		return tr.ipv4Only(), nil
	case firewall.FibDaddrLocal:
		return []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(rtnLocal)},
		}, nil
	case firewall.CtStatusDNAT:
		return []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
		}, nil
	case firewall.DNATPortMap:
		return tr.dnatPortMap(s), nil
	case firewall.RoutedPortLookup:
		return tr.routedPortLookup(s), nil
	case firewall.NfprotoIPv6:
		return tr.ipv6Only(), nil
	}
	return nil, fmt.Errorf("statement %T has no netlink form", s)
}

// dnatFamily is what differs between the two families' DNAT by map:
// where the destination address is and how long, the registers after it
// (where the protocol and port of a ports_ip key go, and where the port
// of the data comes back), the maps and the NAT family.
type dnatFamily struct {
	only                func(*translation) []expr.Any
	addrOffset, addrLen uint32
	afterAddr           uint32 // the register after an address
	afterAddrNext       uint32
	anyMap, ipMap       string
	nfproto             uint32
}

var (
	dnat4 = dnatFamily{
		only: (*translation).ipv4Only, addrOffset: addrOffset(firewall.Daddr), addrLen: 4,
		afterAddr: regAfterKey, afterAddrNext: regThird,
		anyMap: firewall.MapPortsAny, ipMap: firewall.MapPortsIP, nfproto: unix.NFPROTO_IPV4,
	}
	// The IPv6 dependency of ports6_any's rule comes from its "ip6 saddr"
	// match, before.
	dnat6 = dnatFamily{
		only: (*translation).ipv6Only, addrOffset: addr6Offset(firewall.Daddr), addrLen: 16,
		afterAddr: regAfterAddr6, afterAddrNext: regAfterAddr6Next,
		anyMap: firewall.MapPorts6Any, ipMap: firewall.MapPorts6IP, nfproto: unix.NFPROTO_IPV6,
	}
)

// dnatPortMap loads the key into consecutive 32-bit registers, looks it up
// and DNATs to the address and port the lookup returned (the port follows
// the address in the data). Every lookup has a destination register: a
// lookup without one in a map needs Linux 6.5.
func (tr *translation) dnatPortMap(d firewall.DNATPortMap) []expr.Any {
	f := dnat4
	if d.IPv6 {
		f = dnat6
	}
	var exprs []expr.Any
	protoReg, portReg, set := uint32(regKey), uint32(regAfterKey), f.anyMap
	if d.ByAddr {
		exprs = append(f.only(tr), &expr.Payload{
			DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.addrOffset, Len: f.addrLen,
		})
		protoReg, portReg, set = f.afterAddr, f.afterAddrNext, f.ipMap
	}
	return append(exprs,
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: protoReg},
		&expr.Payload{DestRegister: portReg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: regKey, DestRegister: regKey, IsDestRegSet: true, SetName: set, SetID: setIDs[set]},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: f.nfproto, RegAddrMin: regKey, RegProtoMin: f.afterAddr},
	)
}

// queuePortElements adds (or, with add false, deletes) port elements,
// grouped by map in messages of at most elementsPerMessage elements.
func (f *Firewall) queuePortElements(es []firewall.Element, add bool) error {
	ms := make([]firewall.PortMapping, len(es))
	for i, e := range es {
		ms[i] = e.Port
	}
	return f.queuePorts(ms, add)
}

// portMaps are the DNAT port maps, by portMapIndex.
var portMaps = [...]string{firewall.MapPortsAny, firewall.MapPortsIP, firewall.MapPorts6Any, firewall.MapPorts6IP}

// portSets are the port maps, then the routed ports' sets (indexes 4
// and 5), by portMapIndex.
var portSets = [...]string{portMaps[0], portMaps[1], portMaps[2], portMaps[3], firewall.MapPortsRouted, firewall.MapPorts6Routed}

// portMapIndex is the index in portSets of the map or set that holds m's
// element, the one firewall.ElementsOf names.
func portMapIndex(m firewall.PortMapping) int {
	switch {
	case m.Routed && m.Is6():
		return 5
	case m.Routed:
		return 4
	}
	i := 0
	if !m.AnyHostIP() {
		i = 1
	}
	if m.Is6() {
		i += 2
	}
	return i
}

// queuePorts adds (or, with add false, deletes) the elements of ms: those
// on every host address in ports_any, the others in ports_ip, or in their
// IPv6 twins, in messages of at most elementsPerMessage elements.
func (f *Firewall) queuePorts(ms []firewall.PortMapping, add bool) error {
	var n [len(portSets)]int
	for _, m := range ms {
		n[portMapIndex(m)]++
	}
	var byMap [len(portSets)][]nftlib.SetElement
	for i := range byMap {
		byMap[i] = make([]nftlib.SetElement, 0, n[i])
	}
	buf := make([]byte, 0, (n[0]+n[1]+n[4])*maxPortElementLen+(n[2]+n[3]+n[5])*maxPortElement6Len)
	for _, m := range ms {
		var e nftlib.SetElement
		e, buf = appendPortElement(buf, m, add)
		i := portMapIndex(m)
		byMap[i] = append(byMap[i], e)
	}
	for i, name := range portSets {
		set := setByName(f.table, name)
		for chunk := range slices.Chunk(byMap[i], elementsPerMessage) {
			var err error
			if add {
				err = f.conn.SetAddElements(set, chunk)
			} else {
				err = f.conn.SetDeleteElements(set, chunk)
			}
			if err != nil {
				return fmt.Errorf("elements of map %q: %w", name, err)
			}
		}
	}
	return nil
}

// normalPort is the form mappings are remembered in: every-address ports
// with the zero HostIP, so that 0.0.0.0 and "" are the same element.
func normalPort(m firewall.PortMapping) firewall.PortMapping {
	if m.AnyHostIP() {
		m.HostIP = netip.Addr{}
	}
	return m
}

// newPorts returns the distinct mappings of ps, normalised, that keep says to keep.
func newPorts(ps []firewall.PortMapping, keep func(firewall.PortMapping) bool) []firewall.PortMapping {
	out := make([]firewall.PortMapping, 0, len(ps))
	if distinctHostPorts(ps) {
		// No two share a host port: nothing to merge, and no map of
		// 10,000 keys to fill, which would cost more than the rest of
		// AddPorts before the kernel batch.
		for _, m := range ps {
			if m = normalPort(m); keep(m) {
				out = append(out, m)
			}
		}
		return out
	}
	seen := firewall.NewPortIndex(len(ps))
	for _, m := range ps {
		m = normalPort(m)
		if old, dup := seen.Get(m); (dup && old == m) || !keep(m) {
			continue
		}
		seen.Put(m)
		out = append(out, m)
	}
	return out
}

// portBits has a bit per protocol (tcp, udp) and port: 16 KiB.
type portBits [2][1 << 16 / 64]uint64

// distinctHostPorts reports whether no two TCP or UDP mappings of ps of
// the same family share a protocol and host port, whatever their host
// addresses; it says false for other protocols. A port published for
// both families, the common case, is distinct.
func distinctHostPorts(ps []firewall.PortMapping) bool {
	var seen portBits
	var seen6 *portBits // made at the first IPv6 mapping
	for _, m := range ps {
		var p int
		switch m.Proto {
		case firewall.TCP:
		case firewall.UDP:
			p = 1
		default:
			return false
		}
		bits := &seen
		if m.Is6() {
			if seen6 == nil {
				seen6 = new(portBits)
			}
			bits = seen6
		}
		w, bit := &bits[p][m.HostPort/64], uint64(1)<<(m.HostPort%64)
		if *w&bit != 0 {
			return false
		}
		*w |= bit
	}
	return true
}

// portList returns the remembered mappings.
func (f *Firewall) portList() []firewall.PortMapping { return f.ports.List() }

// AddPorts adds the elements of ps in one batch; mappings already in the
// table are left alone. A mapping whose host address, port and protocol
// another mapping holds is a conflict and nothing is added.
//
// The conntrack entries of flows to the new ports from before they were
// published go after f.mu is let go: finding them reads the host's whole
// conntrack table (up to a second with 100,000 entries), which must not
// hold every other container's port changes.
func (f *Firewall) AddPorts(ctx context.Context, ps []firewall.PortMapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fresh, err := f.addPorts(ps)
	if len(fresh) > 0 {
		f.forgetUnpublished(fresh)
	}
	return err
}

// addPorts is AddPorts under f.mu; it returns the mappings it added.
func (f *Firewall) addPorts(ps []firewall.PortMapping) ([]firewall.PortMapping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// A host side published with another target is kept: Check refuses it.
	fresh := newPorts(ps, func(m firewall.PortMapping) bool { old, ok := f.ports.Get(m); return !ok || old != m })
	if len(fresh) == 0 {
		return nil, nil
	}
	if err := f.claims.Check(fresh); err != nil {
		return nil, err
	}
	if err := f.applyPorts(fresh, true); err != nil {
		f.log.Warn("adding published ports failed, rebuilding the table", "ports", len(fresh), "error", err)
		if rerr := f.rebuild(f.othersThan(""), append(f.portList(), fresh...)); rerr != nil {
			return nil, fmt.Errorf("add %d published ports: %w", len(fresh), errors.Join(err, rerr))
		}
		return fresh, nil
	}
	for _, m := range fresh {
		f.ports.Put(m)
	}
	f.claims.Add(fresh)
	f.log.Debug("published ports added", "ports", len(fresh))
	return fresh, nil
}

// DelPorts removes the elements of ps in one batch; mappings not in the
// table are not an error.
// The withdrawn ports' conntrack entries go after f.mu is let go, as in
// AddPorts.
func (f *Firewall) DelPorts(ctx context.Context, ps []firewall.PortMapping) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	gone, err := f.delPorts(ps)
	if len(gone) > 0 {
		f.forgetConnections(gone)
	}
	return err
}

// delPorts is DelPorts under f.mu; it returns the mappings whose
// connections are to be forgotten (none after a failure's rebuild).
func (f *Firewall) delPorts(ps []firewall.PortMapping) ([]firewall.PortMapping, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	known := newPorts(ps, func(m firewall.PortMapping) bool { old, ok := f.ports.Get(m); return ok && old == m })
	if len(known) == 0 {
		return nil, nil
	}
	err := f.applyPorts(known, false)
	for _, m := range known {
		f.ports.Delete(m)
	}
	f.claims.Remove(known)
	if err != nil {
		f.log.Warn("deleting published ports failed, rebuilding the table", "ports", len(known), "error", err)
		if rerr := f.rebuild(f.othersThan(""), f.portList()); rerr != nil {
			// Neither batch reached the kernel (each is one
			// transaction): the ports are still published there, and
			// the caller keeps them, so they are kept here too (the
			// next rebuild would drop them otherwise).
			for _, m := range known {
				f.ports.Put(m)
			}
			f.claims.Add(known)
			return nil, fmt.Errorf("delete %d published ports: %w", len(known), errors.Join(err, rerr))
		}
		return nil, nil
	}
	f.log.Debug("published ports deleted", "ports", len(known))
	return known, nil
}

// applyPorts sends one batch with the elements of ms (and the skeleton,
// before the table was first built by this Firewall).
func (f *Firewall) applyPorts(ms []firewall.PortMapping, add bool) error {
	if !f.built {
		if err := f.queueSkeleton(); err != nil {
			f.discard()
			return err
		}
	}
	if err := f.queuePorts(ms, add); err != nil {
		f.discard()
		return err
	}
	if err := f.flush(); err != nil {
		return err
	}
	f.built = true
	return nil
}

// routedPortLookup loads the destination address, protocol and port into
// consecutive registers, as dnatPortMap loads a ports_ip key, and looks
// them up in a routed ports' set: a match, no data.
func (tr *translation) routedPortLookup(l firewall.RoutedPortLookup) []expr.Any {
	f, set := dnat4, firewall.MapPortsRouted
	if l.IPv6 {
		f, set = dnat6, firewall.MapPorts6Routed
	}
	return append(f.only(tr),
		&expr.Payload{DestRegister: regKey, Base: expr.PayloadBaseNetworkHeader, Offset: f.addrOffset, Len: f.addrLen},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: f.afterAddr},
		&expr.Payload{DestRegister: f.afterAddrNext, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: regKey, SetName: set, SetID: setIDs[set]},
	)
}
