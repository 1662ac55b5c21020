package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

// spaceModel is the obvious implementation Space is checked against: a set
// of held addresses and a linear search for the lowest free one. It keys
// on addresses, not offsets, so it shares none of Space's arithmetic.
type spaceModel struct {
	subnet   netip.Prefix
	rlo, rhi netip.Addr          // Allocate's bounds, inclusive
	never    map[netip.Addr]bool // network, broadcast, subnet-router anycast
	gateway  netip.Addr
	held     map[netip.Addr]bool
	nfree    int // free addresses in [rlo, rhi], kept up to date by hold/drop
}

func (m *spaceModel) inRange(a netip.Addr) bool {
	return a.Is4() == m.rlo.Is4() && m.rlo.Compare(a) <= 0 && a.Compare(m.rhi) <= 0
}

func (m *spaceModel) taken(a netip.Addr) bool {
	return m.never[a] || a == m.gateway || m.held[a]
}

func (m *spaceModel) hold(a netip.Addr) {
	if !m.taken(a) && m.inRange(a) {
		m.nfree--
	}
	m.held[a] = true
}

func (m *spaceModel) drop(a netip.Addr) {
	if m.held[a] && !m.never[a] && a != m.gateway && m.inRange(a) {
		m.nfree++
	}
	delete(m.held, a)
}

func (m *spaceModel) lowestFree() (netip.Addr, bool) {
	for a := m.rlo; ; a = a.Next() {
		if !m.taken(a) {
			return a, true
		}
		if a == m.rhi {
			return netip.Addr{}, false
		}
	}
}

// countFree counts from scratch; fuzzSetup uses it once, then hold and drop
// keep nfree.
func (m *spaceModel) countFree() int {
	n := 0
	for a := m.rlo; ; a = a.Next() {
		if !m.taken(a) {
			n++
		}
		if a == m.rhi {
			return n
		}
	}
}

// fuzzSubnetBits and fuzzSubnetBits6 are the subnet lengths FuzzSpace picks
// from: big ones (with a small ip-range, so the model's linear search stays
// cheap) and small ones that fill up quickly. The IPv6 /48 and /56 have more
// than 2^64 addresses, so Space tracks only a /64 window of them.
var (
	fuzzSubnetBits  = []int{8, 16, 20, 22, 24, 26, 28, 29, 30, 31, 32}
	fuzzSubnetBits6 = []int{48, 56, 64, 100, 116, 120, 124, 125, 126, 127, 128}
)

// plus returns a+n, and minus a-n, in a's family (wrapping as u128 does).
func plus(a netip.Addr, n uint64) netip.Addr { return u128Of(a).add(n).addr(a.Is4()) }
func minus(a netip.Addr, n uint64) netip.Addr {
	return u128Of(a).sub(u128{0, n}).addr(a.Is4())
}

// fuzzSubnet picks the subnet: IPv6 when the top bit of sel is set.
func fuzzSubnet(sel uint8) netip.Prefix {
	if sel&0x80 != 0 {
		bits := fuzzSubnetBits6[int(sel&0x7f)%len(fuzzSubnetBits6)]
		return netip.PrefixFrom(netip.MustParseAddr("fd12:3456:789a::"), bits).Masked()
	}
	bits := fuzzSubnetBits[int(sel)%len(fuzzSubnetBits)]
	return netip.PrefixFrom(netip.MustParseAddr("10.64.0.0"), bits).Masked()
}

// fuzzIPRange picks an ip-range of at most 2^12 addresses (always for big
// subnets, when bit 0 of sel says so for small ones), as few as 4 when bits
// 1-2 say so. Bits 3-4 of sel place
// it at the start, the end, the middle or a varying slot of the first 2^64
// addresses; in a subnet bigger than that, bits 5-6 move it to the last or
// the second /64, where the subnet's first address is outside Space's window.
func fuzzIPRange(subnet netip.Prefix, sel uint8) netip.Prefix {
	minBits := subnet.Addr().BitLen() - 12
	if subnet.Bits() >= minBits && sel&1 == 0 {
		return netip.Prefix{}
	}
	rbits := min(max(subnet.Bits(), minBits)+[]int{0, 2, 6, 10}[sel>>1&3], subnet.Addr().BitLen())
	rsize := hostMask(subnet.Addr().BitLen()-rbits).lo + 1
	hb := hostBits(subnet)
	slots := hostMask(min(hb, 64)).lo/rsize + 1
	var slot uint64
	switch sel >> 3 & 3 {
	case 1:
		slot = slots - 1
	case 2:
		slot = slots / 2
	case 3:
		slot = uint64(sel>>5) % slots
	}
	n := u128Of(subnet.Addr()).add(slot * rsize)
	if hb > 64 {
		switch sel >> 5 & 3 {
		case 1:
			n.hi |= hostMask(hb).hi
		case 2:
			n.hi++
		}
	}
	return netip.PrefixFrom(n.addr(subnet.Addr().Is4()), rbits)
}

// fuzzSetup builds a Space and its model from the fuzzer's selector bytes.
func fuzzSetup(t *testing.T, subnetSel, rangeSel uint8, gwSel uint16) (*Space, *spaceModel) {
	subnet := fuzzSubnet(subnetSel)
	ipRange := fuzzIPRange(subnet, rangeSel)
	gateway := netip.Addr{}
	if gwSel != 0 {
		// In the range when the top bit says so, else near the subnet's start.
		from, mask := subnet.Addr(), hostMask(min(hostBits(subnet), 16)).lo
		if ipRange.IsValid() && gwSel&0x8000 != 0 {
			from, mask = ipRange.Addr(), hostMask(hostBits(ipRange)).lo
		}
		gateway = plus(from, uint64(gwSel)&mask)
		if specialAddress(subnet, gateway) != "" {
			gateway = DefaultGateway(subnet)
		}
	}
	s, err := NewSpace(subnet, ipRange, gateway)
	if err != nil {
		t.Fatalf("NewSpace(%s, %s, %s): %v", subnet, ipRange, gateway, err)
	}
	r := s.IPRange()
	m := &spaceModel{
		subnet: subnet, rlo: r.Addr(), rhi: lastAddr(r), gateway: gateway,
		never: map[netip.Addr]bool{}, held: map[netip.Addr]bool{},
	}
	switch {
	case !subnet.Addr().Is4():
		m.never[subnet.Addr()] = true
	case subnet.Bits() <= 30:
		m.never[subnet.Addr()] = true
		m.never[lastAddr(subnet)] = true
	}
	m.nfree = m.countFree()
	return s, m
}

// fuzzTarget picks an address for a reserve or release: in the range, near
// the subnet's start, at its top end, or outside it.
func fuzzTarget(m *spaceModel, sel uint8, v uint16) netip.Addr {
	switch sel >> 6 {
	case 0:
		span := u128Of(m.rhi).sub(u128Of(m.rlo)).lo
		return plus(m.rlo, uint64(v)%(span+1))
	case 1:
		return plus(m.subnet.Addr(), uint64(v)&hostMask(min(hostBits(m.subnet), 16)).lo)
	case 2:
		return minus(lastAddr(m.subnet), uint64(v%4)&hostMask(hostBits(m.subnet)).lo)
	default:
		return minus(m.subnet.Addr(), 1+uint64(v))
	}
}

func FuzzSpace(f *testing.F) {
	f.Add(uint8(4), uint8(0), uint16(1), []byte{0, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0, 0})
	f.Add(uint8(7), uint8(1), uint16(3), []byte{0, 0, 0, 2, 0, 5, 1, 0, 0, 3, 64, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(0), uint8(6), uint16(0), []byte{2, 128, 1, 0, 0, 0, 3, 128, 1, 2, 192, 9})
	f.Add(uint8(9), uint8(0), uint16(1), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(10), uint8(0), uint16(0), []byte{0, 0, 0, 3, 0, 0, 0, 0, 0})
	// IPv6: a /64 whose range is its last addresses (offset 2^64-1), a /48
	// with the range in its last /64, a /126, a /127 and a /128.
	f.Add(uint8(0x82), uint8(0x0f), uint16(1), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(0x80), uint8(0x28), uint16(0x8001), []byte{0, 0, 0, 2, 64, 7, 2, 128, 1, 3, 64, 7, 2, 64, 7, 0, 0, 0})
	f.Add(uint8(0x88), uint8(0), uint16(2), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0, 0, 0})
	f.Add(uint8(0x89), uint8(0), uint16(1), []byte{0, 0, 0, 0, 0, 0, 2, 128, 0})
	f.Add(uint8(0x8a), uint8(0), uint16(0), []byte{0, 0, 0, 2, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, subnetSel, rangeSel uint8, gwSel uint16, ops []byte) {
		s, m := fuzzSetup(t, subnetSel, rangeSel, gwSel)
		for i := 0; i+2 < len(ops) && i < 3*400; i += 3 {
			target := fuzzTarget(m, ops[i+1], uint16(ops[i+1]&0x3f)<<8|uint16(ops[i+2]))
			switch ops[i] % 4 {
			case 0, 1:
				checkAllocate(t, s, m)
			case 2:
				checkReserve(t, s, m, target)
			case 3:
				s.Release(target)
				if m.subnet.Contains(target) {
					m.drop(target)
				}
			}
			if s.InUse(target) != (m.subnet.Contains(target) && m.taken(target)) {
				t.Fatalf("InUse(%s) = %v, model disagrees", target, s.InUse(target))
			}
			if got, want := s.Free(), m.nfree; got != want {
				t.Fatalf("Free = %d, model says %d", got, want)
			}
		}
		if m.nfree != m.countFree() {
			t.Fatalf("model bookkeeping: nfree %d, counted %d", m.nfree, m.countFree())
		}
	})
}

func checkAllocate(t *testing.T, s *Space, m *spaceModel) {
	t.Helper()
	a, err := s.Allocate()
	want, ok := m.lowestFree()
	if !ok {
		if !errors.Is(err, ErrNoAddress) || !errdefs.Is(err, errdefs.KindUnavailable) {
			t.Fatalf("Allocate on a full range = %v, %v; want Unavailable ErrNoAddress", a, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Allocate: %v, but %s is free", err, want)
	}
	switch {
	case !m.inRange(a):
		t.Fatalf("Allocate = %s, outside the range %s-%s", a, m.rlo, m.rhi)
	case m.held[a]:
		t.Fatalf("Allocate = %s, which is already held", a)
	case a == m.gateway || m.never[a]:
		t.Fatalf("Allocate = %s, the gateway or an address never handed out", a)
	case a != want:
		t.Fatalf("Allocate = %s, want the lowest free %s", a, want)
	}
	m.hold(want)
}

func checkReserve(t *testing.T, s *Space, m *spaceModel, a netip.Addr) {
	t.Helper()
	err := s.Reserve(a)
	var want errdefs.Kind
	switch {
	case !m.subnet.Contains(a):
		want = errdefs.KindInvalid
	case a == m.gateway, m.held[a]:
		want = errdefs.KindForbidden
	case m.never[a]:
		want = errdefs.KindForbidden // held from the start, as moby's newPoolData
	}
	if err == nil && want != errdefs.KindUnknown || err != nil && errdefs.KindOf(err) != want {
		t.Fatalf("Reserve(%s) = %v (kind %v), want kind %v (held %v)", a, err, errdefs.KindOf(err), want, m.held[a])
	}
	if err == nil {
		m.hold(a)
	}
}

// FuzzValidateRequest checks that ValidateRequest never panics, only ever
// answers Invalid, and that whatever it accepts builds a working Space with
// the default gateway or the given one.
func FuzzValidateRequest(f *testing.F) {
	f.Add(uint32(0x0a010000), uint8(16), uint32(0x0a010500), uint8(24), uint32(0x0a010001), uint8(7))
	f.Add(uint32(0x0a010005), uint8(16), uint32(0), uint8(0), uint32(0), uint8(1))
	f.Add(uint32(0x0a010000), uint8(31), uint32(0), uint8(0), uint32(0x0a010001), uint8(5))
	f.Add(uint32(0), uint8(0), uint32(0), uint8(0), uint32(0x0a010001), uint8(4))
	f.Add(uint32(0x0a010000), uint8(16), uint32(0), uint8(0), uint32(0x0a01ffff), uint8(13))
	f.Add(uint32(0x00010000), uint8(48), uint32(0x00010005), uint8(64), uint32(0x00010000), uint8(64|128|7))
	f.Add(uint32(0x0a010000), uint8(112), uint32(0x0a010500), uint8(120), uint32(0x0a010001), uint8(64|7))
	f.Add(uint32(0x0a010000), uint8(112), uint32(0x0a010500), uint8(24), uint32(0x0a010001), uint8(64|32|7))
	f.Add(uint32(0x0a010000), uint8(127), uint32(0), uint8(0), uint32(0), uint8(64|1))
	f.Fuzz(func(t *testing.T, sub uint32, subBits uint8, rng uint32, rngBits uint8, gw uint32, flags uint8) {
		subnet, ipRange, gateway := fuzzRequest(sub, subBits, rng, rngBits, gw, flags)
		err := ValidateRequest(subnet, ipRange, gateway)
		if err != nil {
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Fatalf("ValidateRequest(%s, %s, %s) = %v, kind %v; want Invalid", subnet, ipRange, gateway, err, errdefs.KindOf(err))
			}
			return
		}
		if !subnet.IsValid() {
			return
		}
		a := subnet.Addr()
		if subnet != subnet.Masked() || a.Is4In6() || a.Is4() && subnet.Bits() == 32 || a.Is6() && (subnet.Bits() >= 127 || a.IsMulticast()) {
			t.Fatalf("ValidateRequest accepted subnet %s", subnet)
		}
		if !gateway.IsValid() {
			gateway = DefaultGateway(subnet)
		}
		s, err := NewSpace(subnet, ipRange, gateway)
		if err != nil {
			t.Fatalf("NewSpace(%s, %s, %s) after a valid request: %v", subnet, ipRange, gateway, err)
		}
		if specialAddress(subnet, gateway) != "" || !s.InUse(gateway) {
			t.Fatalf("gateway %s of %s is unusable or not taken", gateway, subnet)
		}
		free := s.Free()
		if hb := hostBits(s.IPRange()); free < 0 || hb < 63 && uint64(free) > uint64(1)<<hb {
			t.Fatalf("Free = %d for ip-range %s", free, s.IPRange())
		}
	})
}

// fuzzRequest turns numbers into a request. flags: bit 0 subnet given,
// bit 1 ip-range given, bit 2 gateway given, bit 3 gateway IPv4-mapped,
// bit 4 subnet IPv4-mapped, bit 5 ip-range IPv4-mapped. Bit 6 makes each
// of the three whose mapped bit is clear an IPv6 fd00::/8 address instead
// (and each whose bit is set plain IPv4, to mix families), with the number
// in its last 32 bits, or in bits 32-63 when bit 7 is set.
func fuzzRequest(sub uint32, subBits uint8, rng uint32, rngBits uint8, gw uint32, flags uint8) (netip.Prefix, netip.Prefix, netip.Addr) {
	v6 := flags&64 != 0
	addr := func(n uint32, mapped bool) netip.Addr {
		a := fromUint32(n)
		switch {
		case v6 && !mapped:
			return fd(n, flags&128 != 0)
		case v6:
			return a
		case mapped:
			return netip.AddrFrom16(a.As16())
		}
		return a
	}
	var subnet, ipRange netip.Prefix
	var gateway netip.Addr
	if flags&1 != 0 {
		a := addr(sub, flags&16 != 0)
		subnet = netip.PrefixFrom(a, int(subBits)%(a.BitLen()+1))
	}
	if flags&2 != 0 {
		a := addr(rng, flags&32 != 0)
		ipRange = netip.PrefixFrom(a, int(rngBits)%(a.BitLen()+1))
	}
	if flags&4 != 0 {
		gateway = addr(gw, flags&8 != 0)
	}
	return subnet, ipRange, gateway
}

func fromUint32(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// fd returns fd00:: with n in its last 32 bits, or in bits 32-63 if high.
func fd(n uint32, high bool) netip.Addr {
	u := u128{hi: 0xfd00 << 48, lo: uint64(n)}
	if high {
		u = u128{hi: 0xfd00<<48 | uint64(n), lo: 0}
	}
	return u.addr(false)
}
