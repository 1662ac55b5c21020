// Package container holds berth's model of a container — its configuration,
// state and network attachments — as the daemon records it, and the pure
// rules Docker applies to it: its limits (resources.go, checked in moby's
// words against the host's HostLimits), its confinement and namespace
// modes (security.go), its devices, capabilities, health checks, restart
// policy and log options. It owns no behaviour beyond those rules and
// small accessors; the daemon drives the life cycle, the runtime applies
// them.
package container

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Status values, as Docker prints them in State.Status.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusExited     = "exited"
	StatusRemoving   = "removing"
	StatusDead       = "dead"
	StatusRestarting = "restarting"
	StatusPaused     = "paused"
)

// Config is what the user asked for when creating the container.
type Config struct {
	Image      string   `json:"image"`   // as the user named it
	ImageID    string   `json:"imageId"` // sha256:…
	Cmd        []string `json:"cmd"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
	User       string   `json:"user,omitempty"`
	Hostname   string   `json:"hostname"`
	Domainname string   `json:"domainname,omitempty"`
	Tty        bool     `json:"tty,omitempty"`
	// ConsoleSize is HostConfig.ConsoleSize: the tty's height and width
	// at start (the CLI's terminal), zero when unknown.
	ConsoleSize [2]uint `json:"consoleSize,omitzero"`
	OpenStdin   bool    `json:"openStdin,omitempty"`
	// Volumes is Config.Volumes as inspect shows it: the paths the
	// request and the image's VOLUMEs declare (moby's merge of the two).
	Volumes []string `json:"volumes,omitempty"`
	// NetworkDisabled is Config.NetworkDisabled: the container joins no
	// network (its mode is "none").
	NetworkDisabled bool              `json:"networkDisabled,omitempty"`
	StdinOnce       bool              `json:"stdinOnce,omitempty"`
	Labels          map[string]string `json:"labels,omitempty"`
	// ExposedPorts are "80/tcp" style keys.
	ExposedPorts []string `json:"exposedPorts,omitempty"`
	// PortBindings are the ports to publish on the container's first
	// network, by "80/tcp" key (HostConfig.PortBindings).
	PortBindings map[string][]PortBinding `json:"portBindings,omitempty"`
	// PublishAllPorts publishes every exposed port on an ephemeral host port (-P).
	PublishAllPorts bool `json:"publishAllPorts,omitempty"`
	// NetworkMode is "bridge", "host", "none", a user network's name, or
	// "container:<id>" to share another container's network namespace
	// (SharedNetns).
	NetworkMode string `json:"networkMode"`
	AutoRemove  bool   `json:"autoRemove,omitempty"`
	// RestartPolicy says what happens when the process exits (--restart).
	RestartPolicy RestartPolicy `json:"restartPolicy,omitzero"`
	// Networks are the networks to join at start, keyed by network name or ID.
	Networks map[string]EndpointRequest `json:"networks,omitempty"`
	// Links are the legacy links (HostConfig.Links) of a container not on
	// a user-defined network, as Docker keeps only those (links.go).
	Links []Link `json:"links,omitempty"`
	// Dns, DnsSearch, DnsOptions and ExtraHosts mirror HostConfig.
	DNS        []string `json:"dns,omitempty"`
	DNSSearch  []string `json:"dnsSearch,omitempty"`
	DNSOptions []string `json:"dnsOptions,omitempty"`
	ExtraHosts []string `json:"extraHosts,omitempty"`
	// Sysctls, ReadonlyRootfs, CapAdd and CapDrop mirror HostConfig
	// (--sysctl, --read-only, --cap-add, --cap-drop); the capabilities as
	// the user gave them (checked; NormalizeCapabilities at each start).
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Annotations are --annotation's, for the OCI spec (runc's) as they
	// are, and inspect's HostConfig.Annotations.
	Annotations map[string]string `json:"annotations,omitempty"`
	// CgroupParent is --cgroup-parent as given (checked:
	// CheckCgroupParent); "" takes the daemon's.
	CgroupParent string `json:"cgroupParent,omitempty"`
	// Mounts are the host paths bound in (-v /host:/path, --mount
	// type=bind) and the tmpfs file systems (--tmpfs, --mount
	// type=tmpfs); Binds and Tmpfs are -v's and --tmpfs's values as
	// given, which inspect shows, and MountSpecs --mount's (the API's
	// JSON, kept as it came). VolumesFrom is --volumes-from's values as
	// given ("container[:mode]"); the create copies those containers'
	// mounts into Mounts, once (Mount.From).
	Mounts         []Mount           `json:"mounts,omitempty"`
	Binds          []string          `json:"binds,omitempty"`
	VolumesFrom    []string          `json:"volumesFrom,omitempty"`
	Tmpfs          map[string]string `json:"tmpfs,omitempty"`
	MountSpecs     json.RawMessage   `json:"mountSpecs,omitempty"`
	ReadonlyRootfs bool              `json:"readonlyRootfs,omitempty"`
	// Init runs the command under an init process (--init, Compose's
	// init: true), which reaps zombies and forwards signals, as moby's
	// docker-init; nil leaves it to the daemon's --init.
	Init    *bool    `json:"init,omitempty"`
	CapAdd  []string `json:"capAdd,omitempty"`
	CapDrop []string `json:"capDrop,omitempty"`
	// LogConfig is the json-file log's options (max-size, max-file).
	LogConfig LogConfig `json:"logConfig,omitzero"`
	// Shell is Config.Shell: what a CMD-SHELL health check runs through
	// (/bin/sh -c when empty), as moby's getShell.
	Shell []string `json:"shell,omitempty"`
	// StopSignal and StopTimeout: SIGTERM and 10 s when empty.
	StopSignal  string `json:"stopSignal,omitempty"`
	StopTimeout *int   `json:"stopTimeout,omitempty"`
	// Healthcheck is the health check (--health-cmd …), nil for none.
	Healthcheck *HealthConfig `json:"healthcheck,omitempty"`
	// Resources are the container's limits (--memory, --cpus, --ulimit …).
	Resources Resources `json:"resources,omitzero"`
	// Security is --privileged and --security-opt.
	Security Security `json:"security,omitzero"`
	// GroupAdd are more groups for the container's processes
	// (--group-add), names or IDs, resolved at each start.
	GroupAdd []string `json:"groupAdd,omitempty"`
	// Devices are the host devices made in the container (--device);
	// DeviceCgroupRules more device cgroup permissions
	// (--device-cgroup-rule), checked.
	Devices           []DeviceMapping `json:"devices,omitempty"`
	DeviceCgroupRules []string        `json:"deviceCgroupRules,omitempty"`
	// Namespaces are --pid, --ipc, --uts and --cgroupns.
	Namespaces Namespaces `json:"namespaces,omitzero"`
}

// PortBinding is where one container port is published on the host.
type PortBinding struct {
	// HostIP is the host address; invalid means the network's default.
	HostIP netip.Addr `json:"hostIp,omitzero"`
	// HostPort is "" (an ephemeral port), "8080", or a range "8000-9000"
	// to take the first free port of, as the user gave it.
	HostPort string `json:"hostPort,omitempty"`
}

// EndpointRequest is a user's per-network wish: a static address, a MAC, aliases.
type EndpointRequest struct {
	IPv4Address netip.Addr `json:"ipv4Address,omitzero"`
	// IPv6Address is a static IPv6 address (--ip6).
	IPv6Address netip.Addr `json:"ipv6Address,omitzero"`
	MacAddress  string     `json:"macAddress,omitempty"`
	Aliases     []string   `json:"aliases,omitempty"`
	// LinkLocalIPs are extra link-local addresses of the container's
	// interface (--link-local-ip), as given.
	LinkLocalIPs []netip.Addr `json:"linkLocalIPs,omitempty"`
	// Links are "name[:alias]", checked (network.JoinRequest.Links).
	Links []string `json:"links,omitempty"`
	// GwPriority ranks the network as the container's gateway
	// (network.JoinRequest.GwPriority).
	GwPriority int `json:"gwPriority,omitempty"`
	// DriverOpts are the endpoint's driver options (--driver-opt), kept
	// and shown as Docker shows them; the interface's name and sysctls
	// (network.OptEndpointIfname, OptEndpointSysctls) are applied at
	// join, others mean nothing to the bridge driver.
	DriverOpts map[string]string `json:"driverOpts,omitempty"`
}

// State is the container's run state.
type State struct {
	Status string `json:"status"`
	Pid    int    `json:"pid,omitempty"`
	// PidStart is the init process's start time in clock ticks since boot
	// (/proc/PID/stat field 22), so a restarted daemon re-adopts the right
	// process and not a later one that reused the PID.
	PidStart   uint64    `json:"pidStart,omitempty"`
	ExitCode   int       `json:"exitCode"`
	Error      string    `json:"error,omitempty"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// SandboxID is the network sandbox of the running container ("" when stopped).
	SandboxID string `json:"sandboxId,omitempty"`
	// SandboxKey is the path of the sandbox's network namespace ("" when stopped).
	SandboxKey string `json:"sandboxKey,omitempty"`
	// JoinedNetns is, while a container that shares another's network
	// namespace runs, the path of that namespace ("" is the daemon's own:
	// the other container was on the host network). It has no sandbox.
	JoinedNetns string `json:"joinedNetns,omitempty"`
	// Health is the health check's state, nil without one. It is kept in
	// memory while the container runs (as moby keeps it) and recorded
	// with the container's next change.
	Health *Health `json:"health,omitempty"`
}

// Container is one container as the daemon records it.
type Container struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"` // without the leading "/"
	Created time.Time `json:"created"`
	Config  Config    `json:"config"`
	State   State     `json:"state"`
	// Paths of the files berth writes for the container.
	ResolvConfPath string `json:"resolvConfPath,omitempty"`
	HostnamePath   string `json:"hostnamePath,omitempty"`
	HostsPath      string `json:"hostsPath,omitempty"`
	LogPath        string `json:"logPath,omitempty"`
	// RestartCount counts the restarts of the policy since the user last
	// started the container.
	RestartCount int `json:"restartCount,omitempty"`
	// ManuallyStopped is set when the user stops or kills the container,
	// and cleared when the user starts it (unless-stopped's memory).
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
}

// NetnsPath is the network namespace the running container's processes
// are in: its sandbox's, or the one it joined; "" is the daemon's own (the
// host network).
func (c *Container) NetnsPath() string {
	if _, ok := SharedNetns(c.Config.NetworkMode); ok {
		return c.State.JoinedNetns
	}
	return c.State.SandboxKey
}

// sharedPrefix starts the NetworkMode of a container that shares another
// container's network namespace.
const sharedPrefix = "container:"

// SharedNetns reports whether a NetworkMode shares another container's
// network namespace ("container:<name or id>"), and names that container.
func SharedNetns(mode string) (ref string, ok bool) { return strings.CutPrefix(mode, sharedPrefix) }

// SharedNetnsMode is the NetworkMode sharing container id's network namespace.
func SharedNetnsMode(id string) string { return sharedPrefix + id }

// Running reports whether the container's process is alive as far as the record knows.
func (c *Container) Running() bool {
	return c.State.Status == StatusRunning || c.State.Status == StatusPaused
}

// Paused reports whether the container's processes are frozen (docker
// pause); a paused container is also Running, as in moby.
func (c *Container) Paused() bool { return c.State.Status == StatusPaused }

// ShortID is the 12-character form docker prints.
func (c *Container) ShortID() string {
	if len(c.ID) < 12 {
		return c.ID
	}
	return c.ID[:12]
}

// Status returns State.Status, "created" for a zero record.
func (c *Container) Status() string {
	if c.State.Status == "" {
		return StatusCreated
	}
	return c.State.Status
}

// MergeEnv overlays over on base, key by key, keeping base's order, as
// moby's ReplaceOrAppendEnvValues: a container's variables over the
// defaults and the links', an exec's over the container's. A bare KEY in
// over (what `docker run -e KEY` sends when KEY is not set where the
// client runs) removes KEY from base and is not passed on itself.
func MergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		key, _, set := strings.Cut(kv, "=")
		i := slices.IndexFunc(out, func(e string) bool {
			k, _, _ := strings.Cut(e, "=")
			return k == key
		})
		switch {
		case !set && i >= 0:
			out = slices.Delete(out, i, i+1)
		case !set:
		case i >= 0:
			out[i] = kv
		default:
			out = append(out, kv)
		}
	}
	return out
}

// Mount is one of a container's mounts.
type Mount struct {
	Type string `json:"type"` // MountBind, MountVolume or MountTmpfs
	// Source is a bind's host path, or a volume's name ("" at create for
	// an anonymous one: the daemon names it).
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"readOnly,omitempty"`
	// Propagation is a bind's ("rprivate" unless given).
	Propagation string `json:"propagation,omitempty"`
	// Mode is what -v gave after the paths ("ro", "rw,z"), for inspect.
	Mode string `json:"mode,omitempty"`
	// Options are a tmpfs's mount options (size=…, mode=…, exec…).
	Options []string `json:"options,omitempty"`
	// CreateSource makes a missing host directory at start, as -v does
	// (--mount refuses a missing source at create).
	CreateSource bool `json:"createSource,omitempty"`
	// Flag marks a --tmpfs mount, which inspect's Mounts do not list
	// (moby lists mount points only).
	Flag bool `json:"flag,omitempty"`
	// NoCopy keeps a new volume empty (nocopy); otherwise its first mount
	// copies in what the image has at Destination, as Docker's.
	NoCopy bool `json:"noCopy,omitempty"`
	// VolumeLabels are the labels a --mount type=volume gives the volume
	// it makes; Mountpoint is the volume's directory on the host.
	VolumeLabels map[string]string `json:"volumeLabels,omitempty"`
	Mountpoint   string            `json:"mountpoint,omitempty"`
	// Anonymous: the container asked for a volume without a name, so
	// docker rm -v and --rm remove it (never one it named). A mount copied
	// by --volumes-from keeps the flag of the one it copies, as moby's
	// copy keeps its Spec.
	Anonymous bool `json:"anonymous,omitempty"`
	// From is the ID of the container this mount was copied from by
	// --volumes-from: its volume is that container's, never made or
	// filled by this container's create.
	From string `json:"from,omitempty"`
}

// VolumesFromRef splits a --volumes-from value the API has checked
// ("container[:mode]") into the container's name or ID and whether the
// mode makes the copied mounts read-only, as moby's parser's ReadWrite.
func VolumesFromRef(spec string) (ref string, readOnly bool) {
	ref, mode, _ := strings.Cut(spec, ":")
	return ref, slices.Contains(strings.Split(mode, ","), "ro")
}

// The mount types berth makes.
const (
	MountBind   = "bind"
	MountVolume = "volume"
	MountTmpfs  = "tmpfs"
)
