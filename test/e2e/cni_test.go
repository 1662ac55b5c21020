package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/cni"
	"github.com/berth-net/berth/internal/driver/bridge"
	"github.com/berth-net/berth/internal/testworld"
)

// cniWorld is a test world whose host runs berth-cni as a runtime would:
// one process per call, the configuration on stdin, CNI_* in the
// environment, containers as named network namespaces of the host.
type cniWorld struct {
	*testworld.World
	bin, dataDir string
}

func newCNIWorld(t *testing.T) *cniWorld {
	w := testworld.New(t)
	c := &cniWorld{World: w, bin: testworld.CNIBinary(t), dataDir: filepath.Join(w.Dir, "cni")}
	return c
}

// netns makes a container namespace in the host, deleted when the test ends.
func (c *cniWorld) netns(t *testing.T, name string) string {
	t.Helper()
	c.MustInHost(t, "ip", "netns", "add", name)
	t.Cleanup(func() { c.InHost(t, "ip", "netns", "del", name) })
	c.MustInHost(t, "ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
	return "/run/netns/" + name
}

// netnses makes n container namespaces, prefix0 to prefix<n-1>.
func (c *cniWorld) netnses(t *testing.T, prefix string, n int) []string {
	t.Helper()
	paths := make([]string, n)
	for i := range n {
		paths[i] = c.netns(t, fmt.Sprintf("%s%d", prefix, i))
	}
	return paths
}

func (c *cniWorld) conf(extra string) string {
	return fmt.Sprintf(`{"cniVersion":"1.1.0","name":"podnet","type":"berth-cni","bridge":"cni0","isGateway":true,
		"isDefaultGateway":true,"ipMasq":true,"dataDir":%q,"capabilities":{"portMappings":true},
		"ipam":{"type":"host-local","subnet":"10.88.0.0/16"}%s}`, c.dataDir, extra)
}

// call runs one CNI command and returns stdout and the exit status.
func (c *cniWorld) call(t *testing.T, cmd, id, netns, conf string) (string, int) {
	t.Helper()
	env := []string{"CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + netns, "CNI_IFNAME=eth0", "CNI_PATH=" + filepath.Dir(c.bin)}
	out, _, code := c.InHostWith(t, conf, env, c.bin)
	return out, code
}

func (c *cniWorld) mustCall(t *testing.T, cmd, id, netns, conf string) string {
	t.Helper()
	out, code := c.call(t, cmd, id, netns, conf)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", cmd, id, code, out)
	}
	return out
}

type cniResult struct {
	CNIVersion string `json:"cniVersion"`
	Interfaces []struct {
		Name, MAC, Sandbox string
	} `json:"interfaces"`
	IPs []struct {
		Address, Gateway string
		Interface        int
	} `json:"ips"`
	Routes []struct{ Dst, GW string } `json:"routes"`
}

func parseCNIResult(t *testing.T, out string) cniResult {
	t.Helper()
	var r cniResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("result %q: %v", out, err)
	}
	return r
}

// vethsSettled is veths once it holds want of them, or after 5 s: a
// DEL returns with the pair cut off, and a process of berth-cni's deletes
// it a moment later.
func (c *cniWorld) vethsSettled(t *testing.T, want int) []string {
	t.Helper()
	var v []string
	for range 100 {
		if v = c.veths(t); len(v) == want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return v
}

func (c *cniWorld) veths(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(c.MustInHost(t, "ip", "-o", "link", "show", "type", "veth")), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			if name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]; name != "eth0" { // the world's uplink
				names = append(names, name)
			}
		}
	}
	return names
}

// TestCNIPluginAsARuntimeCallsIt is the seed's walkthrough through
// berth-cni: two containers on a bridge ping each other, one reaches the
// outside through masquerade, a published port answers from the outside;
// CHECK sees a broken interface; DEL, GC and STATUS do what the
// specification asks, and nothing is left.
func TestCNIPluginAsARuntimeCallsIt(t *testing.T) {
	c := newCNIWorld(t)
	ns1, ns2 := c.netns(t, "c1"), c.netns(t, "c2")
	withPort := c.conf(`,"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}`)

	r1 := parseCNIResult(t, c.mustCall(t, "ADD", "c1", ns1, withPort))
	r2 := parseCNIResult(t, c.mustCall(t, "ADD", "c2", ns2, c.conf("")))
	if len(r1.IPs) != 1 || r1.IPs[0].Address != "10.88.0.2/16" || r1.IPs[0].Gateway != "10.88.0.1" || r1.IPs[0].Interface != 2 {
		t.Fatalf("c1's result: %+v", r1)
	}
	if len(r1.Interfaces) != 3 || r1.Interfaces[0].Name != "cni0" || r1.Interfaces[2].Name != "eth0" || r1.Interfaces[2].Sandbox != ns1 {
		t.Fatalf("c1's interfaces: %+v", r1.Interfaces)
	}
	if r2.IPs[0].Address != "10.88.0.3/16" {
		t.Fatalf("c2's address: %+v", r2.IPs)
	}
	if got := c.MustInHost(t, "ip", "netns", "exec", "c1", "cat", "/sys/class/net/eth0/address"); strings.TrimSpace(got) != r1.Interfaces[2].MAC {
		t.Errorf("c1's eth0 MAC %q, result says %q", got, r1.Interfaces[2].MAC)
	}

	ls := c.MustInHost(t, c.bin, "ls", c.dataDir)
	if !regexp.MustCompile(`(?m)^podnet +c1 +eth0 +10\.88\.0\.2/16 +cni0 +veth[0-9a-f]{7} +8080->80/tcp +attached$`).MatchString(ls) {
		t.Errorf("berth-cni ls:\n%s", ls)
	}
	c.MustInHost(t, "ip", "netns", "exec", "c1", "busybox", "ping", "-c1", "-W3", "10.88.0.3")
	// No -T: this busybox-static wget crashes with it (SIGSEGV); timeout bounds it.
	c.MustInHost(t, "ip", "netns", "exec", "c2", "timeout", "10", "busybox", "wget", "-q", "-O-", "http://"+testworld.ServerAddr.String()+"/")
	if seen := c.SeenSources(); len(seen) == 0 || seen[len(seen)-1] != testworld.HostAddr {
		t.Errorf("the outside saw %v, want the host's address %s (masquerade)", seen, testworld.HostAddr)
	}

	// A server in c1 answers on the host's published port, from the outside.
	www := filepath.Join(c.Dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from c1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(c.MustInHost(t, "sh", "-c", "ip netns exec c1 busybox httpd -f -p 80 -h "+www+" >/dev/null 2>&1 & echo $!"))
	t.Cleanup(func() { c.InHost(t, "kill", pid) })
	got := ""
	for range 50 {
		out, _, code := c.InOutside(t, "timeout", "3", "busybox", "wget", "-q", "-O-", "http://"+testworld.HostAddr.String()+":8080/")
		if got = out; code == 0 {
			break
		}
		c.InHost(t, "sleep", "0.1")
	}
	if got != "hello from c1\n" {
		t.Fatalf("published port 8080 answered %q", got)
	}
	// From the host itself, on loopback, and from c2 through the host's
	// address (hairpin through the bridge).
	if got := c.MustInHost(t, "timeout", "10", "busybox", "wget", "-q", "-O-", "http://127.0.0.1:8080/"); got != "hello from c1\n" {
		t.Errorf("127.0.0.1:8080 from the host answered %q", got)
	}
	if got := c.MustInHost(t, "ip", "netns", "exec", "c2", "timeout", "10", "busybox", "wget", "-q", "-O-", "http://"+testworld.HostAddr.String()+":8080/"); got != "hello from c1\n" {
		t.Errorf("the host's 8080 from c2 answered %q", got)
	}

	// CHECK: fine as made, a failure once the interface is down.
	check := strings.TrimSuffix(withPort, "}") + `,"prevResult":` + mustJSON(t, r1) + `}`
	c.mustCall(t, "CHECK", "c1", ns1, check)
	// A route berth-cni made gone, then its rules gone: CHECK says so
	// (it passed both), and the next call rebuilds the table.
	c.MustInHost(t, "ip", "netns", "exec", "c1", "ip", "route", "del", "default")
	if out, code := c.call(t, "CHECK", "c1", ns1, check); code == 0 || !strings.Contains(out, "route to 0.0.0.0/0 via 10.88.0.1 is missing") {
		t.Errorf("CHECK without the default route: exit %d %s", code, out)
	}
	c.MustInHost(t, "ip", "netns", "exec", "c1", "ip", "route", "add", "default", "via", "10.88.0.1")
	c.mustCall(t, "CHECK", "c1", ns1, check)
	c.MustInHost(t, "nft", "delete", "table", "inet", cni.TableNameFor(c.dataDir))
	if out, code := c.call(t, "CHECK", "c1", ns1, check); code == 0 || !strings.Contains(out, "table is gone") {
		t.Errorf("CHECK without the nftables table: exit %d %s", code, out)
	}
	c.MustInHost(t, "ip", "netns", "exec", "c1", "ip", "link", "set", "eth0", "down")
	if out, code := c.call(t, "CHECK", "c1", ns1, check); code == 0 || !strings.Contains(out, "down") {
		t.Errorf("CHECK of a downed interface: exit %d %s", code, out)
	}

	// DEL: the pair, the port and the address go; a second DEL is fine.
	c.mustCall(t, "DEL", "c1", ns1, withPort)
	c.mustCall(t, "DEL", "c1", ns1, withPort)
	if v := c.vethsSettled(t, 1); len(v) != 1 {
		t.Errorf("veths after DEL of c1: %v, want c2's only", v)
	}
	if nft := c.MustInHost(t, "nft", "list", "table", "inet", cni.TableNameFor(c.dataDir)); strings.Contains(nft, "8080") {
		t.Errorf("port 8080 still in the table after DEL:\n%s", nft)
	}
	// host-local hands out the next address, not the one just freed.
	r1 = parseCNIResult(t, c.mustCall(t, "ADD", "c1", ns1, c.conf("")))
	if r1.IPs[0].Address != "10.88.0.4/16" {
		t.Errorf("c1 again got %s, want 10.88.0.4/16", r1.IPs[0].Address)
	}
	// An ADD of an attachment that exists is refused, and changes nothing.
	if out, code := c.call(t, "ADD", "c1", ns1, c.conf("")); code == 0 || !strings.Contains(out, `"code":7`) {
		t.Errorf("second ADD: exit %d %s", code, out)
	}

	// GC keeps what the runtime lists and collects the rest, pairs a DEL
	// cut off that its deleting process did not take (one that died: made
	// here by hand) included; STATUS is fine.
	c.MustInHost(t, "ip", "link", "add", "leftover0", "type", "veth", "peer", "name", "leftover1")
	c.MustInHost(t, "ip", "link", "set", "leftover0", "group", strconv.FormatUint(uint64(bridge.CNIGroups.Reap), 10))
	c.mustCall(t, "GC", "", "", c.conf(`,"cni.dev/valid-attachments":[{"containerID":"c2","ifname":"eth0"}]`))
	if _, _, code := c.InHost(t, "ip", "link", "show", "leftover0"); code == 0 {
		t.Error("GC left a pair cut off and marked")
	}
	if v := c.vethsSettled(t, 1); len(v) != 1 {
		t.Errorf("veths after GC: %v, want c2's only", v)
	}
	if _, _, code := c.InHost(t, "ip", "netns", "exec", "c1", "ip", "link", "show", "eth0"); code == 0 {
		t.Error("GC left c1's eth0")
	}
	c.mustCall(t, "STATUS", "", "", c.conf(""))
	c.mustCall(t, "DEL", "c2", ns2, c.conf(""))
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths after DEL of all: %v", v)
	}
	var state struct{ Attachments map[string]any }
	b, err := os.ReadFile(filepath.Join(c.dataDir, "state.json"))
	if err != nil || json.Unmarshal(b, &state) != nil || len(state.Attachments) != 0 {
		t.Errorf("state after DEL of all: %s %v", b, err)
	}

	// Refused before anything is made: one host port asked for twice
	// (code 101, as a taken one), a network name too long for the
	// interfaces' owner tag (code 7). Every error carries the
	// configuration's cniVersion, a kernel failure's too (a namespace
	// that is not there).
	twice := c.conf(`,"runtimeConfig":{"portMappings":[{"hostPort":8090,"containerPort":80,"protocol":"tcp"},{"hostPort":8090,"containerPort":81,"protocol":"tcp"}]}`)
	if out, code := c.call(t, "ADD", "c1", ns1, twice); code == 0 || !strings.Contains(out, `"code":101`) {
		t.Errorf("ADD asking for host port 8090 twice: exit %d %s", code, out)
	}
	long := strings.Replace(c.conf(""), `"name":"podnet"`, `"name":"`+strings.Repeat("n", 200)+`"`, 1)
	long = strings.Replace(long, `"bridge":"cni0"`, `"bridge":"cnilong"`, 1)
	if out, code := c.call(t, "ADD", strings.Repeat("c", 64), ns1, long); code == 0 || !strings.Contains(out, `"code":7`) || !strings.Contains(out, "too long") {
		t.Errorf("ADD on a network with a 200-character name: exit %d %s", code, out)
	}
	if _, _, code := c.InHost(t, "ip", "link", "show", "cnilong"); code == 0 {
		t.Error("the refused ADD made its bridge")
	}
	v100 := strings.Replace(c.conf(""), `"cniVersion":"1.1.0"`, `"cniVersion":"1.0.0"`, 1)
	if out, code := c.call(t, "ADD", "c9", "/run/netns/nosuch", v100); code == 0 || !strings.Contains(out, `"cniVersion":"1.0.0"`) {
		t.Errorf("ADD into a namespace that is not there, configuration 1.0.0: exit %d %s", code, out)
	}
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths after the refused ADDs: %v", v)
	}

	// A configuration without cniVersion is 0.1.0, and its result has
	// that version's form (ip4, no interfaces), as the reference's.
	ns3 := c.netns(t, "c3")
	old := strings.Replace(c.conf(""), `"cniVersion":"1.1.0",`, "", 1)
	if out := c.mustCall(t, "ADD", "c3", ns3, old); !strings.Contains(out, `"cniVersion": "0.1.0"`) || !strings.Contains(out, `"ip4"`) || strings.Contains(out, `"interfaces"`) {
		t.Errorf("ADD with a 0.1.0 configuration answered:\n%s", out)
	}
	c.mustCall(t, "DEL", "c3", ns3, old)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCNIConcurrentAdds: a runtime starting many pods calls the plugin
// at once; the state's lock keeps every address distinct.
func TestCNIConcurrentAdds(t *testing.T) {
	c := newCNIWorld(t)
	const n = 16
	paths := c.netnses(t, "p", n)
	var wg sync.WaitGroup
	addrs := make([]string, n)
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, code := c.call(t, "ADD", fmt.Sprintf("p%d", i), paths[i], c.conf(""))
			if code != 0 {
				errs[i] = out
				return
			}
			var r cniResult
			if json.Unmarshal([]byte(out), &r) == nil && len(r.IPs) == 1 {
				addrs[i] = r.IPs[0].Address
			}
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("ADD p%d: %s", i, e)
		}
	}
	sorted := slices.Clone(addrs)
	slices.Sort(sorted)
	if slices.Contains(sorted, "") || len(slices.Compact(sorted)) != n {
		t.Fatalf("addresses not all distinct: %v", addrs)
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// call, not mustCall: no FailNow outside the test's goroutine.
			if out, code := c.call(t, "DEL", fmt.Sprintf("p%d", i), paths[i], c.conf("")); code != 0 {
				t.Errorf("DEL p%d: exit %d: %s", i, code, out)
			}
		}()
	}
	wg.Wait()
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths left: %v", v)
	}
}

// TestCNINetworksBesideEachOtherAndTheDaemon: the daemon and berth-cni on
// one host, and berth-cni networks of other shapes beside each other.
// Each keeps its rules and links whatever the others do: a second data
// directory has its own table (one table rebuilt from one state wiped the
// other's masquerade), a network without a gateway is a flat bridge, a
// network whose configuration changed under its containers is refused, a
// default route through another gateway is installed, and a table deleted
// behind berth-cni's back (a reboot keeps the state, not the table) is
// made again by the next call.
func TestCNINetworksBesideEachOtherAndTheDaemon(t *testing.T) {
	w, _ := startWorld(t)
	c := &cniWorld{World: w, bin: testworld.CNIBinary(t), dataDir: filepath.Join(w.Dir, "cni")}
	runSleeper(t, w, "dockered")
	nsA, nsB, nsC, nsD := c.netns(t, "a"), c.netns(t, "b"), c.netns(t, "c"), c.netns(t, "d")

	c.mustCall(t, "ADD", "a", nsA, c.conf(""))
	// A second data directory, another bridge and subnet, a default route
	// through a router that is not the bridge's address.
	other := &cniWorld{World: w, bin: c.bin, dataDir: filepath.Join(w.Dir, "cni2")}
	otherConf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"second","type":"berth-cni","bridge":"cni1","isGateway":true,"ipMasq":true,
		"dataDir":%q,"ipam":{"type":"host-local","subnet":"10.89.0.0/24","routes":[{"dst":"0.0.0.0/0","gw":"10.89.0.1"},{"dst":"192.0.2.0/24","gw":"10.89.0.254"}]}}`, other.dataDir)
	other.mustCall(t, "ADD", "b", nsB, otherConf)
	routes := c.MustInHost(t, "ip", "netns", "exec", "b", "ip", "route")
	if !strings.Contains(routes, "default via 10.89.0.1") || !strings.Contains(routes, "192.0.2.0/24 via 10.89.0.254") {
		t.Errorf("routes in b:\n%s", routes)
	}
	// Both data directories' containers reach the outside: neither call
	// took the other's masquerade away, nor the daemon's container's.
	for _, ns := range []string{"a", "b"} {
		c.MustInHost(t, "ip", "netns", "exec", ns, "timeout", "10", "busybox", "wget", "-q", "-O-", "http://"+testworld.ServerAddr.String()+"/")
	}
	w.MustBerth(t, "exec", "dockered", "wget", "-q", "-O-", "http://"+testworld.ServerAddr.String()+"/")

	// isGateway false: a bridge without an address; its containers reach
	// each other and nothing else, through a router of their own if the
	// IPAM routes name one.
	flat := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"flat","type":"berth-cni","bridge":"flat0","dataDir":%q,
		"ipam":{"type":"host-local","subnet":"10.90.0.0/24","routes":[{"dst":"0.0.0.0/0","gw":"10.90.0.254"}]}}`, c.dataDir)
	c.mustCall(t, "ADD", "c", nsC, flat)
	if routes := c.MustInHost(t, "ip", "netns", "exec", "c", "ip", "route"); !strings.Contains(routes, "default via 10.90.0.254") {
		t.Errorf("routes in c:\n%s", routes)
	}
	c.mustCall(t, "ADD", "d", nsD, flat)
	c.MustInHost(t, "ip", "netns", "exec", "c", "busybox", "ping", "-c1", "-W3", "10.90.0.3")
	if got := c.MustInHost(t, "ip", "-o", "addr", "show", "dev", "flat0"); strings.Contains(got, "inet ") {
		t.Errorf("flat0 has an address: %s", got)
	}

	// The same network name with another subnet while a container is on it.
	changed := strings.Replace(c.conf(""), "10.88.0.0/16", "10.91.0.0/16", 1)
	if out, code := c.call(t, "ADD", "e", nsD, changed); code == 0 || !strings.Contains(out, "configured differently") {
		t.Errorf("ADD with a changed subnet: exit %d %s", code, out)
	}

	// A table deleted behind berth-cni's back is made whole by the next call.
	c.MustInHost(t, "nft", "delete", "table", "inet", cni.TableNameFor(c.dataDir))
	c.mustCall(t, "DEL", "d", nsD, flat)
	c.MustInHost(t, "ip", "netns", "exec", "a", "timeout", "10", "busybox", "wget", "-q", "-O-", "http://"+testworld.ServerAddr.String()+"/")

	// The daemon's container still works, and its table was never touched.
	w.MustBerth(t, "exec", "dockered", "wget", "-q", "-O-", "http://"+testworld.ServerAddr.String()+"/")
	if got := c.MustInHost(t, "nft", "list", "tables"); !strings.Contains(got, "table inet berth\n") {
		t.Errorf("tables: %s", got)
	}
	for _, call := range []struct {
		w          *cniWorld
		id, ns, cf string
	}{{c, "a", nsA, c.conf("")}, {other, "b", nsB, otherConf}, {c, "c", nsC, flat}} {
		call.w.mustCall(t, "DEL", call.id, call.ns, call.cf)
	}
	w.MustBerth(t, "rm", "-f", "dockered")
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths left: %v", v)
	}
}

// TestCNIDualStack: an IPv4 and an IPv6 range set give each container one
// address of each family, listed in the result in the configuration's
// version (0.4.0: with "version"); the containers reach each other and
// the outside over both.
func TestCNIDualStack(t *testing.T) {
	c := newCNIWorld(t)
	ns1, ns2 := c.netns(t, "v1"), c.netns(t, "v2")
	conf := fmt.Sprintf(`{"cniVersion":"0.4.0","name":"dual","type":"berth-cni","bridge":"dual0","isGateway":true,"isDefaultGateway":true,
		"ipMasq":true,"dataDir":%q,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.92.0.0/24"}],[{"subnet":"fd00:92::/64"}]]}}`, c.dataDir)
	out := c.mustCall(t, "ADD", "v1", ns1, conf)
	var r struct {
		IPs []struct{ Version, Address, Gateway string } `json:"ips"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	want := []struct{ Version, Address, Gateway string }{{"4", "10.92.0.2/24", "10.92.0.1"}, {"6", "fd00:92::2/64", "fd00:92::1"}}
	if !slices.Equal(r.IPs, want) {
		t.Fatalf("ips = %+v, want %+v", r.IPs, want)
	}
	c.mustCall(t, "ADD", "v2", ns2, conf)
	c.MustInHost(t, "ip", "netns", "exec", "v1", "busybox", "ping", "-6", "-c1", "-W3", "fd00:92::3")
	c.MustInHost(t, "ip", "netns", "exec", "v1", "busybox", "ping", "-c1", "-W3", "10.92.0.3")
	c.MustInHost(t, "ip", "netns", "exec", "v2", "timeout", "10", "busybox", "wget", "-q", "-O-", "http://["+testworld.ServerAddr6.String()+"]/")
	if seen := c.SeenSources(); len(seen) == 0 || seen[len(seen)-1] != testworld.HostAddr6 {
		t.Errorf("the outside saw %v, want the host's IPv6 address %s (masquerade)", seen, testworld.HostAddr6)
	}
	c.mustCall(t, "DEL", "v1", ns1, conf)
	c.mustCall(t, "DEL", "v2", ns2, conf)
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths left: %v", v)
	}
}

// publishedPort91xx finds a host port 9100-9199 in an nft listing (not
// "91" anywhere: the table's name is a hash of the data directory's, and
// one in CI read berth-cni-891e1867).
var publishedPort91xx = regexp.MustCompile(`\b91\d\d\b`)

// TestCNICallsKilledAtRandom: a runtime's plugin call can be killed at any
// moment (a timeout, the node going down). ADDs with a published port
// each are SIGKILLed after 0-60 ms (an ADD takes about 30 here, its process start included); then each container gets a DEL, as a
// runtime sends after a failed ADD. Nothing may be left: no veth, no
// published port, no record, and every address can be handed out again.
func TestCNICallsKilledAtRandom(t *testing.T) {
	c := newCNIWorld(t)
	const n = 10
	paths := c.netnses(t, "k", n)
	confOf := func(i int) string {
		return c.conf(fmt.Sprintf(`,"runtimeConfig":{"portMappings":[{"hostPort":%d,"containerPort":80,"protocol":"tcp"}]}`, 9100+i))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	killed := 0
	for round := range 3 {
		for i := range n {
			cmd := exec.Command("nsenter", "-t", strconv.Itoa(c.HolderPID()), "-m", "-n", "--", c.bin)
			cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", fmt.Sprintf("CNI_CONTAINERID=k%d", i), "CNI_NETNS="+paths[i], "CNI_IFNAME=eth0")
			cmd.Stdin = strings.NewReader(confOf(i))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(rng.IntN(60_000)) * time.Microsecond)
			if cmd.Process.Signal(syscall.SIGKILL) == nil {
				if err := cmd.Wait(); err != nil {
					killed++
				}
			} else {
				cmd.Wait()
			}
		}
		for i := range n {
			c.mustCall(t, "DEL", fmt.Sprintf("k%d", i), paths[i], confOf(i))
		}
		if v := c.vethsSettled(t, 0); len(v) != 0 {
			t.Fatalf("round %d: veths left after DEL of all: %v", round, v)
		}
		if nft, _, code := c.InHost(t, "nft", "list", "table", "inet", cni.TableNameFor(c.dataDir)); code == 0 && publishedPort91xx.MatchString(nft) {
			t.Fatalf("round %d: published ports left after DEL of all:\n%s", round, nft)
		}
		if ls := c.MustInHost(t, c.bin, "ls", c.dataDir); strings.Count(ls, "\n") != 1 {
			t.Fatalf("round %d: attachments left after DEL of all:\n%s", round, ls)
		}
	}
	t.Logf("%d of %d ADDs killed before they ended", killed, 3*n)
	// Every address is free again: n ADDs get n distinct ones and work.
	seen := map[string]bool{}
	for i := range n {
		r := parseCNIResult(t, c.mustCall(t, "ADD", fmt.Sprintf("k%d", i), paths[i], confOf(i)))
		seen[r.IPs[0].Address] = true
	}
	if len(seen) != n {
		t.Errorf("addresses after the storm: %v", seen)
	}
	c.MustInHost(t, "ip", "netns", "exec", "k0", "busybox", "ping", "-c1", "-W3", "10.88.0.1")
	for i := range n {
		c.mustCall(t, "DEL", fmt.Sprintf("k%d", i), paths[i], confOf(i))
	}
}

// TestCNIRuntimeMACIsAnnounced: a container that gets an address back
// under a MAC of the runtime's choosing announces it, so that a neighbour
// which cached the address's old MAC reaches it at once (without the
// announcement it sent to the old MAC until its entry went stale, seconds).
func TestCNIRuntimeMACIsAnnounced(t *testing.T) {
	c := newCNIWorld(t)
	ns1, ns2 := c.netns(t, "m1"), c.netns(t, "m2")
	c.mustCall(t, "ADD", "m1", ns1, c.conf(""))
	c.mustCall(t, "ADD", "m2", ns2, c.conf(""))
	c.MustInHost(t, "ip", "netns", "exec", "m2", "busybox", "ping", "-c1", "-W3", "10.88.0.2")
	c.mustCall(t, "DEL", "m1", ns1, c.conf(""))
	again := c.conf(`,"runtimeConfig":{"mac":"02:00:00:00:be:01","ips":["10.88.0.2"]}`)
	again = strings.Replace(again, `"capabilities":{"portMappings":true}`, `"capabilities":{"portMappings":true,"mac":true,"ips":true}`, 1)
	r := parseCNIResult(t, c.mustCall(t, "ADD", "m1", ns1, again))
	if r.IPs[0].Address != "10.88.0.2/16" || r.Interfaces[2].MAC != "02:00:00:00:be:01" {
		t.Fatalf("ADD with the runtime's MAC and address: %+v", r)
	}
	var neigh string
	for range 50 {
		neigh = c.MustInHost(t, "ip", "netns", "exec", "m2", "ip", "neigh", "show", "10.88.0.2")
		if strings.Contains(neigh, "02:00:00:00:be:01") {
			break
		}
		c.InHost(t, "sleep", "0.02")
	}
	if !strings.Contains(neigh, "02:00:00:00:be:01") {
		t.Errorf("m2's neighbour entry for 10.88.0.2 after m1 came back under a new MAC: %q", neigh)
	}
	c.MustInHost(t, "ip", "netns", "exec", "m2", "busybox", "ping", "-c1", "-W1", "10.88.0.2")
	c.mustCall(t, "DEL", "m1", ns1, again)
	c.mustCall(t, "DEL", "m2", ns2, c.conf(""))
}

// TestCNIAddAfterOneCutOffBeforeItsRules: an ADD killed after recording
// its intent (the network and its address) but before the table got the
// network's rules leaves a state the table does not match. The next ADD on
// that network must still give its container the rules (it found the
// network "already there" and added none), and the DEL of the cut-off one
// must clean up after it. The state is written as such a kill leaves it.
func TestCNIAddAfterOneCutOffBeforeItsRules(t *testing.T) {
	c := newCNIWorld(t)
	nsX, nsB := c.netns(t, "x"), c.netns(t, "b")
	c.mustCall(t, "ADD", "x", nsX, c.conf(""))
	// What a kill of container y's ADD on network "late" (bridge cni9)
	// between its intent and its kernel work leaves in the state.
	late := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"late","type":"berth-cni","bridge":"cni9","isGateway":true,"isDefaultGateway":true,
		"ipMasq":true,"dataDir":%q,"ipam":{"type":"host-local","subnet":"10.95.0.0/24"}}`, c.dataDir)
	statePath := filepath.Join(c.dataDir, "state.json")
	b, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	var atts, nets map[string]json.RawMessage
	json.Unmarshal(st["attachments"], &atts)
	json.Unmarshal(st["networks"], &nets)
	atts["late/y/eth0"] = json.RawMessage(`{"network":"late","containerID":"y","ifname":"eth0","netns":"/run/netns/gone","hostIfName":"veth0000001",
		"mac":"02:42:0a:5f:00:02","ips":[{"address":"10.95.0.2/24","gateway":"10.95.0.1","set":0}],"done":false}`)
	nets["late"] = json.RawMessage(`{"bridge":"cni9","subnet":"10.95.0.0/24","gateway":"10.95.0.1","ipMasq":true}`)
	st["attachments"], st["networks"] = json.RawMessage(mustJSON(t, atts)), json.RawMessage(mustJSON(t, nets))
	if err := os.WriteFile(statePath, []byte(mustJSON(t, st)), 0o600); err != nil {
		t.Fatal(err)
	}

	c.mustCall(t, "ADD", "b", nsB, late)
	if nft := c.MustInHost(t, "nft", "list", "table", "inet", cni.TableNameFor(c.dataDir)); !strings.Contains(nft, `"cni9"`) {
		t.Fatalf("the table has no rules for cni9 after an ADD on its network:\n%s", nft)
	}
	c.MustInHost(t, "ip", "netns", "exec", "b", "timeout", "10", "busybox", "wget", "-q", "-O-", "http://"+testworld.ServerAddr.String()+"/")
	c.mustCall(t, "DEL", "y", "", late)
	c.mustCall(t, "DEL", "b", nsB, late)
	c.mustCall(t, "DEL", "x", nsX, c.conf(""))
	if v := c.vethsSettled(t, 0); len(v) != 0 {
		t.Errorf("veths left: %v", v)
	}
}

// TestCNIBridgeHandedOn: a bridge whose network has no attachment left
// is taken by the next configuration that names it — another network
// name, or the same network with another subnet — with the old gateway
// address and owner tag gone (it was refused until deleted by hand, and
// kept the old address beside the new one). A network whose subnet
// overlaps one in use on another bridge is refused before its bridge is
// made.
func TestCNIBridgeHandedOn(t *testing.T) {
	c := newCNIWorld(t)
	ns := c.netns(t, "h1")
	conf := func(name, bridge, subnet string) string {
		return fmt.Sprintf(`{"cniVersion":"1.1.0","name":%q,"type":"berth-cni","bridge":%q,"isGateway":true,"isDefaultGateway":true,
			"ipMasq":true,"dataDir":%q,"ipam":{"type":"host-local","subnet":%q}}`, name, bridge, c.dataDir, subnet)
	}
	addrs := func(bridge string) string {
		return c.MustInHost(t, "ip", "-o", "-4", "addr", "show", "dev", bridge)
	}
	c.mustCall(t, "ADD", "h1", ns, conf("neta", "br9", "10.30.0.0/24"))
	c.mustCall(t, "DEL", "h1", ns, conf("neta", "br9", "10.30.0.0/24"))
	c.vethsSettled(t, 0)
	c.mustCall(t, "ADD", "h1", ns, conf("netb", "br9", "10.31.0.0/24"))
	if a := addrs("br9"); !strings.Contains(a, "10.31.0.1/24") || strings.Contains(a, "10.30.0.1") {
		t.Errorf("br9 taken over by netb has:\n%s\nwant 10.31.0.1/24 only", a)
	}
	if alias := c.MustInHost(t, "ip", "link", "show", "br9"); !strings.Contains(alias, "alias berth:cni-network:netb") {
		t.Errorf("br9's owner tag: %q", alias)
	}
	c.mustCall(t, "DEL", "h1", ns, conf("netb", "br9", "10.31.0.0/24"))
	c.vethsSettled(t, 0)
	c.mustCall(t, "ADD", "h1", ns, conf("netb", "br9", "10.32.0.0/24"))
	if a := addrs("br9"); !strings.Contains(a, "10.32.0.1/24") || strings.Contains(a, "10.31.0.1") {
		t.Errorf("br9 after netb's subnet changed has:\n%s\nwant 10.32.0.1/24 only", a)
	}

	ns2 := c.netns(t, "h2")
	if out, code := c.call(t, "ADD", "h2", ns2, conf("netc", "br8", "10.32.0.0/25")); code == 0 || !strings.Contains(out, `"code":7`) || !strings.Contains(out, "overlaps") {
		t.Errorf("ADD on a network overlapping netb's subnet: exit %d %s", code, out)
	}
	if _, _, code := c.InHost(t, "ip", "link", "show", "br8"); code == 0 {
		t.Error("the refused ADD made its bridge br8")
	}
	c.mustCall(t, "DEL", "h1", ns, conf("netb", "br9", "10.32.0.0/24"))
	c.vethsSettled(t, 0)
	// br9 is idle now, and keeps 10.32.0.1/24: a network on another
	// bridge with that subnet would be routed through br9.
	if out, code := c.call(t, "ADD", "h2", ns2, conf("netd", "br7", "10.32.0.0/24")); code == 0 || !strings.Contains(out, `"code":7`) || !strings.Contains(out, "br9") {
		t.Errorf("ADD on a network overlapping idle br9's subnet: exit %d %s", code, out)
	}
	// As the refusal advises: br9 deleted, the ADD goes through (the
	// record of the idle bridge outlived it, and refused it until reboot).
	c.MustInHost(t, "ip", "link", "del", "br9")
	c.mustCall(t, "ADD", "h2", ns2, conf("netd", "br7", "10.32.0.0/24"))
	c.mustCall(t, "DEL", "h2", ns2, conf("netd", "br7", "10.32.0.0/24"))
	c.vethsSettled(t, 0)

	// An ADD on a name that is not a bridge fails before making one; its
	// rollback recorded the link as the network's idle bridge, and every
	// overlapping network was refused after, pointed at a veth.
	c.MustInHost(t, "ip", "link", "add", "vx0", "type", "veth", "peer", "name", "vx1")
	if out, code := c.call(t, "ADD", "h1", ns, conf("nete", "vx0", "10.40.0.0/24")); code == 0 || !strings.Contains(out, "not a bridge") {
		t.Errorf("ADD on a veth's name: exit %d %s", code, out)
	}
	c.mustCall(t, "ADD", "h1", ns, conf("netf", "br6", "10.40.0.0/24"))
	c.mustCall(t, "DEL", "h1", ns, conf("netf", "br6", "10.40.0.0/24"))
	c.MustInHost(t, "ip", "link", "del", "vx0")
}
