package firewall

import (
	"encoding/binary"

	"github.com/berth-net/berth/internal/errdefs"
)

// PortClaims indexes the host side of published ports so that a batch of
// mappings is checked for conflicts in constant time per mapping, however
// many are published already: with 10,000 ports, re-validating everything
// on each container's AddPorts would cost more than the kernel batch.
// The zero value is not ready; use NewPortClaims.
type PortClaims struct {
	// perPort is indexed by protocol (tcp, udp) and port: an array, not a
	// map, because hashing 10,000 keys costs more than the kernel batch.
	perPort *[2][1 << 16]portClaims
	exact   map[uint64]bool // claims on one address: proto . port . address
}

type portClaims struct {
	any bool  // claimed on every address
	n   int32 // claims on this protocol and port, any address
}

// NewPortClaims returns an empty index.
func NewPortClaims() *PortClaims {
	return &PortClaims{perPort: new([2][1 << 16]portClaims), exact: map[uint64]bool{}}
}

// HostKey is the host side of a mapping (protocol, port, address; 0.0.0.0
// for every address) as one number, a cheap map key.
func HostKey(m PortMapping) uint64 {
	if m.AnyHostIP() {
		return uint64(m.Proto)<<48 | uint64(m.HostPort)<<32
	}
	return exactKey(m)
}

func exactKey(m PortMapping) uint64 {
	ip := binary.BigEndian.Uint32(m.HostIP.AsSlice())
	return uint64(m.Proto)<<48 | uint64(m.HostPort)<<32 | uint64(ip)
}

// slot is the mapping's entry in perPort; only TCP and UDP are valid.
func (c *PortClaims) slot(m PortMapping) *portClaims {
	i := 0
	if m.Proto == UDP {
		i = 1
	}
	return &c.perPort[i][m.HostPort]
}

// Check validates each mapping of ms and that none collides with a claim
// or with an earlier mapping of ms: the same address, port and protocol,
// or a port on every address beside the same port on one. It changes
// nothing.
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
		if c.collides(m) {
			// Docker's words for a port another container publishes.
			host := "0.0.0.0"
			if !m.AnyHostIP() {
				host = m.HostIP.String()
			}
			return errdefs.Conflict("Bind for %s:%d failed: port is already allocated", host, m.HostPort)
		}
		c.add(m)
		n++
	}
	return nil
}

func (c *PortClaims) collides(m PortMapping) bool {
	pc := c.slot(m)
	if pc.any || (m.AnyHostIP() && pc.n > 0) {
		return true
	}
	return !m.AnyHostIP() && pc.n > 0 && c.exact[exactKey(m)]
}

// Add records ms as claimed; call it after Check.
func (c *PortClaims) Add(ms []PortMapping) {
	for _, m := range ms {
		c.add(m)
	}
}

func (c *PortClaims) add(m PortMapping) {
	pc := c.slot(m)
	if m.AnyHostIP() {
		if pc.any {
			return
		}
		pc.any = true
	} else {
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
		if m.Proto != TCP && m.Proto != UDP {
			continue
		}
		pc := c.slot(m)
		if m.AnyHostIP() {
			if !pc.any {
				continue
			}
			pc.any = false
		} else {
			k := exactKey(m)
			if !c.exact[k] {
				continue
			}
			delete(c.exact, k)
		}
		pc.n--
	}
}
