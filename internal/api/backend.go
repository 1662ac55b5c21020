package api

import (
	"context"
	"io"
	"time"

	"github.com/berth-net/berth/internal/build"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/events"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime/image"
)

// LinkNames are a container's legacy links (docker run --link) as Docker
// shows them: its own in HostConfig.Links ("/child:/parent/alias") and
// the names it has as a child, beside its own, in docker ps ("/parent/alias").
type LinkNames struct {
	Links []string
	Names []string
}

// Backend is everything the API server needs from the daemon, in berth's
// own types. The server translates between these and Docker's wire types;
// errors carry an errdefs kind that picks the HTTP status.
//
// A ref is what the user typed: a full ID, a unique ID prefix, or a name.
type Backend interface {
	SystemInfo(ctx context.Context) (SystemInfo, error)
	// NetworkCreateDefaults are the options a new network of driver gets
	// unless its create gives them (dockerd's default-network-opts).
	NetworkCreateDefaults(driver string) map[string]string
	// Events returns the events at or after since (none when since is
	// zero) and a channel of those that follow, until cancel.
	Events(since time.Time) (past []events.Event, next <-chan events.Event, cancel func())

	Networks(ctx context.Context) ([]*network.Network, error)
	Network(ctx context.Context, ref string) (*network.Network, error)
	// NetworkAttachments lists the endpoints on a network with their containers' names.
	NetworkEndpoints(ctx context.Context, networkID string) ([]*network.Endpoint, error)
	CreateNetwork(ctx context.Context, req network.CreateRequest) (*network.Network, error)
	RemoveNetwork(ctx context.Context, ref string) error
	ConnectNetwork(ctx context.Context, netRef, ctrRef string, req container.EndpointRequest) error
	DisconnectNetwork(ctx context.Context, netRef, ctrRef string, force bool) error
	// PruneNetworks removes unused user networks whose labels match every
	// "key" or "key=value" in labels; it returns the removed names.
	PruneNetworks(ctx context.Context, f network.PruneFilter) ([]string, error)
	// Explain says what berth's firewall does to a new connection
	// between two ends, and which rule decides it (berth explain).
	Explain(ctx context.Context, req network.ExplainRequest) (network.Explanation, error)

	// CreateContainer records a container; the warnings are for limits
	// the host cannot apply, which it dropped (moby's create warnings).
	CreateContainer(ctx context.Context, name string, cfg container.Config) (*container.Container, []string, error)
	Containers(ctx context.Context) ([]*container.Container, error)
	Container(ctx context.Context, ref string) (*container.Container, error)
	// ContainerAttachments lists the networks the container is on, in attach order.
	ContainerAttachments(ctx context.Context, id string) ([]network.Attachment, error)
	// ListedAttachments are the networks of a container as Containers
	// listed it, read from that copy (a listing never waits on one
	// container's operation).
	ListedAttachments(ctx context.Context, c *container.Container) []network.Attachment
	StartContainer(ctx context.Context, ref string) error
	// StopContainer sends the stop signal, then SIGKILL after timeout seconds
	// (nil: the container's own or 10 s). Stopping a stopped one is NotModified.
	StopContainer(ctx context.Context, ref string, timeout *int, signal string) error
	KillContainer(ctx context.Context, ref string, signal string) error
	// RestartContainer stops the container if it runs, starts it, and
	// logs a restart event.
	RestartContainer(ctx context.Context, ref string, timeout *int, signal string) error
	// RemoveContainer removes a container; volumes removes its anonymous
	// volumes too (docker rm -v).
	RemoveContainer(ctx context.Context, ref string, force, volumes bool) error
	// PruneContainers removes the containers that are not running (nor
	// restarting) and that match says to, and returns their IDs and the
	// bytes their writable layers held.
	PruneContainers(ctx context.Context, match func(*container.Container) bool) ([]string, int64, error)
	// ContainerLinks are the container's legacy links as inspect and ps
	// show them.
	ContainerLinks(ctx context.Context, id string) LinkNames
	// ContainerExecIDs are the container's execs made and not ended
	// (inspect's ExecIDs), sorted; nil without any.
	ContainerExecIDs(ctx context.Context, id string) []string
	// RemoveLink removes the legacy link named "/parent/alias" (docker rm
	// --link), not a container.
	RemoveLink(ctx context.Context, name string) error
	// RenameContainer gives the container a new name (without the "/").
	RenameContainer(ctx context.Context, ref, name string) error
	// PauseContainer freezes a running container; UnpauseContainer thaws it.
	PauseContainer(ctx context.Context, ref string) error
	UnpauseContainer(ctx context.Context, ref string) error
	// UpdateContainer is docker update: the restart policy (one without a
	// name changes nothing) and the limits (container.Resources.Update),
	// applied at once to a running container; the warnings are moby's
	// for limits the host cannot apply.
	UpdateContainer(ctx context.Context, ref string, u container.ContainerUpdate) ([]string, error)
	// TopContainer lists a running container's processes with ps and
	// psArgs ("" is -ef).
	TopContainer(ctx context.Context, ref, psArgs string) (container.Top, error)
	// ContainerChanges is what the container changed in its root file
	// system against its image (docker diff).
	ContainerChanges(ctx context.Context, ref string) ([]container.Change, error)
	// ContainerStatPath, ContainerArchivePath and ContainerExtractToDir
	// are docker cp's: what is at a path in the container, a tar stream
	// of it (the container's files stay open until it is closed), and a
	// tar stream unpacked into a directory.
	ContainerStatPath(ctx context.Context, ref, path string) (container.PathStat, error)
	ContainerArchivePath(ctx context.Context, ref, path string) (io.ReadCloser, container.PathStat, error)
	ContainerExtractToDir(ctx context.Context, ref, path string, copyUIDGID, noOverwriteDirNonDir bool, content io.Reader) error
	// ContainerExport is docker export: a tar stream of the container's
	// root file system.
	ContainerExport(ctx context.Context, ref string) (io.ReadCloser, error)
	// ContainerSize is what the container wrote to its root file system,
	// and that plus its image's size (docker ps -s, inspect -s).
	ContainerSize(ctx context.Context, ref string) (rw, rootfs int64, err error)
	// ContainerStats samples the container's resource use and emits
	// frames as moby's ContainerStats: one (oneShot, or !stream after two
	// samples) or one a second until ctx ends (stream).
	ContainerStats(ctx context.Context, ref string, stream, oneShot bool, emit func(StatsFrame) error) error
	// WaitContainer returns at once; the channel yields one result when the
	// condition ("not-running" (default), "next-exit", "removed") is met.
	WaitContainer(ctx context.Context, ref string, condition string) (<-chan WaitResult, error)
	// AttachContainer prepares an attach before the API answers the
	// upgrade (a client starts the container only after that answer):
	// output from then on is kept for the returned function, which
	// streams it (and feeds stdin) until the run ends or its ctx does. It
	// must be called, with a cancelled ctx if the attach goes no further.
	// With a tty only Stdout is used.
	AttachContainer(ctx context.Context, ref string) (func(ctx context.Context, s Streams) error, error)
	ResizeContainer(ctx context.Context, ref string, height, width uint) error
	// ContainerLogs writes what the container printed so far (and, with
	// follow, until it stops or ctx ends).
	ContainerLogs(ctx context.Context, ref string, opts LogsOptions, stdout, stderr io.Writer) error
	// CheckLogs returns the error ContainerLogs would return before it
	// writes anything (the API's status must come before the stream).
	CheckLogs(ctx context.Context, ref string, opts LogsOptions) error

	CreateExec(ctx context.Context, ctrRef string, cfg ExecConfig) (string, error)
	// StartExec runs the exec'd process and returns after it was reaped, so
	// the exit code is final when it returns. Detached execs return at once.
	StartExec(ctx context.Context, execID string, detach bool, s Streams) error
	ResizeExec(ctx context.Context, execID string, height, width uint) error
	InspectExec(ctx context.Context, execID string) (ExecInfo, error)

	// ImportImage reads a tar of a root filesystem and records it as
	// repo:tag, with the config its --change lines give (Dockerfile
	// instructions).
	ImportImage(ctx context.Context, r io.Reader, repo, tag, message string, changes []string) (*image.Image, error)
	// CreateVolume, Volume, Volumes, RemoveVolume and PruneVolumes are
	// docker volume's (the local driver's).
	CreateVolume(ctx context.Context, name, driver string, opts, labels map[string]string) (VolumeInfo, error)
	Volume(ctx context.Context, name string) (VolumeInfo, error)
	Volumes(ctx context.Context, size bool) ([]VolumeInfo, error)
	RemoveVolume(ctx context.Context, name string, force bool) error
	PruneVolumes(ctx context.Context, all bool, match func(VolumeInfo) bool) ([]string, uint64, error)
	// TagImage gives image ref the tag repo:tag (docker tag).
	TagImage(ctx context.Context, ref, repo, tag string) error
	// BuildImage runs docker build (the legacy builder) on the context
	// tar in body and returns the image's ID; what it does goes to out.
	BuildImage(ctx context.Context, body io.Reader, opts BuildOptions, out build.Output) (string, error)
	// CommitContainer makes an image of a container (docker commit) and
	// returns its ID.
	CommitContainer(ctx context.Context, ref string, opts CommitOptions) (string, error)
	// SaveImages writes the images refs name as docker save does.
	SaveImages(ctx context.Context, refs []string, w io.Writer) error
	// LoadImages reads the archive docker save writes (docker load).
	LoadImages(ctx context.Context, r io.Reader, keep image.PlatformMatch) ([]image.Loaded, error)
	Images(ctx context.Context) ([]*image.Image, error)
	Image(ctx context.Context, ref string) (*image.Image, error)
	// RemoveImage untags ref and deletes the image when no tag is left; it
	// returns the untagged names and deleted IDs, as docker rmi prints them.
	RemoveImage(ctx context.Context, ref string, force, noPrune bool) (untagged, deleted []string, err error)
	// PruneImages removes the images no container uses that match
	// accepts: untagged ones only unless all is set (image.Store.Prune).
	PruneImages(ctx context.Context, all bool, match func(*image.Image) bool) (removed []image.Removed, reclaimed int64, err error)
}

// SystemInfo is the daemon's description of itself for /info and /version.
type SystemInfo struct {
	ID              string
	Name            string // host name
	Containers      int
	Running         int
	Paused          int
	Stopped         int
	Images          int
	DataRoot        string
	ExecRoot        string
	KernelVersion   string
	OperatingSystem string
	Architecture    string
	NCPU            int
	MemTotal        int64
	RuncVersion     string
	// AddressPools are the daemon's own default address pools, none when
	// it uses Docker's (docker info shows them only when configured).
	AddressPools []AddressPool
	// LoggingDriver is containers' default log driver ("" json-file).
	LoggingDriver string
	// Debug: the daemon logs at debug level (docker info's Debug Mode).
	Debug bool
	// UserlandProxy: the daemon serves the IPv6 ports the kernel cannot
	// DNAT (its --userland-proxy).
	UserlandProxy bool
	// Firewalld: firewalld runs in the daemon's namespace, and berth keeps
	// its bridges in a zone of it; FirewalldReloadedAt is when it last
	// reloaded or started (zero: not since the daemon started).
	Firewalld           bool
	FirewalldReloadedAt time.Time
	// Warnings are docker info's: what is wrong with the host for berth.
	Warnings      []string
	CgroupVersion string // "1" or "2", of the host's /sys/fs/cgroup; "" unknown
	// CgroupnsPrivate: containers get a cgroup namespace of their own
	// unless --cgroupns says otherwise (private on cgroup v2 unless the
	// daemon's --default-cgroupns-mode says host; host on v1 unless it
	// says private).
	CgroupnsPrivate bool
	// NoNewPrivileges is the daemon's --no-new-privileges.
	NoNewPrivileges bool
	// Labels are the daemon's own (--label).
	Labels []string
	// Limits are what the host's cgroups can apply (docker info's
	// MemoryLimit, SwapLimit, …).
	Limits container.HostLimits
}

// AddressPool is a pool new networks take subnets of Size bits from.
type AddressPool struct {
	Base string
	Size int
}

// WaitResult is the outcome of WaitContainer.
type WaitResult struct {
	StatusCode int
	Err        string
}

// Streams are the client's ends of a container's or exec's stdio. Nil means
// "not attached". Stdin ends (EOF) when the client half-closes.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// LogsOptions select what ContainerLogs writes.
type LogsOptions struct {
	Stdout, Stderr, Follow bool
	Tail                   int // < 0: everything
	// Since and Until bound the entries' times (zero: no bound);
	// Timestamps prefixes each entry with its time.
	Since, Until time.Time
	Timestamps   bool
	Details      bool // --details: each entry's attributes and a space before it
}

// ExecConfig is a docker exec request.
type ExecConfig struct {
	Cmd          []string
	Env          []string
	User         string
	WorkingDir   string
	Tty          bool
	AttachStdin  bool
	AttachStdout bool
	AttachStderr bool
	ConsoleSize  [2]uint // height, width; zero when unknown
	// Privileged gives the process every capability the daemon has (and
	// nothing else: it keeps the container's seccomp filter, devices and
	// masked paths, as moby's exec --privileged).
	Privileged bool
}

// ExecInfo is what GET /exec/{id}/json reports.
type ExecInfo struct {
	ID          string
	ContainerID string
	Running     bool
	ExitCode    *int // nil until the process was reaped
	Pid         int
	Config      ExecConfig
}

// StatsFrame is one answer of docker stats: a sample and the CPU figures
// of the one before (zero in the first), which docker stats divides by.
type StatsFrame struct {
	Name, ID string // Name with moby's leading "/"
	Stats    container.Stats
	PreCPU   container.CPUStats
	PreRead  time.Time
	// Empty is a container that does not run: moby answers its name and
	// ID alone.
	Empty bool
}

// VolumeInfo is a volume as docker volume inspect and ls show it.
type VolumeInfo struct {
	Name       string
	Labels     map[string]string
	CreatedAt  time.Time
	Mountpoint string
	RefCount   int   // containers that use it
	Size       int64 // bytes, -1 unless asked for
}
