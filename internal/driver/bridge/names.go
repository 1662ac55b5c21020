package bridge

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
)

// AliasPrefix starts the ifalias of every link berth creates, so a restart
// can tell berth's links from the ones an administrator made.
const AliasPrefix = "berth:"

// maxIfNameLen is IFNAMSIZ (16) minus the terminating NUL.
const maxIfNameLen = 15

// MTU bounds a veth accepts; 0 means the kernel default (1500).
const (
	minMTU = 68
	maxMTU = 65535
)

// RandomMAC returns a random unicast, locally administered MAC address, as
// Docker 28 does (netutils.GenerateRandomMAC). berth's bridges get theirs
// from their names (bridgeMAC), endpoints from their addresses
// (driverapi.MACFromAddress); tests use it.
func RandomMAC() net.HardwareAddr {
	hw := make(net.HardwareAddr, 6)
	rand.Read(hw) // never fails on Linux
	hw[0] &= 0xfe // unicast
	hw[0] |= 0x02 // locally administered
	return hw
}

// bridgeMAC is the MAC of the bridge owner owns ("network:" and the
// network's ID): a unicast, locally administered address made of the
// owner's SHA-256, the same each time the bridge is made. A bridge made
// again (deleted while the daemon was down) then keeps the MAC its
// containers' neighbour caches hold for the gateway; a random one, as
// Docker draws, left them sending to the old MAC (kept REACHABLE by their
// own traffic) and cut them off. Network IDs are random, so bridges of
// one host, and the default bridges of two hosts (which share a name),
// differ by MAC but for a 2^-40 chance.
func bridgeMAC(owner string) net.HardwareAddr {
	sum := sha256.Sum256([]byte("berth bridge " + owner))
	hw := net.HardwareAddr(sum[:6])
	hw[0] = 0x02 // unicast, locally administered
	return hw
}

// RandomHostIfName returns a host-side veth name as Docker spells it:
// "veth" and 7 random hex characters.
func RandomHostIfName() string {
	b := make([]byte, 4)
	rand.Read(b)
	return "veth" + hex.EncodeToString(b)[:7]
}

// ownerAlias is the ifalias that tags a link as berth's.
func ownerAlias(owner string) string { return AliasPrefix + owner }

// ownerFromAlias returns the owner tag of a berth alias.
func ownerFromAlias(alias string) (string, bool) {
	return strings.CutPrefix(alias, AliasPrefix)
}

// ValidateIfName checks that name can be a Linux interface name.
func ValidateIfName(name string) error {
	if err := driverapi.CheckIfName(name); err != nil {
		return errdefs.Invalid("%w", err)
	}
	return nil
}

func validateMTU(mtu int) error {
	if mtu != 0 && (mtu < minMTU || mtu > maxMTU) {
		return errdefs.Invalid("MTU %d is outside %d-%d", mtu, minMTU, maxMTU)
	}
	return nil
}

func validateOwner(owner string) error {
	if owner == "" {
		return errdefs.Invalid("owner tag is empty")
	}
	// IFALIASZ is 256 bytes including the NUL.
	if len(ownerAlias(owner)) > 255 {
		return errdefs.Invalid("owner tag %q is too long", owner)
	}
	return nil
}

// validateBridgeSpec checks everything EnsureBridge needs before it touches the kernel.
func validateBridgeSpec(spec driverapi.BridgeSpec, owner string) error {
	if err := ValidateIfName(spec.Name); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	switch {
	case !spec.Gateway.IsValid() && !spec.Gateway6.IsValid() && !spec.Isolated && !spec.InhibitIPv4:
		return errdefs.Invalid("bridge %q has no gateway of either family", spec.Name)
	case spec.Gateway.IsValid() && !spec.Gateway.Addr().Is4():
		return errdefs.Invalid("bridge %q: gateway %s is not an IPv4 prefix", spec.Name, spec.Gateway)
	}
	if err := validateMTU(spec.MTU); err != nil {
		return fmt.Errorf("bridge %q: %w", spec.Name, err)
	}
	if err := validateGateway6(spec.Name, spec.Gateway6, spec.MTU); err != nil {
		return err
	}
	return validateOwner(owner)
}

// minIPv6MTU is the smallest MTU a link may have and carry IPv6 (RFC 8200):
// the kernel removes IPv6 from a link with less.
const minIPv6MTU = 1280

// validateGateway6 checks a bridge's IPv6 gateway prefix (invalid: a
// network without IPv6).
func validateGateway6(bridge string, gw netip.Prefix, mtu int) error {
	switch {
	case !gw.IsValid():
		return nil
	case !isIPv6Unicast(gw.Addr()):
		return errdefs.Invalid("bridge %q: IPv6 gateway %s is not an IPv6 unicast address", bridge, gw)
	case mtu != 0 && mtu < minIPv6MTU:
		return errdefs.Invalid("bridge %q: MTU %d is below the %d IPv6 needs", bridge, mtu, minIPv6MTU)
	}
	return nil
}

// isIPv6Unicast reports whether a can be an interface's IPv6 address.
func isIPv6Unicast(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast()
}

// validateEndpointSpec checks everything Join needs before it touches the
// kernel, so that a bad request never leaves half an endpoint behind.
func validateEndpointSpec(spec driverapi.EndpointSpec) error {
	for _, n := range []struct{ what, name string }{
		{"bridge", spec.Bridge}, {"host interface", spec.HostIfName}, {"container interface", spec.IfName},
	} {
		if err := ValidateIfName(n.name); err != nil {
			return fmt.Errorf("%s: %w", n.what, err)
		}
	}
	if err := validateMAC(spec.MAC); err != nil {
		return err
	}
	if err := validateAddress4(spec); err != nil {
		return err
	}
	if err := validateAddress6(spec); err != nil {
		return err
	}
	if err := validateMTU(spec.MTU); err != nil {
		return err
	}
	if spec.Address6.IsValid() && spec.MTU != 0 && spec.MTU < minIPv6MTU {
		return errdefs.Invalid("MTU %d is below the %d IPv6 needs", spec.MTU, minIPv6MTU)
	}
	return validateOwner(spec.Owner)
}

// validateAddress4 checks an endpoint's IPv4 address and gateway. Both
// are invalid on an IPv6-only network, and the IPv6 address is then a
// must.
func validateAddress4(spec driverapi.EndpointSpec) error {
	switch {
	case !spec.Address.IsValid() && spec.Gateway.IsValid():
		return errdefs.Invalid("gateway %s given without an IPv4 address", spec.Gateway)
	case !spec.Address.IsValid() && !spec.Address6.IsValid():
		return errdefs.Invalid("endpoint has no address of either family")
	case !spec.Address.IsValid():
		return nil
	case !spec.Address.Addr().Is4():
		return errdefs.Invalid("endpoint address %s is not an IPv4 prefix", spec.Address)
	case spec.Address.Bits() == 32 && spec.Gateway.IsValid():
		return errdefs.Invalid("endpoint address %s leaves no room for gateway %s", spec.Address, spec.Gateway)
	}
	return validateGateway(spec.Address, spec.Gateway)
}

// validateAddress6 checks an endpoint's IPv6 address and gateway, both
// invalid on a network without IPv6.
func validateAddress6(spec driverapi.EndpointSpec) error {
	addr, gw := spec.Address6, spec.Gateway6
	switch {
	case !addr.IsValid() && gw.IsValid():
		return errdefs.Invalid("IPv6 gateway %s given without an IPv6 address", gw)
	case !addr.IsValid():
		return nil
	case !isIPv6Unicast(addr.Addr()) || addr.Addr().IsLinkLocalUnicast():
		return errdefs.Invalid("endpoint address %s is not a routable IPv6 prefix", addr)
	case !gw.IsValid():
		return nil
	case !isIPv6Unicast(gw):
		return errdefs.Invalid("IPv6 gateway %s is not an IPv6 unicast address", gw)
	case !addr.Masked().Contains(gw):
		return errdefs.Invalid("IPv6 gateway %s is outside the endpoint's subnet %s", gw, addr.Masked())
	case gw == addr.Addr():
		return errdefs.Invalid("IPv6 gateway %s is the endpoint's own address", gw)
	}
	return nil
}

func validateMAC(mac net.HardwareAddr) error {
	switch {
	case len(mac) != 6:
		return errdefs.Invalid("MAC address %q is not a 6-byte Ethernet address", mac)
	case mac[0]&0x01 != 0:
		return errdefs.Invalid("MAC address %s is a multicast address", mac)
	case allZero(mac):
		return errdefs.Invalid("MAC address %s is all zeros", mac)
	}
	return nil
}

func validateGateway(addr netip.Prefix, gw netip.Addr) error {
	if !gw.IsValid() {
		return nil // internal network: no default route
	}
	if !gw.Is4() {
		return errdefs.Invalid("gateway %s is not an IPv4 address", gw)
	}
	if !addr.Masked().Contains(gw) {
		return errdefs.Invalid("gateway %s is outside the endpoint's subnet %s", gw, addr.Masked())
	}
	if gw == addr.Addr() {
		return errdefs.Invalid("gateway %s is the endpoint's own address", gw)
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
