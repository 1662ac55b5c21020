package api

import (
	"errors"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

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
		EnableIPv4: n.Driver != network.DriverBridge || n.IPv4 != nil,
		EnableIPv6: n.IPv6 != nil,
		Internal:   n.Internal,
		Attachable: n.Attachable,
		IPAM:       nettypes.IPAM{Driver: "default", Options: n.IPAMOptions, Config: []nettypes.IPAMConfig{}},
		ConfigFrom: nettypes.ConfigReference{Network: n.ConfigFrom},
		ConfigOnly: n.ConfigOnly,
		Containers: map[string]nettypes.EndpointResource{},
		Options:    orEmpty(n.Options),
		Labels:     orEmpty(n.Labels),
	}
	if n.ConfigOnly && n.Config != nil {
		// As given, IPv4 triples first (moby's buildIPAMResources): no
		// gateway is chosen until a network is made from them.
		out.EnableIPv4, out.EnableIPv6 = n.Config.IPv4, n.Config.IPv6
		v4, v6 := tripleConfigs(n.Config.IPAM)
		out.IPAM.Config = append(append(out.IPAM.Config, v4...), v6...)
	}
	out.IPAM.Config = append(out.IPAM.Config, ipamConfigs(n)...)
	for _, ep := range eps {
		if ep.State == network.EndpointDeleting {
			continue
		}
		out.Containers[ep.ContainerID] = nettypes.EndpointResource{
			Name:        ep.Name,
			EndpointID:  ep.ID,
			MacAddress:  ep.MAC.String(),
			IPv4Address: prefixString(ep.Address),
			IPv6Address: prefixString(ep.Address6),
		}
	}
	return out
}

// ipamConfigs are a bridge network's address spaces as inspect shows
// them: IPv4, then IPv6, each with the --subnet triples of that family
// when it is off (UnusedIPAM), which libnetwork keeps and shows too.
// moby's buildIPAMResources lists the user's triples before the spaces
// its pools gave (an IPv6 --subnet without --ipv6 before the IPv4 space
// of the pools); berth keeps IPv4 first, as for every other network.
func ipamConfigs(n *network.Network) []nettypes.IPAMConfig {
	var v4, v6 []nettypes.IPAMConfig
	if n.IPv4 != nil {
		v4 = append(v4, ipamConfig(n.IPv4))
	}
	if n.IPv6 != nil {
		v6 = append(v6, ipamConfig(n.IPv6))
	}
	u4, u6 := tripleConfigs(n.UnusedIPAM)
	return append(append(append(v4, u4...), v6...), u6...)
}

// tripleConfigs are --subnet triples as given, as inspect shows them, by
// family.
func tripleConfigs(reqs []network.IPAMRequest) (v4, v6 []nettypes.IPAMConfig) {
	for _, r := range reqs {
		c := ipamConfig(&network.IPConfig{Subnet: r.Subnet, Gateway: r.Gateway, IPRange: r.IPRange, AuxAddresses: r.AuxAddresses})
		if r.Subnet.Addr().Is6() {
			v6 = append(v6, c)
		} else {
			v4 = append(v4, c)
		}
	}
	return v4, v6
}

// ipamConfig is one family's address space as Docker shows it.
func ipamConfig(c *network.IPConfig) nettypes.IPAMConfig {
	cfg := nettypes.IPAMConfig{Subnet: c.Subnet.String()}
	if c.Gateway.IsValid() {
		cfg.Gateway = c.Gateway.String()
	}
	if c.IPRange.IsValid() {
		cfg.IPRange = c.IPRange.String()
	}
	for k, a := range c.AuxAddresses {
		if cfg.AuxAddress == nil {
			cfg.AuxAddress = map[string]string{}
		}
		cfg.AuxAddress[k] = a.String()
	}
	return cfg
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

func prefixAddrString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.Addr().String()
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
	if strings.TrimSpace(body.Name) == "" {
		return network.CreateRequest{}, errdefs.Invalid("invalid name: name is empty") // moby's NewNetwork
	}
	if err := unsupportedNetworkFeatures(body); err != nil {
		return network.CreateRequest{}, err
	}
	enableIPv4, enableIPv6, options, err := ipFamilyOptions(body)
	if err != nil {
		return network.CreateRequest{}, err
	}
	req := network.CreateRequest{
		Name:       body.Name,
		Driver:     body.Driver,
		Internal:   body.Internal,
		Attachable: body.Attachable,
		EnableIPv6: enableIPv6,
		NoIPv4:     !enableIPv4,
		Options:    options,
		Labels:     body.Labels,
		ConfigOnly: body.ConfigOnly,
	}
	if body.ConfigFrom != nil {
		req.ConfigFrom = body.ConfigFrom.Network
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
	if err := nettypes.ValidateIPAM(body.IPAM, enableIPv6); err != nil {
		return network.CreateRequest{}, errdefs.Invalid("%w", err)
	}
	// Every triple goes on, as libnetwork keeps them all (and shows them):
	// the network allocates from those of a family that is on.
	for _, c := range body.IPAM.Config {
		ir, err := ipamRequest(c)
		if err != nil {
			if !enableIPv6 && isIPv6Subnet(c.Subnet) && !body.ConfigOnly {
				continue // ValidateIPAM skipped it: kept by moby as given, dropped here
			}
			return network.CreateRequest{}, err
		}
		req.IPAM = append(req.IPAM, ir)
	}
	return req, nil
}

// withNetworkDefaults is the create's options with the daemon's defaults
// for its driver (default-network-opts) under them, as moby's
// createNetwork adds them: each one the create does not give, before
// EnableIPv4 and EnableIPv6 are read (so a default enable_ipv6 turns IPv6
// on for a create that does not say). A network made from another's
// configuration (ConfigFrom) gets none.
func withNetworkDefaults(body nettypes.CreateRequest, defaults func(driver string) map[string]string) map[string]string {
	driver := body.Driver
	if driver == "" {
		driver = "bridge"
	}
	def := defaults(driver)
	if len(def) == 0 || body.ConfigFrom != nil {
		return body.Options
	}
	opts := maps.Clone(body.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	for k, v := range def {
		if _, ok := opts[k]; !ok {
			opts[k] = v
		}
	}
	return opts
}

// ipFamilyOptions is moby's reading of EnableIPv4 and EnableIPv6 (its
// createNetwork): each field, which takes its option
// (com.docker.network.enable_ipv4, _ipv6) out of those the network keeps,
// or when the field is absent that option, kept. It returns whether
// each family is on and the options to keep.
func ipFamilyOptions(body nettypes.CreateRequest) (bool, bool, map[string]string, error) {
	opts := body.Options
	family := func(field *bool, key string, def bool) (bool, error) {
		if field != nil {
			if _, ok := opts[key]; ok {
				opts = maps.Clone(opts)
				delete(opts, key)
			}
			return *field, nil
		}
		v, ok := opts[key]
		if !ok {
			return def, nil
		}
		on, err := strconv.ParseBool(v)
		if err != nil {
			return false, errdefs.Invalid("driver-opt %q is not a valid bool", key)
		}
		return on, nil
	}
	v4, err := family(body.EnableIPv4, network.OptEnableIPv4, true)
	if err != nil {
		return false, false, nil, err
	}
	v6, err := family(body.EnableIPv6, network.OptEnableIPv6, false)
	if err != nil {
		return false, false, nil, err
	}
	return v4, v6, opts, nil
}

func isIPv6Subnet(s string) bool {
	p, err := netip.ParsePrefix(s)
	return err == nil && p.Addr().Is6()
}

func unsupportedNetworkFeatures(body nettypes.CreateRequest) error {
	switch {
	case body.ConfigOnly && (body.Ingress || body.Scope != ""):
		// libnetwork's validateConfiguration (internal and attachable are
		// the network package's to refuse).
		return errdefs.Forbidden("configuration network can only contain network specific fields. Network operator fields like [ ingress | internal | attachable | scope ] are not supported.")
	case body.Scope != "" && body.Scope != "local":
		return errdefs.Invalid("scope %q is not supported by berth: networks are local", body.Scope)
	case body.Ingress:
		return errdefs.Invalid("swarm networks (ingress) are not supported by berth")
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
	for _, k := range slices.Sorted(maps.Keys(c.AuxAddress)) {
		if k == "DefaultGatewayIPv4" || k == "DefaultGatewayIPv6" {
			// moby's bridge driver routes the containers through this
			// address instead of the bridge's own.
			return ir, errdefs.Invalid("auxiliary address %s (the containers' default gateway) is not supported by berth", k)
		}
		a, err := netip.ParseAddr(c.AuxAddress[k])
		if err != nil { // ValidateIPAM parsed it already
			return ir, errdefs.Invalid("invalid auxiliary address %s: %w", k, err)
		}
		if ir.AuxAddresses == nil {
			ir.AuxAddresses = map[string]netip.Addr{}
		}
		ir.AuxAddresses[k] = a
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
			// moby's validateEndpointSettings words it so
			return req, errdefs.Invalid("invalid endpoint settings:\n%w", err)
		}
		if c := es.IPAMConfig; c != nil {
			for _, s := range c.LinkLocalIPs {
				ip, err := netip.ParseAddr(s) // Validate parsed it already, as net.ParseIP
				if err != nil || ip.Zone() != "" {
					return req, errdefs.Invalid("invalid link-local IP address: %s", s)
				}
				req.LinkLocalIPs = append(req.LinkLocalIPs, ip.Unmap())
			}
			if c.IPv6Address != "" {
				ip, err := netip.ParseAddr(c.IPv6Address)
				if err != nil || !ip.Is6() || ip.Is4In6() {
					return req, errdefs.Invalid("invalid IPv6 address: %s", c.IPv6Address)
				}
				req.IPv6Address = ip
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
		// The interface's name and sysctls are applied at join; other
		// endpoint options mean nothing to the bridge driver, in moby too.
		if err := network.CheckEndpointOptions(es.DriverOpts); err != nil {
			return req, err
		}
		if len(es.DriverOpts) > 0 {
			req.DriverOpts = es.DriverOpts
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
			return req, errdefs.Invalid("invalid MAC address %s", mac) // moby's words, no colon
		}
		req.MacAddress = mac
	}
	return req, nil
}
