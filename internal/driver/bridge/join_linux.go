package bridge

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/driverapi"
	"github.com/berth-net/berth/internal/errdefs"
)

// ErrHostIfNameTaken says the host-side veth name is used by a link that is
// not this endpoint's; the caller picks a fresh RandomHostIfName and retries.
var ErrHostIfNameTaken = errors.New("host interface name is taken")

// Join creates the endpoint's veth pair with its peer already inside the
// sandbox under its final name and MAC, attaches the host end to the
// bridge, and configures the peer: lo up, link up, address, default route
// via the gateway (none if the gateway is invalid), and on a network with
// IPv6 its IPv6 addresses and IPv6 default route (bringUp). In the background it
// then, if spec.Announce asks, announces the address with a gratuitous ARP
// (see announce).
// If a step fails, what was made is removed before the error returns.
func (d *Driver) Join(sandboxPath string, spec driverapi.EndpointSpec) (err error) {
	if err := validateEndpointSpec(spec); err != nil {
		return err
	}
	brIndex, err := d.bridgeIndex(spec.Bridge, false)
	if err != nil {
		return err
	}
	sb, err := d.acquire(sandboxPath)
	if err != nil {
		return err
	}
	announced := false
	defer func() {
		if !announced {
			d.release(sb, err != nil)
		}
	}()
	d.freeNamesFromReaper(sb, spec)

	pair, err := d.ensureVeth(sb, spec, brIndex)
	if err != nil {
		return err
	}
	success := false
	defer func() {
		if !success {
			err = errors.Join(err, d.deleteVethIfExists(spec.HostIfName))
		}
	}()
	if err := d.configureHostEnd(pair, spec.Bridge, brIndex, spec.Owner); err != nil {
		return err
	}
	peer, err := d.configurePeer(sb, spec, pair)
	if err != nil {
		return fmt.Errorf("configure %q in sandbox %q: %w", spec.IfName, sandboxPath, err)
	}
	if (spec.Gateway.IsValid() || spec.Gateway6.IsValid()) && d.bridges.mac(spec.Bridge) != nil {
		// The container got a neighbour entry for its gateway (bringUp
		// seeded it): its first packet leaves at once, without the
		// neighbour resolution that would have held it, so the bridge
		// port must forward before Join returns. The peer's carrier
		// reaches the bridge through the kernel's link-watch worker, a
		// moment later (10 of 100 ports were not yet up right after Join,
		// measured here); a GET of the host end runs its pending event
		// now, on kernels whose GET synchronizes link-watch (recent ones:
		// this VM's 6.18 does; an older one takes the GET as a no-op and
		// the port comes up a moment later, as before). Best effort.
		if err := d.step("port forwarding"); err != nil {
			return err
		}
		d.port.syncLink(pair.host.Attrs().Index)
	}
	success = true
	_ = d.step("announce")     // past the point of no return: a mark for benchmarks only
	d.announce(sb, peer, spec) // takes over this use of sb
	announced = true
	return nil
}

// announce sends the gratuitous ARP (and, for an endpoint with an IPv6
// address, an unsolicited neighbour advertisement) in the background, once the bridge
// port forwards. Both halves cost in proportion to the bridge's ports: the
// broadcast is flooded to every port and delivered into every container's
// namespace in the sender's context (8-10 ms at 1,000 ports, measured
// here), and enabling the port makes the bridge re-run its port state
// selection over every port. The announcement only speeds up neighbours
// (an endpoint without it still works), so it is neither waited for nor a
// reason to roll back; Settle and Close wait for it.
func (d *Driver) announce(sb *sandboxConn, peer netlink.Link, spec driverapi.EndpointSpec) {
	if !spec.Announce {
		// The MAC is the one the address has always had
		// (driverapi.MACFromAddress): nothing to send, so no goroutine.
		d.release(sb, false)
		return
	}
	ifindex, mac, addr := peer.Attrs().Index, spec.MAC, spec.Address.Addr()
	d.background.Add(1)
	go func() {
		defer d.background.Done()
		defer d.release(sb, false)
		d.syncPortState(spec.HostIfName)
		var err error
		if addr.IsValid() { // not on an IPv6-only network
			err = sb.sendGratuitousARP(ifindex, mac, addr)
		}
		if spec.Address6.IsValid() && err == nil {
			addr = spec.Address6.Addr()
			err = sb.sendUnsolicitedNA(ifindex, mac, addr)
		}
		switch {
		case errors.Is(err, unix.ENETDOWN) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) || errors.Is(err, os.ErrNotExist):
			// The endpoint (or its sandbox) left before the announcement went out.
			d.log.Debug("gratuitous ARP not sent", "endpoint", spec.Owner, "address", addr, "err", err)
		case err != nil:
			d.log.Warn("gratuitous ARP failed", "endpoint", spec.Owner, "address", addr, "err", err)
		}
	}()
}

// vethPair is the pair ensureVeth made or found: the host end's index and
// the container end's (0 when not known yet), and whether it was made now
// (and so is already a port of the bridge).
type vethPair struct {
	host      netlink.Link
	peerIndex int
	created   bool
}

// ensureVeth creates the veth pair in one netlink call: the host end up,
// with the MTU, already a port of the bridge (IFLA_MASTER at creation), and
// the peer in the sandbox with its final name, MAC and MTU. The kernel
// echoes the new link back (NLM_F_ECHO), with the peer's index in
// IFLA_LINK, so neither end has to be looked up. If the host name exists
// and is this endpoint's own pair (a retried Join), that pair is reused.
func (d *Driver) ensureVeth(sb *sandboxConn, spec driverapi.EndpointSpec, brIndex int) (vethPair, error) {
	if err := d.step("create veth"); err != nil {
		return vethPair{}, err
	}
	host, peerIndex, err := d.port.createVeth(spec, brIndex, int(sb.ns))
	if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		// The remembered bridge index may be stale (the bridge was made
		// again): look it up and try once more.
		if brIndex, err = d.bridgeIndex(spec.Bridge, true); err != nil {
			return vethPair{}, err
		}
		host, peerIndex, err = d.port.createVeth(spec, brIndex, int(sb.ns))
	}
	switch {
	case err == nil:
		if host.Attrs().Index == 0 { // a kernel without NLM_F_ECHO for links
			if host, err = d.h.LinkByName(spec.HostIfName); err != nil {
				return vethPair{}, fmt.Errorf("look up %q: %w", spec.HostIfName, err)
			}
			peerIndex = 0
		}
		return vethPair{host: host, peerIndex: peerIndex, created: true}, nil
	case errors.Is(err, unix.EEXIST):
		host, err := d.existingOwnPair(sb, spec)
		return vethPair{host: host}, err
	case errors.Is(err, unix.EXFULL):
		// BR_MAX_PORTS: port numbers have 10 bits and 0 is reserved.
		return vethPair{}, errdefs.WithKind(errdefs.KindConflict, fmt.Errorf(
			"attach %q to bridge %q: the bridge has the most ports a Linux bridge takes (1023); use another network: %w",
			spec.HostIfName, spec.Bridge, err))
	}
	return vethPair{}, fmt.Errorf("create veth %q with peer %q in sandbox %q on bridge %q: %w", spec.HostIfName, spec.IfName, sb.path, spec.Bridge, err)
}

// existingOwnPair explains an EEXIST from creating the pair: either the
// pair is already this endpoint's (returned, for an idempotent Join), or
// one of the two names belongs to something else (a clear error).
func (d *Driver) existingOwnPair(sb *sandboxConn, spec driverapi.EndpointSpec) (netlink.Link, error) {
	host, err := linkIfExists(d.h, spec.HostIfName)
	if err != nil {
		return nil, err
	}
	peer, err := linkIfExists(sb.h, spec.IfName)
	if err != nil {
		return nil, fmt.Errorf("in sandbox %q: %w", sb.path, err)
	}
	if host != nil && host.Attrs().Alias == ownerAlias(spec.Owner) && host.Attrs().Group != d.groups.Reap && isPeerOf(peer, host) {
		d.log.Debug("veth pair exists, finishing its setup", "veth", spec.HostIfName, "endpoint", spec.Owner)
		return host, nil
	}
	if host != nil {
		return nil, errdefs.WithKind(errdefs.KindConflict,
			fmt.Errorf("create veth %q: %w (alias %q)", spec.HostIfName, ErrHostIfNameTaken, host.Attrs().Alias))
	}
	return nil, errdefs.Conflict("interface %q already exists in sandbox %q; choose another interface name", spec.IfName, sb.path)
}

// isPeerOf reports whether peer is the other end of the veth host. Each end
// records the other's ifindex in IFLA_LINK; checking both ways makes a
// coincidence of indexes across namespaces harmless.
func isPeerOf(peer, host netlink.Link) bool {
	if peer == nil || host == nil {
		return false
	}
	_, ok := peer.(*netlink.Veth)
	return ok && peer.Attrs().ParentIndex == host.Attrs().Index &&
		host.Attrs().ParentIndex == peer.Attrs().Index
}

// configureHostEnd tags the host end with its owner and puts its bridge
// port in hairpin mode, in one netlink call (portSocket.setUpPort); a pair
// found from an earlier try is first made a port of the bridge and set up.
// Then it disables IPv6 on it (disableHostIPv6) while the peer is still
// down: without a carrier the host end has got neither a link-local
// address nor the ff00::/8 route the kernel adds to every IPv6 link that
// comes up, and now never will.
//
// That write once ran in the background after Join returned, to keep it
// off the connect's path; but it then removed the route the link had been
// given meanwhile, under the RTNL lock, which the write's handler only
// tries for and retries the system call until it gets: a burst of joins
// (BenchmarkJoinBurst) waited on it, p50 0.93-1.02 ms and p90 2.6-3.8 ms
// against 0.70-0.85 and 0.92-1.25 with the write here.
//
// Hairpin: a container reaching its own published port through a host
// address. With br_netfilter the DNAT'ed packet is bridged back out of the
// port it came in on, which a bridge only does in hairpin mode (Docker
// sets it too when it publishes ports without its userland proxy).
func (d *Driver) configureHostEnd(pair vethPair, bridge string, brIndex int, owner string) error {
	host := pair.host
	name := host.Attrs().Name
	if !pair.created {
		if err := d.attach(host, bridge, brIndex); err != nil {
			return fmt.Errorf("attach %q to bridge %q: %w", name, bridge, err)
		}
	}
	if err := d.step("set up port"); err != nil {
		return err
	}
	if err := d.port.setUpPort(host.Attrs().Index, ownerAlias(owner)); err != nil {
		return fmt.Errorf("set up %q (alias %q, hairpin): %w", name, ownerAlias(owner), err)
	}
	if err := d.step("host ipv6 off"); err != nil {
		return err
	}
	if err := d.disableHostIPv6(name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disable IPv6 on %q: %w", name, err)
	}
	if pair.created {
		return nil // created up
	}
	return d.ensureUp(host)
}

// attach makes host a port of the bridge, by its remembered index; if
// that index has gone stale (the bridge was deleted and made again), it
// looks the bridge up by name and tries once more.
func (d *Driver) attach(host netlink.Link, bridge string, index int) error {
	err := d.h.LinkSetMasterByIndex(host, index)
	if !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP) {
		return err
	}
	index, err = d.bridgeIndex(bridge, true)
	if err != nil {
		return err
	}
	return d.h.LinkSetMasterByIndex(host, index)
}

// configurePeer brings the sandbox side up with its addresses and default
// routes (IPv6 address generation off before it is up unless the
// endpoint's sysctls set it: bringUp).
func (d *Driver) configurePeer(sb *sandboxConn, spec driverapi.EndpointSpec, pair vethPair) (netlink.Link, error) {
	if err := d.step("loopback up"); err != nil {
		return nil, err
	}
	if err := sb.ensureLoopbackUp(); err != nil {
		return nil, err
	}
	var peer netlink.Link = &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: pair.peerIndex, Name: spec.IfName}}
	if pair.peerIndex == 0 {
		var err error
		if peer, err = sb.h.LinkByName(spec.IfName); err != nil {
			return nil, fmt.Errorf("look up %q: %w", spec.IfName, err)
		}
	}
	// Before it is up, and before the endpoint's own sysctls: IPv6 off on
	// an IPv4-only network, router advertisements refused on one with
	// IPv6 (its routes are berth's).
	if !spec.Address6.IsValid() {
		if err := sb.disableIPv6(spec.IfName); err != nil {
			return nil, err
		}
	} else if err := sb.refuseRouterAdvertisements(spec.IfName); err != nil {
		return nil, err
	}
	if len(spec.Sysctls) > 0 {
		if err := sb.setSysctls(spec.IfName, spec.Sysctls); err != nil {
			return nil, err
		}
	}
	if err := d.step("peer up"); err != nil {
		return nil, err
	}
	if err := sb.bringUp(peer.Attrs().Index, spec, d.bridges.mac(spec.Bridge)); err != nil {
		return nil, err
	}
	return peer, nil
}

// freeNamesFromReaper makes sure no pair that Leave handed to the reaper
// still holds the names Join is about to use. The controller gives a
// container the lowest free ethN, so a disconnect followed by a connect
// wants the very name the old peer has until the reaper's batch has run
// (several ms, up to its RCU barrier). The old peer is down and only
// waiting to be deleted: renaming it out of the way (a fraction of a ms)
// is cheaper than waiting. A host name still held (random names make that
// rare), or a rename that fails, waits for the reaper.
func (d *Driver) freeNamesFromReaper(sb *sandboxConn, spec driverapi.EndpointSpec) {
	hostHeld, peerHeld := d.reaper.holding(spec.HostIfName, sb.path, spec.IfName)
	for _, e := range hostHeld {
		d.reaper.await(e)
	}
	for _, e := range peerHeld {
		if err := parkDyingPeer(sb, spec.IfName, e.hostIndex); err != nil {
			d.log.Debug("waiting for the reaper to free a name", "interface", spec.IfName, "err", err)
			d.reaper.await(e)
		}
	}
}

// parkDyingPeer renames the container end of a pair the reaper will delete
// ("gone" and its ifindex, unique in the namespace), if it is still there.
func parkDyingPeer(sb *sandboxConn, ifName string, hostIndex int) error {
	peer, err := linkIfExists(sb.h, ifName)
	if err != nil || peer == nil {
		return err
	}
	if _, ok := peer.(*netlink.Veth); !ok || peer.Attrs().ParentIndex != hostIndex {
		return nil // the name has moved on: this pair no longer holds it
	}
	err = sb.h.LinkSetName(peer, fmt.Sprintf("gone%d", peer.Attrs().Index))
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("rename %q out of the way: %w", ifName, err)
	}
	return nil
}

// syncPortState waits until the bridge has seen the port's carrier come
// up. The peer's carrier reaches the bridge through the kernel's
// link-watch worker, asynchronously: measured here, half of the ports were
// still disabled right after Join, so a gratuitous ARP sent then was
// dropped. A netlink GET of one device (rtnl_getlink, unlike a dump) runs
// that device's pending link-watch event first, which enables the bridge
// port before the call returns.
func (d *Driver) syncPortState(hostIfName string) {
	l, err := d.h.LinkByName(hostIfName)
	if err != nil {
		// Most likely the endpoint has already left.
		d.log.Debug("look up host end after join", "veth", hostIfName, "err", err)
		return
	}
	if l.Attrs().OperState != netlink.OperUp {
		d.log.Debug("host end not up yet after join", "veth", hostIfName, "state", l.Attrs().OperState)
	}
}

// deleteVethIfExists deletes the host end (the kernel deletes the peer with
// it) and waits for the kernel; it is the slow, simple path used to undo a
// failed Join.
func (d *Driver) deleteVethIfExists(name string) error {
	l, err := linkIfExists(d.h, name)
	if err != nil || l == nil {
		return err
	}
	// The reaper's group first, best effort: the link watcher takes a
	// link of that group for berth's own, so that a failed Join's
	// rollback is not damage a heal would answer with another Join, which
	// would fail and roll back again, for good (review of session 18).
	_ = d.h.LinkSetGroup(l, int(d.groups.Reap))
	if err := d.h.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete veth %q: %w", name, err)
	}
	return nil
}

// SetGateway gives the sandbox at sandboxPath its default routes through
// spec's gateways on its interface (IPv4, and IPv6 if spec.Gateway6 is
// valid), in place of the ones it has: the controller calls it when its
// gateway endpoint changes other than by a join, as libnetwork's sandbox
// moves its gateway (updateGateway).
func (d *Driver) SetGateway(sandboxPath string, spec driverapi.EndpointSpec) error {
	if !spec.Gateway.IsValid() && !spec.Gateway6.IsValid() {
		return nil
	}
	sb, err := d.acquire(sandboxPath)
	if err != nil {
		return err
	}
	defer d.release(sb, false)
	link, err := sb.h.LinkByName(spec.IfName)
	if err != nil {
		return fmt.Errorf("look up %q in sandbox %q: %w", spec.IfName, sandboxPath, err)
	}
	mac := d.bridges.mac(spec.Bridge)
	for _, gw := range []netip.Addr{spec.Gateway, spec.Gateway6} {
		if !gw.IsValid() {
			continue
		}
		if err := sb.h.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s on %q: %w", gw, spec.IfName, err)
		}
		// As a join seeds it (seedGateway); only a help, so a failure is
		// no error: the container then asks for the gateway itself.
		foreign := spec.ForeignGateway
		if gw.Is6() {
			foreign = spec.ForeignGateway6
		}
		if mac != nil && !foreign && !hasNeighbour(sb.h, link.Attrs().Index, gw) {
			err := sb.h.NeighSet(&netlink.Neigh{LinkIndex: link.Attrs().Index, Family: addrFamily(gw), State: unix.NUD_STALE, IP: gw.AsSlice(), HardwareAddr: mac})
			if err != nil {
				d.log.Debug("seed the gateway's neighbour entry", "gateway", gw, "err", err)
			}
		}
	}
	return nil
}

// hasNeighbour reports whether the link at ifindex has a neighbour entry
// for ip already (which a seed must not replace).
func hasNeighbour(h *netlink.Handle, ifindex int, ip netip.Addr) bool {
	neighs, err := h.NeighList(ifindex, addrFamily(ip))
	if err != nil {
		return false
	}
	for _, n := range neighs {
		if n.IP.Equal(ip.AsSlice()) && n.State&(unix.NUD_INCOMPLETE|unix.NUD_FAILED) == 0 {
			return true
		}
	}
	return false
}
