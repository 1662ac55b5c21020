// Package ipam is berth's address management: the default address pools and
// the choice of a free subnet for a new network, the validation of a user's
// --subnet/--ip-range/--gateway, and the Space that hands out the addresses
// of one subnet (lowest free first, as Docker's default IPAM does).
//
// It is pure: no syscalls, no store, no knowledge of networks or containers.
// The network controller feeds it what it needs (subnets of other networks,
// host routes and nameservers) and persists what it hands out. IPv4 and
// IPv6 alike: a dual-stack network has one Space per family.
package ipam

import (
	"crypto/sha256"
	"encoding/binary"
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
// They are IPv4 only: Docker adds ULAPool(engine ID) when no IPv6 pool is
// configured, which is the caller's to do, as it knows the ID.
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

// ULAPool returns the IPv6 pool Docker derives for a host that has no IPv6
// default address pool configured (moby daemon.deriveULABaseNetwork): a
// unique local /48 under fd00::/8 whose 40-bit Global ID is the low 40 bits
// of the first 8 bytes, big-endian, of the SHA-256 of hostID (the engine
// ID), split into /64s. Stable for as long as hostID is; loosely RFC 4193
// 3.2.2.
func ULAPool(hostID string) Pool {
	sum := sha256.Sum256([]byte(hostID))
	gid := binary.BigEndian.Uint64(sum[:8]) & (1<<40 - 1)
	// fd00:: + gid<<80: the Global ID fills bytes 1 to 5.
	var a [16]byte
	a[0] = 0xfd
	for i := range 5 {
		a[5-i] = byte(gid >> (8 * i))
	}
	return Pool{Base: netip.PrefixFrom(netip.AddrFrom16(a), 48), Size: 64}
}

// Ordered is pools as moby's address space keeps the configured ones
// (newAddrSpace): sorted by base address, the shorter base first, and
// without a pool that overlaps one before it, which a network could
// otherwise be given a subnet of while the other's covering subnet was
// taken. pools is left as it was.
func Ordered(pools []Pool) []Pool {
	sorted := slices.Clone(pools)
	slices.SortStableFunc(sorted, func(a, b Pool) int {
		if c := a.Base.Addr().Compare(b.Base.Addr()); c != 0 {
			return c
		}
		return a.Base.Bits() - b.Base.Bits()
	})
	var out []Pool
	for _, p := range sorted {
		if len(out) == 0 || !Overlaps(out[len(out)-1].Base, p.Base) {
			out = append(out, p)
		}
	}
	return out
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
// and none of reserved (host routes, nameservers as /32 or /128). Pools may
// be IPv4 or IPv6, mixed in one list; a used or reserved prefix only ever
// blocks pools of its own family. When every subnet is taken it returns an
// errdefs.Invalid error naming the pools and the reserved prefixes that were
// in the way (Docker answers 400 here too: "all predefined address pools
// have been fully subnetted").
func SelectSubnet(pools []Pool, used, reserved []netip.Prefix) (netip.Prefix, error) {
	blockers := make([]netip.Prefix, 0, len(used)+len(reserved))
	for _, p := range slices.Concat(used, reserved) {
		if p.IsValid() {
			blockers = append(blockers, p.Masked())
		}
	}
	for _, pool := range pools {
		if err := pool.Validate(); err != nil {
			return netip.Prefix{}, err
		}
		if subnet, ok := firstFree(pool, blockers); ok {
			return subnet, nil
		}
	}
	return netip.Prefix{}, exhaustedError(pools, reserved)
}

// Resized are pools split into subnets of size bits instead of their own,
// for a request of family's (an address of that family) that names only a
// size: 0.0.0.0/26 or ::/120 (Docker 29's `--subnet 0.0.0.0/26`, moby
// ea0d934ff2). As moby's allocatePredefinedPool, the pools that cannot
// hold a subnet of that size (a base smaller than it) are left out, and so
// are those of the other family; size 0 keeps the pools as they are. With
// no pool left it is an errdefs.Invalid error in moby's words first
// (ipamapi.ErrInvalidPool).
func Resized(pools []Pool, family netip.Addr, size int) ([]Pool, error) {
	if size == 0 {
		return pools, nil
	}
	var out []Pool
	for _, p := range pools {
		if p.Base.Addr().Is4() != family.Is4() || p.Base.Bits() > size || size > p.Base.Addr().BitLen() {
			continue
		}
		out = append(out, Pool{Base: p.Base, Size: size})
	}
	if len(out) == 0 {
		var names []string
		for _, p := range pools {
			if p.Base.Addr().Is4() == family.Is4() {
				names = append(names, p.String())
			}
		}
		if len(names) == 0 {
			return nil, errdefs.Invalid("invalid address pool: there is no default address pool of that family to take a /%d subnet from", size)
		}
		return nil, errdefs.Invalid("invalid address pool: no default address pool can hold a /%d subnet (the pools: %s)", size, abridge(names, 3))
	}
	return out, nil
}

// Validate checks that p can be split: a masked base, a size within its family.
func (p Pool) Validate() error {
	switch {
	case !p.Base.IsValid():
		return errdefs.Invalid("address pool %q: base must be an IPv4 or IPv6 prefix", p.Base)
	case p.Base.Addr().Is4In6():
		return errdefs.Invalid("address pool %s: base is IPv4-mapped; give it as an IPv4 prefix", p.Base)
	case p.Base != p.Base.Masked():
		return errdefs.Invalid("address pool %s: base should be %s", p.Base, p.Base.Masked())
	case p.Size < p.Base.Bits() || p.Size > p.Base.Addr().BitLen():
		return errdefs.Invalid("address pool %s: size /%d must be between /%d and /%d", p.Base, p.Size, p.Base.Bits(), p.Base.Addr().BitLen())
	}
	return nil
}

// firstFree walks the pool's subnets in address order. When a candidate is
// blocked it jumps past the blocker, so a big blocker (a /8 route over a pool
// of /24s) costs one step, not one per subnet: the walk takes at most one
// step per blocker, however many subnets the pool has (2^16 /64s in an IPv6
// /48). netip.Prefix.Overlaps is false across families, so blockers of the
// other family never block.
func firstFree(pool Pool, blockers []netip.Prefix) (netip.Prefix, bool) {
	next := pool.Base.Addr()
	end := lastAddr(pool.Base)
	for next.IsValid() && next.Compare(end) <= 0 {
		candidate := netip.PrefixFrom(next, pool.Size)
		blocker, blocked := firstOverlap(candidate, blockers)
		if !blocked {
			return candidate, true
		}
		// A blocker that overlaps the candidate either lies inside it or
		// covers it, so the address after the later end is subnet-aligned.
		// After the very last address Next gives the zero Addr, which ends
		// the walk.
		last := lastAddr(candidate)
		if bl := lastAddr(blocker); last.Less(bl) {
			last = bl
		}
		next = last.Next()
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
	if len(pools) == 0 {
		// The daemon's pools are of the other family alone.
		return errdefs.Invalid("all predefined address pools have been fully subnetted: the daemon's default-address-pools have none of this address family; pass --subnet")
	}
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
	// moby's words first (ipamapi.ErrNoMoreSubnets), then which pools and
	// what was in the way, a few of each: Docker's 31 default pools and a
	// host's routes made one line of 3 KB (QA round 24).
	msg := fmt.Sprintf("all predefined address pools have been fully subnetted: no free subnet left in the address pools %s: every subnet is used by another network", abridge(names, 3))
	if len(inTheWay) > 0 {
		msg += fmt.Sprintf(" or overlaps a host route or nameserver (%s)", abridge(inTheWay, 5))
	}
	return errdefs.Invalid("%s; remove unused networks or pass --subnet", msg)
}

// abridge joins up to most of items and says how many more there are.
func abridge(items []string, most int) string {
	if len(items) <= most {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:most], ", "), len(items)-most)
}
