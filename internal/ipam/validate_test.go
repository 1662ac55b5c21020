package ipam

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/errdefs"
)

func pfx(s string) netip.Prefix {
	if s == "" {
		return netip.Prefix{}
	}
	return netip.MustParsePrefix(s)
}

func addr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func TestValidateRequestBad(t *testing.T) {
	tests := []struct {
		name                     string
		subnet, ipRange, gateway string
		want                     string // a part of the message
	}{
		{"gateway without subnet", "", "", "10.0.0.1", "needs a subnet"},
		{"ip-range without subnet", "", "10.0.0.0/24", "", "needs a subnet"},
		{"mapped ipv4 subnet", "::ffff:10.0.0.0/104", "", "", "'::ffff:10.0.0.0/104' is not a valid IPv6 subnet"},
		{"link-local fe80::/64", "fe80::/64", "", "", "berth does not hand out link-local addresses"},
		{"not canonical", "10.1.0.5/16", "", "", "invalid subnet 10.1.0.5/16: it should be 10.1.0.0/16"},
		{"slash 32", "10.1.0.5/32", "", "", "/32"},
		{"range not canonical", "10.1.0.0/16", "10.1.2.3/24", "", "invalid ip-range 10.1.2.3/24: it should be 10.1.2.0/24"},
		{"range bigger than subnet", "10.1.0.0/16", "10.0.0.0/8", "", "bigger than its subnet"},
		{"range outside subnet", "10.1.0.0/16", "10.2.0.0/24", "", "not inside subnet 10.1.0.0/16"},
		{"range ipv6", "10.1.0.0/16", "fd00::/64", "", "invalid ip-range fd00::/64: parent subnet is an IPv4 block"},
		{"range mapped", "10.1.0.0/16", "::ffff:10.1.0.0/120", "", "parent subnet is an IPv4 block"},
		{"gateway outside", "10.1.0.0/16", "", "10.2.0.1", "invalid gateway 10.2.0.1: it is not inside subnet 10.1.0.0/16"},
		{"gateway network address", "10.1.0.0/16", "", "10.1.0.0", "network address"},
		{"gateway broadcast", "10.1.0.0/16", "", "10.1.255.255", "broadcast address"},
		{"gateway ipv6", "10.1.0.0/16", "", "fd00::1", "invalid gateway fd00::1: parent subnet is an IPv4 block"},
		{"gateway mapped", "10.1.0.0/16", "", "::ffff:10.1.0.1", "parent subnet is an IPv4 block"},

		{"ipv6 not canonical", "fd00::5/64", "", "", "invalid subnet fd00::5/64: it should be fd00::/64"},
		{"ipv6 multicast", "ff05::/64", "", "", "multicast subnet 'ff05::/64' is not allowed"},
		{"ipv6 inside link-local", "fe80::/80", "", "", "'fe80::/80' clashes with the Link-Local prefix 'fe80::/64'"},
		{"ipv6 around link-local", "fe80::/10", "", "", "clashes with the Link-Local prefix"},
		{"ipv6 slash 127", "fd00::/127", "", "", "a /127 has no address left"},
		{"ipv6 slash 128", "fd00::1/128", "", "", "use /126 or shorter"},
		{"ipv6 range ipv4", "fd00::/64", "10.0.0.0/24", "", "invalid ip-range 10.0.0.0/24: parent subnet is an IPv6 block"},
		{"ipv6 range not canonical", "fd00::/64", "fd00::1:0/96", "", "invalid ip-range fd00::1:0/96: it should be fd00::/96"},
		{"ipv6 range bigger", "fd00::/64", "fd00::/48", "", "bigger than its subnet fd00::/64"},
		{"ipv6 range outside", "fd00::/64", "fd01::/80", "", "not inside subnet fd00::/64"},
		{"ipv6 gateway ipv4", "fd00::/64", "", "10.0.0.1", "invalid gateway 10.0.0.1: parent subnet is an IPv6 block"},
		{"ipv6 gateway mapped", "fd00::/64", "", "::ffff:10.0.0.1", "not inside subnet fd00::/64"},
		{"ipv6 gateway outside", "fd00::/64", "", "fd01::1", "invalid gateway fd01::1: it is not inside subnet fd00::/64"},
		{"ipv6 gateway anycast", "fd00::/64", "", "fd00::", "failed to allocate gateway (fd00::): Address already in use: it is the subnet-router anycast address of subnet fd00::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRequest(pfx(tt.subnet), pfx(tt.ipRange), addr(tt.gateway))
			if !errdefs.Is(err, errdefs.KindInvalid) {
				t.Fatalf("err = %v (kind %v), want an Invalid error", err, errdefs.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateRequestGood(t *testing.T) {
	tests := []struct{ subnet, ipRange, gateway string }{
		{"", "", ""},
		{"10.1.0.0/16", "", ""},
		{"10.1.0.0/16", "10.1.5.0/24", "10.1.0.254"},
		{"10.1.0.0/16", "10.1.0.0/16", "10.1.0.1"},
		{"10.1.0.0/16", "10.1.0.7/32", ""},
		{"10.1.0.0/24", "", "10.1.0.254"},
		{"10.1.0.0/31", "", "10.1.0.0"},
		{"10.1.0.0/31", "", "10.1.0.1"},
		{"10.0.0.0/8", "", ""},
		{"fd00::/64", "", ""},
		{"fd00::/48", "fd00:0:0:7::/64", "fd00::1"},
		{"fd00::/64", "fd00::100/120", "fd00::ffff:ffff:ffff:ffff"}, // no broadcast in IPv6
		{"2001:db8::/32", "", "2001:db8::1"},
		{"fd00::/126", "", "fd00::3"},
		{"fd00::/64", "fd00::5/128", ""},
	}
	for _, tt := range tests {
		if err := ValidateRequest(pfx(tt.subnet), pfx(tt.ipRange), addr(tt.gateway)); err != nil {
			t.Errorf("ValidateRequest(%q, %q, %q) = %v, want nil", tt.subnet, tt.ipRange, tt.gateway, err)
		}
	}
}

func TestDefaultGateway(t *testing.T) {
	tests := []struct{ subnet, want string }{
		{"172.17.0.0/16", "172.17.0.1"},
		{"192.168.16.0/20", "192.168.16.1"},
		{"10.1.0.0/30", "10.1.0.1"},
		{"10.1.0.0/31", "10.1.0.0"},
		{"10.1.0.9/32", "10.1.0.9"},
		{"10.1.0.5/16", "10.1.0.1"},
		{"fd00::/64", "fd00::1"},
		{"fd00::5/64", "fd00::1"},
		{"2001:db8::/32", "2001:db8::1"},
		{"fd00::/127", "fd00::1"},
		{"fd00::/128", ""},
		{"::ffff:10.0.0.0/104", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := DefaultGateway(pfx(tt.subnet)); got != addr(tt.want) {
			t.Errorf("DefaultGateway(%q) = %v, want %q", tt.subnet, got, tt.want)
		}
	}
}
