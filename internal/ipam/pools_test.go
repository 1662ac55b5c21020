package ipam

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestSelectSubnet(t *testing.T) {
	tests := []struct {
		name     string
		pools    []Pool
		used     []netip.Prefix
		reserved []netip.Prefix
		want     string
	}{
		{name: "empty host", want: "172.17.0.0/16"},
		{name: "bridge taken", used: prefixes("172.17.0.0/16"), want: "172.18.0.0/16"},
		{name: "host route on the first pool", reserved: prefixes("172.17.0.0/16"), want: "172.18.0.0/16"},
		{name: "route inside the first pool", reserved: prefixes("172.17.42.0/24"), want: "172.18.0.0/16"},
		{name: "nameserver", used: prefixes("172.17.0.0/16"), reserved: prefixes("172.18.0.53/32"), want: "172.19.0.0/16"},
		{name: "first /14 partly used", used: prefixes("172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16", "172.20.0.0/16"), want: "172.21.0.0/16"},
		{name: "gap is found", used: prefixes("172.18.0.0/16"), want: "172.17.0.0/16"},
		{name: "vpn over 172.16/12", reserved: prefixes("172.16.0.0/12"), want: "192.168.0.0/20"},
		{name: "vpn and a network", used: prefixes("192.168.0.0/20"), reserved: prefixes("172.16.0.0/12"), want: "192.168.16.0/20"},
		{name: "home lan route", used: prefixes("192.168.1.0/24"), reserved: prefixes("172.16.0.0/12"), want: "192.168.16.0/20"},
		{name: "full-tunnel halves do not touch 172/8", reserved: prefixes("0.0.0.0/1"), want: "172.17.0.0/16"},
		{name: "ipv6 entries ignored", used: prefixes("fd00::/8"), reserved: prefixes("::/0"), want: "172.17.0.0/16"},
		{name: "invalid entries ignored", used: []netip.Prefix{{}}, want: "172.17.0.0/16"},
		{
			name:  "custom /24 pool",
			pools: []Pool{{Base: netip.MustParsePrefix("10.0.0.0/8"), Size: 24}},
			used:  prefixes("10.0.0.0/24", "10.0.1.0/24"), want: "10.0.2.0/24",
		},
		{
			name:     "big blocker is jumped over",
			pools:    []Pool{{Base: netip.MustParsePrefix("10.0.0.0/8"), Size: 24}},
			reserved: prefixes("10.0.0.0/9"), want: "10.128.0.0/24",
		},
		{
			name:  "pool order, not address order",
			pools: []Pool{{Base: netip.MustParsePrefix("10.2.0.0/16"), Size: 24}, {Base: netip.MustParsePrefix("10.1.0.0/16"), Size: 24}},
			want:  "10.2.0.0/24",
		},
		{
			name:  "pool of one /32",
			pools: []Pool{{Base: netip.MustParsePrefix("10.9.9.9/32"), Size: 32}},
			want:  "10.9.9.9/32",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools := tt.pools
			if pools == nil {
				pools = DefaultPools()
			}
			got, err := SelectSubnet(pools, tt.used, tt.reserved)
			if err != nil {
				t.Fatalf("SelectSubnet: %v", err)
			}
			if got.String() != tt.want {
				t.Fatalf("SelectSubnet = %s, want %s", got, tt.want)
			}
		})
	}
}

// The exhaustion error stays one readable line with Docker's 31 pools and
// many routes in the way.
func TestSelectSubnetExhaustedIsShort(t *testing.T) {
	var used, routes []netip.Prefix
	for {
		p, err := SelectSubnet(DefaultPools(), used, nil)
		if err != nil {
			break
		}
		used = append(used, p)
	}
	for i := range 40 {
		routes = append(routes, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i%16), byte(i), 0}), 24))
	}
	_, err := SelectSubnet(DefaultPools(), used, routes)
	if err == nil {
		t.Fatal("SelectSubnet found a subnet in a full space")
	}
	// 7 pool entries, 37 of the routes in them (not the 172.16 ones).
	if len(err.Error()) > 500 || !strings.Contains(err.Error(), "(split into /16) and 4 more") || !strings.Contains(err.Error(), "/24 and 32 more)") {
		t.Errorf("exhaustion error (%d bytes) = %q, want at most 500 bytes, three pools and five routes named", len(err.Error()), err)
	}
}

// TestDefaultPoolsOrder walks the whole default space as Docker would hand it
// out: 15 /16s in 172.17–172.31, then 16 /20s in 192.168, then nothing.
func TestDefaultPoolsOrder(t *testing.T) {
	var used []netip.Prefix
	for {
		p, err := SelectSubnet(DefaultPools(), used, nil)
		if err != nil {
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Fatalf("exhaustion error kind = %v, want Invalid: %v", errdefs.KindOf(err), err)
			}
			break
		}
		used = append(used, p)
	}
	if len(used) != 31 {
		t.Fatalf("got %d subnets, want 15 /16 + 16 /20 = 31", len(used))
	}
	checks := map[int]string{0: "172.17.0.0/16", 2: "172.19.0.0/16", 3: "172.20.0.0/16", 14: "172.31.0.0/16", 15: "192.168.0.0/20", 30: "192.168.240.0/20"}
	for i, want := range checks {
		if used[i].String() != want {
			t.Errorf("subnet %d = %s, want %s", i, used[i], want)
		}
	}
}

func TestSelectSubnetExhaustedNamesPoolsAndRoutes(t *testing.T) {
	pools := []Pool{{Base: netip.MustParsePrefix("10.0.0.0/23"), Size: 24}}
	_, err := SelectSubnet(pools, prefixes("10.0.0.0/24"), prefixes("10.0.1.128/25", "8.8.8.8/32"))
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("err = %v (kind %v), want an Invalid error", err, errdefs.KindOf(err))
	}
	for _, want := range []string{"all predefined address pools have been fully subnetted", "10.0.0.0/23 (split into /24)", "10.0.1.128/25", "--subnet"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "8.8.8.8") {
		t.Errorf("error %q names a reserved prefix outside every pool", err)
	}
}

func TestSelectSubnetBadPool(t *testing.T) {
	bad := []Pool{
		{Base: netip.Prefix{}, Size: 24},
		{Base: netip.MustParsePrefix("fd00::/8"), Size: 129},
		{Base: netip.MustParsePrefix("fd00::/64"), Size: 48},
		{Base: netip.MustParsePrefix("fd00::1/64"), Size: 64},
		{Base: netip.MustParsePrefix("::ffff:10.0.0.0/104"), Size: 120},
		{Base: netip.MustParsePrefix("10.0.0.1/8"), Size: 24},
		{Base: netip.MustParsePrefix("10.0.0.0/16"), Size: 8},
		{Base: netip.MustParsePrefix("10.0.0.0/16"), Size: 33},
	}
	for _, p := range bad {
		if _, err := SelectSubnet([]Pool{p}, nil, nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("SelectSubnet(%+v) err = %v, want an Invalid error", p, err)
		}
	}
}

func TestOverlaps(t *testing.T) {
	tests := []struct {
		a, b netip.Prefix
		want bool
	}{
		{netip.MustParsePrefix("172.17.0.0/16"), netip.MustParsePrefix("172.17.5.0/24"), true},
		{netip.MustParsePrefix("172.17.5.0/24"), netip.MustParsePrefix("172.17.0.0/16"), true},
		{netip.MustParsePrefix("172.17.0.0/16"), netip.MustParsePrefix("172.18.0.0/16"), false},
		{netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("172.31.255.255/32"), true},
		{netip.MustParsePrefix("10.1.0.5/16"), netip.MustParsePrefix("10.1.200.0/24"), true},
		{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("1.2.3.4/32"), true},
		{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::/0"), false},
		{netip.Prefix{}, netip.MustParsePrefix("10.0.0.0/8"), false},
		{netip.MustParsePrefix("fd00::/48"), netip.MustParsePrefix("fd00:0:0:5::/64"), true},
		{netip.MustParsePrefix("fd00::/48"), netip.MustParsePrefix("fd01::/48"), false},
		{netip.MustParsePrefix("::ffff:10.0.0.0/104"), netip.MustParsePrefix("10.0.0.0/8"), false},
	}
	for _, tt := range tests {
		if got := Overlaps(tt.a, tt.b); got != tt.want {
			t.Errorf("Overlaps(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSelectSubnetIPv6(t *testing.T) {
	ula := Pool{Base: netip.MustParsePrefix("fd12:3456:789a::/48"), Size: 64}
	v4 := Pool{Base: netip.MustParsePrefix("10.0.0.0/8"), Size: 24}
	tests := []struct {
		name     string
		pools    []Pool
		used     []netip.Prefix
		reserved []netip.Prefix
		want     string
	}{
		{name: "empty host", want: "fd12:3456:789a::/64"},
		{name: "first taken", used: prefixes("fd12:3456:789a::/64"), want: "fd12:3456:789a:1::/64"},
		{name: "gap is found", used: prefixes("fd12:3456:789a:1::/64"), want: "fd12:3456:789a::/64"},
		{name: "route over a /56 is jumped over", reserved: prefixes("fd12:3456:789a::/56"), want: "fd12:3456:789a:100::/64"},
		{name: "nameserver", reserved: prefixes("fd12:3456:789a::53/128"), want: "fd12:3456:789a:1::/64"},
		{name: "ipv4 entries ignored", used: prefixes("0.0.0.0/0"), reserved: prefixes("10.0.0.0/8"), want: "fd12:3456:789a::/64"},
		{name: "mapped entries ignored", reserved: prefixes("::ffff:0:0/96"), want: "fd12:3456:789a::/64"},
		{name: "mixed pools, ipv4 full", pools: []Pool{v4, ula}, reserved: prefixes("10.0.0.0/8"), want: "fd12:3456:789a::/64"},
		{name: "mixed pools, ipv6 full", pools: []Pool{ula, v4}, used: prefixes("fd12:3456:789a::/48"), want: "10.0.0.0/24"},
		{
			name:  "top of the address space",
			pools: []Pool{{Base: netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126"), Size: 127}},
			used:  prefixes("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/127"), want: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127",
		},
		{
			name:  "top of the ipv4 space",
			pools: []Pool{{Base: netip.MustParsePrefix("255.255.255.254/31"), Size: 32}},
			used:  prefixes("255.255.255.254/32"), want: "255.255.255.255/32",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pools := tt.pools
			if pools == nil {
				pools = []Pool{ula}
			}
			got, err := SelectSubnet(pools, tt.used, tt.reserved)
			if err != nil {
				t.Fatalf("SelectSubnet: %v", err)
			}
			if got.String() != tt.want {
				t.Fatalf("SelectSubnet = %s, want %s", got, tt.want)
			}
		})
	}
}

// The walk must stop at the very last address rather than wrap to :: or
// 0.0.0.0 and hand out a subnet outside the pool.
func TestSelectSubnetExhaustedAtTheTop(t *testing.T) {
	tests := []struct {
		pool Pool
		used []netip.Prefix
	}{
		{Pool{Base: netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126"), Size: 127}, prefixes("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/127", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")},
		{Pool{Base: netip.MustParsePrefix("255.255.255.254/31"), Size: 32}, prefixes("255.255.255.254/32", "255.255.255.255/32")},
		{Pool{Base: netip.MustParsePrefix("::/0"), Size: 1}, prefixes("::/0")},
	}
	for _, tt := range tests {
		if got, err := SelectSubnet([]Pool{tt.pool}, tt.used, nil); !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("SelectSubnet(%s) = %s, %v; want an Invalid error", tt.pool, got, err)
		}
	}
}

func TestSelectSubnetExhaustedIPv6(t *testing.T) {
	pools := []Pool{{Base: netip.MustParsePrefix("fd00::/63"), Size: 64}}
	_, err := SelectSubnet(pools, prefixes("fd00::/64"), prefixes("fd00:0:0:1::/80", "2001:db8::/32"))
	if !errdefs.Is(err, errdefs.KindInvalid) {
		t.Fatalf("err = %v (kind %v), want an Invalid error", err, errdefs.KindOf(err))
	}
	if want := "fd00:0:0:1::/80"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not mention %q", err, want)
	}
	if strings.Contains(err.Error(), "2001:db8") {
		t.Errorf("error %q names a reserved prefix outside every pool", err)
	}
}

// TestULAPool checks ULAPool against moby's deriveULABaseNetwork worked by
// hand: sha256("") starts e3b0c442 98fc1c14, whose low 40 bits 42 98fc 1c14
// go after fd; the second value is moby's own test case (daemon_test.go).
func TestULAPool(t *testing.T) {
	tests := []struct{ hostID, want string }{
		{"", "fd42:98fc:1c14::/48"},
		{"499d4bc0-b0b3-416f-b1ee-cf6486315593", "fd62:fb69:18af::/48"},
	}
	for _, tt := range tests {
		got := ULAPool(tt.hostID)
		if want := (Pool{Base: netip.MustParsePrefix(tt.want), Size: 64}); got != want {
			t.Errorf("ULAPool(%q) = %s, want %s", tt.hostID, got, want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("ULAPool(%q) is not a valid pool: %v", tt.hostID, err)
		}
	}
}

// Configured pools are taken in address order, as moby's address space
// sorts them, and one inside an earlier pool is dropped.
func TestOrderedPools(t *testing.T) {
	p := func(base string, size int) Pool { return Pool{Base: netip.MustParsePrefix(base), Size: size} }
	in := []Pool{p("10.200.0.0/16", 24), p("10.100.0.0/16", 24), p("10.100.5.0/24", 26), p("192.168.0.0/16", 20), p("10.100.0.0/20", 28)}
	want := []Pool{p("10.100.0.0/16", 24), p("10.200.0.0/16", 24), p("192.168.0.0/16", 20)}
	got := Ordered(in)
	if !slices.Equal(got, want) {
		t.Errorf("Ordered = %v, want %v", got, want)
	}
	if in[0] != p("10.200.0.0/16", 24) {
		t.Error("Ordered changed its argument")
	}
	if sub, err := SelectSubnet(got, nil, nil); err != nil || sub != netip.MustParsePrefix("10.100.0.0/24") {
		t.Errorf("first subnet %v, %v; want 10.100.0.0/24", sub, err)
	}
	if Ordered(nil) != nil {
		t.Error("Ordered(nil) is not nil")
	}
}

// TestResized: a request that names only a size (0.0.0.0/26, ::/120)
// splits the pools of its family that can hold it into subnets of that
// size, as moby's allocatePredefinedPool with a prefix size.
func TestResized(t *testing.T) {
	pools := []Pool{
		{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("172.18.0.0/16"), Size: 16},
		{Base: netip.MustParsePrefix("192.168.0.0/20"), Size: 24},
		{Base: netip.MustParsePrefix("fd00:1::/48"), Size: 64},
	}
	v4, v6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	for _, tc := range []struct {
		family netip.Addr
		size   int
		want   []Pool
	}{
		{v4, 0, pools},
		{v4, 26, []Pool{{netip.MustParsePrefix("172.17.0.0/16"), 26}, {netip.MustParsePrefix("172.18.0.0/16"), 26}, {netip.MustParsePrefix("192.168.0.0/20"), 26}}},
		{v4, 16, []Pool{{netip.MustParsePrefix("172.17.0.0/16"), 16}, {netip.MustParsePrefix("172.18.0.0/16"), 16}}},
		{v4, 20, []Pool{{netip.MustParsePrefix("172.17.0.0/16"), 20}, {netip.MustParsePrefix("172.18.0.0/16"), 20}, {netip.MustParsePrefix("192.168.0.0/20"), 20}}},
		{v6, 120, []Pool{{netip.MustParsePrefix("fd00:1::/48"), 120}}},
	} {
		got, err := Resized(pools, tc.family, tc.size)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Resized(%v, /%d) = %v, %v; want %v", tc.family, tc.size, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		family netip.Addr
		size   int
	}{{v4, 12}, {v4, 33}, {v6, 32}} {
		if _, err := Resized(pools, tc.family, tc.size); !errdefs.Is(err, errdefs.KindInvalid) || !strings.HasPrefix(err.Error(), "invalid address pool: ") {
			t.Errorf("Resized(%v, /%d): %v, want moby's \"invalid address pool\" first", tc.family, tc.size, err)
		}
	}
	if _, err := Resized(pools[:3], v6, 120); err == nil || !strings.Contains(err.Error(), "no default address pool of that family") {
		t.Errorf("::/120 without IPv6 pools: %v", err)
	}
	// A pool of /16s whose first /16 holds a /24 and a /25 network already:
	// a /24 comes from the same pool, after them.
	got, err := Resized(pools[:1], v4, 24)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := SelectSubnet(got, prefixes("172.17.0.0/24", "172.17.1.0/25"), nil)
	if err != nil || sub != netip.MustParsePrefix("172.17.2.0/24") {
		t.Errorf("a /24 of 172.17.0.0/16 after 172.17.0.0/24 and 172.17.1.0/25: %v, %v", sub, err)
	}
}

// With no pool of the family at all (the daemon's pools are IPv6 ones
// alone), the error says so, not that every subnet is used.
func TestSelectSubnetNoPoolOfTheFamily(t *testing.T) {
	_, err := SelectSubnet([]Pool{}, nil, nil)
	if !errdefs.Is(err, errdefs.KindInvalid) || !strings.Contains(err.Error(), "have none of this address family") || strings.Contains(err.Error(), "used by another network") {
		t.Errorf("err = %v", err)
	}
}
