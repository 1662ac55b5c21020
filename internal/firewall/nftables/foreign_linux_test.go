package nftables

import (
	"os/exec"
	"slices"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
)

// TestForwardBlockers: the forward chains of other tables that would drop
// what berth forwards are found — iptables' FORWARD with policy DROP (as
// Docker and ufw leave it), an nft chain that ends in a reject (as
// firewalld's does) — and left out once a rule of theirs, or of a chain
// they jump to, names one of berth's bridges; berth's own table, chains
// that accept, and chains on other hooks never count.
func TestForwardBlockers(t *testing.T) {
	fw, ns := newTestFirewall(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		nstest.Unavailable(t, "iptables (Debian's iptables package, the nft variant) is not installed")
	}
	if err := fw.Rebuild(t.Context(), []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	bridges := []string{"berth0", "br-0123456789ab"}
	blockers := func(step string) []string {
		t.Helper()
		got, err := ForwardBlockers(ns, bridges)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var s []string
		for _, b := range got {
			s = append(s, b.String())
		}
		slices.Sort(s)
		return s
	}
	want := func(step string, w ...string) {
		t.Helper()
		if got := blockers(step); !slices.Equal(got, w) {
			t.Errorf("%s: blockers %q, want %q", step, got, w)
		}
	}
	want("berth's table alone")
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "ACCEPT")
	run(t, ns, "nft", "add table inet other; add chain inet other in { type filter hook input priority 0; policy drop; }")
	want("accepting FORWARD, a drop on the input hook")

	run(t, ns, "iptables", "-F", "FORWARD")
	run(t, ns, "iptables", "-P", "FORWARD", "DROP")
	want("iptables -P FORWARD DROP", "table ip filter, chain FORWARD (policy drop)")
	run(t, ns, "iptables", "-N", "DOCKER-USER")
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "DOCKER-USER")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-i", "eth7", "-j", "ACCEPT")
	want("a rule for another interface", "table ip filter, chain FORWARD (policy drop)")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-o", "br+", "-j", "ACCEPT")
	want("iptables -o br+ in a chain FORWARD jumps to")

	run(t, ns, "nft", "add table inet zonefw; add chain inet zonefw f { type filter hook forward priority 10; policy accept; }; add chain inet zonefw zones; add rule inet zonefw f jump zones; add rule inet zonefw f counter reject with icmpx admin-prohibited")
	run(t, ns, "ip6tables", "-P", "FORWARD", "DROP")
	want("a final reject; ip6tables -P FORWARD DROP",
		"table inet zonefw, chain f (its last rule rejects everything)", "table ip6 filter, chain FORWARD (policy drop)")
	run(t, ns, "nft", `add rule inet zonefw zones iifname "berth0" accept`)
	run(t, ns, "ip6tables", "-I", "FORWARD", "-i", "berth0", "-j", "ACCEPT")
	want("berth0 named")
	run(t, ns, "nft", "add table ip tailfw; add chain ip tailfw f { type filter hook forward priority 20; }; add rule ip tailfw f drop")
	want("a final drop", "table ip tailfw, chain f (its last rule drops everything)")
	run(t, ns, "nft", `insert rule ip tailfw f iifname "br-*" accept`)
	want("nft's br-* prefix")
}
