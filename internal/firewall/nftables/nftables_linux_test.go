package nftables

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
	"github.com/google/go-cmp/cmp"
)

// The networks of firewall's golden files (internal/firewall/testdata).
var (
	defaultBridge = firewall.Network{Bridge: "berth0", Subnet: netip.MustParsePrefix("172.17.0.0/16"), Gateway: netip.MustParseAddr("172.17.0.1"), ICC: true, Masquerade: true}
	userNoICC     = firewall.Network{Bridge: "br-0123456789ab", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Masquerade: true}
	internalNet   = firewall.Network{Bridge: "br-internal", Subnet: netip.MustParsePrefix("172.19.0.0/16"), ICC: true, Masquerade: true, Internal: true}
	noMasq        = firewall.Network{Bridge: "br-nomasq", Subnet: netip.MustParsePrefix("192.168.16.0/20"), ICC: true}
)

// The networks of the golden file dual-stack (firewall's dualStack).
var dualStack = []firewall.Network{
	withIPv6(defaultBridge, "fd49:efd7:54aa::/64", "fd49:efd7:54aa::1"),
	{Bridge: "br-v6noicc", Subnet: netip.MustParsePrefix("172.18.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:18::/64"), Masquerade: true},
	{Bridge: "br-v6int", Subnet: netip.MustParsePrefix("172.19.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:19::/64"), Gateway6: netip.MustParseAddr("fd00:19::1"), ICC: true, Masquerade: true, Internal: true},
	{Bridge: "br-v6nomasq", Subnet: netip.MustParsePrefix("192.168.16.0/20"), Subnet6: netip.MustParsePrefix("2001:db8:16::/56"), ICC: true},
	{
		Bridge: "br-v6open", Subnet: netip.MustParsePrefix("10.10.0.0/24"), Gateway: netip.MustParseAddr("10.10.0.1"),
		Subnet6: netip.MustParsePrefix("fd00:aa:bb:c0::/58"), Gateway6: netip.MustParseAddr("fd00:aa:bb:c0::1"),
		ICC: true, Masquerade: true, HostAccess: true,
	},
}

func withIPv6(n firewall.Network, subnet, gw string) firewall.Network {
	n.Subnet6 = netip.MustParsePrefix(subnet)
	if gw != "" {
		n.Gateway6 = netip.MustParseAddr(gw)
	}
	return n
}

var goldenCases = []struct {
	name string
	nets []firewall.Network
}{
	{"empty", nil},
	{"default-bridge", []firewall.Network{defaultBridge}},
	{"user-network-icc-false", []firewall.Network{defaultBridge, userNoICC}},
	{"internal", []firewall.Network{defaultBridge, internalNet}},
	{"masquerade-off", []firewall.Network{defaultBridge, noMasq}},
	{"dual-stack", dualStack},
	{"snat", []firewall.Network{defaultBridge, {
		Bridge: "br-snat", Subnet: netip.MustParsePrefix("172.20.0.0/16"), Subnet6: netip.MustParsePrefix("fd00:20::/64"),
		ICC: true, Masquerade: true, SNAT4: netip.MustParseAddr("198.51.100.42"), SNAT6: netip.MustParseAddr("2001:db8::42"),
	}}},
}

// TestRebuildMatchesGolden applies each golden case through netlink and
// compares what the kernel lists with the golden text; it also loads the same
// text with nft -f in another namespace and requires the two listings to be
// identical, which proves the netlink form and the text form agree.
func TestRebuildMatchesGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			fw, ns := newTestFirewall(t)
			if err := fw.Rebuild(context.Background(), tc.nets); err != nil {
				t.Fatalf("Rebuild: %v", err)
			}
			matchesGolden(t, ns, tc.name)
		})
	}
}

func TestAddAndDelNetwork(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want []firewall.Network
	}{
		{"add user network", func() error { return fw.AddNetwork(ctx, userNoICC) }, []firewall.Network{defaultBridge, userNoICC}},
		{"add it again", func() error { return fw.AddNetwork(ctx, userNoICC) }, []firewall.Network{defaultBridge, userNoICC}},
		{"add internal", func() error { return fw.AddNetwork(ctx, internalNet) }, []firewall.Network{defaultBridge, userNoICC, internalNet}},
		{"add no-masquerade", func() error { return fw.AddNetwork(ctx, noMasq) }, []firewall.Network{defaultBridge, userNoICC, internalNet, noMasq}},
		{"delete user network", func() error { return fw.DelNetwork(ctx, userNoICC) }, []firewall.Network{defaultBridge, internalNet, noMasq}},
		{"delete it again", func() error { return fw.DelNetwork(ctx, userNoICC) }, []firewall.Network{defaultBridge, internalNet, noMasq}},
		{"delete internal", func() error { return fw.DelNetwork(ctx, internalNet) }, []firewall.Network{defaultBridge, noMasq}},
		{"delete no-masquerade", func() error { return fw.DelNetwork(ctx, noMasq) }, []firewall.Network{defaultBridge}},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		checkTable(t, ns, s.name, s.want)
	}
	got := listTable(t, ns)
	for _, gone := range []string{userNoICC.Bridge, internalNet.Bridge, noMasq.Bridge, "172.18.", "172.19.", "192.168."} {
		if strings.Contains(got, gone) {
			t.Errorf("table still mentions %q after DelNetwork:\n%s", gone, got)
		}
	}
}

func TestAddNetworkReplacesSameBridge(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge, userNoICC}); err != nil {
		t.Fatal(err)
	}
	changed := userNoICC
	changed.Subnet = netip.MustParsePrefix("10.20.0.0/24")
	changed.ICC, changed.Masquerade = true, false
	if err := fw.AddNetwork(ctx, changed); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "replace user network", []firewall.Network{defaultBridge, changed})
	changed.Internal = true
	if err := fw.AddNetwork(ctx, changed); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "make it internal", []firewall.Network{defaultBridge, changed})
}

// TestAdjacentSubnets: in the interval map the end of one subnet is the
// start of the next; deleting one must leave the other's interval whole.
func TestAdjacentSubnets(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	a := firewall.Network{Bridge: "br-a", Subnet: netip.MustParsePrefix("10.0.0.0/24"), Masquerade: true}
	b := firewall.Network{Bridge: "br-b", Subnet: netip.MustParsePrefix("10.0.1.0/24"), Masquerade: true}
	c := firewall.Network{Bridge: "br-c", Subnet: netip.MustParsePrefix("10.0.2.0/23"), Masquerade: true}
	if err := fw.Rebuild(ctx, []firewall.Network{a, c}); err != nil {
		t.Fatal(err)
	}
	if err := fw.AddNetwork(ctx, b); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "three adjacent", []firewall.Network{a, b, c})
	if err := fw.DelNetwork(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := fw.DelNetwork(ctx, c); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "middle one left", []firewall.Network{b})
	top := firewall.Network{Bridge: "br-top", Subnet: netip.MustParsePrefix("255.255.255.0/24"), Masquerade: true}
	if err := fw.AddNetwork(ctx, top); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "subnet at the top of the address space", []firewall.Network{b, top})
	if err := fw.DelNetwork(ctx, top); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "top deleted", []firewall.Network{b})
}

func TestAddNetworkRejectsOverlap(t *testing.T) {
	fw, ns := newTestFirewall(t)
	ctx := context.Background()
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	clash := firewall.Network{Bridge: "br-clash", Subnet: netip.MustParsePrefix("172.17.5.0/24")}
	if err := fw.AddNetwork(ctx, clash); err == nil {
		t.Fatal("AddNetwork accepted a subnet inside berth0's")
	}
	checkTable(t, ns, "after rejected add", []firewall.Network{defaultBridge})
}

// TestRebuildRepairsTable damages the table the ways an administrator might
// and checks that Rebuild restores exactly berth's table.
func TestRebuildRepairsTable(t *testing.T) {
	damage := map[string][]string{
		"flushed":       {"flush table inet berth"},
		"deleted":       {"delete table inet berth"},
		"foreign chain": {"add chain inet berth intruder", "add rule inet berth intruder accept"},
		"map emptied":   {"flush map inet berth fwd_in"},
		"rule deleted":  {"flush chain inet berth fwd_in__berth0"},
	}
	for name, cmds := range damage {
		t.Run(name, func(t *testing.T) {
			fw, ns := newTestFirewall(t)
			nets := []firewall.Network{defaultBridge, userNoICC}
			ctx := context.Background()
			if err := fw.Rebuild(ctx, nets); err != nil {
				t.Fatal(err)
			}
			for _, c := range cmds {
				run(t, ns, append([]string{"nft"}, strings.Fields(c)...)...)
			}
			if err := fw.Rebuild(ctx, nets); err != nil {
				t.Fatalf("Rebuild after %s: %v", name, err)
			}
			checkTable(t, ns, "rebuilt", nets)
		})
	}
}

// TestChangesAfterDamage: Add and Del still leave the right table when the
// table was changed behind berth's back (they fall back to a rebuild).
func TestChangesAfterDamage(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge, userNoICC}); err != nil {
		t.Fatal(err)
	}
	run(t, ns, "nft", "delete", "table", "inet", "berth")
	if err := fw.AddNetwork(ctx, noMasq); err != nil {
		t.Fatalf("AddNetwork on a deleted table: %v", err)
	}
	// The skeleton and the new network are back; berth0's and the user
	// network's own chains come back with the next Rebuild or their Add.
	if err := fw.DelNetwork(ctx, noMasq); err != nil {
		t.Fatal(err)
	}
	if err := fw.AddNetwork(ctx, defaultBridge); err != nil {
		t.Fatal(err)
	}
	run(t, ns, "nft", "delete", "element", "inet", "berth", "fwd_out", `{ "br-0123456789ab" }`)
	if err := fw.DelNetwork(ctx, userNoICC); err != nil {
		t.Fatalf("DelNetwork with an element missing: %v", err)
	}
	checkTable(t, ns, "after repairs", []firewall.Network{defaultBridge})
}

// TestDelNetworkUnknownToThisFirewall removes what an earlier daemon left.
func TestDelNetworkUnknownToThisFirewall(t *testing.T) {
	ctx := context.Background()
	old, ns := newTestFirewall(t)
	if err := old.Rebuild(ctx, []firewall.Network{defaultBridge, userNoICC, noMasq}); err != nil {
		t.Fatal(err)
	}
	fresh, err := New(ns, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	for _, n := range []firewall.Network{userNoICC, noMasq, noMasq} {
		if err := fresh.DelNetwork(ctx, n); err != nil {
			t.Fatalf("DelNetwork(%q): %v", n.Bridge, err)
		}
	}
	checkTable(t, ns, "after deleting leftovers", []firewall.Network{defaultBridge})
	empty, err := New(nstest.New(t), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { empty.Close() })
	if err := empty.DelNetwork(ctx, userNoICC); err != nil {
		t.Errorf("DelNetwork without any table: %v", err)
	}
}

// TestAddBeforeRebuildKeepsOtherNetworks: a Firewall that has not rebuilt
// yet adds its network to the table an earlier daemon left, without
// dropping that daemon's networks or doubling the base chains' rules.
func TestAddBeforeRebuildKeepsOtherNetworks(t *testing.T) {
	ctx := context.Background()
	old, ns := newTestFirewall(t)
	if err := old.Rebuild(ctx, []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	fresh, err := New(ns, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fresh.Close() })
	for range 2 {
		if err := fresh.AddNetwork(ctx, userNoICC); err != nil {
			t.Fatal(err)
		}
	}
	checkTable(t, ns, "after add", []firewall.Network{defaultBridge, userNoICC})
}

func TestOtherTablesUntouched(t *testing.T) {
	fw, ns := newTestFirewall(t)
	run(t, ns, "nft", "add", "table", "inet", "other")
	run(t, ns, "nft", "add", "chain", "inet", "other", "fwdchain", "{ type filter hook forward priority 0; policy accept; }")
	run(t, ns, "nft", "add", "rule", "inet", "other", "fwdchain", "iifname", `"berth0"`, "accept")
	before := output(t, ns, "nft", "list", "table", "inet", "other")
	ctx := context.Background()
	for _, err := range []error{
		fw.Rebuild(ctx, []firewall.Network{defaultBridge}),
		fw.AddNetwork(ctx, userNoICC),
		fw.DelNetwork(ctx, userNoICC),
		fw.DelNetwork(ctx, defaultBridge),
		fw.Rebuild(ctx, nil),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(before, output(t, ns, "nft", "list", "table", "inet", "other")); diff != "" {
		t.Errorf("table inet other changed (-before +after):\n%s", diff)
	}
}

// TestOwnNamespace runs New("") — the daemon's case — in a child test
// process that unshare put in a namespace of its own.
func TestOwnNamespace(t *testing.T) {
	if os.Getenv("BERTH_NFT_OWN_NETNS") == "1" {
		fw, err := New("", testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		defer fw.Close()
		if err := fw.Rebuild(context.Background(), []firewall.Network{defaultBridge}); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("nft", "list", "table", "inet", "berth").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v\n%s", err, out)
		}
		if !strings.Contains(string(out), "fwd_in__berth0") {
			t.Fatalf("table in the own namespace lacks berth0:\n%s", out)
		}
		return
	}
	nstest.RequireRoot(t)
	cmd := exec.Command("unshare", "--net", "--", os.Args[0], "-test.run", "^TestOwnNamespace$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "BERTH_NFT_OWN_NETNS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child in its own namespace: %v\n%s", err, out)
	}
}

// TestDiscardSendsNothing: a half-queued batch thrown away by discard must
// not reach the kernel, and the connection must work afterwards.
func TestDiscardSendsNothing(t *testing.T) {
	ctx := context.Background()
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(ctx, []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	fw.conn.DelTable(table)
	fw.discard()
	checkTable(t, ns, "after discard", []firewall.Network{defaultBridge})
	if err := fw.AddNetwork(ctx, userNoICC); err != nil {
		t.Fatal(err)
	}
	checkTable(t, ns, "next batch", []firewall.Network{defaultBridge, userNoICC})
}

func TestNewBadNamespace(t *testing.T) {
	nstest.RequireRoot(t)
	for _, p := range []string{filepath.Join(t.TempDir(), "missing"), "/dev/null"} {
		if fw, err := New(p, nil); err == nil {
			fw.Close()
			t.Errorf("New(%q) succeeded", p)
		}
	}
}
