package bridge

import (
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/nstest"
)

func TestEnsureBridgeSetsRouteLocalnet(t *testing.T) {
	w := newWorld(t)
	outsider := nstest.New(t)
	spec := driverapi.BridgeSpec{Name: "br-local", Gateway: netip.MustParsePrefix("10.89.0.1/24"), MTU: 1500}
	if err := w.d.EnsureBridge(spec, "network:local"); err != nil {
		t.Fatal(err)
	}
	path := "/proc/sys/net/ipv4/conf/br-local/route_localnet"
	if got := readSysctlIn(t, w.host, path); got != "1" {
		t.Errorf("route_localnet on the bridge = %s, want 1", got)
	}
	for _, p := range []string{"/proc/sys/net/ipv4/conf/all/route_localnet", "/proc/sys/net/ipv4/conf/lo/route_localnet"} {
		if got := readSysctlIn(t, w.host, p); got != "0" {
			t.Errorf("%s = %s, want it untouched (0)", p, got)
		}
		if got := readSysctlIn(t, outsider, p); got != "0" {
			t.Errorf("another namespace's %s = %s, want 0", p, got)
		}
	}
}
