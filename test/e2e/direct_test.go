package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestDirectRouting: Docker 28's two ways past the direct-access drop,
// driven by the docker CLI. The outside routes both subnets through the
// host. A network that trusts the host's eth0 (trusted_host_interfaces)
// lets it reach a published port's container side, with its own source
// address, and no unpublished port; a network that trusts nothing stays
// closed until the daemon starts with --allow-direct-routing, and closes
// again at a start without it; a container of another network never
// reaches it so. The published ports answer on the host's address
// throughout, and a container that goes takes its container side with it.
func TestDirectRouting(t *testing.T) {
	w := startPortWorld(t)
	if _, errOut, code := w.Docker(t, "network", "create", "-o", "com.docker.network.bridge.trusted_host_interfaces=eth0:a/b", "bad"); code == 0 || !strings.Contains(errOut, `trusted host interface "a/b"`) {
		t.Errorf("a trusted interface name with a '/': exit %d, %q", code, errOut)
	}
	mustDocker(t, w.World, "network", "create", "--subnet", "10.77.0.0/24", "-o", "com.docker.network.bridge.trusted_host_interfaces=eth9:eth0", "trusting")
	mustDocker(t, w.World, "network", "create", "--subnet", "10.78.0.0/24", "plain")
	if got := networkField(t, w, `{{index .Options "com.docker.network.bridge.trusted_host_interfaces"}}`, "trusting"); got != "eth9:eth0" {
		t.Errorf("inspect shows trusted_host_interfaces %q", got)
	}
	w.runPeer(t, "tw", "tcp:80,tcp:81", "--network", "trusting", "-p", "8090:80")
	w.runPeer(t, "pw", "tcp:80,tcp:81", "--network", "plain", "-p", "8091:80")
	for _, subnet := range []string{"10.77.0.0/24", "10.78.0.0/24"} {
		if _, errOut, code := w.InOutside(t, "ip", "route", "add", subnet, "via", testworld.HostAddr.String()); code != 0 {
			t.Fatalf("route %s through the host: %s", subnet, errOut)
		}
	}
	tw := networkIP(t, w.World, "tw", "trusting").String()
	pw := networkIP(t, w.World, "pw", "plain").String()
	open := func(stage string, trusting, plain bool) {
		t.Helper()
		for _, c := range []struct {
			addr string
			open bool
		}{{tw, trusting}, {pw, plain}} {
			if c.open {
				w.reach(t, "outside", "tcp", c.addr+":80", outsideAddr)
			} else {
				w.unreachable(t, "outside", "tcp", c.addr+":80")
			}
			w.unreachable(t, "outside", "tcp", c.addr+":81")
		}
		w.reach(t, "outside", "tcp", hostPort(8090), outsideAddr)
		w.reach(t, "outside", "tcp", hostPort(8091), outsideAddr)
		if t.Failed() {
			t.Fatalf("%s: see above", stage)
		}
	}
	open("trusted eth0", true, false)

	w.d.Stop()
	w.d = w.Start(t, "--allow-direct-routing")
	open("--allow-direct-routing", true, true)
	// Not from another of berth's networks: Docker 28's isolation.
	w.unreachable(t, "container:tw", "tcp", pw+":80")

	w.d.Stop()
	w.d = w.Start(t)
	open("restarted without --allow-direct-routing", true, false)

	mustDocker(t, w.World, "rm", "-f", "tw")
	if set := w.MustInHost(t, "nft", "list", "set", "inet", "berth", "ports_routed"); strings.Contains(set, tw) {
		t.Errorf("the removed container's side is still in ports_routed:\n%s", set)
	}
}

// TestBridgeAcceptFwMark: dockerd 29's --bridge-accept-fwmark: what
// another firewall of the host marks (a VPN's or a mesh's; here a table
// of the test's, marking what comes in on eth0) reaches a container's
// port that is not published, routed straight to it through an interface
// the network trusts; unmarked, it is dropped as ever.
func TestBridgeAcceptFwMark(t *testing.T) {
	w := startPortWorld(t)
	w.d.Stop()
	w.d = w.Start(t, "--bridge-accept-fwmark", "0x2/0x3")
	mustDocker(t, w.World, "network", "create", "--subnet", "10.79.0.0/24", "-o", "com.docker.network.bridge.trusted_host_interfaces=eth0", "marked")
	w.runPeer(t, "mk", "tcp:81", "--network", "marked")
	if _, errOut, code := w.InOutside(t, "ip", "route", "add", "10.79.0.0/24", "via", testworld.HostAddr.String()); code != 0 {
		t.Fatalf("route through the host: %s", errOut)
	}
	mk := networkIP(t, w.World, "mk", "marked").String()
	w.unreachable(t, "outside", "tcp", mk+":81")

	w.MustInHost(t, "nft", "add", "table", "inet", "test-mark")
	w.MustInHost(t, "nft", "add", "chain", "inet", "test-mark", "pre", "{ type filter hook prerouting priority raw; }")
	w.MustInHost(t, "nft", "add", "rule", "inet", "test-mark", "pre", "iifname", "eth0", "meta", "mark", "set", "0xe")
	w.reach(t, "outside", "tcp", mk+":81", outsideAddr)
	br := "br-" + networkField(t, w, "{{.Id}}", "marked")[:12]
	if chain := w.MustInHost(t, "nft", "list", "chain", "inet", "berth", "fwd_in__"+br); !strings.Contains(chain, `meta mark & 0x00000003 == 0x00000002 counter`) {
		t.Errorf("the network's inbound chain:\n%s", chain)
	}
}
