// Package daemon is berth's composition root: it opens the store, builds
// the network controller over the kernel drivers, the runtime and the image
// store, reconciles them with what the kernel holds, and serves the Docker
// Engine API. It implements api.Backend; the container life cycle lives here.
package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/dns"
	"github.com/berth-net/berth/internal/driver/bridge"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/events"
	"github.com/berth-net/berth/internal/firewall"
	"github.com/berth-net/berth/internal/firewall/firewalld"
	"github.com/berth-net/berth/internal/firewall/nftables"
	"github.com/berth-net/berth/internal/ipam"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/portalloc"
	"github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/runtime/image"
	"github.com/berth-net/berth/internal/sandbox"
	"github.com/berth-net/berth/internal/store"
	"github.com/berth-net/berth/internal/volume"
)

// Config is the daemon's command line.
type Config struct {
	DataRoot   string // /var/lib/berth
	ExecRoot   string // /run/berth
	Host       string // unix:///run/berth/berth.sock
	BridgeName string // berth0
	// NoIPTables, NoIP6Tables and NoIPForward are dockerd's --iptables,
	// --ip6tables and --ip-forward set false: switches for what berth
	// always does, refused (networkSettings). IPForwardNoDrop is
	// dockerd's --ip-forward-no-drop, taken either way: berth never sets
	// the FORWARD policy to DROP, which dockerd's default false does.
	NoIPTables, NoIP6Tables, NoIPForward bool
	IPForwardNoDrop                      bool
	// BridgeAcceptFwMark is dockerd 29's --bridge-accept-fwmark: MARK or
	// MARK/MASK of traffic every network that is not internal takes in,
	// on any port (netSettings.fwMark).
	BridgeAcceptFwMark string
	// Bridge is dockerd's --bridge: the default bridge network on the
	// administrator's bridge device of that name, or none at all ("none").
	Bridge string
	// BridgeHostAccess opens the host's services to the default bridge.
	BridgeHostAccess bool
	// IPv6 gives the default bridge IPv6 (dockerd's --ipv6), in
	// FixedCIDRv6 (--fixed-cidr-v6) if set, else a /64 of the ULA pool.
	IPv6        bool
	FixedCIDRv6 string
	// BIP6 is the default bridge's IPv6 address and subnet (dockerd's
	// --bip6), with --ipv6; FixedCIDRv6 is then its containers' range.
	BIP6 string
	// DefaultGateway and DefaultGateway6 are dockerd's --default-gateway
	// and --default-gateway-v6 (network.Config.DefaultBridgeGateway4, 6).
	DefaultGateway, DefaultGateway6 string
	// HostGatewayIPs are what --add-host NAME:host-gateway resolves to
	// (dockerd's --host-gateway-ip): one IPv4 and one IPv6 address at
	// most; none means the default bridge's gateways.
	HostGatewayIPs []string
	// The default bridge as dockerd's options make it: --bip (its
	// address and subnet), --fixed-cidr (its containers' range), --mtu,
	// --ip (the host address of ports published without one), --icc and
	// --ip-masq. Applied at a start that finds no container on it.
	BIP, FixedCIDR string
	MTU            int
	IP             string
	ICC, IPMasq    bool
	// Pools replace Docker's default address pools (--default-address-pool).
	Pools []ipam.Pool
	// DefaultNetworkOpts are options a new network of a driver gets
	// unless its create gives them (--default-network-opt).
	DefaultNetworkOpts map[string]map[string]string
	// DNS, DNSSearch and DNSOptions are for containers that set none.
	DNS, DNSSearch, DNSOptions []string
	Group                      int // socket group; -1 keeps root's
	// LogDriver and LogOpts are the log configuration of containers
	// that give none (dockerd's log-driver and log-opts).
	LogDriver string
	LogOpts   map[string]string
	// Containers' defaults where their create says nothing (dockerd's
	// --default-ulimit, --default-shm-size, --init, --no-new-privileges,
	// --default-ipc-mode and --default-cgroupns-mode): see defaults.go.
	DefaultUlimits      []container.Ulimit
	DefaultShmSize      string
	Init                bool
	NoNewPrivileges     bool
	DefaultIpcMode      string
	DefaultCgroupnsMode string
	// CgroupParent is the cgroup containers go under when they name none
	// (dockerd's --cgroup-parent; "" is berth's /berth).
	CgroupParent string
	// DefaultStopTimeout is the seconds a stop waits for a container
	// that gives no --stop-timeout (dockerd's default-stop-timeout, 10).
	DefaultStopTimeout int
	// Labels are the daemon's own (dockerd's --label), for docker info.
	Labels []string
	// UserlandProxy (dockerd's --userland-proxy) has the daemon serve the
	// IPv6 ports the kernel cannot DNAT: an IPv4-only container's [::]
	// side, and [::1]. Off, as with dockerd, an IPv4-only container's
	// ports are published on IPv4 alone, and a dual-stack container's
	// [::1] side is held but not served.
	UserlandProxy bool
	// AllowDirectRouting is dockerd's --allow-direct-routing
	// (network.Config.AllowDirectRouting).
	AllowDirectRouting bool
	// LiveRestore must stay true: containers always outlive the daemon.
	LiveRestore bool
	// FirewallBackend is dockerd 29's --firewall-backend: berth takes
	// "nftables" (what it always is) or nothing, so that a Docker host's
	// daemon.json that chose nftables starts berth too.
	FirewallBackend string
	// Debug and LogLevel set the daemon's own log's level, LogFormat
	// its form ("text", the default, or "json": dockerd's --log-format).
	Debug     bool
	LogLevel  string
	LogFormat string
	// Pidfile, when set, holds the daemon's PID while it runs
	// (dockerd's --pidfile); a start refuses one naming a live process.
	Pidfile string
	// MetricsAddr, when set, is the TCP address the daemon serves its
	// Prometheus metrics on, at /metrics (dockerd's --metrics-addr).
	MetricsAddr string
	// StorageDriver, ExecOpts and SELinux are dockerd's --storage-driver,
	// --exec-opt and --selinux-enabled, taken when they say what berth
	// is (overlay, the cgroupfs driver, no SELinux labels) and refused
	// otherwise (checkRuntimeOptions).
	StorageDriver  string
	ExecOpts       []string
	SELinux        bool
	DefaultRuntime string
	// ConfigFile is the daemon.json read at start (flags win nothing:
	// a key given both ways is an error); FileWarnings are its keys taken
	// without effect (dockerd's for what berth does not do), which the
	// log and docker info show.
	ConfigFile   string
	FileWarnings []string
	// ResolvConf is the host's resolver configuration ("" means /etc/resolv.conf).
	ResolvConf string
	Log        *slog.Logger
	// Reload, when set, is run on SIGHUP: the daemon's reloadable
	// options read again (dockerd's reloadConfig), and what it did to
	// log. Without it a SIGHUP is logged and ignored (Go's default would
	// end the daemon, as no daemon of Docker's ends on it).
	Reload func() (string, error)
}

// Daemon implements api.Backend over berth's core.
type Daemon struct {
	cfg Config
	log *slog.Logger
	// hostSandboxKey is where the daemon's network namespace is bound
	// (sandbox.DefaultID): host-network containers' SandboxKey.
	hostSandboxKey string
	store          store.Store
	net            *network.Controller
	runtime        *runtime.Runtime
	images         *image.Store
	volumes        *volume.Store
	driver         *bridge.Driver
	resolv         *hostResolv
	events         *events.Log
	// resolvSystemd is systemd-resolved's list of the host's real servers,
	// for containers without a resolver when the host's file names only
	// its stub (nil when the daemon reads a file of its own choosing).
	resolvSystemd *hostResolv
	hostname      string
	// engineID is docker info's ID, kept in <data-root>/engine-id.
	engineID string
	// metrics are dockerd's engine_daemon_* metrics (--metrics-addr);
	// nil in a daemon a unit test makes without build.
	metrics *engineMetrics
	// hostsFile is the host's hosts file, copied for host-network containers.
	hostsFile string
	dns       *dns.Manager // embedded resolvers, one per sandbox on a user network
	ports     *portalloc.Allocator
	// keptDNS are the resolver sockets the daemon before left with the
	// reaper (keepSockets), by sandbox ID, from takeKept until
	// restoreResolvers serves them.
	keptDNS map[string]*dns.Sockets
	// firewalld is the D-Bus client that keeps berth's bridges in
	// firewalld's trusted zone; stopFirewalld ends it and its zoner.
	firewalld     *firewalld.Client
	zoner         *firewalld.Zoner
	stopFirewalld context.CancelFunc
	// netSettings are the daemon's network options, checked.
	netSettings netSettings
	// logDefaults are containers' log configuration where they give none.
	logDefaults container.LogConfig
	// defaults are the rest of what containers get where they say nothing.
	defaults containerDefaults

	// stopWatchers ends the nftables and route watchers (heal.go).
	stopWatchers func()
	// linkWatch is the link watcher; linkHeals paces healLinks, which only
	// it calls. Until linksReady (set once the start's reconcile is
	// done), healLinks keeps what it is given in linksMissed. linksMu
	// guards both.
	linkWatch *bridge.LinkWatcher
	// linksGone carries the links of others that were deleted from the
	// link watcher's thread to the route watcher's goroutine (linkGone).
	linksGone chan goneLink
	linkHeals healPacer
	// fwHeals paces healFirewall, and fwRetry is its back-off after a
	// failed restore: the nftables watcher's goroutine only. fwMu
	// guards fwWatch (nil once the watchers stop) and fwRetryTimer,
	// which posts the retry to it.
	fwHeals      healPacer
	fwRetry      time.Duration
	fwMu         sync.Mutex
	fwWatch      interface{ Post(nftables.Change) }
	fwRetryTimer *time.Timer
	// rebuildFirewall is d.net.RebuildFirewall; tests fail it.
	rebuildFirewall func(context.Context) error
	healRetry       time.Duration // retryHeal's back-off; healLinks's goroutine only
	// retryTimer posts retryDamage, what failed passes left, back to the
	// watcher; both under linksMu.
	retryTimer  *time.Timer
	retryDamage network.LinkDamage
	linksMu     sync.Mutex
	linksReady  bool
	linksMissed network.LinkDamage
	// stopLogRotator ends the log rotator (logrotate.go).
	stopLogRotator func()
	// stopPortRetry ends the retries of published ports a start could not
	// hold again (network.Controller.RetryUnheldPorts).
	stopPortRetry func()
	// stopExecGC ends the collection of finished execs.
	stopExecGC func()

	runcOnce sync.Once
	runcVer  string
	// limits are what the host's cgroups can apply, found at the start.
	limits container.HostLimits

	// imagesMu keeps an image removal (rmi, image prune) from a container
	// create that has looked the image up and not yet registered the
	// container: read-held from the lookup to the registration. Taken
	// before mu.
	imagesMu sync.RWMutex

	// building counts the running docker builds that use each image (its
	// base, the step images it goes on from): rmi and prune leave those
	// (buildBackend.hold).
	buildMu  sync.Mutex
	building map[string]int

	// closing is set when Close begins: an exit from then on schedules no
	// restart (the next daemon start makes the policy's starts).
	closing atomic.Bool

	mu         sync.Mutex
	containers map[string]*ctrState
	// pending are the creates copying an image's files into their new
	// volumes, or waiting for their record's fdatasync, by ID: their names
	// and volumes are taken (under mu).
	pending map[string]*container.Container
	// copying are the volumes a pending create is filling, each closed
	// when it is done (under mu).
	copying map[string]chan struct{}
	execs   map[string]*execState
	// links are the containers' legacy links by parent ID, and linkHosts
	// the /etc/hosts line each gives its parent, by parent ID and alias
	// (links.go). Both under mu.
	links     map[string][]container.Link
	linkHosts map[string]map[string]string
}

// ctrState is the daemon's live view of one container: its record and the
// channels that tell waiters about exits and removal.
type ctrState struct {
	mu sync.Mutex // serialises life-cycle operations on this container
	c  *container.Container
	// listed is the copy of c the last listing took (listView): what a
	// listing shows while an operation holds mu.
	listed atomic.Pointer[container.Container]
	// listedJSON is c's encoding when listed was made (under mu): an
	// unchanged container's copy is kept instead of decoded again.
	listedJSON []byte
	exited     chan struct{} // closed when the current run ends; replaced on start
	removed    chan struct{} // closed when the container is removed
	started    chan struct{} // closed when the next run starts; replaced on start
	proc       runtime.Process

	// restartCancel, while the restart policy waits to start the
	// container again (status "restarting"), calls that restart off when
	// closed; restartDelay is the back-off the last restart waited.
	restartCancel chan struct{}
	restartDelay  time.Duration
	// exitOnNext rules out a restart at the current run's exit: the user
	// stopped it, killed it with its stop signal, or removed it.
	exitOnNext bool
	// removing is set, under mu, while a docker rm of the container runs:
	// starts are refused meanwhile (moby's RemovalInProgress).
	removing bool
	// restartByUser is set, under mu, while a docker restart runs: the
	// exit its stop causes does not auto-remove an --rm container (moby's
	// HasBeenManuallyRestarted).
	restartByUser bool
	// attached counts the attached clients (docker run without -d) still
	// reading the output, and attachedGone closes when it falls to zero:
	// an AutoRemove waits for them, or it would delete the log files under
	// a client that has not read them yet. Both under mu.
	attached     int
	attachedGone chan struct{}
	// linkEnv is what the legacy links gave the current run's environment
	// (links.go), under mu.
	linkEnv []string
	// healthStop stops the health check's monitor (health.go), under mu;
	// nil when none runs.
	healthStop chan struct{}
	// files is the open view of the container's files (docker cp and
	// export, archive.go), under mu; a start or a remove ends it
	// (endFilesLocked) before it mounts or deletes them.
	files *filesUse
	// oom is the current run's OOM watch (watchOOMLocked), under mu; nil
	// without a memory limit.
	oom *runtime.OOMWatch
}

// attach counts a client in; the func it returns counts it out.
func (cs *ctrState) attach() (detach func()) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.attached == 0 {
		cs.attachedGone = make(chan struct{})
	}
	cs.attached++
	return func() {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if cs.attached--; cs.attached == 0 {
			close(cs.attachedGone)
		}
	}
}

// attachesGone is closed once no client is attached (already, if none is).
func (cs *ctrState) attachesGone() <-chan struct{} {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.attached == 0 {
		gone := make(chan struct{})
		close(gone)
		return gone
	}
	return cs.attachedGone
}

// cancelRestartLocked calls off a pending restart of the policy, if any.
func (cs *ctrState) cancelRestartLocked() {
	if cs.restartCancel != nil {
		close(cs.restartCancel)
		cs.restartCancel = nil
	}
}

var _ api.Backend = (*Daemon)(nil)

// New opens the state under cfg.DataRoot and builds the daemon; Start reconciles.
func New(cfg Config) (*Daemon, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	// The data-root is root's alone (moby's 0710, after CVE-2021-41091):
	// beneath it are the containers' writable layers and /etc files, in
	// which a container's root can leave a setuid-root program, and a
	// host user who could reach it could run it. The exec-root stays
	// traversable, for the API socket in it; its own directories are
	// root's (runtime.New). Made so on every start: an older berth's
	// 0711 is tightened.
	for _, d := range []struct {
		dir  string
		mode os.FileMode
	}{{cfg.DataRoot, 0o710}, {cfg.ExecRoot, 0o711}} {
		if err := os.MkdirAll(d.dir, d.mode); err != nil {
			return nil, fmt.Errorf("create %q: %w", d.dir, err)
		}
		if err := os.Chmod(d.dir, d.mode); err != nil {
			return nil, fmt.Errorf("set the mode of %q: %w", d.dir, err)
		}
	}
	dbPath := filepath.Join(cfg.DataRoot, "berth.db")
	st, err := store.OpenBolt(dbPath)
	if err != nil {
		return nil, err
	}
	if err := checkStoreFormat(st, dbPath); err != nil {
		st.Close()
		return nil, err
	}
	st.OnFold(func(err error) {
		if err != nil {
			cfg.Log.Warn("cannot fold the store's journal into its database (a full disk?); writes go on into the journal and the fold is tried again", "err", err)
			return
		}
		cfg.Log.Info("the store's journal is folded into its database again")
	})
	d := &Daemon{cfg: cfg, log: cfg.Log, store: st, containers: map[string]*ctrState{}, pending: map[string]*container.Container{}, copying: map[string]chan struct{}{}, execs: map[string]*execState{}, limits: runtime.HostLimits(cfg.CgroupParent),
		links: map[string][]container.Link{}, linkHosts: map[string]map[string]string{}}
	if err := d.build(); err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

// readUserBridge completes ns for dockerd's --bridge from the
// administrator's bridge device (netSettings.fromUserBridge), which must
// exist: as dockerd, berth makes no bridge of another name than its own
// default's for the default network.
func (d *Daemon) readUserBridge(ns *netSettings) error {
	v4, v6, err := d.driver.BridgeAddresses(ns.bridgeName)
	switch {
	case errdefs.Is(err, errdefs.KindNotFound): // dockerd's words
		return fmt.Errorf(`error creating default %q network: bridge device with non default name %s must be created manually`, network.NameBridge, ns.bridgeName)
	case err != nil:
		return fmt.Errorf(`error creating default %q network: --bridge %s: %w`, network.NameBridge, ns.bridgeName, err)
	}
	warnings, err := ns.fromUserBridge(v4, v6, d.cfg.IPv6)
	if err != nil {
		return fmt.Errorf(`error creating default %q network: %w`, network.NameBridge, err)
	}
	for _, w := range warnings {
		d.log.Warn(w)
	}
	return nil
}

func (d *Daemon) build() error {
	var err error
	d.hostname, _ = os.Hostname()
	d.hostsFile = "/etc/hosts"
	d.resolv = &hostResolv{path: cmp.Or(d.cfg.ResolvConf, "/etc/resolv.conf")}
	d.events = events.New(nil)
	if d.cfg.ResolvConf == "" {
		d.resolvSystemd = &hostResolv{path: "/run/systemd/resolve/resolv.conf"}
	}
	sbs, err := sandbox.NewManager(filepath.Join(d.cfg.ExecRoot, "netns"))
	if err != nil {
		return err
	}
	// Host-network containers' SandboxKey: the daemon's own namespace,
	// bound as libnetwork's default sandbox is. Only inspect shows it, so
	// a failure is logged, not fatal.
	if d.hostSandboxKey, err = sbs.BindDefault(); err != nil {
		d.log.Warn("host-network containers will show no SandboxKey", "err", err)
	}
	if d.driver, err = bridge.New("", d.log.With("component", "bridge")); err != nil {
		return fmt.Errorf("bridge driver: %w", err)
	}
	fw, err := nftables.New("", d.log.With("component", "firewall"))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	ports := portalloc.New("", d.log.With("component", "ports"))
	d.ports = ports
	if d.engineID, err = loadEngineID(filepath.Join(d.cfg.DataRoot, "engine-id")); err != nil {
		return err
	}
	d.metrics = newEngineMetrics(d)
	ns, err := d.cfg.networkSettings(d.engineID)
	if err != nil {
		return err
	}
	if ns.userBridge {
		if err := d.readUserBridge(&ns); err != nil {
			return err
		}
	}
	d.netSettings = ns
	// Taken, as dockerd takes them; each network create warns of them too.
	for _, k := range network.IgnoredOptions(d.cfg.DefaultNetworkOpts[network.DriverBridge]) {
		d.log.Warn("--default-network-opt: an option berth's bridge driver does not know has no effect", "option", k)
	}
	if d.defaults, err = d.cfg.containerDefaults(); err != nil {
		return err
	}
	if d.logDefaults, err = d.cfg.logDefaults(); err != nil {
		return err
	}
	d.net = network.New(network.Config{
		Store: d.store, Driver: d.driver, Sandboxes: sbs, Firewall: d.withFirewalld(fw), Ports: ports, IPv6Ports: ports.IPv6Listenable(), NoUserlandProxy: !d.cfg.UserlandProxy, AllowDirectRouting: d.cfg.AllowDirectRouting,
		// The administrator's bridge (--bridge) is open to the host's
		// services whatever this says (setDefaultBridgeHostAccess).
		Log: d.log.With("component", "network"), DefaultBridgeName: ns.bridgeName, DefaultBridgeHostAccess: d.cfg.BridgeHostAccess,
		DefaultBridgeUserManaged: ns.userBridge, NoDefaultBridge: ns.noBridge, AcceptFwMark: ns.fwMark, AcceptFwMask: ns.fwMask,
		Nameservers: d.resolv.get().nameservers, Pools: ns.pools, Pools6: ns.pools6,
		DefaultBridgeIPv6: d.cfg.IPv6, DefaultBridgeSubnet6: ns.subnet6, DefaultBridgeBIP6: ns.bip6,
		DefaultBridgeOptions: ns.bridgeOptions, DefaultBridgeBIP: ns.bip, DefaultBridgeFixedCIDR: ns.fixedCIDR,
		DefaultBridgeGateway4: ns.defaultGateway, DefaultBridgeGateway6: ns.defaultGateway6,
	})
	d.rebuildFirewall = d.net.RebuildFirewall
	d.fwHeals.warning = "berth's nftables table keeps being changed by another process; restoring it at most once a second"
	d.dns = d.newDNS()
	d.runtime, err = runtime.New(runtime.Config{
		StateDir:  filepath.Join(d.cfg.ExecRoot, "runc"),
		BundleDir: filepath.Join(d.cfg.ExecRoot, "containers"),
		DataDir:   filepath.Join(d.cfg.DataRoot, "containers"),
		ReaperDir: filepath.Join(d.cfg.ExecRoot, "reaper"),
		Log:       d.log.With("component", "runtime"),
		Recorded: func(id string) bool {
			// Only a record known to be gone lets its files go.
			var raw json.RawMessage
			err := d.store.View(func(tx store.Tx) error { return tx.Get(store.BucketContainers, id, &raw) })
			return !errors.Is(err, store.ErrNotFound)
		},
	})
	if err != nil {
		return fmt.Errorf("runtime: %w", err)
	}
	d.images, err = image.NewStore(filepath.Join(d.cfg.DataRoot, "images"), d.store)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	// Contexts of builds a crash ended (none runs before the start).
	if err := os.RemoveAll(filepath.Join(d.cfg.DataRoot, "build")); err != nil {
		d.log.Warn("remove unfinished builds' contexts", "err", err)
	}
	d.volumes, err = volume.NewStore(filepath.Join(d.cfg.DataRoot, "volumes"), d.store)
	if err != nil {
		return fmt.Errorf("volume store: %w", err)
	}
	d.volumes.Changed = func(action, name string) { d.volumeEvent(name, action, map[string]string{"driver": "local"}) }
	return nil
}

// Start enables forwarding, reconciles networks and containers with the
// kernel, and re-adopts running containers.
func (d *Daemon) Start(ctx context.Context) error {
	if err := d.driver.EnableIPForwarding(); err != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", err)
	}
	if err := d.driver.EnableBridgeNetfilter(); err != nil {
		// Not fatal: routed traffic is still filtered; only enable_icc=false
		// cannot be enforced between ports of one bridge.
		d.log.Warn("enable_icc=false will not be enforced", "err", err)
	}
	if err := d.startWatchers(); err != nil {
		return err
	}
	d.takeKept() // before the controller holds the published ports again
	if err := d.net.Start(ctx); err != nil {
		// A setting that cannot be applied stops the daemon, as it
		// stops dockerd: it would serve with no network made. Other
		// reconcile errors are logged, not fatal: the daemon must come
		// up to let the user repair what it could not.
		if se := (*network.SettingsError)(nil); errors.As(err, &se) {
			return err
		}
		d.log.Error("network reconcile finished with errors", "err", err)
	}
	if err := d.restoreContainers(ctx); err != nil {
		d.log.Error("container reconcile finished with errors", "err", err)
	}
	if n := d.dropAdoptedPorts(); n > 0 {
		d.log.Info("host ports the daemon before held are no longer published; released", "count", n)
	}
	d.linksStarted()
	d.scanRoutes()
	d.logForwardWarnings()
	for _, w := range d.cfg.FileWarnings {
		d.log.Warn(strings.TrimPrefix(w, "WARNING: "))
	}
	d.stopLogRotator = d.startLogRotator()
	d.stopPortRetry = every(portRetryEvery, d.net.RetryUnheldPorts)
	d.stopExecGC = every(execGCEvery, d.collectExecs)
	return nil
}

// Close releases the store. Running containers keep running; restarts
// the policies had planned are called off (recorded as "restarting", they
// are made at the next daemon start).
func (d *Daemon) Close() error {
	d.closing.Store(true)
	for _, cs := range d.states() {
		cs.mu.Lock()
		cs.cancelRestartLocked()
		cs.mu.Unlock()
		stopOOMWatch(cs) // the next daemon watches again
	}
	if d.stopWatchers != nil {
		d.stopWatchers()
	}
	if d.stopPortRetry != nil {
		d.stopPortRetry()
	}
	if d.stopExecGC != nil {
		d.stopExecGC()
	}
	if d.stopLogRotator != nil {
		d.stopLogRotator()
	}
	d.keepSockets()
	if d.net != nil {
		d.net.Close()
	}
	if d.runtime != nil {
		d.runtime.Close()
	}
	if d.stopFirewalld != nil {
		// The bindings stay (the containers run on), but a network
		// removed a moment ago is unbound now: the next daemon would
		// not know of it.
		if d.firewalld.Managed() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := d.zoner.Sync(ctx); err != nil {
				d.log.Warn("firewalld: last sync before stopping", "err", err)
			}
			cancel()
		}
		d.stopFirewalld()
	}
	return errors.Join(d.driver.Close(), d.store.Close())
}

// withFirewalld wraps fw so that berth's bridges are kept in firewalld's
// trusted zone while firewalld runs in the daemon's network namespace
// (internal/firewall/firewalld). The bus is reached in the background:
// nothing waits for it.
func (d *Daemon) withFirewalld(fw firewall.Firewall) firewall.Firewall {
	log := d.log.With("component", "firewalld")
	c, err := firewalld.NewClient("", "", log)
	if err != nil {
		log.Warn("firewalld is not watched", "err", err)
		return fw
	}
	d.firewalld = c
	z := firewalld.NewZoner(fw, c, log)
	d.zoner = z
	ctx, cancel := context.WithCancel(context.Background())
	d.stopFirewalld = cancel
	go z.Run(ctx)
	go c.Run(ctx, z.Kick)
	return z
}

// hostResolv reads the host's resolver configuration as it is now, as
// Docker does for each container it starts: a resolv.conf that a DHCP
// client or a VPN rewrote after the daemon started is what new containers
// get. The parse is kept while the file's identity (inode), size and
// times stay the same: a file renamed over it with the old size and
// modification time kept (cp -p) is a new inode.
type hostResolv struct {
	path string

	mu     sync.Mutex
	stamp  string // size and modification time of what rc was read from
	rc     resolvConf
	primed bool
}

func (h *hostResolv) get() resolvConf {
	h.mu.Lock()
	defer h.mu.Unlock()
	stamp := ""
	if fi, err := os.Stat(h.path); err == nil {
		stamp = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			stamp += fmt.Sprint(" ", st.Ino, " ", st.Ctim.Nano())
		}
	}
	if !h.primed || stamp != h.stamp {
		h.rc, h.stamp, h.primed = readResolvConf(h.path), stamp, true
	}
	return h.rc
}

// readResolvConf parses the host's resolver configuration; a missing file gives none.
func readResolvConf(path string) resolvConf {
	b, err := os.ReadFile(path)
	if err != nil {
		return resolvConf{source: path}
	}
	return parseResolvConf(string(b), path)
}

// portRetryEvery is how often published ports a start could not hold
// again are tried.
const portRetryEvery = 5 * time.Second

// every runs f every period until the returned stop is called (and
// returns once f no longer runs).
func every(period time.Duration, f func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}
