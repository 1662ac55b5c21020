package cli

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/network"
)

func TestSplitExplainTarget(t *testing.T) {
	for _, tc := range []struct {
		in, end string
		port    uint16
		err     string
	}{
		{"web", "web", 0, ""},
		{"web:80", "web", 80, ""},
		{"host:8080", "host", 8080, ""},
		{"10.0.0.2", "10.0.0.2", 0, ""},
		{"10.0.0.2:53", "10.0.0.2", 53, ""},
		{"fd00::2", "fd00::2", 0, ""},
		{"[fd00::2]:443", "fd00::2", 443, ""},
		{"web:http", "", 0, "invalid destination"},
		{"web:0", "", 0, "invalid destination"},
		{":80", "", 0, "invalid destination"},
		{"[fd00::2]:0", "", 0, "invalid port"},
		{"web:70000", "", 0, "invalid destination"},
	} {
		end, port, err := splitExplainTarget(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || end != tc.end || port != tc.port {
			t.Errorf("%q: %q %d %v, want %q %d", tc.in, end, port, err, tc.end, tc.port)
		}
	}
}

func TestExplainVerdict(t *testing.T) {
	drop := firewall.Step{Hook: "prerouting", Chain: "direct__berth0", Rule: `counter drop comment "DIRECT ACCESS DROP"`, Effect: "drop"}
	route := firewall.Step{Hook: "routing", Effect: "for the host itself"}
	other := firewall.Step{Hook: "forward", Chain: "table ip filter, chain FORWARD", Rule: "policy drop", Effect: "drop (docker info says what to add there)"}
	inside := firewall.Step{Hook: "container", Effect: "for the container itself: it never leaves the container's namespace"}
	accept := firewall.Step{Hook: "forward", Chain: "fwd_in__berth0", Rule: `ct status dnat accept comment "PUBLISHED PORTS"`, Effect: "accept"}
	for _, tc := range []struct {
		ex   firewall.Explanation
		want string
	}{
		{firewall.Explanation{Outcome: firewall.Dropped, Decision: &drop},
			`DROPPED: table inet berth, chain direct__berth0: counter drop comment "DIRECT ACCESS DROP"`},
		{firewall.Explanation{Outcome: firewall.Delivered, Decision: &route},
			"DELIVERED to the host itself: for the host itself (no rule of berth's decides it)"},
		{firewall.Explanation{Outcome: firewall.Dropped, Decision: &other},
			"DROPPED: table ip filter, chain FORWARD, policy drop: drop (docker info says what to add there)"},
		{firewall.Explanation{Outcome: firewall.Delivered, Decision: &inside},
			"DELIVERED inside the container: for the container itself: it never leaves the container's namespace"},
		{firewall.Explanation{Outcome: firewall.Delivered, Decision: &accept, Oif: "berth0", DNAT: netip.MustParseAddrPort("172.17.0.2:80"), Masquerade: true},
			`DELIVERED out of berth0, to 172.17.0.2:80 (a published port), its source masqueraded: table inet berth, chain fwd_in__berth0: ct status dnat accept comment "PUBLISHED PORTS"`},
		{firewall.Explanation{Outcome: firewall.NoRoute}, "NO ROUTE"},
	} {
		if got := explainVerdict(network.Explanation{Explanation: tc.ex}); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	var b strings.Builder
	if err := printExplanation(&b, network.Explanation{From: "a", To: "b", Explanation: firewall.Explanation{Packet: "tcp a → b:80", Outcome: firewall.Dropped,
		Decision: &drop, Steps: []firewall.Step{route, drop}, Notes: []string{"n"}}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tcp a → b:80\n  from a\n  to   b\n", "HOOK", "routing     -", "direct__berth0", "\nDROPPED: ", "note: n\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("printed %q, want %q in it", b.String(), want)
		}
	}
}
