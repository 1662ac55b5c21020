package cni

import (
	"net/netip"
	"testing"
)

func smallNetwork(t *testing.T) *Network {
	return mustNetwork(t, `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","subnet":"10.0.0.0/29"}}`)
}

func alloc(t *testing.T, s *State, n *Network, key string, want ...netip.Addr) string {
	t.Helper()
	ips, err := s.Allocate(n, key, want)
	if err != nil {
		t.Fatalf("allocate %s: %v", key, err)
	}
	s.Attachments[key] = &Attached{Network: n.Name, IPs: ips}
	return ips[0].Address.Addr().String()
}

func TestAllocateGoesRoundRobinSkippingTheGatewayAsHostLocal(t *testing.T) {
	n := smallNetwork(t) // .1 gateway, .2-.6 usable, .7 broadcast
	s := NewState()
	for i, want := range []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		if got := alloc(t, s, n, string(rune('a'+i))); got != want {
			t.Fatalf("allocation %d = %s, want %s", i, got, want)
		}
	}
	delete(s.Attachments, "a") // .2 free again
	if got := alloc(t, s, n, "d"); got != "10.0.0.5" {
		t.Errorf("after a release = %s, want 10.0.0.5 (after the last one handed out, not the lowest free)", got)
	}
	if got := alloc(t, s, n, "e"); got != "10.0.0.6" {
		t.Errorf("= %s, want 10.0.0.6", got)
	}
	if got := alloc(t, s, n, "f"); got != "10.0.0.2" {
		t.Errorf("wrapped = %s, want 10.0.0.2", got)
	}
	if _, err := s.Allocate(n, "g", nil); err == nil || err.(*Error).Code != CodeAddressesExhausted {
		t.Errorf("full range: err = %v, want code %d", err, CodeAddressesExhausted)
	}
}

func TestAllocateTakesRequestedAddresses(t *testing.T) {
	n := smallNetwork(t)
	s := NewState()
	if got := alloc(t, s, n, "a", netip.MustParseAddr("10.0.0.5")); got != "10.0.0.5" {
		t.Fatalf("requested = %s", got)
	}
	for _, bad := range []string{"10.0.0.5", "10.0.0.1", "10.0.0.7", "10.9.0.1"} {
		if _, err := s.Allocate(n, "b", []netip.Addr{netip.MustParseAddr(bad)}); err == nil {
			t.Errorf("requested %s: no error", bad)
		}
	}
	if len(s.Attachments) != 1 || s.Last["n/0"].String() != "10.0.0.5" {
		t.Errorf("a failed allocation changed the state: %+v", s)
	}
}

func TestAllocateDualStackAndSeveralRanges(t *testing.T) {
	// Two ranges of one subnet: the second is used once the first is full.
	n := mustNetwork(t, `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local","ranges":[
		[{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.2","rangeEnd":"10.0.0.2"},{"subnet":"10.0.0.0/24","rangeStart":"10.0.0.100","rangeEnd":"10.0.0.101"}],
		[{"subnet":"fd00::/120"}]]}}`)
	s := NewState()
	ips, err := s.Allocate(n, "a", nil)
	if err != nil || len(ips) != 2 || ips[0].Address.String() != "10.0.0.2/24" || ips[1].Address.String() != "fd00::2/120" {
		t.Fatalf("= %v %v", ips, err)
	}
	s.Attachments["a"] = &Attached{Network: "n", IPs: ips}
	ips, err = s.Allocate(n, "b", nil)
	if err != nil || ips[0].Address.String() != "10.0.0.100/24" {
		t.Fatalf("first range full: = %v %v, want the second range", ips, err)
	}
	// A requested address of the second range (host-local's RangeFor
	// tries every range of the set; the first one's refusal was final).
	ips, err = s.Allocate(n, "c", []netip.Addr{netip.MustParseAddr("10.0.0.101")})
	if err != nil || ips[0].Address.String() != "10.0.0.101/24" {
		t.Errorf("requested in the second range: = %v %v", ips, err)
	}
	if _, err := s.Allocate(n, "d", []netip.Addr{netip.MustParseAddr("10.0.0.50")}); err == nil {
		t.Error("requested between the ranges: no error")
	}
}

func TestPortConflict(t *testing.T) {
	s := NewState()
	any80 := PortMapping{HostPort: 80, ContainerPort: 80, Protocol: "tcp"}
	s.Attachments["a"] = &Attached{Ports: []PortMapping{any80}}
	lo80 := any80
	lo80.HostIP = netip.MustParseAddr("127.0.0.1")
	udp80 := any80
	udp80.Protocol = "udp"
	if k, _ := s.PortConflict("b", []PortMapping{lo80}); k != "a" {
		t.Error("a port on one address did not conflict with the same port on every address")
	}
	if k, _ := s.PortConflict("b", []PortMapping{udp80}); k != "" {
		t.Error("udp conflicted with tcp")
	}
	if k, _ := s.PortConflict("a", []PortMapping{any80}); k != "" {
		t.Error("an attachment conflicted with itself")
	}
}
