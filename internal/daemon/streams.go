package daemon

import (
	"context"
	"io"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/container"
)

// AttachContainer streams a container's output from the start of its
// current (or next) run until it exits, and feeds stdin when it is open.
// docker run attaches before it starts the container, so this first waits
// for the start.
func (d *Daemon) AttachContainer(ctx context.Context, ref string, s api.Streams) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	status, exited, started := cs.c.Status(), cs.exited, cs.started
	openStdin, id := cs.c.Config.OpenStdin, cs.c.ID
	cs.mu.Unlock()
	if status == container.StatusCreated {
		select {
		case <-started:
		case <-cs.removed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		cs.mu.Lock()
		exited = cs.exited
		cs.mu.Unlock()
	}
	if s.Stdin != nil && openStdin {
		if w, err := d.runtime.WriteStdin(id); err == nil {
			go func() {
				_, _ = io.Copy(w, s.Stdin)
				w.Close()
			}()
		} else {
			d.log.Warn("attach stdin", "id", id[:12], "err", err)
		}
	}
	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	return d.runtime.Logs(ctx, id, stdout, stderr, true, exited)
}

// ContainerLogs writes what the container printed, following it while it runs.
func (d *Daemon) ContainerLogs(ctx context.Context, ref string, opts api.LogsOptions, stdout, stderr io.Writer) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	exited, id, running := cs.exited, cs.c.ID, cs.c.Running()
	cs.mu.Unlock()
	if !opts.Stdout {
		stdout = io.Discard
	}
	if !opts.Stderr {
		stderr = io.Discard
	}
	if !opts.Follow || !running {
		done := make(chan struct{})
		close(done)
		exited = done
	}
	return d.runtime.Logs(ctx, id, stdout, stderr, opts.Follow && running, exited)
}

// ResizeContainer is accepted for the CLI's sake; container ttys are sized at start.
func (d *Daemon) ResizeContainer(ctx context.Context, ref string, height, width uint) error {
	_, err := d.lookup(ref)
	return err
}

// waitExit waits at most timeout for the current run to end.
func waitExit(exited <-chan struct{}, timeout time.Duration) bool {
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
		return false
	}
}
