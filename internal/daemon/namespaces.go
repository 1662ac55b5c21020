package daemon

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime"
)

// nsJoin is what a start's --pid, --ipc, --uts and --cgroupns give the
// runtime (runtime.Spec's PidNS, IpcNS, Shm, UTSHost, CgroupNS).
type nsJoin struct {
	pid, ipc, shm     string
	utsHost, cgroupNS bool
	// donors are the containers whose namespaces are joined by their
	// init's PID, checked again just before the start.
	donors []nsDonor
}

type nsDonor struct {
	what, id string
	proc     runtime.Process
}

// adaptNamespaces are moby's create defaults (adaptContainerSettings):
// IpcMode private; CgroupnsMode private on cgroup v2, host on v1; a
// donor named by its name recorded by its ID.
func (d *Daemon) adaptNamespaces(ns *container.Namespaces) {
	if ns.IpcMode == "" {
		ns.IpcMode = container.ModePrivate
	}
	if ns.CgroupnsMode == "" {
		ns.CgroupnsMode = container.ModeHost
		if d.limits.CgroupV2 {
			ns.CgroupnsMode = container.ModePrivate
		}
	}
	for _, mode := range []*string{&ns.PidMode, &ns.IpcMode} {
		if ref, ok := container.SharedNamespace(*mode); ok {
			if cs, err := d.lookup(ref); err == nil {
				*mode = container.SharedNetnsMode(cs.c.ID)
			}
		}
	}
}

// namespaceJoins works out cs's namespaces for its start, reading the
// containers whose PID or IPC namespace it joins before cs is locked (a
// start never holds two containers' locks), with moby's errors for one
// that does not run or whose IPC namespace is not shareable.
func (d *Daemon) namespaceJoins(cs *ctrState) (nsJoin, error) {
	cs.mu.Lock()
	ns, id := cs.c.Config.Namespaces, cs.c.ID
	cs.mu.Unlock()
	j := nsJoin{utsHost: ns.UTSMode == container.ModeHost, cgroupNS: ns.CgroupnsMode == container.ModePrivate}
	donor := func(ref, what string) (*container.Container, error) {
		dcs, err := d.lookup(ref)
		if err != nil {
			return nil, errdefs.Invalid("failed to join %s namespace: %w", what, err)
		}
		if dcs.c.ID == id {
			return nil, errdefs.Invalid("cannot join own %s namespace", what)
		}
		dcs.mu.Lock()
		c := cloneContainer(dcs.c)
		dcs.mu.Unlock()
		if c.Status() == container.StatusRestarting {
			return nil, errContainerIsRestarting(c.ID)
		}
		if !c.Running() {
			return nil, errdefs.Conflict("failed to join %s namespace: container %s is not running", what, c.ID)
		}
		return c, nil
	}
	switch ref, ok := container.SharedNamespace(ns.PidMode); {
	case ok:
		c, err := donor(ref, "PID")
		if err != nil {
			return j, err
		}
		j.pid = "/proc/" + strconv.Itoa(c.State.Pid) + "/ns/pid"
		j.donors = append(j.donors, nsDonor{"PID", c.ID, runtime.Process{Pid: c.State.Pid, PidStart: c.State.PidStart}})
	case ns.PidMode == container.ModeHost:
		j.pid = container.ModeHost
	}
	switch ref, ok := container.SharedNamespace(ns.IpcMode); {
	case ok:
		c, err := donor(ref, "IPC")
		if err != nil {
			return j, err
		}
		switch shm, ok := d.shmOf(c, 0); {
		case !ok:
			return j, errdefs.Invalid("failed to join IPC namespace: container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container)", c.ID)
		case shm == "/dev/shm": // moby's: a donor in the host's IPC namespace has the host's
			j.ipc, j.shm = container.ModeHost, shm
		default:
			j.ipc, j.shm = "/proc/"+strconv.Itoa(c.State.Pid)+"/ns/ipc", shm
			j.donors = append(j.donors, nsDonor{"IPC", c.ID, runtime.Process{Pid: c.State.Pid, PidStart: c.State.PidStart}})
		}
	case ns.IpcMode == container.ModeHost:
		j.ipc, j.shm = container.ModeHost, "/dev/shm"
	case ns.IpcMode == container.ModeNone:
		j.shm = container.ModeNone
	}
	return j, nil
}

// shmOf is the host directory that is running container c's /dev/shm, as
// moby's ShmPath: a shareable container's tmpfs (none if it mounted a
// /dev/shm of its own), the host's for one in the host's IPC namespace,
// its donor's for one that joined another's; false for the others.
func (d *Daemon) shmOf(c *container.Container, depth int) (string, bool) {
	mode := c.Config.Namespaces.IpcMode
	switch ref, joined := container.SharedNamespace(mode); {
	case mode == container.ModeShareable && !hasMountAt(c, "/dev/shm"):
		return d.shmDir(c.ID), true
	case mode == container.ModeHost:
		return "/dev/shm", true
	case joined && depth < 8:
		dcs, err := d.lookup(ref)
		if err != nil {
			return "", false
		}
		dcs.mu.Lock()
		donor := cloneContainer(dcs.c)
		dcs.mu.Unlock()
		return d.shmOf(donor, depth+1)
	}
	return "", false
}

// hasMountAt reports whether c has a mount of the user's at dst.
func hasMountAt(c *container.Container, dst string) bool {
	for _, m := range c.Config.Mounts {
		if path.Clean(m.Destination) == dst {
			return true
		}
	}
	return false
}

// shmDir is where a shareable container's /dev/shm is mounted on the
// host, for the containers that join its IPC namespace to bind too (moby's
// ShmPath).
func (d *Daemon) shmDir(id string) string { return filepath.Join(d.filesDir(id), "shm") }

// mountShm mounts a shareable container's /dev/shm: a tmpfs of its size
// that outlives none of its runs (unmountShm at the exit).
func (d *Daemon) mountShm(id string, size int64) (string, error) {
	dir := d.shmDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	d.unmountShm(id) // a run before a daemon crash may have left it
	data := "mode=1777,size=" + strconv.FormatInt(size, 10)
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return "", fmt.Errorf("mounting shm tmpfs: %w", err)
	}
	return dir, nil
}

// unmountShm unmounts a shareable container's /dev/shm, if it is mounted.
func (d *Daemon) unmountShm(id string) {
	err := unix.Unmount(d.shmDir(id), unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		d.log.Warn("unmount a container's /dev/shm", "id", id, "err", err)
	}
}
