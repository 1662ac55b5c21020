package firewall

import (
	"fmt"

	"github.com/berth-net/berth/internal/errdefs"
)

// GatewayMode is how a bridge network's gateway treats one address family
// (Docker 28's com.docker.network.bridge.gateway_mode_ipv4 and _ipv6;
// moby's gwMode in libnetwork/drivers/bridge). The zero value is nat.
type GatewayMode uint8

// The gateway modes, as moby's newGwMode reads them.
const (
	// ModeNAT masquerades what leaves and DNATs published ports; traffic
	// routed in to any other container port is dropped, and so is direct
	// access to container addresses from elsewhere.
	ModeNAT GatewayMode = iota
	// ModeNATUnprotected is nat, but every container port is open to
	// traffic routed in (moby's "UNPROTECTED" accept).
	ModeNATUnprotected
	// ModeRouted neither masquerades nor DNATs: published ports open the
	// container's own port to traffic routed to its address, ICMP routed
	// in is accepted, and no host port is held.
	ModeRouted
	// ModeIsolated gives the bridge no address in the family; it is
	// allowed on internal networks only.
	ModeIsolated
)

var gatewayModeNames = [...]string{"nat", "nat-unprotected", "routed", "isolated"}

func (m GatewayMode) String() string {
	if int(m) < len(gatewayModeNames) {
		return gatewayModeNames[m]
	}
	return fmt.Sprintf("gateway-mode-%d", uint8(m))
}

// ParseGatewayMode reads a mode by its name, with moby's words for an
// unknown one.
func ParseGatewayMode(s string) (GatewayMode, error) {
	for i, name := range gatewayModeNames {
		if s == name {
			return GatewayMode(i), nil
		}
	}
	return ModeNAT, errdefs.Invalid("unknown gateway mode %s", s)
}

// MarshalText stores a mode by its name.
func (m GatewayMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads a stored mode.
func (m *GatewayMode) UnmarshalText(b []byte) error {
	v, err := ParseGatewayMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// nat reports whether the mode NATs: nat and nat-unprotected.
func (m GatewayMode) nat() bool { return m == ModeNAT || m == ModeNATUnprotected }

// validateModes checks n's gateway modes: known ones, and isolated on
// an internal network only (moby's words).
func validateModes(n Network) error {
	for _, m := range []GatewayMode{n.GatewayMode4, n.GatewayMode6} {
		switch {
		case int(m) >= len(gatewayModeNames):
			return errdefs.Invalid("bridge %q: unknown gateway mode %s", n.Bridge, m)
		case m == ModeIsolated && !n.Internal:
			return errdefs.Invalid("bridge %q: gateway mode 'isolated' can only be used for an internal network", n.Bridge)
		}
	}
	return nil
}

// routedICMPRules accept ICMP routed into the network for each routed
// family (moby's "ip protocol icmp" and "meta l4proto ipv6-icmp", in
// tables of one family each): without NAT, errors and echo requests
// from elsewhere are for the containers. The family is matched, since
// berth's table serves both; nft lists that match as implied by the
// protocol, so it prints nothing.
func routedICMPRules(n Network) []Rule {
	var rules []Rule
	if n.Subnet.IsValid() && n.GatewayMode4 == ModeRouted {
		rules = append(rules, Rule{Stmts: []Stmt{NfprotoIPv4{Implied: true}, L4ProtoMatch{Proto: ProtoICMP}, Counter{}, Verdict{Kind: Accept}}, Comment: "ICMP"})
	}
	if n.Subnet6.IsValid() && n.GatewayMode6 == ModeRouted {
		rules = append(rules, Rule{Stmts: []Stmt{NfprotoIPv6{Implied: true}, L4ProtoMatch{Proto: ProtoICMPv6}, Counter{}, Verdict{Kind: Accept}}, Comment: "ICMP"})
	}
	return rules
}

// unprotectedRules accept whatever else is routed into the network, of
// each nat-unprotected family: moby's final "UNPROTECTED" accept in
// place of the drop, here with the family matched. What comes from
// another of berth's bridges is dropped first, unless n.PeersOpen: Docker
// 28's DOCKER-ISOLATION chains drop it before the accept is reached (they
// spare routed networks only), so nat-unprotected opens a network to the
// world outside, not to the host's other networks. Every bridge has a
// host_in entry, so one lookup there knows them all, however many.
// (Docker 29's nftables backend lets them in; berth follows Docker 28.)
func unprotectedRules(n Network) []Rule {
	var rules []Rule
	if !n.PeersOpen && (n.Subnet.IsValid() && n.GatewayMode4 == ModeNATUnprotected || n.Subnet6.IsValid() && n.GatewayMode6 == ModeNATUnprotected) {
		rules = append(rules, isolationRule())
	}
	if n.Subnet.IsValid() && n.GatewayMode4 == ModeNATUnprotected {
		rules = append(rules, Rule{Stmts: []Stmt{NfprotoIPv4{}, Counter{}, Verdict{Kind: Accept}}, Comment: "UNPROTECTED"})
	}
	if n.Subnet6.IsValid() && n.GatewayMode6 == ModeNATUnprotected {
		rules = append(rules, Rule{Stmts: []Stmt{NfprotoIPv6{}, Counter{}, Verdict{Kind: Accept}}, Comment: "UNPROTECTED"})
	}
	return rules
}

// isolationRule drops what another of berth's bridges sends (every
// bridge has a host_in entry, so one lookup knows them all), of the
// family match given, if any: Docker 28's DOCKER-ISOLATION chains, where
// a network is opened to more than its own bridge (nat-unprotected,
// direct routing).
func isolationRule(family ...Stmt) Rule {
	stmts := append(family, IfnameInMap{Dir: In, Map: MapHostIn}, Counter{}, Verdict{Kind: Drop})
	return Rule{Stmts: stmts, Comment: "ISOLATION"}
}

// NfprotoIPv6 matches IPv6 packets ("meta nfproto ipv6"); Implied, as
// NfprotoIPv4's, marks a match nft lists silently.
type NfprotoIPv6 struct{ Implied bool }

func (n NfprotoIPv6) String() string {
	if n.Implied {
		return ""
	}
	return "meta nfproto ipv6"
}

func (NfprotoIPv6) isStmt() {}
