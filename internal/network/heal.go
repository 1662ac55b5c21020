package network

import (
	"github.com/berth-net/berth/internal/driverapi"

	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// This file mends berth's links while the daemon runs, after someone
// deleted a bridge or a veth, set one down or took a veth off its bridge
// (the bridge driver's WatchLinks reports it as LinkDamage). A restart's
// reconcile does the same for all of them; between restarts, Docker's
// containers behind such a link stay cut off.

// NoBridgeError and LinkDamage are the driver's reports (driverapi).
type (
	NoBridgeError = driverapi.NoBridgeError
	LinkDamage    = driverapi.LinkDamage
)

// DamagedSandbox is a container's sandbox with an endpoint to mend.
type DamagedSandbox struct {
	ID, ContainerID string
}

// Damaged turns damage into what to mend: the bridge networks whose
// bridge was touched, and the sandboxes with an endpoint whose veth was
// touched or whose bridge was (a deleted bridge drops its ports). An
// owner that no record knows any more, or that is leaving (an endpoint
// that left or is leaving, a network being removed), is left out; so is
// everything before Start has loaded the records (Start checks every
// link itself). An endpoint still being made counts: its join may be
// running (the container's lock held) while its veth is damaged, and
// HealSandbox, which waits for that lock, mends it once it is ready
// (review of session 18: such damage was dropped for good). With
// dmg.Lost, every bridge network and every sandbox with an endpoint on
// one is returned.
func (c *Controller) Damaged(dmg LinkDamage) (networks []string, sandboxes []DamagedSandbox) {
	if !c.loaded() {
		return nil, nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	nets := map[string]bool{}
	sbs := map[string]bool{}
	for tag := range dmg.Owners {
		switch kind, id := ownerID(tag); kind {
		case "network":
			if n := c.networks[id]; n != nil && n.Driver == DriverBridge && !n.Removing {
				nets[id] = true
			}
		case "endpoint":
			if ep := c.endpoints[id]; ep != nil && ep.State != EndpointDeleting {
				sbs[ep.SandboxID] = true
			}
		}
	}
	if dmg.Lost {
		for id, n := range c.networks {
			if n.Driver == DriverBridge && !n.Removing {
				nets[id] = true
			}
		}
	}
	for _, ep := range c.endpoints {
		if nets[ep.NetworkID] && ep.State != EndpointDeleting {
			sbs[ep.SandboxID] = true
		}
	}
	for id := range nets {
		networks = append(networks, id)
	}
	slices.Sort(networks)
	for id := range sbs {
		if sb := c.sandboxes[id]; sb != nil && !sb.HostNetwork {
			sandboxes = append(sandboxes, DamagedSandbox{ID: id, ContainerID: sb.ContainerID})
		}
	}
	slices.SortFunc(sandboxes, func(a, b DamagedSandbox) int { return strings.Compare(a.ID, b.ID) })
	return networks, sandboxes
}

// HealBridge makes network id's bridge whole again, as a start does
// (EnsureBridge: made again if it was deleted, with the MAC derived from
// its network, its addresses, up). A network that is gone or being
// removed is left alone: netOps orders this against a removal, so a
// bridge is never made again behind one.
func (c *Controller) HealBridge(id string) error {
	c.netOps.Lock()
	defer c.netOps.Unlock()
	c.mu.RLock()
	n := c.networks[id]
	mend := n != nil && n.Driver == DriverBridge && !n.Removing
	var spec BridgeSpec
	var name string
	if mend {
		spec, name = bridgeSpec(n), n.Name
	}
	c.mu.RUnlock()
	if !mend {
		return nil
	}
	if err := c.cfg.Driver.EnsureBridge(spec, bridgeOwner(id)); err != nil {
		return fmt.Errorf("mend bridge %q of network %q: %w", spec.Name, name, err)
	}
	return nil
}

// HealSandbox mends every ready endpoint of the sandbox on a bridge
// network: a host end that is down or off its bridge is put back (the
// driver's Adopt), a pair that is gone is made again as Join made it,
// with the sandbox's default route if the endpoint gives it. It returns
// the endpoints whose pair it made again. The caller keeps the
// container's joins and leaves out while it runs (the daemon holds the
// container's lock), so no endpoint leaves under it.
func (c *Controller) HealSandbox(ctx context.Context, sandboxID string) (remade []string, err error) {
	type job struct {
		id, key string
		spec    EndpointSpec
	}
	var jobs []job
	c.mu.RLock()
	sb := c.sandboxes[sandboxID]
	if sb != nil && !sb.HostNetwork {
		for _, ep := range c.sandboxEndpointsLocked(sandboxID) {
			n := c.networks[ep.NetworkID]
			if ep.State != EndpointReady || n == nil || n.Driver != DriverBridge || n.Removing {
				continue
			}
			spec, _ := c.joinSpecLocked(n, ep)
			jobs = append(jobs, job{id: ep.ID, key: sb.Key, spec: spec})
		}
	}
	c.mu.RUnlock()
	var errs []error
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return remade, err
		}
		ok, err := c.cfg.Driver.Adopt(j.key, j.spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("mend endpoint %s: %w", j.id[:12], err))
			continue
		}
		if ok {
			continue
		}
		// Whatever is left of the pair (a peer the reaper holds) goes
		// first, as a restart's ensureEndpoint does.
		if err := c.cfg.Driver.Leave(j.key, j.spec); err != nil {
			errs = append(errs, fmt.Errorf("mend endpoint %s: %w", j.id[:12], err))
			continue
		}
		if err := c.cfg.Driver.Join(j.key, j.spec); err != nil {
			errs = append(errs, fmt.Errorf("make endpoint %s again: %w", j.id[:12], err))
			continue
		}
		remade = append(remade, j.id)
	}
	return remade, errors.Join(errs...)
}

// DamageOf is the damage that names nets and every endpoint of sbs that
// is not leaving, for a pass to be tried again (the daemon posts it back
// to the watcher after a failed one).
func (c *Controller) DamageOf(nets []string, sbs []DamagedSandbox, what string) LinkDamage {
	dmg := LinkDamage{Owners: map[string]string{}}
	for _, id := range nets {
		dmg.Owners[bridgeOwner(id)] = what
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, sb := range sbs {
		for _, ep := range c.sandboxEndpointsLocked(sb.ID) {
			if ep.State != EndpointDeleting {
				dmg.Owners[endpointOwner(ep.ID)] = what
			}
		}
	}
	return dmg
}
