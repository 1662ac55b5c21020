package nftables

import (
	"context"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
)

// world is a small test world built from namespaces the test owns:
//
//	outside (198.51.100.1, server 203.0.113.10 on lo)
//	   │ veth
//	host  eth0 198.51.100.2, default via 198.51.100.1, berth's table here
//	   ├── br0 10.0.1.1/24 ── c1 10.0.1.2, c2 10.0.1.3
//	   └── br1 10.0.2.1/24 ── c3 10.0.2.2
//
// The outside has no route to the containers' subnets, so a container only
// reaches it when its traffic is masqueraded.
type world struct {
	host, outside, c1, c2, c3 string
}

var (
	br0 = firewall.Network{Bridge: "br0", Subnet: netip.MustParsePrefix("10.0.1.0/24"), Gateway: netip.MustParseAddr("10.0.1.1"), ICC: true, Masquerade: true}
	br1 = firewall.Network{Bridge: "br1", Subnet: netip.MustParsePrefix("10.0.2.0/24"), Gateway: netip.MustParseAddr("10.0.2.1"), ICC: true, Masquerade: true}
)

const server = "203.0.113.10"

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{host: nstest.New(t), outside: nstest.New(t), c1: nstest.New(t), c2: nstest.New(t), c3: nstest.New(t)}
	h := w.host
	for _, ns := range []string{w.host, w.outside, w.c1, w.c2, w.c3} {
		run(t, ns, "ip", "link", "set", "lo", "up")
	}
	run(t, h, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// Bridged packets between two ports go through the inet forward hook only
	// with this on; it is what makes enable_icc=false effective.
	run(t, h, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")

	run(t, h, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", w.outside)
	run(t, h, "ip", "addr", "add", "198.51.100.2/24", "dev", "eth0")
	run(t, h, "ip", "link", "set", "eth0", "up")
	run(t, h, "ip", "route", "add", "default", "via", "198.51.100.1")
	run(t, w.outside, "ip", "addr", "add", "198.51.100.1/24", "dev", "eth0")
	run(t, w.outside, "ip", "addr", "add", server+"/32", "dev", "lo")
	run(t, w.outside, "ip", "link", "set", "eth0", "up")

	w.bridge(t, "br0", "10.0.1.1/24")
	w.bridge(t, "br1", "10.0.2.1/24")
	w.container(t, w.c1, "veth1", "br0", "10.0.1.2/24", "10.0.1.1")
	w.container(t, w.c2, "veth2", "br0", "10.0.1.3/24", "10.0.1.1")
	w.container(t, w.c3, "veth3", "br1", "10.0.2.2/24", "10.0.2.1")
	return w
}

func (w *world) bridge(t *testing.T, name, addr string) {
	run(t, w.host, "ip", "link", "add", name, "type", "bridge")
	run(t, w.host, "ip", "addr", "add", addr, "dev", name)
	run(t, w.host, "ip", "link", "set", name, "up")
}

func (w *world) container(t *testing.T, ns, veth, br, addr, gw string) {
	run(t, w.host, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run(t, w.host, "ip", "link", "set", veth, "master", br, "up")
	run(t, ns, "ip", "addr", "add", addr, "dev", "eth0")
	run(t, ns, "ip", "link", "set", "eth0", "up")
	run(t, ns, "ip", "route", "add", "default", "via", gw)
}

// reaches pings dst from the namespace ns until a reply comes, for up to
// 30 s, so that a slow first ARP or a ping process left waiting past its
// one second on a loaded machine is not taken for a drop. The bound only
// ends a real drop; nothing about speed is asserted.
func reaches(t *testing.T, ns, dst string) bool {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		if ping(ns, dst) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// blocked reports whether one ping from ns to dst gets no reply in a second.
func blocked(t *testing.T, ns, dst string) bool {
	t.Helper()
	return !ping(ns, dst)
}

func ping(ns, dst string) bool {
	return exec.Command("nsenter", "--net="+ns, "--", "busybox", "ping", "-c1", "-W1", dst).Run() == nil
}

func TestTraffic(t *testing.T) {
	w := newWorld(t)
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	ctx := context.Background()
	if err := fw.Rebuild(ctx, []firewall.Network{br0, br1}); err != nil {
		t.Fatal(err)
	}

	t.Run("masquerade", func(t *testing.T) {
		// Count echo requests by source on the server.
		run(t, w.outside, "nft", "add", "table", "inet", "probe")
		run(t, w.outside, "nft", "add", "counter", "inet", "probe", "fromhost")
		run(t, w.outside, "nft", "add", "counter", "inet", "probe", "fromcontainer")
		run(t, w.outside, "nft", "add", "chain", "inet", "probe", "input", "{ type filter hook input priority 0 ; }")
		run(t, w.outside, "nft", "add", "rule", "inet", "probe", "input", "ip", "saddr", "198.51.100.2", "counter", "name", "fromhost")
		run(t, w.outside, "nft", "add", "rule", "inet", "probe", "input", "ip", "saddr", "10.0.0.0/8", "counter", "name", "fromcontainer")
		if !reaches(t, w.c1, server) {
			t.Fatal("container on br0 cannot reach the server")
		}
		if n := counter(t, w.outside, "fromhost"); n == 0 {
			t.Error("the server saw no packet from the host address 198.51.100.2")
		}
		if n := counter(t, w.outside, "fromcontainer"); n != 0 {
			t.Errorf("the server saw %d packets from container addresses", n)
		}
	})

	t.Run("snat", func(t *testing.T) {
		// A source address of the network's own (host_ipv4) in place
		// of masquerade's choice: one of the host's, not eth0's first.
		run(t, w.host, "ip", "addr", "add", "198.51.100.3/24", "dev", "eth0")
		run(t, w.outside, "nft", "add", "table", "inet", "probe")
		run(t, w.outside, "nft", "add", "chain", "inet", "probe", "input", "{ type filter hook input priority 0 ; }")
		run(t, w.outside, "nft", "add", "counter", "inet", "probe", "fromsnat")
		run(t, w.outside, "nft", "insert", "rule", "inet", "probe", "input", "ip", "saddr", "198.51.100.3", "counter", "name", "fromsnat")
		snat := br0
		snat.SNAT4 = netip.MustParseAddr("198.51.100.3")
		if err := fw.AddNetwork(ctx, snat); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := fw.AddNetwork(ctx, br0); err != nil {
				t.Error(err)
			}
		})
		// Each ping process is a new flow (its own ICMP id), NATed anew.
		if !reaches(t, w.c1, server) {
			t.Fatal("container on br0 cannot reach the server with SNAT")
		}
		if n := counter(t, w.outside, "fromsnat"); n == 0 {
			t.Error("the server saw no packet from the SNAT address 198.51.100.3")
		}
	})

	t.Run("icc", func(t *testing.T) {
		if !reaches(t, w.c1, "10.0.1.3") {
			t.Fatal("c1 cannot reach c2 on the same bridge with icc on")
		}
		noICC := br0
		noICC.ICC = false
		if err := fw.AddNetwork(ctx, noICC); err != nil {
			t.Fatal(err)
		}
		if !blocked(t, w.c1, "10.0.1.3") {
			t.Error("c1 reaches c2 with icc off")
		}
		if !reaches(t, w.c1, server) {
			t.Error("with icc off, c1 no longer reaches the outside")
		}
		if err := fw.AddNetwork(ctx, br0); err != nil {
			t.Fatal(err)
		}
		if !reaches(t, w.c1, "10.0.1.3") {
			t.Error("c1 cannot reach c2 after icc is back on")
		}
	})

	t.Run("isolation between networks", func(t *testing.T) {
		// The control: without the networks' rules the path is open, so
		// what is blocked below is blocked by them (a ping that cannot
		// run at all would look blocked too).
		if err := fw.Rebuild(ctx, nil); err != nil {
			t.Fatal(err)
		}
		open := reaches(t, w.c1, "10.0.2.2") && reaches(t, w.c3, "10.0.1.2")
		if err := fw.Rebuild(ctx, []firewall.Network{br0, br1}); err != nil {
			t.Fatal(err)
		}
		if !open {
			t.Fatal("control: c1 and c3 do not reach each other even without the networks' rules")
		}
		if !blocked(t, w.c1, "10.0.2.2") {
			t.Error("c1 on br0 reaches c3 on br1")
		}
		if !blocked(t, w.c3, "10.0.1.2") {
			t.Error("c3 on br1 reaches c1 on br0")
		}
	})

	t.Run("direct access from outside", func(t *testing.T) {
		run(t, w.outside, "ip", "route", "add", "10.0.1.0/24", "via", "198.51.100.2")
		t.Cleanup(func() { run(t, w.outside, "ip", "route", "del", "10.0.1.0/24") })
		if !blocked(t, w.outside, "10.0.1.2") {
			t.Error("the outside reaches c1 directly")
		}
		if out := output(t, w.host, "nft", "list", "chain", "inet", "berth", "direct__br0"); !regexp.MustCompile(`packets [1-9]`).MatchString(out) {
			t.Errorf("the raw direct-access drop did not count the packets:\n%s", out)
		}
		if !reaches(t, w.c1, server) {
			t.Error("replies to masqueraded traffic no longer pass")
		}
		// The gateway is a host address, not a container: reachable as
		// any other (Docker's raw drop names container addresses only).
		if !reaches(t, w.outside, "10.0.1.1") {
			t.Error("the outside cannot reach br0's gateway, a host address")
		}
	})

	t.Run("another network's gateway", func(t *testing.T) {
		// A host address on another bridge: a published port is reached
		// through it, and replies to the host's own connections come back
		// to it from containers of other bridges.
		if !reaches(t, w.c1, "10.0.2.1") {
			t.Error("c1 on br0 cannot reach br1's gateway address")
		}
		if !reaches(t, w.c3, "10.0.1.1") {
			t.Error("c3 on br1 cannot reach br0's gateway address")
		}
	})

	t.Run("internal network", func(t *testing.T) {
		if !reaches(t, w.c3, server) {
			t.Fatal("c3 cannot reach the outside before br1 is internal")
		}
		internal := br1
		internal.Internal = true
		if err := fw.AddNetwork(ctx, internal); err != nil {
			t.Fatal(err)
		}
		if !blocked(t, w.c3, server) {
			t.Error("c3 on an internal network reaches the outside")
		}
		if !blocked(t, w.c1, "10.0.2.2") {
			t.Error("c1 reaches c3 on an internal network")
		}
	})

	t.Run("no rules after delete", func(t *testing.T) {
		for _, n := range []firewall.Network{br0, br1} {
			if err := fw.DelNetwork(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		// Without berth's rules forwarding is open again: c1 reaches c3.
		// (The outside still cannot answer: nothing masquerades.)
		if !reaches(t, w.c1, "10.0.2.2") {
			t.Error("c1 cannot reach c3 with no rules at all")
		}
	})
}

// counter reads a named counter of table inet probe in ns.
func counter(t *testing.T, ns, name string) int {
	t.Helper()
	out := output(t, ns, "nft", "list", "counter", "inet", "probe", name)
	m := regexp.MustCompile(`packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no packet count in:\n%s", out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
