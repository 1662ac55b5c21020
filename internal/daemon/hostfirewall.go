package daemon

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/network"
)

// forwardWarnings are docker info's warnings about the host's firewall:
// one per forward chain of another table that drops what berth forwards
// and has no rule for berth's bridges (nftables.ForwardBlockers). berth
// never writes into another table; it says what to add there. A check
// that fails is a warning too, rather than an /info that fails.
func (d *Daemon) forwardWarnings() []string {
	bridges := d.forwardBridges()
	if len(bridges) == 0 {
		return nil
	}
	blockers, err := nftables.ForwardBlockers("", bridges)
	if err != nil {
		return []string{"WARNING: cannot read the host's nftables forward chains: " + err.Error()}
	}
	var out []string
	for _, b := range blockers {
		out = append(out, forwardWarning(b))
	}
	return out
}

// forwardBridges are the bridges of the networks whose traffic the
// host's forward chains see, by name: what they forward out and in
// (never an internal network's), and, where br_netfilter passes it to
// the IP hooks (bridge-nf-call-iptables, which berth itself turns on for
// a network with ICC off, as Docker does), what goes between the
// containers of one bridge, internal networks' included.
func (d *Daemon) forwardBridges() []nftables.ForwardBridge {
	bridged4 := sysctlOn("/proc/sys/net/bridge/bridge-nf-call-iptables")
	bridged6 := sysctlOn("/proc/sys/net/bridge/bridge-nf-call-ip6tables")
	var bridges []nftables.ForwardBridge
	for _, n := range d.net.Networks() {
		if n.Driver != network.DriverBridge || n.Bridge == nil || n.Internal && !bridged4 && !bridged6 {
			continue
		}
		bridges = append(bridges, nftables.ForwardBridge{Name: n.Bridge.Name, IPv4: n.IPv4 != nil, IPv6: n.IPv6 != nil,
			Routed4: n.Bridge.GatewayMode4 == firewall.ModeRouted, Routed6: n.Bridge.GatewayMode6 == firewall.ModeRouted,
			Internal: n.Internal, Bridged4: bridged4, Bridged6: bridged6})
	}
	slices.SortFunc(bridges, func(a, b nftables.ForwardBridge) int { return strings.Compare(a.Name, b.Name) })
	return bridges
}

// forwardWarning says what b does to berth's containers and what to add
// to it, in the words of the tool that made it: a rule per direction for
// each bridge it drops, by its exact name. A wildcard (br-+) would also
// open other managers' bridges of that prefix (Docker's user networks)
// ahead of their own rules; a network made later is named by a warning
// of its own.
func forwardWarning(b nftables.ForwardBlocker) string {
	var fix []string
	switch {
	case b.Manager == "ufw":
		for _, br := range b.Bridges {
			fix = append(fix, fmt.Sprintf("ufw route allow in on %s; ufw route allow out on %s", br, br))
		}
	case b.Table == "filter" && b.Chain == "FORWARD" && (b.Family == "ip" || b.Family == "ip6"):
		tool := "iptables"
		if b.Family == "ip6" {
			tool = "ip6tables"
		}
		for _, br := range b.Bridges {
			fix = append(fix, fmt.Sprintf("%s -I FORWARD -i %s -j ACCEPT; %s -I FORWARD -o %s -j ACCEPT", tool, br, tool, br))
		}
	case b.Table == "firewalld":
		for _, br := range b.Bridges {
			fix = append(fix, "firewall-cmd --permanent --zone=trusted --add-interface="+br)
		}
		fix = append(fix, "firewall-cmd --reload")
	default:
		for _, br := range b.Bridges {
			fix = append(fix, fmt.Sprintf(`nft insert rule %s %s %s iifname "%s" accept; nft insert rule %s %s %s oifname "%s" accept`,
				b.Family, b.Table, b.Chain, br, b.Family, b.Table, b.Chain, br))
		}
	}
	return fmt.Sprintf("WARNING: %s drops what berth forwards through %s (out: from the containers, so they cannot reach the outside; in: to their published ports, so they cannot be reached on them; between: from one container to another on that bridge, which br_netfilter (bridge-nf-call-iptables) sends through the host's forward chains): no rule of it accepts that traffic. Accept it there; berth's own rules still apply to it: %s",
		b, strings.Join(b.Dropped, ", "), strings.Join(fix, "; "))
}

// logForwardWarnings puts forwardWarnings in the log, at a start.
func (d *Daemon) logForwardWarnings() {
	for _, w := range d.forwardWarnings() {
		d.log.Warn(strings.TrimPrefix(w, "WARNING: "))
	}
}
