package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/testworld"
)

// The seed's `docker network inspect bridge` keys, all of which berth must show.
var seedNetworkKeys = []string{"Name", "Id", "Scope", "Driver", "EnableIPv6", "IPAM", "Internal", "Containers", "Options", "Labels"}

func seedOptions(bridge string) map[string]string {
	return map[string]string{
		"com.docker.network.bridge.default_bridge":       "true",
		"com.docker.network.bridge.enable_icc":           "true",
		"com.docker.network.bridge.enable_ip_masquerade": "true",
		"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
		"com.docker.network.bridge.name":                 bridge,
		"com.docker.network.driver.mtu":                  "1500",
	}
}

var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestSeedWalkthrough follows seed/bridged-network.txt step by step.
func TestSeedWalkthrough(t *testing.T) {
	w, _ := startWorld(t)

	checkNetworkLs(t, w)
	bridge, _ := inspectNetwork(t, w.Berth, "bridge")
	checkSeedBridge(t, bridge, defaultBridge)
	if len(bridge.Containers) != 0 {
		t.Errorf("bridge has containers before any run: %v", bridge.Containers)
	}
	checkBridgeDevice(t, w, defaultBridge, false)

	runSleeper(t, w, "test1")
	runSleeper(t, w, "test2")
	checkPs(t, w, "test1", "test2")

	ip1, ip2 := containerIP(t, w, "test1"), containerIP(t, w, "test2")
	if want := [2]string{"172.17.0.2", "172.17.0.3"}; [2]string{ip1.String(), ip2.String()} != want {
		t.Errorf("addresses = %s, %s; want %s, %s", ip1, ip2, want[0], want[1])
	}
	ports := w.BridgePorts(t, defaultBridge)
	if len(ports) != 2 || !hostVeth.MatchString(ports[0]) || !hostVeth.MatchString(ports[1]) {
		t.Errorf("ports of %s = %q, want exactly two veth+7hex", defaultBridge, ports)
	}
	checkSandbox(t, w, "test1", ip1, bridgeSubnet, bridgeGateway)
	checkSandbox(t, w, "test2", ip2, bridgeSubnet, bridgeGateway)
	if files := w.NetnsFiles(t); len(files) != 2 {
		t.Errorf("netns dir holds %q, want the two sandboxes", files)
	}
	checkNsenterIPLink(t, w, "test1")

	if !pings(t, w, "test1", ip2) || !pings(t, w, "test2", ip1) {
		t.Errorf("test1 (%s) and test2 (%s) cannot ping each other", ip1, ip2)
	}
	checkBridgeDevice(t, w, defaultBridge, true)

	bridge, _ = inspectNetwork(t, w.Berth, "bridge")
	checkSeedBridge(t, bridge, defaultBridge)
	checkNetworkContainers(t, w, bridge, map[string]netip.Addr{"test1": ip1, "test2": ip2}, 16)
}

// TestMasquerade is the seed's `ping www.google.com`, kept inside the world:
// a container reaches the outside server, which sees the host's address.
func TestMasquerade(t *testing.T) {
	w, _ := startWorld(t)
	runSleeper(t, w, "c1")
	if !pings(t, w, "c1", testworld.ServerAddr) {
		t.Errorf("c1 cannot ping %s", testworld.ServerAddr)
	}
	if got, want := fetchAnswer(t, w, "c1"), "you are 198.51.100.2\n"; got != want {
		t.Errorf("outside server answered %q, want %q", got, want)
	}
	seen := w.SeenSources()
	if len(seen) == 0 {
		t.Fatal("outside server saw no connection")
	}
	for _, a := range seen {
		if a != testworld.HostAddr {
			t.Errorf("outside server saw source %s, want only %s (masquerade)", a, testworld.HostAddr)
		}
	}
	if out, _, code := w.InHost(t, "cat", "/proc/sys/net/ipv4/ip_forward"); code != 0 || strings.TrimSpace(out) != "1" {
		t.Errorf("ip_forward in the host = %q, want 1", out)
	}
	if _, _, code := w.InHost(t, "nft", "list", "table", "inet", "berth"); code != 0 {
		t.Errorf("no nftables table inet berth in the host")
	}
}

// TestBridgeName runs the daemon with --bridge-name: the default network
// uses that device and no berth0 appears.
func TestBridgeName(t *testing.T) {
	const name = "br-e2e"
	w, _ := startWorld(t, "--bridge-name", name)
	bridge, _ := inspectNetwork(t, w.Berth, "bridge")
	checkSeedBridge(t, bridge, name)
	runSleeper(t, w, "c1")
	if ports := w.BridgePorts(t, name); len(ports) != 1 || !hostVeth.MatchString(ports[0]) {
		t.Errorf("ports of %s = %q, want one veth", name, ports)
	}
	for _, l := range w.LinkNames(t, w.HostNS()) {
		if l == defaultBridge {
			t.Errorf("host has %s although --bridge-name %s", defaultBridge, name)
		}
	}
	checkSandbox(t, w, "c1", containerIP(t, w, "c1"), bridgeSubnet, bridgeGateway)
}

func checkNetworkLs(t *testing.T, w *testworld.World) {
	t.Helper()
	out := w.MustBerth(t, "network", "ls")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "NETWORK ID NAME DRIVER SCOPE" {
		t.Fatalf("network ls printed:\n%s\nwant a header and three networks", out)
	}
	got := map[string]string{}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != 4 || len(f[0]) != 12 {
			t.Errorf("network ls line %q, want ID(12) NAME DRIVER SCOPE", l)
			continue
		}
		got[f[1]] = f[2] + " " + f[3]
	}
	want := map[string]string{"bridge": "bridge local", "host": "host local", "none": "null local"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("network ls (-want +got):\n%s", diff)
	}
}

func checkSeedBridge(t *testing.T, n networkInspect, device string) {
	t.Helper()
	if n.Name != "bridge" || !fullID.MatchString(n.ID) || n.Scope != "local" || n.Driver != "bridge" || n.EnableIPv6 || n.Internal {
		t.Errorf("bridge network = {Name:%q Id:%q Scope:%q Driver:%q EnableIPv6:%v Internal:%v}, want the seed's",
			n.Name, n.ID, n.Scope, n.Driver, n.EnableIPv6, n.Internal)
	}
	if n.IPAM.Driver != "default" || len(n.IPAM.Config) != 1 ||
		n.IPAM.Config[0].Subnet != bridgeSubnet.String() || n.IPAM.Config[0].Gateway != bridgeGateway.String() {
		t.Errorf("bridge IPAM = %+v, want driver default, 172.17.0.0/16 via 172.17.0.1", n.IPAM)
	}
	if diff := cmp.Diff(seedOptions(device), n.Options); diff != "" {
		t.Errorf("bridge Options (-want +got):\n%s", diff)
	}
	if n.Labels == nil || n.Containers == nil {
		t.Errorf("bridge Labels %v, Containers %v: want {} rather than null, as the seed shows", n.Labels, n.Containers)
	}
}

// checkBridgeDevice checks the bridge in the host: up, 172.17.0.1/16, and
// with no port "NO-CARRIER" (no lower-up), as the seed shows.
func checkBridgeDevice(t *testing.T, w *testworld.World, name string, carrier bool) {
	t.Helper()
	h := w.HostHandle(t)
	br, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("bridge %q in the host: %v", name, err)
	}
	if br.Type() != "bridge" || br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s is a %q, flags %v; want an up bridge", name, br.Type(), br.Attrs().Flags)
	}
	if got := br.Attrs().RawFlags&unix.IFF_LOWER_UP != 0; got != carrier {
		t.Errorf("%s carrier (LOWER_UP) = %v, want %v", name, got, carrier)
	}
	if got, want := ipv4Addrs(t, h, br), []string{"172.17.0.1/16"}; !equal(got, want) {
		t.Errorf("%s addresses = %q, want %q", name, got, want)
	}
}

// checkPs checks that `berth ps` lists exactly the named containers, running.
func checkPs(t *testing.T, w *testworld.World, names ...string) {
	t.Helper()
	out := w.MustBerth(t, "ps")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "CONTAINER ID") {
		t.Fatalf("berth ps printed %q, want docker's table", out)
	}
	var got []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		got = append(got, f[len(f)-1])
		if !strings.Contains(l, " Up ") {
			t.Errorf("ps line %q is not Up", l)
		}
	}
	if diff := cmp.Diff(names, sorted(got)); diff != "" {
		t.Errorf("ps NAMES (-want +got):\n%s", diff)
	}
}

// checkNsenterIPLink does the seed's `nsenter -t PID -n ip link`.
func checkNsenterIPLink(t *testing.T, w *testworld.World, name string) {
	t.Helper()
	pid := strconv.Itoa(containerPID(t, w, name))
	out, _, code := w.InHost(t, "nsenter", "-t", pid, "-n", "ip", "-o", "link")
	if code != 0 || !strings.Contains(out, " lo: ") || !strings.Contains(out, " eth0@") {
		t.Errorf("nsenter -t %s -n ip link: exit %d, %q; want lo and eth0@ifN", pid, code, out)
	}
}

// checkNetworkContainers checks inspect's Containers against the running
// containers' names, addresses and the MACs their eth0 really has.
func checkNetworkContainers(t *testing.T, w *testworld.World, n networkInspect, want map[string]netip.Addr, bits int) {
	t.Helper()
	got := map[string]string{}
	for id, c := range n.Containers {
		got[c.Name] = c.IPv4Address
		if !fullID.MatchString(id) || !fullID.MatchString(c.EndpointID) {
			t.Errorf("Containers[%q] has EndpointID %q; want 64-hex IDs", id, c.EndpointID)
		}
		checkMAC(t, w, c.Name, c.MacAddress)
		// As the seed shows (172.17.0.2 has 02:42:ac:11:00:02): 02:42 and
		// the address's four bytes.
		if p, err := netip.ParsePrefix(c.IPv4Address); err == nil {
			b := p.Addr().As4()
			if want := fmt.Sprintf("02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3]); c.MacAddress != want {
				t.Errorf("MacAddress of %q (%s) = %q, want %q", c.Name, p.Addr(), c.MacAddress, want)
			}
		}
	}
	wantStr := map[string]string{}
	for name, a := range want {
		wantStr[name] = netip.PrefixFrom(a, bits).String()
	}
	if diff := cmp.Diff(wantStr, got); diff != "" {
		t.Errorf("network %s Containers (-want +got):\n%s", n.Name, diff)
	}
}

// checkMAC: the MAC inspect shows is eth0's and is locally administered unicast.
func checkMAC(t *testing.T, w *testworld.World, name, mac string) {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 || hw[0]&2 == 0 || hw[0]&1 != 0 {
		t.Errorf("MacAddress of %q = %q, want a locally administered unicast MAC", name, mac)
		return
	}
	h := w.Handle(t, "/proc/"+strconv.Itoa(containerPID(t, w, name))+"/ns/net")
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Errorf("eth0 of %q: %v", name, err)
		return
	}
	if eth0.Attrs().HardwareAddr.String() != hw.String() {
		t.Errorf("eth0 of %q has MAC %s, inspect says %s", name, eth0.Attrs().HardwareAddr, hw)
	}
}
