package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime"
)

// errContainerIsRestarting is moby's answer for a container in its
// restart policy's back-off.
func errContainerIsRestarting(ref string) error {
	return errdefs.Conflict("Container %s is restarting, wait until the container is running", ref)
}

// errSetupNetworking starts the errors of a start whose networking failed,
// in moby's words (daemon/container_operations.go).
const errSetupNetworking = "failed to set up container networking"

// StartContainer gives the container its sandbox and endpoints, writes its
// /etc files and starts it under runc. A failure undoes the networking and
// leaves the container "created" with the error recorded; an AutoRemove
// (run --rm) container is removed instead, as Docker does: `docker run
// --rm` waits for the removal after a failed start, and would wait forever.
func (d *Daemon) StartContainer(ctx context.Context, ref string) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	return d.startContainer(ctx, cs, nil)
}

// startContainer starts cs: for the user when auto is nil (a restart the
// policy had planned is called off, and its count and the user's stop are
// forgotten), else as the restart that auto was planned for, which only
// happens if it is still the one planned.
func (d *Daemon) startContainer(ctx context.Context, cs *ctrState, auto chan struct{}) error {
	starting := time.Now() // as moby's containerStart times it, from the top
	// The container whose namespace this one shares, if it does, is read
	// before this one is locked: a start never holds two containers' locks.
	cs.waitFiles(ctx, startFilesWait)
	donor, donorErr := d.netnsDonor(cs)
	joins, joinsErr := d.namespaceJoins(cs)
	links, linksErr := d.linksAtStart(cs, true)
	cs.mu.Lock()
	if cs.goneLocked() {
		// Looked up before an rm -f finished (docker restart racing rm -f).
		cs.mu.Unlock()
		return errdefs.NotFound("No such container: %s", cs.c.ID)
	}
	if cs.removing {
		cs.mu.Unlock()
		return errdefs.Conflict("container is marked for removal and cannot be started")
	}
	if cs.c.Paused() {
		// Checked first, as moby's containerStart: a paused container
		// is running too.
		cs.mu.Unlock()
		return errdefs.Conflict("cannot start a paused container, try unpause instead")
	}
	if cs.c.Running() || (auto == nil && cs.c.State.Status == container.StatusRestarting) {
		// moby's State.Running is true in the back-off too: a start by the
		// user leaves the planned restart, and its count, alone.
		name := cs.c.Name // a rename writes it under cs.mu
		cs.mu.Unlock()
		return errdefs.NotModified("container %s is already running", name)
	}
	if auto != nil && cs.restartCancel != auto {
		cs.mu.Unlock()
		return nil // called off (stop, kill, rm, a start by the user)
	}
	cs.cancelRestartLocked()
	cs.exitOnNext = false
	if auto == nil {
		cs.c.RestartCount, cs.c.ManuallyStopped, cs.restartDelay = 0, false, 0
	}
	prevCode, prevFinished := cs.c.State.ExitCode, cs.c.State.FinishedAt
	err := errors.Join(donorErr, joinsErr, linksErr)
	if err == nil {
		err = d.start(ctx, cs, donor, joins, links)
	}
	if err == nil {
		d.metrics.timeContainer("start", starting)
		id := cs.c.ID
		cs.mu.Unlock()
		d.refreshLinkParents(id)
		return nil
	}
	cs.c.State.Error = err.Error()
	if te := (taskError{}); errors.As(err, &te) {
		cs.c.State.ExitCode = startFailureExitCode(te)
	} else if cs.c.State.ExitCode == 0 {
		cs.c.State.ExitCode = 128 // moby's exitUnknown, only over a 0
	}
	if cs.c.State.Status == container.StatusRestarting {
		cs.c.State.Status = container.StatusExited // as moby: a failed restart is not tried again
	}
	if auto != nil {
		// The policy's restart failed: the container keeps its last run's
		// exit, as moby's SetStopped with that run's status (not the
		// start's 126/127).
		cs.c.State.ExitCode, cs.c.State.FinishedAt = prevCode, prevFinished
	}
	_ = d.putContainer(cs.c)
	autoRemove, id := cs.c.Config.AutoRemove, cs.c.ID
	if autoRemove {
		cs.removing = true // as onExit's
	}
	cs.mu.Unlock()
	if autoRemove {
		if rerr := d.remove(cs, id, true); rerr != nil {
			d.log.Error("auto-remove after a failed start", "id", cs.c.ShortID(), "err", rerr)
			cs.mu.Lock()
			cs.removing = false
			cs.mu.Unlock()
		}
	}
	return err
}

// netnsDonor returns a copy of the running container whose network
// namespace cs's shares (NetworkMode "container:<id>"), nil if cs has its
// own, with moby's errors for a donor that is missing, cs itself, or not
// running.
func (d *Daemon) netnsDonor(cs *ctrState) (*container.Container, error) {
	cs.mu.Lock()
	mode := cs.c.Config.NetworkMode
	cs.mu.Unlock()
	ref, ok := container.SharedNetns(mode)
	if !ok {
		return nil, nil
	}
	dcs, err := d.lookup(ref)
	if err != nil {
		// A system error, as moby's: the name resolved at create.
		return nil, errdefs.WithKind(errdefs.KindUnknown, fmt.Errorf("joining network namespace of container: %w", err))
	}
	if dcs == cs {
		return nil, errors.New("cannot join own network namespace")
	}
	dcs.mu.Lock()
	donor := cloneContainer(dcs.c)
	dcs.mu.Unlock()
	if donor.Status() == container.StatusRestarting {
		return nil, errContainerIsRestarting(ref)
	}
	if !donor.Running() {
		return nil, errdefs.Conflict("cannot join network namespace of a non running container: container %s is %s", donor.Name, donor.Status())
	}
	return donor, nil
}

// start runs with cs.mu held. donor, if not nil, is the running container
// whose network namespace c shares (netnsDonor); links are what c's legacy
// links give this run (linksAtStart).
func (d *Daemon) start(ctx context.Context, cs *ctrState, donor *container.Container, joins nsJoin, links linkStart) (err error) {
	c := cs.c
	img, err := d.images.Get(c.Config.ImageID)
	if err != nil {
		return err
	}
	if donor != nil {
		// No sandbox, no endpoint, no files of its own: the namespace,
		// hostname and /etc files are the donor's, as in moby's
		// initializeNetworking, so the donor's later connects show here too.
		c.Config.Hostname, c.Config.Domainname = donor.Config.Hostname, donor.Config.Domainname
		c.HostsPath, c.HostnamePath, c.ResolvConfPath = donor.HostsPath, donor.HostnamePath, donor.ResolvConfPath
		return d.run(ctx, cs, img.RootfsDir, joins, container.State{JoinedNetns: donor.NetnsPath()})
	}
	if err := d.checkHostGateway(c); err != nil {
		return err
	}
	allocating := time.Now()
	// NetworkMode only decides host or not: the networks joined are
	// Config.Networks, which a disconnect may have left without the
	// network the container was created on (and that network may be gone).
	sb, err := d.net.CreateSandbox(ctx, c.ID, c.Config.NetworkMode == network.NameHost)
	if err != nil {
		return fmt.Errorf("%s: create network sandbox: %w", errSetupNetworking, err)
	}
	// Record the sandbox at once: a crash from here on is cleaned up by the
	// next start, which sees a sandbox of a container that is not running.
	c.State.SandboxID, c.State.SandboxKey = sb.ID, sb.Key
	defer func() {
		if err != nil {
			releasing := time.Now()
			d.stopDNS(sb.ID)
			err = errors.Join(err, d.net.DeleteSandbox(context.Background(), sb.ID))
			d.metrics.timeNetwork("release", releasing) // moby's failed start releases its network too
			c.State.SandboxID, c.State.SandboxKey = "", ""
			_ = d.putContainer(c)
		}
	}()
	if err := d.putContainer(c); err != nil {
		return err
	}
	ports, err := portRequests(c.Config)
	if err != nil {
		return err
	}
	joining := sortedNetworks(c.Config.Networks, c.Config.NetworkMode)
	if d.netSettings.noBridge {
		// dockerd's --bridge none: a container on the default network
		// (or asking for "bridge") runs without it, in a namespace of its
		// own, as moby's connectToNetwork skips it (NetworkDisabled).
		joining = slices.DeleteFunc(joining, func(name string) bool { return name == network.NameBridge })
	}
	dnsStarted := d.resolverBeside(c, d.anyDiscoverable(joining), nil)
	for i, name := range joining {
		req := c.Config.Networks[name]
		joinStart := time.Now()
		if _, err := d.net.Join(ctx, sb.ID, name, network.JoinRequest{
			ContainerID: c.ID, Name: c.Name, IPv4: req.IPv4Address, IPv6: req.IPv6Address, NoIPv6: ipv6Disabled(c), MAC: req.MacAddress, Aliases: req.Aliases, LinkLocal: req.LinkLocalIPs,
			Links: req.Links, Hostname: c.Config.Hostname, GwPriority: req.GwPriority, Ports: portsForJoin(i, ports),
			DriverOpts: req.DriverOpts, ReservedIfNames: reservedIfNames(c.Config.Networks, name),
		}); err != nil {
			_ = dnsStarted() // up before the deferred cleanup stops it
			return fmt.Errorf("%s: %w", errSetupNetworking, err)
		}
		d.metrics.timeNetwork("connect", joinStart)
	}
	if err := dnsStarted(); err != nil {
		return err
	}
	d.metrics.timeNetwork("allocate", allocating)
	d.setLinkHosts(c.ID, links.hosts)
	cs.linkEnv = links.env
	if err := d.writeEtcFiles(c); err != nil {
		return err
	}
	return d.run(ctx, cs, img.RootfsDir, joins, container.State{SandboxID: sb.ID, SandboxKey: sb.Key})
}

// logAttrs are the attributes of every entry of c's log (json-file's
// labels, env and tag), computed at each start as moby's logger is made:
// a rename shows in a {{.Name}} tag from the next start on.
func logAttrs(c *container.Container) (json.RawMessage, error) {
	argv := append(slices.Clone(c.Config.Entrypoint), c.Config.Cmd...)
	info := &container.LogInfo{
		Config: c.Config.LogConfig.Config, ContainerID: c.ID, ContainerName: "/" + c.Name,
		ContainerImageID: c.Config.ImageID, ContainerImageName: c.Config.Image, ContainerCreated: c.Created,
		ContainerEnv: c.Config.Env, ContainerLabels: c.Config.Labels, LogPath: c.LogPath,
		DaemonName: "docker", // moby's, which tag templates written for it expect
	}
	if len(argv) > 0 {
		info.ContainerEntrypoint, info.ContainerArgs = argv[0], argv[1:]
	}
	attrs, err := c.Config.LogConfig.LogAttrs(info)
	if err != nil {
		return nil, fmt.Errorf("failed to initialize logging driver: %w", err) // moby's start error
	}
	if len(attrs) == 0 {
		return nil, nil
	}
	return json.Marshal(attrs)
}

// run starts c's process in the network namespace net names and records
// it as running with net's fields; start has made or found that namespace.
func (d *Daemon) run(ctx context.Context, cs *ctrState, rootfs string, joins nsJoin, net container.State) (err error) {
	c := cs.c
	spec := runtime.Spec{
		ID: c.ID, RootfsDir: rootfs, Args: append(append([]string(nil), c.Config.Entrypoint...), c.Config.Cmd...),
		Env: append(slices.Clone(cs.linkEnv), c.Config.Env...), Cwd: c.Config.WorkingDir, User: c.Config.User, Hostname: c.Config.Hostname, Domainname: c.Config.Domainname,
		NetNSPath: net.SandboxKey, Tty: c.Config.Tty, ConsoleSize: c.Config.ConsoleSize, OpenStdin: c.Config.OpenStdin,
		Files:    map[string]string{"/etc/hosts": c.HostsPath, "/etc/hostname": c.HostnamePath, "/etc/resolv.conf": c.ResolvConfPath},
		ReadOnly: c.Config.ReadonlyRootfs, CapAdd: normalizedCaps(c.Config.CapAdd), CapDrop: normalizedCaps(c.Config.CapDrop), Sysctls: c.Config.Sysctls,
		Resources: c.Config.Resources, Security: c.Config.Security, GroupAdd: c.Config.GroupAdd,
		Devices: c.Config.Devices, DeviceCgroupRules: c.Config.DeviceCgroupRules,
		PidNS: joins.pid, IpcNS: joins.ipc, Shm: joins.shm, UTSHost: joins.utsHost, CgroupNS: joins.cgroupNS,
		Annotations: c.Config.Annotations, CgroupParent: cmp.Or(c.Config.CgroupParent, d.cfg.CgroupParent),
	}
	if c.Config.Namespaces.IpcMode == container.ModeShareable && !hasMountAt(c, "/dev/shm") {
		dir, mountErr := d.mountShm(c.ID, c.Config.Resources.ShmBytes())
		if mountErr != nil {
			return mountErr
		}
		spec.Shm = dir
		defer func() {
			if err != nil { // the start failed (err: run's result, not shadowed here)
				d.unmountShm(c.ID)
			}
		}()
	}
	if size, files, err := c.Config.LogConfig.Limits(); err == nil {
		spec.Log = runtime.LogLimit{MaxSize: size, MaxFiles: files}
		spec.Log.NonBlocking, spec.Log.MaxBuffer = c.Config.LogConfig.Buffering()
		spec.Log.Compress = c.Config.LogConfig.Compressed()
	}
	if spec.Log.Attrs, err = logAttrs(c); err != nil {
		return err
	}
	spec.Resources.Ulimits = d.defaults.withUlimits(c.Config.Resources.Ulimits)
	// moby's: an init only in a PID namespace of the container's own
	// (--pid host or container:… take none, asked for or by default).
	if pm := c.Config.Namespaces.PidMode; (pm == "" || pm == container.ModePrivate) && d.defaults.initFor(c.Config.Init) {
		path, err := initBinary()
		if err != nil {
			return err
		}
		spec.Init = path
	}
	mounts, err := d.volumeBinds(c)
	if err != nil {
		return err
	}
	spec.Mounts = mounts
	// -v makes a missing host directory, as moby's does at start; a file
	// that is there is mounted as it is (moby ignores MkdirAll's ENOTDIR:
	// `-v ./app.yml:/etc/app.yml`, QA round 26).
	for _, m := range c.Config.Mounts {
		if m.Type == container.MountBind && m.CreateSource {
			if err := os.MkdirAll(m.Source, 0o755); err != nil && !errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("error while creating mount source path '%s': %w", m.Source, err)
			}
		}
	}
	if net.SandboxID == "" {
		spec.NetNSPath = net.JoinedNetns
		spec.NetNSJoined = net.JoinedNetns != ""
	}
	// A previous run may have left runc state and the rootfs mount
	// behind; a docker cp may have the container's files open (it had
	// its while to finish before the lock, waitFiles).
	cs.endFilesLocked()
	if err := d.runtime.Release(c.ID); err != nil {
		return err
	}
	// The namespaces joined by their donor's PID: still that process
	// (not a later one that took its PID, maybe the host's)?
	for _, donor := range joins.donors {
		if !d.runtime.Alive(donor.proc) {
			return errdefs.Conflict("failed to join %s namespace: container %s is not running", donor.what, donor.id)
		}
	}
	proc, err := d.runtime.Start(ctx, spec)
	if errdefs.Is(err, errdefs.KindInvalid) {
		// The spec's own error (an unknown user, a working directory that
		// is a file), bare as moby's createSpec returns it, and as moby's
		// containerStart a server's error (500), not the request's: no
		// task ran, so the exit code is moby's exitUnknown (128).
		return errdefs.WithKind(errdefs.KindUnknown, err)
	}
	if err != nil {
		// moby's first words; runc's own message follows.
		return taskError{startFailure(firstArg(spec.Args), fmt.Errorf("failed to create task for container: %w", err))}
	}
	cs.proc = proc
	cs.exited = make(chan struct{})
	close(cs.started) // wake "next-exit" waiters that came before the start
	cs.started = make(chan struct{})
	c.State = container.State{Status: container.StatusRunning, Pid: proc.Pid, PidStart: proc.PidStart,
		StartedAt: time.Now().UTC(), SandboxID: net.SandboxID, SandboxKey: net.SandboxKey, JoinedNetns: net.JoinedNetns,
		Health: c.State.Health} // its results kept; startHealthLocked sets it starting
	if err := d.putContainer(c); err != nil {
		// The process runs but is not recorded: kill it rather than leak it.
		_ = d.runtime.Signal(c.ID, proc, syscall.SIGKILL)
		return err
	}
	d.watchOOMLocked(cs, proc, true)
	go d.monitor(cs, proc, cs.exited)
	d.startHealthLocked(cs)
	// moby's order: the networks are joined before the mounts are made.
	d.containerNetworksEvent(c, "connect")
	d.containerVolumesEvent(c, "mount")
	d.containerEvent(c, "start", nil)
	d.log.Info("container started", "name", c.Name, "id", c.ShortID(), "pid", proc.Pid)
	return nil
}

// RestartContainer is docker restart, as moby's containerRestart: a stop
// if it runs, a start, and a restart event after the start's.
func (d *Daemon) RestartContainer(ctx context.Context, ref string, timeout *int, signal string) error {
	ctx = context.WithoutCancel(ctx) // as StopContainer's, as moby's
	// The stop's exit is not the end of an --rm container: moby's
	// HasBeenManuallyRestarted keeps its auto-remove off until the start.
	if cs, err := d.lookup(ref); err == nil {
		cs.mu.Lock()
		cs.restartByUser = true
		cs.mu.Unlock()
		defer func() {
			cs.mu.Lock()
			cs.restartByUser = false
			cs.mu.Unlock()
		}()
	}
	if err := d.StopContainer(ctx, ref, timeout, signal); err != nil && !errdefs.Is(err, errdefs.KindNotModified) {
		return err
	}
	if err := d.StartContainer(ctx, ref); err != nil && !errdefs.Is(err, errdefs.KindNotModified) {
		return err
	}
	if c, err := d.Container(ctx, ref); err == nil {
		d.containerEvent(c, "restart", nil)
	}
	return nil
}

// monitor waits for the container's init to exit and records it, with
// whether the OOM killer acted in the run (its watch's last word).
func (d *Daemon) monitor(cs *ctrState, proc runtime.Process, exited chan struct{}) {
	code, err := d.runtime.Wait(context.Background(), cs.c.ID, proc)
	if err != nil {
		d.log.Error("waiting for container failed", "id", cs.c.ShortID(), "err", err)
		code = 255
	}
	if code < 0 {
		// No one recorded the exit (the reaper, its parent, was gone):
		// moby's 255 for an exit status it cannot learn, never a negative.
		code = 255
	}
	d.onExit(cs, proc, code, stopOOMWatch(cs), exited)
}

// watchOOMLocked starts the OOM watch of cs's run proc if its container
// has a memory limit, or a cgroup parent of its own or the daemon's (a
// limit set on the parent kills in it too: review of session 38), and
// none runs: an OOM kill there sets
// State.OOMKilled (recorded at once, as moby checkpoints it) and is an
// "oom" event, as in moby, whose kill may hit any process of the
// container, not only its init. fresh is a run that has just started
// (runtime.WatchOOM).
func (d *Daemon) watchOOMLocked(cs *ctrState, proc runtime.Process, fresh bool) {
	if cs.oom != nil || cs.c.Config.Resources.Memory <= 0 && cmp.Or(cs.c.Config.CgroupParent, d.cfg.CgroupParent) == "" {
		return
	}
	w, err := runtime.WatchOOM(cs.c.ID, d.runtime.CgroupPath(cs.c.ID), fresh, func() {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		if cs.proc != proc || !cs.c.Running() {
			return
		}
		if !cs.c.State.OOMKilled {
			cs.c.State.OOMKilled = true
			d.log.Warn("the OOM killer acted in a container", "name", cs.c.Name, "id", cs.c.ShortID())
			if err := d.putContainer(cs.c); err != nil {
				d.log.Error("record an OOM kill", "id", cs.c.ShortID(), "err", err)
			}
		}
		// An event each time the kernel tells, as moby's (containerd
		// publishes a TaskOOM for each wake-up of its eventfd).
		d.containerEvent(cs.c, "oom", nil)
	})
	if err != nil {
		d.log.Warn("container's OOM kills will not be seen", "id", cs.c.ShortID(), "err", err)
		return
	}
	cs.oom = w
}

// stopOOMWatch ends cs's OOM watch, if any, and reports whether it saw an
// OOM kill. Not under cs.mu: the watch's callback takes it.
func stopOOMWatch(cs *ctrState) bool {
	cs.mu.Lock()
	w := cs.oom
	cs.oom = nil
	cs.mu.Unlock()
	return w != nil && w.Stop()
}

// onExit records the exit, tears down the networking, frees the runc state
// and tells the waiters; AutoRemove containers are then removed. The
// reaper's record of proc's exit goes once the store has the exit: a
// daemon killed before that learns the code from it at its restart
// (markStopped), where deleting it on reading lost it (QA round 24).
func (d *Daemon) onExit(cs *ctrState, proc runtime.Process, code int, oom bool, exited chan struct{}) {
	cs.mu.Lock()
	c := cs.c
	sbID := c.State.SandboxID
	var errs []error
	if sbID != "" {
		releasing := time.Now()
		d.stopDNS(sbID)
		errs = append(errs, d.net.DeleteSandbox(context.Background(), sbID))
		d.metrics.timeNetwork("release", releasing) // failed or not, as moby's releaseNetwork
	}
	errs = append(errs, d.runtime.Release(c.ID))
	if c.Config.Namespaces.IpcMode == container.ModeShareable {
		d.unmountShm(c.ID)
	}
	ran := time.Since(c.State.StartedAt)
	d.stopHealthLocked(cs)
	// The health state stays as it was (moby keeps it), for inspect.
	c.State = container.State{Status: container.StatusExited, ExitCode: code, StartedAt: c.State.StartedAt,
		FinishedAt: time.Now().UTC(), Health: c.State.Health, OOMKilled: oom || c.State.OOMKilled}
	// An exit the user caused (stop, kill with the stop signal, rm -f) is
	// never followed by a restart; the policy decides the rest, with
	// unless-stopped also heeding any kill by the user (moby's restart
	// manager, ExitOnNext and HasBeenManuallyStopped).
	if !cs.exitOnNext && !d.closing.Load() && c.Config.RestartPolicy.ShouldRestart(code, c.ManuallyStopped, c.RestartCount) {
		c.RestartCount++
		c.State.Status = container.StatusRestarting
		cs.restartDelay = container.NextRestartDelay(cs.restartDelay, ran)
		cs.restartCancel = make(chan struct{})
		go d.restartAfter(cs, cs.restartDelay, cs.restartCancel)
	}
	if err := errors.Join(errs...); err != nil {
		d.log.Error("cleanup after container exit", "id", c.ShortID(), "err", err)
		c.State.Error = err.Error()
	}
	switch err := d.putContainer(c); {
	case err == nil:
		d.runtime.ForgetExit(proc)
	case cs.goneLocked():
		// rm -f raced the exit: the container and its record are gone.
		d.log.Debug("container removed as it exited", "id", c.ShortID(), "err", err)
		d.runtime.ForgetExit(proc)
	default:
		d.log.Error("record container exit", "id", c.ShortID(), "err", err)
	}
	autoRemove, name, restarting := c.Config.AutoRemove && !cs.restartByUser, c.Name, c.State.Status == container.StatusRestarting
	if autoRemove {
		cs.removing = true // no start slips in before the removal below
	}
	d.containerNetworksEvent(c, "disconnect")
	d.containerVolumesEvent(c, "unmount")
	d.dieEvent(c, code, ran)
	close(exited)
	cs.mu.Unlock()
	d.forgetExecs(c.ID)
	d.log.Info("container exited", "name", name, "id", c.ShortID(), "code", code, "restarting", restarting)
	if autoRemove {
		d.awaitAttaches(cs)
		if err := d.remove(cs, c.ID, true); err != nil {
			d.log.Error("auto-remove", "id", c.ShortID(), "err", err)
			cs.mu.Lock()
			cs.removing = false // left for a docker rm
			cs.mu.Unlock()
		}
	}
}

// restartAfter is the restart policy's restart of cs, after delay,
// unless cancel closes first.
func (d *Daemon) restartAfter(cs *ctrState, delay time.Duration, cancel chan struct{}) {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-cancel:
		return
	}
	if err := d.startContainer(context.Background(), cs, cancel); err != nil {
		d.log.Error("restart by the restart policy failed", "id", cs.c.ShortID(), "err", err)
	}
}

// stopRestartingLocked ends a container waiting to be restarted by its
// policy, as a stop or kill by the user does: it stays exited. It
// reports whether cs was waiting.
func (d *Daemon) stopRestartingLocked(cs *ctrState) bool {
	if cs.c.State.Status != container.StatusRestarting {
		return false
	}
	cs.cancelRestartLocked()
	cs.c.State.Status, cs.c.ManuallyStopped = container.StatusExited, true
	if err := d.putContainer(cs.c); err != nil {
		d.log.Error("record a restart called off", "id", cs.c.ShortID(), "err", err)
	}
	return true
}

// StopContainer sends the stop signal, then SIGKILL after the timeout.
func (d *Daemon) StopContainer(ctx context.Context, ref string, timeout *int, signal string) error {
	// A stop runs to its end when its client goes away (moby's
	// "Cancelling the request should not cancel the stop"): cancelled,
	// it left the container running, marked stopped by the user.
	ctx = context.WithoutCancel(ctx)
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	if d.stopRestartingLocked(cs) {
		// moby counts a container waiting to restart as running: its
		// stop sends no signal, but ends with the "stop" event, which
		// Docker Compose waits for (its up, attached, hung without it).
		d.containerEvent(cs.c, "stop", nil)
		cs.mu.Unlock()
		return nil
	}
	if !cs.c.Running() {
		name := cs.c.Name // a rename writes it under cs.mu
		cs.mu.Unlock()
		return errdefs.NotModified("container %s is not running", name)
	}
	if signal == "" {
		signal = cs.c.Config.StopSignal
	}
	// The signal first, as moby's containerStop: a stop refused for its
	// signal leaves the container as it was (not stopped by the user);
	// moby's ContainerStop words it, as a 500.
	sig, err := parseSignal(signal, syscall.SIGTERM)
	if err != nil {
		cs.mu.Unlock()
		return errdefs.WithKind(errdefs.KindUnknown, fmt.Errorf("cannot stop container: %s: %w", ref, err))
	}
	cs.exitOnNext = true
	if err := d.markManuallyStoppedLocked(cs); err != nil {
		cs.mu.Unlock()
		return err
	}
	wait := d.defaults.stopTimeout
	if cs.c.Config.StopTimeout != nil {
		wait = *cs.c.Config.StopTimeout
	}
	if timeout != nil {
		wait = *timeout
	}
	proc, exited := cs.proc, cs.exited
	id := cs.c.ID
	// Sent under the lock, so that the kill event, logged once the signal
	// went, comes before the exit's die, as in moby.
	if err := d.runtime.Signal(id, proc, sig); err != nil {
		// As moby's containerStop: a signal that cannot be sent (a
		// number with no signal) leaves 2 s, then SIGKILL (with no
		// timeout, it waits on, as moby's does).
		d.log.Warn("sending the stop signal failed", "id", id[:12], "signal", int(sig), "err", err)
		if wait > 2 {
			wait = 2
		}
	} else {
		d.killEvent(cs.c, sig) // moby logs the stop signal as a kill
		d.resumeForSignalLocked(cs)
	}
	cs.mu.Unlock()
	// -t -1 waits as long as it takes and never kills, as moby's
	// containerStop with a negative timeout: no timer.
	var waited <-chan time.Time
	if wait >= 0 {
		waited = time.After(time.Duration(wait) * time.Second)
	}
	select {
	case <-exited:
		d.stoppedEvent(cs)
		return nil
	case <-waited:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := d.killAndWait(ctx, cs); err != nil {
		return err
	}
	d.stoppedEvent(cs)
	return nil
}

// stoppedEvent is the "stop" a docker stop logs once the container died.
func (d *Daemon) stoppedEvent(cs *ctrState) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	d.containerEvent(cs.c, "stop", nil)
}

// killAndWait sends SIGKILL and waits until the exit is recorded.
func (d *Daemon) killAndWait(ctx context.Context, cs *ctrState) error {
	cs.mu.Lock()
	proc, exited, id, running := cs.proc, cs.exited, cs.c.ID, cs.c.Running()
	if running {
		d.killEvent(cs.c, syscall.SIGKILL)
	}
	cs.mu.Unlock()
	if !running {
		return nil
	}
	if err := d.runtime.Signal(id, proc, syscall.SIGKILL); err != nil {
		return err
	}
	cs.mu.Lock()
	d.resumeForSignalLocked(cs)
	cs.mu.Unlock()
	select {
	case <-exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// KillContainer sends a signal (SIGKILL by default) to the container's
// init. As Docker's does, a SIGKILL returns only once the exit is
// recorded, so that `docker kill c; docker inspect c` shows it stopped;
// any other signal returns once sent.
func (d *Daemon) KillContainer(ctx context.Context, ref string, signal string) error {
	ctx = context.WithoutCancel(ctx) // as StopContainer's, as moby's
	// The signal before the container, as moby's ContainerKill.
	sig, err := parseSignal(signal, syscall.SIGKILL)
	if err == nil {
		err = validSignal(sig)
	}
	if err != nil {
		return err
	}
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	if cs.c.State.Status == container.StatusRestarting && cs.c.Config.StopSignal != "" && sig != syscall.SIGKILL {
		if stop, err := parseSignal(cs.c.Config.StopSignal, syscall.SIGTERM); err == nil && stop != sig {
			// A signal that is not the container's STOPSIGNAL leaves the
			// pending restart as it is, as moby's killWithSignal (no
			// ExitOnNext), which still counts it as the user's stop.
			cs.c.ManuallyStopped = true
			cs.mu.Unlock()
			return nil
		}
	}
	if d.stopRestartingLocked(cs) {
		cs.mu.Unlock()
		return nil
	}
	proc, id, running := cs.proc, cs.c.ID, cs.c.Running()
	ending := false
	if running {
		// As moby's kill: any signal marks the container stopped by the
		// user (unless-stopped's memory); with no stop signal of its own
		// any signal, else SIGKILL or that signal, also rules out a
		// restart at the next exit (ExitOnNext), and thaws a paused
		// container once sent.
		if sig == syscall.SIGKILL || cs.c.Config.StopSignal == "" || sig == stopSignalOf(cs.c) {
			cs.exitOnNext, ending = true, true
		}
		if err := d.markManuallyStoppedLocked(cs); err != nil {
			cs.mu.Unlock()
			return err
		}
	}
	if running && sig != syscall.SIGKILL { // killAndWait logs a SIGKILL's
		d.killEvent(cs.c, sig)
	}
	cs.mu.Unlock()
	if !running {
		// The API adds "cannot kill container: <name>: ", as moby's router does.
		return errdefs.Conflict("container %s is not running", id)
	}
	if sig == syscall.SIGKILL {
		wctx, cancel := context.WithTimeout(ctx, killWaitLimit)
		defer cancel()
		err := d.killAndWait(wctx, cs)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("tried to kill container %s, but did not receive an exit event within %v", id, killWaitLimit)
		}
		return err
	}
	if err := d.runtime.Signal(id, proc, sig); err != nil {
		return err
	}
	if ending {
		cs.mu.Lock()
		d.resumeForSignalLocked(cs)
		cs.mu.Unlock()
	}
	return nil
}

// killWaitLimit bounds how long a SIGKILL waits for the exit to be
// recorded (a process stuck in the kernel never exits); Docker's kill
// gives up after 10 s and then 2 s more, with the same message.
const killWaitLimit = 12 * time.Second

// stopSignalOf is the signal docker stop sends c first.
func stopSignalOf(c *container.Container) syscall.Signal {
	sig, err := parseSignal(c.Config.StopSignal, syscall.SIGTERM)
	if err != nil {
		return syscall.SIGTERM
	}
	return sig
}

// parseSignal is moby/sys/signal's ParseSignal: "SIGTERM", "TERM", or any
// number but 0 (a number Linux has no signal for passes: kill refuses it,
// validSignal; stop sends it, fails, and kills); "" gives def.
func parseSignal(s string, def syscall.Signal) (syscall.Signal, error) {
	if s == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n == 0 {
			return 0, errdefs.Invalid("invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for i := syscall.Signal(1); i < 65; i++ {
		if strings.TrimPrefix(strings.ToUpper(unixSignalName(i)), "SIG") == name {
			return i, nil
		}
	}
	if sig, ok := signalAliases[name]; ok {
		return sig, nil
	}
	if sig, ok := realTimeSignal(name); ok {
		return sig, nil
	}
	return 0, errdefs.Invalid("invalid signal: %s", s)
}

// signalAliases are the names moby/sys/signal's Linux SignalMap has
// beyond the kernel's own.
var signalAliases = map[string]syscall.Signal{"CLD": syscall.SIGCHLD, "IOT": syscall.SIGABRT, "POLL": syscall.SIGIO}

// realTimeSignal reads moby's names of the real-time signals: RTMIN (34),
// RTMIN+1 … RTMIN+15, RTMAX-14 … RTMAX-1, RTMAX (64), as systemd images'
// STOPSIGNAL SIGRTMIN+3 names them.
func realTimeSignal(name string) (syscall.Signal, bool) {
	const rtmin, rtmax = 34, 64
	switch name {
	case "RTMIN":
		return rtmin, true
	case "RTMAX":
		return rtmax, true
	}
	if n, ok := strings.CutPrefix(name, "RTMIN+"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 1 && i <= 15 {
			return syscall.Signal(rtmin + i), true
		}
	}
	if n, ok := strings.CutPrefix(name, "RTMAX-"); ok {
		if i, err := strconv.Atoi(n); err == nil && i >= 1 && i <= 14 {
			return syscall.Signal(rtmax - i), true
		}
	}
	return 0, false
}

// validSignal is ContainerKill's ValidSignalForPlatform check: Linux's
// signals are 1 to 64.
func validSignal(sig syscall.Signal) error {
	if sig < 1 || sig > 64 {
		return errdefs.Invalid("the linux daemon does not support signal %d", int(sig))
	}
	return nil
}

// WaitContainer answers when the condition is met; see api.Backend.
func (d *Daemon) WaitContainer(ctx context.Context, ref string, condition string) (<-chan api.WaitResult, error) {
	cs, err := d.lookup(ref)
	if err != nil {
		return nil, err
	}
	switch condition {
	case "", "not-running", "next-exit", "removed":
	default:
		return nil, errdefs.Invalid("invalid condition: %q", condition)
	}
	// Read the start signal together with the state: docker run sends the
	// wait before the start, and a start that lands before the goroutine
	// below runs must still wake it.
	cs.mu.Lock()
	running, exited, removed, started := cs.c.Running(), cs.exited, cs.removed, cs.started
	pending := cs.restartCancel // set while the policy's restart is pending
	if cs.c.State.Status == container.StatusRestarting && pending != nil {
		// As moby's (Running is true in the back-off): not-running waits
		// for the restarted run's exit, or for the restart to be called off.
		running = true
		exited = d.afterRestart(ctx, cs, pending)
	}
	cs.mu.Unlock()
	out := make(chan api.WaitResult, 1)
	result := func() api.WaitResult {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		return api.WaitResult{StatusCode: cs.c.State.ExitCode}
	}
	if (condition == "" || condition == "not-running") && !running {
		out <- result()
		return out, nil
	}
	go func() {
		switch condition {
		case "removed":
			select {
			case <-removed:
			case <-ctx.Done():
				return
			}
		case "next-exit":
			if !running {
				exited = d.nextRun(ctx, cs, started)
				if exited == nil {
					if ctx.Err() == nil {
						// Removed before a next run: the removal wakes
						// every waiter, as moby's SetRemovalError does.
						out <- result()
					}
					return
				}
			}
			select {
			case <-exited:
			case <-ctx.Done():
				return
			}
		default:
			select {
			case <-exited:
			case <-ctx.Done():
				return
			}
		}
		out <- result()
	}()
	return out, nil
}

// afterRestart returns a channel closed when the run the pending restart
// starts ends, or at once when the restart is called off or fails; nil
// channels never fire, so a ctx that ends first leaves the waiter to its
// own ctx. It runs with cs.mu held and does its waiting in a goroutine.
func (d *Daemon) afterRestart(ctx context.Context, cs *ctrState, pending chan struct{}) chan struct{} {
	done := make(chan struct{})
	go func() {
		select {
		case <-pending: // closed when the restart happens or is called off
		case <-ctx.Done():
			return
		}
		cs.mu.Lock()
		running, exited := cs.c.Running(), cs.exited
		cs.mu.Unlock()
		if running {
			select {
			case <-exited:
			case <-ctx.Done():
				return
			}
		}
		close(done)
	}()
	return done
}

// nextRun waits until started is closed (the start after the caller looked)
// and returns that run's exit channel; nil if ctx ends or the container is
// removed first.
func (d *Daemon) nextRun(ctx context.Context, cs *ctrState, started <-chan struct{}) chan struct{} {
	select {
	case <-started:
	case <-cs.removed:
		return nil
	case <-ctx.Done():
		return nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.exited
}

// normalizedCaps is --cap-add or --cap-drop as the runtime takes it
// (CAP_ names): the record keeps them as the user gave them, checked at
// create.
func normalizedCaps(caps []string) []string {
	out, err := container.NormalizeCapabilities(caps)
	if err != nil {
		return caps // cannot be: checked at create
	}
	return out
}

// taskError is a start failure of the runtime itself (runc create and
// start), the only one moby maps to 126 or 127.
type taskError struct{ error }

func (e taskError) Unwrap() error { return e.error }

// startFailureExitCode is the exit code inspect shows when the runtime
// failed to start the container: runtime.StartFailureCode's, moby's
// setExitCodeFromError, as for an exec.
func startFailureExitCode(err error) int { return runtime.StartFailureCode(err) }

// markManuallyStoppedLocked records that the user stopped or killed the
// container before the signal goes out, as moby's killWithSignal
// checkpoints HasBeenManuallyStopped first: a daemon that dies before the
// exit is recorded still finds it at its next start, and unless-stopped
// leaves the container stopped (cs.mu held).
func (d *Daemon) markManuallyStoppedLocked(cs *ctrState) error {
	if cs.c.ManuallyStopped {
		return nil
	}
	cs.c.ManuallyStopped = true
	if err := d.putContainer(cs.c); err != nil {
		cs.c.ManuallyStopped = false
		return err
	}
	return nil
}

// initBinaries are the init programs --init runs a command under, in the
// order they are looked for on the daemon's PATH: moby's docker-init (a
// static tini), then the static tini of Debian's tini package. Each is
// bound into the container, so it must not need the host's libraries.
var initBinaries = []string{"docker-init", "tini-static"}

// initBinary finds the init program for --init.
func initBinary() (string, error) {
	for _, name := range initBinaries {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", errdefs.Invalid("--init: no init program: neither docker-init nor tini-static (Debian's tini package) is on the daemon's PATH")
}
