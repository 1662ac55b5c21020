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
// firewalld's does, or iptables' -j REJECT) — and left out once a rule
// of theirs, or of a chain they jump to, accepts one of berth's bridges
// (by name, prefix, set or verdict map); a rule that drops a bridge, or
// accepts all but it, is no answer; berth's own table, chains that
// accept, and chains on other hooks never count.
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
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "REJECT")
	want("iptables -A FORWARD -j REJECT (an xtables target)", "table ip filter, chain FORWARD (its last rule rejects everything)")
	run(t, ns, "iptables", "-F", "FORWARD")
	run(t, ns, "iptables", "-P", "FORWARD", "DROP")
	want("iptables -P FORWARD DROP", "table ip filter, chain FORWARD (policy drop)")
	run(t, ns, "iptables", "-N", "DOCKER-USER")
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "DOCKER-USER")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-i", "eth7", "-j", "ACCEPT")
	want("a rule for another interface", "table ip filter, chain FORWARD (policy drop)")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-i", "berth0", "-j", "DROP")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "!", "-o", "berth0", "-j", "ACCEPT")
	want("berth0 dropped, everything but berth0 accepted", "table ip filter, chain FORWARD (policy drop)")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-o", "br+", "-j", "ACCEPT")
	want("iptables -o br+ in a chain FORWARD jumps to")

	run(t, ns, "nft", "add table inet zonefw; add chain inet zonefw f { type filter hook forward priority 10; policy accept; }; add chain inet zonefw zones; add rule inet zonefw f jump zones; add rule inet zonefw f counter reject with icmpx admin-prohibited")
	run(t, ns, "ip6tables", "-P", "FORWARD", "DROP")
	want("a final reject; ip6tables -P FORWARD DROP",
		"table inet zonefw, chain f (its last rule rejects everything)", "table ip6 filter, chain FORWARD (policy drop)")
	run(t, ns, "nft", `add rule inet zonefw zones iifname { "berth0", "br-0123456789ab" } accept`)
	run(t, ns, "ip6tables", "-I", "FORWARD", "-i", "berth0", "-j", "ACCEPT")
	want("berth0 in an anonymous set; ip6tables -i berth0")
	run(t, ns, "nft", "add table ip tailfw; add chain ip tailfw f { type filter hook forward priority 20; }; add rule ip tailfw f drop")
	want("a final drop", "table ip tailfw, chain f (its last rule drops everything)")
	run(t, ns, "nft", `insert rule ip tailfw f iifname vmap { "berth0" : drop }`)
	want("berth0 dropped in a verdict map", "table ip tailfw, chain f (its last rule drops everything)")
	run(t, ns, "nft", `insert rule ip tailfw f iifname vmap { "eth9" : drop, "berth0" : accept }`)
	want("berth0 accepted in a verdict map")
	run(t, ns, "nft", "flush chain ip tailfw f; add rule ip tailfw f drop")
	run(t, ns, "nft", `insert rule ip tailfw f iifname "br-*" accept`)
	want("nft's br-* prefix")
}
