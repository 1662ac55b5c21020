package nftables

import (
	"context"
	"errors"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/sandbox"
)

// The IPv6 side of the test world (traffic_linux_test.go), added to the
// same namespaces:
//
//	outside 2001:db8:1::1 (server 2001:db8:ff::10 on lo)
//	   │ veth
//	host  eth0 2001:db8:1::2/64, default via 2001:db8:1::1, forwarding on
//	   ├── br0 fd00:1::1/64 ── c1 fd00:1::2, c2 fd00:1::3
//	   └── br1 fd00:2::1/64 ── c3 fd00:2::2
//
// The outside has no route to fd00::/8, so a container reaches the server
// over IPv6 only when its traffic is masqueraded. Addresses are nodad so
// that they work at once; neighbour discovery itself is real.
const (
	server6   = "2001:db8:ff::10"
	hostAddr6 = "2001:db8:1::2"
)

var (
	br0v6 = withIPv6(br0, "fd00:1::/64", "fd00:1::1")
	br1v6 = withIPv6(br1, "fd00:2::/64", "fd00:2::1")
)

func newWorld6(t *testing.T) *world {
	t.Helper()
	w := newWorld(t)
	h := w.host
	// Only inside the test's own namespaces, like everything here.
	run(t, h, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	run(t, h, "sysctl", "-qw", "net.bridge.bridge-nf-call-ip6tables=1")
	run(t, h, "ip", "-6", "addr", "add", hostAddr6+"/64", "dev", "eth0", "nodad")
	run(t, h, "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
	run(t, w.outside, "ip", "-6", "addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
	run(t, w.outside, "ip", "-6", "addr", "add", server6+"/128", "dev", "lo")
	run(t, h, "ip", "-6", "addr", "add", "fd00:1::1/64", "dev", "br0", "nodad")
	run(t, h, "ip", "-6", "addr", "add", "fd00:2::1/64", "dev", "br1", "nodad")
	for _, c := range []struct{ ns, addr, gw string }{
		{w.c1, "fd00:1::2/64", "fd00:1::1"},
		{w.c2, "fd00:1::3/64", "fd00:1::1"},
		{w.c3, "fd00:2::2/64", "fd00:2::1"},
	} {
		run(t, c.ns, "ip", "-6", "addr", "add", c.addr, "dev", "eth0", "nodad")
		run(t, c.ns, "ip", "-6", "route", "add", "default", "via", c.gw)
	}
	return w
}

// TestTrafficIPv6 is TestTraffic over IPv6, with dual-stack networks.
func TestTrafficIPv6(t *testing.T) {
	w := newWorld6(t)
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	ctx := context.Background()
	if err := fw.Rebuild(ctx, []firewall.Network{br0v6, br1v6}); err != nil {
		t.Fatal(err)
	}

	t.Run("neighbour discovery", func(t *testing.T) {
		// A container resolves its gateway and its neighbours: ICMPv6 to
		// the host passes host_in, bridged ICMPv6 passes the ICC rule.
		if !reaches(t, w.c1, "fd00:1::1") {
			t.Error("c1 cannot reach its IPv6 gateway")
		}
		if !reaches(t, w.c1, "fd00:1::3") {
			t.Error("c1 cannot reach c2 over IPv6")
		}
		if !reaches(t, w.host, "fd00:1::2") {
			t.Error("the host cannot reach c1 over IPv6")
		}
	})

	t.Run("masquerade", func(t *testing.T) {
		run(t, w.outside, "nft", "add", "table", "inet", "probe")
		run(t, w.outside, "nft", "add", "counter", "inet", "probe", "fromhost")
		run(t, w.outside, "nft", "add", "counter", "inet", "probe", "fromcontainer")
		run(t, w.outside, "nft", "add", "chain", "inet", "probe", "input", "{ type filter hook input priority 0 ; }")
		run(t, w.outside, "nft", "add", "rule", "inet", "probe", "input", "ip6", "saddr", hostAddr6, "counter", "name", "fromhost")
		run(t, w.outside, "nft", "add", "rule", "inet", "probe", "input", "ip6", "saddr", "fd00::/8", "counter", "name", "fromcontainer")
		if !reaches(t, w.c1, server6) {
			t.Fatal("container on br0 cannot reach the server over IPv6")
		}
		if n := counter(t, w.outside, "fromhost"); n == 0 {
			t.Errorf("the server saw no packet from the host address %s", hostAddr6)
		}
		if n := counter(t, w.outside, "fromcontainer"); n != 0 {
			t.Errorf("the server saw %d packets from container addresses", n)
		}
	})

	t.Run("icc", func(t *testing.T) {
		noICC := br0v6
		noICC.ICC = false
		if err := fw.AddNetwork(ctx, noICC); err != nil {
			t.Fatal(err)
		}
		if !blocked(t, w.c1, "fd00:1::3") {
			t.Error("c1 reaches c2 over IPv6 with icc off")
		}
		if !reaches(t, w.c1, server6) {
			t.Error("with icc off, c1 no longer reaches the outside over IPv6")
		}
		if err := fw.AddNetwork(ctx, br0v6); err != nil {
			t.Fatal(err)
		}
		if !reaches(t, w.c1, "fd00:1::3") {
			t.Error("c1 cannot reach c2 over IPv6 after icc is back on")
		}
	})

	t.Run("isolation between networks", func(t *testing.T) {
		if !blocked(t, w.c1, "fd00:2::2") {
			t.Error("c1 on br0 reaches c3 on br1 over IPv6")
		}
		if !blocked(t, w.c3, "fd00:1::2") {
			t.Error("c3 on br1 reaches c1 on br0 over IPv6")
		}
	})

	t.Run("direct access from outside", func(t *testing.T) {
		run(t, w.outside, "ip", "-6", "route", "add", "fd00:1::/64", "via", hostAddr6)
		t.Cleanup(func() { run(t, w.outside, "ip", "-6", "route", "del", "fd00:1::/64") })
		if !blocked(t, w.outside, "fd00:1::2") {
			t.Error("the outside reaches c1 directly over IPv6")
		}
		// The raw drop, not the forward chain's, stopped them.
		if out := output(t, w.host, "nft", "list", "chain", "inet", "berth", "direct6__br0"); !regexp.MustCompile(`packets [1-9]`).MatchString(out) {
			t.Errorf("the raw IPv6 direct-access drop did not count the packets:\n%s", out)
		}
		if !reaches(t, w.c1, server6) {
			t.Error("replies to masqueraded IPv6 traffic no longer pass")
		}
		// Gateway6 is a host address: spared, as the IPv4 gateway is.
		if !reaches(t, w.outside, "fd00:1::1") {
			t.Error("the outside cannot reach br0's IPv6 gateway, a host address")
		}
	})

	t.Run("another network's gateway", func(t *testing.T) {
		if !reaches(t, w.c1, "fd00:2::1") {
			t.Error("c1 on br0 cannot reach br1's IPv6 gateway address")
		}
		if !reaches(t, w.c3, "fd00:1::1") {
			t.Error("c3 on br1 cannot reach br0's IPv6 gateway address")
		}
	})

	t.Run("internal network", func(t *testing.T) {
		if !reaches(t, w.c3, server6) {
			t.Fatal("c3 cannot reach the outside over IPv6 before br1 is internal")
		}
		internal := br1v6
		internal.Internal = true
		if err := fw.AddNetwork(ctx, internal); err != nil {
			t.Fatal(err)
		}
		if !blocked(t, w.c3, server6) {
			t.Error("c3 on an internal network reaches the outside over IPv6")
		}
		if !blocked(t, w.c1, "fd00:2::2") {
			t.Error("c1 reaches c3 on an internal network over IPv6")
		}
		// Forget c3's neighbour entry for the gateway: it must be
		// resolved again, through the internal network's host_in.
		run(t, w.c3, "ip", "-6", "neigh", "flush", "dev", "eth0")
		if !reaches(t, w.c3, "fd00:2::1") {
			t.Error("c3 on an internal network cannot reach its IPv6 gateway")
		}
	})

	t.Run("no rules after delete", func(t *testing.T) {
		for _, n := range []firewall.Network{br0v6, br1v6} {
			if err := fw.DelNetwork(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		// Without berth's rules forwarding is open: the blocks above were
		// the rules', not a broken world's.
		if !reaches(t, w.c1, "fd00:2::2") {
			t.Error("c1 cannot reach c3 over IPv6 with no rules at all")
		}
	})
}

// TestHostServicesClosedToContainersIPv6: host_in matches interfaces and
// transport headers, so it closes the host's IPv6 services as it closes
// the IPv4 ones, while DNS on the IPv6 gateway stays open.
func TestHostServicesClosedToContainersIPv6(t *testing.T) {
	w := newWorld6(t)
	listen(t, w.host, "[::]:8099")
	listen(t, w.host, "[::]:53")
	if !connectsWithin(t, w.c1, "[fd00:1::1]:8099") {
		t.Fatal("before berth's table, c1 cannot reach the host's IPv6 service: the test world is broken")
	}
	fw, err := New(w.host, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	if err := fw.Rebuild(context.Background(), []firewall.Network{br0v6, br1v6}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		from, name, addr string
		want             bool
	}{
		{w.c1, "c1 to its IPv6 gateway", "[fd00:1::1]:8099", false},
		{w.c1, "c1 to the host's outside IPv6 address", "[" + hostAddr6 + "]:8099", false},
		{w.c1, "c1 to another bridge's IPv6 gateway", "[fd00:2::1]:8099", false},
		{w.c1, "c1 to DNS on its IPv6 gateway", "[fd00:1::1]:53", true},
		{w.outside, "the outside to the host", "[" + hostAddr6 + "]:8099", true},
	} {
		connected := connects
		if tc.want {
			connected = connectsWithin
		}
		if got := connected(t, tc.from, tc.addr); got != tc.want {
			t.Errorf("%s (%s): connected = %v, want %v", tc.name, tc.addr, got, tc.want)
		}
	}
	// Refused with ICMPv6 administratively prohibited, which Linux
	// reports as EACCES (ICMP's, in IPv4, as EHOSTUNREACH).
	err = sandbox.Do(w.c1, func() error {
		c, err := net.DialTimeout("tcp6", "[fd00:1::1]:8099", 20*time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if !errors.Is(err, syscall.EACCES) {
		t.Errorf("connect to a host service over IPv6 from c1: %v, want EACCES (the ICMPv6 admin-prohibited)", err)
	}
}
