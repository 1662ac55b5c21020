package firewall

import (
	"encoding/binary"

	"github.com/berth-net/berth/internal/errdefs"
)

// PortClaims indexes the host side of published ports so that a batch of
// mappings is checked for conflicts in constant time per mapping, however
// many are published already: with 10,000 ports, re-validating everything
// on each container's AddPorts would cost more than the kernel batch.
// The families do not collide: the same port may be published over IPv4
// and over IPv6, as Docker binds 0.0.0.0:PORT and [::]:PORT.
// The zero value is not ready; use NewPortClaims.
type PortClaims struct {
	// perPort is indexed by protocol (tcp, udp) and port: an array, not a
	// map, because hashing 10,000 keys costs more than the kernel batch.
	perPort *[2][1 << 16]portClaims
	exact   map[uint64]bool // claims on one address: proto . port . address
	// perPort6 and exact6 are the IPv6 twins, made at the first IPv6
	// claim, so that a host without IPv6 ports pays nothing for them.
	perPort6 *[2][1 << 16]portClaims
	exact6   map[hostKey6]bool
}

type portClaims struct {
	any bool  // claimed on every address
	n   int32 // claims on this protocol and port, any address
}

// NewPortClaims returns an empty index.
func NewPortClaims() *PortClaims {
	return &PortClaims{perPort: new([2][1 << 16]portClaims), exact: map[uint64]bool{}}
}

// hostKey is the host side of an IPv4 mapping (protocol, port, address;
// 0.0.0.0 for every address) as one number, a cheap map key.
func hostKey(m PortMapping) uint64 {
	if m.AnyHostIP() {
		return uint64(m.Proto)<<48 | uint64(m.HostPort)<<32
	}
	return exactKey(m)
}

func exactKey(m PortMapping) uint64 {
	ip := binary.BigEndian.Uint32(m.HostIP.AsSlice())
	return uint64(m.Proto)<<48 | uint64(m.HostPort)<<32 | uint64(ip)
}

// hostKey6 is the host side of an IPv6 mapping, whose address does not fit
// hostKey's number; every address is the zero address, ::.
type hostKey6 struct {
	proto Proto
	port  uint16
	addr  [16]byte
}

func hostKeyOf6(m PortMapping) hostKey6 {
	k := hostKey6{proto: m.Proto, port: m.HostPort}
	if !m.AnyHostIP() {
		k.addr = m.HostIP.As16()
	}
	return k
}

// slot is the mapping's entry in perPort or perPort6 (nil while no IPv6
// port was claimed); only TCP and UDP are valid.
func (c *PortClaims) slot(m PortMapping) *portClaims {
	i := 0
	if m.Proto == UDP {
		i = 1
	}
	if m.Is6() {
		if c.perPort6 == nil {
			return nil
		}
		return &c.perPort6[i][m.HostPort]
	}
	return &c.perPort[i][m.HostPort]
}

// Check validates each mapping of ms and that none collides with a claim
// or with an earlier mapping of ms: the same family, address, port and
// protocol, or a port on every address beside the same port on one. It
// changes nothing.
func (c *PortClaims) Check(ms []PortMapping) error {
	// The batch is claimed as it is checked, so that it collides with
	// itself too, and let go at the end. (An index of its own would cost
	// 1 MiB per call: 100 containers of 100 ports made 100 MiB of garbage.)
	n := 0
	defer func() { c.Remove(ms[:n]) }()
	for _, m := range ms {
		if err := validatePort(m); err != nil {
			return err
		}
		if m.Routed {
			n++ // no host side to claim
			continue
		}
		if c.collides(m) {
			// Docker's words for a port another container publishes
			// (portallocator.ErrPortAlreadyAllocated: ":::8080" for IPv6).
			return errdefs.Conflict("Bind for %s:%d failed: port is already allocated", m.hostIP(), m.HostPort)
		}
		c.add(m)
		n++
	}
	return nil
}

func (c *PortClaims) collides(m PortMapping) bool {
	pc := c.slot(m)
	if pc == nil {
		return false
	}
	if pc.any || (m.AnyHostIP() && pc.n > 0) {
		return true
	}
	return !m.AnyHostIP() && pc.n > 0 && c.hasExact(m)
}

func (c *PortClaims) hasExact(m PortMapping) bool {
	if m.Is6() {
		return c.exact6[hostKeyOf6(m)]
	}
	return c.exact[exactKey(m)]
}

// Add records ms as claimed; call it after Check.
func (c *PortClaims) Add(ms []PortMapping) {
	for _, m := range ms {
		c.add(m)
	}
}

func (c *PortClaims) add(m PortMapping) {
	if m.Routed {
		return
	}
	if m.Is6() && c.perPort6 == nil {
		c.perPort6, c.exact6 = new([2][1 << 16]portClaims), map[hostKey6]bool{}
	}
	pc := c.slot(m)
	switch {
	case m.AnyHostIP():
		if pc.any {
			return
		}
		pc.any = true
	case m.Is6():
		k := hostKeyOf6(m)
		if c.exact6[k] {
			return
		}
		c.exact6[k] = true
	default:
		k := exactKey(m)
		if c.exact[k] {
			return
		}
		c.exact[k] = true
	}
	pc.n++
}

// Remove forgets the claims of ms; unknown ones are ignored.
func (c *PortClaims) Remove(ms []PortMapping) {
	for _, m := range ms {
		if m.Routed || m.Proto != TCP && m.Proto != UDP {
			continue
		}
		pc := c.slot(m)
		switch {
		case pc == nil:
			continue
		case m.AnyHostIP():
			if !pc.any {
				continue
			}
			pc.any = false
		case m.Is6():
			k := hostKeyOf6(m)
			if !c.exact6[k] {
				continue
			}
			delete(c.exact6, k)
		default:
			k := exactKey(m)
			if !c.exact[k] {
				continue
			}
			delete(c.exact, k)
		}
		pc.n--
	}
}

// PortIndex holds mappings by their host side (family, protocol, port and
// address), so that a mapping published again, or withdrawn, is found in
// one lookup. The zero value is ready.
type PortIndex struct {
	v4     map[uint64]PortMapping
	v6     map[hostKey6]PortMapping  // made at the first IPv6 mapping
	routed map[routedKey]PortMapping // by container side; made at the first
}

// NewPortIndex returns an empty index with room for n IPv4 mappings.
func NewPortIndex(n int) PortIndex { return PortIndex{v4: make(map[uint64]PortMapping, n)} }

// Get returns the mapping held for m's host side.
func (x *PortIndex) Get(m PortMapping) (PortMapping, bool) {
	if m.Routed {
		old, ok := x.routed[routedKeyOf(m)]
		return old, ok
	}
	if m.Is6() {
		old, ok := x.v6[hostKeyOf6(m)]
		return old, ok
	}
	old, ok := x.v4[hostKey(m)]
	return old, ok
}

// Put holds m for its host side, replacing what was there.
func (x *PortIndex) Put(m PortMapping) {
	if m.Routed {
		if x.routed == nil {
			x.routed = map[routedKey]PortMapping{}
		}
		x.routed[routedKeyOf(m)] = m
		return
	}
	if m.Is6() {
		if x.v6 == nil {
			x.v6 = map[hostKey6]PortMapping{}
		}
		x.v6[hostKeyOf6(m)] = m
		return
	}
	if x.v4 == nil {
		x.v4 = map[uint64]PortMapping{}
	}
	x.v4[hostKey(m)] = m
}

// Delete forgets what is held for m's host side.
func (x *PortIndex) Delete(m PortMapping) {
	if m.Routed {
		delete(x.routed, routedKeyOf(m))
		return
	}
	if m.Is6() {
		delete(x.v6, hostKeyOf6(m))
		return
	}
	delete(x.v4, hostKey(m))
}

// Len is the number of mappings held.
func (x *PortIndex) Len() int { return len(x.v4) + len(x.v6) + len(x.routed) }

// List returns the mappings held, in no order.
func (x *PortIndex) List() []PortMapping {
	out := make([]PortMapping, 0, x.Len())
	for _, m := range x.v4 {
		out = append(out, m)
	}
	for _, m := range x.v6 {
		out = append(out, m)
	}
	for _, m := range x.routed {
		out = append(out, m)
	}
	return out
}
