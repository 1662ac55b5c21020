package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
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

// TestPortsPerFamilyGateway: a container's IPv4 and IPv6 default routes
// can come from different networks, and each family's published ports
// follow its own gateway, as Docker 28's endpoints with noProxy6To4 and
// Docker 29.4.1's gateway choice:
//   - on an IPv4-only network alone, its ports' [::] sides reach it
//     through the userland proxy (the container sees the network's
//     gateway as the client);
//   - an IPv6-only network connected becomes the IPv6 gateway: the [::]
//     sides are DNATed to the container's IPv6 address there (it sees the
//     client's own address), on the same host ports, an ephemeral one
//     included, and the IPv4 sides stay as they were; disconnected, the
//     proxy takes them back;
//   - an IPv4-only network of higher gw-priority beside a dual-stack one
//     keeps the IPv4 route and ports, and the dual-stack one gives the
//     IPv6 route and takes the IPv6 ports (Docker 28 gave both to the
//     dual-stack network), and so after a daemon restart.
func TestPortsPerFamilyGateway(t *testing.T) {
	w := startPortWorld(t)
	mustDocker(t, w.World, "network", "create", "n4")
	mustDocker(t, w.World, "network", "create", "--ipv6", "--ipv4=false", "--subnet", "fd00:e29::/64", "n6")
	mustDocker(t, w.World, "network", "create", "--ipv6", "--subnet", "fd00:e28::/64", "d46")
	n4gw := strings.TrimSpace(mustDocker(t, w.World, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", "n4"))
	host6 := "[" + testworld.HostAddr6.String() + "]:8099"
	routes := func(name, want4, want6 string) {
		t.Helper()
		got4 := strings.Fields(w.MustBerth(t, "exec", name, "ip", "-4", "route", "show", "default"))
		got6 := strings.Fields(w.MustBerth(t, "exec", name, "ip", "-6", "route", "show", "default"))
		if len(got4) < 3 || got4[2] != want4 || len(got6) < 3 || got6[2] != want6 {
			t.Errorf("%s's default routes: %q and %q, want via %s and via %s", name, got4, got6, want4, want6)
		}
	}

	w.dockerPeer(t, "split", "--network", "n4", "-p", "8099:80", "-p", "80")
	ports := w.dockerPort(t, "split")
	lines := strings.Split(ports, "\n")
	if len(lines) != 4 {
		t.Fatalf("docker port split = %q, want four lines", ports)
	}
	w.reach(t, "outside", "tcp", host6, n4gw) // the proxy, from n4's gateway
	w.reach(t, "outside", "tcp", hostPort(8099), outsideAddr)

	mustDocker(t, w.World, "network", "connect", "n6", "split")
	routes("split", n4gw, "fd00:e29::1")
	if got := w.dockerPort(t, "split"); got != ports {
		t.Errorf("docker port split with n6 = %q, want the same ports as before, %q", got, ports)
	}
	w.reach(t, "outside", "tcp", host6, testworld.GatewayAddr6.String()) // DNAT on n6
	w.reach(t, "outside", "tcp", hostPort(8099), outsideAddr)
	eph := lines[len(lines)-1][strings.LastIndex(lines[len(lines)-1], ":")+1:]
	w.reach(t, "outside", "tcp", "["+testworld.HostAddr6.String()+"]:"+eph, testworld.GatewayAddr6.String())

	mustDocker(t, w.World, "network", "disconnect", "n6", "split")
	if got := w.dockerPort(t, "split"); got != ports {
		t.Errorf("docker port split after n6 left = %q, want %q", got, ports)
	}
	w.reach(t, "outside", "tcp", host6, n4gw)
	w.reach(t, "outside", "tcp", hostPort(8099), outsideAddr)
	mustDocker(t, w.World, "rm", "-f", "split")

	w.dockerPeer(t, "pri", "--network", "name=n4,gw-priority=10", "-p", "8099:80")
	mustDocker(t, w.World, "network", "connect", "d46", "pri")
	routes("pri", n4gw, "fd00:e28::1")
	w.reach(t, "outside", "tcp", host6, testworld.GatewayAddr6.String()) // DNAT on d46
	w.reach(t, "outside", "tcp", hostPort(8099), outsideAddr)
	if got := w.dockerPort(t, "pri"); got != "80/tcp -> 0.0.0.0:8099\n80/tcp -> [::]:8099" {
		t.Errorf("docker port pri = %q", got)
	}

	// A daemon restart keeps each family where it is.
	w.d.Stop()
	w.Start(t)
	routes("pri", n4gw, "fd00:e28::1")
	w.reach(t, "outside", "tcp", host6, testworld.GatewayAddr6.String())
	w.reach(t, "outside", "tcp", hostPort(8099), outsideAddr)
	w.reach(t, "host", "tcp", "[::1]:8099", "")
}
