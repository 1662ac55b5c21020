package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	ctypes "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	nettypes "github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/storage"
	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/network"
)

// graphDriver names the storage berth uses: an overlayfs over the image tree.
const graphDriver = "overlayfs"

// inspectModern is the container inspect shape of API 1.52 and later, whose
// NetworkSettings dropped the legacy top-level address fields.
type inspectModern struct {
	ctypes.InspectResponse
	NetworkSettings *networkSettingsModern
}

type networkSettingsModern struct {
	SandboxID  string
	SandboxKey string
	Ports      nat.PortMap
	Networks   map[string]*nettypes.EndpointSettings
}

// livePorts are the exposed ports inspect and ps show: none unless the
// container runs, as moby's NetworkSettings.Ports is set when its
// networking is and cleared when it stops.
func livePorts(c *container.Container, atts []network.Attachment) []string {
	if !c.Running() {
		return nil
	}
	// moby's NetworkSettings.Ports come from the bridge driver's
	// endpoint info alone: the host and null drivers (and a container
	// in another's namespace) report no ports, exposed or not.
	for _, a := range atts {
		if a.Network != nil && a.Network.Driver == network.DriverBridge {
			return c.Config.ExposedPorts
		}
	}
	return nil
}

// containerInspect is Docker's inspect of c. Clients below API 1.52 get the
// legacy NetworkSettings.IPAddress & co., filled only from the network
// named "bridge" as Docker does; later clients do not get them at all.
//
// sizes, when not nil, are inspect -s's SizeRw and SizeRootFs.
func containerInspect(c *container.Container, atts []network.Attachment, links LinkNames, execIDs []string, apiVersion string, sizes *[2]int64) any {
	nets := endpointSettings(c, atts)
	ns := &ctypes.NetworkSettings{
		NetworkSettingsBase: ctypes.NetworkSettingsBase{
			SandboxID:  c.State.SandboxID,
			SandboxKey: c.State.SandboxKey,
			Ports:      portMap(livePorts(c, atts), atts),
		},
		DefaultNetworkSettings: defaultNetworkSettings(nets),
		Networks:               nets,
	}
	if lessThan(apiVersion, "1.45") {
		// moby's getContainersByName for older clients: on a user-defined
		// network the aliases include the short ID and the hostname.
		for name, es := range nets {
			if ctypes.NetworkMode(name).IsUserDefined() {
				es.Aliases = dedup(append(slices.Clone(es.Aliases), c.ShortID(), c.Config.Hostname))
			}
		}
	}
	path, args := command(c.Config)
	cfg := wireConfig(c.Config)
	// moby's getInspectData, at every version (clients of API < 1.44 read
	// it): the MAC asked for on the network of the network mode.
	if mode := ctypes.NetworkMode(c.Config.NetworkMode); mode.IsBridge() || mode.IsUserDefined() {
		cfg.MacAddress = c.Config.Networks[c.Config.NetworkMode].MacAddress //nolint:staticcheck // the deprecated field is the point
	}
	resp := ctypes.InspectResponse{
		ContainerJSONBase: &ctypes.ContainerJSONBase{
			ID:             c.ID,
			Created:        c.Created.UTC().Format(time.RFC3339Nano),
			Path:           path,
			Args:           args,
			State:          containerState(c.Status(), c.State),
			Image:          c.Config.ImageID,
			ResolvConfPath: c.ResolvConfPath,
			HostnamePath:   c.HostnamePath,
			HostsPath:      c.HostsPath,
			LogPath:        c.LogPath,
			RestartCount:   c.RestartCount,
			Name:           "/" + c.Name,
			Driver:         graphDriver,
			Platform:       "linux",
			HostConfig:     hostConfig(c.Config, links.Links),
			GraphDriver:    storage.DriverData{Name: graphDriver, Data: map[string]string{}},
			ExecIDs:        execIDs, // null without any, as moby's GetExecIDs
		},
		Mounts:          mountPoints(c.Config),
		Config:          cfg,
		NetworkSettings: ns,
	}
	if sizes != nil {
		resp.SizeRw, resp.SizeRootFs = &sizes[0], &sizes[1]
	}
	if lessThan(apiVersion, "1.52") {
		return resp
	}
	return inspectModern{
		InspectResponse: resp,
		NetworkSettings: &networkSettingsModern{
			SandboxID: ns.SandboxID, SandboxKey: ns.SandboxKey, Ports: ns.Ports, Networks: nets,
		},
	}
}

func defaultNetworkSettings(nets map[string]*nettypes.EndpointSettings) ctypes.DefaultNetworkSettings {
	es, ok := nets[network.NameBridge]
	if !ok || es == nil {
		return ctypes.DefaultNetworkSettings{}
	}
	return ctypes.DefaultNetworkSettings{
		EndpointID:  es.EndpointID,
		Gateway:     es.Gateway,
		IPAddress:   es.IPAddress,
		IPPrefixLen: es.IPPrefixLen,
		MacAddress:  es.MacAddress,

		GlobalIPv6Address:   es.GlobalIPv6Address,
		GlobalIPv6PrefixLen: es.GlobalIPv6PrefixLen,
		IPv6Gateway:         es.IPv6Gateway,
	}
}

// command splits entrypoint + cmd into Docker's Path and Args.
func command(cfg container.Config) (string, []string) {
	argv := append(slices.Clone(cfg.Entrypoint), cfg.Cmd...)
	if len(argv) == 0 {
		return "", []string{}
	}
	return argv[0], append([]string{}, argv[1:]...)
}

func containerState(status string, s container.State) *ctypes.State {
	return &ctypes.State{
		Status:     ctypes.ContainerState(status),
		Running:    status == container.StatusRunning || status == container.StatusPaused || status == container.StatusRestarting, // as moby's SetRestarting and Paused
		Paused:     status == container.StatusPaused,
		Restarting: status == container.StatusRestarting,
		OOMKilled:  s.OOMKilled,
		Dead:       status == container.StatusDead,
		Pid:        s.Pid,
		ExitCode:   s.ExitCode,
		Error:      s.Error,
		StartedAt:  s.StartedAt.UTC().Format(time.RFC3339Nano),
		FinishedAt: s.FinishedAt.UTC().Format(time.RFC3339Nano),
		Health:     healthView(s.Health),
	}
}

// healthView is State.Health as moby shows it, nil without a check.
func healthView(h *container.Health) *ctypes.Health {
	if h == nil {
		return nil
	}
	out := &ctypes.Health{Status: ctypes.HealthStatus(h.Status), FailingStreak: h.FailingStreak, Log: []*ctypes.HealthcheckResult{}}
	for _, r := range h.Log {
		out.Log = append(out.Log, &ctypes.HealthcheckResult{Start: r.Start, End: r.End, ExitCode: r.ExitCode, Output: r.Output})
	}
	return out
}

// healthConfigView is Config.Healthcheck, nil without one.
func healthConfigView(hc *container.HealthConfig) *ctypes.HealthConfig {
	if hc == nil {
		return nil
	}
	return &ctypes.HealthConfig{Test: hc.Test, Interval: hc.Interval, Timeout: hc.Timeout,
		StartPeriod: hc.StartPeriod, StartInterval: hc.StartInterval, Retries: hc.Retries}
}

// healthStatus is what ps's health filter compares: "none" without a check.
func healthStatus(c *container.Container) string {
	if h := c.State.Health; h != nil && c.Config.Healthcheck.Probe(nil) != nil {
		return h.Status
	}
	return string(ctypes.NoHealthcheck)
}

// restartPolicy is HostConfig.RestartPolicy; "no" when none was given, as moby shows it.
func restartPolicy(p container.RestartPolicy) ctypes.RestartPolicy {
	if p.Name == "" {
		return ctypes.RestartPolicy{Name: ctypes.RestartPolicyDisabled}
	}
	return ctypes.RestartPolicy{Name: ctypes.RestartPolicyMode(p.Name), MaximumRetryCount: p.MaximumRetryCount}
}

func hostConfig(cfg container.Config, links []string) *ctypes.HostConfig {
	hc := &ctypes.HostConfig{
		Links:           links,
		NetworkMode:     ctypes.NetworkMode(cfg.NetworkMode),
		PortBindings:    hostPortBindings(cfg.PortBindings),
		PublishAllPorts: cfg.PublishAllPorts,
		RestartPolicy:   restartPolicy(cfg.RestartPolicy),
		AutoRemove:      cfg.AutoRemove,
		ConsoleSize:     cfg.ConsoleSize,
		LogConfig:       logConfigView(cfg.LogConfig),
		DNS:             orNone(cfg.DNS),
		DNSOptions:      orNone(cfg.DNSOptions),
		DNSSearch:       orNone(cfg.DNSSearch),
		ExtraHosts:      cfg.ExtraHosts,
		ReadonlyRootfs:  cfg.ReadonlyRootfs,
		Init:            cfg.Init,
		CapAdd:          cfg.CapAdd,
		CapDrop:         cfg.CapDrop,
		Sysctls:         cfg.Sysctls,
		Binds:           cfg.Binds,
		VolumesFrom:     cfg.VolumesFrom,
		Annotations:     cfg.Annotations,
		Tmpfs:           cfg.Tmpfs,
		Mounts:          mountSpecs(cfg.MountSpecs),
	}
	resourcesView(hc, cfg.Resources)
	hc.CgroupParent = cfg.CgroupParent
	securityView(hc, cfg.Security)
	hc.GroupAdd = cfg.GroupAdd
	devicesView(hc, cfg.Devices, cfg.DeviceCgroupRules)
	ns := cfg.Namespaces
	hc.PidMode, hc.IpcMode, hc.UTSMode = ctypes.PidMode(ns.PidMode), ctypes.IpcMode(ns.IpcMode), ctypes.UTSMode(ns.UTSMode)
	hc.CgroupnsMode = ctypes.CgroupnsMode(ns.CgroupnsMode)
	return hc
}

// mountSpecs is HostConfig.Mounts as it was given (--mount).
func mountSpecs(raw json.RawMessage) []mount.Mount {
	var out []mount.Mount
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &out) // written from the same type at create
	}
	return out
}

// mountPoints are a container's mounts as inspect and ps list them
// (moby's MountPoints): the binds and the --mount tmpfs ones, not
// --tmpfs's, sorted by destination.
func mountPoints(cfg container.Config) []ctypes.MountPoint {
	out := []ctypes.MountPoint{}
	for _, m := range cfg.Mounts {
		if m.Flag {
			continue
		}
		mp := ctypes.MountPoint{Type: mount.Type(m.Type), Source: m.Source, Destination: m.Destination,
			Mode: m.Mode, RW: !m.ReadOnly, Propagation: mount.Propagation(m.Propagation)}
		if m.Type == container.MountVolume {
			mp.Name, mp.Source, mp.Driver = m.Source, m.Mountpoint, "local"
		}
		out = append(out, mp)
	}
	slices.SortFunc(out, func(a, b ctypes.MountPoint) int { return strings.Compare(a.Destination, b.Destination) })
	return out
}

// logConfigView is HostConfig.LogConfig as Docker shows it: the driver
// and its options, {} when there are none.
func logConfigView(lc container.LogConfig) ctypes.LogConfig {
	out := ctypes.LogConfig{Type: lc.Driver(), Config: map[string]string{}}
	maps.Copy(out.Config, lc.Config)
	return out
}

func orNone(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func wireConfig(cfg container.Config) *ctypes.Config {
	return &ctypes.Config{
		Hostname:        cfg.Hostname,
		Domainname:      cfg.Domainname,
		User:            cfg.User,
		ExposedPorts:    portSet(cfg.ExposedPorts),
		Tty:             cfg.Tty,
		NetworkDisabled: cfg.NetworkDisabled,
		Volumes:         volumeSet(cfg.Volumes),
		OpenStdin:       cfg.OpenStdin,
		StdinOnce:       cfg.StdinOnce,
		Env:             cfg.Env,
		Cmd:             cfg.Cmd,
		Image:           cfg.Image,
		WorkingDir:      cfg.WorkingDir,
		Entrypoint:      cfg.Entrypoint,
		Labels:          orEmpty(cfg.Labels),
		Shell:           cfg.Shell,
		StopSignal:      cfg.StopSignal,
		StopTimeout:     cfg.StopTimeout,
		Healthcheck:     healthConfigView(cfg.Healthcheck),
	}
}

// endpointSettings are the container's networks keyed by name: what it
// asked for, overlaid with what it got from its attachments.
func endpointSettings(c *container.Container, atts []network.Attachment) map[string]*nettypes.EndpointSettings {
	out := map[string]*nettypes.EndpointSettings{}
	for name, req := range c.Config.Networks {
		out[name] = requestedEndpoint(req)
	}
	for _, a := range atts {
		if a.Network == nil {
			continue
		}
		es := requestedEndpoint(c.Config.Networks[a.Network.Name])
		if req, ok := c.Config.Networks[a.Network.ID]; ok {
			delete(out, a.Network.ID) // asked for by ID, shown by name
			es = requestedEndpoint(req)
		}
		es.NetworkID = a.Network.ID
		if ep := a.Endpoint; ep != nil {
			fillEndpoint(es, c, a.Network, ep)
		}
		out[a.Network.Name] = es
	}
	return out
}

func requestedEndpoint(req container.EndpointRequest) *nettypes.EndpointSettings {
	es := &nettypes.EndpointSettings{Aliases: req.Aliases, Links: req.Links, MacAddress: req.MacAddress, GwPriority: req.GwPriority, DriverOpts: req.DriverOpts}
	if req.IPv4Address.IsValid() || req.IPv6Address.IsValid() || len(req.LinkLocalIPs) > 0 {
		es.IPAMConfig = &nettypes.EndpointIPAMConfig{IPv4Address: addrString(req.IPv4Address), IPv6Address: addrString(req.IPv6Address)}
		for _, a := range req.LinkLocalIPs {
			es.IPAMConfig.LinkLocalIPs = append(es.IPAMConfig.LinkLocalIPs, a.String())
		}
	}
	return es
}

func fillEndpoint(es *nettypes.EndpointSettings, c *container.Container, n *network.Network, ep *network.Endpoint) {
	es.EndpointID = ep.ID
	es.MacAddress = ep.MAC.String()
	es.Gateway = addrString(ep.Gateway)
	if ep.Address.IsValid() {
		es.IPAddress = ep.Address.Addr().String()
		es.IPPrefixLen = ep.Address.Bits()
	}
	if ep.Address6.IsValid() {
		es.GlobalIPv6Address = ep.Address6.Addr().String()
		es.GlobalIPv6PrefixLen = ep.Address6.Bits()
	}
	es.IPv6Gateway = addrString(ep.Gateway6)
	if len(ep.Aliases) > 0 {
		es.Aliases = ep.Aliases
	}
	if len(ep.Links) > 0 {
		es.Links = ep.Links
	}
	if (ep.StaticIP || ep.StaticIP6) && es.IPAMConfig == nil {
		es.IPAMConfig = &nettypes.EndpointIPAMConfig{}
		if ep.StaticIP {
			es.IPAMConfig.IPv4Address = prefixAddrString(ep.Address)
		}
		if ep.StaticIP6 {
			es.IPAMConfig.IPv6Address = prefixAddrString(ep.Address6)
		}
	}
	// Only user-defined bridge networks resolve names, so only they
	// carry DNSNames (moby's buildEndpointDNSNames).
	if !n.Predefined && n.Driver == network.DriverBridge {
		es.DNSNames = dnsNames(c, es.Aliases)
	}
}

func dnsNames(c *container.Container, aliases []string) []string {
	names := append([]string{c.Name}, aliases...)
	names = append(names, c.ShortID())
	if c.Config.Hostname != "" {
		names = append(names, c.Config.Hostname)
	}
	var out []string
	for _, n := range names {
		if n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// containerSummary is one row of docker ps.
func containerSummary(c *container.Container, atts []network.Attachment, links LinkNames, now time.Time) ctypes.Summary {
	path, args := command(c.Config)
	s := ctypes.Summary{
		ID:              c.ID,
		Names:           append([]string{"/" + c.Name}, links.Names...),
		Image:           c.Config.Image,
		ImageID:         c.Config.ImageID,
		Command:         commandLine(path, args),
		Created:         c.Created.Unix(),
		Ports:           summaryPorts(livePorts(c, atts), atts),
		Labels:          orEmpty(c.Config.Labels),
		State:           ctypes.ContainerState(c.Status()),
		Status:          statusText(c.Status(), c.State, now),
		NetworkSettings: &ctypes.NetworkSettingsSummary{Networks: endpointSettings(c, atts)},
		Mounts:          mountPoints(c.Config),
	}
	s.HostConfig.NetworkMode = c.Config.NetworkMode
	return s
}

// commandLine is docker ps's COMMAND: arguments with spaces in single
// quotes, as moby shows them.
func commandLine(path string, args []string) string {
	parts := []string{path}
	for _, a := range args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// statusText is docker ps's STATUS column ("Up 5 seconds", "Exited (0) 3 minutes ago").
func statusText(status string, s container.State, now time.Time) string {
	switch status {
	case container.StatusRunning:
		if s.Health != nil {
			return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + " (" + s.Health.PsNote() + ")"
		}
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt))
	case container.StatusPaused:
		return "Up " + units.HumanDuration(now.Sub(s.StartedAt)) + " (Paused)"
	case container.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case container.StatusExited:
		if s.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", s.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, units.HumanDuration(now.Sub(s.FinishedAt)))
	case container.StatusRemoving:
		return "Removal In Progress"
	case container.StatusDead:
		return "Dead"
	case container.StatusCreated:
		return "Created"
	default:
		return status
	}
}

// volumeSet is Config.Volumes as moby shows it: null when none.
func volumeSet(paths []string) map[string]struct{} {
	if len(paths) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(paths))
	for _, p := range paths {
		m[p] = struct{}{}
	}
	return m
}

// dedup drops the repeats of s, keeping the first of each, and the empty
// strings (moby's sliceutil.Dedup on aliases, where a hostname may be "").
func dedup(s []string) []string {
	seen := map[string]bool{}
	return slices.DeleteFunc(s, func(v string) bool {
		if v == "" || seen[v] {
			return true
		}
		seen[v] = true
		return false
	})
}
