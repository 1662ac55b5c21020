package daemon

import (
	"context"
	"fmt"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// PauseContainer is docker pause, as moby's containerPause: the
// container's processes are frozen (runc pause) until docker unpause; it
// stays running (and so in docker ps), its health checks wait, and exec
// is refused.
func (d *Daemon) PauseContainer(ctx context.Context, ref string) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.c
	switch {
	case c.State.Status == container.StatusRestarting:
		return errdefs.Conflict("Container %s is restarting, wait until the container is running", c.ID)
	case !c.Running():
		return errdefs.Conflict("container %s is not running", c.ID)
	case c.Paused():
		return errdefs.Conflict("Container %s is already paused", c.ID)
	}
	if err := d.runtime.Pause(c.ID); err != nil {
		return fmt.Errorf("cannot pause container %s: %w", c.ID, err)
	}
	c.State.Status = container.StatusPaused
	if h := c.State.Health; h != nil && cs.healthStop != nil {
		// moby stops the monitor of a paused container (its
		// updateHealthMonitor), which leaves it unhealthy until a probe
		// after the unpause; berth's waits, with the same status.
		h.Status = container.HealthUnhealthy
	}
	if err := d.putContainer(c); err != nil {
		d.log.Warn("could not save container to disk", "id", c.ShortID(), "err", err) // moby only warns too
	}
	d.containerEvent(c, "pause", nil)
	return nil
}

// UnpauseContainer is docker unpause, as moby's containerUnpause.
func (d *Daemon) UnpauseContainer(ctx context.Context, ref string) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c := cs.c
	if !c.Paused() {
		return fmt.Errorf("Container %s is not paused", c.ID) // moby's, without a kind: a 500
	}
	if err := d.runtime.Resume(c.ID); err != nil {
		return fmt.Errorf("Cannot unpause container %s: %w", c.ID, err)
	}
	c.State.Status = container.StatusRunning
	if err := d.putContainer(c); err != nil {
		d.log.Warn("could not save container to disk", "id", c.ShortID(), "err", err)
	}
	d.containerEvent(c, "unpause", nil)
	return nil
}

// resumeForSignalLocked thaws a paused container after a signal that is
// to end it was sent (SIGKILL, or its stop signal), as moby's
// killWithSignal does: a frozen process only acts on it once thawed. The
// thaw is logged as an unpause, as moby's monitor logs containerd's
// resumed event.
func (d *Daemon) resumeForSignalLocked(cs *ctrState) {
	c := cs.c
	if !c.Paused() {
		return
	}
	if err := d.runtime.Resume(c.ID); err != nil {
		d.log.Warn("cannot unpause container", "id", c.ShortID(), "err", err)
		return
	}
	c.State.Status = container.StatusRunning
	if err := d.putContainer(c); err != nil {
		d.log.Warn("could not save container to disk", "id", c.ShortID(), "err", err)
	}
	d.containerEvent(c, "unpause", nil)
}
