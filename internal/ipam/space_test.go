package ipam

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/google/go-cmp/cmp"
)

func mustSpace(t *testing.T, subnet, ipRange, gateway string) *Space {
	t.Helper()
	s, err := NewSpace(pfx(subnet), pfx(ipRange), addr(gateway))
	if err != nil {
		t.Fatalf("NewSpace(%q, %q, %q): %v", subnet, ipRange, gateway, err)
	}
	return s
}

func allocateN(t *testing.T, s *Space, n int) []string {
	t.Helper()
	var got []string
	for range n {
		a, err := s.Allocate()
		if err != nil {
			t.Fatalf("Allocate after %v: %v", got, err)
		}
		got = append(got, a.String())
	}
	return got
}

func TestAllocateLowestFirst(t *testing.T) {
	s := mustSpace(t, "172.17.0.0/16", "", "172.17.0.1")
	got := allocateN(t, s, 3)
	if diff := cmp.Diff([]string{"172.17.0.2", "172.17.0.3", "172.17.0.4"}, got); diff != "" {
		t.Fatalf("first addresses (-want +got):\n%s", diff)
	}
	s.Release(addr("172.17.0.3"))
	s.Release(addr("172.17.0.3")) // twice: idempotent
	if got := allocateN(t, s, 2); !cmp.Equal(got, []string{"172.17.0.3", "172.17.0.5"}) {
		t.Fatalf("after release got %v, want the released address back first", got)
	}
}

func TestAllocateGatewayInTheMiddle(t *testing.T) {
	s := mustSpace(t, "10.0.0.0/29", "", "10.0.0.3")
	got := allocateN(t, s, 5)
	if diff := cmp.Diff([]string{"10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}, got); diff != "" {
		t.Fatalf("addresses (-want +got):\n%s", diff)
	}
	if _, err := s.Allocate(); !errdefs.Is(err, errdefs.KindUnavailable) || !errors.Is(err, ErrNoAddress) {
		t.Fatalf("Allocate on a full /29 = %v, want Unavailable ErrNoAddress", err)
	}
}

func TestAllocateIPRange(t *testing.T) {
	s := mustSpace(t, "10.1.0.0/16", "10.1.5.0/30", "10.1.0.1")
	if s.Free() != 4 {
		t.Fatalf("Free = %d, want 4 (a /30 range has no network or broadcast of its own)", s.Free())
	}
	got := allocateN(t, s, 4)
	if diff := cmp.Diff([]string{"10.1.5.0", "10.1.5.1", "10.1.5.2", "10.1.5.3"}, got); diff != "" {
		t.Fatalf("addresses (-want +got):\n%s", diff)
	}
	_, err := s.Allocate()
	if !errdefs.Is(err, errdefs.KindUnavailable) {
		t.Fatalf("Allocate on a full range = %v, want Unavailable", err)
	}
	if want := "no available IPv4 addresses left in ip-range 10.1.5.0/30 of subnet 10.1.0.0/16"; err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	// --ip outside the range but inside the subnet is allowed, as in Docker.
	if err := s.Reserve(addr("10.1.9.9")); err != nil {
		t.Fatalf("Reserve outside the ip-range: %v", err)
	}
	s.Release(addr("10.1.5.2"))
	if got := allocateN(t, s, 1); got[0] != "10.1.5.2" {
		t.Fatalf("after release got %v, want 10.1.5.2", got)
	}
}

func TestAllocateRangeAtSubnetEdges(t *testing.T) {
	s := mustSpace(t, "10.1.0.0/24", "10.1.0.252/30", "10.1.0.1")
	got := allocateN(t, s, 3)
	if diff := cmp.Diff([]string{"10.1.0.252", "10.1.0.253", "10.1.0.254"}, got); diff != "" {
		t.Fatalf("addresses (-want +got):\n%s", diff)
	}
	if _, err := s.Allocate(); err == nil {
		t.Fatal("Allocate handed out the broadcast address")
	}
}

func TestReserveErrors(t *testing.T) {
	tests := []struct {
		addr string
		kind errdefs.Kind
		want string
	}{
		{"10.2.0.5", errdefs.KindInvalid, "address 10.2.0.5 is not in subnet 10.1.0.0/16"},
		{"fd00::5", errdefs.KindInvalid, "not in subnet"},
		{"::ffff:10.1.0.5", errdefs.KindInvalid, "not in subnet"},
		{"", errdefs.KindInvalid, "not in subnet"},
		{"10.1.0.0", errdefs.KindForbidden, "Address already in use: 10.1.0.0 is the network address of subnet 10.1.0.0/16"},
		{"10.1.255.255", errdefs.KindForbidden, "Address already in use: 10.1.255.255 is the broadcast address of subnet 10.1.0.0/16"},
		{"10.1.0.1", errdefs.KindForbidden, "Address already in use: 10.1.0.1 is the gateway of subnet 10.1.0.0/16"},
		{"10.1.0.2", errdefs.KindForbidden, "Address already in use: 10.1.0.2 in subnet 10.1.0.0/16 is already taken"},
	}
	s := mustSpace(t, "10.1.0.0/16", "", "10.1.0.1")
	if err := s.Reserve(addr("10.1.0.2")); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	for _, tt := range tests {
		err := s.Reserve(addr(tt.addr))
		if errdefs.KindOf(err) != tt.kind {
			t.Errorf("Reserve(%q) = %v (kind %v), want kind %v", tt.addr, err, errdefs.KindOf(err), tt.kind)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Reserve(%q) = %q, want it to contain %q", tt.addr, err, tt.want)
		}
		if tt.kind == errdefs.KindForbidden && !errors.Is(err, ErrAddressInUse) {
			t.Errorf("Reserve(%q) = %v, want it to wrap ErrAddressInUse", tt.addr, err)
		}
	}
}

func TestNewSpaceErrors(t *testing.T) {
	tests := []struct{ subnet, ipRange, gateway string }{
		{"", "", ""},
		{"::ffff:10.1.0.0/112", "", ""},
		{"10.1.0.5/16", "", ""},
		{"10.1.0.0/16", "10.2.0.0/24", ""},
		{"10.1.0.0/16", "10.0.0.0/8", ""},
		{"10.1.0.0/16", "10.1.0.9/24", ""},
		{"10.1.0.0/16", "", "10.2.0.1"},
		{"10.1.0.0/16", "", "10.1.0.0"},
		{"10.1.0.0/16", "", "10.1.255.255"},
		{"10.1.0.0/16", "", "fd00::1"},
		{"10.1.0.0/16", "::ffff:10.1.0.0/120", ""},
		{"fd00::5/64", "", ""},
		{"fd00::/64", "10.1.0.0/24", ""},
		{"fd00::/64", "fd01::/80", ""},
		{"fd00::/64", "", "10.1.0.1"},
		{"fd00::/64", "", "fd00::"},
		{"fd00::/64", "", "fd01::1"},
	}
	for _, tt := range tests {
		_, err := NewSpace(pfx(tt.subnet), pfx(tt.ipRange), addr(tt.gateway))
		if !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("NewSpace(%q, %q, %q) = %v, want an Invalid error", tt.subnet, tt.ipRange, tt.gateway, err)
		}
	}
}

func TestReleaseNeverFreesReservedAddresses(t *testing.T) {
	s := mustSpace(t, "10.1.0.0/24", "", "10.1.0.1")
	free := s.Free()
	for _, a := range []string{"10.1.0.0", "10.1.0.1", "10.1.0.255", "10.9.9.9", "10.1.0.77"} {
		s.Release(addr(a))
	}
	s.Release(netip.Addr{})
	if s.Free() != free {
		t.Fatalf("Free changed from %d to %d after releasing addresses nobody held", free, s.Free())
	}
	for _, a := range []string{"10.1.0.0", "10.1.0.1", "10.1.0.255"} {
		if !s.InUse(addr(a)) {
			t.Errorf("InUse(%s) = false after Release, want true", a)
		}
	}
	if got := allocateN(t, s, 1); got[0] != "10.1.0.2" {
		t.Fatalf("Allocate = %v, want 10.1.0.2", got)
	}
}

func TestFreeAndInUse(t *testing.T) {
	s := mustSpace(t, "10.1.0.0/24", "", "10.1.0.1")
	if s.Free() != 253 {
		t.Fatalf("Free = %d, want 256 - network - broadcast - gateway = 253", s.Free())
	}
	a, _ := s.Allocate()
	if !s.InUse(a) || s.InUse(addr("10.1.0.3")) || s.InUse(addr("10.2.0.3")) {
		t.Fatal("InUse gives wrong answers")
	}
	if err := s.Reserve(addr("10.1.0.200")); err != nil {
		t.Fatal(err)
	}
	if s.Free() != 251 {
		t.Fatalf("Free = %d, want 251", s.Free())
	}
	s.Release(a)
	if s.Free() != 252 || s.InUse(a) {
		t.Fatalf("after Release: Free = %d, InUse = %v", s.Free(), s.InUse(a))
	}
}

// A /31 is a point-to-point link (RFC 3021): both addresses are usable, so
// with the gateway on one there is exactly one left. A /32 with its only
// address as gateway has none; without a gateway it has one.
func TestPointToPointSubnets(t *testing.T) {
	s := mustSpace(t, "10.1.0.0/31", "", "10.1.0.0")
	if got := allocateN(t, s, 1); got[0] != "10.1.0.1" {
		t.Fatalf("/31 Allocate = %v, want 10.1.0.1", got)
	}
	if _, err := s.Allocate(); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("second /31 Allocate = %v, want ErrNoAddress", err)
	}
	s = mustSpace(t, "10.1.0.7/32", "", "10.1.0.7")
	if s.Free() != 0 {
		t.Fatalf("/32 with gateway: Free = %d, want 0", s.Free())
	}
	s = mustSpace(t, "10.1.0.7/32", "", "")
	if got := allocateN(t, s, 1); got[0] != "10.1.0.7" {
		t.Fatalf("/32 Allocate = %v, want 10.1.0.7", got)
	}
}

// A /8 must not cost 2^24 bits up front, and must still find addresses at
// its far end.
func TestLargeSubnetIsSparse(t *testing.T) {
	s := mustSpace(t, "10.0.0.0/8", "", "10.0.0.1")
	if s.Free() != 1<<24-3 {
		t.Fatalf("Free = %d, want %d", s.Free(), 1<<24-3)
	}
	allocateN(t, s, 100)
	if n := len(s.used.chunks); n != 2 {
		t.Fatalf("bitmap holds %d chunks, want 2 (first, and last for the broadcast)", n)
	}
	if err := s.Reserve(addr("10.128.0.5")); err != nil {
		t.Fatal(err)
	}
	if n := len(s.used.chunks); n != 3 {
		t.Fatalf("bitmap holds %d chunks, want 3", n)
	}
	s.Release(addr("10.128.0.5"))
	if n := len(s.used.chunks); n != 2 {
		t.Fatalf("bitmap holds %d chunks after release, want 2", n)
	}
	r := mustSpace(t, "10.0.0.0/8", "10.255.255.0/24", "10.0.0.1")
	if got := allocateN(t, r, 1); got[0] != "10.255.255.0" {
		t.Fatalf("Allocate = %v, want 10.255.255.0", got)
	}
}

func TestWholeSlash16(t *testing.T) {
	s := mustSpace(t, "172.18.0.0/16", "", "172.18.0.1")
	seen := map[netip.Addr]bool{}
	for {
		a, err := s.Allocate()
		if err != nil {
			break
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
	if len(seen) != 65533 || s.Free() != 0 {
		t.Fatalf("handed out %d, Free = %d; want 65533 and 0", len(seen), s.Free())
	}
	s.Release(addr("172.18.200.7"))
	if got := allocateN(t, s, 1); got[0] != "172.18.200.7" {
		t.Fatalf("Allocate = %v, want the only free address 172.18.200.7", got)
	}
}

func TestConcurrentAllocate(t *testing.T) {
	tests := []struct {
		subnet, gateway string
		free            int // before the 800 allocations
	}{
		{"10.1.0.0/22", "10.1.0.1", 1021},
		{"fd00::/118", "fd00::1", 1022},
	}
	for _, tt := range tests {
		t.Run(tt.subnet, func(t *testing.T) {
			s := mustSpace(t, tt.subnet, "", tt.gateway)
			allocateConcurrently(t, s, 8, 100)
			if s.Free() != tt.free-800 {
				t.Fatalf("Free = %d, want %d", s.Free(), tt.free-800)
			}
		})
	}
}

// allocateConcurrently has n goroutines allocate each times and fails the
// test if an address is handed out twice.
func allocateConcurrently(t *testing.T, s *Space, n, each int) {
	var (
		mu   sync.Mutex
		seen = map[netip.Addr]bool{}
		wg   sync.WaitGroup
	)
	for range n {
		wg.Go(func() {
			for range each {
				a, err := s.Allocate()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[a] {
					t.Errorf("%s handed out twice", a)
				}
				seen[a] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
