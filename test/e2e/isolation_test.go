package e2e

import (
	"net/netip"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestUserNetworkIsolation: containers on a user network reach each other
// and the outside, but not a container on `bridge`, nor it them.
func TestUserNetworkIsolation(t *testing.T) {
	w, _ := startWorld(t)
	w.MustBerth(t, "network", "create", "isolated")
	n, _ := inspectNetwork(t, w.Berth, "isolated")
	if n.Driver != "bridge" || len(n.IPAM.Config) != 1 || n.IPAM.Config[0].Subnet != "172.18.0.0/16" {
		t.Errorf("isolated = driver %q, IPAM %+v; want bridge on the next pool 172.18.0.0/16", n.Driver, n.IPAM.Config)
	}
	runSleeper(t, w, "alpha", "--network", "isolated")
	runSleeper(t, w, "alpha2", "--network", "isolated")
	runSleeper(t, w, "bravo")

	a, a2, b := networkIP(t, w, "alpha", "isolated"), networkIP(t, w, "alpha2", "isolated"), containerIP(t, w, "bravo")
	if legacy := inspect(t, w, "{{.NetworkSettings.IPAddress}}", "alpha"); legacy != "" {
		t.Errorf("NetworkSettings.IPAddress of a user-network container = %q, want \"\" as Docker", legacy)
	}
	checkSandbox(t, w, "alpha", a, netip.MustParsePrefix("172.18.0.0/16"), netip.MustParseAddr("172.18.0.1"))
	if !pings(t, w, "alpha", a2) {
		t.Errorf("alpha cannot ping alpha2 (%s) on the same network", a2)
	}
	if canPing(t, w, "alpha", b) {
		t.Errorf("alpha (isolated) can ping bravo (%s) on bridge", b)
	}
	if canPing(t, w, "bravo", a) {
		t.Errorf("bravo (bridge) can ping alpha (%s) on isolated", a)
	}
	if got, want := fetchAnswer(t, w, "alpha"), "you are 198.51.100.2\n"; got != want {
		t.Errorf("alpha reached the outside server as %q, want %q", got, want)
	}
}

// TestInternalNetwork: an --internal network keeps traffic between its
// containers and has no way out: no default route, nothing reaches the
// outside server.
func TestInternalNetwork(t *testing.T) {
	w, _ := startWorld(t)
	w.MustBerth(t, "network", "create", "--internal", "--subnet", "10.99.0.0/24", "sealed")
	n, _ := inspectNetwork(t, w.Berth, "sealed")
	if !n.Internal {
		t.Errorf("sealed: Internal = false, want true")
	}
	runSleeper(t, w, "xray", "--network", "sealed")
	runSleeper(t, w, "yankee", "--network", "sealed")
	x, y := networkIP(t, w, "xray", "sealed"), networkIP(t, w, "yankee", "sealed")
	checkSandbox(t, w, "xray", x, netip.MustParsePrefix("10.99.0.0/24"), netip.Addr{})
	if gws := defaultGateways(t, w.Handle(t, w.HostPath(sandboxKey(t, w, "xray")))); len(gws) != 0 {
		t.Errorf("xray on an internal network has default routes via %q", gws)
	}
	if !pings(t, w, "xray", y) {
		t.Errorf("xray cannot ping yankee (%s) on the same internal network", y)
	}
	if canPing(t, w, "xray", testworld.ServerAddr) {
		t.Errorf("xray on an internal network pinged %s", testworld.ServerAddr)
	}
	if got := fetch(t, w, "xray"); got != "" {
		t.Errorf("xray on an internal network fetched %q from the outside", got)
	}
	if seen := w.SeenSources(); len(seen) != 0 {
		t.Errorf("outside server saw %v from an internal network", seen)
	}
}
