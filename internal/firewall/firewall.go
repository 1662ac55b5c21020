// Package firewall defines the behavioural interface between berth's network
// core and the packet filter: whole networks in Add/Del pairs taking netip
// types, and a rebuild from the store's state. The real implementation,
// firewall/nftables, owns exactly one nftables table (inet berth) and never
// touches another; Fake records calls for tests of the core.
package firewall

import (
	"context"
	"errors"
	"net/netip"
)

// Network is everything the firewall needs to know of one bridge network.
type Network struct {
	// Bridge is the Linux bridge device; it keys the per-interface verdict maps.
	Bridge string
	// Subnet is the network's IPv4 subnet; invalid for an IPv6-only
	// network, which has only the IPv6 rules.
	Subnet netip.Prefix
	// Gateway is the bridge's own address in Subnet (invalid: none). It is
	// a host address, so the direct-access drop spares it.
	Gateway netip.Addr
	// Subnet6 and Gateway6 are the network's IPv6 subnet and the bridge's
	// IPv6 address, for a network with IPv6 (invalid: IPv4 only). The
	// IPv6 rules mirror the IPv4 ones, as Docker's ip6tables rules do.
	Subnet6  netip.Prefix
	Gateway6 netip.Addr
	// ICC allows traffic between containers of this network (enable_icc).
	ICC bool
	// Masquerade NATs traffic leaving the host from this subnet (enable_ip_masquerade).
	Masquerade bool
	// Internal networks have no way out and no way in from elsewhere.
	Internal bool
	// HostAccess lets the network's containers reach the host's own
	// services, as Docker does (see input.go).
	HostAccess bool
	// GatewayMode4 and GatewayMode6 are the gateway modes of the two
	// families (gwmode.go); nat, the zero value, is Docker's default.
	// They change the rules of networks that are not internal only.
	GatewayMode4 GatewayMode
	GatewayMode6 GatewayMode
	// SNAT4 and SNAT6, when valid, are the source address of what the
	// subnet sends out (Docker's com.docker.network.host_ipv4 and
	// host_ipv6) in place of masquerade's choice; with Masquerade only.
	SNAT4, SNAT6 netip.Addr
	// PeersOpen lets a nat-unprotected family take traffic from the
	// table's other bridges too, as the CNI bridge plugin isolates
	// nothing (berth-cni). Without it, nat-unprotected opens the
	// network to the world outside alone, as Docker 28's isolation
	// chains keep other networks out.
	PeersOpen bool
	// DirectRouting opens the containers' published ports to traffic
	// routed straight to their addresses, from any interface, in each
	// nat family (dockerd's --allow-direct-routing): the network has no
	// direct-access drop. Trusted names host interfaces that count as
	// the bridge for that drop (moby's trusted_host_interfaces), joined
	// by ':' so that Network stays comparable; a trailing '+' makes a
	// name a prefix, as in iptables' -i. Either one has the network
	// accept a packet routed in to a published port's container side
	// (direct.go).
	DirectRouting bool
	Trusted       string
	// AcceptMark and AcceptMask (dockerd's --bridge-accept-fwmark
	// MARK/MASK; a Mask of all ones without one) have a network that is
	// not internal take what another firewall of the host marked so, on
	// any port, as Docker 29's "ALLOW FW MARK" rule: traffic its VPN or
	// mesh routes in. AcceptMark 0 is none.
	AcceptMark, AcceptMask uint32
}

// Masked returns n with its subnets masked (10.1.0.1/24 is 10.1.0.0/24):
// the form Build uses, and that implementations remember.
func (n Network) Masked() Network {
	n.Subnet = n.Subnet.Masked()
	n.Subnet6 = n.Subnet6.Masked()
	return n
}

// Restorer is a Firewall that can apply again, whole, what it has applied
// (every change goes through it, in order), for a heal after another
// process changed its table. A heal that rebuilt from a snapshot of the
// network core's records instead raced the changes under way: a port
// being published was dropped, one being withdrawn put back. Restore
// returns ErrNothingToRestore before anything was applied.
type Restorer interface {
	Restore(ctx context.Context) error
}

// ErrNothingToRestore is Restore's error when nothing was applied yet, or
// when a wrapper's Firewall cannot restore.
var ErrNothingToRestore = errors.New("nothing to restore")

// Firewall is the packet filter as the network core sees it.
// Every method is idempotent and applies its change as one atomic batch.
type Firewall interface {
	// Rebuild replaces berth's whole table with the rules for nets and the
	// published ports, atomically.
	Rebuild(ctx context.Context, nets []Network, ports ...PortMapping) error
	// AddNetwork adds (or replaces) one network's rules.
	AddNetwork(ctx context.Context, n Network) error
	// DelNetwork removes one network's rules; a network without rules is not an error.
	DelNetwork(ctx context.Context, n Network) error
	// AddPorts publishes ports (map elements only, one batch); mappings
	// already there are kept, a host port claimed twice is a conflict.
	AddPorts(ctx context.Context, ps []PortMapping) error
	// DelPorts withdraws published ports; unknown ones are not an error.
	DelPorts(ctx context.Context, ps []PortMapping) error
}
