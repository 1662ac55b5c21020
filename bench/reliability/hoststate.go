package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/sandbox"
	"github.com/berth-net/berth/internal/testworld"
)

// Counts is what a consistency check found, for the figures.
type Counts struct {
	Containers, Running, Networks, Endpoints, Veths, Sandboxes int
}

// Leaks lists every disagreement between the daemon's state (as its API
// shows it) and the kernel: a leaked veth, netns, nftables chain or map
// element, runc container, or an address held twice. Empty means they agree.
type Leaks []string

type netInfo struct {
	Name       string
	ID         string `json:"Id"`
	Driver     string
	Options    map[string]string
	Containers map[string]struct{ Name, IPv4Address string }
}

type ctrInfo struct {
	ID    string `json:"Id"`
	Names []string
	State string
}

type ctrInspect struct {
	NetworkSettings struct {
		SandboxKey string
		Networks   map[string]struct{ IPAddress, EndpointID string }
	}
}

// bridgeName is the Linux bridge of a bridge network, as berth names it.
func bridgeName(n netInfo) string {
	if b := n.Options["com.docker.network.bridge.name"]; b != "" {
		return b
	}
	return "br-" + n.ID[:12]
}

// Check compares the daemon's view with the host's kernel and runc.
func Check(t testing.TB, w *testworld.World, c *Client) (Counts, Leaks) {
	t.Helper()
	var nets []netInfo
	var ctrs []ctrInfo
	if err := c.Get("/networks", &nets); err != nil {
		t.Fatalf("list networks: %v", err)
	}
	if err := c.Get("/containers/json?all=1", &ctrs); err != nil {
		t.Fatalf("list containers: %v", err)
	}
	var counts Counts
	var leaks Leaks
	counts.Containers = len(ctrs)
	running := map[string]bool{}
	var wantNetns []string
	for _, ct := range ctrs {
		var ci ctrInspect
		if err := c.Get("/containers/"+ct.ID+"/json", &ci); err != nil {
			t.Fatalf("inspect container: %v", err)
		}
		key := ci.NetworkSettings.SandboxKey
		if ct.State != "running" {
			if key != "" {
				leaks = append(leaks, fmt.Sprintf("container %s is %s but has sandbox %s", ct.ID[:12], ct.State, key))
			}
			// Its cgroups went with its run (runc delete, or the release
			// of those a runc killed mid-start left).
			if cg, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", "berth", ct.ID)); len(cg) > 0 {
				leaks = append(leaks, fmt.Sprintf("container %s is %s but has cgroups %v", ct.ID[:12], ct.State, cg))
			}
			continue
		}
		running[ct.ID] = true
		if key != "" && filepath.Base(key) != sandbox.DefaultID { // a host-network container's: the daemon's own
			wantNetns = append(wantNetns, filepath.Base(key)+" (ns)")
		}
	}
	counts.Running = len(running)
	wantLinks := []string{"eth0", "lo"}
	bridges := map[string]bool{}
	addrs := map[string]bool{} // every endpoint address, without its length
	for _, summary := range nets {
		if summary.Driver != "bridge" {
			continue
		}
		counts.Networks++
		var n netInfo
		if err := c.Get("/networks/"+summary.ID, &n); err != nil {
			t.Fatalf("inspect network %s: %v", summary.Name, err)
		}
		br := bridgeName(n)
		bridges[br] = true
		wantLinks = append(wantLinks, br)
		leaks = append(leaks, checkEndpoints(n, running)...)
		for _, ep := range n.Containers {
			addrs[strings.Split(ep.IPv4Address, "/")[0]] = true
		}
		counts.Endpoints += len(n.Containers)
		ports := w.BridgePorts(t, br)
		counts.Veths += len(ports)
		if len(ports) != len(n.Containers) {
			leaks = append(leaks, fmt.Sprintf("bridge %s of %q has %d ports %q, the store %d endpoints", br, n.Name, len(ports), ports, len(n.Containers)))
		}
		wantLinks = append(wantLinks, ports...)
	}
	sort.Strings(wantLinks)
	if got := w.LinkNames(t, w.HostNS()); !slices.Equal(got, wantLinks) {
		leaks = append(leaks, fmt.Sprintf("host links %q, want %q", got, wantLinks))
	}
	sort.Strings(wantNetns)
	got := w.NetnsFiles(t)
	counts.Sandboxes = len(got)
	if !slices.Equal(got, wantNetns) {
		leaks = append(leaks, fmt.Sprintf("netns dir %q, want the running containers' %q", got, wantNetns))
	}
	leaks = append(leaks, checkRunc(t, w, running)...)
	leaks = append(leaks, checkMounts(t, w, running, wantNetns)...)
	leaks = append(leaks, checkTable(t, w, bridges, addrs)...)
	return counts, leaks
}

// checkEndpoints: every endpoint belongs to a running container, and no
// address is held twice.
func checkEndpoints(n netInfo, running map[string]bool) Leaks {
	var leaks Leaks
	seen := map[string]string{}
	for id, ep := range n.Containers {
		if !running[id] {
			leaks = append(leaks, fmt.Sprintf("network %q has an endpoint of container %s, which is not running", n.Name, id[:12]))
		}
		if other, dup := seen[ep.IPv4Address]; dup {
			leaks = append(leaks, fmt.Sprintf("address %s on %q is held by both %s and %s", ep.IPv4Address, n.Name, other[:12], id[:12]))
		}
		seen[ep.IPv4Address] = id
	}
	return leaks
}

// checkRunc: runc knows exactly the running containers.
func checkRunc(t testing.TB, w *testworld.World, running map[string]bool) Leaks {
	t.Helper()
	out, errOut, code := w.InHost(t, "runc", "--root", filepath.Join(w.ExecRoot, "runc"), "list", "-q")
	if code != 0 {
		return Leaks{fmt.Sprintf("runc list: exit %d: %s", code, errOut)}
	}
	var leaks Leaks
	for _, id := range strings.Fields(out) {
		if !running[id] {
			leaks = append(leaks, fmt.Sprintf("runc still has container %s, which is not running", id[:min(12, len(id))]))
		}
	}
	return leaks
}

// checkMounts: in the host's mount namespace, the netns bind mounts are
// exactly the running containers' sandboxes and every rootfs mount belongs
// to a running container.
func checkMounts(t testing.TB, w *testworld.World, running map[string]bool, wantNetns []string) Leaks {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", w.HolderPID()))
	if err != nil {
		t.Fatalf("read the host's mounts: %v", err)
	}
	var leaks Leaks
	netnsDir := filepath.Join(w.ExecRoot, "netns") + "/"
	ctrDir := filepath.Join(w.ExecRoot, "containers") + "/"
	want := map[string]bool{}
	for _, n := range wantNetns {
		want[strings.TrimSuffix(n, " (ns)")] = true
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if id, ok := strings.CutPrefix(mp, netnsDir); ok && !want[id] && id != sandbox.DefaultID {
			leaks = append(leaks, fmt.Sprintf("netns mount %s belongs to no running container", mp))
		}
		if rest, ok := strings.CutPrefix(mp, ctrDir); ok {
			if id, _, _ := strings.Cut(rest, "/"); !running[id] {
				leaks = append(leaks, fmt.Sprintf("mount %s belongs to no running container", mp))
			}
		}
	}
	return leaks
}

var chainBridge = regexp.MustCompile(`chain [a-z_]+__([A-Za-z0-9_.-]+) \{`)

// checkTable: the table has chains for exactly the bridge networks, and
// every map element jumps to a chain of one of them.
func checkTable(t testing.TB, w *testworld.World, bridges, addrs map[string]bool) Leaks {
	t.Helper()
	rules, errOut, code := w.InHost(t, "nft", "list", "table", "inet", "berth")
	if code != 0 {
		return Leaks{fmt.Sprintf("nft list table inet berth: exit %d: %s", code, errOut)}
	}
	var leaks Leaks
	have := map[string]bool{}
	for _, m := range chainBridge.FindAllStringSubmatch(rules, -1) {
		have[m[1]] = true
		if !bridges[m[1]] {
			leaks = append(leaks, fmt.Sprintf("table inet berth has chain %q of a bridge no network has", m[0]))
		}
	}
	for br := range bridges {
		if !have[br] {
			leaks = append(leaks, fmt.Sprintf("table inet berth has no chains for bridge %s", br))
		}
	}
	for _, m := range regexp.MustCompile(`jump [a-z_]+__([A-Za-z0-9_.-]+)`).FindAllStringSubmatch(rules, -1) {
		if !bridges[m[1]] {
			leaks = append(leaks, fmt.Sprintf("table inet berth has a map element that %s", m[0]))
		}
	}
	for _, m := range portElement.FindAllStringSubmatch(rules, -1) {
		if !addrs[m[2]] {
			leaks = append(leaks, fmt.Sprintf("table inet berth publishes %s to %s, which no endpoint holds", m[1], m[2]))
		}
	}
	return leaks
}

// portElement is one element of the port maps: "tcp . 8080 : 172.17.0.2 . 80".
var portElement = regexp.MustCompile(`((?:tcp|udp) \. \d+) : (\d+\.\d+\.\d+\.\d+) \. \d+`)
