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
	runSleeper(t, w, "a", "--network", "isolated")
	runSleeper(t, w, "a2", "--network", "isolated")
	runSleeper(t, w, "b")

	a, a2, b := networkIP(t, w, "a", "isolated"), networkIP(t, w, "a2", "isolated"), containerIP(t, w, "b")
	if legacy := inspect(t, w, "{{.NetworkSettings.IPAddress}}", "a"); legacy != "" {
		t.Errorf("NetworkSettings.IPAddress of a user-network container = %q, want \"\" as Docker", legacy)
	}
	checkSandbox(t, w, "a", a, netip.MustParsePrefix("172.18.0.0/16"), netip.MustParseAddr("172.18.0.1"))
	if !canPing(t, w, "a", a2) {
		t.Errorf("a cannot ping a2 (%s) on the same network", a2)
	}
	if canPing(t, w, "a", b) {
		t.Errorf("a (isolated) can ping b (%s) on bridge", b)
	}
	if canPing(t, w, "b", a) {
		t.Errorf("b (bridge) can ping a (%s) on isolated", a)
	}
	if got, want := fetch(t, w, "a"), "you are 198.51.100.2\n"; got != want {
		t.Errorf("a reached the outside server as %q, want %q", got, want)
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
	runSleeper(t, w, "x", "--network", "sealed")
	runSleeper(t, w, "y", "--network", "sealed")
	x, y := networkIP(t, w, "x", "sealed"), networkIP(t, w, "y", "sealed")
	checkSandbox(t, w, "x", x, netip.MustParsePrefix("10.99.0.0/24"), netip.Addr{})
	if gws := defaultGateways(t, w.Handle(t, w.HostPath(sandboxKey(t, w, "x")))); len(gws) != 0 {
		t.Errorf("x on an internal network has default routes via %q", gws)
	}
	if !canPing(t, w, "x", y) {
		t.Errorf("x cannot ping y (%s) on the same internal network", y)
	}
	if canPing(t, w, "x", testworld.ServerAddr) {
		t.Errorf("x on an internal network pinged %s", testworld.ServerAddr)
	}
	if got := fetch(t, w, "x"); got != "" {
		t.Errorf("x on an internal network fetched %q from the outside", got)
	}
	if seen := w.SeenSources(); len(seen) != 0 {
		t.Errorf("outside server saw %v from an internal network", seen)
	}
}
