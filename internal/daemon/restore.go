package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/dns"
	"github.com/berth-net/berth/internal/network"
	"github.com/berth-net/berth/internal/runtime"
	"github.com/berth-net/berth/internal/store"
)

// restoreContainers loads the container records after a (re)start. A
// container whose init still runs (same PID and start time) is re-adopted
// with its sandbox and addresses; any other is marked exited and its
// networking and runc state are released. Sandboxes that belong to no
// running container — a crash in the middle of a start — are deleted.
func (d *Daemon) restoreContainers(ctx context.Context) error {
	var recs []*container.Container
	err := d.store.View(func(tx store.Tx) error {
		return tx.ForEach(store.BucketContainers, func(_ string, raw []byte) error {
			c := &container.Container{}
			if err := json.Unmarshal(raw, c); err != nil {
				return fmt.Errorf("decode container record: %w", err)
			}
			recs = append(recs, c)
			return nil
		})
	})
	if err != nil {
		return err
	}
	var errs []error
	var autoRemove []*ctrState
	var adopted []runtime.Process
	var readopted []*ctrState
	live := map[string]bool{}
	for _, c := range recs {
		cs := newCtrState(c)
		d.mu.Lock()
		d.containers[c.ID] = cs
		if len(c.Config.Links) > 0 {
			d.links[c.ID] = slices.Clone(c.Config.Links)
		}
		d.mu.Unlock()
		proc := runtime.Process{Pid: c.State.Pid, PidStart: c.State.PidStart}
		if c.Running() && proc.Pid > 0 && d.runtime.Alive(proc) {
			if _, err := d.net.Sandbox(c.State.SandboxID); err == nil || c.State.SandboxID == "" {
				cs.proc = proc
				adopted = append(adopted, proc)
				live[c.State.SandboxID] = true
				if err := d.dropUnjoined(c); err != nil {
					errs = append(errs, err)
				}
				// The OOM count is read now: a kill from here on is the
				// container's, even one before its monitor runs.
				cs.mu.Lock()
				d.watchOOMLocked(cs, proc, false)
				cs.mu.Unlock()
				readopted = append(readopted, cs)
				continue
			}
			// Its network is gone (the sandbox record was lost): a container
			// without the network it was promised is worse than a stopped one.
			d.log.Warn("running container lost its sandbox; stopping it", "name", c.Name)
			_ = d.runtime.Signal(c.ID, proc, 9)
		}
		if err := d.markStopped(cs); err != nil {
			errs = append(errs, err)
		}
		if c.Config.AutoRemove {
			autoRemove = append(autoRemove, cs)
		}
	}
	d.restoreResolvers(readopted)
	for _, cs := range readopted {
		c, proc := cs.c, cs.proc
		go d.monitor(cs, proc, cs.exited)
		cs.mu.Lock()
		d.startHealthLocked(cs) // starting again, as moby's restore
		cs.mu.Unlock()
		d.log.Info("re-adopted running container", "name", c.Name, "id", c.ShortID(), "pid", proc.Pid)
		if !c.Config.Tty && !d.runtime.OutputKept(c.ID) {
			d.log.Warn("the output of a re-adopted container is lost: its reaper died while no daemon ran, and with it the only reader of its stdout and stderr (restart the container to log it again)",
				"name", c.Name, "id", c.ShortID())
		}
	}
	// As moby's restore: a --rm container that is not running (it stopped
	// while no daemon watched it, or was never started) is removed now.
	for _, cs := range autoRemove {
		if err := d.remove(cs, cs.c.ID, true); err != nil {
			errs = append(errs, err)
		}
	}
	for _, sb := range d.net.Sandboxes() {
		if !live[sb.ID] {
			d.log.Info("deleting sandbox of a container that is not running", "sandbox", sb.ID[:12])
			if err := d.net.DeleteSandbox(ctx, sb.ID); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// The records left are exec'd processes' of an earlier daemon, and
	// containers' removed since; markStopped took those it needed.
	if err := d.runtime.SweepExits(adopted); err != nil {
		errs = append(errs, err)
	}
	d.relinkByName()
	d.restoreLinkHosts()
	d.startByPolicy(recs) // after the sweep above, which would take their new sandboxes for leftovers
	return errors.Join(errs...)
}

// resolverStarts is how many re-adopted containers' DNS resolvers are
// made at once after a daemon start: each is mostly waiting on the
// kernel (two sockets taken over, or, after a daemon that was killed, a
// thread entering the namespace, a read of its redirect and two sockets
// bound), so a few in flight beat one by one even on 2 CPUs.
const resolverStarts = 8

// restoreResolvers re-creates the DNS resolvers of re-adopted containers
// on the sockets the old daemon left with the reaper (keepSockets), or
// anew when it left none, several at once: one by one,
// 250 of them kept a restarted daemon from serving for a third of a
// second, and the containers' lookups failing all along. Before their
// monitors run, so that no exit stops a resolver not made yet.
func (d *Daemon) restoreResolvers(css []*ctrState) {
	kept := d.keptDNS
	d.keptDNS = nil
	type job struct {
		c    *container.Container
		kept *dns.Sockets
	}
	work := make(chan job)
	var wg sync.WaitGroup
	for range min(resolverStarts, len(css)) {
		wg.Go(func() {
			for j := range work {
				d.restoreDNS(j.c, j.kept)
			}
		})
	}
	for _, cs := range css {
		id := cs.c.State.SandboxID
		work <- job{cs.c, kept[id]}
		delete(kept, id)
	}
	close(work)
	wg.Wait()
	for _, s := range kept { // containers gone meanwhile
		s.Close()
	}
}

// startByPolicy starts the containers whose restart policy wants them
// running after a daemon start, as moby's restore does: always (even if
// the user had stopped it), unless-stopped unless the user had, on-failure
// after a failed exit with restarts left; containers never started are
// left alone. It returns once they are started: Start runs before the API
// serves, so that no user command (rm -f, start, stop) races a start made
// here. Up to startParallel at a time; those sharing another's network,
// PID or IPC namespace or with legacy links go after the others, so that
// their donors and children run first (moby waits for a parent's
// children, not for donors: its joiners may lose the race).
func (d *Daemon) startByPolicy(recs []*container.Container) {
	var first, then []*ctrState
	for _, rec := range recs {
		cs := d.stateByID(rec.ID)
		if cs == nil {
			continue // removed above (--rm)
		}
		// Under its lock: a re-adopted container's monitor may be
		// recording an exit meanwhile.
		cs.mu.Lock()
		c := cs.c
		wanted := c.Status() == container.StatusExited &&
			c.Config.RestartPolicy.ShouldRestart(c.State.ExitCode, c.ManuallyStopped, c.RestartCount)
		shared := len(donorsOf(c)) > 0 || len(c.Config.Links) > 0
		cs.mu.Unlock()
		switch {
		case !wanted:
		case shared:
			then = append(then, cs)
		default:
			first = append(first, cs)
		}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, startParallel)
	for _, cs := range first {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			d.startOneByPolicy(cs)
		}()
	}
	wg.Wait()
	d.startInOrder(then)
}

// startInOrder starts, one at a time, each container once none of the
// containers it needs running (its link children, the ones whose
// namespaces it shares) is still waiting in the list, as moby waits for a parent's
// children; a circle starts in list order.
func (d *Daemon) startInOrder(pending []*ctrState) {
	waiting := func(cs *ctrState, among []*ctrState) bool {
		cs.mu.Lock()
		needs := donorsOf(cs.c)
		id := cs.c.ID
		cs.mu.Unlock()
		d.mu.Lock()
		for _, l := range d.links[id] {
			needs = append(needs, l.ChildID)
		}
		d.mu.Unlock()
		for _, o := range among {
			if o != cs && slices.Contains(needs, o.c.ID) {
				return true
			}
		}
		return false
	}
	for len(pending) > 0 {
		var later []*ctrState
		for _, cs := range pending {
			if waiting(cs, pending) {
				later = append(later, cs)
				continue
			}
			d.startOneByPolicy(cs)
		}
		if len(later) == len(pending) { // a circle: start them anyway
			for _, cs := range later {
				d.startOneByPolicy(cs)
			}
			return
		}
		pending = later
	}
}

// donorsOf are the containers whose network, PID or IPC namespace c
// joins (by ID, or the name given where it named no container at create).
func donorsOf(c *container.Container) []string {
	var out []string
	if ref, ok := container.SharedNetns(c.Config.NetworkMode); ok {
		out = append(out, ref)
	}
	for _, mode := range []string{c.Config.Namespaces.PidMode, c.Config.Namespaces.IpcMode} {
		if ref, ok := container.SharedNamespace(mode); ok {
			out = append(out, ref)
		}
	}
	return out
}

// startParallel bounds the containers startByPolicy starts at once.
const startParallel = 8

// startOneByPolicy is one start of startByPolicy: a fresh start, with the
// restart count and the user's stop forgotten, as moby's restore does.
func (d *Daemon) startOneByPolicy(cs *ctrState) {
	cs.mu.Lock()
	cs.c.RestartCount, cs.c.ManuallyStopped, cs.restartDelay = 0, false, 0
	cs.restartCancel = make(chan struct{})
	auto, name, id := cs.restartCancel, cs.c.Name, cs.c.ShortID()
	cs.mu.Unlock()
	if err := d.startContainer(context.Background(), cs, auto); err != nil {
		d.log.Error("start by the restart policy after a daemon start", "name", name, "id", id, "err", err)
		return
	}
	d.log.Info("started by its restart policy", "name", name, "id", id)
}

// markStopped releases what a not-running container may still hold and
// records it as exited (or keeps "created" if it never ran).
func (d *Daemon) markStopped(cs *ctrState) error {
	c := cs.c
	err := d.runtime.Release(c.ID)
	d.unmountShm(c.ID) // a shareable container's /dev/shm, if it had one
	wasRunning := c.Running()
	pid, pidStart := c.State.Pid, c.State.PidStart
	c.State.SandboxID, c.State.SandboxKey, c.State.JoinedNetns, c.State.Pid, c.State.PidStart = "", "", "", 0, 0
	if c.State.Status == container.StatusRestarting { // its planned restart died with the daemon
		c.State.Status = container.StatusExited
	}
	proc := runtime.Process{Pid: pid, PidStart: pidStart}
	if wasRunning {
		c.State.Status = container.StatusExited
		// How it ended while no daemon watched, if the reaper saw it.
		if e, ok := d.runtime.LastExit(proc); ok {
			c.State.ExitCode, c.State.FinishedAt = e.Code, e.At
		} else {
			c.State.ExitCode = 255 // moby's restore, with no State.Error either
			c.State.FinishedAt = time.Now().UTC()
			d.log.Warn("container found stopped, its exit unknown", "name", c.Name, "id", c.ShortID())
		}
	}
	perr := d.putContainer(c)
	if perr == nil && wasRunning {
		d.runtime.ForgetExit(proc) // the store has it now
	}
	return errors.Join(err, perr)
}

// dropUnjoined takes out of a re-adopted container's networks those it
// has no endpoint on. A connect records the container with the new
// network in the same store record as the endpoint's intent; a crash
// before the endpoint was ready has the network's reconcile roll the
// endpoint back, and the container must then not claim the network (it
// could be neither connected nor disconnected without --force).
func (d *Daemon) dropUnjoined(c *container.Container) error {
	if c.State.SandboxID == "" {
		return nil
	}
	stale := unjoinedNetworks(c.Config.Networks, d.net.Attachments(c.State.SandboxID), d.net.Network)
	if len(stale) == 0 {
		return nil
	}
	d.log.Warn("container was being connected when berth stopped; dropping the networks it did not join", "name", c.Name, "networks", stale)
	for _, name := range stale {
		delete(c.Config.Networks, name)
	}
	return d.putContainer(c)
}

// unjoinedNetworks lists the keys of nets naming an existing network that
// none of joined is on. Networks that no longer exist are kept (as for a
// stopped container, a dangling reference is the user's to remove).
func unjoinedNetworks(nets map[string]container.EndpointRequest, joined []network.Attachment, lookup func(string) (*network.Network, error)) []string {
	on := map[string]bool{}
	for _, a := range joined {
		on[a.Network.ID] = true
	}
	var stale []string
	for name := range nets {
		n, err := lookup(name)
		if err == nil && !on[n.ID] {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	return stale
}
