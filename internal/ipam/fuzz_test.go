package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

// spaceModel is the obvious implementation Space is checked against: a map
// of held offsets and a linear search for the lowest free one.
type spaceModel struct {
	size     uint64
	rlo, rhi uint32
	special  map[uint32]bool // network, broadcast, gateway
	gateway  uint32
	hasGW    bool
	held     map[uint32]bool
	nfree    int // free offsets in [rlo, rhi], kept up to date by hold/drop
}

func (m *spaceModel) hold(off uint32) {
	if !m.taken(off) && off >= m.rlo && off <= m.rhi {
		m.nfree--
	}
	m.held[off] = true
}

func (m *spaceModel) drop(off uint32) {
	if m.held[off] && !m.special[off] && off >= m.rlo && off <= m.rhi {
		m.nfree++
	}
	delete(m.held, off)
}

func (m *spaceModel) taken(off uint32) bool { return m.special[off] || m.held[off] }

func (m *spaceModel) lowestFree() (uint32, bool) {
	for off := uint64(m.rlo); off <= uint64(m.rhi); off++ {
		if !m.taken(uint32(off)) {
			return uint32(off), true
		}
	}
	return 0, false
}

// countFree counts from scratch; fuzzSetup uses it once, then hold and drop
// keep nfree.
func (m *spaceModel) countFree() int {
	n := 0
	for off := uint64(m.rlo); off <= uint64(m.rhi); off++ {
		if !m.taken(uint32(off)) {
			n++
		}
	}
	return n
}

// fuzzSubnetBits are the subnet lengths FuzzSpace picks from: big ones (with
// a small ip-range, so the model's linear search stays cheap) and small ones
// that fill up quickly.
var fuzzSubnetBits = []int{8, 16, 20, 22, 24, 26, 28, 29, 30, 31, 32}

// fuzzSetup builds a Space and its model from the fuzzer's selector bytes.
func fuzzSetup(t *testing.T, subnetSel, rangeSel uint8, gwSel uint16) (*Space, *spaceModel, uint32) {
	bits := fuzzSubnetBits[int(subnetSel)%len(fuzzSubnetBits)]
	subnet := netip.PrefixFrom(netip.MustParseAddr("10.64.0.0"), bits).Masked()
	base := toU32(subnet.Addr())
	size := hostCount(bits)

	ipRange := netip.Prefix{}
	if bits < 20 || rangeSel&1 == 1 {
		rbits := max(bits, 20) + int(rangeSel>>1)%4
		rbits = min(rbits, 32)
		slots := hostCount(bits) / hostCount(rbits)
		slot := uint64(rangeSel>>3) % slots
		ipRange = netip.PrefixFrom(fromU32(base+uint32(slot*hostCount(rbits))), rbits)
	}
	gateway := netip.Addr{}
	if gwSel != 0 {
		off := uint32(uint64(gwSel) % size)
		if specialAddress(subnet, fromU32(base+off)) != "" {
			off = toU32(DefaultGateway(subnet)) - base
		}
		gateway = fromU32(base + off)
	}
	s, err := NewSpace(subnet, ipRange, gateway)
	if err != nil {
		t.Fatalf("NewSpace(%s, %s, %s): %v", subnet, ipRange, gateway, err)
	}
	r := s.IPRange()
	m := &spaceModel{
		size: size, special: map[uint32]bool{}, held: map[uint32]bool{},
		rlo: toU32(r.Addr()) - base, rhi: lastU32(r) - base,
	}
	if bits <= 30 {
		m.special[0] = true
		m.special[uint32(size-1)] = true
	}
	if gateway.IsValid() {
		m.gateway, m.hasGW = toU32(gateway)-base, true
		m.special[m.gateway] = true
	}
	m.nfree = m.countFree()
	return s, m, base
}

// fuzzTarget picks an address for a reserve or release: in the range, in
// the subnet, at its top end, or outside it.
func fuzzTarget(m *spaceModel, base uint32, sel uint8, v uint16) netip.Addr {
	switch sel >> 6 {
	case 0:
		return fromU32(base + m.rlo + uint32(uint64(v)%(uint64(m.rhi-m.rlo)+1)))
	case 1:
		return fromU32(base + uint32(uint64(v)%m.size))
	case 2:
		return fromU32(base + uint32(m.size-1) - uint32(v%4))
	default:
		return fromU32(base - 1 - uint32(v))
	}
}

func FuzzSpace(f *testing.F) {
	f.Add(uint8(4), uint8(0), uint16(1), []byte{0, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0, 0})
	f.Add(uint8(7), uint8(1), uint16(3), []byte{0, 0, 0, 2, 0, 5, 1, 0, 0, 3, 64, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(0), uint8(6), uint16(0), []byte{2, 128, 1, 0, 0, 0, 3, 128, 1, 2, 192, 9})
	f.Add(uint8(9), uint8(0), uint16(1), []byte{0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(10), uint8(0), uint16(0), []byte{0, 0, 0, 3, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, subnetSel, rangeSel uint8, gwSel uint16, ops []byte) {
		s, m, base := fuzzSetup(t, subnetSel, rangeSel, gwSel)
		for i := 0; i+2 < len(ops) && i < 3*400; i += 3 {
			target := fuzzTarget(m, base, ops[i+1], uint16(ops[i+1]&0x3f)<<8|uint16(ops[i+2]))
			switch ops[i] % 4 {
			case 0, 1:
				checkAllocate(t, s, m, base)
			case 2:
				checkReserve(t, s, m, base, target)
			case 3:
				s.Release(target)
				if s.Subnet().Contains(target) {
					m.drop(toU32(target) - base)
				}
			}
			if s.InUse(target) != (s.Subnet().Contains(target) && m.taken(toU32(target)-base)) {
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

func checkAllocate(t *testing.T, s *Space, m *spaceModel, base uint32) {
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
		t.Fatalf("Allocate: %v, but %s is free", err, fromU32(base+want))
	}
	if off := toU32(a) - base; off != want {
		t.Fatalf("Allocate = %s, want the lowest free %s", a, fromU32(base+want))
	}
	m.hold(want)
}

func checkReserve(t *testing.T, s *Space, m *spaceModel, base uint32, a netip.Addr) {
	t.Helper()
	err := s.Reserve(a)
	off := toU32(a) - base
	var want errdefs.Kind
	switch {
	case !s.Subnet().Contains(a):
		want = errdefs.KindInvalid
	case m.hasGW && off == m.gateway, m.held[off]:
		want = errdefs.KindForbidden
	case m.special[off]:
		want = errdefs.KindInvalid
	}
	if err == nil && want != errdefs.KindUnknown || err != nil && errdefs.KindOf(err) != want {
		t.Fatalf("Reserve(%s) = %v (kind %v), want kind %v (held %v)", a, err, errdefs.KindOf(err), want, m.held[off])
	}
	if err == nil {
		m.hold(off)
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
		if subnet != subnet.Masked() || !subnet.Addr().Is4() || subnet.Bits() == 32 {
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
		if free := s.Free(); free < 0 || uint64(free) > hostCount(s.IPRange().Bits()) {
			t.Fatalf("Free = %d for ip-range %s", free, s.IPRange())
		}
	})
}

// fuzzRequest turns numbers into a request. flags: bit 0 subnet given,
// bit 1 ip-range given, bit 2 gateway given, bit 3 gateway IPv6, bit 4
// subnet IPv6, bit 5 ip-range IPv6.
func fuzzRequest(sub uint32, subBits uint8, rng uint32, rngBits uint8, gw uint32, flags uint8) (netip.Prefix, netip.Prefix, netip.Addr) {
	var subnet, ipRange netip.Prefix
	var gateway netip.Addr
	if flags&1 != 0 {
		subnet = netip.PrefixFrom(fromU32(sub), int(subBits%33))
		if flags&16 != 0 {
			subnet = netip.PrefixFrom(netip.AddrFrom16(fromU32(sub).As16()), int(subBits%129))
		}
	}
	if flags&2 != 0 {
		ipRange = netip.PrefixFrom(fromU32(rng), int(rngBits%33))
		if flags&32 != 0 {
			ipRange = netip.PrefixFrom(netip.AddrFrom16(fromU32(rng).As16()), int(rngBits%129))
		}
	}
	if flags&4 != 0 {
		gateway = fromU32(gw)
		if flags&8 != 0 {
			gateway = netip.AddrFrom16(gateway.As16())
		}
	}
	return subnet, ipRange, gateway
}
