package e2e

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/testworld"
)

// TestNetworkSourceAddress: a network made with Docker's
// com.docker.network.host_ipv4 reaches the outside from that host address
// (SNAT) instead of the one masquerade picks for the way out; the other
// networks keep masquerade. A value of the wrong family is refused.
func TestNetworkSourceAddress(t *testing.T) {
	w, _ := startWorld(t)
	w.MustInHost(t, "ip", "addr", "add", "198.51.100.3/24", "dev", "eth0")
	mustDocker(t, w, "network", "create", "--subnet", "10.77.0.0/24", "-o", "com.docker.network.host_ipv4=198.51.100.3", "fromthree")
	runSleeper(t, w, "three", "--network", "fromthree")
	runSleeper(t, w, "plain")
	if got, want := fetchAnswer(t, w, "three"), "you are 198.51.100.3\n"; got != want {
		t.Errorf("a container on the host_ipv4 network reached the outside as %q, want %q", got, want)
	}
	if got, want := fetchAnswer(t, w, "plain"), "you are 198.51.100.2\n"; got != want {
		t.Errorf("a container on the default bridge reached the outside as %q, want %q", got, want)
	}
	if _, errOut, code := w.Docker(t, "network", "create", "-o", "com.docker.network.host_ipv4=2001:db8::1", "wrong"); code == 0 {
		t.Errorf("host_ipv4 with an IPv6 address was taken: %s", errOut)
	}
}

// TestContainerInterfacePrefix: a network made with
// com.docker.network.container_iface_prefix names its interface in the
// container with that prefix; the default bridge's stays eth0.
func TestContainerInterfacePrefix(t *testing.T) {
	w, _ := startWorld(t)
	mustDocker(t, w, "network", "create", "-o", "com.docker.network.container_iface_prefix=bds", "prefixed")
	runSleeper(t, w, "pre")
	mustDocker(t, w, "network", "connect", "prefixed", "pre")
	out := mustDocker(t, w, "exec", "pre", "ip", "-o", "link")
	if !strings.Contains(out, " eth0@") || !strings.Contains(out, " bds0@") {
		t.Errorf("links in the container:\n%s\nwant eth0 and bds0", out)
	}
}

// TestNetworkOnAnAdministratorsBridge: a network made on a bridge that
// was there before it (com.docker.network.bridge.name) serves containers
// on it, and its removal leaves the device with the administrator's port
// and address, as moby leaves a bridge it did not create; a bridge berth
// made for a network goes with it.
func TestNetworkOnAnAdministratorsBridge(t *testing.T) {
	w, _ := startWorld(t)
	w.MustInHost(t, "ip", "link", "add", "adminbr", "type", "bridge")
	w.MustInHost(t, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1")
	w.MustInHost(t, "ip", "link", "set", "uplink0", "master", "adminbr")
	w.MustInHost(t, "ip", "addr", "add", "10.99.0.1/24", "dev", "adminbr")
	mustDocker(t, w, "network", "create", "--subnet", "10.97.5.0/24", "-o", "com.docker.network.bridge.name=adminbr", "lab")
	mustDocker(t, w, "network", "create", "--subnet", "10.97.6.0/24", "-o", "com.docker.network.bridge.name=br-mine", "mine")
	mustDocker(t, w, "run", "--rm", "--network", "lab", testworld.BusyboxImage, "ping", "-c", "1", "-W", "5", "10.97.5.1")
	mustDocker(t, w, "network", "rm", "lab", "mine")
	out := w.MustInHost(t, "ip", "-br", "addr", "show", "adminbr")
	if !strings.Contains(out, "10.99.0.1/24") {
		t.Errorf("the administrator's bridge after network rm: %q, want it there with its own address", out)
	}
	if out := w.MustInHost(t, "ip", "-o", "link", "show", "master", "adminbr"); !strings.Contains(out, "uplink0") {
		t.Errorf("the administrator's port left the bridge: %q", out)
	}
	if _, _, code := w.InHost(t, "ip", "link", "show", "br-mine"); code == 0 {
		t.Errorf("berth's own bridge br-mine outlived its network")
	}
}

// TestInhibitIPv4: Docker's inhibit_ipv4 gives the bridge no IPv4
// address; the containers route through the subnet's gateway all the
// same, which is the user's to put on the bridge (a router; here the
// host's own address, added by hand), and berth leaves that address be
// across a restart.
func TestInhibitIPv4(t *testing.T) {
	w, d := startWorld(t)
	mustDocker(t, w, "network", "create", "--subnet", "172.28.11.0/24", "-o", "com.docker.network.bridge.name=br-inh",
		"-o", "com.docker.network.bridge.inhibit_ipv4=true", "inh")
	if out := w.MustInHost(t, "ip", "-4", "addr", "show", "dev", "br-inh"); strings.Contains(out, "inet ") {
		t.Errorf("the bridge has an IPv4 address:\n%s", out)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", "inh")); got != "172.28.11.1" {
		t.Errorf("inspect's gateway %q, want 172.28.11.1", got)
	}
	runDockerSleeper(t, w, "i1", "--network", "inh")
	if got := mustDocker(t, w, "exec", "i1", "ip", "route"); !strings.Contains(got, "default via 172.28.11.1") {
		t.Errorf("i1's routes:\n%s", got)
	}
	// berth explain's "host" is not the gateway while it is somebody
	// else's, and is once the host has the address.
	if _, errOut, code := w.Berth(t, "explain", "i1", "host:80"); code == 0 || !strings.Contains(errOut, "gateway 172.28.11.1 is not an address of the host's") {
		t.Errorf("explain i1 host:80 with the gateway nobody's: exit %d, %q", code, errOut)
	}
	w.MustInHost(t, "ip", "addr", "add", "172.28.11.1/24", "dev", "br-inh") // the user's router
	if _, errOut, code := w.Docker(t, "exec", "i1", "ping", "-c", "1", "-W", "5", "172.28.11.1"); code != 0 {
		t.Errorf("i1 pings its gateway once someone has it: exit %d, %q", code, errOut)
	}
	if out := w.MustBerth(t, "explain", "i1", "host:80"); !strings.Contains(out, "172.28.11.1") {
		t.Errorf("explain i1 host:80 with the host's address on the bridge:\n%s", out)
	}
	d.Stop()
	w.Start(t)
	if out := w.MustInHost(t, "ip", "-4", "addr", "show", "dev", "br-inh"); !strings.Contains(out, "inet 172.28.11.1/24") {
		t.Errorf("a restart took the user's address off the bridge:\n%s", out)
	}
}

// TestDaemonDefaultGateway: dockerd's --default-gateway. The default
// bridge keeps its own address while its containers route through a
// router of the user's on it, which inspect shows as their gateway and
// the network shows as its DefaultGatewayIPv4 auxiliary address; once
// something answers there (the host, given that address too), the
// container reaches the outside through it. A start without the option,
// with the bridge empty, puts the bridge's address back as the gateway.
func TestDaemonDefaultGateway(t *testing.T) {
	w, d := startWorld(t, "--bip", "10.66.0.1/24", "--default-gateway", "10.66.0.254")
	runDockerSleeper(t, w, "g1")
	if got := mustDocker(t, w, "exec", "g1", "ip", "route"); !strings.Contains(got, "default via 10.66.0.254") {
		t.Errorf("g1's routes:\n%s", got)
	}
	if got := strings.TrimSpace(mustDocker(t, w, "inspect", "-f", "{{.NetworkSettings.Gateway}}", "g1")); got != "10.66.0.254" {
		t.Errorf("inspect's gateway %q, want 10.66.0.254", got)
	}
	ipam := strings.TrimSpace(mustDocker(t, w, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{json .AuxiliaryAddresses}}{{end}}", "bridge"))
	if ipam != `10.66.0.1 {"DefaultGatewayIPv4":"10.66.0.254"}` {
		t.Errorf("the bridge's IPAM: %s", ipam)
	}
	w.MustInHost(t, "ip", "addr", "add", "10.66.0.254/24", "dev", defaultBridge)
	if _, errOut, code := w.Docker(t, "exec", "g1", "ping", "-c", "1", "-W", "5", testworld.GatewayAddr.String()); code != 0 {
		t.Errorf("g1 reaches the outside through its default gateway: exit %d, %q", code, errOut)
	}
	mustDocker(t, w, "rm", "-f", "g1")
	w.MustInHost(t, "ip", "addr", "del", "10.66.0.254/24", "dev", defaultBridge)
	d.Stop()
	w.Start(t, "--bip", "10.66.0.1/24")
	runDockerSleeper(t, w, "g2")
	if got := strings.TrimSpace(mustDocker(t, w, "inspect", "-f", "{{.NetworkSettings.Gateway}}", "g2")); got != "10.66.0.1" {
		t.Errorf("without --default-gateway: gateway %q, want 10.66.0.1", got)
	}
}
