package ipam

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/berth-net/berth/internal/errdefs"
)

// Sentinels under the errdefs kinds, for callers that must tell the cases
// apart (a restart re-reserving recorded addresses, say).
var (
	// ErrAddressInUse: the address is held by someone else or is the gateway.
	// Kind Forbidden (403), as Docker's ipamapi.ErrIPAlreadyAllocated.
	ErrAddressInUse = errors.New("Address already in use") // moby's ipamapi.ErrIPAlreadyAllocated
	// ErrNoAddress: every address of the range is taken. Kind Unavailable
	// (503), as Docker's ipamapi.ErrNoAvailableIPs.
	ErrNoAddress = errors.New("no available IPv4 addresses")
)

// Space hands out the addresses of one subnet: the lowest free address of
// the ip-range first (Docker's bitmap, non-serial mode), never the network
// address, the broadcast address or the gateway. It is safe for concurrent
// use. It keeps no history: after a restart, rebuild it with Reserve for
// every recorded address.
type Space struct {
	subnet  netip.Prefix
	ipRange netip.Prefix
	gateway netip.Addr
	base    uint32 // the subnet's first address as a number
	rlo     uint32 // ip-range bounds, as offsets from base, inclusive
	rhi     uint32

	mu        sync.Mutex
	used      bitmap // offsets taken, including network, broadcast and gateway
	rangeUsed uint64 // bits set within [rlo, rhi]
	// hint is a lower bound for the lowest free offset: every offset below
	// it is taken. It makes Allocate on a filling subnet O(1) amortised.
	hint uint64
}

// NewSpace returns the address space of subnet. ipRange (the zero value
// means the whole subnet) limits what Allocate hands out; Reserve accepts any
// address of the subnet, as Docker does for --ip. gateway may be the zero
// Addr for a network without one. Bad input gives errdefs.Invalid errors.
func NewSpace(subnet, ipRange netip.Prefix, gateway netip.Addr) (*Space, error) {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return nil, errdefs.Invalid("invalid subnet %q: only IPv4 subnets are supported", subnet)
	}
	if subnet != subnet.Masked() {
		return nil, errdefs.Invalid("invalid subnet %s: it should be %s", subnet, subnet.Masked())
	}
	if !ipRange.IsValid() {
		ipRange = subnet
	} else if err := validateIPRange(subnet, ipRange); err != nil {
		return nil, err
	}
	if gateway.IsValid() {
		if err := validateGateway(subnet, gateway); err != nil {
			return nil, err
		}
	}
	s := &Space{
		subnet:  subnet,
		ipRange: ipRange,
		gateway: gateway,
		base:    toU32(subnet.Addr()),
		used:    newBitmap(),
	}
	s.rlo = toU32(ipRange.Addr()) - s.base
	s.rhi = lastU32(ipRange) - s.base
	if subnet.Bits() <= 30 {
		s.take(0)
		s.take(lastU32(subnet) - s.base)
	}
	if gateway.IsValid() {
		s.take(toU32(gateway) - s.base)
	}
	return s, nil
}

// Subnet returns the subnet the space was made for.
func (s *Space) Subnet() netip.Prefix { return s.subnet }

// IPRange returns the range Allocate draws from (the subnet if none was given).
func (s *Space) IPRange() netip.Prefix { return s.ipRange }

// Gateway returns the gateway, or the zero Addr.
func (s *Space) Gateway() netip.Addr { return s.gateway }

// Allocate takes and returns the lowest free address of the ip-range. When
// none is left it returns an errdefs.Unavailable error wrapping ErrNoAddress:
// Docker's IPAM gives its "no available addresses" error that kind (503),
// which is also the truth — the request is fine, the network is full.
func (s *Space) Allocate() (netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := uint64(s.rlo)
	fromHint := s.hint >= start
	if fromHint {
		start = s.hint
	}
	if start > uint64(s.rhi) {
		return netip.Addr{}, s.exhausted()
	}
	off, ok := s.used.firstClear(uint32(start), s.rhi)
	if !ok {
		return netip.Addr{}, s.exhausted()
	}
	s.take(off)
	if fromHint {
		// Everything from the hint up to off was taken, and now off is.
		s.hint = uint64(off) + 1
	}
	return fromU32(s.base + off), nil
}

func (s *Space) exhausted() error {
	if s.ipRange != s.subnet {
		return errdefs.Unavailable("%w left in ip-range %s of subnet %s", ErrNoAddress, s.ipRange, s.subnet)
	}
	return errdefs.Unavailable("%w left in subnet %s", ErrNoAddress, s.subnet)
}

// Reserve takes a given address: a static --ip, or one recorded before a
// restart. It may lie outside the ip-range but not outside the subnet.
// Errors: outside the subnet, network or broadcast address → errdefs.Invalid
// (it can never be valid); already held or the gateway → errdefs.Forbidden
// wrapping ErrAddressInUse (Docker answers 403 "Address already in use").
func (s *Space) Reserve(a netip.Addr) error {
	if !a.Is4() || !s.subnet.Contains(a) {
		return errdefs.Invalid("address %s is not in subnet %s", a, s.subnet)
	}
	if what := specialAddress(s.subnet, a); what != "" {
		return errdefs.Invalid("address %s is the %s of subnet %s", a, what, s.subnet)
	}
	if a == s.gateway {
		return errdefs.Forbidden("%w: %s is the gateway of subnet %s", ErrAddressInUse, a, s.subnet)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.take(toU32(a) - s.base) {
		return errdefs.Forbidden("%w: %s in subnet %s is already taken", ErrAddressInUse, a, s.subnet)
	}
	return nil
}

// Release gives an address back. Releasing a free address, one outside the
// subnet, the gateway, the network or the broadcast address does nothing,
// so teardown can call it twice.
func (s *Space) Release(a netip.Addr) {
	if !a.Is4() || !s.subnet.Contains(a) || a == s.gateway || specialAddress(s.subnet, a) != "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	off := toU32(a) - s.base
	if !s.used.clear(off) {
		return
	}
	if s.inRange(off) {
		s.rangeUsed--
	}
	if uint64(off) < s.hint {
		s.hint = uint64(off)
	}
}

// InUse reports whether a is taken: handed out, reserved, or the gateway,
// network or broadcast address of the subnet.
func (s *Space) InUse(a netip.Addr) bool {
	if !a.Is4() || !s.subnet.Contains(a) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used.isSet(toU32(a) - s.base)
}

// Free returns how many addresses of the ip-range Allocate can still hand out.
func (s *Space) Free() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(uint64(s.rhi-s.rlo) + 1 - s.rangeUsed)
}

// take marks off as used and reports whether it was free. Callers hold mu
// (or own s exclusively, as NewSpace does).
func (s *Space) take(off uint32) bool {
	if !s.used.set(off) {
		return false
	}
	if s.inRange(off) {
		s.rangeUsed++
	}
	return true
}

func (s *Space) inRange(off uint32) bool { return off >= s.rlo && off <= s.rhi }
