package api

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	ctypes "github.com/docker/docker/api/types/container"
	nettypes "github.com/docker/docker/api/types/network"

	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// createBC is what moby's postContainersCreate does for older clients
// before the create itself (handleMACAddressBC, handleSysctlBC): it may
// change req (a sysctl moved to an endpoint's driver options) and
// returns the warnings the create's answer carries.
func createBC(req *ctypes.CreateRequest, version string) ([]string, error) {
	if req.Config == nil || req.HostConfig == nil {
		return nil, nil
	}
	if req.HostConfig.NetworkMode == "" {
		req.HostConfig.NetworkMode = nettypes.NetworkDefault // as moby's decoder sets it first
	}
	var warnings []string
	if w, err := macAddressBC(req.Config, req.HostConfig, version); err != nil {
		return nil, err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &nettypes.NetworkingConfig{}
	}
	if w, err := sysctlBC(req.HostConfig, req.NetworkingConfig, version); err != nil {
		return nil, err
	} else if w != "" {
		warnings = append(warnings, w)
	}
	return warnings, nil
}

// endpointMode reports whether mode gives the container an endpoint of
// its own that a container-wide setting can mean: the default bridge or
// a user-defined network (moby's IsBridge || IsUserDefined; berth counts
// "default", which it runs on the bridge, as the bridge; createBC has
// made an empty mode "default").
func endpointMode(mode ctypes.NetworkMode) bool {
	return mode.IsDefault() || mode.IsBridge() || mode.IsUserDefined()
}

// macAddressBC is moby's handleMACAddressBC for what createNetworks does
// not do itself (it moves the container-wide MacAddress to the mode's
// endpoint): before API 1.44 a MacAddress with a mode that has no
// endpoint of its own (host, none) is refused; from 1.44 on the field is
// deprecated, and a create that uses it gets moby's warning.
func macAddressBC(c *ctypes.Config, hc *ctypes.HostConfig, version string) (string, error) {
	if c.MacAddress == "" { //nolint:staticcheck // the deprecated field is what this reads
		return "", nil
	}
	if lessThan(version, "1.44") {
		if !endpointMode(hc.NetworkMode) {
			return "", errdefs.Invalid("conflicting options: mac-address and the network mode")
		}
		return "", nil
	}
	return "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.", nil
}

// sysctlBC is moby's handleSysctlBC: a --sysctl that names an interface
// (net.*.*.ethN.*) cannot be applied by the runtime, since the container's
// interfaces are made after it. Before API 1.48 those of eth0 move to the
// mode network's endpoint, as its driver option
// com.docker.network.endpoint.sysctls with IFNAME for the name, with a
// warning; another ethN is refused, and from 1.48 on any of them is.
func sysctlBC(hc *ctypes.HostConfig, nc *nettypes.NetworkingConfig, version string) (string, error) {
	if hc.NetworkMode.IsHost() || hc.NetworkMode.IsContainer() {
		return "", nil
	}
	var (
		ep      *nettypes.EndpointSettings
		moved   []string
		perLink []string
	)
	for _, k := range slices.Sorted(maps.Keys(hc.Sysctls)) {
		spl := strings.SplitN(k, ".", 5)
		if len(spl) != 5 || spl[0] != "net" || !strings.HasPrefix(spl[3], "eth") {
			continue
		}
		if ep == nil {
			if !lessThan(version, "1.48") {
				return "", errdefs.Invalid("interface specific sysctl setting %q must be supplied using driver option '%s'", k, network.OptEndpointSysctls)
			}
			var err error
			if ep, err = endpointForMode(version, hc.NetworkMode, nc); err != nil {
				return "", errdefs.Invalid("unable to find a network for sysctl %s: %w", k, err)
			}
		}
		if spl[3] != "eth0" {
			return "", errdefs.Invalid("unable to determine network endpoint for sysctl %s, use driver option '%s' to set per-interface sysctls", k, network.OptEndpointSysctls)
		}
		moved = append(moved, k)
		perLink = append(perLink, fmt.Sprintf("net.%s.%s.IFNAME.%s=%s", spl[1], spl[2], spl[4], hc.Sysctls[k]))
	}
	if ep == nil {
		return "", nil
	}
	opt := strings.Join(perLink, ",")
	warning := fmt.Sprintf("Migrated sysctl %q to DriverOpts{%q:%q}.", strings.Join(moved, ","), network.OptEndpointSysctls, opt)
	if ep.DriverOpts == nil {
		ep.DriverOpts = map[string]string{}
	}
	if old, ok := ep.DriverOpts[network.OptEndpointSysctls]; ok {
		opt += "," + old // the endpoint's own come last, and win
	}
	ep.DriverOpts[network.OptEndpointSysctls] = opt
	for _, k := range moved {
		delete(hc.Sysctls, k)
	}
	return warning, nil
}

// endpointForMode is moby's epConfigForNetMode: the endpoint settings a
// container-wide setting goes to, made under the mode's name when there
// are none.
func endpointForMode(version string, mode ctypes.NetworkMode, nc *nettypes.NetworkingConfig) (*nettypes.EndpointSettings, error) {
	name := mode.NetworkName()
	if len(nc.EndpointsConfig) == 0 {
		es := &nettypes.EndpointSettings{}
		nc.EndpointsConfig = map[string]*nettypes.EndpointSettings{name: es}
		return es, nil
	}
	if lessThan(version, "1.44") {
		for k, es := range nc.EndpointsConfig { // one at most before 1.44
			if es == nil {
				es = &nettypes.EndpointSettings{}
				nc.EndpointsConfig[k] = es
			}
			return es, nil
		}
	}
	es, ok := nc.EndpointsConfig[name]
	if !ok {
		return nil, errors.New("HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks")
	}
	if es == nil {
		es = &nettypes.EndpointSettings{}
		nc.EndpointsConfig[name] = es
	}
	return es, nil
}
