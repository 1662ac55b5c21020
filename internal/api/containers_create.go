package api

import (
	"encoding/json"
	"maps"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	ctypes "github.com/docker/docker/api/types/container"
	nettypes "github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
)

// containerNamePattern is Docker's rule for container names (daemon/names).
var containerNamePattern = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// maxNameLen bounds container names, which Docker leaves unbounded: they
// become DNS names, file names and log fields, and 255 is more than any
// of those take comfortably.
const maxNameLen = 255

// containerName validates ?name= and drops the leading "/"; "" lets the
// daemon choose a name.
func containerName(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if len(name) > maxNameLen {
		return "", errdefs.Invalid("Invalid container name (%.20s...): longer than %d characters", name, maxNameLen)
	}
	if !containerNamePattern.MatchString(name) {
		return "", errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	return strings.TrimPrefix(name, "/"), nil
}

// createConfig translates Docker's create request into berth's config. It
// refuses what berth would otherwise silently ignore (ports, volumes,
// restart policies), so that a user is told instead of surprised.
func createConfig(req ctypes.CreateRequest, apiVersion string) (container.Config, error) {
	if req.Config == nil {
		return container.Config{}, errdefs.Invalid("config cannot be empty in order to create a container")
	}
	c := req.Config
	hc := req.HostConfig
	if hc == nil {
		hc = &ctypes.HostConfig{}
	}
	if err := checkCreate(c, hc); err != nil {
		return container.Config{}, err
	}
	exposed, err := exposedPorts(c.ExposedPorts)
	if err != nil {
		return container.Config{}, err
	}
	bindings, err := portBindings(hc.PortBindings)
	if err != nil {
		return container.Config{}, err
	}
	mode, nets, err := createNetworks(c, hc, req.NetworkingConfig, apiVersion)
	if err != nil {
		return container.Config{}, err
	}
	links, err := legacyLinks(mode, hc.Links)
	if err != nil {
		return container.Config{}, err
	}
	// Checked here and kept as given, as moby keeps them (inspect shows
	// them so); the runtime normalizes them at each start.
	for _, caps := range [][]string{hc.CapAdd, hc.CapDrop} {
		if _, err := container.NormalizeCapabilities(caps); err != nil {
			return container.Config{}, errdefs.Invalid("%w", err)
		}
	}
	capAdd, capDrop := slices.Clone([]string(hc.CapAdd)), slices.Clone([]string(hc.CapDrop))
	mounts, err := containerMounts(c, hc)
	if err != nil {
		return container.Config{}, err
	}
	var mountSpecs json.RawMessage
	if len(hc.Mounts) > 0 {
		if mountSpecs, err = json.Marshal(hc.Mounts); err != nil {
			return container.Config{}, err
		}
	}
	security, err := securityOf(hc)
	if err != nil {
		return container.Config{}, err
	}
	devices, deviceRules, err := devicesOf(hc)
	if err != nil {
		return container.Config{}, err
	}
	autoRemove := hc.AutoRemove
	if lessThan(apiVersion, "1.25") {
		autoRemove = false // before 1.25 the client removed the container itself
	}
	return container.Config{
		Image:             c.Image,
		Cmd:               c.Cmd,
		Entrypoint:        c.Entrypoint,
		Env:               c.Env,
		WorkingDir:        c.WorkingDir,
		User:              c.User,
		Hostname:          c.Hostname,
		Domainname:        c.Domainname,
		Tty:               c.Tty,
		ConsoleSize:       hc.ConsoleSize,
		NetworkDisabled:   c.NetworkDisabled,
		Volumes:           slices.Sorted(maps.Keys(c.Volumes)),
		OpenStdin:         c.OpenStdin,
		StdinOnce:         c.StdinOnce,
		Labels:            c.Labels,
		ExposedPorts:      exposed,
		PortBindings:      bindings,
		PublishAllPorts:   hc.PublishAllPorts,
		NetworkMode:       mode,
		AutoRemove:        autoRemove,
		RestartPolicy:     restartPolicyOf(hc.RestartPolicy),
		Networks:          nets,
		Links:             links,
		LogConfig:         logConfigOf(hc.LogConfig),
		DNS:               hc.DNS,
		DNSSearch:         hc.DNSSearch,
		DNSOptions:        hc.DNSOptions,
		Mounts:            mounts,
		Binds:             slices.Clone(hc.Binds),
		VolumesFrom:       slices.Clone(hc.VolumesFrom),
		Annotations:       annotationsFor(apiVersion, hc.Annotations),
		CgroupParent:      hc.CgroupParent,
		Tmpfs:             maps.Clone(hc.Tmpfs),
		MountSpecs:        mountSpecs,
		ExtraHosts:        hc.ExtraHosts,
		Shell:             c.Shell,
		StopSignal:        c.StopSignal,
		StopTimeout:       c.StopTimeout,
		Healthcheck:       healthConfigOf(c.Healthcheck),
		Sysctls:           hc.Sysctls,
		ReadonlyRootfs:    hc.ReadonlyRootfs,
		Init:              hc.Init,
		CapAdd:            capAdd,
		CapDrop:           capDrop,
		Resources:         resourcesOf(hc.Resources, hc.ShmSize, hc.OomScoreAdj),
		Security:          security,
		GroupAdd:          slices.Clone(hc.GroupAdd),
		Devices:           devices,
		Namespaces:        namespacesOf(hc),
		DeviceCgroupRules: deviceRules,
	}, nil
}

func checkCreate(c *ctypes.Config, hc *ctypes.HostConfig) error {
	if c.Image == "" {
		return errdefs.Invalid("no image specified: name the image to run")
	}
	// moby's translateWorkingDir and its check of Env: refused at
	// create, where a relative directory or an entry without a name was
	// taken and every start failed.
	if c.WorkingDir != "" {
		if !path.IsAbs(c.WorkingDir) {
			return errdefs.Invalid("the working directory '%s' is invalid, it needs to be an absolute path", c.WorkingDir)
		}
		c.WorkingDir = path.Clean(c.WorkingDir)
	}
	for _, e := range c.Env {
		if k, _, _ := strings.Cut(e, "="); k == "" {
			return errdefs.Invalid("invalid environment variable: %s", e)
		}
	}
	if err := ctypes.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
		return errdefs.Invalid("%w", err)
	}
	if c.Healthcheck != nil {
		if err := container.CheckHealthConfig(healthConfigOf(c.Healthcheck)); err != nil {
			return errdefs.Invalid("%w", err)
		}
	}
	if err := noLineBreaks(c, hc); err != nil {
		return err
	}
	if len(c.Hostname) > maxHostnameLen {
		// Docker 29.7's check (moby fd7bf71554): runc's sethostname would
		// fail the start with EINVAL.
		return errdefs.Invalid("hostname %q is too long (maximum %d bytes)", c.Hostname, maxHostnameLen)
	}
	if hc.AutoRemove && !hc.RestartPolicy.IsNone() {
		return errdefs.Invalid("can't create 'AutoRemove' container with restart policy")
	}
	if err := checkSharedNetns(c, hc); err != nil {
		return err
	}
	if hc.NetworkMode.IsHost() && len(hc.Links) > 0 {
		return errdefs.Invalid("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
	}
	if err := unappliedHostConfig(hc); err != nil {
		return err
	}
	if err := container.CheckCgroupParent(hc.CgroupParent); err != nil {
		return errdefs.Invalid("%w", err)
	}
	if _, ok := hc.Annotations[""]; ok { // moby's verifyContainerSettings
		return errdefs.Invalid("invalid Annotations: the empty string is not permitted as an annotation key")
	}
	if err := container.CheckNamespaces(namespacesOf(hc), c.Hostname, c.Domainname); err != nil {
		return errdefs.Invalid("%w", err)
	}
	for k := range hc.Sysctls {
		if err := container.CheckSysctl(k, hc.NetworkMode.IsHost()); err != nil {
			return errdefs.Invalid("%w", err)
		}
		if err := container.CheckSysctlIPC(k, hc.IpcMode.IsHost()); err != nil {
			return errdefs.Invalid("%w", err)
		}
	}
	if err := checkDNS(hc.DNS); err != nil {
		return err
	}
	if err := container.CheckLogConfig(logConfigOf(hc.LogConfig)); err != nil {
		return errdefs.Invalid("%w", err)
	}
	return checkExtraHosts(hc.ExtraHosts)
}

// legacyLinks reads HostConfig.Links. moby keeps them only for a
// container whose network mode is not a user-defined network; on those,
// the docker CLI and Compose send the links in the endpoint settings too,
// where they are name aliases (network.JoinRequest.Links). The daemon
// finds each child (Daemon.planLinks).
func legacyLinks(mode string, links []string) ([]container.Link, error) {
	var out []container.Link
	for _, l := range links {
		name, alias, err := container.ParseLink(l)
		if err != nil {
			return nil, errdefs.Invalid("%w", err)
		}
		out = append(out, container.Link{Name: strings.TrimPrefix(name, "/"), Alias: alias})
	}
	if ctypes.NetworkMode(mode).IsUserDefined() {
		return nil, nil
	}
	return out, nil
}

// logConfigOf is berth's form of HostConfig.LogConfig: the driver as
// given ("" when none was, for the daemon's default to fill in) and the
// options as given.
func logConfigOf(lc ctypes.LogConfig) container.LogConfig {
	out := container.LogConfig{Type: lc.Type, Config: maps.Clone(lc.Config)}
	if len(out.Config) == 0 {
		out.Config = nil
	}
	return out
}

// healthConfigOf is berth's form of Config.Healthcheck (checked by
// checkCreate).
func healthConfigOf(hc *ctypes.HealthConfig) *container.HealthConfig {
	if hc == nil {
		return nil
	}
	return &container.HealthConfig{Test: slices.Clone(hc.Test), Interval: hc.Interval, Timeout: hc.Timeout,
		StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: hc.Retries}
}

// restartPolicyOf is berth's form of a validated policy: none is the zero value.
func restartPolicyOf(p ctypes.RestartPolicy) container.RestartPolicy {
	if p.IsNone() {
		return container.RestartPolicy{}
	}
	return container.RestartPolicy{Name: string(p.Name), MaximumRetryCount: p.MaximumRetryCount}
}

// checkSharedNetns applies moby's rules (runconfig's
// validateNetContainerMode, in its words) to a container that shares
// another's network namespace: what would configure a network namespace
// of its own is refused, since it has none.
func checkSharedNetns(c *ctypes.Config, hc *ctypes.HostConfig) error {
	ref, ok := container.SharedNetns(string(hc.NetworkMode))
	switch {
	case !ok && string(hc.NetworkMode) != "container": // moby's test, so a network named "container" is refused too
		return nil
	case !ok || ref == "":
		return errdefs.Invalid("invalid network mode: invalid container format container:<name|id>")
	case c.Hostname != "":
		return errdefs.Invalid("conflicting options: hostname and the network mode")
	case len(hc.Links) > 0:
		return errdefs.Invalid("conflicting options: container type network can't be used with links. This would result in undefined behavior")
	case len(hc.DNS) > 0:
		return errdefs.Invalid("conflicting options: dns and the network mode")
	case len(hc.ExtraHosts) > 0:
		return errdefs.Invalid("conflicting options: custom host-to-IP mapping and the network mode")
	case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
		return errdefs.Invalid("conflicting options: port publishing and the container type network mode")
	case len(c.ExposedPorts) > 0:
		return errdefs.Invalid("conflicting options: port exposing and the container type network mode")
	case c.MacAddress != "": // the container-wide field of API 1.43 and before
		return errdefs.Invalid("conflicting options: mac-address and the network mode")
	}
	return nil
}

func hasBindings(pm nat.PortMap) bool {
	for _, b := range pm {
		if len(b) > 0 {
			return true
		}
	}
	return false
}

// exposedPorts checks "80/tcp" keys and returns them sorted.
func exposedPorts(ps nat.PortSet) ([]string, error) {
	out := make([]string, 0, len(ps))
	for p := range ps {
		proto, port := nat.SplitProtoPort(string(p))
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, errdefs.Invalid("invalid exposed port %q: want PORT/PROTO with PROTO tcp, udp or sctp", string(p))
		}
		out = append(out, strconv.FormatUint(n, 10)+"/"+proto)
	}
	slices.Sort(out)
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func checkDNS(servers []string) error {
	for _, s := range servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return errdefs.Invalid("invalid DNS server address %q: want an IP address", s)
		}
	}
	return nil
}

// maxHostnameLen is Linux's HOST_NAME_MAX, the longest hostname a
// container's UTS namespace takes.
const maxHostnameLen = 64

// noLineBreaks refuses a line break or NUL in the values berth writes as
// lines of the container's /etc/hosts, /etc/resolv.conf and /etc/hostname:
// one would write lines of its own there (a nameserver, say). moby takes
// them as they are; the docker CLI cannot send them, so nothing it sends
// is refused.
func noLineBreaks(c *ctypes.Config, hc *ctypes.HostConfig) error {
	fields := []struct {
		name   string
		values []string
	}{
		{"hostname", []string{c.Hostname}}, {"domainname", []string{c.Domainname}},
		{"add-host", hc.ExtraHosts}, {"dns", hc.DNS}, {"dns-search", hc.DNSSearch}, {"dns-option", hc.DNSOptions},
		{"link", hc.Links},
	}
	for _, f := range fields {
		for _, v := range f.values {
			if strings.ContainsAny(v, "\n\r\x00") {
				return errdefs.Invalid("invalid %s %q: it must not contain a line break or NUL", f.name, v)
			}
		}
	}
	return nil
}

// checkExtraHosts applies moby's add-host rule: "name:IP" (split at the
// first colon so IPv6 works), IP may be the special "host-gateway".
func checkExtraHosts(hosts []string) error {
	for _, h := range hosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok || name == "" {
			return errdefs.Invalid("bad format for add-host: %q", h)
		}
		if ip == "host-gateway" {
			continue
		}
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		// moby's ValidateIPAddress (net.ParseIP) takes no zone.
		if a, err := netip.ParseAddr(ip); err != nil || a.Zone() != "" {
			return errdefs.Invalid("invalid IP address in add-host: %q", ip)
		}
	}
	return nil
}

// sharedNetnsEndpoints refuses endpoint settings for a container that
// shares another's network namespace: it joins no network. Docker ignores
// them silently; a user who asked for an address or an alias is told.
func sharedNetnsEndpoints(mode string, eps map[string]*nettypes.EndpointSettings) error {
	for name, es := range eps {
		switch {
		case name != mode:
			return errdefs.Invalid("container sharing network namespace with another container or host cannot be connected to any other network")
		case es == nil:
		case es.MacAddress != "":
			return errdefs.Invalid("conflicting options: mac-address and the network mode")
		case es.IPAMConfig != nil && (es.IPAMConfig.IPv4Address != "" || es.IPAMConfig.IPv6Address != "" || len(es.IPAMConfig.LinkLocalIPs) > 0):
			return errdefs.Invalid("user specified IP address is supported on user defined networks only")
		case len(es.Aliases) > 0:
			return errdefs.Invalid("network-scoped aliases are only supported for user-defined networks")
		}
	}
	return nil
}

// createNetworks resolves the network mode ("default" is "bridge", as in
// moby) and the per-network endpoint wishes. The mode's network is always
// among the returned networks, so the daemon has one list to join.
func createNetworks(c *ctypes.Config, hc *ctypes.HostConfig, nc *nettypes.NetworkingConfig, apiVersion string) (string, map[string]container.EndpointRequest, error) {
	mode := string(hc.NetworkMode)
	if c.NetworkDisabled {
		// moby's NetworkDisabled: a namespace of the container's own with
		// no network joined, whatever the mode says (it was ignored: the
		// container got the bridge). Sharing the host's or another
		// container's namespace would be a network, so it is refused.
		if hc.NetworkMode.IsHost() || hc.NetworkMode.IsContainer() {
			return "", nil, errdefs.Invalid("conflicting options: NetworkDisabled and network mode %s", mode)
		}
		return network.NameNone, map[string]container.EndpointRequest{network.NameNone: {}}, nil
	}
	if mode == "" || mode == nettypes.NetworkDefault {
		mode = network.NameBridge
	}
	var eps map[string]*nettypes.EndpointSettings
	if nc != nil {
		eps = maps.Clone(nc.EndpointsConfig)
	}
	if _, ok := container.SharedNetns(mode); ok {
		return mode, nil, sharedNetnsEndpoints(mode, eps)
	}
	if es, ok := eps[nettypes.NetworkDefault]; ok {
		delete(eps, nettypes.NetworkDefault)
		eps[network.NameBridge] = es
	}
	// Before 1.44 the MAC was container-wide and meant the mode's network;
	// later clients send it per endpoint but may still fill the old field.
	perEndpointMAC := !lessThan(apiVersion, "1.44")
	nets := make(map[string]container.EndpointRequest, len(eps)+1)
	for name, es := range eps {
		if name == "" {
			return "", nil, errdefs.Invalid("an endpoint config needs a network name")
		}
		mac := ""
		if name == mode {
			mac = c.MacAddress
			// moby's handleMACAddressBC: from 1.44 the container-wide MAC
			// may only repeat the main network's own (it was overridden
			// without a word).
			if perEndpointMAC && mac != "" && es != nil && es.MacAddress != "" && es.MacAddress != mac {
				return "", nil, errdefs.Invalid("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty")
			}
		}
		req, err := endpointRequest(es, mac, perEndpointMAC)
		if err != nil {
			return "", nil, errdefs.Invalid("invalid config for network %s: %w", name, err) // moby's validateNetworkingConfig
		}
		if lessThan(apiVersion, "1.48") {
			req.GwPriority = 0 // as moby's postContainersCreate: all were equal before
		}
		nets[name] = req
	}
	if _, ok := nets[mode]; !ok {
		req, err := endpointRequest(nil, c.MacAddress, perEndpointMAC)
		if err != nil {
			return "", nil, err
		}
		nets[mode] = req
	}
	return mode, nets, nil
}

// annotationsFor is a create's HostConfig.Annotations, which moby takes
// from API 1.43 and drops before.
func annotationsFor(apiVersion string, a map[string]string) map[string]string {
	if lessThan(apiVersion, "1.43") {
		return nil
	}
	return maps.Clone(a)
}
