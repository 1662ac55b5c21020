package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/store"
)

// Start loads the records, creates the predefined networks on first start,
// and reconciles the kernel with the records: half-done endpoints are
// rolled back, networks being removed are finished, bridges and endpoints
// that went missing are made again, links and namespaces berth owns but no
// record knows are removed, and the firewall table is rebuilt whole.
func (c *Controller) Start(ctx context.Context) error {
	if err := c.load(); err != nil {
		return err
	}
	// Removals a crash cut off are finished first: the default bridge
	// --bridge none was removing is then no longer there to count as made
	// when the predefined networks are (a start without the option makes
	// it again), nor holds its device or subnet.
	errs := c.finishRemovals(ctx)
	// Bridges no record knows go first: a data-root wiped under a
	// running host leaves its old default bridge, whose route would push
	// the new one off its subnet (dockerd reuses docker0's address).
	if err := c.removeStrayBridges(); err != nil {
		if se := (*SettingsError)(nil); errors.As(err, &se) {
			return err
		}
		errs = append(errs, err)
	}
	c.mu.Lock()
	err := c.ensurePredefinedLocked()
	if err == nil {
		err = c.applyDefaultBridgeLocked()
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.removeStrayBridges(); err != nil {
		if se := (*SettingsError)(nil); errors.As(err, &se) {
			return err
		}
		errs = append(errs, err)
	}
	c.reholdPorts()
	errs = append(errs, c.ensureBridges()...)
	if err := c.rebuildFirewall(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.reconcileSandboxes(ctx)...)
	errs = append(errs, c.reconcileEndpoints(ctx)...)
	if err := c.dropDefaultBridge(ctx); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.removeOrphans()...)
	return errors.Join(errs...)
}

// load reads every record into memory and rebuilds the address spaces
// from the endpoints, so an address is never handed out twice.
func (c *Controller) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.publishNetworksLocked()
	return c.cfg.Store.View(func(tx store.Tx) error {
		if err := tx.ForEach(store.BucketNetworks, func(_ string, raw []byte) error {
			n := &Network{}
			if err := json.Unmarshal(raw, n); err != nil {
				return fmt.Errorf("decode network record: %w", err)
			}
			c.networks[n.ID] = n
			if n.Bridge != nil && n.Bridge.DefaultBridge {
				c.setDefaultBridgeHostAccess(n)
			}
			if n.IPv4 != nil && !n.Removing {
				sp, err := loadSpace(n, n.IPv4, c.log)
				if err != nil {
					return fmt.Errorf("address space of network %q: %w", n.Name, err)
				}
				c.spaces[n.ID] = sp
			}
			if n.IPv6 != nil && !n.Removing {
				sp, err := loadSpace(n, n.IPv6, c.log)
				if err != nil {
					return fmt.Errorf("IPv6 address space of network %q: %w", n.Name, err)
				}
				c.spaces6[n.ID] = sp
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.ForEach(store.BucketSandboxes, func(_ string, raw []byte) error {
			sb := &Sandbox{}
			if err := json.Unmarshal(raw, sb); err != nil {
				return fmt.Errorf("decode sandbox record: %w", err)
			}
			c.sandboxes[sb.ID] = sb
			return nil
		}); err != nil {
			return err
		}
		return tx.ForEach(store.BucketEndpoints, func(_ string, raw []byte) error {
			ep := &Endpoint{}
			if err := json.Unmarshal(raw, ep); err != nil {
				return fmt.Errorf("decode endpoint record: %w", err)
			}
			c.setEndpointLocked(ep)
			c.names.update(ep, c.networks[ep.NetworkID])
			if sp, ok := c.spaces[ep.NetworkID]; ok && ep.Address.IsValid() {
				if err := sp.Reserve(ep.Address.Addr()); err != nil {
					c.log.Warn("endpoint address conflicts with another record", "endpoint", ep.ID[:12], "address", ep.Address, "err", err)
				}
			}
			if sp, ok := c.spaces6[ep.NetworkID]; ok && ep.Address6.IsValid() {
				if err := sp.Reserve(ep.Address6.Addr()); err != nil {
					c.log.Warn("endpoint IPv6 address conflicts with another record", "endpoint", ep.ID[:12], "address", ep.Address6, "err", err)
				}
			}
			return nil
		})
	})
}

// finishRemovals completes network removals a crash interrupted.
func (c *Controller) finishRemovals(ctx context.Context) []error {
	c.mu.Lock()
	var removing []*Network
	for id, n := range c.networks {
		if n.Removing {
			removing = append(removing, n)
			delete(c.networks, id)
		}
	}
	c.publishNetworksLocked()
	c.mu.Unlock()
	var errs []error
	for _, n := range removing {
		c.log.Info("finishing removal of network", "name", n.Name)
		if err := c.teardownNetwork(ctx, n); err != nil {
			errs = append(errs, err)
			if n.Predefined {
				c.mu.Lock()
				if c.unfinished == nil {
					c.unfinished = map[string]bool{}
				}
				c.unfinished[n.Name] = true
				c.mu.Unlock()
			}
		}
	}
	return errs
}

// ensureBridges makes every bridge network's device exist as recorded.
// A gateway the default bridge gave up is taken off it then, and
// forgotten once it is.
func (c *Controller) ensureBridges() []error {
	var errs []error
	for _, n := range c.Networks() {
		if n.Driver != DriverBridge {
			continue
		}
		if err := c.cfg.Driver.EnsureBridge(bridgeSpec(n), bridgeOwner(n.ID)); err != nil {
			errs = append(errs, fmt.Errorf("ensure bridge %q of network %q: %w", n.Bridge.Name, n.Name, err))
			continue
		}
		if len(n.StaleGateways) > 0 {
			c.mu.Lock()
			if cur := c.networks[n.ID]; cur != nil {
				cur.StaleGateways = nil
				if err := c.putNetwork(cur); err != nil {
					errs = append(errs, err)
				}
				c.publishNetworksLocked()
			}
			c.mu.Unlock()
		}
	}
	return errs
}

// removeStrayBridges deletes the bridge devices berth tagged that are
// not a recorded network's bridge by that name: a network's old device
// (the default bridge's --bridge-name changed), and those of networks no
// record knows (orphans: a data-root wiped, a crash in a removal). It
// finds them by their owner tag, so a crash in between leaves nothing
// for good, and runs before the bridges are made, whose addresses and
// routes they would hold. A device with ports that are not berth's was
// an administrator's bridge berth adopted, and is not taken apart: an
// orphan is let go of (untagged, left as it is), and the old device of a
// rename stops the start (applyDefaultBridgeLocked refuses such a rename
// before recording it; this catches one recorded by an older berth).
func (c *Controller) removeStrayBridges() error {
	// Bridges only, their ports counted only where it matters: a start
	// runs this twice, and a listing of every link read each container's
	// veth (20-60 ms each with 2,000 links, the notebook's restart).
	links, err := c.cfg.Driver.OwnedBridges()
	if err != nil {
		return fmt.Errorf("list berth's bridges: %w", err)
	}
	c.mu.RLock()
	names := map[string]string{}
	for id, n := range c.networks {
		if n.Bridge != nil {
			names[id] = n.Bridge.Name
		}
	}
	c.mu.RUnlock()
	var errs []error
	var foreign map[string]int // counted once, when a bridge needs it
	for _, l := range links {
		kind, id := ownerID(l.Owner)
		name, known := names[id]
		if kind != "network" || known && name == l.Name {
			continue
		}
		if l.ForeignPorts < 0 {
			if foreign == nil {
				if foreign, err = c.cfg.Driver.ForeignPorts(); err != nil {
					return errors.Join(append(errs, fmt.Errorf("count the ports of berth's bridges: %w", err))...)
				}
			}
			l.ForeignPorts = foreign[l.Name] // a bridge gone meanwhile has none
		}
		switch {
		case !known && l.ForeignPorts > 0:
			// An administrator's bridge berth adopted: let go of it, so
			// that a network that wants it by name adopts it again.
			c.log.Warn("a bridge berth tagged for a network it has no record of has ports that are not berth's: berth lets go of it and leaves it as it is", "bridge", l.Name, "ports", l.ForeignPorts)
			if err := c.cfg.Driver.ReleaseBridge(l.Name); err != nil {
				errs = append(errs, err)
			} else {
				c.forgetBridge(l.Name)
			}
			continue
		case l.ForeignPorts > 0:
			return settingsError("the bridge %s of network %s is %s now, and the old device has %d ports that are not berth's: berth will not delete it; take them off it, or give --bridge-name %s again",
				l.Name, id[:min(12, len(id))], name, l.ForeignPorts, l.Name)
		case known:
			c.log.Info("deleting the old device of a renamed bridge", "old", l.Name, "new", name)
		default:
			c.log.Info("removing orphaned bridge", "link", l.Name)
		}
		// Released, not deleted: a device berth did not make (the
		// administrator's, empty, that the default bridge leaves when
		// --bridge or --bridge-name changes) is let go of as it is; one
		// berth made is deleted.
		if err := c.cfg.Driver.ReleaseBridge(l.Name); err != nil {
			errs = append(errs, fmt.Errorf("delete bridge %q: %w", l.Name, err))
			continue
		}
		c.forgetBridge(l.Name)
	}
	return errors.Join(errs...)
}

// BridgeForgetter is a Firewall that keeps something of its own for each
// bridge device outside berth's table (firewalld.Zoner: a binding in
// firewalld's zone). It is told of a bridge berth deleted or let go of
// that no network has any more: the old device of a renamed default
// bridge, an orphan of a wiped data-root, which a Rebuild does not name.
type BridgeForgetter interface {
	ForgetBridge(name string)
}

// forgetBridge tells the firewall, if it wants to know, that bridge name
// is no network's any more.
func (c *Controller) forgetBridge(name string) {
	if f, ok := c.cfg.Firewall.(BridgeForgetter); ok {
		f.ForgetBridge(name)
	}
}

// rebuildFirewall replaces berth's table with the rules of every bridge
// network, in one atomic batch.
func (c *Controller) rebuildFirewall(ctx context.Context) error {
	if err := c.cfg.Firewall.Rebuild(ctx, c.firewallNetworks(), c.publishedPorts()...); err != nil {
		return fmt.Errorf("rebuild firewall: %w", err)
	}
	return nil
}

// RebuildFirewall re-applies the whole table, e.g. after someone flushed it.
// Before Start has loaded the records it does nothing: an empty table
// would cut off every running container, and Start rebuilds anyway.
//
// A firewall that can restore what it applied does so (firewall.Restorer):
// a rebuild from the records, which a connect, disconnect or network
// removal under way changes before or after its own firewall call, could
// drop a port being published or put back one being withdrawn, until the
// next heal or restart (review of session 30).
func (c *Controller) RebuildFirewall(ctx context.Context) error {
	if !c.loaded() {
		return nil
	}
	if r, ok := c.cfg.Firewall.(firewall.Restorer); ok {
		err := r.Restore(ctx)
		if !errors.Is(err, firewall.ErrNothingToRestore) {
			return err
		}
	}
	return c.rebuildFirewall(ctx)
}

// reconcileSandboxes forgets sandboxes whose namespace is gone (after a
// reboot, or a crash between record and create), with their endpoints.
func (c *Controller) reconcileSandboxes(ctx context.Context) []error {
	present := map[string]bool{}
	ids, err := c.cfg.Sandboxes.List()
	if err != nil {
		return []error{fmt.Errorf("list sandboxes: %w", err)}
	}
	for _, id := range ids {
		present[id] = true
	}
	c.mu.Lock()
	var gone []string
	for id, sb := range c.sandboxes {
		if !sb.HostNetwork && !present[id] {
			gone = append(gone, id)
		}
	}
	c.mu.Unlock()
	var errs []error
	for _, id := range gone {
		c.log.Info("sandbox namespace is gone; forgetting it", "sandbox", id[:12])
		if err := c.DeleteSandbox(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// reconcileEndpoints rolls back endpoints a crash left half removed, or
// half made where the sandbox or network is gone; finishes those half made
// in a sandbox that is still there (their intent, and the container's
// record written with it, say the container is on the network; the "ready"
// mark may simply not have been written, see readyMarks); and re-makes
// ready endpoints whose veth pair vanished.
func (c *Controller) reconcileEndpoints(ctx context.Context) []error {
	c.mu.Lock()
	var half, finish, ready, contested []*Endpoint
	for _, ep := range c.endpoints {
		n := c.networks[ep.NetworkID]
		if _, ok := c.sandboxes[ep.SandboxID]; !ok || n == nil || n.Removing {
			half = append(half, ep) // its sandbox or network is gone: nothing to keep
			continue
		}
		switch held := c.addressHolderLocked(ep); {
		case ep.State == EndpointReady:
			ready = append(ready, ep)
		case ep.State == EndpointCreating && len(ep.Ports) == 0 && held == EndpointCreating:
			contested = append(contested, ep)
		case ep.State == EndpointCreating && len(ep.Ports) == 0 && held == "":
			finish = append(finish, ep)
		default:
			half = append(half, ep)
		}
	}
	c.mu.Unlock()
	// "creating" records that share an address: a failed connect's
	// (whose delete the store refused) and the one that took the address
	// after it, killed before its ready mark. The one whose pair is there
	// is the connect that worked; the others are rolled back.
	for _, ep := range contested {
		c.mu.RLock()
		n, sb := c.networks[ep.NetworkID], c.sandboxes[ep.SandboxID]
		var spec EndpointSpec
		if n.Driver == DriverBridge {
			spec, _ = c.joinSpecLocked(n, ep)
		}
		c.mu.RUnlock()
		if n.Driver != DriverBridge {
			half = append(half, ep)
			continue
		}
		if exists, err := c.cfg.Driver.Adopt(sb.Key, spec); err == nil && exists {
			finish = append(finish, ep)
		} else {
			half = append(half, ep)
		}
	}
	var errs []error
	// The sandboxes whose endpoints change here may have their gateway
	// change too: a connect or a disconnect the crash cut short.
	touched := map[string]bool{}
	for _, ep := range finish {
		touched[ep.SandboxID] = true
		if err := c.finishEndpoint(ep); err != nil {
			c.log.Warn("could not finish half-made endpoint; rolling it back", "endpoint", ep.ID[:12], "err", err)
			half = append(half, ep)
		}
	}
	for _, ep := range half {
		touched[ep.SandboxID] = true
		c.log.Info("rolling back half-done endpoint", "endpoint", ep.ID[:12], "state", ep.State, "address", ep.Address)
		if err := c.rollbackEndpoint(ep); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ep := range ready {
		if err := c.ensureEndpoint(ep); err != nil {
			errs = append(errs, err)
		}
	}
	for id := range touched {
		c.mu.RLock()
		sb := c.sandboxes[id]
		c.mu.RUnlock()
		if sb != nil && !sb.HostNetwork {
			c.settleGateway(ctx, sb)
		}
	}
	// The others' ports, which a kill can leave on an endpoint that is
	// no longer the gateway with no endpoint half done: after a connect
	// whose ready mark reached the disk (with another record, or the
	// 10 ms timer) before its ports moved. Decided from memory: no
	// kernel call where the gateways hold them. The routes are settled
	// with them: a daemon that chose as Docker 28 (before each family's
	// gateway was chosen on its own) gave both, and the ports, to a
	// dual-stack network that may not be the IPv4 gateway now. Routes
	// alone are not set again at a start (a container may have changed
	// its own, as Docker never touches them then): a container without
	// ports keeps an older daemon's choice until it is started again.
	c.mu.RLock()
	var rest []*Sandbox
	for id, sb := range c.sandboxes {
		if touched[id] || sb.HostNetwork {
			continue
		}
		if c.portsAstrayLocked(id) {
			rest = append(rest, sb)
		}
	}
	c.mu.RUnlock()
	for _, sb := range rest {
		c.settleGateway(ctx, sb)
	}
	return errs
}

// settleGateway gives sb its default route and its ports on its gateway
// endpoint, wherever a crash left them (Join and Leave move both as
// they go).
func (c *Controller) settleGateway(ctx context.Context, sb *Sandbox) {
	c.moveGateway(sb, true, true)
	if err := c.movePorts(ctx, sb); err != nil {
		c.log.Warn("published ports could not move to the gateway network", "sandbox", sb.ID[:12], "err", err)
	}
}

func (c *Controller) rollbackEndpoint(ep *Endpoint) error {
	c.mu.Lock()
	n := c.networks[ep.NetworkID]
	sb := c.sandboxes[ep.SandboxID]
	c.mu.Unlock()
	if n != nil && n.Driver == DriverBridge {
		key := ""
		if sb != nil {
			key = sb.Key
		}
		if err := c.cfg.Driver.Leave(key, endpointSpec(n, ep)); err != nil {
			return fmt.Errorf("roll back endpoint %s: %w", ep.ID[:12], err)
		}
	}
	return c.forgetEndpoint(ep)
}

// addressHolderLocked is the state of another endpoint of ep's network
// that holds one of ep's addresses ("" when none does), ready first: a
// "creating" record that shares one with a ready endpoint is a failed
// connect's, whose delete the store refused after memory had given the
// address back and another connect had taken it; finishing it would put
// one address on two containers (review of session 30).
func (c *Controller) addressHolderLocked(ep *Endpoint) EndpointState {
	var held EndpointState
	for _, o := range c.endpoints {
		if o == ep || o.NetworkID != ep.NetworkID || o.State == EndpointDeleting {
			continue
		}
		if ep.Address.IsValid() && o.Address.Addr() == ep.Address.Addr() ||
			ep.Address6.IsValid() && o.Address6.Addr() == ep.Address6.Addr() {
			if o.State == EndpointReady {
				return EndpointReady
			}
			held = o.State
		}
	}
	return held
}

// finishEndpoint completes the kernel side of a "creating" endpoint (Join
// is idempotent: it makes what is missing and finishes a pair it finds)
// and records it ready.
//
// A pair that exists is kept as it is (as for a ready endpoint, see
// ensureEndpoint): the connect it belongs to was most likely acknowledged
// and only its mark was lost, and a Join over it that failed for a
// passing reason would delete a working endpoint. Only a missing pair is
// made, and the announcement is decided again (a record from before
// Announce existed has its MAC from elsewhere).
func (c *Controller) finishEndpoint(ep *Endpoint) error {
	c.mu.Lock()
	n := c.networks[ep.NetworkID]
	sb := c.sandboxes[ep.SandboxID]
	var spec EndpointSpec
	if n.Driver == DriverBridge { // host and none have no bridge, nothing in the kernel
		ep.Announce = ep.Announce || !n.MACsFromAddresses || !bytes.Equal(ep.MAC, MACFromAddress(ep.Address.Addr())) || !pairedAddress6(n, ep)
		spec, _ = c.joinSpecLocked(n, ep)
	}
	c.mu.Unlock()
	if n.Driver == DriverBridge {
		exists, err := c.cfg.Driver.Adopt(sb.Key, spec)
		if err != nil {
			return err
		}
		if !exists {
			if err := c.cfg.Driver.Join(sb.Key, spec); err != nil {
				return err
			}
		}
	}
	c.log.Info("finished half-made endpoint", "endpoint", ep.ID[:12], "address", ep.Address, "address6", ep.Address6)
	c.mu.Lock()
	defer c.mu.Unlock()
	ep.State = EndpointReady
	return c.noteEndpointLocked(ep)
}

// ensureEndpoint re-makes a ready endpoint's veth pair if it is missing.
func (c *Controller) ensureEndpoint(ep *Endpoint) error {
	c.mu.Lock()
	n := c.networks[ep.NetworkID]
	sb := c.sandboxes[ep.SandboxID]
	if n.Driver != DriverBridge { // host and none: no bridge, no pair
		c.mu.Unlock()
		return nil
	}
	spec, _ := c.joinSpecLocked(n, ep)
	c.mu.Unlock()
	ok, err := c.cfg.Driver.Adopt(sb.Key, spec)
	if err != nil || ok {
		return err
	}
	c.log.Warn("endpoint's veth is missing; making it again", "endpoint", ep.ID[:12], "veth", ep.HostIfName)
	if err := c.cfg.Driver.Leave(sb.Key, spec); err != nil {
		return err
	}
	return c.cfg.Driver.Join(sb.Key, spec)
}

// removeOrphans deletes links and namespaces berth tagged as its own but
// that no record knows: leftovers of a crash between kernel work and record.
func (c *Controller) removeOrphans() []error {
	var errs []error
	links, err := c.cfg.Driver.OwnedLinks()
	if err != nil {
		return []error{fmt.Errorf("list berth's links: %w", err)}
	}
	c.mu.Lock()
	knownEP := map[string]bool{}
	for id := range c.endpoints {
		knownEP[id] = true
	}
	knownNet := map[string]bool{}
	for id := range c.networks {
		knownNet[id] = true
	}
	knownSB := map[string]bool{}
	for id := range c.sandboxes {
		knownSB[id] = true
	}
	c.mu.Unlock()
	for _, l := range links {
		kind, id := ownerID(l.Owner)
		switch {
		case kind == "endpoint" && !knownEP[id]:
			c.log.Info("removing orphaned veth", "link", l.Name)
			if err := c.cfg.Driver.Leave("", EndpointSpec{HostIfName: l.Name}); err != nil {
				errs = append(errs, err)
			}
		case kind == "network" && !knownNet[id] && l.ForeignPorts == 0: // see removeStrayBridges
			c.log.Info("removing orphaned bridge", "link", l.Name)
			if err := c.cfg.Driver.DeleteBridge(l.Name); err != nil {
				errs = append(errs, err)
			}
		}
	}
	ids, err := c.cfg.Sandboxes.List()
	if err != nil {
		return append(errs, err)
	}
	for _, id := range ids {
		if !knownSB[id] {
			c.log.Info("removing orphaned sandbox namespace", "sandbox", id)
			c.cfg.Driver.ReleaseSandbox(c.cfg.Sandboxes.Path(id))
			if err := c.cfg.Sandboxes.Delete(id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// Usage reports, for tests and diagnostics, which addresses are allocated on a network.
func (c *Controller) allocated(networkID string) []netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []netip.Addr
	for _, ep := range c.endpoints {
		if ep.NetworkID == networkID && ep.Address.IsValid() {
			out = append(out, ep.Address.Addr())
		}
	}
	return out
}

// loadSpace is newSpace for a network read back at start: an auxiliary
// address that cannot be held again (records from elsewhere) is logged,
// not fatal, as an endpoint's address is.
func loadSpace(n *Network, cfg *IPConfig, log *slog.Logger) (*ipam.Space, error) {
	space, err := ipam.NewSpace(cfg.Subnet, cfg.IPRange, cfg.Gateway)
	if err != nil {
		return nil, err
	}
	if err := reserveAux(space, cfg); err != nil {
		log.Warn("an auxiliary address of a network is not held", "network", n.Name, "err", err)
	}
	return space, nil
}
