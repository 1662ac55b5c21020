package daemon

import (
	"context"
	"io"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/errdefs"
)

// AttachContainer streams a container's output from now on (what it
// printed before is logs=1's, which the API replays first) until its run
// ends, and feeds stdin when it is open. A container that is not running
// yet (docker run and docker start -a attach before they start it) is
// followed from now through its next run.
func (d *Daemon) AttachContainer(ctx context.Context, ref string, s api.Streams) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	defer cs.attach()()
	cs.mu.Lock()
	d.containerEvent(cs.c, "attach", nil) // as moby's containerAttach, before it streams
	running, exited, started := cs.c.Running(), cs.exited, cs.started
	openStdin, stdinOnce, id := cs.c.Config.OpenStdin, cs.c.Config.StdinOnce, cs.c.ID
	cs.mu.Unlock()
	// runStarted closes once the run to follow runs (at once if it does).
	runStarted, done := make(chan struct{}), exited
	if running {
		close(runStarted)
	} else {
		next := make(chan struct{})
		go func() {
			defer close(next)
			select {
			case <-started:
			case <-cs.removed:
				return
			case <-ctx.Done():
				return
			}
			close(runStarted)
			cs.mu.Lock()
			ex := cs.exited
			cs.mu.Unlock()
			select {
			case <-ex:
			case <-ctx.Done():
			}
		}()
		done = next
	}
	if s.Stdin != nil && openStdin {
		go func() {
			select {
			case <-runStarted:
			case <-done:
				return
			}
			w, err := d.runtime.WriteStdin(id)
			if err != nil {
				d.log.Warn("attach stdin", "id", id[:12], "err", err)
				return
			}
			_, _ = io.Copy(w, s.Stdin)
			w.Close()
			// docker run -i: the client's EOF is the container's EOF.
			if stdinOnce {
				if err := d.runtime.CloseStdin(id); err != nil {
					d.log.Warn("close stdin", "id", id[:12], "err", err)
				}
			}
		}()
	}
	stdout, stderr := s.Stdout, s.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	return d.runtime.Logs(ctx, id, stdout, stderr, 0, true, done)
}

// ContainerLogs writes what the container printed, following it while it runs.
func (d *Daemon) ContainerLogs(ctx context.Context, ref string, opts api.LogsOptions, stdout, stderr io.Writer) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	exited, id, running, readable := cs.exited, cs.c.ID, cs.c.Running(), cs.c.Config.LogConfig.Readable()
	cs.mu.Unlock()
	if !readable {
		return errdefs.NotImplemented("configured logging driver does not support reading") // moby's ErrReadLogsNotSupported
	}
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
	return d.runtime.Logs(ctx, id, stdout, stderr, opts.Tail, opts.Follow && running, exited)
}

// ResizeContainer resizes a tty container's terminal; without a tty it is a no-op, as in Docker.
func (d *Daemon) ResizeContainer(ctx context.Context, ref string, height, width uint) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	tty, running, id := cs.c.Config.Tty, cs.c.Running(), cs.c.ID
	cs.mu.Unlock()
	if !tty || !running {
		return nil
	}
	return d.runtime.Resize(id, height, width)
}

// attachDrainLimit bounds how long an AutoRemove waits for attached
// clients to read the output of the run that ended (they read files, so
// it takes them milliseconds); it only keeps a stuck client from keeping
// the container forever.
const attachDrainLimit = 10 * time.Second

// awaitAttaches waits until the clients attached to cs have read what the
// run printed (they return once it exited), for an AutoRemove: a command
// that printed and exited at once, before its docker run had opened the
// log, lost its output when the removal came first.
func (d *Daemon) awaitAttaches(cs *ctrState) {
	select {
	case <-cs.attachesGone():
	case <-time.After(attachDrainLimit):
		d.log.Warn("removing a container whose attached client is still reading", "id", cs.c.ShortID())
	}
}
