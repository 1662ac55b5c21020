package nftables

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
)

// TestAddAndDelDualStack: AddNetwork gives a network its IPv6 rules,
// replaces them when the IPv6 subnet changes, removes them when the
// network loses IPv6, and DelNetwork leaves nothing of them.
func TestAddAndDelDualStack(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	user := withIPv6(userNoICC, "fd00:18::7/64", "fd00:18::1") // host bits: masked
	moved := withIPv6(userNoICC, "fd00:28::/64", "")
	internal := withIPv6(internalNet, "fd00:19::/64", "fd00:19::1")
	steps := []struct {
		name string
		n    firewall.Network
		del  bool
		want []firewall.Network
	}{
		{"add dual-stack network", user, false, []firewall.Network{defaultBridge, user}},
		{"add it again", user, false, []firewall.Network{defaultBridge, user}},
		{"move its IPv6 subnet", moved, false, []firewall.Network{defaultBridge, moved}},
		{"drop its IPv6", userNoICC, false, []firewall.Network{defaultBridge, userNoICC}},
		{"give it IPv6 again", user, false, []firewall.Network{defaultBridge, user}},
		{"add dual-stack internal", internal, false, []firewall.Network{defaultBridge, user, internal}},
		{"delete dual-stack network", user, true, []firewall.Network{defaultBridge, internal}},
		{"delete it again", user, true, []firewall.Network{defaultBridge, internal}},
		{"delete internal", internal, true, []firewall.Network{defaultBridge}},
	}
	for _, s := range steps {
		var err error
		if s.del {
			err = fw.DelNetwork(ctx, s.n)
		} else {
			err = fw.AddNetwork(ctx, s.n)
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		checkTable(t, ns, s.name, s.want)
	}
	if got := listTable(t, ns); strings.Contains(got, "fd00:") || strings.Contains(got, "ipv6-icmp") {
		t.Errorf("table still has IPv6 rules after DelNetwork:\n%s", got)
	}
}

// TestAdjacentIPv6Subnets is TestAdjacentSubnets for the direct6 interval
// map, including a subnet at the top of the IPv6 address space.
func TestAdjacentIPv6Subnets(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	v4 := func(br, s string) firewall.Network {
		return firewall.Network{Bridge: br, Subnet: netip.MustParsePrefix(s), Masquerade: true}
	}
	a := withIPv6(v4("br-a", "10.0.0.0/24"), "fd00:1::/64", "")
	b := withIPv6(v4("br-b", "10.0.1.0/24"), "fd00:1:0:1::/64", "")
	c := withIPv6(v4("br-c", "10.0.2.0/24"), "fd00:1:0:2::/63", "")
	if err := fw.Rebuild(ctx, []firewall.Network{a, c}); err != nil {
		t.Fatal(err)
	}
	if err := fw.AddNetwork(ctx, b); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "three adjacent", []firewall.Network{a, b, c})
	for _, n := range []firewall.Network{a, c} {
		if err := fw.DelNetwork(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	checkTable(t, ns, "middle one left", []firewall.Network{b})
	top := withIPv6(v4("br-top", "10.0.9.0/24"), "ffff:ffff:ffff:ffff::/64", "ffff:ffff:ffff:ffff::1")
	if err := fw.AddNetwork(ctx, top); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "subnet at the top of the IPv6 space", []firewall.Network{b, top})
	if err := fw.DelNetwork(ctx, top); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "top deleted", []firewall.Network{b})
}

// TestAddNetworkRejectsIPv6Overlap: an IPv6 subnet inside another
// network's is refused before anything reaches the kernel.
func TestAddNetworkRejectsIPv6Overlap(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	dual := withIPv6(defaultBridge, "fd00:17::/48", "fd00:17::1")
	if err := fw.Rebuild(ctx, []firewall.Network{dual}); err != nil {
		t.Fatal(err)
	}
	clash := withIPv6(userNoICC, "fd00:17:0:5::/64", "")
	if err := fw.AddNetwork(ctx, clash); err == nil {
		t.Fatal("AddNetwork accepted an IPv6 subnet inside berth0's")
	}
	checkTable(t, ns, "after rejected add", []firewall.Network{dual})
}

// TestDelDualStackNetworkUnknownToThisFirewall: a daemon that did not add
// the network still removes its IPv6 objects when told its IPv6 subnet.
func TestDelDualStackNetworkUnknownToThisFirewall(t *testing.T) {
	ctx := context.Background()
	old, ns := newTestFirewall(t)
	user := withIPv6(userNoICC, "fd00:18::/64", "fd00:18::1")
	if err := old.Rebuild(ctx, []firewall.Network{defaultBridge, user}); err != nil {
		t.Fatal(err)
	}
	fresh, err := New(ns, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	if err := fresh.DelNetwork(ctx, user); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "after deleting leftovers", []firewall.Network{defaultBridge})
}
