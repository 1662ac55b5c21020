package firewall

import (
	"strings"
	"unicode"

	"github.com/berth-net/berth/internal/errdefs"
)

// Direct routing is a packet routed to a container's own address from
// outside its bridge. Docker 28 drops it in raw prerouting (the
// direct-access drop, ruleset.go) unless it comes in on one of the
// network's trusted host interfaces (trusted_host_interfaces) or the
// daemon allows direct routing (--allow-direct-routing); its filter
// rules then take it for a published port's container side alone ("-d
// ADDR ! -i BRIDGE -o BRIDGE -p tcp --dport PORT -j ACCEPT") and drop
// the rest. berth's forward chain takes published ports by their DNAT
// (ct status dnat), which a packet routed straight in never had, so a
// network that opens direct routing looks the packet up in
// ports_routed or ports6_routed, where the network core puts the
// container side of each port its endpoints publish in that family, as
// a routed network's ports are. Only such networks get those elements:
// the cost of publishing a port on any other stays one map element.

// TrustedIfaces returns n's trusted host interfaces.
func (n Network) TrustedIfaces() []string { return SplitTrusted(n.Trusted) }

// SplitTrusted splits a trusted_host_interfaces value as moby does:
// the names between the ':'s, empty ones dropped.
func SplitTrusted(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ':' })
}

// OpensDirect reports whether n takes traffic routed straight to its
// containers' published ports in a family of gateway mode mode: a nat
// family of a network that is not internal, with direct routing
// allowed or a trusted interface. A routed family opens its ports by
// itself, and a nat-unprotected one every port.
func (n Network) OpensDirect(mode GatewayMode) bool {
	return mode == ModeNAT && !n.Internal && (n.DirectRouting || len(n.TrustedIfaces()) > 0)
}

// trustedMatch is the interface test that spares a trusted interface
// from the direct-access drop: "eth1", or "eth+" for every name that
// begins with "eth", as iptables' -i reads the names moby gives it.
func trustedMatch(name string) IfnameMatch {
	if p, ok := strings.CutSuffix(name, "+"); ok {
		return IfnameMatch{Dir: In, Negate: true, Name: p, Wildcard: true}
	}
	return IfnameMatch{Dir: In, Negate: true, Name: name}
}

// validateTrusted checks n's trusted interfaces and gives them back in
// one form (no empty names).
func validateTrusted(n Network) (Network, error) {
	names := n.TrustedIfaces()
	for _, name := range names {
		if err := CheckTrustedName(name); err != nil {
			return n, errdefs.Invalid("bridge %q: trusted host interface %q: %v", n.Bridge, name, err)
		}
	}
	n.Trusted = strings.Join(names, ":")
	return n, nil
}

// CheckTrustedName takes what the kernel takes as an interface name (at
// most 15 bytes, none of '/', ':', blanks or control characters), with
// an optional '+' after it.
func CheckTrustedName(name string) error {
	p, wildcard := strings.CutSuffix(name, "+")
	switch {
	case p == "" && wildcard:
		return errdefs.Invalid("a '+' alone would trust every interface (the daemon's --allow-direct-routing does that)")
	case len(p) > 15:
		return errdefs.Invalid("an interface name has at most 15 bytes")
	case p == "." || p == "..":
		return errdefs.Invalid("not an interface name")
	case strings.ContainsFunc(p, func(r rune) bool {
		return r == '/' || r == '+' || r == '*' || unicode.IsSpace(r) || unicode.IsControl(r)
	}):
		// '*' too: nft lists a prefix match as "eth*".
		return errdefs.Invalid("an interface name has no '/', '*', spaces or control characters, and '+' only at its end")
	}
	return nil
}
