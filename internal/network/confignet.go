package network

import (
	"fmt"
	"maps"
	"slices"

	"github.com/berth-net/berth/internal/errdefs"
)

// Configuration networks, as libnetwork's: `network create --config-only`
// records IPAM settings, options and labels under a name, and `network
// create --config-from NAME` makes a network with them. A configuration
// network has no kernel side and takes no endpoint; it cannot be removed
// while a network made from it exists.

// createConfigNetwork records a configuration network (req.ConfigOnly),
// with moby's checks (its validateConfiguration) and words.
func (c *Controller) createConfigNetwork(req CreateRequest) (*Network, error) {
	if err := validateNetworkName(req.Name); err != nil {
		return nil, err
	}
	if req.Internal || req.Attachable {
		return nil, errdefs.Forbidden("configuration network can only contain network specific fields. Network operator fields like [ ingress | internal | attachable | scope ] are not supported.")
	}
	if req.ConfigFrom != "" {
		return nil, errdefs.Forbidden("a configuration network cannot depend on another configuration network")
	}
	if req.IPAMDriver != "" && req.IPAMDriver != "default" {
		return nil, errdefs.Invalid("IPAM driver %q not found: berth supports \"default\"", req.IPAMDriver)
	}
	n := c.newNetwork(c.cfg.NewID(), DriverNull, req)
	n.ConfigOnly = true
	n.Config = &NetworkConfig{IPv4: !req.NoIPv4, IPv6: req.EnableIPv6, IPAM: cloneIPAM(req.IPAM)}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.networks {
		if o.Name == n.Name {
			return nil, errdefs.Conflict("network with name %s already exists", n.Name)
		}
	}
	if err := c.putNetwork(n); err != nil {
		return nil, fmt.Errorf("record network %q: %w", n.Name, err)
	}
	c.networks[n.ID] = n
	c.publishNetworksLocked()
	c.log.Info("configuration network created", "name", n.Name, "id", n.ID[:12])
	return cloneNetwork(n), nil
}

// withConfigFrom is req with the settings of the configuration network it
// names (req.ConfigFrom), as libnetwork's applyConfigurationTo: each
// family on or off, the --subnet triples, the options and the IPAM
// driver's, and the labels, the last two only when the configuration has
// some; and that network's ID. The request must give none of these itself.
func (c *Controller) withConfigFrom(req CreateRequest) (CreateRequest, string, error) {
	if req.IPAMDriver != "" && req.IPAMDriver != "default" || req.NoIPv4 || req.EnableIPv6 ||
		len(req.Labels) > 0 || len(req.IPAMOptions) > 0 || len(req.IPAM) > 0 {
		return req, "", errdefs.Forbidden("user specified configurations are not supported if the network depends on a configuration network")
	}
	if len(req.Options) > 0 {
		return req, "", errdefs.Forbidden("network driver options are not supported if the network depends on a configuration network")
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	from, err := c.configNetworkLocked(req.ConfigFrom)
	if err != nil {
		return req, "", err
	}
	req.NoIPv4 = !from.Config.IPv4
	req.EnableIPv6 = from.Config.IPv6
	req.IPAM = cloneIPAM(from.Config.IPAM)
	req.Options = cloneMap(from.Options)
	if len(from.IPAMOptions) > 0 {
		req.IPAMOptions = cloneMap(from.IPAMOptions)
	}
	if len(from.Labels) > 0 {
		req.Labels = cloneMap(from.Labels)
	}
	return req, from.ID, nil
}

// configNetworkLocked finds a configuration network by its name alone, as
// libnetwork's getConfigNetwork.
func (c *Controller) configNetworkLocked(name string) (*Network, error) {
	for _, n := range c.networks {
		if n.ConfigOnly && n.Name == name {
			return n, nil
		}
	}
	return nil, errdefs.NotFound("configuration network %q does not exist", name)
}

// configUsedLocked reports whether a network was made from the
// configuration network n.
func (c *Controller) configUsedLocked(n *Network) bool {
	for _, o := range c.networks {
		if o.ConfigFrom == n.Name && !o.ConfigOnly {
			return true
		}
	}
	return false
}

func cloneIPAM(reqs []IPAMRequest) []IPAMRequest {
	out := slices.Clone(reqs)
	for i := range out {
		out[i].AuxAddresses = maps.Clone(out[i].AuxAddresses)
	}
	return out
}
