package daemon

import (
	"strings"
	"testing"

	"github.com/berth-net/berth/internal/firewall/nftables"
)

// TestForwardWarning: the rules a warning asks for are the blocking
// tool's, one per direction for each bridge it drops, by its exact name
// (a br-+ would open other managers' bridges too).
func TestForwardWarning(t *testing.T) {
	bridges := []string{"berth0", "br-0123456789ab", "br-ba9876543210", "web0"}
	dropped := []string{"berth0 (out, in)", "br-0123456789ab (out, in)", "br-ba9876543210 (in)", "web0 (out)"}
	for _, tc := range []struct {
		b    nftables.ForwardBlocker
		want []string
	}{
		{nftables.ForwardBlocker{Family: "ip", Table: "filter", Chain: "FORWARD", Why: "policy drop"}, []string{
			"WARNING: table ip filter, chain FORWARD (policy drop) drops what berth forwards through berth0 (out, in), br-0123456789ab (out, in), br-ba9876543210 (in), web0 (out)",
			"iptables -I FORWARD -i berth0 -j ACCEPT; iptables -I FORWARD -o berth0 -j ACCEPT; iptables -I FORWARD -i br-0123456789ab -j ACCEPT; iptables -I FORWARD -o br-0123456789ab -j ACCEPT; iptables -I FORWARD -i br-ba9876543210 -j ACCEPT",
		}},
		{nftables.ForwardBlocker{Family: "ip6", Table: "filter", Chain: "FORWARD", Why: "policy drop"}, []string{"ip6tables -I FORWARD -i web0 -j ACCEPT"}},
		{nftables.ForwardBlocker{Family: "ip", Table: "filter", Chain: "FORWARD", Why: "policy drop", Manager: "ufw"}, []string{
			"ufw route allow in on berth0; ufw route allow out on berth0; ufw route allow in on br-0123456789ab"}},
		{nftables.ForwardBlocker{Family: "inet", Table: "firewalld", Chain: "filter_FORWARD", Why: "its last rule rejects everything"}, []string{
			"firewall-cmd --permanent --zone=trusted --add-interface=br-ba9876543210; firewall-cmd --permanent --zone=trusted --add-interface=web0; firewall-cmd --reload"}},
		{nftables.ForwardBlocker{Family: "inet", Table: "mine", Chain: "fwd", Why: "policy drop"}, []string{
			`nft insert rule inet mine fwd iifname "berth0" accept; nft insert rule inet mine fwd oifname "berth0" accept`,
			`nft insert rule inet mine fwd iifname "br-ba9876543210" accept; nft insert rule inet mine fwd oifname "br-ba9876543210" accept`}},
	} {
		tc.b.Bridges, tc.b.Dropped = bridges, dropped
		got := forwardWarning(tc.b)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%v: warning lacks %q:\n%s", tc.b, w, got)
			}
		}
	}
}
