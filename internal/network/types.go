// Package network is berth's Container Network Model core: the Controller and
// its Network, Endpoint and Sandbox records. It orchestrates IPAM, the store,
// the bridge driver, the sandbox manager and the firewall through small
// interfaces and makes no syscalls itself, so everything here is tested
// without root against in-memory fakes.
package network

import (
	"net"
	"net/netip"
	"time"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/firewall"
)

// Driver names, as Docker spells them.
const (
	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"
)

// DefaultBridgeDevice is the default bridge network's device unless the
// daemon names another (--bridge-name, --bridge): berth's docker0.
const DefaultBridgeDevice = "berth0"

// Names of the predefined networks.
const (
	NameBridge = "bridge"
	NameHost   = "host"
	NameNone   = "none"
)

// Docker's option keys for bridge networks.
const (
	OptBridgeName      = "com.docker.network.bridge.name"
	OptEnableICC       = "com.docker.network.bridge.enable_icc"
	OptEnableMasq      = "com.docker.network.bridge.enable_ip_masquerade"
	OptHostBindingIPv4 = "com.docker.network.bridge.host_binding_ipv4"
	// OptHostIPv4 and OptHostIPv6 are libnetwork's netlabel.HostIPv4 and
	// HostIPv6: the source address of what the network sends out, SNAT
	// in place of masquerade's choice.
	OptHostIPv4 = "com.docker.network.host_ipv4"
	OptHostIPv6 = "com.docker.network.host_ipv6"
	// OptContainerIfacePrefix is netlabel.ContainerIfacePrefix: the name
	// of the network's interface in a container is it and a number, in
	// place of ethN.
	OptContainerIfacePrefix = "com.docker.network.container_iface_prefix"
	OptDefaultBridge        = "com.docker.network.bridge.default_bridge"
	// OptGatewayModeIPv4 and OptGatewayModeIPv6 are the gateway modes of
	// the two families (Docker 28): nat, nat-unprotected, routed or
	// isolated (firewall.GatewayMode).
	OptGatewayModeIPv4 = "com.docker.network.bridge.gateway_mode_ipv4"
	OptGatewayModeIPv6 = "com.docker.network.bridge.gateway_mode_ipv6"
	OptMTU             = "com.docker.network.driver.mtu"
	// OptEnableIPv6 is libnetwork's netlabel.EnableIPv6: EnableIPv6 as
	// an option, read when the request's field is absent.
	OptEnableIPv6 = "com.docker.network.enable_ipv6"
	// OptEnableIPv4 is netlabel.EnableIPv4: "false" with IPv6 on makes
	// an IPv6-only network, as --ipv4=false does.
	OptEnableIPv4 = "com.docker.network.enable_ipv4"
	// OptHostAccess is berth's own: "true" opens the host's services to
	// the network's containers, as Docker leaves them (firewall/input.go).
	OptHostAccess = "berth.bridge.host_access"
	// OptInhibitIPv4 is Docker's inhibit_ipv4: the bridge gets no IPv4
	// address; the containers' IPv4 gateway is a router of the user's on
	// the bridge (BridgeConfig.InhibitIPv4).
	OptInhibitIPv4 = "com.docker.network.bridge.inhibit_ipv4"
	// OptTrustedHostInterfaces is Docker's trusted_host_interfaces:
	// host interfaces, ':' between them, whose traffic routed straight
	// to a container's published port is let in, as the bridge's is
	// (BridgeConfig.TrustedHostInterfaces, firewall/direct.go).
	OptTrustedHostInterfaces = "com.docker.network.bridge.trusted_host_interfaces"
)

// Network is one CNM network: a group of endpoints that reach each other directly.
type Network struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Driver     string    `json:"driver"`
	Created    time.Time `json:"created"`
	Internal   bool      `json:"internal,omitempty"`
	Attachable bool      `json:"attachable,omitempty"`
	Predefined bool      `json:"predefined,omitempty"`
	// IPv4 is the network's IPv4 address space; nil for host and null,
	// and for an IPv6-only bridge network (--ipv4=false, Docker 28's).
	IPv4 *IPConfig `json:"ipv4,omitempty"`
	// IPv6 is the network's IPv6 address space (EnableIPv6); nil when the
	// network has none. A bridge network has at least one of the two.
	IPv6    *IPConfig         `json:"ipv6,omitempty"`
	Bridge  *BridgeConfig     `json:"bridge,omitempty"`  // nil unless Driver is bridge
	Options map[string]string `json:"options,omitempty"` // as Docker shows them in inspect
	Labels  map[string]string `json:"labels,omitempty"`
	// IPAMOptions are the user's IPAM driver options, kept and shown as
	// Docker keeps them: the default driver uses none of them. Nil (shown
	// as null) and empty ({}, what the docker CLI sends) differ, so the
	// field has no omitempty.
	IPAMOptions map[string]string `json:"ipamOptions"`
	// Removing marks a network whose teardown started; a restart finishes it.
	Removing bool `json:"removing,omitempty"`
	// MACsFromAddresses: every endpoint that ever joined the network had
	// the MAC its address gives (MACFromAddress), so a neighbour's cached
	// entry for an address is right for whoever holds it next, and a join
	// need not announce itself (see Endpoint.Announce). Set on networks
	// made since berth derives MACs; cleared for good by the first
	// endpoint with a MAC of its own (--mac-address).
	MACsFromAddresses bool `json:"macsFromAddresses,omitempty"`
	// Warnings are problems the daemon noticed in the host since it started
	// (a route that overlaps the subnet); kept in memory only, never stored.
	Warnings []string `json:"-"`
	// StaleGateways are the gateways of subnets the default bridge gave
	// up (its daemon options changed), of either family, for the driver
	// to take off the bridge (BridgeSpec.StaleGateways). Recorded with
	// the change, so a crash before the driver ran does not leave the old
	// address on the bridge; kept until a start's EnsureBridge took them
	// off, across further changes.
	StaleGateways []netip.Prefix `json:"staleGateways,omitempty"`
	// UnusedIPAM are the --subnet triples of a family the network has
	// off (an IPv6 one without --ipv6, an IPv4 one with --ipv4=false):
	// nothing is allocated from them, and inspect shows them, as
	// libnetwork keeps and shows them.
	UnusedIPAM []IPAMRequest `json:"unusedIpam,omitempty"`
	// ConfigOnly marks a configuration network (--config-only): settings
	// kept for other networks to be made from (ConfigFrom), with no
	// bridge, no addresses and no endpoints. Its Driver is "null", as
	// libnetwork resets it, and Config holds what the request gave.
	ConfigOnly bool           `json:"configOnly,omitempty"`
	Config     *NetworkConfig `json:"config,omitempty"`
	// ConfigFrom names the configuration network this one took its
	// settings from (--config-from), which cannot be removed while it is.
	ConfigFrom string `json:"configFrom,omitempty"`
}

// IsNone reports whether n is the predefined "none" network (a
// configuration network's driver is "null" too).
func (n *Network) IsNone() bool { return n.Driver == DriverNull && !n.ConfigOnly }

// NetworkConfig is what a configuration network keeps for the networks
// made from it, besides its Options, Labels and IPAMOptions: whether each
// family is on, and the --subnet triples of both families as given (an
// IPv6 one counts only where IPv6 is on, as at any create). Never
// changed once recorded.
type NetworkConfig struct {
	IPv4 bool          `json:"ipv4"`
	IPv6 bool          `json:"ipv6,omitempty"`
	IPAM []IPAMRequest `json:"ipam,omitempty"`
}

// IPConfig is a network's address space in one family.
type IPConfig struct {
	Subnet  netip.Prefix `json:"subnet"`
	Gateway netip.Addr   `json:"gateway"`
	// IPRange limits dynamic allocation; the zero value means the whole subnet.
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	// UserSubnet is true when the user chose Subnet, false when it came
	// from the default pools (a --ip is taken on either since Docker
	// 29.1: endpointSettingsError).
	UserSubnet bool `json:"userSubnet,omitempty"`
	// AuxAddresses are addresses of Subnet in use outside berth
	// (--aux-address NAME=ADDR): never given to a container.
	AuxAddresses map[string]netip.Addr `json:"auxAddresses,omitempty"`
}

// AuxDefaultGateway4 and AuxDefaultGateway6 are the auxiliary
// addresses moby's bridge driver takes as its endpoints' gateway in
// place of the bridge's own address (DefaultGatewayV4AuxKey,
// processIPAM), each read from its family's subnet: the daemon's
// --default-gateway and --default-gateway-v6 give them to the default
// bridge, and a network create's --aux-address may name them too.
const (
	AuxDefaultGateway4 = "DefaultGatewayIPv4"
	AuxDefaultGateway6 = "DefaultGatewayIPv6"
)

// UnusedSubnet is the subnet of n's UnusedIPAM that holds a (invalid:
// none): a family the network has off.
func (n *Network) UnusedSubnet(a netip.Addr) netip.Prefix {
	for _, r := range n.UnusedIPAM {
		if r.Subnet.Contains(a) {
			return r.Subnet
		}
	}
	return netip.Prefix{}
}

// hasAux reports whether c (nil: no such family) has the auxiliary
// address named key.
func (c *IPConfig) hasAux(key string) bool {
	if c == nil {
		return false
	}
	_, ok := c.AuxAddresses[key]
	return ok
}

// endpointGateway is the gateway c's endpoints route through: its
// auxiliary address key (AuxDefaultGateway4 or 6) when it has one, a
// router of somebody's on the bridge, else the bridge's gateway.
func (c *IPConfig) endpointGateway(key string) netip.Addr {
	if a, ok := c.AuxAddresses[key]; ok {
		return a
	}
	return c.Gateway
}

// Contains reports whether a is in c's subnet (c may be nil: no subnet of
// that family).
func (c *IPConfig) Contains(a netip.Addr) bool { return c != nil && c.Subnet.Contains(a) }

// isAux reports whether a is one of c's auxiliary addresses (c may be nil).
func (c *IPConfig) isAux(a netip.Addr) bool {
	if c == nil {
		return false
	}
	for _, x := range c.AuxAddresses {
		if x == a {
			return true
		}
	}
	return false
}

// BridgeConfig is the parsed form of a bridge network's options.
type BridgeConfig struct {
	Name               string     `json:"name"` // the Linux bridge device
	EnableICC          bool       `json:"enableICC"`
	EnableIPMasquerade bool       `json:"enableIPMasquerade"`
	HostBindingIPv4    netip.Addr `json:"hostBindingIPv4"`
	MTU                int        `json:"mtu"`
	DefaultBridge      bool       `json:"defaultBridge,omitempty"`
	HostAccess         bool       `json:"hostAccess,omitempty"`
	// GatewayMode4 and GatewayMode6 are the gateway modes of the two
	// families; nat, the zero value, for a network made before them.
	GatewayMode4 firewall.GatewayMode `json:"gatewayModeIPv4,omitempty"`
	GatewayMode6 firewall.GatewayMode `json:"gatewayModeIPv6,omitempty"`
	// HostIPv4 and HostIPv6 (OptHostIPv4, OptHostIPv6): invalid, masquerade.
	HostIPv4 netip.Addr `json:"hostIPv4,omitzero"`
	HostIPv6 netip.Addr `json:"hostIPv6,omitzero"`
	// IfacePrefix (OptContainerIfacePrefix): "" is "eth".
	IfacePrefix string `json:"ifacePrefix,omitempty"`
	// InhibitIPv4 (OptInhibitIPv4): berth gives the bridge no IPv4
	// address (and takes none away); the IPv4 gateway the containers
	// route through is someone else's on the bridge.
	InhibitIPv4 bool `json:"inhibitIPv4,omitempty"`
	// TrustedHostInterfaces (OptTrustedHostInterfaces), as moby splits
	// it: the names between the ':'s, empty ones dropped.
	TrustedHostInterfaces []string `json:"trustedHostInterfaces,omitempty"`
	// External: the device was there before the network (an
	// administrator's bridge, named by OptBridgeName), as moby's
	// ifaceCreatedByUser: removing the network lets go of it (untagged,
	// its ports and addresses left as they are) instead of deleting it.
	External bool `json:"external,omitempty"`
}

// EndpointState records how far an endpoint's setup got, so that a restart
// after a crash can finish or roll back half-done work.
type EndpointState string

const (
	// EndpointCreating: the address is allocated and recorded; kernel objects may be half made.
	EndpointCreating EndpointState = "creating"
	// EndpointReady: every kernel object exists.
	EndpointReady EndpointState = "ready"
	// EndpointDeleting: teardown started; kernel objects may be half gone.
	EndpointDeleting EndpointState = "deleting"
)

// Endpoint joins one sandbox to one network.
type Endpoint struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"` // the container's name, without the leading "/"
	NetworkID   string           `json:"networkId"`
	SandboxID   string           `json:"sandboxId"`
	ContainerID string           `json:"containerId"`
	IfName      string           `json:"ifName"`     // eth0, eth1, … inside the sandbox, or OptEndpointIfname's
	HostIfName  string           `json:"hostIfName"` // veth + 7 hex chars, a port of the bridge
	MAC         net.HardwareAddr `json:"mac"`
	Address     netip.Prefix     `json:"address"` // 172.17.0.2/16; invalid on an IPv6-only network
	Gateway     netip.Addr       `json:"gateway"` // invalid on internal networks: no default route
	// Address6 is the endpoint's IPv6 address on a network with IPv6
	// (fd12:3456::2/64); invalid otherwise. Gateway6 is its IPv6 gateway,
	// invalid where Gateway is.
	Address6 netip.Prefix `json:"address6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
	// GwPriority ranks the endpoint among its sandbox's as the gateway
	// (JoinRequest.GwPriority).
	GwPriority int `json:"gwPriority,omitempty"`
	// StaticIP is true when the user asked for Address (--ip).
	StaticIP bool `json:"staticIP,omitempty"`
	// StaticIP6 is true when the user asked for Address6 (--ip6).
	StaticIP6 bool     `json:"staticIP6,omitempty"`
	Aliases   []string `json:"aliases,omitempty"`
	// Links are the endpoint's link aliases, "name[:alias]" as given
	// (JoinRequest.Links).
	Links    []string      `json:"links,omitempty"`
	Hostname string        `json:"hostname,omitempty"` // the container's: it resolves like a name on user networks
	State    EndpointState `json:"state"`
	// Ports are the endpoint's published ports, resolved (ports.go).
	Ports []PortMapping `json:"ports,omitempty"`
	// Announce: the driver sends a gratuitous ARP on join, because a
	// neighbour may have cached another MAC for the address.
	Announce bool `json:"announce,omitempty"`
	// Sysctls are the interface's own (OptEndpointSysctls), as
	// "net.ipv4.conf.IFNAME.forwarding=1": IFNAME stands for IfName.
	Sysctls []string `json:"sysctls,omitempty"`
	// LinkLocal are the interface's extra link-local addresses
	// (--link-local-ip): /16 for IPv4, /64 for IPv6, as libnetwork's.
	LinkLocal []netip.Prefix `json:"linkLocal,omitempty"`
}

// Sandbox is a container's network stack: one network namespace, bind-mounted at Key.
type Sandbox struct {
	ID          string `json:"id"`
	ContainerID string `json:"containerId"`
	Key         string `json:"key"` // <exec-root>/netns/<id>
	// HostNetwork is true for containers on the host network: no namespace of ours.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	// Ports are the container's published ports, as asked for; its
	// gateway endpoint publishes them (ports.go).
	Ports []PortRequest `json:"ports,omitempty"`
}

// The driver's side of the seam is in internal/driverapi (as libnetwork's
// driverapi): the specs the controller hands the bridge driver, what it
// reports back, and the interface it implements. The names stay here too.
type (
	BridgeSpec   = driverapi.BridgeSpec
	EndpointSpec = driverapi.EndpointSpec
	OwnedLink    = driverapi.OwnedLink
	Driver       = driverapi.Driver
)

// SandboxManager creates and deletes network namespaces bound to files (internal/sandbox).
type SandboxManager interface {
	// Create makes a new netns bound at the returned path (idempotent for an existing one).
	Create(id string) (path string, err error)
	// Delete unmounts and removes the namespace file; a missing one is not an error.
	Delete(id string) error
	// List returns the IDs of every namespace file under the manager's directory.
	List() ([]string, error)
	// Path is where the namespace of id is, whether or not it exists.
	Path(id string) string
}

// CreateRequest is a user's request for a new network, parsed at the API edge.
type CreateRequest struct {
	Name       string
	Driver     string // "" means bridge
	Internal   bool
	Attachable bool
	EnableIPv6 bool
	// NoIPv4 makes an IPv6-only network (--ipv4=false); it needs EnableIPv6.
	NoIPv4     bool
	IPAMDriver string // "" or "default"
	IPAM       []IPAMRequest
	// IPAMOptions are stored and shown, not interpreted; nil when the
	// request had none.
	IPAMOptions map[string]string
	Options     map[string]string
	Labels      map[string]string
	// ConfigOnly makes a configuration network (Network.ConfigOnly).
	ConfigOnly bool
	// ConfigFrom names the configuration network whose settings the
	// network takes; the request then gives none of its own.
	ConfigFrom string
}

// IPAMRequest is one --subnet/--gateway/--ip-range triple; zero values mean "choose".
type IPAMRequest struct {
	Subnet  netip.Prefix `json:"subnet,omitzero"`
	IPRange netip.Prefix `json:"ipRange,omitzero"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	// AuxAddresses (--aux-address) must be in Subnet.
	AuxAddresses map[string]netip.Addr `json:"auxAddresses,omitempty"`
}

// Attachment is one network a container is on, with its endpoint.
type Attachment struct {
	Network  *Network
	Endpoint *Endpoint
}
