// Package driverapi is the seam between the network controller
// (internal/network) and the bridge driver (internal/driver/bridge), as
// libnetwork's driverapi: the specs the controller hands the driver, what
// the driver reports back, and the interface it implements. It holds no
// logic beyond those types, so a driver, and berth-cni built on one, need
// not link the controller, its store and the container records.
package driverapi

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// BridgeSpec is what the bridge driver needs to make one network's bridge.
type BridgeSpec struct {
	Name string
	// Gateway is the bridge's own address with the subnet's length, e.g.
	// 172.17.0.1/16; invalid for an IPv6-only network.
	Gateway netip.Prefix
	// Gateway6 is the bridge's IPv6 address with the IPv6 subnet's
	// length, e.g. fd12:3456::1/64; invalid for a network without IPv6.
	Gateway6 netip.Prefix
	// StaleGateways are gateways (of either family) the bridge had for a
	// subnet the network no longer has (the default bridge's options
	// changed): the driver removes them, and no other address.
	StaleGateways []netip.Prefix
	MTU           int
	// Isolated says a family of the network is in gateway mode isolated,
	// whose bridge has no address in it: with both families isolated, or
	// the one there is, the bridge has no gateway at all. Isolated6 says
	// IPv6 is the one, or one of them: the bridge then has IPv6 off, not
	// even the link-local address the kernel gives a link (moby's
	// setupBridgeIPv6 writes disable_ipv6=1 for it).
	Isolated, Isolated6 bool
	// InhibitIPv4 says the network's IPv4 gateway is not the bridge's
	// (inhibit_ipv4): it gets no IPv4 address, and keeps any it has.
	InhibitIPv4 bool
}

// EndpointSpec is what the bridge driver needs to join one sandbox to a bridge.
type EndpointSpec struct {
	Bridge     string
	HostIfName string
	IfName     string
	MAC        net.HardwareAddr
	// Address is the endpoint's IPv4 address, invalid on an IPv6-only
	// network (Address6 is valid then).
	Address netip.Prefix
	// Gateway, if valid, is the default route the sandbox takes through
	// this endpoint, in place of any it has: set only for the sandbox's
	// gateway endpoint (Controller.gatewaysLocked).
	Gateway netip.Addr
	// Address6 is the endpoint's IPv6 address, invalid on a network
	// without IPv6: the peer then keeps IPv6 off.
	Address6 netip.Prefix
	// Gateway6, if valid, is the IPv6 default route the sandbox takes
	// through this endpoint, in place of any it has: set only for the
	// sandbox's IPv6 gateway endpoint.
	Gateway6 netip.Addr
	MTU      int
	// Owner tags the host-side link (its ifalias) so that a restart can tell
	// berth's links from everyone else's; the endpoint ID.
	Owner string
	// Announce asks for a gratuitous ARP once the endpoint is up.
	Announce bool
	// Sysctls are set on the container end before it comes up:
	// "net.ipv4.conf.IFNAME.forwarding=1", IFNAME standing for IfName.
	Sysctls []string
	// LinkLocal are extra link-local addresses of the container end
	// (--link-local-ip), added after its own as libnetwork adds them:
	// with duplicate-address detection for IPv6 (no IPAM keeps them
	// unique), and refused by the kernel where IPv6 is off.
	LinkLocal []netip.Prefix
	// ForeignGateway says the IPv4 Gateway is not the bridge's address
	// but a router's on the bridge (inhibit_ipv4, a default gateway of
	// the daemon's): its neighbour entry is not seeded with the bridge's
	// MAC. ForeignGateway6 says the same of Gateway6.
	ForeignGateway  bool
	ForeignGateway6 bool
}

// OwnedLink is a link that berth tagged as its own.
type OwnedLink struct {
	Name  string
	Owner string // the tag given in EndpointSpec.Owner, or "network:<id>" for bridges
	// ForeignPorts counts the links on a bridge that are not berth's (an
	// administrator's uplink on a bridge berth adopted).
	ForeignPorts int
}

// Driver is the kernel side of bridge networking (internal/driver/bridge).
// Every method is idempotent: "exists" on create and "not found" on delete succeed.
type Driver interface {
	EnsureBridge(spec BridgeSpec, owner string) error
	DeleteBridge(name string) error
	// ReleaseBridge takes berth's tag off a bridge it adopted, leaving
	// the device as it is.
	ReleaseBridge(name string) error
	// LinkExists says whether the host has a link called name (a bridge
	// an administrator made, which a network adopts by name).
	LinkExists(name string) (bool, error)
	// Join creates the veth pair with its peer already inside the sandbox at
	// sandboxPath, attaches the host end to the bridge and configures the peer.
	Join(sandboxPath string, spec EndpointSpec) error
	// Leave removes the endpoint's veth pair; sandboxPath may already be gone.
	Leave(sandboxPath string, spec EndpointSpec) error
	// SetGateway adds the sandbox's default route through spec's gateway,
	// unless the sandbox has one (after the endpoint that gave it left).
	SetGateway(sandboxPath string, spec EndpointSpec) error
	// ReleaseSandbox drops whatever the driver holds open in the sandbox at
	// sandboxPath; the controller calls it before deleting the sandbox.
	ReleaseSandbox(sandboxPath string)
	// OwnedLinks lists the host-namespace links berth tagged.
	OwnedLinks() ([]OwnedLink, error)
	// OwnedBridges lists the bridges berth tagged, without counting their
	// ports (ForeignPorts -1): the kernel lists bridges alone, where
	// OwnedLinks reads every container's veth too. ForeignPorts counts
	// every bridge's, by name, from one listing of every link.
	OwnedBridges() ([]OwnedLink, error)
	ForeignPorts() (map[string]int, error)
	// Adopt reports whether the endpoint's host end exists and, when it
	// does, applies again what Join applies to it after returning (a
	// daemon that died just then did not): a restart's reconcile calls it
	// for every endpoint it keeps.
	Adopt(sandboxPath string, spec EndpointSpec) (bool, error)
	// HostRoutes lists the destination prefixes of the host's IPv4 routes, for pool selection.
	HostRoutes() ([]netip.Prefix, error)
}

// NoBridgeError says a network's bridge is not in the kernel (deleted by
// hand, and not yet mended): the driver's Join answers with it, and the
// controller makes the bridge again and joins once more.
type NoBridgeError struct{ Name string }

func (e *NoBridgeError) Error() string { return fmt.Sprintf("bridge %q does not exist", e.Name) }

// LinkDamage is what happened to links berth owns, by owner tag (the
// owner given to EnsureBridge, "network:<id>", and EndpointSpec.Owner,
// "endpoint:<id>"). The tags are the driver's report; they may name
// links berth itself is removing, which Damaged leaves out.
type LinkDamage struct {
	// Lost says notifications were lost: every link must be checked.
	Lost bool
	// Owners maps an owner tag to what happened to its link, for the log.
	Owners map[string]string
}

// Add adds o's damage to d, in place: both bursts in one report.
func (d *LinkDamage) Add(o LinkDamage) {
	d.Lost = d.Lost || o.Lost
	if len(o.Owners) == 0 {
		return
	}
	if d.Owners == nil {
		d.Owners = make(map[string]string, len(o.Owners))
	}
	for k, v := range o.Owners {
		switch old, ok := d.Owners[k]; {
		case ok && strings.Contains(old, v):
			v = old
		case ok:
			v = old + ", " + v
		}
		d.Owners[k] = v
	}
}

// MACFromAddress is an endpoint's MAC unless the user gives one: 02:42 and
// the four bytes of its IPv4 address, as Docker made them up to 27.x (and
// as the seed shows: 172.17.0.2 is 02:42:ac:11:00:02). Docker 28 draws
// random MACs and so must send a gratuitous ARP on every join, flooded to
// every port of the bridge and into every container's namespace (several
// ms of CPU at 1,000 ports): an address reused with a new MAC is otherwise
// unreachable from neighbours that cached the old one until their entry
// fails (5-8 s). With the MAC a function of the address, a cached entry is
// right for the address's next holder too; only networks where a MAC was
// ever chosen by hand still announce (Network.MACsFromAddresses). Addresses
// are unique among a host's networks, so their MACs are too.
func MACFromAddress(a netip.Addr) net.HardwareAddr {
	if !a.Is4() {
		return nil
	}
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}
