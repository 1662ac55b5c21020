package daemon

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/berth-net/berth/internal/network"
)

func TestHostRouteConversion(t *testing.T) {
	_, vpn, _ := net.ParseCIDR("172.18.0.0/24")
	for _, tc := range []struct {
		name string
		in   netlink.Route
		dev  string
		want network.HostRoute
	}{
		{"prefix", netlink.Route{Dst: vpn, Table: 254}, "eth0",
			network.HostRoute{Dst: netip.MustParsePrefix("172.18.0.0/24"), Dev: "eth0", Table: 254}},
		{"default route", netlink.Route{Table: 100}, "",
			network.HostRoute{Dst: netip.MustParsePrefix("0.0.0.0/0"), Table: 100}},
		{"mapped address", netlink.Route{Dst: &net.IPNet{IP: net.ParseIP("10.1.0.0"), Mask: net.CIDRMask(16, 32)}}, "tun0",
			network.HostRoute{Dst: netip.MustParsePrefix("10.1.0.0/16"), Dev: "tun0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostRoute(tc.in, tc.dev); got != tc.want {
				t.Errorf("hostRoute = %+v, want %+v", got, tc.want)
			}
		})
	}
}
