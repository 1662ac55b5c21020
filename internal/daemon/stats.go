package daemon

import (
	"context"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
	"github.com/berth-net/berth/internal/errdefs"
)

// statsInterval is how often moby's stats collector samples.
const statsInterval = time.Second

// ContainerStats is docker stats, as moby's ContainerStats: with
// oneShot, one sample; without stream, the second of two samples a
// second apart (so that docker stats --no-stream has a CPU figure); with
// stream, a sample every second until ctx ends or the container is
// removed. A container that does not run answers an empty frame (once
// without stream, every second with it).
func (d *Daemon) ContainerStats(ctx context.Context, ref string, stream, oneShot bool, emit func(api.StatsFrame) error) error {
	if stream && oneShot {
		return errdefs.Invalid("cannot have stream=true and one-shot=true")
	}
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	sample := func() (api.StatsFrame, error) {
		cs.mu.Lock()
		c := cs.c
		f := api.StatsFrame{Name: "/" + c.Name, ID: c.ID}
		running, pid := c.Running() && c.State.Status != container.StatusRestarting, c.State.Pid
		cs.mu.Unlock()
		if !running {
			f.Empty = true
			return f, nil
		}
		s, err := d.runtime.Stats(pid)
		if errdefs.Is(err, errdefs.KindNotFound) {
			f.Empty = true // it exited meanwhile
			return f, nil
		}
		f.Stats = s
		return f, err
	}
	first, err := sample()
	if err != nil {
		return err
	}
	if first.Empty && !stream || oneShot {
		return emit(first)
	}
	prev := first
	next := func(f api.StatsFrame) api.StatsFrame {
		if !f.Empty && !prev.Empty {
			f.PreCPU, f.PreRead = prev.Stats.CPU, prev.Stats.Read
		}
		prev = f
		return f
	}
	if stream {
		if err := emit(first); err != nil {
			return err
		}
	}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cs.removed:
			if !stream {
				// Removed during --no-stream's second: its empty frame,
				// not an empty answer.
				return emit(api.StatsFrame{Name: prev.Name, ID: prev.ID, Empty: true})
			}
			return nil
		case <-tick.C:
		}
		f, err := sample()
		if err != nil {
			return err
		}
		if err := emit(next(f)); err != nil || !stream {
			return err
		}
	}
}

// ContainerSize is docker ps -s's and inspect -s's figures: what the
// container wrote (its overlay upper layer) and that plus its image.
func (d *Daemon) ContainerSize(ctx context.Context, ref string) (rw, rootfs int64, err error) {
	cs, err := d.lookup(ref)
	if err != nil {
		return 0, 0, err
	}
	cs.mu.Lock()
	id, imageID := cs.c.ID, cs.c.Config.ImageID
	cs.mu.Unlock()
	if rw, err = d.runtime.UpperSize(id); err != nil {
		return 0, 0, err
	}
	rootfs = rw
	if img, err := d.images.Get(imageID); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs, nil
}

// ContainerChanges is containerChanges, timed for the metrics when it succeeds
// (moby's container action "changes").
func (d *Daemon) ContainerChanges(ctx context.Context, ref string) ([]container.Change, error) {
	start := time.Now()
	changes, err := d.containerChanges(ctx, ref)
	if err == nil {
		d.metrics.timeContainer("changes", start)
	}
	return changes, err
}

// ContainerChanges is docker diff: what the container changed in its root
// file system against its image.
func (d *Daemon) containerChanges(ctx context.Context, ref string) ([]container.Change, error) {
	cs, err := d.lookup(ref)
	if err != nil {
		return nil, err
	}
	cs.mu.Lock()
	id, imageID := cs.c.ID, cs.c.Config.ImageID
	cs.mu.Unlock()
	img, err := d.images.Get(imageID)
	if err != nil {
		return nil, err
	}
	return d.runtime.Changes(id, img.RootfsDir)
}
