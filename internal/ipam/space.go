package ipam

import (
	"errors"
	"math"
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
	// (503), as Docker's ipamapi.ErrNoAvailableIPs. An exhausted IPv6 space
	// says "no available IPv6 addresses" (the words of moby's
	// Endpoint.assignAddress for either family) and still matches
	// ErrNoAddress under errors.Is.
	ErrNoAddress = errors.New("no available IPv4 addresses")

	errNoAddress6 error = &familyError{msg: "no available IPv6 addresses", is: ErrNoAddress}
)

// familyError is a sentinel with its own words that errors.Is also matches
// against a family-neutral sentinel.
type familyError struct {
	msg string
	is  error
}

func (e *familyError) Error() string        { return e.msg }
func (e *familyError) Is(target error) bool { return target == e.is }

// Space hands out the addresses of one subnet: the lowest free address of
// the ip-range first (Docker's bitmap, non-serial mode), never the gateway,
// nor the addresses Docker's default IPAM never hands out (moby
// defaultipam.newPoolData): an IPv4 subnet's network and broadcast addresses
// (except in a /31 or /32, RFC 3021) and an IPv6 subnet's first address, the
// subnet-router anycast address (RFC 4291 2.6.1). IPv6 has no broadcast
// address, so its last address is handed out like any other. It is safe for
// concurrent use. It keeps no history: after a restart, rebuild it with
// Reserve for every recorded address.
//
// Addresses are tracked as 64-bit offsets into a window of the subnet: the
// whole subnet when it has at most 2^64 addresses (every IPv4 subnet, IPv6
// /64 and longer), otherwise the /64 that holds the start of the ip-range.
// Allocate draws only from that window, as moby's addrset (AddAny,
// AddAnyInRange) draws only from the 2^63-address block that holds the
// start of the range; nobody fills 2^63 addresses.
// Reserve, Release and InUse work for every address of the subnet: those
// outside the window are kept in a map.
type Space struct {
	subnet  netip.Prefix
	ipRange netip.Prefix
	gateway netip.Addr
	is4     bool
	never   [2]netip.Addr // addresses never handed out (zero Addrs if fewer)
	base    u128          // the window's first address
	base4   uint32        // the same for IPv4, where it is the subnet's
	span    uint64        // the window's last offset
	rlo     uint64        // Allocate's bounds, as offsets from base, inclusive
	rhi     uint64

	mu   sync.Mutex
	used bitmap // offsets taken, including the addresses never handed out
	// far holds the taken addresses outside the window (nil if the window
	// is the whole subnet).
	far       map[netip.Addr]struct{}
	rangeUsed uint64 // bits set within [rlo, rhi]
	// hint is in [rlo, rhi] and every offset in [rlo, hint) is taken. It
	// makes Allocate on a filling subnet O(1) amortised.
	hint uint64
}

// NewSpace returns the address space of subnet, IPv4 or IPv6. ipRange (the
// zero value means the whole subnet) limits what Allocate hands out; Reserve
// accepts any address of the subnet, as Docker does for --ip. gateway may be
// the zero Addr for a network without one. Bad input gives errdefs.Invalid
// errors. It checks less than ValidateRequest: the subnet's size and kind
// (a /32, a multicast IPv6 subnet) are the request's business.
func NewSpace(subnet, ipRange netip.Prefix, gateway netip.Addr) (*Space, error) {
	if !subnet.IsValid() || subnet.Addr().Is4In6() {
		return nil, errdefs.Invalid("invalid subnet %q: not an IPv4 or IPv6 subnet", subnet)
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
		is4:     subnet.Addr().Is4(),
		used:    newBitmap(),
	}
	s.setWindow()
	for i, a := range neverHandedOut(subnet) {
		s.never[i] = a
		s.takeAddr(a)
	}
	if gateway.IsValid() {
		s.takeAddr(gateway)
	}
	return s, nil
}

// setWindow picks the 2^64 addresses at most that offsets count from, and
// Allocate's bounds within them.
func (s *Space) setWindow() {
	window := s.subnet
	if hostBits(s.subnet) > 64 {
		window = netip.PrefixFrom(s.ipRange.Addr(), s.ipRange.Addr().BitLen()-64).Masked()
		s.far = map[netip.Addr]struct{}{}
	}
	s.base = u128Of(window.Addr())
	if s.is4 {
		s.base4 = v4num(window.Addr())
	}
	s.span = hostMask(hostBits(window)).lo
	s.rlo, _ = s.offset(s.ipRange.Addr())
	s.rhi = s.span
	if hi, ok := s.offset(lastAddr(s.ipRange)); ok {
		s.rhi = hi
	}
	s.hint = s.rlo
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
	off, ok := s.used.firstClear(s.hint, s.rhi)
	if !ok {
		return netip.Addr{}, s.exhausted()
	}
	s.take(off)
	// Everything from rlo up to off is taken now. At rhi the hint stays put
	// rather than step past the last offset, which may be 2^64-1.
	if off < s.rhi {
		s.hint = off + 1
	} else {
		s.hint = s.rhi
	}
	return s.addrAt(off), nil
}

func (s *Space) exhausted() error {
	sentinel := ErrNoAddress
	if !s.is4 {
		sentinel = errNoAddress6
	}
	if s.ipRange != s.subnet {
		return errdefs.Unavailable("%w left in ip-range %s of subnet %s", sentinel, s.ipRange, s.subnet)
	}
	return errdefs.Unavailable("%w left in subnet %s", sentinel, s.subnet)
}

// Reserve takes a given address: a static --ip, or one recorded before a
// restart. It may lie outside the ip-range but not outside the subnet.
// Errors: outside the subnet → errdefs.Invalid (it can never be valid);
// already held, the gateway, or an address never handed out (network,
// broadcast, subnet-router anycast, which moby's IPAM holds from the
// start) → errdefs.Forbidden wrapping ErrAddressInUse (Docker answers 403
// "Address already in use").
func (s *Space) Reserve(a netip.Addr) error {
	if !s.contains(a) {
		return errdefs.Invalid("address %s is not in subnet %s", a, s.subnet)
	}
	if s.isNever(a) {
		// moby's IPAM holds these from the start (newPoolData): asking
		// for one is "Address already in use" (403) there too.
		return errdefs.Forbidden("%w: %s is the %s of subnet %s", ErrAddressInUse, a, specialAddress(s.subnet, a), s.subnet)
	}
	if a == s.gateway {
		return errdefs.Forbidden("%w: %s is the gateway of subnet %s", ErrAddressInUse, a, s.subnet)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.takeAddr(a) {
		return errdefs.Forbidden("%w: %s in subnet %s is already taken", ErrAddressInUse, a, s.subnet)
	}
	return nil
}

// Release gives an address back. Releasing a free address, one outside the
// subnet, the gateway or an address never handed out does nothing, so
// teardown can call it twice.
func (s *Space) Release(a netip.Addr) {
	if !s.contains(a) || a == s.gateway || s.isNever(a) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.offset(a)
	if !ok {
		delete(s.far, a)
		return
	}
	if !s.used.clear(off) {
		return
	}
	if s.inRange(off) {
		s.rangeUsed--
		s.hint = min(s.hint, off)
	}
}

// InUse reports whether a is taken: handed out, reserved, the gateway, or
// an address of the subnet that is never handed out.
func (s *Space) InUse(a netip.Addr) bool {
	if !s.contains(a) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if off, ok := s.offset(a); ok {
		return s.used.isSet(off)
	}
	_, held := s.far[a]
	return held
}

// Free returns how many addresses of the ip-range Allocate can still hand
// out, at most math.MaxInt (an IPv6 /64 has 2^64).
func (s *Space) Free() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The range holds rhi-rlo+1 addresses, which is 2^64 for a whole /64:
	// subtract before adding one so that nothing wraps.
	if s.rangeUsed == 0 {
		return saturate(s.rhi-s.rlo, 1)
	}
	return saturate(s.rhi-s.rlo-(s.rangeUsed-1), 0)
}

// saturate returns n+plus as an int, or math.MaxInt if it does not fit.
func saturate(n, plus uint64) int {
	if n >= math.MaxInt-plus {
		return math.MaxInt
	}
	return int(n + plus)
}

// contains reports whether a is an address of the subnet, in its family
// (an IPv4-mapped address is not in an IPv4 subnet).
func (s *Space) contains(a netip.Addr) bool {
	return a.Is4() == s.is4 && s.subnet.Contains(a)
}

func (s *Space) isNever(a netip.Addr) bool { return a == s.never[0] || a == s.never[1] }

// offset returns a's offset from the window's first address, and whether a
// lies in the window. a must be an address of the subnet. IPv4 takes a
// short cut: its window is the whole subnet, and the uint32 arithmetic keeps
// Allocate and Release as cheap as they were before IPv6.
func (s *Space) offset(a netip.Addr) (uint64, bool) {
	if s.is4 {
		return uint64(v4num(a) - s.base4), true
	}
	n := u128Of(a)
	if n.less(s.base) {
		return 0, false
	}
	d := n.sub(s.base)
	return d.lo, d.hi == 0 && d.lo <= s.span
}

// addrAt returns the address at offset off of the window.
func (s *Space) addrAt(off uint64) netip.Addr {
	if s.is4 {
		return v4addr(s.base4 + uint32(off))
	}
	return s.base.add(off).addr(false)
}

// takeAddr marks a, an address of the subnet, as used and reports whether
// it was free. Callers hold mu (or own s exclusively, as NewSpace does).
func (s *Space) takeAddr(a netip.Addr) bool {
	if off, ok := s.offset(a); ok {
		return s.take(off)
	}
	if _, held := s.far[a]; held {
		return false
	}
	s.far[a] = struct{}{}
	return true
}

// take marks off as used and reports whether it was free. Callers hold mu.
func (s *Space) take(off uint64) bool {
	if !s.used.set(off) {
		return false
	}
	if s.inRange(off) {
		s.rangeUsed++
	}
	return true
}

func (s *Space) inRange(off uint64) bool { return off >= s.rlo && off <= s.rhi }
