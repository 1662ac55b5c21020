package ipam

import (
	"net/netip"

	"github.com/berth-net/berth/internal/errdefs"
)

// linkLocal is the prefix Linux gives every interface its IPv6 link-local
// address from.
var linkLocal = netip.MustParsePrefix("fe80::/64")

// ValidateRequest checks a user's --subnet, --ip-range and --gateway, where
// zero values mean "not given". The subnet may be IPv4 or IPv6; the ip-range
// and gateway must be of its family. It returns the first problem as an
// errdefs.Invalid error, worded like Docker's (api/types/network.ValidateIPAM,
// and the bridge driver's validateIPv6Subnet) where Docker has words, and
// says what to do where it has none.
//
// Like Docker since v25 it refuses a subnet that is not in canonical form
// (10.1.0.5/16 → "it should be 10.1.0.0/16") instead of silently masking it.
// Like Docker's bridge driver it refuses an IPv4-mapped, a multicast, and a
// link-local IPv6 subnet other than fe80::/64 itself; unlike Docker's, it
// refuses fe80::/64 too (every interface already has an address there,
// and the bridge driver gives containers only routable ones). Unlike Docker it also
// refuses a gateway on an address that is never handed out (network,
// broadcast, subnet-router anycast; Docker fails later with "Address
// already in use"), an IPv4 /32 and an IPv6 /127 or /128, which leave no
// address for a container once the gateway has one. An IPv4 /31 is allowed:
// both addresses are usable (RFC 3021), one gateway, one container.
func ValidateRequest(subnet, ipRange netip.Prefix, gateway netip.Addr) error {
	if !subnet.IsValid() {
		if ipRange.IsValid() || gateway.IsValid() {
			return errdefs.Invalid("an ip-range or gateway needs a subnet: pass --subnet as well")
		}
		return nil
	}
	if err := validateSubnet(subnet); err != nil {
		return err
	}
	if ipRange.IsValid() {
		if err := validateIPRange(subnet, ipRange); err != nil {
			return err
		}
	}
	if gateway.IsValid() {
		if err := validateGateway(subnet, gateway); err != nil {
			return err
		}
	}
	return nil
}

func validateSubnet(subnet netip.Prefix) error {
	a := subnet.Addr()
	switch {
	case a.Is4In6():
		return errdefs.Invalid("'%s' is not a valid IPv6 subnet: it is IPv4-mapped; give the IPv4 subnet instead", subnet)
	case subnet != subnet.Masked():
		return errdefs.Invalid("invalid subnet %s: it should be %s", subnet, subnet.Masked())
	case a.Is4() && subnet.Bits() == 32:
		return errdefs.Invalid("invalid subnet %s: a /32 has no address left for a container after the gateway; use /31 or shorter", subnet)
	case a.Is4():
		return nil
	case a.IsMulticast():
		return errdefs.Invalid("multicast subnet '%s' is not allowed", subnet)
	case subnet != linkLocal && subnet.Overlaps(linkLocal):
		return errdefs.Invalid("'%s' clashes with the Link-Local prefix 'fe80::/64'", subnet)
	case a.IsLinkLocalUnicast():
		return errdefs.Invalid("invalid subnet %s: berth does not hand out link-local addresses (every interface has its own in fe80::/64); use a ULA subnet such as fd00:1::/64", subnet)
	case subnet.Bits() >= 127:
		return errdefs.Invalid("invalid subnet %s: a /%d has no address left for a container after the subnet-router anycast address and the gateway; use /126 or shorter", subnet, subnet.Bits())
	}
	return nil
}

func validateIPRange(subnet, ipRange netip.Prefix) error {
	switch {
	case ipRange.Addr().Is4() != subnet.Addr().Is4():
		return errdefs.Invalid("invalid ip-range %s: parent subnet is an %s block", ipRange, family(subnet.Addr()))
	case ipRange != ipRange.Masked():
		return errdefs.Invalid("invalid ip-range %s: it should be %s", ipRange, ipRange.Masked())
	case ipRange.Bits() < subnet.Bits():
		return errdefs.Invalid("invalid ip-range %s: it is bigger than its subnet %s", ipRange, subnet)
	case !subnet.Contains(ipRange.Addr()):
		return errdefs.Invalid("invalid ip-range %s: it is not inside subnet %s", ipRange, subnet)
	}
	return nil
}

func validateGateway(subnet netip.Prefix, gateway netip.Addr) error {
	if gateway.Is4() != subnet.Addr().Is4() {
		return errdefs.Invalid("invalid gateway %s: parent subnet is an %s block", gateway, family(subnet.Addr()))
	}
	if !subnet.Contains(gateway) {
		return errdefs.Invalid("invalid gateway %s: it is not inside subnet %s", gateway, subnet)
	}
	if what := specialAddress(subnet, gateway); what != "" {
		// moby's words first (its IPAM holds these addresses, so asking
		// for one as the gateway fails in allocateNetworkResources).
		return errdefs.Invalid("failed to allocate gateway (%s): %w: it is the %s of subnet %s", gateway, ErrAddressInUse, what, subnet)
	}
	return nil
}

// DefaultGateway returns the gateway Docker picks for subnet: the lowest
// address its IPAM hands out, which is the address after the subnet's own
// (172.17.0.1 for 172.17.0.0/16, fd00::1 for fd00::/64). In an IPv4 /31
// that is the first of its two addresses, in a /32 the only one. An IPv6
// /128 has none (its one address is the subnet-router anycast address), nor
// has an IPv4-mapped or invalid subnet: for those, the zero Addr.
func DefaultGateway(subnet netip.Prefix) netip.Addr {
	if !subnet.IsValid() || subnet.Addr().Is4In6() {
		return netip.Addr{}
	}
	subnet = subnet.Masked()
	switch {
	case subnet.Addr().Is4() && subnet.Bits() >= 31:
		return subnet.Addr()
	case subnet.Bits() == 128:
		return netip.Addr{}
	}
	return subnet.Addr().Next()
}

// specialAddress names what a is in subnet if it can never be handed out,
// as moby's defaultipam.newPoolData decides: the network and the broadcast
// address of an IPv4 subnet (a /31 or /32 has neither, RFC 3021), the
// subnet-router anycast address of an IPv6 subnet (its first, RFC 4291
// 2.6.1; reserved at every prefix length, /127 and /128 too). a must be of
// subnet's family.
func specialAddress(subnet netip.Prefix, a netip.Addr) string {
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() {
		if a == subnet.Addr() {
			return "subnet-router anycast address"
		}
		return ""
	}
	if subnet.Bits() >= 31 {
		return ""
	}
	switch a {
	case subnet.Addr():
		return "network address"
	case lastAddr(subnet):
		return "broadcast address"
	}
	return ""
}

// neverHandedOut lists the addresses of subnet that specialAddress names.
func neverHandedOut(subnet netip.Prefix) []netip.Addr {
	switch {
	case !subnet.Addr().Is4():
		return []netip.Addr{subnet.Addr()}
	case subnet.Bits() <= 30:
		return []netip.Addr{subnet.Addr(), lastAddr(subnet)}
	}
	return nil
}
