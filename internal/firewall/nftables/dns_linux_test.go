package nftables

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berth-net/berth/internal/nstest"
)

// TestRedirectDNS: the kernel lists exactly the rules RedirectDNS
// documents, and a second call (a restarted resolver, new ports)
// replaces them rather than adding to them.
func TestRedirectDNS(t *testing.T) {
	ns := nstest.New(t)
	resolver := netip.MustParseAddr("127.0.0.11")
	want := func(udp, tcp string) string {
		return `table ip berth-dns {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:` + udp + `
		ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:` + tcp + `
	}
}
`
	}
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
		{"add", "chain", "ip", DNSTableName, "x", "{ type filter hook output priority 0 ; }"},
		{"insert", "rule", "ip", DNSTableName, "output", "ip", "daddr", "127.0.0.11", "udp", "dport", "53", "dnat", "to", "127.0.0.11:999"},
	} {
		if err := RedirectDNS(ns, resolver, 40001, 40002); err != nil {
			t.Fatal(err)
		}
		output(t, ns, append([]string{"nft"}, change...)...)
		if u, tc, ok := DNSRedirected(ns, resolver); ok {
			t.Errorf("DNSRedirected after nft %q = %d, %d, true", change, u, tc)
		}
	}
	output(t, ns, "nft", "delete", "table", "ip", DNSTableName)
	if err := RedirectDNS(ns, resolver, 0, 0); err != nil {
		t.Fatal(err)
	}
	if u, tc, ok := DNSRedirected(ns, resolver); ok {
		t.Errorf("DNSRedirected of a redirect to port 0 = %d, %d, true", u, tc)
	}
}
