package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/bench/reliability"
)

// TestLimits: an exhausted subnet, a too-long bridge name and an MTU
// outside 68-65535 are refused with errors that say what is wrong, and a
// refused run leaves nothing behind. The 1,023-endpoint limit of a Linux
// bridge is tested in internal/network (TestBridgePortLimit): a thousand
// containers are too many for every CI run.
func TestLimits(t *testing.T) {
	w, _ := startWorld(t)
	c := reliability.NewClient(w.Socket)
	// A /30 has one address for containers: .0 is the network, .1 the
	// gateway, .3 the broadcast.
	w.MustBerth(t, "network", "create", "--subnet", "10.94.0.0/30", "tiny")
	runSleeper(t, w, "first", "--network", "tiny")
	_, errOut, code := w.Berth(t, "run", "-d", "--name", "second", "--network", "tiny", "busybox", "sleep", "60")
	if code == 0 || !strings.Contains(errOut, `no available IPv4 addresses on this network's address pools: tiny (`) {
		t.Errorf("run on a full network: exit %d, %q; want the exhaustion named", code, errOut)
	}
	waitReaped(t, w) // Settled gives the kernel 5 s; the reaper may take longer on a loaded machine
	if _, leaks := reliability.Settled(t, w, c); len(leaks) > 0 {
		t.Errorf("after the refused run: %q", leaks)
	}
	w.MustBerth(t, "rm", "-f", "first")
	runSleeper(t, w, "third", "--network", "tiny") // the address came back

	for _, tc := range []struct {
		opt, want string
	}{
		{"com.docker.network.bridge.name=averyverylongname", "is not a valid interface name (1-15 characters"},
		{"com.docker.network.driver.mtu=67", "MTU 67 is outside 68-65535"},
		{"com.docker.network.driver.mtu=65536", "MTU 65536 is outside 68-65535"},
	} {
		_, errOut, code := w.Berth(t, "network", "create", "-o", tc.opt, "limited")
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("network create -o %s: exit %d, %q; want %q", tc.opt, code, errOut, tc.want)
		}
	}
	for _, mtu := range []string{"68", "65535"} {
		w.MustBerth(t, "network", "create", "-o", "com.docker.network.driver.mtu="+mtu, "mtu"+mtu)
		w.MustBerth(t, "network", "rm", "mtu"+mtu)
	}
	w.MustBerth(t, "network", "create", "-o", "com.docker.network.bridge.name=fifteen-chars-x", "longest")
	w.MustBerth(t, "network", "rm", "longest")
}
