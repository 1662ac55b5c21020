package daemon

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/berth-net/berth/internal/api"
	"github.com/berth-net/berth/internal/errdefs"
	"github.com/berth-net/berth/internal/runtime"
)

// AttachContainer prepares an attach (api.Backend): it logs the attach
// event and starts following the output from now on, the current run's
// or, for a container not running yet (docker run and docker start -a
// attach before they start it), the next run's, into buffers that the
// returned function empties into the client's streams before it writes
// straight through, until that run ends. stdin is fed once the run runs.
// What the container printed before is logs=1's, which the API replays.
func (d *Daemon) AttachContainer(ctx context.Context, ref string) (func(context.Context, api.Streams) error, error) {
	cs, err := d.lookup(ref)
	if err != nil {
		return nil, err
	}
	detach := cs.attach()
	cs.mu.Lock()
	d.containerEvent(cs.c, "attach", nil) // as moby's containerAttach, before it streams
	running, exited, started := cs.c.Running(), cs.exited, cs.started
	openStdin, stdinOnce, id, tty := cs.c.Config.OpenStdin, cs.c.Config.StdinOnce, cs.c.ID, cs.c.Config.Tty
	cs.mu.Unlock()
	fctx, cancel := context.WithCancel(context.Background())
	// runStarted closes once the run to follow runs; done once it ended.
	runStarted, done := make(chan struct{}), exited
	if running {
		close(runStarted)
	} else {
		next := make(chan struct{})
		go func() {
			defer close(next)
			select {
			case <-started: // taken before the client could start it
			case <-cs.removed:
				return
			case <-fctx.Done():
				return
			}
			close(runStarted)
			cs.mu.Lock()
			ex := cs.exited
			cs.mu.Unlock()
			select {
			case <-ex:
			case <-fctx.Done():
			}
		}()
		done = next
	}
	stdout, stderr := &heldWriter{}, &heldWriter{}
	// Attached before this returns: the start the client asks for next
	// is seen from its first byte.
	output, err := d.runtime.AttachOutput(id, tty, !running, stdout, stderr)
	if err != nil {
		cancel()
		detach()
		return nil, err
	}
	followed := make(chan error, 1)
	go func() { followed <- output(fctx, runStarted, done) }()
	return func(ctx context.Context, s api.Streams) error {
		defer detach()
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		if s.Stdin != nil && openStdin {
			go d.feedStdin(id, s.Stdin, stdinOnce, runStarted, done)
		}
		if err := stdout.connect(s.Stdout); err != nil {
			cancel()
		}
		if err := stderr.connect(s.Stderr); err != nil {
			cancel()
		}
		err := <-followed
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}, nil
}

// feedStdin copies the client's stdin to the container's once its run
// runs; with StdinOnce (docker run -i) the client's EOF closes it.
func (d *Daemon) feedStdin(id string, in io.Reader, once bool, runStarted, done <-chan struct{}) {
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
	_, _ = io.Copy(w, in)
	w.Close()
	if once {
		if err := d.runtime.CloseStdin(id); err != nil {
			d.log.Warn("close stdin", "id", id[:12], "err", err)
		}
	}
}

// heldWriter keeps what is written to it until connect gives it its
// writer (nil: discard), then writes it there and passes the rest
// straight through.
type heldWriter struct {
	mu   sync.Mutex
	held bytes.Buffer
	w    io.Writer
}

func (h *heldWriter) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.w == nil {
		return h.held.Write(p)
	}
	return h.w.Write(p)
}

func (h *heldWriter) connect(w io.Writer) error {
	if w == nil {
		w = io.Discard
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.w = w
	_, err := w.Write(h.held.Bytes())
	h.held = bytes.Buffer{}
	return err
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
	o := runtime.LogOptions{Tail: opts.Tail, Since: opts.Since, Until: opts.Until, Timestamps: opts.Timestamps, Details: opts.Details, Follow: opts.Follow && running}
	return d.runtime.Logs(ctx, id, stdout, stderr, o, exited)
}

// CheckLogs refuses times for a log that has none (an older berth's,
// until its container starts again).
func (d *Daemon) CheckLogs(ctx context.Context, ref string, opts api.LogsOptions) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	id := cs.c.ID
	cs.mu.Unlock()
	return d.runtime.CheckLogOptions(id, runtime.LogOptions{Since: opts.Since, Until: opts.Until, Timestamps: opts.Timestamps})
}

// ResizeContainer resizes a tty container's terminal (without a tty
// there is nothing to resize), and logs a "resize" event, as moby's
// ContainerResize; a container that is not running is a conflict.
func (d *Daemon) ResizeContainer(ctx context.Context, ref string, height, width uint) error {
	cs, err := d.lookup(ref)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	tty, running, id := cs.c.Config.Tty, cs.c.Running(), cs.c.ID
	c := cloneContainer(cs.c)
	cs.mu.Unlock()
	if !running {
		return errdefs.Conflict("container %s is not running", id)
	}
	if tty {
		if err := d.runtime.Resize(id, height, width); err != nil {
			return err
		}
	}
	d.containerEvent(c, "resize", map[string]string{"height": strconv.FormatUint(uint64(height), 10), "width": strconv.FormatUint(uint64(width), 10)})
	return nil
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
