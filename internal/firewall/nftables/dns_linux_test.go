package nftables

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/nstest"
)

// oldRedirect is the table berth wrote before its redirect was
// stateless: a NAT chain, which a newer RedirectDNS replaces.
const oldRedirect = `table ip berth-dns {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:30001
		ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:30002
	}
}
`

// TestRedirectDNS: the kernel lists exactly the rules RedirectDNS
// documents, and a second call (a restarted resolver, new ports)
// replaces them rather than adding to them, as it replaces an older
// berth's NAT chain.
func TestRedirectDNS(t *testing.T) {
	ns := nstest.New(t)
	resolver := netip.MustParseAddr("127.0.0.11")
	want := func(udp, tcp string) string {
		p, _ := strconv.Atoi(udp)
		udpHex := fmt.Sprintf("%#x", p)
		return `table ip berth-dns {
	chain output {
		type filter hook output priority raw; policy accept;
		ip daddr 127.0.0.11 udp dport 53 udp checksum 0 udp dport set ` + udp + `
		ip daddr 127.0.0.11 udp dport 53 udp dport set ` + udp + `
		ip daddr 127.0.0.11 tcp dport 53 tcp dport set ` + tcp + `
	}

	chain postrouting {
		type filter hook postrouting priority srcnat; policy accept;
		ip saddr 127.0.0.11 udp sport ` + udp + ` udp sport set 53
		ip saddr 127.0.0.11 tcp sport ` + tcp + ` tcp sport set 53
		ip saddr 127.0.0.11 icmp type destination-unreachable icmp code port-unreachable @th,64,8 0x45 @th,136,8 0x11 @th,192,32 0x7f00000b @th,240,16 ` + udpHex + ` @th,240,16 set 0x35
	}
}
`
	}
	nftInput(t, ns, oldRedirect)
	for _, ports := range [][2]uint16{{40001, 40002}, {41001, 41002}} {
		if err := RedirectDNS(ns, resolver, ports[0], ports[1]); err != nil {
			t.Fatal(err)
		}
		got := output(t, ns, "nft", "list", "table", "ip", DNSTableName)
		if diff := cmp.Diff(want(itoa(ports[0]), itoa(ports[1])), got); diff != "" {
			t.Errorf("ports %v (-want +kernel):\n%s", ports, diff)
		}
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// TestUnredirectDNS removes the table RedirectDNS made, and is no error
// where there is none.
func TestUnredirectDNS(t *testing.T) {
	ns := nstest.New(t)
	resolver := netip.MustParseAddr("127.0.0.11")
	if err := UnredirectDNS(ns); err != nil {
		t.Fatalf("without a table: %v", err)
	}
	if err := RedirectDNS(ns, resolver, 40001, 40002); err != nil {
		t.Fatal(err)
	}
	if err := UnredirectDNS(ns); err != nil {
		t.Fatal(err)
	}
	if out := output(t, ns, "nft", "list", "tables"); strings.Contains(out, DNSTableName) {
		t.Errorf("tables after UnredirectDNS:\n%s", out)
	}
}

// TestDNSRedirected reads back the ports of RedirectDNS's rules, and
// nothing from a namespace without them or whose table was changed.
func TestDNSRedirected(t *testing.T) {
	ns := nstest.New(t)
	resolver := netip.MustParseAddr("127.0.0.11")
	if u, tc, ok := DNSRedirected(ns, resolver); ok {
		t.Errorf("DNSRedirected of a namespace without the table = %d, %d, true", u, tc)
	}
	for _, ports := range [][2]uint16{{40001, 40002}, {41001, 41002}} {
		if err := RedirectDNS(ns, resolver, ports[0], ports[1]); err != nil {
			t.Fatal(err)
		}
		if u, tc, ok := DNSRedirected(ns, resolver); !ok || u != ports[0] || tc != ports[1] {
			t.Errorf("DNSRedirected after RedirectDNS(%v) = %d, %d, %v", ports, u, tc, ok)
		}
	}
	if u, tc, ok := DNSRedirected(ns, netip.MustParseAddr("127.0.0.12")); ok {
		t.Errorf("DNSRedirected for another resolver address = %d, %d, true", u, tc)
	}
	for _, change := range [][]string{
		{"chain", "ip", DNSTableName, "output", "{ policy drop ; }"},
		{"chain", "ip", DNSTableName, "postrouting", "{ policy drop ; }"},
		{"add", "chain", "ip", DNSTableName, "x", "{ type filter hook output priority 0 ; }"},
		{"insert", "rule", "ip", DNSTableName, "output", "ip", "daddr", "127.0.0.11", "udp", "dport", "53", "udp", "dport", "set", "999"},
		{"insert", "rule", "ip", DNSTableName, "postrouting", "counter"},
		{"delete", "chain", "ip", DNSTableName, "postrouting"},
		{"add", "table", "ip", DNSTableName, "{ flags dormant ; }"},
	} {
		if err := RedirectDNS(ns, resolver, 40001, 40002); err != nil {
			t.Fatal(err)
		}
		output(t, ns, append([]string{"nft"}, change...)...)
		if u, tc, ok := DNSRedirected(ns, resolver); ok {
			t.Errorf("DNSRedirected after nft %q = %d, %d, true", change, u, tc)
		}
	}
	// Each rule's ports are checked: answers rewritten from another
	// port than the query's go to nothing.
	if err := RedirectDNS(ns, resolver, 40001, 40002); err != nil {
		t.Fatal(err)
	}
	output(t, ns, "nft", "flush", "chain", "ip", DNSTableName, "postrouting")
	output(t, ns, "nft", "add", "rule", "ip", DNSTableName, "postrouting", "ip", "saddr", "127.0.0.11", "udp", "sport", "40001", "udp", "sport", "set", "53")
	output(t, ns, "nft", "add", "rule", "ip", DNSTableName, "postrouting", "ip", "saddr", "127.0.0.11", "tcp", "sport", "40009", "tcp", "sport", "set", "53")
	if u, tc, ok := DNSRedirected(ns, resolver); ok {
		t.Errorf("DNSRedirected with the TCP answers' rule for another port = %d, %d, true", u, tc)
	}
	output(t, ns, "nft", "delete", "table", "ip", DNSTableName)
	nftInput(t, ns, oldRedirect)
	if u, tc, ok := DNSRedirected(ns, resolver); ok {
		t.Errorf("DNSRedirected of an older berth's NAT redirect = %d, %d, true", u, tc)
	}
	output(t, ns, "nft", "delete", "table", "ip", DNSTableName)
	if err := RedirectDNS(ns, resolver, 0, 0); err != nil {
		t.Fatal(err)
	}
	if u, tc, ok := DNSRedirected(ns, resolver); ok {
		t.Errorf("DNSRedirected of a redirect to port 0 = %d, %d, true", u, tc)
	}
}

// nftInput loads rules, in nft's own syntax, in the namespace at ns.
func nftInput(t *testing.T, ns, rules string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, ns, "nft", "-f", f)
}
