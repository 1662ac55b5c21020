package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// TopContainer is docker top, as moby's ContainerTop: the host's ps with
// psArgs (default -ef), asked for the container's processes and filtered
// down to them by the PID column.
func (d *Daemon) TopContainer(ctx context.Context, ref, psArgs string) (container.Top, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := container.CheckPSArgs(psArgs); err != nil {
		return container.Top{}, errdefs.Invalid("%s", err)
	}
	cs, err := d.lookup(ref)
	if err != nil {
		return container.Top{}, err
	}
	cs.mu.Lock()
	c := cs.c
	running, restarting, id := c.Running(), c.State.Status == container.StatusRestarting, c.ID
	cs.mu.Unlock()
	switch {
	case restarting:
		return container.Top{}, errdefs.Conflict("Container %s is restarting, wait until the container is running", id)
	case !running:
		return container.Top{}, errdefs.Conflict("container %s is not running", id)
	}
	pids, err := d.runtime.Pids(ctx, id)
	if err != nil {
		return container.Top{}, err
	}
	args := strings.Split(psArgs, " ")
	out, err := exec.CommandContext(ctx, "ps", append(args, container.PSPidsArg(pids))...).Output()
	if err != nil {
		// A ps without -q (busybox's), or arguments -q does not go with.
		if out, err = exec.CommandContext(ctx, "ps", args...).Output(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if line, _, _ := bytes.Cut(ee.Stderr, []byte("\n")); len(line) > 0 {
					err = errors.New(string(line))
				}
			}
			return container.Top{}, fmt.Errorf("ps: %w", err)
		}
	}
	top, err := container.ParsePS(string(out), pids)
	if err != nil {
		return container.Top{}, err
	}
	cs.mu.Lock()
	d.containerEvent(cs.c, "top", nil)
	cs.mu.Unlock()
	return top, nil
}
