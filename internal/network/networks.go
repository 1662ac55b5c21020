package network

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/store"
)

// CreateNetwork validates req, records the network, then makes its bridge
// and firewall rules. If a kernel step fails, what was made is undone and
// the record removed, so a failed create leaves nothing behind.
func (c *Controller) CreateNetwork(ctx context.Context, req CreateRequest) (*Network, error) {
	ctx = context.WithoutCancel(ctx) // as Join's: kernel work runs to its end or its undoing
	// The configuration network whose settings req takes, by ID, for
	// planNetwork to see it is still the one of that name.
	var configID string
	switch {
	case req.ConfigOnly:
		return c.createConfigNetwork(req)
	case req.ConfigFrom != "":
		var err error
		if req, configID, err = c.withConfigFrom(req); err != nil {
			return nil, err
		}
	}
	// Was the device OptBridgeName names there before the network?
	bridgeExisted := false
	// A name that is not valid is left to planNetwork to refuse.
	if name := req.Options[OptBridgeName]; validBridgeName.MatchString(name) && (req.Driver == "" || req.Driver == DriverBridge) {
		existed, err := c.cfg.Driver.LinkExists(name)
		if err != nil {
			return nil, fmt.Errorf("look for bridge %q: %w", name, err)
		}
		bridgeExisted = existed
	}
	n, err := c.planNetwork(req, bridgeExisted, configID)
	if err != nil {
		return nil, err
	}
	if n.Driver != DriverBridge {
		return c.cloneUnderLock(n), nil
	}
	c.netOps.Lock()
	defer c.netOps.Unlock()
	if err := c.applyNetwork(ctx, n); err != nil {
		c.mu.Lock()
		delete(c.networks, n.ID)
		delete(c.spaces, n.ID)
		delete(c.spaces6, n.ID)
		c.publishNetworksLocked()
		c.mu.Unlock()
		err = errors.Join(err, c.cfg.Store.Update(func(tx store.Tx) error { return tx.Delete(store.BucketNetworks, n.ID) }))
		return nil, err
	}
	c.log.Info("network created", "name", n.Name, "id", n.ID[:12], "bridge", n.Bridge.Name, "subnet", subnetString(n.IPv4), "subnet6", subnetString(n.IPv6))
	cp := c.cloneUnderLock(n)
	// In the answer and the log alone: the options stay in the record and
	// in inspect, as moby keeps them.
	for _, w := range ignoredOptionsWarnings(req.Options) {
		c.log.Warn(w, "network", n.Name)
		cp.Warnings = append(cp.Warnings, w)
	}
	return cp, nil
}

// cloneUnderLock copies n under the controller's lock: once n is in
// c.networks, the route watcher (its Warnings) and joins write it.
func (c *Controller) cloneUnderLock(n *Network) *Network {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return cloneNetwork(n)
}

// planNetwork validates req against the networks that exist, reserves the
// name, subnet and bridge device under the lock, and records the intent.
// bridgeExisted says the device the request names was there before it
// (BridgeConfig.External).
func (c *Controller) planNetwork(req CreateRequest, bridgeExisted bool, configID string) (*Network, error) {
	if err := validateNetworkName(req.Name); err != nil {
		return nil, err
	}
	driver := req.Driver
	if driver == "" {
		driver = DriverBridge
	}
	switch driver {
	case DriverBridge:
	case DriverHost, DriverNull:
		return nil, errdefs.Forbidden("only one instance of %q network is allowed", driver)
	case "macvlan", "ipvlan", "overlay":
		// Docker's own drivers, which berth does not have.
		return nil, errdefs.Invalid("network driver %q is not supported by berth: use %q", driver, DriverBridge)
	default:
		// moby's words for a driver it has not (a plugin it looks for).
		return nil, errdefs.NotFound("plugin %q not found", driver)
	}
	if req.IPAMDriver != "" && req.IPAMDriver != "default" {
		return nil, errdefs.Invalid("IPAM driver %q not found: berth supports \"default\"", req.IPAMDriver)
	}
	if req.NoIPv4 && !req.EnableIPv6 {
		return nil, errdefs.Invalid("IPv4 or IPv6 must be enabled") // the bridge driver's words
	}
	ir, ir6, unused, err := splitIPAM(req.IPAM, !req.NoIPv4, req.EnableIPv6)
	if err != nil {
		return nil, err
	}
	id := c.cfg.NewID()
	bc, err := parseBridgeOptions(req.Options, "br-"+id[:12])
	if bc != nil {
		bc.External = bridgeExisted
	}
	if err != nil {
		return nil, err
	}
	if (bc.GatewayMode4 == firewall.ModeIsolated || bc.GatewayMode6 == firewall.ModeIsolated) && !req.Internal {
		return nil, errdefs.Invalid("gateway mode 'isolated' can only be used for an internal network") // moby's words
	}
	n := c.newNetwork(id, driver, req)
	n.Internal, n.Attachable, n.Bridge = req.Internal, req.Attachable, bc
	// MACs come from IPv4 addresses: without them, every join announces
	// its MAC (Endpoint.Announce).
	n.MACsFromAddresses = !req.NoIPv4
	n.UnusedIPAM = unused

	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.networks {
		if o.Name == n.Name {
			return nil, errdefs.Conflict("network with name %s already exists", n.Name)
		}
		if o.Bridge != nil && o.Bridge.Name == bc.Name {
			return nil, errdefs.Conflict("bridge device %q is already used by network %q", bc.Name, o.Name)
		}
	}
	if req.ConfigFrom != "" {
		// Still there, the same one: a removal of it between
		// withConfigFrom and here saw no network made from it.
		from, err := c.configNetworkLocked(req.ConfigFrom)
		if err != nil {
			return nil, err
		}
		if from.ID != configID {
			return nil, errdefs.Conflict("configuration network %q was made again while a network was made from it: try again", req.ConfigFrom)
		}
		n.ConfigFrom = req.ConfigFrom
	}
	var space, space6 *ipam.Space
	if !req.NoIPv4 {
		// An IPv6-only network ignores an IPv4 --subnet, as libnetwork
		// allocates no IPv4 pool for it.
		if err := c.planIPv4Locked(n, ir); err != nil {
			return nil, err
		}
		skipIsolatedGateway(n.IPv4, ir, bc.GatewayMode4)
		if bc.InhibitIPv4 && req.Internal && !ir.Gateway.IsValid() {
			// moby's GetSkipGwAlloc: no address on the bridge and no
			// default route, so no gateway to hold.
			n.IPv4.Gateway = netip.Addr{}
		}
		if space, err = newSpace(n.IPv4); err != nil {
			return nil, err
		}
	}
	if req.EnableIPv6 {
		if err := c.planIPv6Locked(n, ir6); err != nil {
			return nil, err
		}
		skipIsolatedGateway(n.IPv6, ir6, bc.GatewayMode6)
		if space6, err = newSpace(n.IPv6); err != nil {
			return nil, err
		}
	}
	if req.Internal && n.IPv4.hasAux(AuxDefaultGateway4) {
		// moby's setupGatewayIPv4 (its IPv6 twin has no such check: an
		// internal network's endpoints get no gateway either way).
		return nil, errdefs.Invalid("no gateway can be set on an internal bridge network")
	}
	if err := c.putNetwork(n); err != nil {
		return nil, fmt.Errorf("record network %q: %w", n.Name, err)
	}
	c.networks[n.ID] = n
	if space != nil {
		c.spaces[n.ID] = space
	}
	if space6 != nil {
		c.spaces6[n.ID] = space6
	}
	c.publishNetworksLocked()
	return n, nil
}

// newNetwork is the record of a network req asks for, before its kernel
// side is planned: its name, options and labels (empty, not nil, as
// inspect shows them) and IPAM options (nil when the request had none).
func (c *Controller) newNetwork(id, driver string, req CreateRequest) *Network {
	n := &Network{
		ID: id, Name: req.Name, Driver: driver, Created: c.cfg.Now().UTC(),
		Options: cloneMap(req.Options), Labels: cloneMap(req.Labels), IPAMOptions: cloneMap(req.IPAMOptions),
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	return n
}

// skipIsolatedGateway takes the gateway address planned for a family in
// gateway mode isolated back: as moby's GetSkipGwAlloc, IPAM allocates
// none, so inspect shows none and the address goes to a container. A
// gateway the user gave is kept, reserved, though the bridge never
// gets it (bridgeGateway).
func skipIsolatedGateway(cfg *IPConfig, ir IPAMRequest, mode firewall.GatewayMode) {
	if mode == firewall.ModeIsolated && !ir.Gateway.IsValid() {
		cfg.Gateway = netip.Addr{}
	}
}

// splitIPAM sorts a request's --subnet triples by family: at most one of
// each family that is on. Those of a family that is off are unused:
// without IPv6 Docker's ValidateIPAM skips its triples and libnetwork
// allocates none but keeps them, and so for IPv4 with it off.
func splitIPAM(reqs []IPAMRequest, enableIPv4, enableIPv6 bool) (ir, ir6 IPAMRequest, unused []IPAMRequest, err error) {
	var n4, n6 int
	for _, r := range reqs {
		is6 := r.Subnet.Addr().Is6() || !r.Subnet.IsValid() && (r.Gateway.Is6() || r.IPRange.Addr().Is6())
		switch {
		case !is6 && enableIPv4:
			ir = r
			n4++
		case is6 && enableIPv6:
			ir6 = r
			n6++
		default:
			unused = append(unused, r)
		}
	}
	if n4 > 1 || n6 > 1 {
		// moby's words and kind (the bridge driver's processIPAM).
		return ir, ir6, nil, errdefs.Forbidden("bridge driver doesn't support multiple subnets")
	}
	return ir, ir6, cloneIPAM(unused), nil
}

// planIPv4Locked picks or checks n's subnet and gateway. A user's subnet
// must not overlap another network's; a chosen one also avoids the host's
// routes and nameservers.
func (c *Controller) planIPv4Locked(n *Network, ir IPAMRequest) error {
	cfg, err := c.planFamilyLocked(ir, c.cfg.Pools, func(o *Network) *IPConfig { return o.IPv4 }, netip.Prefix{})
	if err != nil {
		return err
	}
	n.IPv4 = cfg
	return nil
}

// planIPv6Locked is planIPv4Locked for n's IPv6 subnet, chosen from
// Pools6 when the user gave none.
func (c *Controller) planIPv6Locked(n *Network, ir IPAMRequest) error {
	cfg, err := c.planFamilyLocked(ir, c.cfg.Pools6, func(o *Network) *IPConfig { return o.IPv6 }, netip.Prefix{})
	if err != nil {
		return err
	}
	n.IPv6 = cfg
	return nil
}

// planFamilyLocked picks or checks one family's subnet and gateway
// against the other networks' subnets of that family (of).
func (c *Controller) planFamilyLocked(ir IPAMRequest, pools []ipam.Pool, of func(*Network) *IPConfig, own netip.Prefix) (*IPConfig, error) {
	var used []netip.Prefix
	for _, o := range c.networks {
		if oc := of(o); oc != nil {
			used = append(used, oc.Subnet)
		}
	}
	if a := ir.Subnet.Addr(); ir.Subnet.IsValid() && a.IsUnspecified() {
		// Docker 29 (moby ea0d934ff2): --subnet 0.0.0.0/26 or ::/120 asks
		// for a subnet of that size from the default pools (/0: theirs).
		if ir.IPRange.IsValid() || ir.Gateway.IsValid() || len(ir.AuxAddresses) > 0 {
			return nil, errdefs.Invalid("invalid network config: --subnet %s asks the default address pools for a subnet; --ip-range, --gateway and --aux-address need a subnet of your own", ir.Subnet)
		}
		if bits := ir.Subnet.Bits(); bits >= a.BitLen()-1 && a.Is6() || bits == a.BitLen() {
			// As validateSubnet says of a user's /32 (and a /127 or /128,
			// which have no address after the gateway and its anycast).
			return nil, errdefs.Invalid("invalid network config: --subnet %s: a /%d has no address left for a container after the gateway", ir.Subnet, bits)
		}
		var err error
		if pools, err = ipam.Resized(pools, a, ir.Subnet.Bits()); err != nil {
			return nil, err
		}
		ir.Subnet = netip.Prefix{}
	}
	cfg := &IPConfig{Subnet: ir.Subnet, IPRange: ir.IPRange, Gateway: ir.Gateway}
	if ir.Subnet.IsValid() {
		cfg.UserSubnet = true
		for _, o := range c.networks {
			if oc := of(o); oc != nil && ipam.Overlaps(oc.Subnet, ir.Subnet) {
				// moby's words first: tools match "Pool overlaps" to try
				// another subnet.
				return nil, errdefs.Forbidden("invalid pool request: Pool overlaps with other one on this address space: subnet %s overlaps network %q (%s)", ir.Subnet, o.Name, oc.Subnet)
			}
		}
	} else {
		if ir.IPRange.IsValid() || ir.Gateway.IsValid() {
			return nil, errdefs.Invalid("--ip-range and --gateway need --subnet")
		}
		reserved, err := c.reservedPrefixes()
		if err != nil {
			return nil, err
		}
		if own.IsValid() {
			reserved = slices.DeleteFunc(reserved, func(p netip.Prefix) bool { return p == own })
		}
		sub, err := ipam.SelectSubnet(pools, used, reserved)
		if err != nil {
			return nil, err
		}
		cfg.Subnet = sub
	}
	if !cfg.Gateway.IsValid() {
		cfg.Gateway = ipam.DefaultGateway(cfg.Subnet)
	}
	if err := ipam.ValidateRequest(cfg.Subnet, cfg.IPRange, cfg.Gateway); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(ir.AuxAddresses)) {
		if a := ir.AuxAddresses[k]; !cfg.Subnet.Contains(a) {
			// libnetwork's ipamAllocateVersion, word for word.
			return nil, errdefs.Forbidden("auxiliary address: (%s:%s) must belong to the master pool: %s", k, a, cfg.Subnet)
		}
	}
	if len(ir.AuxAddresses) > 0 {
		cfg.AuxAddresses = maps.Clone(ir.AuxAddresses)
	}
	return cfg, nil
}

// newSpace is cfg's address space, with its auxiliary addresses held:
// no container gets one (libnetwork reserves those in its IPAM pool, and
// fails the create on one already taken, the gateway's included).
func newSpace(cfg *IPConfig) (*ipam.Space, error) {
	space, err := ipam.NewSpace(cfg.Subnet, cfg.IPRange, cfg.Gateway)
	if err != nil {
		return nil, err
	}
	if err := reserveAux(space, cfg); err != nil {
		return nil, err
	}
	return space, nil
}

// reserveAux holds cfg's auxiliary addresses in space; it holds all it
// can and returns the first failure.
func reserveAux(space *ipam.Space, cfg *IPConfig) error {
	var first error
	for _, k := range slices.Sorted(maps.Keys(cfg.AuxAddresses)) {
		a := cfg.AuxAddresses[k]
		if err := space.Reserve(a); err != nil && first == nil {
			first = errdefs.WithKind(errdefs.KindUnknown, fmt.Errorf("failed to allocate secondary ip address (%s:%s): %w", k, a, err))
		}
	}
	return first
}

// reservedPrefixes are the host's routes and nameservers, which a chosen
// subnet must not overlap: the IPv4 routes of every table but catch-alls
// (catchAll), and each nameserver as a /32 or /128 (Docker's
// InferReservedNetworks, which keeps only on-link routes of the main
// table).
func (c *Controller) reservedPrefixes() ([]netip.Prefix, error) {
	all, err := c.cfg.Driver.HostRoutes()
	if err != nil {
		return nil, fmt.Errorf("read host routes: %w", err)
	}
	routes := slices.DeleteFunc(all, catchAll)
	for _, ns := range c.cfg.Nameservers {
		ns = ns.Unmap()
		routes = append(routes, netip.PrefixFrom(ns, ns.BitLen()))
	}
	return routes, nil
}

// applyNetwork makes the kernel side of a bridge network: the bridge, then its rules.
func (c *Controller) applyNetwork(ctx context.Context, n *Network) error {
	if err := c.cfg.Driver.EnsureBridge(bridgeSpec(n), bridgeOwner(n.ID)); err != nil {
		return fmt.Errorf("create bridge %q for network %q: %w", n.Bridge.Name, n.Name, err)
	}
	if err := c.cfg.Firewall.AddNetwork(ctx, c.firewallNetwork(n)); err != nil {
		return errors.Join(fmt.Errorf("add firewall rules for network %q: %w", n.Name, err),
			c.dropBridge(n))
	}
	return nil
}

// dropBridge deletes n's bridge, or lets go of it when it was there
// before the network (BridgeConfig.External).
func (c *Controller) dropBridge(n *Network) error {
	if n.Bridge.External {
		return c.cfg.Driver.ReleaseBridge(n.Bridge.Name)
	}
	return c.cfg.Driver.DeleteBridge(n.Bridge.Name)
}

// RemoveNetwork deletes a user network that has no endpoints: its rules,
// its bridge, then its record. Predefined networks cannot be removed.
func (c *Controller) RemoveNetwork(ctx context.Context, ref string) error {
	// As Join's: cancelled after the network left memory, the firewall
	// kept its rules while its subnet counted as free again (the next
	// network on it was refused until a restart).
	ctx = context.WithoutCancel(ctx)
	c.mu.Lock()
	n, err := c.lookupNetwork(ref)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if n.Predefined {
		c.mu.Unlock()
		return errdefs.Forbidden("%s is a pre-defined network and cannot be removed", n.Name)
	}
	if eps := c.activeEndpointsLocked(n.ID); eps != "" {
		c.mu.Unlock()
		return errdefs.Forbidden("error while removing network: network %s has active endpoints (%s)", n.Name, eps)
	}
	if n.ConfigOnly && c.configUsedLocked(n) {
		c.mu.Unlock()
		return errdefs.Forbidden("error while removing network: configuration network %q is in use", n.Name)
	}
	err = c.markRemovingLocked(n)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.teardownNetwork(ctx, n); err != nil {
		return err
	}
	c.log.Info("network removed", "name", n.Name, "id", n.ID[:12])
	return nil
}

// markRemovingLocked marks n as being removed in the store first, then
// drops it from memory, both under c.mu so that no Join can start on
// it; the record stays until the kernel side is gone (teardownNetwork),
// so a crash in between is finished by the next start. A mark the store
// refuses (a full disk) leaves the network as it was: dropped from
// memory first, it was gone from inspect and its name and subnet free
// while its record, bridge and rules stayed.
func (c *Controller) markRemovingLocked(n *Network) error {
	n.Removing = true
	if err := c.putNetwork(n); err != nil {
		n.Removing = false
		return fmt.Errorf("record removal of network %q: %w", n.Name, err)
	}
	delete(c.networks, n.ID)
	delete(c.spaces, n.ID)
	delete(c.spaces6, n.ID)
	c.publishNetworksLocked()
	return nil
}

// dropDefaultBridge removes the default bridge network under dockerd's
// --bridge none (Config.NoDefaultBridge), as dockerd deletes it at its
// start and makes none, once no endpoint is on it: it runs after the
// reconcile, which has cleared the endpoints of containers that no longer
// run. With containers on it, it stays and the log says so, as the
// daemon's other settings for it wait (applyDefaultBridgeLocked). Its
// device goes with it unless it is the administrator's (External).
func (c *Controller) dropDefaultBridge(ctx context.Context) error {
	if !c.cfg.NoDefaultBridge {
		return nil
	}
	c.mu.Lock()
	var n *Network
	for _, o := range c.networks {
		if o.Bridge != nil && o.Bridge.DefaultBridge {
			n = o
		}
	}
	if n == nil {
		c.mu.Unlock()
		return nil
	}
	if eps := c.activeEndpointsLocked(n.ID); eps != "" {
		c.mu.Unlock()
		c.log.Warn("--bridge none: the default bridge network has containers and stays until a start finds none on it; the daemon joins no container to it meanwhile", "endpoints", eps)
		return nil
	}
	err := c.markRemovingLocked(n)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.teardownNetwork(ctx, n); err != nil {
		return fmt.Errorf("--bridge none: remove the default bridge network: %w", err)
	}
	c.log.Info("--bridge none: the default bridge network was removed", "id", n.ID[:12], "bridge", n.Bridge.Name)
	return nil
}

// teardownNetwork removes n's rules and bridge, then its record; it goes on past errors.
func (c *Controller) teardownNetwork(ctx context.Context, n *Network) error {
	c.netOps.Lock()
	defer c.netOps.Unlock()
	var errs []error
	if n.Bridge != nil {
		if err := c.cfg.Firewall.DelNetwork(ctx, c.firewallNetwork(n)); err != nil {
			errs = append(errs, fmt.Errorf("remove firewall rules of network %q: %w", n.Name, err))
		}
		if err := c.dropBridge(n); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %q: %w", n.Bridge.Name, err))
		}
	}
	if len(errs) == 0 {
		if err := c.cfg.Store.Update(func(tx store.Tx) error { return tx.Delete(store.BucketNetworks, n.ID) }); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// activeEndpointsLocked lists the endpoints on a network as libnetwork's
// ActiveEndpointsError does: `name:"web1" id:"0123456789ab"`, by name.
func (c *Controller) activeEndpointsLocked(networkID string) string {
	var eps []string
	for _, ep := range c.endpoints {
		if ep.NetworkID == networkID {
			eps = append(eps, fmt.Sprintf("name:%q id:%q", ep.Name, ep.ID[:min(12, len(ep.ID))]))
		}
	}
	slices.Sort(eps)
	return strings.Join(eps, ", ")
}

func (c *Controller) endpointCountLocked(networkID string) int {
	cnt := 0
	for _, ep := range c.endpoints {
		if ep.NetworkID == networkID {
			cnt++
		}
	}
	return cnt
}

// PruneNetworks removes every user network without endpoints whose labels
// match all of filters ("key" or "key=value"), and returns them.
func (c *Controller) PruneNetworks(ctx context.Context, f PruneFilter) ([]*Network, error) {
	var candidates []string
	c.mu.Lock()
	for _, n := range c.networks {
		// Configuration networks are kept, as moby's prune keeps them.
		if !n.Predefined && !n.ConfigOnly && c.endpointCountLocked(n.ID) == 0 && f.matches(n) {
			candidates = append(candidates, n.ID)
		}
	}
	c.mu.Unlock()
	var removed []*Network
	var errs []error
	for _, id := range candidates {
		n, err := c.Network(id)
		if err != nil {
			continue
		}
		if err := c.RemoveNetwork(ctx, id); err != nil {
			if errdefs.Is(err, errdefs.KindForbidden) || errdefs.Is(err, errdefs.KindNotFound) {
				continue // an endpoint arrived meanwhile, or someone else removed it
			}
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}

// PruneFilter is network prune's --filter: label (every one must match),
// label! (skipped when every one matches) and until (only networks created
// before it), as moby's NetworksPrune applies them.
type PruneFilter struct {
	Labels, NotLabels []string
	Until             time.Time // zero: any age
}

func (f PruneFilter) matches(n *Network) bool {
	if !f.Until.IsZero() && n.Created.After(f.Until) {
		return false
	}
	if !matchLabels(n.Labels, f.Labels) {
		return false
	}
	return len(f.NotLabels) == 0 || !matchLabels(n.Labels, f.NotLabels)
}

func matchLabels(have map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasValue := strings.Cut(w, "=")
		got, ok := have[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// setDefaultBridgeHostAccess applies the daemon's host access setting to
// the default bridge n, and shows it among n's options when it is on.
// The administrator's device (--bridge, External) is open whatever the
// setting: it carries more than containers (the LAN's hosts behind its
// uplink), as every bridge of Docker's is open; this follows the record,
// so a default bridge kept on it while --bridge changes stays open.
func (c *Controller) setDefaultBridgeHostAccess(n *Network) {
	n.Bridge.HostAccess = c.cfg.DefaultBridgeHostAccess || n.Bridge.External
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Bridge.HostAccess {
		n.Options[OptHostAccess] = "true"
	} else {
		delete(n.Options, OptHostAccess)
	}
}

// defaultBridgeIPv4Request is what the daemon's --bip and --fixed-cidr
// ask of the default bridge's IPv4, given what it has (cur; nil before
// it exists), worked out as dockerd's getDefaultBridgeIPAMConf works it
// out from its options and the bridge's address: --bip is the gateway
// and the subnet, --fixed-cidr the range (and, without --bip, the subnet
// unless the bridge's subnet holds it; a wider --fixed-cidr widens it).
// Without either the bridge keeps its subnet, unless the daemon has
// address pools of its own that do not hold it (dockerd deletes docker0
// then, and picks again from its pools), or keepable says not to.
func (c *Controller) defaultBridgeIPv4Request(cur *IPConfig, keepable bool) IPAMRequest {
	if !keepable {
		cur = nil
	}
	keep := cur != nil && (!c.customPools || inPools(cur.Subnet, c.cfg.Pools))
	return withDefaultGateway(defaultBridgeRequest(c.cfg.DefaultBridgeBIP, c.cfg.DefaultBridgeFixedCIDR, cur, keep),
		AuxDefaultGateway4, c.cfg.DefaultBridgeGateway4)
}

// withDefaultGateway adds gw (invalid: none), a default gateway of the
// daemon's, to req as the auxiliary address key.
func withDefaultGateway(req IPAMRequest, key string, gw netip.Addr) IPAMRequest {
	if gw.IsValid() {
		req.AuxAddresses = map[string]netip.Addr{key: gw}
	}
	return req
}

// defaultBridgeRequest is getDefaultBridgeIPAMConf's work for one family
// of the default bridge, from its bip (the gateway and the subnet), its
// fixed-cidr (masked: the range) and what the bridge has (cur, as
// selectBIP reads the bridge's address): bip with fixed as the range;
// else cur's subnet and gateway when they hold fixed, the subnet widened
// to fixed when fixed is larger (it holds cur's subnet then); else fixed
// as subnet and range; else, when keep says so, cur's subnet and gateway;
// else a subnet of the pools.
func defaultBridgeRequest(bip, fixed netip.Prefix, cur *IPConfig, keep bool) IPAMRequest {
	switch {
	case bip.IsValid():
		return IPAMRequest{Subnet: bip.Masked(), Gateway: bip.Addr(), IPRange: fixed}
	case fixed.IsValid() && cur != nil && cur.Subnet.Contains(fixed.Addr()):
		subnet := cur.Subnet
		if fixed.Bits() < subnet.Bits() {
			subnet = fixed
		}
		return IPAMRequest{Subnet: subnet, Gateway: cur.Gateway, IPRange: fixed}
	case fixed.IsValid():
		return IPAMRequest{Subnet: fixed, IPRange: fixed}
	case keep:
		return IPAMRequest{Subnet: cur.Subnet, Gateway: cur.Gateway}
	}
	return IPAMRequest{}
}

// inPools reports whether subnet is one a pool hands out.
func inPools(subnet netip.Prefix, pools []ipam.Pool) bool {
	for _, p := range pools {
		if p.Base.Contains(subnet.Addr()) && subnet.Bits() == p.Size {
			return true
		}
	}
	return false
}

// SettingsError is a daemon setting the controller cannot apply at a
// start (a --bip another network holds, an MTU out of range): the daemon
// must not serve with it, as dockerd does not start with it.
type SettingsError struct{ Err error }

func (e *SettingsError) Error() string { return e.Err.Error() }
func (e *SettingsError) Unwrap() error { return e.Err }

func settingsError(format string, args ...any) error {
	return &SettingsError{fmt.Errorf(format, args...)}
}

// applyDefaultBridgeLocked makes the default bridge what the daemon's
// options ask (dockerd makes it again from its options at each start):
// its device name, --bip and --fixed-cidr, --mtu, --icc, --ip-masq, --ip,
// and IPv6 (--ipv6 in --fixed-cidr-v6, shown as its ip-range too, as
// dockerd shows it; without a subnet of the user's the bridge keeps what
// it has or gets a /64 of the pools). While containers are on the
// bridge nothing changes, as dockerd keeps its network configuration
// while sandboxes are live (initNetworkController): their addresses,
// routes and published ports rest on it. That is logged, and applied at
// the first start with the bridge empty. The gateways the bridge gives up
// are recorded for EnsureBridge to take off it; a device of the old name
// goes with removeRenamedBridges.
func (c *Controller) applyDefaultBridgeLocked() error {
	var n *Network
	for _, o := range c.networks {
		if o.Bridge != nil && o.Bridge.DefaultBridge && !o.Removing {
			n = o
		}
	}
	if n == nil || c.cfg.NoDefaultBridge { // dropDefaultBridge's, after the reconcile
		return nil
	}
	bc, err := parseBridgeOptions(c.cfg.DefaultBridgeOptions, c.cfg.DefaultBridgeName)
	if err != nil {
		return settingsError("the default bridge's options: %w", err)
	}
	bc.DefaultBridge, bc.External = true, c.cfg.DefaultBridgeUserManaged
	// On the administrator's device (--bridge), now or before, the
	// subnet is its address's, not berth's to keep: chosen from the
	// device's address (the daemon's DefaultBridgeBIP) or else afresh, as
	// dockerd's selectBIP reads it at every start (the old device keeps
	// its address).
	keepable := !n.Bridge.External && !bc.External
	var changes []string
	if bc.Name != n.Bridge.Name {
		for _, o := range c.networks {
			if o != n && o.Bridge != nil && o.Bridge.Name == bc.Name {
				return settingsError("--bridge-name %s: that is the bridge device of network %q", bc.Name, o.Name)
			}
		}
		// The administrator's device (--bridge) is left whatever its
		// ports: its subnet is not kept, so nothing of berth's is left
		// on it that the new one has too (released below).
		if !n.Bridge.External {
			if err := c.checkLeavableLocked(n); err != nil {
				return err
			}
		}
		changes = append(changes, "bridge name "+n.Bridge.Name+" → "+bc.Name)
	}
	if bc.External != n.Bridge.External {
		changes = append(changes, fmt.Sprintf("the administrator's device (--bridge) %t → %t", n.Bridge.External, bc.External))
	}
	if bc.MTU != n.Bridge.MTU {
		changes = append(changes, fmt.Sprintf("--mtu %d → %d", n.Bridge.MTU, bc.MTU))
	}
	if bc.EnableICC != n.Bridge.EnableICC {
		changes = append(changes, fmt.Sprintf("--icc %t → %t", n.Bridge.EnableICC, bc.EnableICC))
	}
	if bc.EnableIPMasquerade != n.Bridge.EnableIPMasquerade {
		changes = append(changes, fmt.Sprintf("--ip-masq %t → %t", n.Bridge.EnableIPMasquerade, bc.EnableIPMasquerade))
	}
	if bc.HostBindingIPv4 != n.Bridge.HostBindingIPv4 {
		changes = append(changes, fmt.Sprintf("--ip %s → %s", n.Bridge.HostBindingIPv4, bc.HostBindingIPv4))
	}
	live := c.liveEndpointsLocked(n.ID)

	cfg4, space4, err := c.planDefaultBridgeLocked(n, c.defaultBridgeIPv4Request(n.IPv4, keepable), false)
	if err != nil {
		if live == 0 {
			return settingsError("the default bridge's IPv4 settings (--bip, --fixed-cidr, --default-gateway, --default-address-pool): %w", err)
		}
		c.log.Error("the default bridge's IPv4 settings (--bip, --fixed-cidr, --default-gateway, --default-address-pool) cannot be applied: it keeps its own", "now", ipConfigString(n.IPv4), "err", err)
		cfg4 = n.IPv4
	}
	change4 := !sameIPConfig(n.IPv4, cfg4)
	if change4 {
		changes = append(changes, "IPv4 "+ipConfigString(n.IPv4)+" → "+ipConfigString(cfg4))
	}

	cfg6, space6, change6 := c.defaultBridgeIPv6Locked(n, keepable)
	if change6 {
		changes = append(changes, "IPv6 "+ipConfigString(n.IPv6)+" → "+ipConfigString(cfg6))
	}
	switch {
	case len(changes) == 0:
		return nil
	case live > 0:
		c.log.Warn("the default bridge has containers: the daemon's settings for it take effect once none is left on it at a start",
			"pending", strings.Join(changes, "; "))
		return nil
	}
	if n.Bridge.External && bc.Name != n.Bridge.Name {
		// Let go of the administrator's device the default bridge leaves
		// (untagged, its ports and addresses as they are) before the
		// record names another, so that removeStrayBridges never takes
		// it for berth's old device. A crash in between releases it again.
		if err := c.cfg.Driver.ReleaseBridge(n.Bridge.Name); err != nil {
			return fmt.Errorf("let go of the administrator's bridge %s: %w", n.Bridge.Name, err)
		}
		c.forgetBridge(n.Bridge.Name)
	}
	// The gateways given up are taken off the bridge, unless it is or
	// was the administrator's: its addresses are theirs.
	stale := !n.Bridge.External && !bc.External
	n.Bridge.Name, n.Bridge.MTU, n.Bridge.External = bc.Name, bc.MTU, bc.External
	n.Bridge.EnableICC, n.Bridge.EnableIPMasquerade, n.Bridge.HostBindingIPv4 = bc.EnableICC, bc.EnableIPMasquerade, bc.HostBindingIPv4
	n.Options = defaultBridgeOptions(n.Bridge)
	c.setDefaultBridgeHostAccess(n)
	if change4 {
		replaceFamily(n, &n.IPv4, c.spaces, cfg4, space4, stale)
	}
	if change6 {
		replaceFamily(n, &n.IPv6, c.spaces6, cfg6, space6, stale)
	}
	if err := c.putNetwork(n); err != nil {
		return fmt.Errorf("record the default bridge: %w", err)
	}
	c.publishNetworksLocked()
	c.log.Info("default bridge changed to the daemon's settings", "changes", strings.Join(changes, "; "))
	return nil
}

// replaceFamily gives the default bridge n the family cfg (with its
// address space, nil without one) in place of *cur, recording cur's
// gateway, when stale says so, for the driver to take off the bridge
// when the bridge loses it.
func replaceFamily(n *Network, cur **IPConfig, spaces map[string]*ipam.Space, cfg *IPConfig, space *ipam.Space, stale bool) {
	if old := *cur; stale && old != nil && (cfg == nil || cfg.Gateway != old.Gateway || cfg.Subnet.Bits() != old.Subnet.Bits()) {
		n.StaleGateways = appendNew(n.StaleGateways, netip.PrefixFrom(old.Gateway, old.Subnet.Bits()))
	}
	*cur = cfg
	delete(spaces, n.ID)
	if space != nil {
		spaces[n.ID] = space
	}
}

// appendNew appends p to ps unless it is there.
func appendNew(ps []netip.Prefix, p netip.Prefix) []netip.Prefix {
	if slices.Contains(ps, p) {
		return ps
	}
	return append(ps, p)
}

// checkLeavableLocked refuses to rename n's bridge away from a device
// with ports that are not berth's (an administrator's bridge berth
// adopted under --bridge-name): removeStrayBridges would not delete it,
// and n's record must keep naming it, so that giving that name again is
// the way back.
func (c *Controller) checkLeavableLocked(n *Network) error {
	links, err := c.cfg.Driver.OwnedLinks()
	if err != nil {
		return fmt.Errorf("list berth's links: %w", err)
	}
	for _, l := range links {
		if l.Name == n.Bridge.Name && l.Owner == bridgeOwner(n.ID) && l.ForeignPorts > 0 {
			return settingsError("the default bridge is the device %s, which has %d ports that are not berth's: berth will not delete it for another name; take them off it, or keep --bridge-name %s",
				l.Name, l.ForeignPorts, l.Name)
		}
	}
	return nil
}

// planDefaultBridgeLocked plans one family of the default bridge n from
// req, as if n had none yet (its own subnet is no overlap), with its
// address space.
func (c *Controller) planDefaultBridgeLocked(n *Network, req IPAMRequest, v6 bool) (*IPConfig, *ipam.Space, error) {
	old4, old6 := n.IPv4, n.IPv6
	defer func() { n.IPv4, n.IPv6 = old4, old6 }()
	// Its own subnet's route through the bridge is no host route in the
	// way: dockerd deletes docker0 before it picks again. The route of
	// the administrator's device that the default bridge leaves (--bridge
	// dropped or changed) stays with that device.
	leaving := n.Bridge != nil && n.Bridge.External && n.Bridge.Name != c.cfg.DefaultBridgeName
	var own netip.Prefix
	var cfg *IPConfig
	var err error
	if v6 {
		if old6 != nil && !leaving {
			own = old6.Subnet
		}
		n.IPv6 = nil
		cfg, err = c.planFamilyLocked(req, c.cfg.Pools6, func(o *Network) *IPConfig { return o.IPv6 }, own)
	} else {
		if old4 != nil && !leaving {
			own = old4.Subnet
		}
		n.IPv4 = nil
		cfg, err = c.planFamilyLocked(req, c.cfg.Pools, func(o *Network) *IPConfig { return o.IPv4 }, own)
	}
	if err != nil {
		return nil, nil, err
	}
	space, err := newSpace(cfg)
	if err != nil {
		return nil, nil, err
	}
	cfg.UserSubnet = false // the daemon's choice (--bip, --fixed-cidr), not a network create's
	return cfg, space, nil
}

// defaultBridgeIPv6Locked is the IPv6 --ipv6, --bip6 and --fixed-cidr-v6
// ask of the default bridge n (with its address space when it is a new
// one), and whether that is a change. A subnet that cannot be had is
// logged, and the bridge keeps what it has. Without keepable, a subnet
// it has is not kept for being its own.
func (c *Controller) defaultBridgeIPv6Locked(n *Network, keepable bool) (*IPConfig, *ipam.Space, bool) {
	if !c.cfg.DefaultBridgeIPv6 {
		return nil, nil, n.IPv6 != nil
	}
	req := c.defaultBridgeIPv6Request(n.IPv6, keepable)
	cfg, space, err := c.planDefaultBridgeLocked(n, req, true)
	if err != nil {
		// The bridge keeps what it had; the daemon starts anyway.
		c.log.Error("the default bridge's IPv6 settings cannot be applied: it keeps its own", "now", subnetString(n.IPv6),
			"asked", ipConfigString(&IPConfig{Subnet: req.Subnet, IPRange: req.IPRange, Gateway: req.Gateway}), "err", err)
		return n.IPv6, nil, false
	}
	if sameIPConfig(n.IPv6, cfg) {
		return n.IPv6, nil, false
	}
	return cfg, space, true
}

// defaultBridgeIPv6Request is defaultBridgeRequest for the default
// bridge's IPv6 (--bip6, --fixed-cidr-v6): without either the bridge
// keeps its subnet and address, or takes a subnet of the pools.
func (c *Controller) defaultBridgeIPv6Request(cur *IPConfig, keepable bool) IPAMRequest {
	if !keepable {
		cur = nil
	}
	return withDefaultGateway(defaultBridgeRequest(c.cfg.DefaultBridgeBIP6, c.cfg.DefaultBridgeSubnet6.Masked(), cur, cur != nil),
		AuxDefaultGateway6, c.cfg.DefaultBridgeGateway6)
}

// sameIPConfig reports whether a and b are the same subnet, range,
// gateway and auxiliary addresses (the default bridge's are the
// daemon's default gateway alone).
func sameIPConfig(a, b *IPConfig) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Subnet == b.Subnet && a.IPRange == b.IPRange && a.Gateway == b.Gateway && maps.Equal(a.AuxAddresses, b.AuxAddresses)
}

// ipConfigString is a family's subnet, range and gateway for the log.
func ipConfigString(c *IPConfig) string {
	if c == nil {
		return "none"
	}
	s := c.Subnet.String()
	if c.IPRange.IsValid() && c.IPRange != c.Subnet {
		s += " range " + c.IPRange.String()
	}
	if c.Gateway.IsValid() {
		s += " gateway " + c.Gateway.String()
	}
	for _, k := range []string{AuxDefaultGateway4, AuxDefaultGateway6} {
		if a, ok := c.AuxAddresses[k]; ok {
			s += " default gateway " + a.String()
		}
	}
	return s
}

// liveEndpointsLocked counts the endpoints on network id whose sandbox's
// namespace is still there: after a reboot the records of containers
// that no longer run are left for reconcile to clear, and do not count,
// as dockerd counts only live sandboxes.
func (c *Controller) liveEndpointsLocked(id string) int {
	ids, err := c.cfg.Sandboxes.List()
	if err != nil {
		return c.endpointCountLocked(id) // cannot tell: count them all
	}
	live := map[string]bool{}
	for _, sb := range ids {
		live[sb] = true
	}
	n := 0
	for _, ep := range c.endpoints {
		if ep.NetworkID == id && live[ep.SandboxID] {
			n++
		}
	}
	return n
}

// subnetString is a family's subnet for the log, "none" without one.
func subnetString(c *IPConfig) string {
	if c == nil {
		return "none"
	}
	return c.Subnet.String()
}

// ensurePredefined creates bridge, host and none on first start.
func (c *Controller) ensurePredefinedLocked() error {
	have := map[string]bool{}
	for _, n := range c.networks {
		if n.Predefined {
			have[n.Name] = true
		}
	}
	now := c.cfg.Now().UTC()
	for _, pd := range []struct{ name, driver string }{{NameBridge, DriverBridge}, {NameHost, DriverHost}, {NameNone, DriverNull}} {
		if have[pd.name] || pd.name == NameBridge && c.cfg.NoDefaultBridge {
			continue
		}
		if c.unfinished[pd.name] {
			// Another of that name would share the device the next
			// start's teardown deletes.
			c.log.Warn("a predefined network's removal did not finish: it is made again at a start that finishes it", "network", pd.name)
			continue
		}
		n := &Network{ID: c.cfg.NewID(), Name: pd.name, Driver: pd.driver, Created: now, Predefined: true,
			Options: map[string]string{}, Labels: map[string]string{}, MACsFromAddresses: true}
		if pd.driver == DriverBridge {
			bc, err := parseBridgeOptions(c.cfg.DefaultBridgeOptions, c.cfg.DefaultBridgeName)
			if err != nil {
				return settingsError("the default bridge's options: %w", err)
			}
			bc.DefaultBridge, bc.External = true, c.cfg.DefaultBridgeUserManaged
			n.Bridge = bc
			n.Options = defaultBridgeOptions(bc)
			c.setDefaultBridgeHostAccess(n)
			var space *ipam.Space
			if n.IPv4, space, err = c.planDefaultBridgeLocked(n, c.defaultBridgeIPv4Request(nil, false), false); err != nil {
				return settingsError("choose a subnet for the default bridge: %w", err)
			}
			c.spaces[n.ID] = space
		}
		if err := c.putNetwork(n); err != nil {
			return fmt.Errorf("record predefined network %q: %w", n.Name, err)
		}
		c.networks[n.ID] = n
		c.publishNetworksLocked()
		c.log.Info("predefined network created", "name", n.Name, "driver", n.Driver)
	}
	return nil
}
