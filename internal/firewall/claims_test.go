package firewall

import (
	"net/netip"
	"testing"
)

func TestPortClaims(t *testing.T) {
	ctr := netip.MustParseAddr("172.17.0.2")
	local := netip.MustParseAddr("127.0.0.1")
	anyWeb := PortMapping{Proto: TCP, HostPort: 8080, Addr: ctr, Port: 80}
	localWeb := PortMapping{Proto: TCP, HostIP: local, HostPort: 8080, Addr: ctr, Port: 80}
	otherLocal := PortMapping{Proto: TCP, HostIP: netip.MustParseAddr("198.51.100.2"), HostPort: 8080, Addr: ctr, Port: 81}
	udpWeb := PortMapping{Proto: UDP, HostPort: 8080, Addr: ctr, Port: 80}
	c := NewPortClaims()
	steps := []struct {
		name  string
		check []PortMapping
		ok    bool
		add   bool
	}{
		{"one address", []PortMapping{localWeb}, true, true},
		{"every address over one", []PortMapping{anyWeb}, false, false},
		{"same address again", []PortMapping{localWeb}, false, false},
		{"another address", []PortMapping{otherLocal}, true, true},
		{"other protocol", []PortMapping{udpWeb}, true, true},
		{"a batch that collides with itself", []PortMapping{{Proto: TCP, HostPort: 9000, Addr: ctr, Port: 1}, {Proto: TCP, HostIP: local, HostPort: 9000, Addr: ctr, Port: 2}}, false, false},
	}
	for _, s := range steps {
		err := c.Check(s.check)
		if (err == nil) != s.ok {
			t.Fatalf("%s: Check = %v, want ok %v", s.name, err, s.ok)
		}
		if s.add {
			c.Add(s.check)
		}
	}
	c.Remove([]PortMapping{localWeb, otherLocal})
	if err := c.Check([]PortMapping{anyWeb}); err != nil {
		t.Errorf("after removing both addresses, every address: %v", err)
	}
	c.Remove([]PortMapping{localWeb}) // unknown: ignored
	c.Add([]PortMapping{anyWeb})
	if err := c.Check([]PortMapping{localWeb}); err == nil {
		t.Error("one address under every address accepted")
	}
	c.Remove([]PortMapping{anyWeb, udpWeb})
	if err := c.Check([]PortMapping{localWeb, anyWeb}); err == nil {
		t.Error("a batch with both every address and one address accepted")
	}
	if err := c.Check([]PortMapping{localWeb}); err != nil {
		t.Errorf("everything removed, yet: %v", err)
	}
}

// TestPortClaimsCheckChangesNothing: whether Check passes or fails half
// way through a batch, it leaves no claim behind.
func TestPortClaimsCheckChangesNothing(t *testing.T) {
	ctr := netip.MustParseAddr("172.17.0.2")
	local := netip.MustParseAddr("127.0.0.1")
	batch := []PortMapping{
		{Proto: TCP, HostPort: 8080, Addr: ctr, Port: 80},
		{Proto: TCP, HostIP: local, HostPort: 8081, Addr: ctr, Port: 81},
		{Proto: UDP, HostPort: 8080, Addr: ctr, Port: 80},
	}
	c := NewPortClaims()
	for range 2 {
		if err := c.Check(batch); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	bad := append(append([]PortMapping{}, batch...), PortMapping{Proto: TCP, HostIP: local, HostPort: 8080, Addr: ctr, Port: 82})
	if err := c.Check(bad); err == nil {
		t.Fatal("a batch that collides with itself passed")
	}
	c.Add(batch[1:])
	if err := c.Check(batch[:1]); err != nil {
		t.Errorf("after failed Checks, %v: %v", batch[0], err)
	}
	if err := c.Check(batch[1:2]); err == nil {
		t.Errorf("%v passed while claimed", batch[1])
	}
}

func TestHostKey(t *testing.T) {
	a := PortMapping{Proto: TCP, HostPort: 80}
	b := PortMapping{Proto: TCP, HostIP: netip.IPv4Unspecified(), HostPort: 80}
	c := PortMapping{Proto: TCP, HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 80}
	if hostKey(a) != hostKey(b) || hostKey(a) == hostKey(c) {
		t.Errorf("hostKey: empty %x, 0.0.0.0 %x, 127.0.0.1 %x", hostKey(a), hostKey(b), hostKey(c))
	}
	ctr6 := netip.MustParseAddr("fd00::2")
	a6 := PortMapping{Proto: TCP, HostPort: 80, Addr: ctr6}
	b6 := PortMapping{Proto: TCP, HostIP: netip.IPv6Unspecified(), HostPort: 80, Addr: ctr6}
	c6 := PortMapping{Proto: TCP, HostIP: netip.MustParseAddr("2001:db8::1"), HostPort: 80, Addr: ctr6}
	if hostKeyOf6(a6) != hostKeyOf6(b6) || hostKeyOf6(a6) == hostKeyOf6(c6) {
		t.Errorf("hostKeyOf6: empty %v, :: %v, 2001:db8::1 %v", hostKeyOf6(a6), hostKeyOf6(b6), hostKeyOf6(c6))
	}
}

// TestPortClaimsPerFamily: the families claim ports apart, as Docker binds
// 0.0.0.0:PORT and [::]:PORT, and within IPv6 the rules are IPv4's.
func TestPortClaimsPerFamily(t *testing.T) {
	ctr4, ctr6 := netip.MustParseAddr("172.17.0.2"), netip.MustParseAddr("fd00:1::2")
	host6 := netip.MustParseAddr("2001:db8:1::2")
	any4 := PortMapping{Proto: TCP, HostPort: 8080, Addr: ctr4, Port: 80}
	any6 := PortMapping{Proto: TCP, HostPort: 8080, Addr: ctr6, Port: 80}
	one6 := PortMapping{Proto: TCP, HostIP: host6, HostPort: 8080, Addr: ctr6, Port: 81}
	loop6 := PortMapping{Proto: TCP, HostIP: netip.IPv6Loopback(), HostPort: 8080, Addr: ctr6, Port: 82}
	c := NewPortClaims()
	if err := c.Check([]PortMapping{any4, any6}); err != nil {
		t.Fatalf("one port for both families: %v", err)
	}
	c.Add([]PortMapping{any4, any6})
	for _, m := range []PortMapping{one6, loop6, {Proto: TCP, HostIP: netip.IPv6Unspecified(), HostPort: 8080, Addr: ctr6, Port: 83}} {
		err := c.Check([]PortMapping{m})
		if !isConflict(err) {
			t.Errorf("%v beside %v: %v, want a conflict", m, any6, err)
		} else if want := "Bind for :::8080 failed: port is already allocated"; m.AnyHostIP() && err.Error() != want {
			t.Errorf("conflict says %q, want Docker's %q", err, want)
		}
	}
	c.Remove([]PortMapping{any6})
	if err := c.Check([]PortMapping{one6, loop6}); err != nil {
		t.Errorf("two IPv6 addresses, one port, with every IPv6 address free: %v", err)
	}
	c.Add([]PortMapping{one6})
	if err := c.Check([]PortMapping{one6}); !isConflict(err) {
		t.Errorf("the same IPv6 address twice: %v, want a conflict", err)
	}
	if err := c.Check([]PortMapping{any4}); !isConflict(err) {
		t.Errorf("the IPv4 claim went with the IPv6 ones: %v", err)
	}
	c.Remove([]PortMapping{any4, one6})
	if err := c.Check([]PortMapping{any4, any6, one6}); !isConflict(err) {
		t.Errorf("a batch with every IPv6 address and one: %v, want a conflict", err)
	}
	if err := c.Check([]PortMapping{any4, one6}); err != nil {
		t.Errorf("everything removed, yet: %v", err)
	}
}

func TestPortIndex(t *testing.T) {
	ctr4, ctr6 := netip.MustParseAddr("172.17.0.2"), netip.MustParseAddr("fd00:1::2")
	ms := []PortMapping{
		{Proto: TCP, HostPort: 8080, Addr: ctr4, Port: 80},
		{Proto: TCP, HostPort: 8080, Addr: ctr6, Port: 80},
		{Proto: TCP, HostIP: netip.MustParseAddr("2001:db8::1"), HostPort: 8080, Addr: ctr6, Port: 81},
	}
	var x PortIndex
	for _, m := range ms {
		x.Put(m)
	}
	if x.Len() != 3 || len(x.List()) != 3 {
		t.Fatalf("Len %d, List %v; want the 3 mappings", x.Len(), x.List())
	}
	for _, m := range ms {
		if got, ok := x.Get(m); !ok || got != m {
			t.Errorf("Get(%v) = %v, %v", m, got, ok)
		}
	}
	x.Delete(ms[1])
	if _, ok := x.Get(ms[1]); ok || x.Len() != 2 {
		t.Errorf("after Delete(%v): still there or Len %d", ms[1], x.Len())
	}
	if _, ok := x.Get(ms[0]); !ok {
		t.Errorf("Delete of the IPv6 mapping took the IPv4 one of the same port")
	}
}
