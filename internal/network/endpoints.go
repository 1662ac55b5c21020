package network

import (
	"github.com/berth-net/berth/internal/driverapi"

	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/store"
)

// JoinRequest asks for one container's endpoint on one network.
type JoinRequest struct {
	ContainerID string
	Name        string     // the container's name, for inspect and (later) DNS
	IPv4        netip.Addr // a static address (--ip); invalid means "allocate"
	// IPv6 is a static IPv6 address (--ip6) on a network with IPv6;
	// invalid means "allocate" there.
	IPv6 netip.Addr
	// NoIPv6: the container has IPv6 turned off (--sysctl
	// net.ipv6.conf.all.disable_ipv6=1), so its endpoint gets no IPv6
	// address even on a network with IPv6, as moby's
	// CreateOptionDisableIPv6.
	NoIPv6 bool
	MAC    string // --mac-address; "" means random
	// LinkLocal are extra link-local addresses for the interface
	// (--link-local-ip); each must be one (169.254.0.0/16, fe80::/10).
	LinkLocal []netip.Addr
	Aliases   []string
	// Links are "name[:alias]" (EndpointSettings.Links, docker run --link
	// on a user network): alias resolves, for this container only, to what
	// name resolves to on this network.
	Links    []string
	Hostname string // the container's hostname: one of its DNS names on user networks
	// GwPriority ranks the endpoint as the sandbox's gateway (docker's
	// --gw-priority): the highest gives the default route and publishes
	// the ports (gatewaysLocked).
	GwPriority int
	// Ports are the container's ports, given with its first join; the
	// sandbox keeps them and its gateway endpoint publishes them.
	Ports []PortRequest
	// DriverOpts are the endpoint's driver options: OptEndpointIfname and
	// OptEndpointSysctls are applied, others kept by the caller only.
	DriverOpts map[string]string
	// ReservedIfNames are the names the container's other endpoints ask
	// for (their OptEndpointIfname): an automatic ethN skips them, so
	// that the order of the joins does not matter.
	ReservedIfNames []string
	// Record, if set, writes the caller's own records (the container's)
	// in the same store record as the endpoint's intent, so that both are
	// on disk, or neither, when Join returns.
	Record func(store.Tx) error
}

// HostIfNameFunc makes the random host-side names of new endpoints.
type HostIfNameFunc func() string

// CreateSandbox records and makes a network namespace for a container.
// Containers on the host network get a record without a namespace.
func (c *Controller) CreateSandbox(ctx context.Context, containerID string, hostNetwork bool) (*Sandbox, error) {
	sb := &Sandbox{ID: c.cfg.NewID(), ContainerID: containerID, HostNetwork: hostNetwork}
	if !hostNetwork {
		sb.Key = c.cfg.Sandboxes.Path(sb.ID)
	}
	c.mu.Lock()
	err := c.cfg.Store.Update(func(tx store.Tx) error { return tx.Put(store.BucketSandboxes, sb.ID, sb) })
	if err == nil {
		c.sandboxes[sb.ID] = sb
	}
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("record sandbox: %w", err)
	}
	if hostNetwork {
		return sb, nil
	}
	if _, err := c.cfg.Sandboxes.Create(sb.ID); err != nil {
		return nil, errors.Join(err, c.forgetSandbox(sb.ID))
	}
	cp := *sb
	return &cp, nil
}

// DeleteSandbox takes every endpoint out of the sandbox, deletes its
// namespace and forgets it. It keeps going past errors and is safe to repeat.
func (c *Controller) DeleteSandbox(ctx context.Context, id string) error {
	ctx = context.WithoutCancel(ctx) // as Join's
	c.mu.Lock()
	sb, ok := c.sandboxes[id]
	var eps []*Endpoint
	for _, ep := range c.bySandbox[id] {
		eps = append(eps, ep)
	}
	c.mu.Unlock()
	if !ok {
		return nil
	}
	var errs []error
	for _, ep := range eps {
		if err := c.leave(ctx, sb, ep, true, nil); err != nil {
			errs = append(errs, err)
		}
	}
	if !sb.HostNetwork {
		c.cfg.Driver.ReleaseSandbox(sb.Key)
		if err := c.cfg.Sandboxes.Delete(id); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return c.forgetSandbox(id)
}

func (c *Controller) forgetSandbox(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sandboxes, id)
	return c.cfg.Store.Update(func(tx store.Tx) error { return tx.Delete(store.BucketSandboxes, id) })
}

// Join connects a sandbox to a network: it allocates the address and
// records the endpoint as "creating" (intent first), makes the veth pair,
// then marks the endpoint ready. A failure undoes all of it.
//
// The intent is in the store's journal before the kernel is touched (a
// daemon that dies from here on finds it at restart), and the fdatasync
// that puts it on disk runs while the kernel works: Join waits for it only
// at the end. The ready mark is queued (readyMarks) and never waited for:
// a start that finds the endpoint still "creating" finishes it if its
// sandbox and network remain, and rolls it back otherwise.
func (c *Controller) Join(ctx context.Context, sandboxID, netRef string, req JoinRequest) (*Endpoint, error) {
	// Once begun, a join runs to its end or its rollback whatever the
	// client does: cancelled halfway (the client went away), the
	// firewall's calls failed, and so did the rollback's, which left the
	// host ports held and the endpoint stuck "deleting" (review of
	// session 30).
	ctx = context.WithoutCancel(ctx)
	ep, sb, n, intent, err := c.planEndpoint(sandboxID, netRef, req)
	if err != nil {
		return nil, err
	}
	var spec EndpointSpec
	// fam: the families of ports ep is to publish; move: those it
	// publishes after the join, by movePorts (all or none of fam).
	var fam, move portFamilies
	c.mu.RLock()
	before := c.gatewaysLocked(sb.ID, nil)
	prev, prev6 := before.ep4, before.ep6
	if n.Driver == DriverBridge {
		spec, fam = c.joinSpecLocked(n, ep)
		// Another endpoint publishes a family ep takes over: the move
		// holds all of ep's families together, after the others let
		// theirs go, so that the two sides of a port share its host port
		// (moby's needSamePort, in one addPortMappings).
		if fam.and(mappedFamilies(c.sandboxMappingsLocked(sb.ID, ep))).any() {
			move = fam
		}
	}
	c.mu.RUnlock()
	// ep becomes the sandbox's gateway in place of prev: the driver
	// replaces the default route, and prev's ports move once ep is up. A
	// join that fails gives the route back (each family's).
	tookOver := spec.Gateway.IsValid() && prev != nil
	tookOver6 := spec.Gateway6.IsValid() && prev6 != nil
	fail := func(err error) (*Endpoint, error) {
		if tookOver || tookOver6 {
			c.moveGateway(sb, tookOver, tookOver6)
		}
		return nil, err
	}
	if err := c.recordPorts(n, ep, req.Ports, fam.minus(move)); err != nil {
		return nil, errors.Join(err, c.forgetEndpoint(ep))
	}
	if n.Driver == DriverBridge {
		err := c.cfg.Driver.Join(sb.Key, spec)
		var nb *NoBridgeError
		if errors.As(err, &nb) && c.HealBridge(n.ID) == nil {
			// Deleted by hand, and the link watcher has not mended it
			// yet (or a fight goes on): made again here, as a start
			// would, rather than failing the start or connect (QA round
			// 26: restart policies gave up).
			err = c.cfg.Driver.Join(sb.Key, spec)
		}
		if err != nil {
			err = fmt.Errorf("join network %q: %w", n.Name, err)
			return fail(errors.Join(err, c.forgetEndpoint(ep)))
		}
	}
	if err := c.addPorts(ctx, ep); err != nil {
		return fail(errors.Join(err, c.leave(ctx, sb, ep, true, nil)))
	}
	c.mu.Lock()
	perr := c.markReadyLocked(ep)
	c.mu.Unlock()
	if perr == nil {
		perr = intent.Wait()
	}
	if perr != nil {
		return fail(errors.Join(perr, c.leave(ctx, sb, ep, true, nil)))
	}
	if move.any() {
		if err := c.movePorts(ctx, sb); err != nil {
			// As libnetwork's sbJoin: the connect fails, and the sandbox
			// gets its route and ports back on prev.
			err = errors.Join(err, c.leave(ctx, sb, ep, false, nil))
			return nil, errors.Join(err, c.movePorts(ctx, sb))
		}
	}
	return cloneEndpoint(ep), nil
}

// planEndpoint checks the request, allocates the address, picks the
// interface names and MAC and records the endpoint, all under the lock.
func (c *Controller) planEndpoint(sandboxID, netRef string, req JoinRequest) (*Endpoint, *Sandbox, *Network, store.Durable, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sb, ok := c.sandboxes[sandboxID]
	if !ok {
		return nil, nil, nil, nil, errdefs.NotFound("sandbox %s not found", sandboxID)
	}
	n, err := c.lookupNetwork(netRef)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if n.ConfigOnly {
		return nil, nil, nil, nil, errdefs.Forbidden("cannot create endpoint on configuration-only network") // libnetwork's words
	}
	ifName, sysctls, err := endpointOptions(req.DriverOpts)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	linkLocal, err := linkLocalPrefixes(req.LinkLocal)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ifNames := map[string]bool{}
	for _, o := range c.bySandbox[sandboxID] {
		if o.NetworkID == n.ID {
			return nil, nil, nil, nil, errdefs.Forbidden("endpoint with name %s already exists in network %s", req.Name, n.Name)
		}
		ifNames[o.IfName] = true
	}
	if err := c.checkBridgeRoomLocked(n); err != nil {
		return nil, nil, nil, nil, err
	}
	if sb.HostNetwork != (n.Driver == DriverHost) {
		return nil, nil, nil, nil, errdefs.Forbidden("container cannot be connected to network %q: a container on the host network cannot join another network, nor the reverse", n.Name)
	}
	ep := &Endpoint{
		ID: c.cfg.NewID(), Name: req.Name, NetworkID: n.ID, SandboxID: sandboxID,
		ContainerID: req.ContainerID, Aliases: append([]string(nil), req.Aliases...), Links: append([]string(nil), req.Links...),
		Hostname: req.Hostname, GwPriority: req.GwPriority, State: EndpointCreating,
	}
	if n.Driver != DriverBridge {
		if req.IPv4.IsValid() || req.IPv6.IsValid() || len(req.LinkLocal) > 0 {
			return nil, nil, nil, nil, errdefs.Invalid("user specified IP address is supported on user defined networks only")
		}
		d, err := c.recordEndpointLocked(ep, req.Record)
		return ep, sb, n, d, err
	}
	if err := c.assignAddressLocked(n, ep, req.IPv4); err != nil {
		return nil, nil, nil, nil, err
	}
	if err := c.assignAddress6Locked(n, ep, req.IPv6, req.NoIPv6 || disablesIPv6(sysctls)); err != nil {
		c.releaseAddressesLocked(ep)
		return nil, nil, nil, nil, err
	}
	record, err := c.pickMACLocked(n, ep, req)
	if err != nil {
		c.releaseAddressesLocked(ep)
		return nil, nil, nil, nil, err
	}
	switch {
	case ifName != "" && ifNames[ifName]:
		c.releaseAddressesLocked(ep)
		return nil, nil, nil, nil, errdefs.Forbidden("interface name %s is already in use in the container", ifName)
	case ifName != "":
		ep.IfName = ifName
	default:
		prefix := "eth"
		if n.Bridge != nil && n.Bridge.IfacePrefix != "" {
			prefix = n.Bridge.IfacePrefix // as moby numbers each prefix's names
		}
		for i := 0; ; i++ {
			if name := fmt.Sprintf("%s%d", prefix, i); !ifNames[name] && !slices.Contains(req.ReservedIfNames, name) {
				ep.IfName = name
				break
			}
		}
	}
	ep.Sysctls = sysctls
	ep.LinkLocal = linkLocal
	ep.HostIfName = c.freshHostIfNameLocked()
	if !n.Internal {
		if n.IPv4 != nil {
			ep.Gateway = n.IPv4.endpointGateway(AuxDefaultGateway4)
		}
		if n.IPv6 != nil && ep.Address6.IsValid() {
			ep.Gateway6 = n.IPv6.endpointGateway(AuxDefaultGateway6)
		}
	}
	d, err := c.recordEndpointLocked(ep, record)
	if err != nil {
		c.releaseAddressesLocked(ep)
		return nil, nil, nil, nil, err
	}
	return ep, sb, n, d, nil
}

// freshHostIfNameLocked draws random host interface names until one is
// not any endpoint's. Names have 28 random bits, so among 1,000 endpoints a
// draw repeats one about once in 270,000; the driver would refuse it.
func (c *Controller) freshHostIfNameLocked() string {
	for {
		name := c.newIfName()
		taken := false
		for _, o := range c.endpoints {
			if o.HostIfName == name {
				taken = true
				break
			}
		}
		if !taken {
			return name
		}
	}
}

// assignAddressLocked gives ep a static or the lowest free address on n;
// on an IPv6-only network none, and --ip is refused as moby's
// validateEndpointIPAddress refuses an address no subnet of n holds.
func (c *Controller) assignAddressLocked(n *Network, ep *Endpoint, static netip.Addr) (err error) {
	if n.IPv4 == nil {
		if static.IsValid() {
			return errdefs.Invalid("no configured subnet contains IP address %s", static)
		}
		return nil
	}
	ep.Address, ep.StaticIP, err = assignFrom(n, n.IPv4, c.spaces[n.ID], static, "IPv4")
	return err
}

// assignAddress6Locked gives ep its static or the lowest free IPv6
// address on a network with IPv6; on one without, --ip6 is refused.
func (c *Controller) assignAddress6Locked(n *Network, ep *Endpoint, static netip.Addr, noIPv6 bool) (err error) {
	if n.IPv6 != nil && noIPv6 {
		if n.IPv4 == nil {
			// moby would make an interface without any address.
			return errdefs.Invalid("network %s is IPv6-only and the container has IPv6 turned off (net.ipv6.conf.all.disable_ipv6=1)", n.Name)
		}
		return nil
	}
	if n.IPv6 == nil {
		if static.IsValid() {
			return errdefs.Invalid("invalid IPv6 address %s: network %s has no IPv6 (create it with --ipv6)", static, n.Name)
		}
		return nil
	}
	ep.Address6, ep.StaticIP6, err = assignFrom(n, n.IPv6, c.spaces6[n.ID], static, "IPv6")
	return err
}

// assignFrom takes static (a user's --ip or --ip6) or the lowest free
// address from one family's space of n, with moby's words.
func assignFrom(n *Network, cfg *IPConfig, space *ipam.Space, static netip.Addr, family string) (netip.Prefix, bool, error) {
	if static.IsValid() {
		if n.Predefined || n.Bridge.DefaultBridge {
			return netip.Prefix{}, false, errdefs.Invalid("user specified IP address is supported on user defined networks only")
		}
		if !cfg.Subnet.Contains(static) {
			return netip.Prefix{}, false, errdefs.Invalid("no configured subnet contains IP address %s", static)
		}
		if err := space.Reserve(static); err != nil {
			return netip.Prefix{}, false, err
		}
		return netip.PrefixFrom(static, cfg.Subnet.Bits()), true, nil
	}
	a, err := space.Allocate()
	if err != nil {
		// moby's words (libnetwork's assignAddressVersion); the space's
		// own error, which names the subnet or ip-range, stays in the
		// chain for the log.
		return netip.Prefix{}, false, &mobyWordsError{
			msg: fmt.Sprintf("no available %s addresses on this network's address pools: %s (%s)", family, n.Name, n.ID),
			err: err,
		}
	}
	return netip.PrefixFrom(a, cfg.Subnet.Bits()), false, nil
}

// mobyWordsError says what moby says, and unwraps to berth's own, more
// precise error.
type mobyWordsError struct {
	msg string
	err error
}

func (e *mobyWordsError) Error() string { return e.msg }
func (e *mobyWordsError) Unwrap() error { return e.err }

// releaseAddressesLocked gives ep's addresses back to its network's spaces.
// An address another endpoint of the network holds stays taken: a
// leave whose record delete failed gave its address back in memory, a
// connect took it, and the start that finished the old "deleting" record
// released it under the live endpoint, for a third to get (review of
// session 17's fixes).
func (c *Controller) releaseAddressesLocked(ep *Endpoint) {
	held4, held6 := false, false
	for _, o := range c.endpoints {
		if o != ep && o.NetworkID == ep.NetworkID {
			held4 = held4 || (ep.Address.IsValid() && o.Address.Addr() == ep.Address.Addr())
			held6 = held6 || (ep.Address6.IsValid() && o.Address6.Addr() == ep.Address6.Addr())
		}
	}
	n := c.networks[ep.NetworkID]
	if sp, ok := c.spaces[ep.NetworkID]; ok && ep.Address.IsValid() && !held4 && !n.IPv4.isAux(ep.Address.Addr()) {
		sp.Release(ep.Address.Addr())
	}
	if sp, ok := c.spaces6[ep.NetworkID]; ok && ep.Address6.IsValid() && !held6 && !n.IPv6.isAux(ep.Address6.Addr()) {
		sp.Release(ep.Address6.Addr())
	}
}

// pairedAddress6 reports whether ep's IPv6 address (if it has one) is
// the one its IPv4 address pairs with: the same offset into the
// network's IPv6 subnet as its IPv4 address into the IPv4 subnet. Both
// are handed out lowest first and given back together, so they pair
// unless one was chosen by hand (--ip, --ip6); while every endpoint of a
// network is paired, an IPv6 address's MAC (derived from the IPv4
// address) is the same for each holder, and a neighbour's cached entry
// stays right, as for IPv4. An unpaired one ends that for the network,
// as a MAC of the user's does (Network.MACsFromAddresses).
func pairedAddress6(n *Network, ep *Endpoint) bool {
	if !ep.Address6.IsValid() || n.IPv6 == nil || n.IPv4 == nil {
		return true
	}
	off4 := ep.Address.Addr().As4()
	base4 := n.IPv4.Subnet.Masked().Addr().As4()
	d4 := uint64(binary.BigEndian.Uint32(off4[:]) - binary.BigEndian.Uint32(base4[:]))
	a6, b6 := ep.Address6.Addr().As16(), n.IPv6.Subnet.Masked().Addr().As16()
	if !bytes.Equal(a6[:8], b6[:8]) { // more than 2^64 apart: a subnet shorter than /64
		return false
	}
	return binary.BigEndian.Uint64(a6[8:])-binary.BigEndian.Uint64(b6[8:]) == d4
}

func pickMAC(s string, addr netip.Addr) (net.HardwareAddr, error) {
	if s == "" {
		return MACFromAddress(addr), nil
	}
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return nil, errdefs.Invalid("invalid MAC address %q", s)
	}
	if mac[0]&1 == 1 {
		return nil, errdefs.Invalid("invalid MAC address %q: it is a multicast address", s)
	}
	return mac, nil
}

// pickMACLocked sets ep's MAC (the user's, or its address's: MACFromAddress)
// and whether its join must be announced, and returns what Join records
// with the endpoint: req.Record, and the network's record when this MAC
// is the first on the network given by hand.
func (c *Controller) pickMACLocked(n *Network, ep *Endpoint, req JoinRequest) (func(store.Tx) error, error) {
	var err error
	if ep.MAC, err = pickMAC(req.MAC, ep.Address.Addr()); err != nil {
		return nil, err
	}
	if ep.MAC == nil {
		// No IPv4 address to derive it from (an IPv6-only network): a
		// random one, as Docker 28 gives every endpoint, and announced.
		ep.MAC = randomMAC()
	}
	if owner := c.macOwnerLocked(n.ID, ep.MAC); owner != nil {
		if req.MAC != "" {
			return nil, errdefs.Conflict("MAC address %s is already in use on network %s by %s", ep.MAC, n.Name, owner.Name)
		}
		// The address's MAC was given by hand to another endpoint: this
		// one gets a random MAC, and announces it.
		ep.MAC = randomMAC()
	}
	own := !bytes.Equal(ep.MAC, MACFromAddress(ep.Address.Addr())) || !pairedAddress6(n, ep)
	ep.Announce = own || !n.MACsFromAddresses
	if !own || !n.MACsFromAddresses {
		return req.Record, nil
	}
	// From now on an address of this network may be cached with a MAC its
	// next holder does not have: every join announces itself.
	n.MACsFromAddresses = false
	c.publishNetworksLocked()
	return func(tx store.Tx) error {
		if err := tx.Put(store.BucketNetworks, n.ID, n); err != nil {
			return err
		}
		if req.Record != nil {
			return req.Record(tx)
		}
		return nil
	}, nil
}

// macOwnerLocked returns the endpoint on network netID that has mac, if any.
func (c *Controller) macOwnerLocked(netID string, mac net.HardwareAddr) *Endpoint {
	for _, o := range c.endpoints {
		if o.NetworkID == netID && bytes.Equal(o.MAC, mac) {
			return o
		}
	}
	return nil
}

// randomMAC is a random unicast, locally administered MAC (Docker 28's).
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		panic(fmt.Sprintf("read random bytes: %v", err))
	}
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}

// MACFromAddress is driverapi.MACFromAddress: 02:42 and the four bytes
// of the IPv4 address, as Docker made them up to 27.x.
func MACFromAddress(a netip.Addr) net.HardwareAddr { return driverapi.MACFromAddress(a) }

// Leave disconnects a sandbox from one network.
func (c *Controller) Leave(ctx context.Context, sandboxID, netRef string) error {
	return c.LeaveAndRecord(ctx, sandboxID, netRef, nil)
}

// LeaveAndRecord is Leave writing the caller's own records (if record is
// set) in the same store record as the endpoint's "deleting" intent (see
// JoinRequest.Record).
func (c *Controller) LeaveAndRecord(ctx context.Context, sandboxID, netRef string, record func(store.Tx) error) error {
	ctx = context.WithoutCancel(ctx) // as Join's
	c.mu.Lock()
	sb, ok := c.sandboxes[sandboxID]
	if !ok {
		c.mu.Unlock()
		return errdefs.NotFound("sandbox %s not found", sandboxID)
	}
	n, err := c.lookupNetwork(netRef)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	var ep *Endpoint
	for _, o := range c.bySandbox[sandboxID] {
		if o.NetworkID == n.ID {
			ep = o
		}
	}
	c.mu.Unlock()
	if ep == nil {
		return errdefs.NotFound("container is not connected to network %s", n.Name)
	}
	return c.leave(ctx, sb, ep, false, record)
}

// gatewaysLocked (c.mu held) gives the endpoint of a sandbox that gives
// it its IPv4 default route and the one that gives its IPv6 default
// route, as libnetwork's getGatewayEndpoint chooses them since Docker
// 29.4.1 (moby e30a6fa93b, over the endpoints sorted by Endpoint.Less):
// of the endpoints with a gateway (on networks that publish: non-internal
// bridges), ranked by the highest GwPriority, then dual stack before
// single stack, then the network's name, each family's first. A
// dual-stack network is the gateway of both unless a single-stack one of
// higher priority takes its family; Docker 28 let the first dual-stack
// endpoint take both even then (its own FIXME said so). Of the endpoints
// not yet ready, only cand (one being joined or made again) counts;
// leaving ones never do.
//
// Each gateway publishes its family's ports (publishes).

// gateways are a sandbox's gateway endpoints, one per family.
type gateways struct {
	ep4, ep6   *Endpoint
	net4, net6 *Network
}

// publishes says which families of the sandbox's ports ep publishes, as
// moby's ProgramExternalConnectivity(gw4, gw6) decides: the IPv4 ones
// on the IPv4 gateway; the IPv6 ones on the IPv6 gateway, or on the
// IPv4 one when the sandbox has no IPv6 gateway (the userland proxy then
// takes host IPv6 to its IPv4 address).
func (g gateways) publishes(ep *Endpoint) portFamilies {
	if ep == nil {
		return portFamilies{}
	}
	return portFamilies{v4: ep == g.ep4, v6: ep == g.ep6 || (g.ep6 == nil && ep == g.ep4)}
}

func (c *Controller) gatewaysLocked(sandboxID string, cand *Endpoint) gateways {
	type ranked struct {
		ep       *Endpoint
		n        *Network
		has4     bool
		has6     bool
		gwCount  int
		priority int
	}
	var cands []ranked
	for _, o := range c.bySandbox[sandboxID] {
		if o.State != EndpointReady && o != cand {
			continue
		}
		has4, has6 := o.Gateway.IsValid(), o.Gateway6.IsValid()
		if !has4 && !has6 {
			continue
		}
		on := c.networks[o.NetworkID]
		if on == nil || !publishesPorts(on) {
			continue
		}
		r := ranked{ep: o, n: on, has4: has4, has6: has6, priority: o.GwPriority}
		if has4 {
			r.gwCount++
		}
		if has6 {
			r.gwCount++
		}
		cands = append(cands, r)
	}
	slices.SortFunc(cands, func(a, b ranked) int {
		if a.priority != b.priority {
			return cmp.Compare(b.priority, a.priority)
		}
		if a.gwCount != b.gwCount {
			return cmp.Compare(b.gwCount, a.gwCount)
		}
		return strings.Compare(a.n.Name, b.n.Name)
	})
	var g gateways
	for _, r := range cands {
		if r.has4 && g.ep4 == nil {
			g.ep4, g.net4 = r.ep, r.n
		}
		if r.has6 && g.ep6 == nil {
			g.ep6, g.net6 = r.ep, r.n
		}
		if g.ep4 != nil && g.ep6 != nil {
			break
		}
	}
	return g
}

// joinSpecLocked (c.mu held) is what the driver needs to make ep: with
// the default route of each family of which ep is, once made, its
// sandbox's gateway. fam are the families of the sandbox's ports ep
// then publishes.
func (c *Controller) joinSpecLocked(n *Network, ep *Endpoint) (spec EndpointSpec, fam portFamilies) {
	spec = endpointSpec(n, ep)
	g := c.gatewaysLocked(ep.SandboxID, ep)
	if g.ep4 != ep {
		spec.Gateway = netip.Addr{}
	}
	if g.ep6 != ep {
		spec.Gateway6 = netip.Addr{}
	}
	return spec, g.publishes(ep)
}

// portsAstrayLocked (c.mu held) says whether an endpoint of a sandbox
// publishes ports of a family it is not the gateway of (a daemon killed
// before they moved).
func (c *Controller) portsAstrayLocked(sandboxID string) bool {
	g := c.gatewaysLocked(sandboxID, nil)
	for _, o := range c.bySandbox[sandboxID] {
		if want := g.publishes(o); o.Ports != nil && mappedFamilies(o.Ports).minus(want).any() {
			return true
		}
	}
	return false
}

// moveGateway gives sb its default route through its gateway endpoint, in
// place of the route it has, as libnetwork's sandbox moves its gateway
// (updateGateway): the endpoint that gave the route has left, or a join
// that took it failed. v4 and v6 say which family's route moves (the
// gateway is chosen per family: gatewaysLocked).
func (c *Controller) moveGateway(sb *Sandbox, v4, v6 bool) {
	c.mu.RLock()
	var next, next6 *Endpoint
	var nextNet, next6Net *Network
	g := c.gatewaysLocked(sb.ID, nil)
	if v4 {
		next, nextNet = g.ep4, g.net4
	}
	if v6 {
		next6, next6Net = g.ep6, g.net6
	}
	var specs []EndpointSpec
	var nets []string
	switch {
	case next != nil && next == next6:
		specs, nets = append(specs, endpointSpec(nextNet, next)), append(nets, nextNet.Name)
	default:
		if next != nil {
			spec := endpointSpec(nextNet, next)
			spec.Gateway6 = netip.Addr{}
			specs, nets = append(specs, spec), append(nets, nextNet.Name)
		}
		if next6 != nil {
			spec := endpointSpec(next6Net, next6)
			spec.Gateway = netip.Addr{}
			specs, nets = append(specs, spec), append(nets, next6Net.Name)
		}
	}
	c.mu.RUnlock()
	for i, spec := range specs {
		if err := c.cfg.Driver.SetGateway(sb.Key, spec); err != nil {
			c.log.Warn("move the default route", "sandbox", sb.ID, "network", nets[i], "err", err)
		}
	}
}

// movePorts puts each family of a sandbox's ports on that family's
// gateway (gateways.publishes) where another endpoint, or none, publishes
// them: a gateway changed, by a join that outranks it or by its leaving.
// As moby's ProgramExternalConnectivity trims an endpoint's bindings of
// the families it no longer publishes and adds those of the ones it
// gains, the mappings of a family an endpoint no longer publishes are
// withdrawn first (all of them, before any is added, so that the new
// gateway can hold the same host ports, and a host port left to choose
// may change), and only the families an endpoint gains are held for it:
// its other mappings stay as they are. On failure a gained family is
// published nowhere, and the error says why; a withdrawal that fails
// leaves that endpoint's mappings as they were and adds nothing.
//
// A sandbox's joins and leaves are serialised by its caller (the
// daemon's per-container lock), so no two movePorts of one sandbox run
// at once: what is read under the first RLock stays true.
func (c *Controller) movePorts(ctx context.Context, sb *Sandbox) error {
	type move struct {
		ep         *Endpoint
		n          *Network
		keep, drop []PortMapping
		gain       portFamilies
		added      []PortMapping
	}
	c.mu.RLock()
	var reqs []PortRequest
	if cur, ok := c.sandboxes[sb.ID]; ok {
		reqs = cur.Ports
	}
	if len(reqs) == 0 && len(c.sandboxMappingsLocked(sb.ID, nil)) == 0 {
		c.mu.RUnlock()
		return nil // nothing published, nothing to publish (a disconnect's usual case)
	}
	g := c.gatewaysLocked(sb.ID, nil)
	var moves []*move
	var near []PortMapping // the mappings that stay: the IPv4 sides a gained [::] port takes its host port from
	for _, ep := range c.bySandbox[sb.ID] {
		want := g.publishes(ep)
		if len(reqs) == 0 {
			want = portFamilies{}
		}
		mv := &move{ep: ep, n: c.networks[ep.NetworkID], gain: want.minus(mappedFamilies(ep.Ports))}
		for _, m := range ep.Ports {
			if want.has(m) {
				mv.keep = append(mv.keep, m)
			} else {
				mv.drop = append(mv.drop, m)
			}
		}
		near = append(near, mv.keep...)
		if len(mv.drop) > 0 || (mv.gain.any() && mv.n != nil) {
			moves = append(moves, mv)
		}
	}
	c.mu.RUnlock()
	if len(moves) == 0 {
		return nil
	}
	slices.SortFunc(moves, func(a, b *move) int { return strings.Compare(a.ep.ID, b.ep.ID) })

	// Withdrawn: from the firewall (a leaving endpoint's were, first
	// thing: leave), then out of the endpoint, under mu, so that
	// RetryUnheldPorts cannot hold one of them again, then let go.
	var errs []error
	var trimmed []*move
	for _, mv := range moves {
		if len(mv.drop) == 0 {
			continue
		}
		if mv.ep.State != EndpointDeleting {
			if err := c.delMappings(ctx, mv.ep, mv.drop); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		trimmed = append(trimmed, mv)
	}
	c.mu.Lock()
	for _, mv := range trimmed {
		mv.ep.Ports = mappingsOrNil(mv.keep)
	}
	c.mu.Unlock()
	for _, mv := range trimmed {
		if err := c.releaseMappings(mv.ep, mv.drop); err != nil {
			c.log.Warn("release host ports", "err", err)
		}
	}

	// Gained, unless a withdrawal failed (its ports are still held): the
	// IPv4 gains first, so that a [::] port gained elsewhere can take the
	// host port they got.
	for _, v4 := range []bool{true, false} {
		for _, mv := range moves {
			if len(errs) > 0 || mv.gain.v4 != v4 || !mv.gain.any() || mv.n == nil {
				continue
			}
			ms, err := c.holdPorts(mv.n, mv.ep, reqs, mv.gain, near)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			mv.added = ms
			near = append(near, ms...)
		}
	}
	c.mu.Lock()
	var changed []*Endpoint
	for _, mv := range moves {
		if len(mv.added) > 0 {
			mv.ep.Ports = mappingsOrNil(slices.Concat(mv.keep, mv.added))
		}
		if len(mv.added) > 0 || slices.Contains(trimmed, mv) {
			changed = append(changed, mv.ep)
		}
	}
	var d store.Durable
	var err error
	if len(changed) > 0 {
		d, err = c.recordEndpointsLocked(changed, nil)
	}
	c.mu.Unlock()
	if err == nil && d != nil {
		err = d.Wait()
	}
	if err != nil {
		errs = append(errs, err)
	}
	for _, mv := range moves {
		if len(mv.added) == 0 {
			continue
		}
		if err == nil {
			aerr := c.addMappings(ctx, mv.ep, mv.added)
			if aerr == nil {
				continue
			}
			errs = append(errs, aerr)
		}
		// Undo what was held and published for mv.ep, and its record.
		c.mu.Lock()
		mv.ep.Ports = mappingsOrNil(mv.keep)
		if _, rerr := c.recordEndpointLocked(mv.ep, nil); rerr != nil {
			errs = append(errs, rerr)
		}
		c.mu.Unlock()
		errs = append(errs, c.delMappings(ctx, mv.ep, mv.added), c.releaseMappings(mv.ep, mv.added))
	}
	return errors.Join(errs...)
}

// mappingsOrNil is ms, clipped, or nil when empty, as an endpoint keeps
// its Ports.
func mappingsOrNil(ms []PortMapping) []PortMapping {
	if len(ms) == 0 {
		return nil
	}
	return slices.Clip(ms)
}

// leave marks ep as deleting, removes its veth pair and forgets it. When
// sandboxGoing is true the namespace is about to be deleted as well. As in
// Join, the intent's fdatasync overlaps the kernel work.
func (c *Controller) leave(ctx context.Context, sb *Sandbox, ep *Endpoint, sandboxGoing bool, record func(store.Tx) error) error {
	c.mu.Lock()
	g := c.gatewaysLocked(sb.ID, nil)
	gw, gw6 := g.ep4, g.ep6
	was := ep.State
	ep.State = EndpointDeleting
	intent, err := c.recordEndpointLocked(ep, record)
	if err != nil {
		// Nothing was recorded and nothing touched: the endpoint stays
		// as it was (network inspect lost it while the container and the
		// kernel kept it; QA round 24, a full disk).
		ep.State = was
	}
	n := c.networks[ep.NetworkID]
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.delPorts(ctx, ep); err != nil {
		return err
	}
	if n != nil && n.Driver == DriverBridge {
		if err := c.cfg.Driver.Leave(sb.Key, endpointSpec(n, ep)); err != nil {
			return fmt.Errorf("leave network %q: %w", n.Name, err)
		}
	}
	if !sandboxGoing && (gw == ep || gw6 == ep) {
		moved4, moved6 := gw == ep, gw6 == ep
		// While the intent's fdatasync runs, as the kernel work does;
		// and before the record goes, so that a daemon killed in between
		// finds the endpoint "deleting" and settles the sandbox's
		// gateway at its start (after the record's delete, nothing would
		// say that the default route left with this pair).
		c.moveGateway(sb, moved4, moved6)
	}
	if !sandboxGoing && (len(ep.Ports) > 0 || gw == ep || gw6 == ep) {
		// The ports follow the gateway, before the record goes too (a
		// kill in between leaves "deleting", which the start settles).
		// The endpoint is gone and recorded so: a port that cannot move
		// (taken meanwhile) is logged, not a failed disconnect.
		if err := c.movePorts(ctx, sb); err != nil {
			c.log.Warn("published ports could not move to the remaining network", "sandbox", sb.ID[:12], "err", err)
		}
	}
	if err := c.forgetEndpoint(ep); err != nil {
		// The endpoint is gone from memory and from the kernel, and its
		// record says "deleting", which the next start finishes: failing
		// the disconnect now (a full disk) would have the container keep a
		// network nothing else has (review of QA round 24's fixes).
		c.log.Warn("could not delete the left endpoint's record; the next start removes it", "endpoint", ep.ID[:12], "err", err)
	}
	return intent.Wait()
}

// forgetEndpoint releases ep's host ports and address and deletes its
// record (journaled, not waited for: a record that a power loss brings
// back is "deleting", which the next start finishes).
func (c *Controller) forgetEndpoint(ep *Endpoint) error {
	if err := c.releasePorts(ep); err != nil {
		c.log.Warn("releasing host ports", "err", err) // the record must go anyway
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseAddressesLocked(ep)
	c.dropEndpointLocked(ep)
	c.names.remove(ep.ID)
	err := c.cfg.Store.Note(func(tx store.Tx) error {
		if err := c.putReadyLocked(tx); err != nil {
			return err
		}
		return tx.Delete(store.BucketEndpoints, ep.ID)
	})
	if err == nil {
		c.readyWrittenLocked()
	}
	return err
}

// recordEndpointLocked journals ep (with also's writes, if set, in the
// same record) and makes it current in memory; the Durable says when the
// record is on disk.
func (c *Controller) recordEndpointLocked(ep *Endpoint, also func(store.Tx) error) (store.Durable, error) {
	return c.recordEndpointsLocked([]*Endpoint{ep}, also)
}

// recordEndpointsLocked is recordEndpointLocked for several endpoints, in
// one record.
func (c *Controller) recordEndpointsLocked(eps []*Endpoint, also func(store.Tx) error) (store.Durable, error) {
	d, err := c.cfg.Store.Record(func(tx store.Tx) error {
		if err := c.putReadyLocked(tx); err != nil {
			return err
		}
		for _, ep := range eps {
			if err := tx.Put(store.BucketEndpoints, ep.ID, ep); err != nil {
				return err
			}
		}
		if also != nil {
			return also(tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record endpoint: %w", err)
	}
	c.readyWrittenLocked()
	for _, ep := range eps {
		c.setEndpointLocked(ep)
		c.names.update(ep, c.networks[ep.NetworkID])
	}
	return d, nil
}

// noteEndpointLocked journals ep without starting an fdatasync (see
// store.Note) and makes it current in memory.
func (c *Controller) noteEndpointLocked(ep *Endpoint) error {
	if err := c.cfg.Store.Note(func(tx store.Tx) error { return tx.Put(store.BucketEndpoints, ep.ID, ep) }); err != nil {
		return fmt.Errorf("record endpoint: %w", err)
	}
	c.setEndpointLocked(ep)
	c.names.update(ep, c.networks[ep.NetworkID])
	return nil
}

// setEndpointLocked makes ep the current record of its ID, indexed by
// its sandbox.
func (c *Controller) setEndpointLocked(ep *Endpoint) {
	if old, ok := c.endpoints[ep.ID]; ok && old.SandboxID != ep.SandboxID {
		c.dropEndpointLocked(old)
	}
	c.endpoints[ep.ID] = ep
	m := c.bySandbox[ep.SandboxID]
	if m == nil {
		m = map[string]*Endpoint{}
		c.bySandbox[ep.SandboxID] = m
	}
	m[ep.ID] = ep
}

// dropEndpointLocked forgets the endpoint of ep's ID.
func (c *Controller) dropEndpointLocked(ep *Endpoint) {
	delete(c.endpoints, ep.ID)
	if m := c.bySandbox[ep.SandboxID]; m != nil {
		delete(m, ep.ID)
		if len(m) == 0 {
			delete(c.bySandbox, ep.SandboxID)
		}
	}
}

// endpointSpec is what the driver needs to make or remove ep.
func endpointSpec(n *Network, ep *Endpoint) EndpointSpec {
	return EndpointSpec{
		Bridge: n.Bridge.Name, HostIfName: ep.HostIfName, IfName: ep.IfName, MAC: ep.MAC,
		Address: ep.Address, Gateway: ep.Gateway, Address6: ep.Address6, Gateway6: ep.Gateway6,
		MTU: n.Bridge.MTU, Owner: endpointOwner(ep.ID),
		Announce: ep.Announce, Sysctls: ep.Sysctls, LinkLocal: ep.LinkLocal,
		// Somebody else's router on the bridge (inhibit_ipv4, a default
		// gateway of the daemon's or the network's): not the bridge's MAC.
		ForeignGateway:  ep.Gateway.IsValid() && (n.IPv4 == nil || ep.Gateway != bridgeGateway4(n)),
		ForeignGateway6: ep.Gateway6.IsValid() && (n.IPv6 == nil || ep.Gateway6 != bridgeGateway(n.IPv6, n.Bridge.GatewayMode6)),
	}
}

func endpointOwner(id string) string { return "endpoint:" + id }

// ownerID splits "endpoint:<id>" or "network:<id>".
func ownerID(tag string) (kind, id string) {
	kind, id, _ = strings.Cut(tag, ":")
	return kind, id
}

// RenameSandbox gives every endpoint of the sandbox the container's new
// name, as libnetwork's Sandbox.Rename and the endpoints' DNS names do for
// a docker rename: network inspect shows it, and the embedded resolver
// answers to it, and no longer to the old name, at once. record, if set,
// writes the caller's records (the renamed container) in the same store
// record, so that a crash leaves both names or neither; RenameSandbox
// returns once that record is on disk.
func (c *Controller) RenameSandbox(sandboxID, name string, record func(store.Tx) error) error {
	c.mu.Lock()
	eps := c.sandboxEndpointsLocked(sandboxID)
	old := make([]string, len(eps))
	for i, ep := range eps {
		old[i], ep.Name = ep.Name, name
	}
	d, err := c.recordEndpointsLocked(eps, record)
	if err != nil {
		for i, ep := range eps {
			ep.Name = old[i]
		}
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	return d.Wait()
}

// linkLocalPrefixes are --link-local-ip's addresses with libnetwork's
// masks (CreateOptionIpam: /16 for IPv4, /64 for IPv6), once each (moby's
// second AddrAdd of one fails the start); each must be a link-local
// unicast address, in moby's words (its CreateEndpoint).
func linkLocalPrefixes(addrs []netip.Addr) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range addrs {
		a = a.Unmap()
		if !a.IsLinkLocalUnicast() {
			return nil, errdefs.Invalid("invalid link local IP address: %s", a)
		}
		bits := 16
		if a.Is6() {
			bits = 64
		}
		if p := netip.PrefixFrom(a, bits); !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}
