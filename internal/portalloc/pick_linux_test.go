package portalloc

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/berth-net/berth/internal/network"
)

func ports(s portSpan, from uint16) []uint16 {
	var out []uint16
	for p := range s.from(from) {
		out = append(out, p)
	}
	return out
}

func TestSpanFrom(t *testing.T) {
	s := portSpan{lo: 10, hi: 13}
	for _, tc := range []struct {
		from uint16
		want []uint16
	}{
		{10, []uint16{10, 11, 12, 13}},
		{12, []uint16{12, 13, 10, 11}},
		{13, []uint16{13, 10, 11, 12}},
		{9, []uint16{10, 11, 12, 13}}, // outside: from the start
		{14, []uint16{10, 11, 12, 13}},
	} {
		if got := ports(s, tc.from); !slices.Equal(got, tc.want) {
			t.Errorf("from %d: %v, want %v", tc.from, got, tc.want)
		}
	}
	if got := ports(portSpan{lo: 65535, hi: 65535}, 65535); !slices.Equal(got, []uint16{65535}) {
		t.Errorf("the last port alone: %v", got)
	}
	if got := ports(portSpan{lo: 65534, hi: 65535}, 65535); !slices.Equal(got, []uint16{65535, 65534}) {
		t.Errorf("wrapping at 65535: %v", got)
	}
	if got := ports(portSpan{}, 0); got != nil {
		t.Errorf("empty span: %v", got)
	}
}

// TestCursors: a range's search starts after the port it gave last, at
// its start at first and after its end; ranges, protocols and addresses
// each have their own.
func TestCursors(t *testing.T) {
	c := cursors{}
	k := cursorKey{proto: "tcp", ip: anyIP, lo: 8000, hi: 8002}
	if got := c.from(k); got != 8000 {
		t.Errorf("first search from %d, want 8000", got)
	}
	c.gave(k, 8000)
	if got := c.from(k); got != 8001 {
		t.Errorf("after 8000: from %d, want 8001", got)
	}
	c.gave(k, 8002)
	if got := c.from(k); got != 8000 {
		t.Errorf("after the end: from %d, want 8000", got)
	}
	for _, other := range []cursorKey{
		{proto: "udp", ip: anyIP, lo: 8000, hi: 8002},
		{proto: "tcp", ip: localIP, lo: 8000, hi: 8002},
		{proto: "tcp", ip: anyIP, lo: 8000, hi: 8003},
	} {
		if got := c.from(other); got != other.lo {
			t.Errorf("%+v searches from %d, want its start", other, got)
		}
	}
	eph := cursorKey{proto: "tcp", ip: anyIP, lo: 32768, hi: 60999, ephemeral: true}
	c.gave(eph, 40000)
	for i := range maxCursors + 10 {
		c.gave(cursorKey{proto: "tcp", ip: anyIP, lo: 1, hi: uint16(i + 2)}, 1)
	}
	if len(c) > maxCursors {
		t.Errorf("%d cursors kept, at most %d", len(c), maxCursors)
	}
	if got := c.from(eph); got != 40001 {
		t.Errorf("the ephemeral range's cursor was forgotten: from %d, want 40001", got)
	}
}

func TestParsePortRange(t *testing.T) {
	s, err := parsePortRange("32768\t60999\n")
	if err != nil || s.lo != 32768 || s.hi != 60999 {
		t.Errorf("parsePortRange = %+v, %v", s, err)
	}
	for _, bad := range []string{"", "32768", "0 100", "100 99", "1 70000", "a b", "1 2 3"} {
		if _, err := parsePortRange(bad); err == nil {
			t.Errorf("parsePortRange(%q) took it", bad)
		}
	}
}

func TestParseReservedPorts(t *testing.T) {
	s := portSpan{lo: 100, hi: 200}
	got, err := parseReservedPorts("80,150,190-210,99-101\n", s)
	if err != nil {
		t.Fatal(err)
	}
	var keys []uint16
	for p := range got {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	want := []uint16{100, 101, 150}
	for p := uint16(190); p <= 200; p++ {
		want = append(want, p)
	}
	if !slices.Equal(keys, want) {
		t.Errorf("reserved %v, want %v", keys, want)
	}
	if got, err := parseReservedPorts("\n", s); err != nil || got != nil {
		t.Errorf("none: %v, %v", got, err)
	}
	for _, bad := range []string{"x", "10-5", "1-x", "70000"} {
		if _, err := parseReservedPorts(bad, s); err == nil {
			t.Errorf("parseReservedPorts(%q) took it", bad)
		}
	}
}

func TestPickerTaken(t *testing.T) {
	pk := &picker{held: map[network.HostPort]int{
		{Proto: "tcp", HostIP: anyIP, Port: 1}:                   3,
		{Proto: "tcp", HostIP: localIP, Port: 2}:                 4,
		{Proto: "udp", HostIP: netip.IPv6Unspecified(), Port: 3}: 5,
	}}
	for _, tc := range []struct {
		proto string
		ip    netip.Addr
		port  uint16
		want  bool
	}{
		{"tcp", anyIP, 1, true},
		{"tcp", localIP, 1, true}, // under every address
		{"udp", anyIP, 1, false},
		{"tcp", localIP, 2, true},
		{"tcp", anyIP, 2, false}, // left to the bind
		{"udp", netip.IPv6Loopback(), 3, true},
		{"udp", localIP, 3, false}, // IPv6 sockets hold IPv6 ports alone
	} {
		if got := pk.taken(tc.proto, tc.ip, tc.port); got != tc.want {
			t.Errorf("taken(%s, %s, %d) = %v, want %v", tc.proto, tc.ip, tc.port, got, tc.want)
		}
	}
}
