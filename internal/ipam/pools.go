// Package ipam is berth's address management: the default address pools and
// the choice of a free subnet for a new network, the validation of a user's
// --subnet/--ip-range/--gateway, and the Space that hands out the addresses
// of one subnet (lowest free first, as Docker's default IPAM does).
//
// It is pure: no syscalls, no store, no knowledge of networks or containers.
// The network controller feeds it what it needs (subnets of other networks,
// host routes and nameservers) and persists what it hands out. IPv4 only.
package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
)

// Pool is a block of address space that new networks draw their subnets
// from: Base split into subnets of length Size.
type Pool struct {
	Base netip.Prefix
	Size int
}

func (p Pool) String() string { return fmt.Sprintf("%s (split into /%d)", p.Base, p.Size) }

// DefaultPools returns Docker's local default address pools, in Docker's
// order (libnetwork ipamutils.localScopeDefaultNetworks): 15 /16 subnets in
// 172.17.0.0–172.31.255.255, then 16 /20 subnets of 192.168.0.0/16; 31 in all.
func DefaultPools() []Pool {
	return []Pool{
		{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("172.18.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("172.19.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("172.24.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("172.28.0.0/14"), Size: 16},
		{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
	}
}

// Overlaps reports whether a and b share at least one address. Invalid
// prefixes and prefixes of different families never overlap.
func Overlaps(a, b netip.Prefix) bool {
	if !a.IsValid() || !b.IsValid() {
		return false
	}
	return a.Masked().Overlaps(b.Masked())
}

// SelectSubnet returns the first subnet, in pool order and address order
// within a pool, that overlaps none of used (the subnets of other networks)
// and none of reserved (host routes, nameservers as /32). When every subnet
// is taken it returns an errdefs.Invalid error naming the pools and the
// reserved prefixes that were in the way (Docker answers 400 here too:
// "all predefined address pools have been fully subnetted").
func SelectSubnet(pools []Pool, used, reserved []netip.Prefix) (netip.Prefix, error) {
	blockers := make([]netip.Prefix, 0, len(used)+len(reserved))
	for _, p := range slices.Concat(used, reserved) {
		if p.IsValid() && p.Addr().Is4() {
			blockers = append(blockers, p.Masked())
		}
	}
	for _, pool := range pools {
		if err := pool.validate(); err != nil {
			return netip.Prefix{}, err
		}
		if subnet, ok := firstFree(pool, blockers); ok {
			return subnet, nil
		}
	}
	return netip.Prefix{}, exhaustedError(pools, reserved)
}

func (p Pool) validate() error {
	switch {
	case !p.Base.IsValid() || !p.Base.Addr().Is4():
		return errdefs.Invalid("address pool %q: base must be an IPv4 prefix", p.Base)
	case p.Base != p.Base.Masked():
		return errdefs.Invalid("address pool %s: base should be %s", p.Base, p.Base.Masked())
	case p.Size < p.Base.Bits() || p.Size > 32:
		return errdefs.Invalid("address pool %s: size /%d must be between /%d and /32", p.Base, p.Size, p.Base.Bits())
	}
	return nil
}

// firstFree walks the pool's subnets in address order. When a candidate is
// blocked it jumps past the blocker, so a big blocker (a /8 route over a pool
// of /24s) costs one step, not one per subnet.
func firstFree(pool Pool, blockers []netip.Prefix) (netip.Prefix, bool) {
	next := uint64(toU32(pool.Base.Addr()))
	end := uint64(lastU32(pool.Base))
	for next <= end {
		candidate := netip.PrefixFrom(fromU32(uint32(next)), pool.Size)
		blocker, blocked := firstOverlap(candidate, blockers)
		if !blocked {
			return candidate, true
		}
		// A blocker that overlaps the candidate either lies inside it or
		// covers it, so the address after the later end is subnet-aligned.
		next = max(uint64(lastU32(candidate)), uint64(lastU32(blocker))) + 1
	}
	return netip.Prefix{}, false
}

func firstOverlap(p netip.Prefix, blockers []netip.Prefix) (netip.Prefix, bool) {
	for _, b := range blockers {
		if b.Overlaps(p) {
			return b, true
		}
	}
	return netip.Prefix{}, false
}

func exhaustedError(pools []Pool, reserved []netip.Prefix) error {
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.String()
	}
	var inTheWay []string
	for _, r := range reserved {
		for _, p := range pools {
			if Overlaps(r, p.Base) {
				inTheWay = append(inTheWay, r.String())
				break
			}
		}
	}
	msg := fmt.Sprintf("no free subnet left in the address pools %s: every subnet is used by another network", strings.Join(names, ", "))
	if len(inTheWay) > 0 {
		msg += fmt.Sprintf(" or overlaps a host route or nameserver (%s)", strings.Join(inTheWay, ", "))
	}
	return errdefs.Invalid("%s; remove unused networks or pass --subnet", msg)
}

// toU32 returns an IPv4 address as a number.
func toU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromU32(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// lastU32 returns the last address of an IPv4 prefix as a number.
func lastU32(p netip.Prefix) uint32 {
	p = p.Masked()
	return toU32(p.Addr()) | uint32(hostCount(p.Bits())-1)
}

// hostCount is the number of addresses in an IPv4 prefix of length bits.
func hostCount(bits int) uint64 { return uint64(1) << (32 - bits) }
