package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// Docker 28's gateway modes, per address family, through the docker CLI:
// -o com.docker.network.bridge.gateway_mode_ipv4 / _ipv6.

const (
	optGwMode4 = "com.docker.network.bridge.gateway_mode_ipv4"
	optGwMode6 = "com.docker.network.bridge.gateway_mode_ipv6"
)

// routeToSubnet routes subnet from the outside world through the host,
// as a router in front of a routed network would.
func routeToSubnet(t *testing.T, w *portWorld, subnet string) {
	t.Helper()
	via := testworld.HostAddr.String()
	if strings.Contains(subnet, ":") {
		via = testworld.HostAddr6.String()
	}
	if _, errOut, code := w.InOutside(t, "ip", "route", "add", subnet, "via", via); code != 0 {
		t.Fatalf("route %s through the host: %s", subnet, errOut)
	}
}

// fetchFrom is what the outside server answers the container name over
// HTTP at addr ("you are SOURCE"), "" if nothing.
func fetchFrom(t *testing.T, w *portWorld, name, addr string) string {
	t.Helper()
	out, _, _ := w.Docker(t, "exec", name, "timeout", "10", "wget", "-q", "-O", "-", "http://"+addr+"/")
	return strings.TrimSpace(out)
}

// TestGatewayModeRoutedIPv6: a dual-stack network routed for IPv6. The
// container's port answers the outside at the container's own IPv6
// address with the client's own source, an unpublished port does not,
// the container reaches the outside with its own address (no
// masquerade), and its published port holds no IPv6 host port ([::]:0,
// as Docker shows it). IPv4 on the same network is NATed as before.
func TestGatewayModeRoutedIPv6(t *testing.T) {
	w := startPortWorld(t)
	mustDocker(t, w.World, "network", "create", "--ipv6", "--subnet", "172.28.5.0/24", "--subnet", "fd00:e2b::/64",
		"-o", optGwMode6+"=routed", "gwr")
	if got := strings.TrimSpace(mustDocker(t, w.World, "network", "inspect", "-f", `{{index .Options "`+optGwMode6+`"}}`, "gwr")); got != "routed" {
		t.Errorf("inspect Options %s = %q, want routed", optGwMode6, got)
	}
	w.dockerPeer(t, "r6", "--network", "gwr", "-p", "8097:80")
	if _, errOut, code := w.Docker(t, "exec", "-d", "r6", "/peer", "-listen", "tcp:81"); code != 0 {
		t.Fatalf("listen on 81: %s", errOut)
	}
	if got := dockerInspect(t, w.World, `{{(index .NetworkSettings.Networks "gwr").GlobalIPv6Address}}`, "r6"); got != "fd00:e2b::2" {
		t.Fatalf("r6's IPv6 address = %q", got)
	}
	if got := dockerInspect(t, w.World, `{{range (index .NetworkSettings.Ports "80/tcp")}}{{.HostIp}}/{{.HostPort}} {{end}}`, "r6"); got != "0.0.0.0/8097 ::/0" {
		t.Errorf("80/tcp bindings = %q, want 0.0.0.0/8097 ::/0 (IPv6 not NATed, no host port)", got)
	}
	routeToSubnet(t, w, "fd00:e2b::/64")
	w.reach(t, "outside", "tcp", "[fd00:e2b::2]:80", testworld.GatewayAddr6.String())
	w.unreachable(t, "outside", "tcp", "[fd00:e2b::2]:81")
	w.unreachable(t, "outside", "tcp", "["+testworld.HostAddr6.String()+"]:8097")
	var got string
	if !retried(func() bool { got = fetchFrom(t, w, "r6", "["+testworld.ServerAddr6.String()+"]"); return got != "" }) || got != "you are fd00:e2b::2" {
		t.Errorf("r6 → outside over IPv6: %q, want the container's own address", got)
	}
	// IPv4 still NATs: DNAT in, masquerade out.
	w.reach(t, "outside", "tcp", hostPort(8097), outsideAddr)
	if !retried(func() bool { got = fetchFrom(t, w, "r6", testworld.ServerAddr.String()); return got != "" }) || got != "you are "+testworld.HostAddr.String() {
		t.Errorf("r6 → outside over IPv4: %q, want the host's address", got)
	}
	mustDocker(t, w.World, "rm", "-f", "r6")
	w.unreachable(t, "outside", "tcp", "[fd00:e2b::2]:80")
	mustDocker(t, w.World, "network", "rm", "gwr")
}

// TestGatewayModeNATUnprotected: every port of a nat-unprotected
// network's containers answers traffic routed to it from outside,
// published or not; another network's containers stay out (Docker 28).
func TestGatewayModeNATUnprotected(t *testing.T) {
	w := startPortWorld(t)
	mustDocker(t, w.World, "network", "create", "--subnet", "172.28.6.0/24", "-o", optGwMode4+"=nat-unprotected", "gwu")
	w.dockerPeer(t, "u4", "--network", "gwu", "-p", "8098:80")
	if _, errOut, code := w.Docker(t, "exec", "-d", "u4", "/peer", "-listen", "tcp:81"); code != 0 {
		t.Fatalf("listen on 81: %s", errOut)
	}
	routeToSubnet(t, w, "172.28.6.0/24")
	w.reach(t, "outside", "tcp", "172.28.6.2:81", outsideAddr)
	w.reach(t, "outside", "tcp", hostPort(8098), outsideAddr)
	// Open to the world outside, not to the host's other networks:
	// Docker 28's isolation chains drop what another bridge sends before
	// the UNPROTECTED accept (it was let in).
	mustDocker(t, w.World, "network", "create", "--subnet", "172.28.16.0/24", "gwo")
	w.dockerPeer(t, "o4", "--network", "gwo")
	w.unreachable(t, "container:o4", "tcp", "172.28.6.2:81")
	mustDocker(t, w.World, "rm", "-f", "u4", "o4")
	mustDocker(t, w.World, "network", "rm", "gwu", "gwo")
}

// TestGatewayModeIsolated: isolated is for internal networks only, in
// moby's words; there the bridge gets no address of the family, and
// IPAM shows no gateway. An unknown mode is refused in moby's words.
func TestGatewayModeIsolated(t *testing.T) {
	w, _ := startWorld(t)
	for _, tc := range []struct{ opt, want string }{
		{optGwMode4 + "=isolated", "gateway mode 'isolated' can only be used for an internal network"},
		{optGwMode6 + "=bogus", "unknown gateway mode bogus"},
	} {
		_, errOut, code := w.Docker(t, "network", "create", "--ipv6", "-o", tc.opt, "bad")
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("network create -o %s: exit %d, %q; want an error with %q", tc.opt, code, errOut, tc.want)
		}
	}
	id := strings.TrimSpace(mustDocker(t, w, "network", "create", "--internal", "--subnet", "172.28.7.0/24", "-o", optGwMode4+"=isolated", "iso"))
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", `{{(index .IPAM.Config 0).Gateway}}|{{index .Options "`+optGwMode4+`"}}`, "iso")); got != "|isolated" {
		t.Errorf("iso's gateway and option = %q, want no gateway, isolated", got)
	}
	out, errOut, code := w.InHost(t, "ip", "-4", "-o", "addr", "show", "dev", "br-"+id[:12])
	if code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("iso's bridge has IPv4 addresses (exit %d, %s): %q", code, errOut, out)
	}
	mustDocker(t, w, "run", "-d", "--name", "i1", "--network", "iso", testworld.BusyboxImage, "sleep", "3600")
	if got := dockerInspect(t, w, `{{(index .NetworkSettings.Networks "iso").IPAddress}}|{{(index .NetworkSettings.Networks "iso").Gateway}}`, "i1"); !strings.HasPrefix(got, "172.28.7.") || !strings.HasSuffix(got, "|") {
		t.Errorf("i1's address and gateway = %q, want an address and no gateway", got)
	}
	if out := mustDocker(t, w, "exec", "i1", "ip", "route"); strings.Contains(out, "default") {
		t.Errorf("i1 has a default route:\n%s", out)
	}
	mustDocker(t, w, "rm", "-f", "i1")
	mustDocker(t, w, "network", "rm", "iso")
}

// TestGatewayModeRoutedICCOff: with enable_icc=false, a routed network's
// published port is no way between its own containers, as Docker's ICC
// drop comes before its per-port accept; a container of another network
// still reaches it directly, as in Docker (QA round 21).
func TestGatewayModeRoutedICCOff(t *testing.T) {
	w := startPortWorld(t)
	mustDocker(t, w.World, "network", "create", "--subnet", "172.28.20.0/24", "-o", optGwMode4+"=routed",
		"-o", "com.docker.network.bridge.enable_icc=false", "ri")
	w.dockerPeer(t, "cx", "--network", "ri", "-p", "80:80")
	w.dockerPeer(t, "cy", "--network", "ri")
	w.unreachable(t, "container:cy", "tcp", "172.28.20.2:80")
	mustDocker(t, w.World, "network", "create", "--subnet", "172.28.22.0/24", "other")
	w.dockerPeer(t, "cz", "--network", "other")
	// Masqueraded on its way out of its own network (Docker's "-s SUBNET
	// ! -o BRIDGE" takes another bridge too): the routed network's gateway.
	w.reach(t, "container:cz", "tcp", "172.28.20.2:80", "172.28.20.1")
}
