package runtime

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
)

// ttyHub is a tty container's attached clients, in this process: its
// terminal's copier runs here (copyConsoleLines). fan is the run's while
// one runs; pending wait for the next.
type ttyHub struct {
	fan     *outputFan
	pending []fanSub
}

// ttyFanLocked starts a run's fan for a tty container (r.mu held), with
// the clients that waited for it.
func (r *Runtime) ttyFanLocked(id string) *outputFan {
	if r.tty == nil {
		r.tty = map[string]*ttyHub{}
	}
	h := r.tty[id]
	if h == nil {
		h = &ttyHub{}
		r.tty[id] = h
	}
	f := &outputFan{opened: true} // the terminal came after runc succeeded
	for _, s := range h.pending {
		f.add(s)
	}
	h.fan, h.pending = f, nil
	return f
}

// endTTYFan ends a tty container's run's fan.
func (r *Runtime) endTTYFan(id string, f *outputFan) {
	f.end()
	r.mu.Lock()
	defer r.mu.Unlock()
	if h := r.tty[id]; h != nil && h.fan == f {
		h.fan = nil
		if len(h.pending) == 0 {
			delete(r.tty, id)
		}
	}
}

// AttachOutput attaches to the output of container id's run, or with
// next (it does not run) of its next one, from now on: the bytes as the
// container wrote them, stdout's to stdout and stderr's to stderr (a tty
// container's all to stdout), not its log (fan.go). The attachment is
// made before it returns (a start that follows is seen from its first
// byte). stream copies until that run's output is over (its pipes
// closed: what the container wrote before it exited is all there, as
// moby's CopyStreams), or ctx ends, or done closes (the run exited, or
// the container went away) before started did (no run came). A
// container an older reaper started writes raw files, which stream
// follows instead.
func (r *Runtime) AttachOutput(id string, tty, next bool, stdout, stderr io.Writer) (stream func(ctx context.Context, started, done <-chan struct{}) error, err error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	follow := func(ctx context.Context, _, done <-chan struct{}) error {
		return r.Logs(ctx, id, stdout, stderr, LogOptions{Tail: 0, Follow: true}, done)
	}
	if r.legacyLogs(id) {
		// Its next start converts the raw files, if this reaper copies.
		if logged, err := r.reaper.copiesLogs(); err != nil || !logged || !next {
			return follow, nil
		}
	}
	if tty {
		sub := newWriterSub(stdout, stderr)
		r.mu.Lock()
		if r.tty == nil {
			r.tty = map[string]*ttyHub{}
		}
		h := r.tty[id]
		if h == nil {
			h = &ttyHub{}
			r.tty[id] = h
		}
		if next || h.fan == nil || !h.fan.add(sub) {
			h.pending = append(h.pending, sub)
		}
		r.mu.Unlock()
		return func(ctx context.Context, started, done <-chan struct{}) error {
			defer r.detachTTY(id, sub)
			return awaitOutput(ctx, sub.done, started, done)
		}, nil
	}
	if ok, err := r.reaper.can(capAttach); err != nil || !ok {
		return follow, nil // a reaper of the first json logs: their file
	}
	c, err := r.reaper.attach(r.JSONLogPath(id), next)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, started, done <-chan struct{}) error {
		defer c.Close()
		ended := make(chan struct{})
		var cerr error
		go func() {
			defer close(ended)
			cerr = copyAttached(c, stdout, stderr)
		}()
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
		err := awaitOutput(ctx, ended, started, done)
		c.Close()
		<-ended
		if err == nil {
			err = cerr
		}
		return err
	}, nil
}

// awaitOutput waits until the attached output ended, ctx ended, or done
// closed with no run started (started nil: one runs).
func awaitOutput(ctx context.Context, ended, started, done <-chan struct{}) error {
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
	}
	if started != nil && !isClosed(started) {
		return nil // no run came to attach to
	}
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// copyAttached writes the reaper's messages (a stream byte, then the
// bytes) to stdout and stderr until the connection ends.
func copyAttached(c *net.UnixConn, stdout, stderr io.Writer) error {
	buf := make([]byte, 4*logLineMax+1) // a chunk is at most one read of the copier's
	for {
		n, err := c.Read(buf)
		if n == 0 || err != nil {
			if n == 0 || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		w := stdout
		if buf[0] == 2 {
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(buf[1:n]); err != nil {
				return err
			}
		}
	}
}

func (r *Runtime) detachTTY(id string, sub fanSub) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.tty[id]
	if h == nil {
		return
	}
	h.pending = dropSub(h.pending, sub)
	if h.fan != nil {
		h.fan.remove(sub)
	}
	if h.fan == nil && len(h.pending) == 0 {
		delete(r.tty, id)
	}
}

// can says whether the reaper can do capability what.
func (rc *reaperClient) can(what string) (bool, error) {
	if err := rc.ensure(); err != nil {
		return false, err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Contains(rc.caps, what), nil
}

// attach opens an attachment to the output of the copy into the log at
// path (attach, in the reaper).
func (rc *reaperClient) attach(path string, next bool) (*net.UnixConn, error) {
	c, err := rc.dial(reaperRequest{Op: "attach", Log: &reaperLog{Path: path}, Next: next}, nil)
	if err != nil {
		return nil, err
	}
	rep, err := readReply(c)
	if err == nil && rep.Err != "" {
		err = errors.New(rep.Err)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
