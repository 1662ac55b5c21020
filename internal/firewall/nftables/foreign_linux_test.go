package nftables

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
)

// TestForwardBlockers: the forward chains of other tables that would drop
// what berth forwards are found — iptables' FORWARD with policy DROP (as
// Docker and ufw leave it), an nft chain that ends in a reject (as
// firewalld's does, or iptables' -j REJECT) — with each bridge's legs
// (out of it, into it) that no rule accepts: a rule counts when it
// matches the bridge as that leg's interface (by name, prefix, set or
// verdict map) and accepts or jumps for it, or when a chain it jumps to
// for that traffic does; a rule that drops a bridge, accepts all but it,
// or can only match other interfaces is no answer. ip6 tables concern
// the bridges with IPv6 only; berth's own table, chains that accept, and
// chains on other hooks never count.
func TestForwardBlockers(t *testing.T) {
	fw, ns := newTestFirewall(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		nstest.Unavailable(t, "iptables (Debian's iptables package, the nft variant) is not installed")
	}
	if err := fw.Rebuild(t.Context(), []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	want := wantBlockers(t, ns, []ForwardBridge{{Name: "berth0", IPv4: true, IPv6: true}, {Name: "br-0123456789ab", IPv4: true}})
	const filter = "table ip filter, chain FORWARD (policy drop): "
	want("berth's table alone")
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "ACCEPT")
	run(t, ns, "nft", "add table inet other; add chain inet other in { type filter hook input priority 0; policy drop; }")
	want("accepting FORWARD, a drop on the input hook")

	run(t, ns, "iptables", "-F", "FORWARD")
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "REJECT")
	want("iptables -A FORWARD -j REJECT (an xtables target)",
		"table ip filter, chain FORWARD (its last rule rejects everything): berth0 (out, in), br-0123456789ab (out, in)")
	run(t, ns, "iptables", "-F", "FORWARD")
	run(t, ns, "iptables", "-P", "FORWARD", "DROP")
	want("iptables -P FORWARD DROP", filter+"berth0 (out, in), br-0123456789ab (out, in)")
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "ACCEPT")
	want("an accept of everything")
	run(t, ns, "iptables", "-F", "FORWARD")
	// The classic pair: replies in, everything out.
	run(t, ns, "iptables", "-A", "FORWARD", "-o", "berth0", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	run(t, ns, "iptables", "-A", "FORWARD", "-i", "berth0", "-s", "172.17.0.0/16", "-j", "ACCEPT")
	want("replies into berth0 (conntrack), berth0 out by subnet", filter+"berth0 (in), br-0123456789ab (out, in)")
	run(t, ns, "iptables", "-F", "FORWARD")
	run(t, ns, "iptables", "-A", "FORWARD", "-o", "berth0", "-j", "ACCEPT")
	want("-o berth0 only", filter+"berth0 (out), br-0123456789ab (out, in)")
	run(t, ns, "iptables", "-N", "DOCKER-USER")
	run(t, ns, "iptables", "-A", "FORWARD", "-j", "DOCKER-USER")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-i", "eth7", "-j", "ACCEPT")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-i", "berth0", "-j", "DROP")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-i", "berth0", "-j", "ACCEPT")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "-o", "eth9", "-j", "DROP")
	run(t, ns, "iptables", "-A", "DOCKER-USER", "!", "-i", "berth0", "-o", "br-0123456789ab", "-j", "ACCEPT")
	want("another interface; berth0 dropped before it is accepted; a drop for another way out; all but berth0 into br-…",
		filter+"berth0 (out), br-0123456789ab (out)")
	run(t, ns, "iptables", "-N", "MINE")
	run(t, ns, "iptables", "-A", "MINE", "-i", "br-0123456789ab", "-j", "ACCEPT")
	run(t, ns, "iptables", "-I", "FORWARD", "-i", "nonexistent", "-j", "MINE")
	want("a jump that cannot match br-…'s traffic out", filter+"berth0 (out), br-0123456789ab (out)")
	run(t, ns, "iptables", "-I", "FORWARD", "-j", "MINE")
	run(t, ns, "iptables", "-N", "BLOCK")
	run(t, ns, "iptables", "-A", "BLOCK", "-j", "REJECT")
	run(t, ns, "iptables", "-I", "FORWARD", "-i", "berth0", "-j", "BLOCK")
	want("a jump for everything to a chain that accepts br-…; berth0 out to a chain that rejects", filter+"berth0 (out)")
	run(t, ns, "iptables", "-R", "FORWARD", "1", "-i", "berth+", "-j", "ACCEPT")
	want("-i berth+")

	run(t, ns, "nft", "add table inet zonefw; add chain inet zonefw f { type filter hook forward priority 10; policy accept; }; add chain inet zonefw zones; add rule inet zonefw f jump zones; add rule inet zonefw f counter reject with icmpx admin-prohibited")
	run(t, ns, "ip6tables", "-P", "FORWARD", "DROP")
	want("a final reject; ip6tables -P FORWARD DROP (berth0 alone has IPv6)",
		"table inet zonefw, chain f (its last rule rejects everything): berth0 (out, in), br-0123456789ab (out, in)",
		"table ip6 filter, chain FORWARD (policy drop): berth0 (out, in)")
	run(t, ns, "nft", `add rule inet zonefw zones iifname { "berth0", "br-0123456789ab" } accept`)
	run(t, ns, "nft", `add rule inet zonefw zones oifname { "berth0", "eth0" } accept`)
	run(t, ns, "ip6tables", "-I", "FORWARD", "-i", "berth0", "-j", "ACCEPT")
	run(t, ns, "ip6tables", "-I", "FORWARD", "-o", "berth0", "-j", "ACCEPT")
	want("anonymous sets; ip6tables for berth0",
		"table inet zonefw, chain f (its last rule rejects everything): br-0123456789ab (in)")
	run(t, ns, "nft", `add rule inet zonefw zones oifname != { "eth0" } accept`)
	want("oifname not in { eth0 } accept: all but some is no name",
		"table inet zonefw, chain f (its last rule rejects everything): br-0123456789ab (in)")
	run(t, ns, "nft", `add rule inet zonefw zones oifname "br-0123456789ab" accept`)
	want("br-… named")

	run(t, ns, "nft", "add table ip tailfw; add chain ip tailfw f { type filter hook forward priority 20; }; add rule ip tailfw f drop")
	want("a final drop", "table ip tailfw, chain f (its last rule drops everything): berth0 (out, in), br-0123456789ab (out, in)")
	run(t, ns, "nft", `insert rule ip tailfw f iifname vmap { "berth0" : drop }`)
	run(t, ns, "nft", `insert rule ip tailfw f oifname vmap { "eth9" : drop, "berth0" : accept }`)
	want("berth0 dropped out, accepted in, in verdict maps", "table ip tailfw, chain f (its last rule drops everything): berth0 (out), br-0123456789ab (out, in)")
	run(t, ns, "nft", "flush chain ip tailfw f; add rule ip tailfw f drop")
	run(t, ns, "nft", `insert rule ip tailfw f iifname "br-*" accept`)
	run(t, ns, "nft", `insert rule ip tailfw f oifname "br-*" accept`)
	run(t, ns, "nft", `add chain ip tailfw mine`)
	run(t, ns, "nft", `insert rule ip tailfw f iifname "berth0" goto mine`)
	run(t, ns, "nft", `insert rule ip tailfw f oifname "berth0" goto mine`)
	want("nft's br-* prefix; a goto for berth0's own traffic")
}

// wantBlockers returns a check of ForwardBlockers for bridges in ns
// against the blockers wanted, "chain (why): dropped legs", in any order.
func wantBlockers(t *testing.T, ns string, bridges []ForwardBridge) func(step string, w ...string) {
	return func(step string, w ...string) {
		t.Helper()
		got, err := ForwardBlockers(ns, bridges)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var s []string
		for _, b := range got {
			s = append(s, b.String()+": "+strings.Join(b.Dropped, ", "))
		}
		slices.Sort(s)
		w = slices.Sorted(slices.Values(w))
		if !slices.Equal(s, w) {
			t.Errorf("%s: blockers\n%q\nwant\n%q", step, s, w)
		}
	}
}

// TestForwardBlockersLayouts: whole rulesets as other managers leave
// them, each in a namespace of its own: the chains berth0's traffic goes
// through, and what the check says of it.
func TestForwardBlockersLayouts(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		nstest.Unavailable(t, "iptables (Debian's iptables package, the nft variant) is not installed")
	}
	// firewalld's forward chain with berth0 in the trusted zone.
	trusted := [][]string{{"nft", `add table inet fw
add chain inet fw filter_FORWARD { type filter hook forward priority filter + 10; policy accept; }
add chain inet fw filter_FWD_trusted
add rule inet fw filter_FORWARD ct status dnat accept
add rule inet fw filter_FORWARD iifname "berth0" goto filter_FWD_trusted
add rule inet fw filter_FORWARD reject with icmpx admin-prohibited
add rule inet fw filter_FWD_trusted accept`}}
	for _, tc := range []struct {
		name string
		cmds [][]string
		want []string
	}{
		{"Docker 28 on the same host, a port published", [][]string{
			{"sh", "-c", `set -e
iptables -P FORWARD DROP
for c in DOCKER-USER DOCKER-FORWARD DOCKER-CT DOCKER-ISOLATION-STAGE-1 DOCKER-ISOLATION-STAGE-2 DOCKER-BRIDGE DOCKER; do iptables -N $c; done
iptables -A FORWARD -j DOCKER-USER
iptables -A FORWARD -j DOCKER-FORWARD
iptables -A DOCKER-USER -j RETURN
iptables -A DOCKER-FORWARD -j DOCKER-CT
iptables -A DOCKER-FORWARD -j DOCKER-ISOLATION-STAGE-1
iptables -A DOCKER-FORWARD -j DOCKER-BRIDGE
iptables -A DOCKER-FORWARD -i docker0 -j ACCEPT
iptables -A DOCKER-CT -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables -A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
iptables -A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
iptables -A DOCKER-BRIDGE -o docker0 -j DOCKER
iptables -A DOCKER -d 172.30.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
iptables -A DOCKER ! -i docker0 -o docker0 -j DROP`}},
			[]string{"table ip filter, chain FORWARD (policy drop): berth0 (out, in)"}},
		{"firewalld, zones by goto from a jumped-to chain", [][]string{
			{"nft", `add table inet fw
add chain inet fw filter_FORWARD { type filter hook forward priority filter + 10; policy accept; }
add chain inet fw filter_FORWARD_IN_ZONES
add chain inet fw filter_FWDI_public
add chain inet fw filter_FWDI_public_allow
add rule inet fw filter_FORWARD ct state established,related accept
add rule inet fw filter_FORWARD jump filter_FORWARD_IN_ZONES
add rule inet fw filter_FORWARD reject with icmpx admin-prohibited
add rule inet fw filter_FORWARD_IN_ZONES goto filter_FWDI_public
add rule inet fw filter_FWDI_public jump filter_FWDI_public_allow`}},
			[]string{"table inet fw, chain filter_FORWARD (its last rule rejects everything): berth0 (out, in)"}},
		{"firewalld's trusted zone for berth0, published ports by ct status dnat", trusted, nil},
		{"a drop that logs first, for another interface and then for berth0", [][]string{
			{"sh", "-c", `set -e
iptables -P FORWARD DROP
iptables -N LOGDROP
iptables -A LOGDROP -j LOG
iptables -A LOGDROP -j DROP
iptables -A FORWARD -o eth9 -j LOGDROP
iptables -A FORWARD -i berth0 -j LOGDROP
iptables -A FORWARD -o berth0 -m comment --comment "no way in" -j DROP
iptables -A FORWARD -i berth0 -j ACCEPT
iptables -A FORWARD -o berth0 -j ACCEPT`}},
			[]string{"table ip filter, chain FORWARD (policy drop): berth0 (out, in)"}},
		{"a jump for one subnet; a verdict map's jump to a chain that rejects", [][]string{
			{"sh", "-c", `set -e
iptables -P FORWARD DROP
iptables -N LAN
iptables -A LAN -j ACCEPT
iptables -A FORWARD -s 192.168.1.0/24 -j LAN
nft 'add table ip t; add chain ip t f { type filter hook forward priority 5; }; add chain ip t block; add rule ip t block reject; add rule ip t f iifname vmap { "berth0" : jump block }; add rule ip t f oifname vmap { "berth0" : accept }; add rule ip t f drop'`}},
			[]string{"table ip filter, chain FORWARD (policy drop): berth0 (out, in)", "table ip t, chain f (its last rule drops everything): berth0 (out)"}},
		{"libvirt's chains", [][]string{
			{"sh", "-c", `set -e
iptables -P FORWARD DROP
for c in LIBVIRT_FWX LIBVIRT_FWI LIBVIRT_FWO; do iptables -N $c; iptables -A FORWARD -j $c; done
iptables -A LIBVIRT_FWX -i virbr0 -o virbr0 -j ACCEPT
iptables -A LIBVIRT_FWI -d 192.168.122.0/24 -o virbr0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables -A LIBVIRT_FWI -o virbr0 -j REJECT
iptables -A LIBVIRT_FWO -s 192.168.122.0/24 -i virbr0 -j ACCEPT
iptables -A LIBVIRT_FWO -i virbr0 -j REJECT`}},
			[]string{"table ip filter, chain FORWARD (policy drop): berth0 (out, in)"}},
		{"ufw with `ufw route allow in on berth0`", [][]string{
			{"sh", "-c", `set -e
iptables -P FORWARD DROP
for c in ufw-before-forward ufw-user-forward ufw-after-forward ufw-reject-forward; do iptables -N $c; done
iptables -A FORWARD -j ufw-before-forward
iptables -A FORWARD -j ufw-after-forward
iptables -A FORWARD -j ufw-reject-forward
iptables -A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
iptables -A ufw-before-forward -j ufw-user-forward
iptables -A ufw-user-forward -i berth0 -j ACCEPT`}},
			[]string{"table ip filter, chain FORWARD (policy drop): berth0 (in) [ufw]"}},
		{"ct state as a set: replies in, everything out", [][]string{
			{"nft", `add table inet f
add chain inet f fw1 { type filter hook forward priority 0; policy drop; }
add rule inet f fw1 oifname "berth0" ct state { established, related } accept
add rule inet f fw1 iifname "berth0" accept`}},
			[]string{"table inet f, chain fw1 (policy drop): berth0 (in)"}},
		{"a last rule that jumps to a log-and-drop chain", [][]string{
			{"nft", `add table inet f
add chain inet f deny
add rule inet f deny log prefix "fw-deny " drop
add chain inet f fw1 { type filter hook forward priority 0; policy accept; }
add rule inet f fw1 ct state established,related accept
add rule inet f fw1 iifname "eth0" oifname "lan0" accept
add rule inet f fw1 jump deny`}},
			[]string{"table inet f, chain fw1 (its last rule jumps to deny, which drops everything): berth0 (out, in)"}},
		{"a commented final drop; ct state new and ct status dnat", [][]string{
			{"sh", "-c", `set -e
iptables -A FORWARD -m comment --comment "default deny" -j DROP
nft 'add table ip t; add chain ip t f { type filter hook forward priority 5; }; add rule ip t f ct status dnat accept; add rule ip t f iifname "berth0" ct state new accept; add rule ip t f drop'`}},
			[]string{"table ip filter, chain FORWARD (its last rule drops everything): berth0 (out, in)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ns := newTestFirewall(t)
			for _, c := range tc.cmds {
				run(t, ns, c...)
			}
			got, err := ForwardBlockers(ns, []ForwardBridge{{Name: "berth0", IPv4: true}})
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, b := range got {
				m := ""
				if b.Manager != "" {
					m = " [" + b.Manager + "]"
				}
				s = append(s, b.String()+": "+strings.Join(b.Dropped, ", ")+m)
			}
			slices.Sort(s)
			if !slices.Equal(s, tc.want) {
				t.Errorf("blockers\n%q\nwant\n%q", s, tc.want)
			}
		})
	}
	// The same trusted zone for a routed network: its ports are not
	// DNATed, so ct status dnat does not let them in.
	_, ns := newTestFirewall(t)
	for _, c := range trusted {
		run(t, ns, c...)
	}
	got, err := ForwardBlockers(ns, []ForwardBridge{{Name: "berth0", IPv4: true, Routed4: true}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !slices.Equal(got[0].Dropped, []string{"berth0 (in)"}) {
		t.Errorf("a routed berth0 in the trusted zone: %v, want its traffic in dropped", got)
	}
}

// TestForwardBlockersBetween: where br_netfilter passes a bridge's own
// traffic to the IP hooks, a forward chain also sees the containers'
// traffic to each other (in and out interface both the bridge): the leg
// "between", an internal network's only one. A rule counts for it when
// it names the bridge on either side and nothing else rules it out; an
// accept by "ct status dnat" (published ports) does not.
func TestForwardBlockersBetween(t *testing.T) {
	_, ns := newTestFirewall(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		nstest.Unavailable(t, "iptables (Debian's iptables package, the nft variant) is not installed")
	}
	bridges := []ForwardBridge{
		{Name: "berth0", IPv4: true, Bridged4: true},
		{Name: "br-int", IPv4: true, Internal: true, Bridged4: true},
		{Name: "br-nobrnf", IPv4: true, Internal: true}, // without br_netfilter: nothing to see
		{Name: "br-v6only", IPv6: true, Bridged4: true}, // bridge-nf-call-ip6tables off: its traffic between ports is not seen
	}
	want := wantBlockers(t, ns, bridges)
	const filter = "table ip filter, chain FORWARD (policy drop): "
	run(t, ns, "iptables", "-P", "FORWARD", "DROP")
	want("policy drop", filter+"berth0 (out, in, between), br-int (between)")
	run(t, ns, "iptables", "-A", "FORWARD", "-i", "berth0", "-o", "eth0", "-j", "ACCEPT")
	run(t, ns, "nft", "add rule ip filter FORWARD ct status dnat accept")
	want("berth0 out to eth0; published ports (ct status dnat)", filter+"berth0 (between), br-int (between)")
	run(t, ns, "iptables", "-A", "FORWARD", "-i", "br-int", "-o", "br-int", "-j", "ACCEPT")
	want("br-int to br-int", filter+"berth0 (between)")
	run(t, ns, "iptables", "-A", "FORWARD", "-o", "berth0", "-j", "ACCEPT")
	want("-o berth0")
	run(t, ns, "nft", "add table inet mine; add chain inet mine f { type filter hook forward priority 0; policy drop; }")
	want("an inet chain: each bridge's between leg by its own families",
		"table inet mine, chain f (policy drop): berth0 (out, in, between), br-int (between), br-v6only (out, in)")
}
