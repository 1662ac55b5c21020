package ipam

import (
	"net/netip"

	"github.com/berth-net/berth/internal/errdefs"
)

// ValidateRequest checks a user's --subnet, --ip-range and --gateway, where
// zero values mean "not given". It returns the first problem as an
// errdefs.Invalid error, worded like Docker's (api/types/network.ValidateIPAM)
// where Docker has words, and says what to do where it has none.
//
// Like Docker since v25 it refuses a subnet that is not in canonical form
// (10.1.0.5/16 → "it should be 10.1.0.0/16") instead of silently masking it.
// Unlike Docker it also refuses a gateway on the network or broadcast address
// (Docker fails later with "Address already in use") and a /32 subnet, which
// leaves no address for a container once the gateway has one. A /31 is
// allowed: both addresses are usable (RFC 3021), one gateway, one container.
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
	switch {
	case !subnet.Addr().Is4():
		return errdefs.Invalid("invalid subnet %s: only IPv4 subnets are supported", subnet)
	case subnet != subnet.Masked():
		return errdefs.Invalid("invalid subnet %s: it should be %s", subnet, subnet.Masked())
	case subnet.Bits() == 32:
		return errdefs.Invalid("invalid subnet %s: a /32 has no address left for a container after the gateway; use /31 or shorter", subnet)
	}
	return nil
}

func validateIPRange(subnet, ipRange netip.Prefix) error {
	switch {
	case !ipRange.Addr().Is4():
		return errdefs.Invalid("invalid ip-range %s: subnet %s is IPv4", ipRange, subnet)
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
	if !gateway.Is4() {
		return errdefs.Invalid("invalid gateway %s: subnet %s is IPv4", gateway, subnet)
	}
	if !subnet.Contains(gateway) {
		return errdefs.Invalid("invalid gateway %s: it is not inside subnet %s", gateway, subnet)
	}
	if what := specialAddress(subnet, gateway); what != "" {
		return errdefs.Invalid("invalid gateway %s: it is the %s of subnet %s", gateway, what, subnet)
	}
	return nil
}

// DefaultGateway returns the gateway Docker picks for subnet: its first host
// address (172.17.0.1 for 172.17.0.0/16). In a /31 that is the first of its
// two addresses, in a /32 the only one. The zero Addr for a non-IPv4 subnet.
func DefaultGateway(subnet netip.Prefix) netip.Addr {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return netip.Addr{}
	}
	subnet = subnet.Masked()
	if subnet.Bits() >= 31 {
		return subnet.Addr()
	}
	return subnet.Addr().Next()
}

// specialAddress names what a is in subnet if it can never be handed out:
// the network or the broadcast address. /31 and /32 have neither (RFC 3021).
func specialAddress(subnet netip.Prefix, a netip.Addr) string {
	if subnet.Bits() >= 31 {
		return ""
	}
	switch toU32(a) {
	case toU32(subnet.Masked().Addr()):
		return "network address"
	case lastU32(subnet):
		return "broadcast address"
	}
	return ""
}
