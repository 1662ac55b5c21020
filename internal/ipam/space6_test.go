package ipam

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
)

func TestAllocateIPv6LowestFirst(t *testing.T) {
	s := mustSpace(t, "fd00:1::/64", "", "fd00:1::1")
	if got := allocateN(t, s, 3); !cmp.Equal(got, []string{"fd00:1::2", "fd00:1::3", "fd00:1::4"}) {
		t.Fatalf("first addresses = %v", got)
	}
	s.Release(addr("fd00:1::3"))
	s.Release(addr("fd00:1::3"))
	if got := allocateN(t, s, 2); !cmp.Equal(got, []string{"fd00:1::3", "fd00:1::5"}) {
		t.Fatalf("after release got %v, want the released address back first", got)
	}
}

// Moby reserves an IPv6 subnet's first address (the subnet-router anycast
// address) at every length and nothing else: there is no broadcast, so the
// last address is handed out.
func TestAllocateIPv6SmallSubnets(t *testing.T) {
	tests := []struct {
		subnet, gateway string
		want            []string
	}{
		{"fd00::/125", "fd00::1", []string{"fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6", "fd00::7"}},
		{"fd00::/125", "fd00::7", []string{"fd00::1", "fd00::2", "fd00::3", "fd00::4", "fd00::5", "fd00::6"}},
		{"fd00::/126", "fd00::1", []string{"fd00::2", "fd00::3"}},
		{"fd00::/127", "", []string{"fd00::1"}},
		{"fd00::/127", "fd00::1", nil},
		{"fd00::/128", "", nil},
	}
	for _, tt := range tests {
		s := mustSpace(t, tt.subnet, "", tt.gateway)
		if s.Free() != len(tt.want) {
			t.Errorf("%s gateway %q: Free = %d, want %d", tt.subnet, tt.gateway, s.Free(), len(tt.want))
		}
		got := allocateN(t, s, len(tt.want))
		if diff := cmp.Diff(tt.want, got); diff != "" && len(tt.want) > 0 {
			t.Errorf("%s gateway %q: addresses (-want +got):\n%s", tt.subnet, tt.gateway, diff)
		}
		_, err := s.Allocate()
		if !errors.Is(err, ErrNoAddress) || !errdefs.Is(err, errdefs.KindUnavailable) {
			t.Errorf("%s gateway %q: Allocate when full = %v, want Unavailable ErrNoAddress", tt.subnet, tt.gateway, err)
		}
		if !s.InUse(addr(tt.subnet[:strings.Index(tt.subnet, "/")])) {
			t.Errorf("%s: the subnet-router anycast address is not in use", tt.subnet)
		}
	}
}

func TestIPv6ExhaustedError(t *testing.T) {
	s := mustSpace(t, "fd00::/64", "fd00::10/126", "fd00::1")
	allocateN(t, s, 4)
	_, err := s.Allocate()
	if want := "no available IPv6 addresses left in ip-range fd00::10/126 of subnet fd00::/64"; err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
	if !errors.Is(err, ErrNoAddress) || !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Fatalf("error %v is not an Unavailable ErrNoAddress", err)
	}
	s = mustSpace(t, "fd00::/127", "", "fd00::1")
	if _, err := s.Allocate(); err == nil || err.Error() != "no available IPv6 addresses left in subnet fd00::/127" {
		t.Fatalf("error = %v", err)
	}
}

func TestReserveErrorsIPv6(t *testing.T) {
	tests := []struct {
		addr string
		kind errdefs.Kind // KindUnknown: no error
		want string
	}{
		{"fd00:2::5", errdefs.KindInvalid, "address fd00:2::5 is not in subnet fd00:1::/64"},
		{"10.1.0.5", errdefs.KindInvalid, "not in subnet"},
		{"::ffff:10.1.0.5", errdefs.KindInvalid, "not in subnet"},
		{"", errdefs.KindInvalid, "not in subnet"},
		{"fd00:1::", errdefs.KindForbidden, "Address already in use: fd00:1:: is the subnet-router anycast address of subnet fd00:1::/64"},
		{"fd00:1::1", errdefs.KindForbidden, "Address already in use: fd00:1::1 is the gateway of subnet fd00:1::/64"},
		{"fd00:1::2", errdefs.KindForbidden, "Address already in use: fd00:1::2 in subnet fd00:1::/64 is already taken"},
		{"fd00:1::ffff:ffff:ffff:ffff", errdefs.KindUnknown, ""},
		{"fd00:1::ffff:ffff:ffff:ffff", errdefs.KindForbidden, "is already taken"},
	}
	s := mustSpace(t, "fd00:1::/64", "", "fd00:1::1")
	if err := s.Reserve(addr("fd00:1::2")); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	for _, tt := range tests {
		err := s.Reserve(addr(tt.addr))
		if errdefs.KindOf(err) != tt.kind || (err == nil) != (tt.kind == errdefs.KindUnknown) {
			t.Errorf("Reserve(%q) = %v (kind %v), want kind %v", tt.addr, err, errdefs.KindOf(err), tt.kind)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Reserve(%q) = %q, want it to contain %q", tt.addr, err, tt.want)
		}
		if tt.kind == errdefs.KindForbidden && !errors.Is(err, ErrAddressInUse) {
			t.Errorf("Reserve(%q) = %v, want it to wrap ErrAddressInUse", tt.addr, err)
		}
	}
}

// An ip-range at the very end of a /64 puts offsets at 2^64-1: nothing may
// wrap when the range fills and frees.
func TestIPv6RangeAtTheTopOfTheWindow(t *testing.T) {
	s := mustSpace(t, "fd00::/64", "fd00::ffff:ffff:ffff:fffc/126", "fd00::1")
	want := []string{"fd00::ffff:ffff:ffff:fffc", "fd00::ffff:ffff:ffff:fffd", "fd00::ffff:ffff:ffff:fffe", "fd00::ffff:ffff:ffff:ffff"}
	if got := allocateN(t, s, 4); !cmp.Equal(got, want) {
		t.Fatalf("addresses = %v, want %v", got, want)
	}
	if _, err := s.Allocate(); !errors.Is(err, ErrNoAddress) || s.Free() != 0 {
		t.Fatalf("Allocate on a full range = %v, Free = %d", err, s.Free())
	}
	s.Release(addr("fd00::ffff:ffff:ffff:ffff"))
	if got := allocateN(t, s, 1); got[0] != "fd00::ffff:ffff:ffff:ffff" {
		t.Fatalf("Allocate = %v, want the last address back", got)
	}
	s.Release(addr("fd00::ffff:ffff:ffff:fffd"))
	if got := allocateN(t, s, 1); got[0] != "fd00::ffff:ffff:ffff:fffd" || s.Free() != 0 {
		t.Fatalf("Allocate = %v (Free %d), want fd00::ffff:ffff:ffff:fffd", got, s.Free())
	}
}

// Free counts up to 2^64 addresses; an int holds 2^63-1.
func TestFreeSaturates(t *testing.T) {
	tests := []struct {
		subnet, ipRange, gateway string
		want                     int
	}{
		{"fd00::/64", "", "fd00::1", math.MaxInt},                // 2^64 - 2
		{"fd00::/65", "", "fd00::1", math.MaxInt - 1},            // 2^63 - 2: exact
		{"fd00::/65", "", "", math.MaxInt},                       // 2^63 - 1: exact
		{"fd00::/48", "fd00:0:0:5::/64", "fd00::1", math.MaxInt}, // 2^64, none taken
		{"fd00::/48", "", "", math.MaxInt},
		{"fd00::/96", "", "fd00::1", 1<<32 - 2},
	}
	for _, tt := range tests {
		s := mustSpace(t, tt.subnet, tt.ipRange, tt.gateway)
		if got := s.Free(); got != tt.want {
			t.Errorf("NewSpace(%s, %s, %s).Free() = %d, want %d", tt.subnet, tt.ipRange, tt.gateway, got, tt.want)
		}
		allocateN(t, s, 3)
		if got, want := s.Free(), tt.want-3; tt.want < math.MaxInt-1<<20 && got != want {
			t.Errorf("%s: Free after 3 = %d, want %d", tt.subnet, got, want)
		}
	}
	s := mustSpace(t, "fd00::/65", "", "")
	allocateN(t, s, 2)
	if s.Free() != math.MaxInt-2 {
		t.Fatalf("/65 after 2: Free = %d, want %d", s.Free(), math.MaxInt-2)
	}
}

// A subnet bigger than 2^64 addresses: Allocate draws from the /64 holding
// the start of the ip-range; Reserve, Release and InUse work anywhere.
func TestIPv6SubnetBiggerThan64Bits(t *testing.T) {
	s := mustSpace(t, "fd00::/48", "", "fd00::1")
	if got := allocateN(t, s, 2); !cmp.Equal(got, []string{"fd00::2", "fd00::3"}) {
		t.Fatalf("addresses = %v", got)
	}
	far := []string{"fd00:0:0:7::5", "fd00:0:0:ffff:ffff:ffff:ffff:ffff", "fd00:0:0:1::"}
	for _, a := range far {
		if err := s.Reserve(addr(a)); err != nil {
			t.Fatalf("Reserve(%s): %v", a, err)
		}
		if err := s.Reserve(addr(a)); !errors.Is(err, ErrAddressInUse) {
			t.Fatalf("second Reserve(%s) = %v, want ErrAddressInUse", a, err)
		}
		if !s.InUse(addr(a)) {
			t.Fatalf("InUse(%s) = false after Reserve", a)
		}
	}
	if n := len(s.used.chunks); n != 1 {
		t.Fatalf("bitmap holds %d chunks, want 1: addresses outside the window are not in it", n)
	}
	s.Release(addr(far[0]))
	s.Release(addr(far[0]))
	if s.InUse(addr(far[0])) || !s.InUse(addr(far[1])) {
		t.Fatal("Release outside the window released the wrong address")
	}
	if s.InUse(addr("fd01::5")) || s.Reserve(addr("fd01::5")) == nil {
		t.Fatal("an address outside the subnet is in use or reservable")
	}
}

func TestIPv6RangeOutsideTheFirst64(t *testing.T) {
	s := mustSpace(t, "fd00::/48", "fd00:0:0:3::/64", "fd00::1")
	if got := allocateN(t, s, 2); !cmp.Equal(got, []string{"fd00:0:0:3::", "fd00:0:0:3::1"}) {
		t.Fatalf("addresses = %v, want the range's own first address first (it is not the subnet's)", got)
	}
	for _, a := range []string{"fd00::", "fd00::1"} {
		if !s.InUse(addr(a)) {
			t.Errorf("InUse(%s) = false: the anycast address and the gateway lie outside the window but are taken", a)
		}
		s.Release(addr(a))
		if !s.InUse(addr(a)) {
			t.Errorf("Release(%s) freed it", a)
		}
	}
	if err := s.Reserve(addr("fd00::")); !errdefs.Is(err, errdefs.KindForbidden) {
		t.Errorf("Reserve of the anycast address = %v, want Forbidden (in use)", err)
	}

	// A range of two /64s: the window is the first of them.
	s = mustSpace(t, "fd00::/48", "fd00:0:0:2::/63", "fd00::1")
	if err := s.Reserve(addr("fd00:0:0:3::1")); err != nil {
		t.Fatalf("Reserve in the range's second /64: %v", err)
	}
	if got := allocateN(t, s, 1); got[0] != "fd00:0:0:2::" {
		t.Fatalf("Allocate = %v, want fd00:0:0:2::", got)
	}
}

func TestIPv6SparseAndFree(t *testing.T) {
	s := mustSpace(t, "fd00::/64", "", "fd00::1")
	allocateN(t, s, 100)
	if n := len(s.used.chunks); n != 1 {
		t.Fatalf("bitmap holds %d chunks, want 1 (no broadcast at the far end)", n)
	}
	if err := s.Reserve(addr("fd00::ffff:ffff:ffff:ffff")); err != nil {
		t.Fatal(err)
	}
	if n := len(s.used.chunks); n != 2 {
		t.Fatalf("bitmap holds %d chunks, want 2", n)
	}
	s.Release(addr("fd00::ffff:ffff:ffff:ffff"))
	if n := len(s.used.chunks); n != 1 {
		t.Fatalf("bitmap holds %d chunks after release, want 1", n)
	}
	r := mustSpace(t, "fd00::/120", "", "fd00::1")
	if r.Free() != 254 {
		t.Fatalf("/120 Free = %d, want 256 - anycast - gateway = 254", r.Free())
	}
}
