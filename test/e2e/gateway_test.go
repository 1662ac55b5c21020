package e2e

import (
	"strings"
	"testing"
)

// TestGatewayFollowsDockerOrder: as Docker 28 chooses a container's
// gateway (libnetwork's Endpoint.Less), a connect to a network that
// outranks the one giving the default route — by gw-priority, then by
// name — moves the route and the published ports to it, and a
// disconnect of the gateway moves them to the next; docker inspect shows
// the priority; and docker run --network name=N,gw-priority=P chooses at
// start.
func TestGatewayFollowsDockerOrder(t *testing.T) {
	w := startPortWorld(t)
	for _, n := range []string{"alpha", "zeta"} {
		if _, errOut, code := w.Docker(t, "network", "create", n); code != 0 {
			t.Fatalf("docker network create %s: %s", n, errOut)
		}
	}
	gw := func(n string) string {
		return strings.TrimSpace(mustDocker(t, w.World, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", n))
	}
	defaultVia := func(name, network string) {
		t.Helper()
		want := "default via " + gw(network) + " "
		if out := w.MustBerth(t, "exec", name, "ip", "route", "show", "default"); !strings.HasPrefix(out, want) || strings.Count(out, "default") != 1 {
			t.Errorf("%s's default route = %q, want one %q… (%s's)", name, out, want, network)
		}
	}
	w.dockerPeer(t, "g1", "--network", "zeta", "-p", "8097:80")
	defaultVia("g1", "zeta")

	// "alpha" sorts before "zeta": it becomes the gateway, and the port
	// moves with it and still answers from outside.
	mustDocker(t, w.World, "network", "connect", "alpha", "g1")
	defaultVia("g1", "alpha")
	if got := w.dockerPort(t, "g1"); got != "80/tcp -> 0.0.0.0:8097\n80/tcp -> [::]:8097" {
		t.Errorf("docker port g1 after connect = %q", got)
	}
	w.reach(t, "outside", "tcp", hostPort(8097), outsideAddr)

	// A priority outranks the names.
	mustDocker(t, w.World, "network", "connect", "--gw-priority", "10", "bridge", "g1")
	defaultVia("g1", "bridge")
	w.reach(t, "outside", "tcp", hostPort(8097), outsideAddr)
	if got := strings.TrimSpace(mustDocker(t, w.World, "inspect", "-f", `{{(index .NetworkSettings.Networks "bridge").GwPriority}} {{(index .NetworkSettings.Networks "alpha").GwPriority}}`, "g1")); got != "10 0" {
		t.Errorf("GwPriority of bridge and alpha = %q, want 10 0", got)
	}
	// A connect that does not outrank changes nothing.
	mustDocker(t, w.World, "network", "create", "aaa")
	mustDocker(t, w.World, "network", "connect", "aaa", "g1")
	defaultVia("g1", "bridge")

	// The gateway leaves: the next ("aaa") takes route and port.
	mustDocker(t, w.World, "network", "disconnect", "bridge", "g1")
	defaultVia("g1", "aaa")
	w.reach(t, "outside", "tcp", hostPort(8097), outsideAddr)

	// At start, the priority decides among the networks given to run.
	w.dockerPeer(t, "g2", "--network", "name=zeta,gw-priority=1", "--network", "alpha", "-p", "8098:80")
	defaultVia("g2", "zeta")
	w.reach(t, "outside", "tcp", hostPort(8098), outsideAddr)
	mustDocker(t, w.World, "restart", "-t", "0", "g2")
	defaultVia("g2", "zeta")
}
