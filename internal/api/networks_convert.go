package api

import (
	"errors"
	"net"
	"net/netip"

	nettypes "github.com/docker/docker/api/types/network"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// networkResource is Docker's view of a network. eps fill Containers for
// inspect; lists pass nil and get {} as Docker's do.
func networkResource(n *network.Network, eps []*network.Endpoint) nettypes.Inspect {
	out := nettypes.Inspect{
		Name:       n.Name,
		ID:         n.ID,
		Created:    n.Created,
		Scope:      "local",
		Driver:     n.Driver,
		EnableIPv4: true,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		IPAM:       nettypes.IPAM{Driver: "default", Options: n.IPAMOptions, Config: []nettypes.IPAMConfig{}},
		Containers: map[string]nettypes.EndpointResource{},
		Options:    orEmpty(n.Options),
		Labels:     orEmpty(n.Labels),
	}
	if c := n.IPv4; c != nil {
		cfg := nettypes.IPAMConfig{Subnet: c.Subnet.String()}
		if c.Gateway.IsValid() {
			cfg.Gateway = c.Gateway.String()
		}
		if c.IPRange.IsValid() {
			cfg.IPRange = c.IPRange.String()
		}
		out.IPAM.Config = append(out.IPAM.Config, cfg)
	}
	for _, ep := range eps {
		if ep.State == network.EndpointDeleting {
			continue
		}
		out.Containers[ep.ContainerID] = nettypes.EndpointResource{
			Name:        ep.Name,
			EndpointID:  ep.ID,
			MacAddress:  ep.MAC.String(),
			IPv4Address: prefixString(ep.Address),
		}
	}
	return out
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// networkCreateRequest validates Docker's request with Docker's own IPAM
// rules and words, rejects what berth does not do, and parses the rest.
func networkCreateRequest(body nettypes.CreateRequest) (network.CreateRequest, error) {
	if body.Name == "" {
		return network.CreateRequest{}, errdefs.Invalid("network name is required")
	}
	if err := unsupportedNetworkFeatures(body); err != nil {
		return network.CreateRequest{}, err
	}
	req := network.CreateRequest{
		Name:       body.Name,
		Driver:     body.Driver,
		Internal:   body.Internal,
		Attachable: body.Attachable,
		EnableIPv6: body.EnableIPv6 != nil && *body.EnableIPv6,
		Options:    body.Options,
		Labels:     body.Labels,
	}
	if body.IPAM == nil {
		return req, nil
	}
	req.IPAMDriver = body.IPAM.Driver
	// Docker's default IPAM driver ignores its options but keeps them for
	// inspect; so does berth, rather than refuse what Docker accepts.
	req.IPAMOptions = body.IPAM.Options
	for _, c := range body.IPAM.Config {
		if c.Subnet == "" {
			// The docker CLI's words; moby would say "invalid subnet : ...".
			return network.CreateRequest{}, errdefs.Invalid("invalid network config: every ip-range or gateway must have a corresponding subnet")
		}
	}
	if err := nettypes.ValidateIPAM(body.IPAM, true); err != nil {
		return network.CreateRequest{}, errdefs.Invalid("%w", err)
	}
	for _, c := range body.IPAM.Config {
		ir, err := ipamRequest(c)
		if err != nil {
			return network.CreateRequest{}, err
		}
		req.IPAM = append(req.IPAM, ir)
	}
	return req, nil
}

func unsupportedNetworkFeatures(body nettypes.CreateRequest) error {
	switch {
	case body.Scope != "" && body.Scope != "local":
		return errdefs.Invalid("scope %q is not supported by berth: networks are local", body.Scope)
	case body.Ingress, body.ConfigOnly, body.ConfigFrom != nil && body.ConfigFrom.Network != "":
		return errdefs.Invalid("swarm networks (ingress, config-only, config-from) are not supported by berth")
	case body.EnableIPv4 != nil && !*body.EnableIPv4:
		return errdefs.Invalid("IPv6-only networks are not supported by berth: leave IPv4 enabled")
	case body.IPAM != nil && body.IPAM.Driver != "" && body.IPAM.Driver != "default":
		return errdefs.Invalid("IPAM driver %q is not supported by berth: use \"default\"", body.IPAM.Driver)
	}
	return nil
}

// ipamRequest parses one already validated --subnet/--ip-range/--gateway triple.
func ipamRequest(c nettypes.IPAMConfig) (network.IPAMRequest, error) {
	var ir network.IPAMRequest
	var errs [3]error
	ir.Subnet, errs[0] = netip.ParsePrefix(c.Subnet)
	if c.IPRange != "" {
		ir.IPRange, errs[1] = netip.ParsePrefix(c.IPRange)
	}
	if c.Gateway != "" {
		ir.Gateway, errs[2] = netip.ParseAddr(c.Gateway)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return ir, errdefs.Invalid("invalid network config: %w", err) // ValidateIPAM let it through
	}
	if ir.Subnet.Addr().Is6() {
		return ir, errdefs.Invalid("invalid subnet %s: IPv6 is not supported by berth", c.Subnet)
	}
	if len(c.AuxAddress) > 0 {
		return ir, errdefs.Invalid("auxiliary addresses are not supported by berth")
	}
	return ir, nil
}

// endpointRequest translates one EndpointSettings. mac is the container-wide
// MAC of API < 1.44, used when the endpoint has none of its own; perEndpointMAC
// is false for those old versions, whose per-endpoint field meant nothing.
func endpointRequest(es *nettypes.EndpointSettings, mac string, perEndpointMAC bool) (container.EndpointRequest, error) {
	var req container.EndpointRequest
	if es != nil {
		if err := es.IPAMConfig.Validate(); err != nil {
			return req, errdefs.Invalid("%w", err)
		}
		if c := es.IPAMConfig; c != nil {
			if c.IPv6Address != "" || len(c.LinkLocalIPs) > 0 {
				return req, errdefs.Invalid("IPv6 and link-local addresses are not supported by berth")
			}
			if c.IPv4Address != "" {
				// Validate used net.ParseIP; parse again rather than trust
				// that the two parsers agree on every input.
				ip, err := netip.ParseAddr(c.IPv4Address)
				if err != nil {
					return req, errdefs.Invalid("invalid IPv4 address: %s", c.IPv4Address)
				}
				req.IPv4Address = ip.Unmap()
			}
		}
		if perEndpointMAC && es.MacAddress != "" {
			mac = es.MacAddress
		}
		req.GwPriority = es.GwPriority
		// Refused by name rather than ignored: these options change the
		// interface in the container. Other endpoint options mean nothing
		// to the bridge driver, in moby too.
		for _, k := range []string{"com.docker.network.endpoint.sysctls", "com.docker.network.endpoint.ifname"} {
			if _, ok := es.DriverOpts[k]; ok {
				return req, errdefs.Invalid("endpoint driver option %s (--driver-opt) is not supported by berth", k)
			}
		}
		req.Aliases = es.Aliases
		for _, l := range es.Links {
			if _, _, err := container.ParseLink(l); err != nil {
				return req, errdefs.Invalid("%w", err)
			}
		}
		req.Links = es.Links
	}
	if mac != "" {
		if hw, err := net.ParseMAC(mac); err != nil || len(hw) != 6 {
			return req, errdefs.Invalid("invalid MAC address: %s", mac)
		}
		req.MacAddress = mac
	}
	return req, nil
}
