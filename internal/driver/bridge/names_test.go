package bridge

import (
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
)

func TestRandomMACIsUnicastAndLocallyAdministered(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		mac := RandomMAC()
		if len(mac) != 6 {
			t.Fatalf("RandomMAC() = %v, want 6 bytes", mac)
		}
		if mac[0]&0x01 != 0 || mac[0]&0x02 == 0 {
			t.Fatalf("RandomMAC() = %v: first byte %#02x must have bit 0 clear and bit 1 set", mac, mac[0])
		}
		if err := validateMAC(mac); err != nil {
			t.Fatalf("RandomMAC() = %v fails validation: %v", mac, err)
		}
		seen[mac.String()] = true
	}
	if len(seen) < 990 {
		t.Errorf("1000 RandomMAC() calls gave only %d distinct addresses", len(seen))
	}
}

func TestRandomHostIfNameIsVethAnd7Hex(t *testing.T) {
	re := regexp.MustCompile(`^veth[0-9a-f]{7}$`)
	for range 1000 {
		name := RandomHostIfName()
		if !re.MatchString(name) {
			t.Fatalf("RandomHostIfName() = %q, want veth + 7 hex characters", name)
		}
		if err := ValidateIfName(name); err != nil {
			t.Fatalf("RandomHostIfName() = %q fails validation: %v", name, err)
		}
	}
}

func TestValidateIfNameRejectsBadNames(t *testing.T) {
	for _, name := range []string{
		"", strings.Repeat("a", 16), ".", "..", "a/b", "a:b", "a b", "tab\t", "nl\n",
		"\x00x", "\x7f", "all", "q%d",
	} {
		err := ValidateIfName(name)
		if err == nil {
			t.Errorf("ValidateIfName(%q) = nil, want an error", name)
			continue
		}
		if !errdefs.Is(err, errdefs.KindInvalid) {
			t.Errorf("ValidateIfName(%q) = %v, want an invalid-input error", name, err)
		}
	}
	for _, name := range []string{"eth0", "berth0", "br-0123456789a", strings.Repeat("a", 15), "veth1234abc"} {
		if err := ValidateIfName(name); err != nil {
			t.Errorf("ValidateIfName(%q) = %v, want nil", name, err)
		}
	}
}

func goodEndpointSpec() driverapi.EndpointSpec {
	return driverapi.EndpointSpec{
		Bridge:     "berth0",
		HostIfName: "veth1234abc",
		IfName:     "eth0",
		MAC:        net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55},
		Address:    netip.MustParsePrefix("172.17.0.2/16"),
		Gateway:    netip.MustParseAddr("172.17.0.1"),
		MTU:        1500,
		Owner:      "endpoint:abc",
	}
}

// goodDualStackSpec is goodEndpointSpec on a network with IPv6, as its
// sandbox's gateway endpoint.
func goodDualStackSpec() driverapi.EndpointSpec {
	s := goodEndpointSpec()
	s.Address6 = netip.MustParsePrefix("fd00::2/64")
	s.Gateway6 = netip.MustParseAddr("fd00::1")
	return s
}

func TestValidateEndpointSpecRejectsBadInput(t *testing.T) {
	if err := validateEndpointSpec(goodEndpointSpec()); err != nil {
		t.Fatalf("good spec: %v", err)
	}
	if err := validateEndpointSpec(goodDualStackSpec()); err != nil {
		t.Fatalf("good dual-stack spec: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*driverapi.EndpointSpec)
		want   string // a fragment of the message
	}{
		{"no bridge", func(s *driverapi.EndpointSpec) { s.Bridge = "" }, "bridge"},
		{"long host name", func(s *driverapi.EndpointSpec) { s.HostIfName = "veth0123456789ab" }, "is not a valid interface name"},
		{"slash in ifname", func(s *driverapi.EndpointSpec) { s.IfName = "eth/0" }, "'/'"},
		{"space in ifname", func(s *driverapi.EndpointSpec) { s.IfName = "eth 0" }, "is not a valid interface name"},
		{"no MAC", func(s *driverapi.EndpointSpec) { s.MAC = nil }, "6-byte"},
		{"short MAC", func(s *driverapi.EndpointSpec) { s.MAC = s.MAC[:4] }, "6-byte"},
		{"multicast MAC", func(s *driverapi.EndpointSpec) { s.MAC = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} }, "multicast"},
		{"zero MAC", func(s *driverapi.EndpointSpec) { s.MAC = make(net.HardwareAddr, 6) }, "all zeros"},
		{"gateway without an address", func(s *driverapi.EndpointSpec) { s.Address = netip.Prefix{} }, "without an IPv4 address"},
		{"no address of either family", func(s *driverapi.EndpointSpec) {
			s.Address, s.Gateway, s.Address6, s.Gateway6 = netip.Prefix{}, netip.Addr{}, netip.Prefix{}, netip.Addr{}
		}, "no address of either family"},
		{"IPv6 address", func(s *driverapi.EndpointSpec) { s.Address = netip.MustParsePrefix("fd00::2/64") }, "not an IPv4 prefix"},
		{"IPv6 gateway", func(s *driverapi.EndpointSpec) { s.Gateway = netip.MustParseAddr("fd00::1") }, "not an IPv4 address"},
		{"gateway outside", func(s *driverapi.EndpointSpec) { s.Gateway = netip.MustParseAddr("10.0.0.1") }, "outside"},
		{"gateway is self", func(s *driverapi.EndpointSpec) { s.Gateway = s.Address.Addr() }, "own address"},
		{"/32 with gateway", func(s *driverapi.EndpointSpec) { s.Address = netip.MustParsePrefix("172.17.0.2/32") }, "no room"},
		{"IPv4 as Address6", func(s *driverapi.EndpointSpec) { s.Address6 = netip.MustParsePrefix("10.1.0.2/24") }, "not a routable IPv6"},
		{"IPv4-mapped Address6", func(s *driverapi.EndpointSpec) { s.Address6 = netip.MustParsePrefix("::ffff:10.1.0.2/120") }, "not a routable IPv6"},
		{"link-local Address6", func(s *driverapi.EndpointSpec) { s.Address6 = netip.MustParsePrefix("fe80::2/64") }, "not a routable IPv6"},
		{"Gateway6 without Address6", func(s *driverapi.EndpointSpec) { s.Address6 = netip.Prefix{} }, "without an IPv6 address"},
		{"IPv4 as Gateway6", func(s *driverapi.EndpointSpec) { s.Gateway6 = netip.MustParseAddr("172.17.0.1") }, "not an IPv6 unicast"},
		{"Gateway6 outside", func(s *driverapi.EndpointSpec) { s.Gateway6 = netip.MustParseAddr("fd01::1") }, "outside"},
		{"Gateway6 is self", func(s *driverapi.EndpointSpec) { s.Gateway6 = s.Address6.Addr() }, "own address"},
		{"IPv6 with MTU 1279", func(s *driverapi.EndpointSpec) { s.MTU = 1279 }, "below the 1280"},
		{"MTU too small", func(s *driverapi.EndpointSpec) { s.MTU = 67 }, "MTU 67"},
		{"MTU too big", func(s *driverapi.EndpointSpec) { s.MTU = 65536 }, "MTU 65536"},
		{"no owner", func(s *driverapi.EndpointSpec) { s.Owner = "" }, "owner"},
		{"huge owner", func(s *driverapi.EndpointSpec) { s.Owner = strings.Repeat("x", 250) }, "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := goodDualStackSpec() // a dual-stack spec is an IPv4 one too
			tt.mutate(&spec)
			err := validateEndpointSpec(spec)
			if err == nil {
				t.Fatalf("validateEndpointSpec = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("validateEndpointSpec = %v (kind %v), want an invalid-input error containing %q", err, errdefs.KindOf(err), tt.want)
			}
		})
	}
}

func TestValidateBridgeSpecRejectsBadInput(t *testing.T) {
	good := driverapi.BridgeSpec{Name: "berth0", Gateway: netip.MustParsePrefix("172.17.0.1/16"), MTU: 1500}
	if err := validateBridgeSpec(good, "network:x"); err != nil {
		t.Fatalf("good spec: %v", err)
	}
	dual := good
	dual.Gateway6 = netip.MustParsePrefix("fd00::1/64")
	if err := validateBridgeSpec(dual, "network:x"); err != nil {
		t.Fatalf("good dual-stack spec: %v", err)
	}
	only6 := dual
	only6.Gateway = netip.Prefix{}
	if err := validateBridgeSpec(only6, "network:x"); err != nil {
		t.Fatalf("good IPv6-only spec: %v", err)
	}
	with6 := func(gw6 string, mtu int) driverapi.BridgeSpec {
		s := dual
		s.Gateway6, s.MTU = netip.MustParsePrefix(gw6), mtu
		return s
	}
	tests := []struct {
		name  string
		spec  driverapi.BridgeSpec
		owner string
	}{
		{"no name", driverapi.BridgeSpec{Gateway: good.Gateway}, "network:x"},
		{"long name", driverapi.BridgeSpec{Name: "berth0123456789a", Gateway: good.Gateway}, "network:x"},
		{"no gateway of either family", driverapi.BridgeSpec{Name: "berth0"}, "network:x"},
		{"IPv6 gateway", driverapi.BridgeSpec{Name: "berth0", Gateway: netip.MustParsePrefix("fd00::1/64")}, "network:x"},
		{"bad MTU", driverapi.BridgeSpec{Name: "berth0", Gateway: good.Gateway, MTU: 10}, "network:x"},
		{"IPv4 as Gateway6", with6("10.1.0.1/24", 1500), "network:x"},
		{"IPv4-mapped Gateway6", with6("::ffff:10.1.0.1/120", 1500), "network:x"},
		{"multicast Gateway6", with6("ff02::1/64", 1500), "network:x"},
		{"IPv6 with MTU 1279", with6("fd00::1/64", 1279), "network:x"},
		{"no owner", good, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateBridgeSpec(tt.spec, tt.owner); !errdefs.Is(err, errdefs.KindInvalid) {
				t.Errorf("validateBridgeSpec = %v, want an invalid-input error", err)
			}
		})
	}
}

func TestOwnerAliasRoundTrips(t *testing.T) {
	owner, ok := ownerFromAlias(ownerAlias("network:abc"))
	if !ok || owner != "network:abc" {
		t.Errorf("ownerFromAlias(ownerAlias(network:abc)) = %q, %v", owner, ok)
	}
	for _, alias := range []string{"", "berth", "docker:x", "Berth:x"} {
		if _, ok := ownerFromAlias(alias); ok {
			t.Errorf("ownerFromAlias(%q) claims berth owns it", alias)
		}
	}
}

func TestGARPPayloadIsAnARPAnnouncement(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}
	got := garpPayload(mac, netip.MustParseAddr("172.17.0.2"))
	want := []byte{
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet/IPv4, request
		0x02, 0x42, 0xac, 0x11, 0x00, 0x02, 172, 17, 0, 2, // sender
		0, 0, 0, 0, 0, 0, 172, 17, 0, 2, // target: same address
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("garpPayload (-want +got):\n%s", diff)
	}
}

func TestRoutePrefixSkipsDefaults(t *testing.T) {
	tests := []struct {
		in   *net.IPNet
		want netip.Prefix
		ok   bool
	}{
		{nil, netip.Prefix{}, false},
		{&net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, netip.Prefix{}, false},
		{&net.IPNet{IP: net.ParseIP("10.1.2.0"), Mask: net.CIDRMask(24, 32)}, netip.MustParsePrefix("10.1.2.0/24"), true},
		{&net.IPNet{IP: net.ParseIP("10.1.2.3").To4(), Mask: net.CIDRMask(16, 32)}, netip.MustParsePrefix("10.1.0.0/16"), true},
	}
	for _, tt := range tests {
		got, ok := routePrefix(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("routePrefix(%v) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestLinkLocalIsTheKernelsEUI64(t *testing.T) {
	for mac, want := range map[string]string{
		"02:42:ac:11:00:02": "fe80::42:acff:fe11:2/64", // what Docker's containers showed
		"00:00:5e:00:53:01": "fe80::200:5eff:fe00:5301/64",
	} {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			t.Fatal(err)
		}
		if got := linkLocal(hw); got != netip.MustParsePrefix(want) {
			t.Errorf("linkLocal(%s) = %s, want %s", mac, got, want)
		}
	}
}
