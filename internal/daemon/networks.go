package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/events"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/store"
)

// Networks lists every network.
func (d *Daemon) Networks(ctx context.Context) ([]*network.Network, error) {
	return d.net.Networks(), nil
}

// Network finds one network by ID, name or ID prefix.
func (d *Daemon) Network(ctx context.Context, ref string) (*network.Network, error) {
	return d.net.Network(ref)
}

// NetworkEndpoints lists a network's endpoints.
func (d *Daemon) NetworkEndpoints(ctx context.Context, networkID string) ([]*network.Endpoint, error) {
	return d.net.Endpoints(networkID), nil
}

// CreateNetwork creates a user network.
func (d *Daemon) CreateNetwork(ctx context.Context, req network.CreateRequest) (*network.Network, error) {
	n, err := d.net.CreateNetwork(ctx, req)
	if err != nil {
		return nil, err
	}
	d.networkEvent(n, "create", "")
	return d.withRouteWarnings(n), nil
}

// RemoveNetwork removes a user network without endpoints. Containers that
// are stopped but configured for it keep a dangling reference, as in Docker.
func (d *Daemon) RemoveNetwork(ctx context.Context, ref string) error {
	n, err := d.net.Network(ref)
	if err != nil {
		return err
	}
	if err := d.net.RemoveNetwork(ctx, ref); err != nil {
		return err
	}
	if !n.ConfigOnly { // moby logs no destroy of a configuration network
		d.networkEvent(n, "destroy", "")
	}
	return nil
}

// PruneNetworks removes unused user networks, with a destroy event for each.
func (d *Daemon) PruneNetworks(ctx context.Context, f network.PruneFilter) ([]string, error) {
	removed, err := d.net.PruneNetworks(ctx, f)
	names := make([]string, 0, len(removed))
	for _, n := range removed {
		d.networkEvent(n, "destroy", "") // as moby's deleteNetwork, for each
		names = append(names, n.Name)
	}
	if err == nil {
		// Then moby's NetworksPrune logs the prune itself, with no actor.
		d.events.Publish(events.Event{Type: events.TypeNetwork, Action: "prune", Attributes: map[string]string{"reclaimed": "0"}})
	}
	return names, err
}

// ConnectNetwork joins a container to a network: live when it runs,
// at its next start otherwise.
func (d *Daemon) ConnectNetwork(ctx context.Context, netRef, ctrRef string, req container.EndpointRequest) error {
	n, err := d.net.Network(netRef)
	if err != nil {
		return err
	}
	if d.netSettings.noBridge && n.Name == network.NameBridge {
		// Kept while containers are on it, which berth joins to nothing
		// new meanwhile (lifecycle's start skips it too).
		return errdefs.Forbidden("the default bridge network is disabled (--bridge none): it stays only until the containers on it are gone")
	}
	cs, err := d.lookup(ctrRef)
	if err != nil {
		return err
	}
	if err := d.connect(ctx, cs, n, ctrRef, req); err != nil {
		return err
	}
	if n.Name == network.NameBridge {
		// As moby's addLegacyLinks: containers linked to this one see
		// its new address.
		d.refreshLinkParents(cs.c.ID)
	}
	return nil
}

// connect is ConnectNetwork once the network and the container are found.
func (d *Daemon) connect(ctx context.Context, cs *ctrState, n *network.Network, ctrRef string, req container.EndpointRequest) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.goneLocked() {
		return errdefs.NotFound("No such container: %s", ctrRef)
	}
	c := cs.c
	_, already := c.Config.Networks[n.Name]
	if already && c.Running() {
		return errdefs.Forbidden("endpoint with name %s already exists in network %s", c.Name, n.Name)
	}
	if err := d.canConnect(c, n); err != nil {
		return err
	}
	if err := endpointSettingsError(n, req); err != nil {
		return errdefs.Invalid("%s", err) // moby's updateNetworkConfig
	}
	if already {
		// A stopped container keeps the settings it has, and the connect
		// succeeds, as moby's updateNetworkSettings ("Avoid duplicate
		// config"): scripts connect idempotently.
		return nil
	}
	nets := maps.Clone(c.Config.Networks)
	if nets == nil {
		nets = map[string]container.EndpointRequest{}
	}
	if name := req.DriverOpts[network.OptEndpointIfname]; name != "" && slices.Contains(reservedIfNames(nets, n.Name), name) {
		// Caught here for a stopped container too, not at its next start.
		return errdefs.Forbidden("interface name %s is already in use in the container", name)
	}
	nets[n.Name] = req
	if !c.Running() {
		c.Config.Networks = nets
		return d.putContainer(c)
	}
	// The container's record goes into the store with the endpoint's
	// intent: one record, one fdatasync, which overlaps the kernel work.
	// /etc/hosts is written after, in line: written by a goroutine while
	// the kernel worked (as berth once did), it made the connect slower,
	// not faster, on a 2-CPU VM (about 0.1 ms of the daemon's time,
	// measured with timing marks, two runs of each).
	start := time.Now()
	dnsJoined := d.connectDNS(c, n)
	ep, err := d.net.Join(ctx, c.State.SandboxID, n.ID, network.JoinRequest{
		ContainerID: c.ID, Name: c.Name, IPv4: req.IPv4Address, IPv6: req.IPv6Address, NoIPv6: ipv6Disabled(c), MAC: req.MacAddress, Aliases: req.Aliases, LinkLocal: req.LinkLocalIPs,
		Links: req.Links, Hostname: c.Config.Hostname, GwPriority: req.GwPriority, Record: recordContainer(c, nets),
		DriverOpts: req.DriverOpts, ReservedIfNames: reservedIfNames(nets, n.Name),
	})
	if err != nil {
		dnsJoined(false)
		return errors.Join(err, d.putContainer(c)) // the record as it was
	}
	c.Config.Networks = nets
	var addrs []netip.Addr
	for _, p := range []netip.Prefix{ep.Address, ep.Address6} {
		if p.IsValid() {
			addrs = append(addrs, p.Addr())
		}
	}
	hostsErr := d.hostsAdd(c, addrs)
	dnsJoined(true)
	d.networkEvent(n, "connect", c.ID)
	if hostsErr == nil {
		d.metrics.timeNetwork("connect", start)
	}
	return hostsErr
}

// endpointSettingsError is moby's validateEndpointSettings for what berth
// takes: every problem of req on n, one per line under "invalid endpoint
// settings:", or nil. A predefined network takes neither an address nor
// an alias; an address must be in the network's subnet of its family,
// whether the user configured it or it came from the default pools, as
// Docker 29.1 has it (moby 84a251d039; Docker 28 refused an address on a
// network whose subnet it had chosen itself).
func endpointSettingsError(n *network.Network, req container.EndpointRequest) error {
	var errs []string
	if n.Predefined {
		// --link-local-ip too where there is no interface (host, none):
		// Docker ignores it there, berth refuses it as --ip.
		if req.IPv4Address.IsValid() || req.IPv6Address.IsValid() || len(req.LinkLocalIPs) > 0 && n.Driver != network.DriverBridge {
			errs = append(errs, "user specified IP address is supported on user defined networks only")
		}
		if len(req.Aliases) > 0 {
			errs = append(errs, "network-scoped alias is supported only for containers in user defined networks")
		}
	}
	// moby's validateEndpointIPAddress: the address must be in a subnet
	// of the network (none on an IPv6-only network's IPv4 side, or on an
	// IPv4-only one's IPv6 side).
	// An address in a subnet the network keeps unused (its family off)
	// is refused saying so: moby takes it and gives the container no
	// address of that family, which would drop the user's address
	// without a word.
	addrErr := func(a netip.Addr, family, flag string) string {
		if sub := n.UnusedSubnet(a); sub.IsValid() {
			return fmt.Sprintf("network %s has %s turned off: its subnet %s is kept unused, so IP address %s cannot be given (create the network with %s)", n.Name, family, sub, a, flag)
		}
		return fmt.Sprintf("no configured subnet contains IP address %s", a)
	}
	if a := req.IPv4Address; a.IsValid() && n.Driver == network.DriverBridge && !n.IPv4.Contains(a) {
		errs = append(errs, addrErr(a, "IPv4", "--ipv4"))
	}
	if a := req.IPv6Address; a.IsValid() && n.Driver == network.DriverBridge && !n.Predefined && !n.IPv6.Contains(a) {
		errs = append(errs, addrErr(a, "IPv6", "--ipv6"))
	}
	if len(errs) == 0 {
		return nil
	}
	return errors.New("invalid endpoint settings:\n" + strings.Join(errs, "\n"))
}

// recordContainer writes c's record with its networks replaced by nets,
// leaving c itself alone.
func recordContainer(c *container.Container, nets map[string]container.EndpointRequest) func(store.Tx) error {
	return func(tx store.Tx) error {
		cp := *c
		cp.Config.Networks = nets
		return tx.Put(store.BucketContainers, c.ID, &cp)
	}
}

// DisconnectNetwork takes a container off a network. A stopped
// container, or with force one whose network is gone, only loses the
// network from its record, as moby's DisconnectFromNetwork: a stopped
// container on a network that was removed since could not start
// otherwise, and could not be taken off it either.
func (d *Daemon) DisconnectNetwork(ctx context.Context, netRef, ctrRef string, force bool) error {
	n, nerr := d.net.Network(netRef)
	cs, err := d.lookup(ctrRef)
	if err != nil {
		if force && errdefs.Is(err, errdefs.KindNotFound) {
			if nerr != nil {
				return nerr
			}
			// moby's ForceEndpointDelete: no container of that name, so
			// an endpoint of that name on the network is looked for, and
			// berth keeps none without its container (restore removes
			// such leftovers).
			return errdefs.NotFound("endpoint %s not found", ctrRef)
		}
		return err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.goneLocked() {
		return errdefs.NotFound("No such container: %s", ctrRef)
	}
	c := cs.c
	if !c.Running() || nerr != nil && force {
		name := netRef
		if nerr == nil {
			name = n.Name
		}
		if _, ok := c.Config.Networks[name]; !ok {
			return errdefs.Forbidden("container %s is not connected to the network %s", c.ID, name)
		}
		nets := maps.Clone(c.Config.Networks)
		delete(nets, name)
		c.Config.Networks = nets
		return d.putContainer(c)
	}
	if nerr != nil {
		return nerr
	}
	if _, ok := c.Config.Networks[n.Name]; !ok {
		return errdefs.Forbidden("container %s is not connected to network %s", c.ID, n.Name)
	}
	if n.Driver == network.DriverHost {
		return errdefs.Invalid("%s", errConflictHostNetwork)
	}
	// NetworkMode stays what the container was created with, as Docker's
	// HostConfig.NetworkMode does: a container taken off its last network
	// can be connected again, to that network or another.
	nets := maps.Clone(c.Config.Networks)
	delete(nets, n.Name)
	gone := d.net.AddressesOn(c.State.SandboxID, n.ID)
	err = d.net.LeaveAndRecord(ctx, c.State.SandboxID, n.ID, recordContainer(c, nets))
	switch {
	case err == nil:
		c.Config.Networks = nets
	case force && errdefs.Is(err, errdefs.KindNotFound):
		c.Config.Networks = nets
		if err := d.putContainer(c); err != nil {
			return err
		}
	default:
		return errors.Join(err, d.putContainer(c)) // the record as it was
	}
	d.networkEvent(n, "disconnect", c.ID)
	return d.hostsDelete(c, gone)
}

// Docker's words (runconfig) for the network combinations it refuses.
const (
	errConflictHostNetwork   = "container cannot be disconnected from host network or connected to host network"
	errConflictSharedNetwork = "container sharing network namespace with another container or host cannot be connected to any other network"
	errConflictNoNetwork     = "container cannot be connected to multiple networks with one of the networks in private (none) mode"
)

// canConnect applies Docker's rules for adding network n to c: the host
// network is never joined later, a container on the host network joins
// nothing else, and "none" is never combined with another network. Only
// bridge networks can be joined live.
func (d *Daemon) canConnect(c *container.Container, n *network.Network) error {
	if n.Driver == network.DriverHost {
		return errdefs.Invalid("%s", errConflictHostNetwork)
	}
	if _, ok := container.SharedNetns(c.Config.NetworkMode); ok {
		return errdefs.Invalid("%s", errConflictSharedNetwork)
	}
	for name := range c.Config.Networks {
		cur, err := d.net.Network(name)
		if err != nil {
			continue
		}
		switch {
		case cur.Driver == network.DriverHost:
			return errdefs.Invalid("%s", errConflictSharedNetwork)
		case cur.IsNone() || n.IsNone():
			return errdefs.Invalid("%s", errConflictNoNetwork)
		}
	}
	if c.Config.NetworkMode == network.NameHost {
		return errdefs.Invalid("%s", errConflictSharedNetwork)
	}
	if n.Driver != network.DriverBridge && n.Driver != network.DriverNull {
		return errdefs.Invalid("network %s: driver %q cannot be connected to", n.Name, n.Driver)
	}
	return nil
}

// NetworkCreateDefaults are the daemon's --default-network-opt options
// for driver (api.Backend).
func (d *Daemon) NetworkCreateDefaults(driver string) map[string]string {
	return d.cfg.DefaultNetworkOpts[driver]
}

// reservedIfNames are the interface names the container's endpoints
// other than except's ask for (network.OptEndpointIfname): the automatic
// ethN of a join skips them, whatever the order of the joins.
func reservedIfNames(nets map[string]container.EndpointRequest, except string) []string {
	var names []string
	for name, req := range nets {
		if ifname := req.DriverOpts[network.OptEndpointIfname]; name != except && ifname != "" {
			names = append(names, ifname)
		}
	}
	return names
}
