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
	if HostKey(a) != HostKey(b) || HostKey(a) == HostKey(c) {
		t.Errorf("HostKey: empty %x, 0.0.0.0 %x, 127.0.0.1 %x", HostKey(a), HostKey(b), HostKey(c))
	}
}
