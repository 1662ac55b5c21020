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
		{"ipv6 subnet", "fd00::/64", "", "", "only IPv4"},
		{"mapped ipv4 subnet", "::ffff:10.0.0.0/104", "", "", "only IPv4"},
		{"not canonical", "10.1.0.5/16", "", "", "invalid subnet 10.1.0.5/16: it should be 10.1.0.0/16"},
		{"slash 32", "10.1.0.5/32", "", "", "/32"},
		{"range not canonical", "10.1.0.0/16", "10.1.2.3/24", "", "invalid ip-range 10.1.2.3/24: it should be 10.1.2.0/24"},
		{"range bigger than subnet", "10.1.0.0/16", "10.0.0.0/8", "", "bigger than its subnet"},
		{"range outside subnet", "10.1.0.0/16", "10.2.0.0/24", "", "not inside subnet 10.1.0.0/16"},
		{"range ipv6", "10.1.0.0/16", "fd00::/64", "", "is IPv4"},
		{"gateway outside", "10.1.0.0/16", "", "10.2.0.1", "invalid gateway 10.2.0.1: it is not inside subnet 10.1.0.0/16"},
		{"gateway network address", "10.1.0.0/16", "", "10.1.0.0", "network address"},
		{"gateway broadcast", "10.1.0.0/16", "", "10.1.255.255", "broadcast address"},
		{"gateway ipv6", "10.1.0.0/16", "", "fd00::1", "is IPv4"},
		{"gateway mapped", "10.1.0.0/16", "", "::ffff:10.1.0.1", "is IPv4"},
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
		{"fd00::/64", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := DefaultGateway(pfx(tt.subnet)); got != addr(tt.want) {
			t.Errorf("DefaultGateway(%q) = %v, want %q", tt.subnet, got, tt.want)
		}
	}
}
