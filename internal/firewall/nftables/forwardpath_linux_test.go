package nftables

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/nstest"
)

// TestOtherForward: other tables' forward chains are evaluated for one
// packet, as the kernel would: interface names, addresses, protocol and
// destination port after DNAT, ct state new and ct status dnat are read;
// verdict maps, jumps, gotos, returns and policies followed; a match on
// what the packet does not say (a mark) leaves the answer undecided
// rather than guessed; berth's own table, chains on other hooks and
// tables of the other family never count.
func TestOtherForward(t *testing.T) {
	fw, ns := newTestFirewall(t)
	if err := fw.Rebuild(t.Context(), []firewall.Network{defaultBridge}); err != nil {
		t.Fatal(err)
	}
	out := ForwardPacket{Iif: "berth0", Oif: "eth0", Src: netip.MustParseAddr("172.17.0.2"), Dst: netip.MustParseAddr("203.0.113.9"),
		Proto: unix.IPPROTO_TCP, Dport: 443}
	in := ForwardPacket{Iif: "eth0", Oif: "berth0", Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("172.17.0.2"),
		Proto: unix.IPPROTO_TCP, Dport: 80, DNAT: true}
	in6 := ForwardPacket{Iif: "eth0", Oif: "berth0", Src: netip.MustParseAddr("2001:db8::7"), Dst: netip.MustParseAddr("fd00::2"),
		Proto: unix.IPPROTO_TCP, Dport: 80, DNAT: true}
	check := func(step string, p ForwardPacket, want string) {
		t.Helper()
		dropped, undecided, err := OtherForward(ns, p)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got := "through"
		switch {
		case dropped != nil:
			got = "dropped by " + dropped.String() + ": " + dropped.Rule
		case len(undecided) > 0:
			got = "undecided in " + undecided[0].String() + ": " + undecided[0].Rule
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: %s → %s: %s, want %s", step, p.Iif, p.Oif, got, want)
		}
	}
	nft := func(cmd string) { t.Helper(); run(t, ns, "nft", cmd) }

	check("berth's table alone", out, "through")
	nft("add table inet t; add chain inet t fw { type filter hook forward priority filter; policy drop; }")
	check("policy drop", out, "dropped by table inet t, chain fw: policy drop")
	nft(`add rule inet t fw iifname "berth0" accept`)
	check("accepted out of the bridge", out, "through")
	check("not into it", in, "dropped by table inet t, chain fw: policy drop")
	nft("add rule inet t fw ip daddr 172.17.0.2 tcp dport 80 accept")
	check("accepted by address and port after DNAT", in, "through")
	in81 := in
	in81.Dport = 81
	check("another port", in81, "dropped by table inet t, chain fw: policy drop")
	nft("flush chain inet t fw; add rule inet t fw ct status dnat accept")
	check("ct status dnat: a published port", in, "through")
	direct := in
	direct.DNAT = false
	check("ct status dnat: not DNATed", direct, "dropped")
	nft(`flush chain inet t fw; add rule inet t fw ct state established,related accept; add rule inet t fw ct state new oifname "berth0" accept`)
	check("ct state new", in, "through")
	check("ct state new, the other way", out, "dropped")
	check("the reply, established", ReplyTo(out), "through")
	nft(`flush chain inet t fw; add rule inet t fw iifname "berth0" accept`)
	check("the reply, with no established accept", ReplyTo(out), "dropped by table inet t, chain fw: policy drop")
	nft(`flush chain inet t fw; add rule inet t fw ct direction reply tcp sport 443 accept`)
	check("the reply's direction and source port", ReplyTo(out), "through")
	nft(`add chain inet t ok; add rule inet t ok tcp dport 443 accept; add rule inet t ok return`)
	nft(`flush chain inet t fw; add rule inet t fw iifname vmap { "berth0" : jump ok, "eth0" : drop }`)
	check("verdict map to a chain that accepts", out, "through")
	out80 := out
	out80.Dport = 80
	check("verdict map to a chain that returns", out80, "dropped by table inet t, chain fw: policy drop")
	check("verdict map's drop", in, "dropped by table inet t, chain fw: rule handle")
	nft(`flush chain inet t fw; add rule inet t fw meta mark 0x1 accept`)
	check("a mark is not read", out, "undecided in table inet t, chain fw: rule handle")
	nft(`flush chain inet t fw; add rule inet t fw iifname "br-*" accept comment "their bridges"`)
	check("a prefix that is not the bridge", out, "dropped")
	nft(`flush chain inet t fw; add rule inet t fw iifname "berth*" accept`)
	check("a prefix of the bridge", out, "through")
	nft(`flush chain inet t fw; add rule inet t fw oifname "eth0" tcp dport 443 drop comment "no https"; add rule inet t fw accept`)
	check("a drop in a chain whose policy drops", out, `dropped by table inet t, chain fw: rule handle`)
	dropped, _, _ := OtherForward(ns, out)
	if dropped == nil || !strings.Contains(dropped.Rule, `comment "no https"`) {
		t.Errorf("the deciding rule %+v should carry its comment", dropped)
	}
	nft("flush table inet t; delete table inet t")

	// The other family's tables do not see the packet; an ip6 table does
	// for IPv6.
	nft("add table ip6 six; add chain ip6 six fw { type filter hook forward priority filter; policy drop; }")
	check("an ip6 table, IPv4 packet", out, "through")
	check("an ip6 table, IPv6 packet", in6, "dropped by table ip6 six, chain fw: policy drop")
	nft("delete table ip6 six")
	// A chain on another hook does not count for the forward hook; the
	// input hook's chains decide a packet for the host (OtherInput), its
	// answer goes through the output hook's, and the prerouting hook's
	// filter chains see every packet as it arrives (OtherPrerouting).
	nft("add table inet other; add chain inet other in { type filter hook input priority 0; policy drop; }")
	check("input hook", out, "through")
	toHost := ForwardPacket{Iif: "eth0", Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("198.51.100.2"), Proto: unix.IPPROTO_TCP, Dport: 22}
	checkWith := func(step string, eval func(string, ForwardPacket) (*ForwardDecision, []ForwardDecision, error), p ForwardPacket, want string) {
		t.Helper()
		dropped, _, err := eval(ns, p)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		got := "through"
		if dropped != nil {
			got = "dropped by " + dropped.String() + ": " + dropped.Rule
		}
		if !strings.HasPrefix(got, want) || want == "through" && got != want {
			t.Errorf("%s: %s, want %s", step, got, want)
		}
	}
	checkWith("input policy drop", OtherInput, toHost, "dropped by table inet other, chain in: policy drop")
	nft("add rule inet other in tcp dport 22 accept")
	checkWith("input, an open port", OtherInput, toHost, "through")
	nft("add chain inet other out { type filter hook output priority 0; policy drop; }")
	checkWith("the answer, output policy drop", OtherInput, ReplyTo(toHost), "dropped by table inet other, chain out: policy drop")
	nft("add table ip raw; add chain ip raw pre { type filter hook prerouting priority raw; }; add rule ip raw pre iifname != \"berth0\" ip daddr 172.17.0.2 drop")
	prerouting := func(ns string, p ForwardPacket) (*ForwardDecision, []ForwardDecision, error) {
		return OtherPrerouting(ns, p, p)
	}
	checkWith("a raw drop for direct access", prerouting, ForwardPacket{Iif: "eth0", Src: in.Src, Dst: in.Dst, Proto: unix.IPPROTO_TCP, Dport: 80}, "dropped by table ip raw, chain pre: rule handle")
	checkWith("the raw drop spares the bridge", prerouting, ForwardPacket{Iif: "berth0", Src: netip.MustParseAddr("172.17.0.3"), Dst: in.Dst, Proto: unix.IPPROTO_TCP, Dport: 80}, "through")
	nft("delete table ip raw; delete table inet other")

	// A prerouting chain after DNAT (priority 0) sees the container's
	// address; one before it, the host's.
	nft("add table ip late; add chain ip late pre { type filter hook prerouting priority 0; }; add rule ip late pre iifname != \"berth0\" ip daddr 172.17.0.0/16 drop")
	preDNAT := ForwardPacket{Iif: "eth0", Src: in.Src, Dst: netip.MustParseAddr("198.51.100.2"), Proto: unix.IPPROTO_TCP, Dport: 8080}
	if dropped, _, err := OtherPrerouting(ns, preDNAT, in); err != nil || dropped == nil {
		t.Errorf("a prerouting chain after DNAT should see the container's address: %+v %v", dropped, err)
	}
	nft("delete table ip late")

	// What the evaluation cannot read leaves the answer undecided, never
	// a certain drop (review of session 25).
	for _, tc := range []struct{ name, rules string }{
		{"a data map that sets a mark", `add rule inet t fw meta mark set iifname map { "berth0" : 0x1, "eth9" : 0x2 }; add rule inet t fw meta mark 0x1 drop`},
		{"a meter", `add rule inet t fw tcp dport 443 meter m { ip saddr limit rate over 10/second } drop`},
		{"a named limit", `add limit inet t lim { rate over 1/second }; add rule inet t fw limit name "lim" drop`},
		{"a return on an unknown source port", `add chain inet t sub; add rule inet t sub tcp sport 1024-65535 return; add rule inet t sub drop; add rule inet t fw jump sub`},
		{"fib, which is not read", `add rule inet t fw meta l4proto tcp fib daddr type local drop`},
		{"rt, which the library does not hand over", `add rule inet t fw meta nfproto ipv4 rt ip nexthop 203.0.113.9 accept; add rule inet t fw drop`},
	} {
		nft("add table inet t; add chain inet t fw { type filter hook forward priority filter; policy accept; }")
		nft(tc.rules)
		dropped, undecided, err := OtherForward(ns, out)
		if err != nil || dropped != nil || len(undecided) == 0 {
			t.Errorf("%s: dropped %+v, undecided %+v, err %v; want undecided", tc.name, dropped, undecided, err)
		}
		nft("delete table inet t")
	}

	// iptables-nft's rules, as Docker's iptables backend and ufw write them.
	if _, err := exec.LookPath("iptables"); err != nil {
		nstest.Unavailable(t, "iptables (Debian's iptables package, the nft variant) is not installed")
	}
	run(t, ns, "iptables", "-P", "FORWARD", "DROP")
	check("iptables -P FORWARD DROP", out, "dropped by table ip filter, chain FORWARD: policy drop")
	run(t, ns, "iptables", "-A", "FORWARD", "-i", "berth0", "-j", "ACCEPT")
	check("iptables -i berth0 -j ACCEPT", out, "through")
	run(t, ns, "iptables", "-A", "FORWARD", "-d", "172.17.0.2/32", "-p", "tcp", "--dport", "80", "-j", "ACCEPT")
	check("iptables -d … -p tcp --dport 80 -j ACCEPT (ufw route allow)", in, "through")
	check("iptables, another port", in81, "dropped")
}
