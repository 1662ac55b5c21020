package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"
)

// ttyHub is a tty container's attached clients, in this process: its
// terminal's copier runs here (copyConsoleLines). fan is the run's while
// one runs; pending wait for the next.
type ttyHub struct {
	fan     *outputFan
	pending []fanSub
}

// ttyHubLocked is container id's hub, made if need be (r.mu held).
func (r *Runtime) ttyHubLocked(id string) *ttyHub {
	if r.tty == nil {
		r.tty = map[string]*ttyHub{}
	}
	h := r.tty[id]
	if h == nil {
		h = &ttyHub{}
		r.tty[id] = h
	}
	return h
}

// ttyFanLocked starts a run's fan for a tty container (r.mu held), with
// the clients that waited for it.
func (r *Runtime) ttyFanLocked(id string) *outputFan {
	h := r.ttyHubLocked(id)
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
		h := r.ttyHubLocked(id)
		joined := !next && h.fan != nil && h.fan.add(sub)
		if !joined {
			h.pending = append(h.pending, sub)
		}
		r.mu.Unlock()
		return func(ctx context.Context, started, done <-chan struct{}) error {
			defer r.detachTTY(id, sub)
			return awaitOutput(ctx, sub.done, runToWaitFor(next, joined, started), done)
		}, nil
	}
	if ok, err := r.reaper.can(capAttach); err != nil || !ok {
		return follow, nil // a reaper of the first json logs: their file
	}
	path := r.JSONLogPath(id)
	c, joined, err := r.reaper.attach(path, next)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, started, done <-chan struct{}) error {
		started = runToWaitFor(next, joined, started)
		var mu sync.Mutex
		cur, stopped := c, false
		closeCur := func() {
			mu.Lock()
			defer mu.Unlock()
			stopped = true
			cur.Close()
		}
		ended := make(chan struct{})
		var cerr error
		go func() {
			defer close(ended)
			for {
				over, err := copyAttached(cur, stdout, stderr)
				if over || err != nil {
					cerr = err
					return
				}
				// The reaper died: the next one took the pipes over
				// (adoptHeld); go on with the run it copies, if it goes on.
				mu.Lock()
				if stopped {
					mu.Unlock()
					return
				}
				cur.Close()
				mu.Unlock()
				next, joined, err := r.reattach(path, func() bool {
					mu.Lock()
					defer mu.Unlock()
					return stopped
				})
				if err != nil {
					cerr = err
					return
				}
				mu.Lock()
				if stopped || !joined {
					mu.Unlock()
					next.Close()
					return
				}
				cur = next
				mu.Unlock()
			}
		}()
		stop := context.AfterFunc(ctx, closeCur)
		defer stop()
		err := awaitOutput(ctx, ended, started, done)
		closeCur()
		<-ended
		if err == nil {
			err = cerr
		}
		return err
	}, nil
}

// reattach attaches to the run a new reaper copies, once there is one:
// the daemon may learn of the old one's death after this attachment did.
func (r *Runtime) reattach(path string, stopped func() bool) (*net.UnixConn, bool, error) {
	var err error
	for try := 0; try < 50 && !stopped(); try++ {
		if try > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		if err = r.reaper.ensure(); err != nil {
			if r.reaper.isClosed() {
				break
			}
			continue
		}
		c, joined, aerr := r.reaper.attach(path, false)
		if aerr == nil {
			return c, joined, nil
		}
		err = aerr
	}
	if err == nil {
		err = errors.New("attach: stopped")
	}
	return nil, false, fmt.Errorf("attach again after the reaper died: %w", err)
}

// runToWaitFor is the start an attachment waits for: started for one
// made for the next run; none (a channel never closed) for one that
// found the run it was made for already over (its output copied, or
// lost with a reaper): the run's exit ends it.
func runToWaitFor(next, joined bool, started <-chan struct{}) <-chan struct{} {
	if !next && !joined {
		return make(chan struct{})
	}
	return started
}

// awaitOutput waits until the attached output ended, ctx ended, or done
// closed with no run started (started nil: one runs), or logDrainWait
// after done: a process outside the container's PID namespace may hold
// its pipes open (moby closes the streams a little after the exit too).
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
	t := time.NewTimer(logDrainWait)
	defer t.Stop()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// copyAttached writes the reaper's messages (a stream byte, then the
// bytes) to stdout and stderr until the run's output is over (over), or
// the connection ends without saying so (the reaper died, or it was
// closed here).
func copyAttached(c *net.UnixConn, stdout, stderr io.Writer) (over bool, err error) {
	buf := make([]byte, 4*logLineMax+1) // a chunk is at most one read of the copier's
	for {
		n, err := c.Read(buf)
		if n == 0 || err != nil {
			if n == 0 || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, err
		}
		if n == 1 && buf[0] == 0 {
			return true, nil
		}
		w := stdout
		if buf[0] == 2 {
			w = stderr
		}
		if w != nil {
			if _, err := w.Write(buf[1:n]); err != nil {
				return false, err
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

// connectedCan says whether the reaper this runtime is connected to
// can do capability what; it connects to none.
func (rc *reaperClient) connectedCan(what string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.hello != nil && slices.Contains(rc.caps, what)
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
func (rc *reaperClient) attach(path string, next bool) (*net.UnixConn, bool, error) {
	c, err := rc.dial(reaperRequest{Op: "attach", Log: &reaperLog{Path: path}, Next: next}, nil)
	if err != nil {
		return nil, false, err
	}
	rep, err := readReply(c)
	if err == nil && rep.Err != "" {
		err = errors.New(rep.Err)
	}
	if err != nil {
		c.Close()
		return nil, false, err
	}
	return c, rep.Joined, nil
}

// OutputKept says whether the output of container id, which runs, still
// has a reader: the reaper found running holds its pipes (takeHeld), or
// it writes raw files of its own (an older berth's). A container whose
// reaper died while no daemon ran has none: its writes fail, or kill it.
func (r *Runtime) OutputKept(id string) bool {
	if checkID(id) != nil || r.legacyLogs(id) {
		return true
	}
	if ok, err := r.reaper.can(capHeld); err != nil || !ok {
		return true // not known: no reaper, or one that hands out no pipes
	}
	r.reaper.hmu.Lock()
	defer r.reaper.hmu.Unlock()
	_, ok := r.reaper.held[r.JSONLogPath(id)]
	return ok
}
