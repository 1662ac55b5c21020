package network

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/store"
)

// Config wires a Controller to its collaborators. Everything kernel-facing
// arrives through an interface, so tests pass fakes.
type Config struct {
	Store     store.Store
	Driver    Driver
	Sandboxes SandboxManager
	Firewall  firewall.Firewall
	// Ports holds published host ports (internal/portalloc); nil checks nothing.
	Ports PortHolder
	// IPv6Ports publishes a port asked for on every address on [::] too,
	// forwarded by Ports (a PortForwarder) to the container's IPv4
	// address, as Docker 28 does with its userland proxy; the daemon sets
	// it where IPv6 sockets can be bound.
	IPv6Ports bool
	// NoUserlandProxy turns the userland proxy off (dockerd's
	// --userland-proxy=false): no IPv6 port is forwarded by the daemon,
	// so a container with IPv4 only is published on IPv4 alone, and a
	// dual-stack one's IPv6 ports are reached by DNAT alone (not on ::1),
	// as moby's sortAndNormPBs leaves them. IPv4 ports are the kernel's
	// either way.
	NoUserlandProxy bool
	// AllowDirectRouting (dockerd's --allow-direct-routing) lets traffic
	// routed straight to a container's address in, from any interface,
	// to its published ports (firewall/direct.go); a daemon setting, so
	// a start rebuilds the table for the one it has.
	AllowDirectRouting bool
	// AcceptFwMark and AcceptFwMask (dockerd's --bridge-accept-fwmark)
	// have every network that is not internal take traffic another
	// firewall of the host marked so (firewall.Network.AcceptMark); a
	// daemon setting, so a start rebuilds the table for the one it has.
	// AcceptFwMark 0 is none.
	AcceptFwMark, AcceptFwMask uint32
	Log                        *slog.Logger
	// DefaultBridgeName is the device of the predefined "bridge" network (berth0).
	DefaultBridgeName string
	// DefaultBridgeUserManaged (dockerd's --bridge NAME): that device is
	// the administrator's (BridgeConfig.External), never deleted; the
	// daemon passes its address as DefaultBridgeBIP. Leaving it for a
	// bridge of berth's, the default bridge does not keep its subnet.
	DefaultBridgeUserManaged bool
	// NoDefaultBridge (dockerd's --bridge none): no default bridge
	// network is made, and one that exists is removed at a start that
	// finds no endpoint on it (dropDefaultBridge).
	NoDefaultBridge bool
	// DefaultBridgeHostAccess opens the host's services to the default
	// bridge's containers (OptHostAccess); a daemon setting, applied at
	// every start, as Docker's daemon options for its bridge are.
	DefaultBridgeHostAccess bool
	// DefaultBridgeIPv6 gives the default bridge IPv6 (dockerd's --ipv6),
	// in DefaultBridgeSubnet6 (--fixed-cidr-v6) or, if that is invalid, a
	// /64 of Pools6; applied at every start, as dockerd makes its default
	// bridge again from its options at each start.
	DefaultBridgeIPv6    bool
	DefaultBridgeSubnet6 netip.Prefix
	// DefaultBridgeBIP6 (--bip6) is the default bridge's IPv6 gateway
	// address and subnet; DefaultBridgeSubnet6 is then its range.
	DefaultBridgeBIP6 netip.Prefix
	// DefaultBridgeOptions are the default bridge's driver options from
	// the daemon's (--mtu, --icc, --ip-masq, --ip), checked as a network
	// create's; DefaultBridgeBIP (--bip) is its gateway address and
	// subnet, DefaultBridgeFixedCIDR (--fixed-cidr) its containers' range.
	// Applied at a start that finds the bridge empty.
	DefaultBridgeOptions   map[string]string
	DefaultBridgeBIP       netip.Prefix
	DefaultBridgeFixedCIDR netip.Prefix
	// DefaultBridgeGateway4 and DefaultBridgeGateway6 (--default-gateway,
	// --default-gateway-v6) are the default bridge's containers'
	// gateways in place of the bridge's addresses: a router of the
	// user's on the bridge, held as an auxiliary address
	// (AuxDefaultGateway4, 6), as dockerd's getDefaultBridgeIPAMConf
	// does. Applied with the rest at a start that finds the bridge empty.
	DefaultBridgeGateway4 netip.Addr
	DefaultBridgeGateway6 netip.Addr
	// Nameservers are the host's resolvers; pools that contain one are skipped.
	Nameservers []netip.Addr
	// Pools to pick subnets from; nil means Docker's defaults.
	Pools []ipam.Pool
	// Pools6 are the IPv6 pools, for networks with IPv6 and no subnet of
	// the user's; nil means one ULA /48 split into /64s, as Docker derives
	// it from its engine ID (the daemon passes ipam.ULAPool(its ID)).
	Pools6 []ipam.Pool
	// Now and NewID are injectable for tests.
	Now   func() time.Time
	NewID func() string
}

// Controller owns networks, endpoints and sandboxes: their records in the
// store, their addresses in IPAM, and the order in which the kernel is touched.
// Its lock guards only memory and the store; kernel work runs outside it.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu       sync.RWMutex // readers (inspect, ls) never queue behind one another
	networks map[string]*Network
	// unfinished names the predefined networks whose removal (--bridge
	// none's) failed at this start: their record and device are still
	// there, so none of that name is made again until a start finishes it.
	unfinished map[string]bool
	endpoints  map[string]*Endpoint
	// bySandbox indexes endpoints by their sandbox's ID (setEndpointLocked
	// and dropEndpointLocked keep it), so that a sandbox's endpoints are
	// found without a walk of every endpoint on the host: docker ps asks
	// for every container's.
	bySandbox map[string]map[string]*Endpoint
	sandboxes map[string]*Sandbox
	spaces    map[string]*ipam.Space // by network ID, bridge networks with IPv4 only
	spaces6   map[string]*ipam.Space // by network ID, networks with IPv6 only
	view      netView                // networks for readers that must not wait for c.mu
	names     *nameTable             // for the embedded resolver; its own lock
	newIfName HostIfNameFunc
	ready     readyMarks // guarded by mu
	// netOps orders the making and deleting of bridges while the daemon
	// runs: a create's rollback and a removal against HealBridge, which
	// would otherwise make a bridge again behind them.
	netOps sync.Mutex
	// unheld are published host ports a start could not hold again (a
	// host process took one while no daemon ran; the DNAT works on):
	// RetryUnheldPorts takes them back once free. Guarded by mu.
	unheld map[HostPort]bool
	// customPools: the daemon's address pools are not Docker's.
	customPools bool
}

// New returns a controller; call Start before anything else.
func New(cfg Config) *Controller {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = NewID
	}
	customPools := cfg.Pools != nil
	if cfg.Pools == nil {
		cfg.Pools = ipam.DefaultPools()
	}
	if cfg.Pools6 == nil {
		cfg.Pools6 = []ipam.Pool{ipam.ULAPool("")}
	}
	if cfg.DefaultBridgeName == "" {
		cfg.DefaultBridgeName = DefaultBridgeDevice
	}
	return &Controller{
		newIfName:   RandomHostIfName,
		cfg:         cfg,
		log:         cfg.Log,
		networks:    map[string]*Network{},
		endpoints:   map[string]*Endpoint{},
		bySandbox:   map[string]map[string]*Endpoint{},
		sandboxes:   map[string]*Sandbox{},
		spaces:      map[string]*ipam.Space{},
		spaces6:     map[string]*ipam.Space{},
		names:       newNameTable(),
		customPools: customPools,
	}
}

// NewID returns 64 random hex characters, Docker's ID format.
func NewID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

// RandomHostIfName returns "veth" and 7 random hex characters, as Docker names host ends.
func RandomHostIfName() string { return "veth" + NewID()[:7] }

// Networks returns copies of every network, sorted by name.
func (c *Controller) Networks() []*Network {
	nets := c.viewNetworks()
	out := make([]*Network, 0, len(nets))
	for _, n := range nets {
		out = append(out, cloneNetwork(n))
	}
	return out
}

// Network finds a network by full ID, name, or unique ID prefix, in that order (Docker's).
func (c *Controller) Network(ref string) (*Network, error) {
	n, err := c.lookupView(ref)
	if err != nil {
		return nil, err
	}
	return cloneNetwork(n), nil
}

func (c *Controller) lookupNetwork(ref string) (*Network, error) {
	return lookupIn(c.networks, ref)
}

// lookupIn finds ref in networks by ID, name, then unique ID prefix.
func lookupIn(networks map[string]*Network, ref string) (*Network, error) {
	if ref == "" {
		return nil, errdefs.NotFound("network %s not found", ref)
	}
	if n, ok := networks[ref]; ok {
		return n, nil
	}
	for _, n := range networks {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *Network
	matches := 0
	for id, n := range networks {
		if strings.HasPrefix(id, ref) {
			found = n
			matches++
		}
	}
	switch matches {
	case 0:
		return nil, errdefs.NotFound("network %s not found", ref)
	case 1:
		return found, nil
	}
	return nil, errdefs.WithKind(errdefs.KindInvalid, &AmbiguousError{Ref: ref, Matches: matches})
}

// AmbiguousError is an ID prefix that more than one network's ID starts
// with. Its words are moby's FindNetwork's (connect, run, rm); network
// inspect words it its own way (InspectWords).
type AmbiguousError struct {
	Ref     string
	Matches int
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("network %s is ambiguous (%d matches found based on ID prefix)", e.Ref, e.Matches)
}

// InspectWords is the error as moby's network inspect route words it.
func (e *AmbiguousError) InspectWords() string {
	return fmt.Sprintf("%d matches found based on ID prefix: network %s is ambiguous", e.Matches, e.Ref)
}

// Endpoints returns copies of the endpoints on network id, sorted by
// address (IPv6 on an IPv6-only network).
func (c *Controller) Endpoints(networkID string) []*Endpoint {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*Endpoint
	for _, ep := range c.endpoints {
		if ep.NetworkID == networkID {
			out = append(out, cloneEndpoint(ep))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := out[i].Address.Addr(), out[j].Address.Addr(); a != b {
			return a.Less(b)
		}
		return out[i].Address6.Addr().Less(out[j].Address6.Addr())
	})
	return out
}

// Attachments returns the networks sandboxID is on, in interface order (eth0 first).
func (c *Controller) Attachments(sandboxID string) []Attachment {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Attachment
	for _, ep := range c.sandboxEndpointsLocked(sandboxID) {
		out = append(out, Attachment{Network: cloneNetwork(c.networks[ep.NetworkID]), Endpoint: cloneEndpoint(ep)})
	}
	return out
}

// Addresses returns the addresses of each endpoint of the sandbox, an
// endpoint's IPv4 address before its IPv6 one, the endpoints in the order
// of moby's Endpoint.Less: the higher gateway priority first, then the
// endpoint with more gateways (dual-stack before single-stack, any before
// none), then by network name. It is what /etc/hosts lists for the
// container at its start, as moby's rebuildHostsFile, so that the
// container's own name resolves first to its address on the network of
// its default route (hostname -i), without the copies of networks and
// endpoints Attachments makes.
func (c *Controller) Addresses(sandboxID string) []netip.Addr {
	c.mu.RLock()
	defer c.mu.RUnlock()
	eps := c.sandboxEndpointsLocked(sandboxID)
	gws := func(ep *Endpoint) int {
		n := 0
		for _, ok := range []bool{ep.Gateway.IsValid(), ep.Gateway6.IsValid()} {
			if ok {
				n++
			}
		}
		return n
	}
	slices.SortStableFunc(eps, func(a, b *Endpoint) int {
		if a.GwPriority != b.GwPriority {
			return cmp.Compare(b.GwPriority, a.GwPriority)
		}
		if ga, gb := gws(a), gws(b); ga != gb {
			return cmp.Compare(gb, ga)
		}
		return strings.Compare(c.networks[a.NetworkID].Name, c.networks[b.NetworkID].Name)
	})
	var out []netip.Addr
	for _, ep := range eps {
		out = append(out, endpointAddrs(ep)...)
	}
	return out
}

// AddressesOn returns the addresses of the sandbox's endpoint on the
// network netRef names (ID or name), IPv4 first; none when it has none.
func (c *Controller) AddressesOn(sandboxID, netRef string) []netip.Addr {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, ep := range c.sandboxEndpointsLocked(sandboxID) {
		if n := c.networks[ep.NetworkID]; n.ID == netRef || n.Name == netRef {
			return endpointAddrs(ep)
		}
	}
	return nil
}

// sandboxEndpointsLocked returns the endpoints of sandboxID whose network
// still exists, in interface order.
func (c *Controller) sandboxEndpointsLocked(sandboxID string) []*Endpoint {
	var eps []*Endpoint
	for _, ep := range c.bySandbox[sandboxID] {
		if _, ok := c.networks[ep.NetworkID]; ok {
			eps = append(eps, ep)
		}
	}
	slices.SortFunc(eps, func(a, b *Endpoint) int {
		if d := ifIndex(a.IfName) - ifIndex(b.IfName); d != 0 {
			return d
		}
		return strings.Compare(a.IfName, b.IfName) // names of the user's (OptEndpointIfname)
	})
	return eps
}

// Sandbox returns a copy of the sandbox record.
func (c *Controller) Sandbox(id string) (*Sandbox, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	sb, ok := c.sandboxes[id]
	if !ok {
		return nil, errdefs.NotFound("sandbox %s not found", id)
	}
	cp := *sb
	return &cp, nil
}

// ifIndex turns "eth3" into 3 for ordering; names without a number sort last.
func ifIndex(name string) int {
	i := strings.LastIndexFunc(name, func(r rune) bool { return r < '0' || r > '9' })
	n, err := strconv.Atoi(name[i+1:])
	if err != nil {
		return 1 << 30
	}
	return n
}

func cloneNetwork(n *Network) *Network {
	cp := *n
	if n.IPv4 != nil {
		v := *n.IPv4
		cp.IPv4 = &v
	}
	if n.IPv6 != nil {
		v := *n.IPv6
		cp.IPv6 = &v
	}
	if n.Bridge != nil {
		b := *n.Bridge
		cp.Bridge = &b
	}
	cp.Options = cloneMap(n.Options)
	cp.Labels = cloneMap(n.Labels)
	cp.Warnings = append([]string(nil), n.Warnings...)
	return &cp
}

func cloneEndpoint(ep *Endpoint) *Endpoint {
	cp := *ep
	cp.MAC = append(cp.MAC[:0:0], ep.MAC...)
	cp.Aliases = append([]string(nil), ep.Aliases...)
	cp.Links = append([]string(nil), ep.Links...)
	cp.Ports = append([]PortMapping(nil), ep.Ports...)
	return &cp
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// firewallNetwork is what the firewall needs of n.
func (c *Controller) firewallNetwork(n *Network) firewall.Network {
	fn := firewall.Network{
		Bridge:     n.Bridge.Name,
		ICC:        n.Bridge.EnableICC,
		Masquerade: n.Bridge.EnableIPMasquerade && !n.Internal,
		Internal:   n.Internal,
		HostAccess: n.Bridge.HostAccess,
		// Set for the family of each mode.
		GatewayMode4:  n.Bridge.GatewayMode4,
		GatewayMode6:  n.Bridge.GatewayMode6,
		DirectRouting: c.cfg.AllowDirectRouting,
		Trusted:       strings.Join(n.Bridge.TrustedHostInterfaces, ":"),
		AcceptMark:    c.cfg.AcceptFwMark,
		AcceptMask:    c.cfg.AcceptFwMask,
	}
	if n.IPv4 != nil {
		// With inhibit_ipv4 the gateway is no address of berth's, but the
		// direct-access drop spares it all the same: it is the host's
		// when the administrator put it on the bridge, and a packet for
		// an address that is not the host's is not routed to the bridge.
		fn.Subnet, fn.Gateway = n.IPv4.Subnet, bridgeGateway(n.IPv4, n.Bridge.GatewayMode4)
		fn.SNAT4 = n.Bridge.HostIPv4
	}
	if n.IPv6 != nil {
		fn.Subnet6, fn.Gateway6 = n.IPv6.Subnet, bridgeGateway(n.IPv6, n.Bridge.GatewayMode6)
		fn.SNAT6 = n.Bridge.HostIPv6
	}
	return fn
}

// bridgeGateway is the address the bridge has in family cfg, whose
// gateway mode is mode: none when it is isolated (moby's GetSkipGwAlloc).
// The IPAM record keeps its gateway address, reserved.
func bridgeGateway(cfg *IPConfig, mode firewall.GatewayMode) netip.Addr {
	if mode == firewall.ModeIsolated {
		return netip.Addr{}
	}
	return cfg.Gateway
}

// bridgeGateway4 is the IPv4 address the bridge of n has: none with
// inhibit_ipv4, whose gateway is a router of the user's on the bridge.
func bridgeGateway4(n *Network) netip.Addr {
	if n.Bridge.InhibitIPv4 {
		return netip.Addr{}
	}
	return bridgeGateway(n.IPv4, n.Bridge.GatewayMode4)
}

// bridgeSpec is what the driver needs to make n's bridge.
func bridgeSpec(n *Network) BridgeSpec {
	spec := BridgeSpec{Name: n.Bridge.Name, MTU: n.Bridge.MTU,
		Isolated:  n.Bridge.GatewayMode4 == firewall.ModeIsolated || n.Bridge.GatewayMode6 == firewall.ModeIsolated,
		Isolated6: n.IPv6 != nil && n.Bridge.GatewayMode6 == firewall.ModeIsolated, InhibitIPv4: n.Bridge.InhibitIPv4}
	if n.IPv4 != nil {
		if gw := bridgeGateway4(n); gw.IsValid() {
			spec.Gateway = netip.PrefixFrom(gw, n.IPv4.Subnet.Bits())
		}
	}
	if n.IPv6 != nil {
		if gw := bridgeGateway(n.IPv6, n.Bridge.GatewayMode6); gw.IsValid() {
			spec.Gateway6 = netip.PrefixFrom(gw, n.IPv6.Subnet.Bits())
		}
	}
	for _, g := range n.StaleGateways {
		if g != spec.Gateway && g != spec.Gateway6 {
			spec.StaleGateways = append(spec.StaleGateways, g)
		}
	}
	return spec
}

// bridgeOwner tags a bridge device as belonging to network id.
func bridgeOwner(id string) string { return "network:" + id }

func (c *Controller) putNetwork(n *Network) error {
	return c.cfg.Store.Update(func(tx store.Tx) error { return tx.Put(store.BucketNetworks, n.ID, n) })
}

// Sandboxes returns copies of every sandbox record.
func (c *Controller) Sandboxes() []Sandbox {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]Sandbox, 0, len(c.sandboxes))
	for _, sb := range c.sandboxes {
		out = append(out, *sb)
	}
	return out
}
